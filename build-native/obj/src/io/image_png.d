build-native/obj/src/io/image_png.o: src/io/image_png.c src/io/decoders.h \
 src/io/image_buf.h src/core/core.h include/clipadapt.h
src/io/decoders.h:
src/io/image_buf.h:
src/core/core.h:
include/clipadapt.h:
