build-native/obj/src/adapt/accuracy.o: src/adapt/accuracy.c \
 src/core/core.h include/clipadapt.h
src/core/core.h:
include/clipadapt.h:
