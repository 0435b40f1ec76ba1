build-native/bench/cputime: bench/cputime.c include/clipadapt.h
include/clipadapt.h:
