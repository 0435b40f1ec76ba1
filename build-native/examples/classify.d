build-native/examples/classify: examples/classify.c include/clipadapt.h
include/clipadapt.h:
