build-native/bench/gemm: bench/gemm.c src/core/core.h include/clipadapt.h \
 src/model/fastgemm.h
src/core/core.h:
include/clipadapt.h:
src/model/fastgemm.h:
