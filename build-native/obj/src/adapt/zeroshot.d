build-native/obj/src/adapt/zeroshot.o: src/adapt/zeroshot.c \
 src/adapt/adapt.h src/core/core.h include/clipadapt.h
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
