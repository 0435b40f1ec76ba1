build-native/bench/gen_weights: bench/gen_weights.c src/core/core.h \
 include/clipadapt.h
src/core/core.h:
include/clipadapt.h:
