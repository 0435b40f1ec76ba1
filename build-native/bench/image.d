build-native/bench/image: bench/image.c include/clipadapt.h \
 src/core/core.h src/data/preprocess.h src/io/image_buf.h
include/clipadapt.h:
src/core/core.h:
src/data/preprocess.h:
src/io/image_buf.h:
