build-native/obj/src/model/vmath.o: src/model/vmath.c src/model/vmath.h
src/model/vmath.h:
