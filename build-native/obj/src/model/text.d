build-native/obj/src/model/text.o: src/model/text.c src/model/kernels.h \
 src/model/model.h src/core/core.h include/clipadapt.h
src/model/kernels.h:
src/model/model.h:
src/core/core.h:
include/clipadapt.h:
