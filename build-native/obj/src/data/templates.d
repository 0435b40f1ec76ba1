build-native/obj/src/data/templates.o: src/data/templates.c \
 src/data/templates.h src/core/core.h include/clipadapt.h
src/data/templates.h:
src/core/core.h:
include/clipadapt.h:
