build-native/obj/src/adapt/classifier.o: src/adapt/classifier.c \
 src/adapt/adapt.h src/core/core.h include/clipadapt.h src/model/gemm.h
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
src/model/gemm.h:
