build-native/obj/src/adapt/search.o: src/adapt/search.c \
 src/adapt/search.h src/adapt/adapt.h src/core/core.h include/clipadapt.h \
 src/model/gemm.h src/model/vmath.h
src/adapt/search.h:
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
src/model/gemm.h:
src/model/vmath.h:
