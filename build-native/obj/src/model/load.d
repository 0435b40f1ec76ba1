build-native/obj/src/model/load.o: src/model/load.c src/io/safetensors.h \
 src/core/core.h include/clipadapt.h src/model/kernels.h \
 src/model/model.h
src/io/safetensors.h:
src/core/core.h:
include/clipadapt.h:
src/model/kernels.h:
src/model/model.h:
