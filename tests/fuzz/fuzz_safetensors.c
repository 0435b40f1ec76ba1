/* fuzz_safetensors.c — libFuzzer target: arbitrary bytes as a safetensors file must either be
 * refused with a status or parse into tensors whose every byte can be read; the same bytes as a
 * feature set and as a sharded checkpoint's index (ca_weights_files). */
#include "clipadapt.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/ca-fuzz-st-%d.safetensors", (int)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    fwrite(data, 1, size, fp);
    fclose(fp);
    ca_status st;
    ca_st_file *f = ca_st_open(path, &st);
    if (f) {
        for (int i = 0; i < ca_st_count(f); i++) {
            const ca_tensor_info *t = ca_st_at(f, i);
            if (t->numel > 0 && t->numel < (1 << 20)) {
                float *buf = malloc(sizeof(float) * (size_t)t->numel);
                if (buf) ca_tensor_to_f32(t, buf, t->numel);
                free(buf);
            }
        }
        for (int i = 0; i < ca_st_metadata_count(f); i++) (void)ca_st_metadata(f, ca_st_metadata_key(f, i));
        ca_st_close(f);
    }
    ca_featureset *fs = ca_features_load(path, &st);
    ca_features_free(fs);
    /* the same bytes as a sharded checkpoint's index: the files it names (output policy) */
    char **wf = ca_weights_files(path, NULL, &st);
    ca_weights_files_free(wf);
    unlink(path);
    return 0;
}
