build-native/obj/src/text/clean.o: src/text/clean.c src/text/text.h \
 src/core/core.h include/clipadapt.h
src/text/text.h:
src/core/core.h:
include/clipadapt.h:
