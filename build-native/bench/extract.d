build-native/bench/extract: bench/extract.c include/clipadapt.h
include/clipadapt.h:
