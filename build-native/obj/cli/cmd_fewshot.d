build-native/obj/cli/cmd_fewshot.o: cli/cmd_fewshot.c cli/cli.h \
 include/clipadapt.h
cli/cli.h:
include/clipadapt.h:
