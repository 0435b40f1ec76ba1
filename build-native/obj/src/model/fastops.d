build-native/obj/src/model/fastops.o: src/model/fastops.c \
 src/model/fastops.h src/model/fastgemm.h include/clipadapt.h \
 src/core/core.h src/model/simd.h
src/model/fastops.h:
src/model/fastgemm.h:
include/clipadapt.h:
src/core/core.h:
src/model/simd.h:
