build-native/obj/src/model/gemm.o: src/model/gemm.c src/model/gemm.h \
 src/model/fastgemm.h include/clipadapt.h
src/model/gemm.h:
src/model/fastgemm.h:
include/clipadapt.h:
