build-native/obj/src/model/vit.o: src/model/vit.c src/model/kernels.h \
 src/model/model.h src/core/core.h include/clipadapt.h
src/model/kernels.h:
src/model/model.h:
src/core/core.h:
include/clipadapt.h:
