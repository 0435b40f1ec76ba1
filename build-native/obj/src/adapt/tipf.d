build-native/obj/src/adapt/tipf.o: src/adapt/tipf.c src/adapt/tip.h \
 src/adapt/search.h src/adapt/adapt.h src/core/core.h include/clipadapt.h \
 src/adapt/train.h src/model/gemm.h src/model/vmath.h
src/adapt/tip.h:
src/adapt/search.h:
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
src/adapt/train.h:
src/model/gemm.h:
src/model/vmath.h:
