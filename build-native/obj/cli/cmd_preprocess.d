build-native/obj/cli/cmd_preprocess.o: cli/cmd_preprocess.c cli/cli.h \
 include/clipadapt.h
cli/cli.h:
include/clipadapt.h:
