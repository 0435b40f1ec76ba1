build-native/obj/src/adapt/tip_cache.o: src/adapt/tip_cache.c \
 src/adapt/adapt.h src/core/core.h include/clipadapt.h src/model/gemm.h
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
src/model/gemm.h:
