build-native/obj/src/io/image_buf.o: src/io/image_buf.c \
 src/io/image_buf.h src/core/core.h include/clipadapt.h
src/io/image_buf.h:
src/core/core.h:
include/clipadapt.h:
