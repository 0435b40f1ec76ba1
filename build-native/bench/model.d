build-native/bench/model: bench/model.c src/core/core.h \
 include/clipadapt.h src/model/fast.h src/model/model.h
src/core/core.h:
include/clipadapt.h:
src/model/fast.h:
src/model/model.h:
