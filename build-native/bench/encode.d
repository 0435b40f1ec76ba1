build-native/bench/encode: bench/encode.c include/clipadapt.h
include/clipadapt.h:
