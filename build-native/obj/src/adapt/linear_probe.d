build-native/obj/src/adapt/linear_probe.o: src/adapt/linear_probe.c \
 src/adapt/adapt.h src/core/core.h include/clipadapt.h \
 src/adapt/methods.h src/adapt/train.h src/model/gemm.h
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
src/adapt/methods.h:
src/adapt/train.h:
src/model/gemm.h:
