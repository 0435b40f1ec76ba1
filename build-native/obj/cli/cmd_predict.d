build-native/obj/cli/cmd_predict.o: cli/cmd_predict.c cli/cli.h \
 include/clipadapt.h
cli/cli.h:
include/clipadapt.h:
