build-native/obj/src/eval/predict.o: src/eval/predict.c src/core/core.h \
 include/clipadapt.h
src/core/core.h:
include/clipadapt.h:
