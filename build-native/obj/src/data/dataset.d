build-native/obj/src/data/dataset.o: src/data/dataset.c \
 src/data/dataset.h src/core/core.h include/clipadapt.h
src/data/dataset.h:
src/core/core.h:
include/clipadapt.h:
