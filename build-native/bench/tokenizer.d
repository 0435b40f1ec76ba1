build-native/bench/tokenizer: bench/tokenizer.c include/clipadapt.h \
 src/core/core.h bench/tokenizer_data.h
include/clipadapt.h:
src/core/core.h:
bench/tokenizer_data.h:
