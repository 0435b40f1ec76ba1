build-native/obj/src/model/resnet.o: src/model/resnet.c \
 src/model/kernels.h src/model/model.h src/core/core.h \
 include/clipadapt.h
src/model/kernels.h:
src/model/model.h:
src/core/core.h:
include/clipadapt.h:
