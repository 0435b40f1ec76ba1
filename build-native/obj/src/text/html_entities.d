build-native/obj/src/text/html_entities.o: src/text/html_entities.c \
 src/text/text.h src/core/core.h include/clipadapt.h
src/text/text.h:
src/core/core.h:
include/clipadapt.h:
