build-native/obj/src/data/preprocess.o: src/data/preprocess.c \
 src/data/preprocess.h src/io/image_buf.h src/core/core.h \
 include/clipadapt.h
src/data/preprocess.h:
src/io/image_buf.h:
src/core/core.h:
include/clipadapt.h:
