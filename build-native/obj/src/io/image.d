build-native/obj/src/io/image.o: src/io/image.c src/io/decoders.h \
 src/io/image_buf.h src/core/core.h include/clipadapt.h
src/io/decoders.h:
src/io/image_buf.h:
src/core/core.h:
include/clipadapt.h:
