build-native/obj/src/model/api.o: src/model/api.c src/model/model.h \
 src/core/core.h include/clipadapt.h src/model/fast.h \
 src/model/fastgemm.h
src/model/model.h:
src/core/core.h:
include/clipadapt.h:
src/model/fast.h:
src/model/fastgemm.h:
