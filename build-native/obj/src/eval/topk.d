build-native/obj/src/eval/topk.o: src/eval/topk.c include/clipadapt.h
include/clipadapt.h:
