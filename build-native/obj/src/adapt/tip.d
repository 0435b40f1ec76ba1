build-native/obj/src/adapt/tip.o: src/adapt/tip.c src/adapt/tip.h \
 src/adapt/search.h src/adapt/adapt.h src/core/core.h include/clipadapt.h \
 src/model/gemm.h
src/adapt/tip.h:
src/adapt/search.h:
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
src/model/gemm.h:
