/* fuzz_torchfile.c — libFuzzer target: arbitrary bytes as a PyTorch checkpoint (zip archive,
 * TorchScript archive or legacy stream, through the restricted pickle machine) must either be
 * refused with a status and a message or give tensors whose every byte can be read. The bytes
 * are read in memory (no file), so every descriptor must point into them or into a buffer the
 * handle owns. */
#include "io/torchfile.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ca_status st;
    ca_st_file *f = ca_torch_open_mem("fuzz.pt", data, size, NULL, 0, &st);
    if (!f) {
        if (st == CA_OK || !ca_last_error()[0]) __builtin_trap();
        return 0;
    }
    volatile uint8_t sink = 0;
    for (int i = 0; i < ca_st_count(f); i++) {
        const ca_tensor_info *t = ca_st_at(f, i);
        if (t->nbytes != (size_t)t->numel * ca_dtype_size(t->dtype)) __builtin_trap();
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sink ^= p[k];
        if (strlen(t->name) == 0 && t->name[0]) __builtin_trap();
    }
    (void)sink;
    ca_st_close(f);
    return 0;
}
