build-native/obj/cli/main.o: cli/main.c cli/cli.h include/clipadapt.h
cli/cli.h:
include/clipadapt.h:
