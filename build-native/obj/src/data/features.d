build-native/obj/src/data/features.o: src/data/features.c src/core/core.h \
 include/clipadapt.h
src/core/core.h:
include/clipadapt.h:
