build-native/bench/tip: bench/tip.c src/adapt/tip.h src/adapt/search.h \
 src/adapt/adapt.h src/core/core.h include/clipadapt.h
src/adapt/tip.h:
src/adapt/search.h:
src/adapt/adapt.h:
src/core/core.h:
include/clipadapt.h:
