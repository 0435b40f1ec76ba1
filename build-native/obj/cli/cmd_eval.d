build-native/obj/cli/cmd_eval.o: cli/cmd_eval.c cli/cli.h \
 include/clipadapt.h src/core/core.h
cli/cli.h:
include/clipadapt.h:
src/core/core.h:
