build-native/obj/src/model/fast.o: src/model/fast.c src/model/fast.h \
 src/model/model.h src/core/core.h include/clipadapt.h \
 src/model/fastgemm.h src/model/fastops.h src/model/kernels.h
src/model/fast.h:
src/model/model.h:
src/core/core.h:
include/clipadapt.h:
src/model/fastgemm.h:
src/model/fastops.h:
src/model/kernels.h:
