build-native/obj/src/eval/plot.o: src/eval/plot.c src/eval/sbuf.h \
 src/core/core.h include/clipadapt.h
src/eval/sbuf.h:
src/core/core.h:
include/clipadapt.h:
