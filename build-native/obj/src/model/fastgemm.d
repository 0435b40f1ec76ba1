build-native/obj/src/model/fastgemm.o: src/model/fastgemm.c \
 src/model/fastgemm.h include/clipadapt.h src/core/core.h \
 src/model/simd.h
src/model/fastgemm.h:
include/clipadapt.h:
src/core/core.h:
src/model/simd.h:
