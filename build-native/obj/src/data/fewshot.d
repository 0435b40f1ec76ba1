build-native/obj/src/data/fewshot.o: src/data/fewshot.c \
 src/data/dataset.h src/core/core.h include/clipadapt.h
src/data/dataset.h:
src/core/core.h:
include/clipadapt.h:
