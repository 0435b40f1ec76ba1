build-native/obj/src/model/kernels.o: src/model/kernels.c \
 src/model/kernels.h src/model/gemm.h
src/model/kernels.h:
src/model/gemm.h:
