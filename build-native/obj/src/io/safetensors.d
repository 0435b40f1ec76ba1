build-native/obj/src/io/safetensors.o: src/io/safetensors.c \
 src/core/core.h include/clipadapt.h src/io/safetensors.h
src/core/core.h:
include/clipadapt.h:
src/io/safetensors.h:
