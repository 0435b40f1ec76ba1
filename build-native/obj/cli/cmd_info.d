build-native/obj/cli/cmd_info.o: cli/cmd_info.c cli/cli.h \
 include/clipadapt.h
cli/cli.h:
include/clipadapt.h:
