build-native/obj/src/adapt/train.o: src/adapt/train.c src/adapt/train.h \
 src/core/core.h include/clipadapt.h src/model/gemm.h
src/adapt/train.h:
src/core/core.h:
include/clipadapt.h:
src/model/gemm.h:
