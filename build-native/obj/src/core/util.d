build-native/obj/src/core/util.o: src/core/util.c src/core/core.h \
 include/clipadapt.h
src/core/core.h:
include/clipadapt.h:
