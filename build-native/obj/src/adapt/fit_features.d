build-native/obj/src/adapt/fit_features.o: src/adapt/fit_features.c \
 src/adapt/adapt.h src/core/core.h include/clipadapt.h
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
