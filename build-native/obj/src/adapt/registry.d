build-native/obj/src/adapt/registry.o: src/adapt/registry.c \
 src/adapt/adapt.h src/core/core.h include/clipadapt.h
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
