build-native/obj/src/adapt/gda.o: src/adapt/gda.c src/adapt/adapt.h \
 src/core/core.h include/clipadapt.h src/model/gemm.h
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
src/model/gemm.h:
