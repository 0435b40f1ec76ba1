build-native/obj/src/data/encode.o: src/data/encode.c src/core/core.h \
 include/clipadapt.h
src/core/core.h:
include/clipadapt.h:
