build-native/obj/src/eval/run.o: src/eval/run.c src/core/core.h \
 include/clipadapt.h
src/core/core.h:
include/clipadapt.h:
