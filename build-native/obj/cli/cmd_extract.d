build-native/obj/cli/cmd_extract.o: cli/cmd_extract.c cli/cli.h \
 include/clipadapt.h src/core/core.h
cli/cli.h:
include/clipadapt.h:
src/core/core.h:
