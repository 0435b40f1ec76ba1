// The public header must compile as C++ (and stay usable from C++ code).
#include "clipadapt.h"
int main() {
    ca_status st = CA_OK;
    ca_fit_params p = ca_fit_default_params();
    (void)p;
    return ca_strerror(st) ? 0 : 1;
}
