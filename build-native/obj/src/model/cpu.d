build-native/obj/src/model/cpu.o: src/model/cpu.c src/core/core.h \
 include/clipadapt.h src/model/fastgemm.h
src/core/core.h:
include/clipadapt.h:
src/model/fastgemm.h:
