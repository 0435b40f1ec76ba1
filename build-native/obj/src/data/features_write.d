build-native/obj/src/data/features_write.o: src/data/features_write.c \
 src/core/core.h include/clipadapt.h
src/core/core.h:
include/clipadapt.h:
