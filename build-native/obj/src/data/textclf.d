build-native/obj/src/data/textclf.o: src/data/textclf.c \
 src/data/templates.h src/core/core.h include/clipadapt.h
src/data/templates.h:
src/core/core.h:
include/clipadapt.h:
