build-native/obj/src/adapt/clip_adapter.o: src/adapt/clip_adapter.c \
 src/adapt/adapt.h src/core/core.h include/clipadapt.h src/adapt/train.h \
 src/adapt/methods.h src/model/gemm.h
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
src/adapt/train.h:
src/adapt/methods.h:
src/model/gemm.h:
