build-native/obj/cli/common.o: cli/common.c cli/cli.h include/clipadapt.h
cli/cli.h:
include/clipadapt.h:
