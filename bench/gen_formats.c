/* gen_formats.c — the same weights in the other formats `make bench` times loading from: an F32
 * safetensors copy and a TorchScript archive laid out as `torch.jit.save` writes OpenAI's
 * `clip.load` files (tests/torchwrite.h). For benchmarks only.
 * Usage: gen_formats IN.safetensors OUT.f32.safetensors OUT.jit.pt   (existing outputs are kept) */
#include "core/core.h"
#include "../tests/torchwrite.h"

#include <sys/stat.h>

static int write_f32(const ca_st_file *f, const char *path) {
    ca_st_writer *w = ca_st_writer_new();
    ca_status st = w ? CA_OK : CA_E_NOMEM;
    for (int i = 0; i < ca_st_count(f) && !st; i++) {
        const ca_tensor_info *t = ca_st_at(f, i);
        float *d = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        st = d ? ca_tensor_to_f32(t, d, t->numel) : CA_E_NOMEM;
        if (!st) st = ca_st_writer_add(w, t->name, CA_DT_F32, t->ndim, t->shape, d);
        free(d);
    }
    if (!st) st = ca_st_writer_save(w, path);
    ca_st_writer_free(w);
    if (st) { fprintf(stderr, "gen_formats: %s: %s\n", path, ca_last_error()); return 1; }
    fprintf(stderr, "gen_formats: wrote %s\n", path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: gen_formats IN.safetensors OUT.f32.safetensors OUT.jit.pt\n"); return 2; }
    ca_status st;
    ca_st_file *f = ca_st_open(argv[1], &st);
    if (!f) { fprintf(stderr, "gen_formats: %s\n", ca_last_error()); return 1; }
    struct stat sb;
    int rc = 0;
    if (stat(argv[2], &sb) != 0) rc |= write_f32(f, argv[2]);
    if (stat(argv[3], &sb) != 0) {
        int r = tw_write(f, NULL, argv[3], "ViT-B-32", 1);
        if (!r) fprintf(stderr, "gen_formats: wrote %s\n", argv[3]);
        rc |= r;
    }
    ca_st_close(f);
    return rc;
}
