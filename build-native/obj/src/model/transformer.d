build-native/obj/src/model/transformer.o: src/model/transformer.c \
 src/model/kernels.h src/model/model.h src/core/core.h \
 include/clipadapt.h
src/model/kernels.h:
src/model/model.h:
src/core/core.h:
include/clipadapt.h:
