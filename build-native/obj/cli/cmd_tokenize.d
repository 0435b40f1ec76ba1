build-native/obj/cli/cmd_tokenize.o: cli/cmd_tokenize.c cli/cli.h \
 include/clipadapt.h
cli/cli.h:
include/clipadapt.h:
