build-native/obj/src/text/tokenizer.o: src/text/tokenizer.c \
 src/text/text.h src/core/core.h include/clipadapt.h
src/text/text.h:
src/core/core.h:
include/clipadapt.h:
