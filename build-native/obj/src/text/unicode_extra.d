build-native/obj/src/text/unicode_extra.o: src/text/unicode_extra.c \
 src/text/text.h src/core/core.h include/clipadapt.h
src/text/text.h:
src/core/core.h:
include/clipadapt.h:
