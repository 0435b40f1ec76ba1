build-native/obj/cli/cmd_encode.o: cli/cmd_encode.c cli/cli.h \
 include/clipadapt.h
cli/cli.h:
include/clipadapt.h:
