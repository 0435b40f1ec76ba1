build-native/obj/src/eval/report.o: src/eval/report.c src/eval/sbuf.h \
 src/core/core.h include/clipadapt.h
src/eval/sbuf.h:
src/core/core.h:
include/clipadapt.h:
