build-native/obj/src/core/status.o: src/core/status.c src/core/core.h \
 include/clipadapt.h
src/core/core.h:
include/clipadapt.h:
