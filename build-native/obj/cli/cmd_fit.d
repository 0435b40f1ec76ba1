build-native/obj/cli/cmd_fit.o: cli/cmd_fit.c cli/cli.h \
 include/clipadapt.h
cli/cli.h:
include/clipadapt.h:
