build-native/obj/src/adapt/prototype.o: src/adapt/prototype.c \
 src/adapt/adapt.h src/core/core.h include/clipadapt.h src/adapt/train.h
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
src/adapt/train.h:
