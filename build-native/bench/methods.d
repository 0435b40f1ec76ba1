build-native/bench/methods: bench/methods.c include/clipadapt.h
include/clipadapt.h:
