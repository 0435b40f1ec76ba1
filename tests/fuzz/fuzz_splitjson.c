/* fuzz_splitjson.c — libFuzzer target: arbitrary bytes as a CoOp split file must be refused with
 * a status or give a dataset whose every path, label and class name is readable and whose
 * few-shot sampling stays inside the splits. */
#include "data/dataset.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ca_status st;
    ca_dataset *ds = ca_dataset_from_split_json((const char *)data, size, "fuzz.json", "/root", &st);
    if (!ds) return 0;
    int C = ca_dataset_num_classes(ds);
    for (int c = 0; c < C; c++) CA_ASSERT(ca_dataset_class_name(ds, c) != NULL);
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < ca_dataset_size(ds, s); i++) {
            CA_ASSERT(strlen(ca_dataset_path(ds, s, i)) > 0);
            int l = ca_dataset_label(ds, s, i);
            CA_ASSERT(l >= 0 && l < C);
        }
    int *ti, nt, *vi, nv;
    if (ca_dataset_fewshot2(ds, 2, 1, 1, &ti, &nt, &vi, &nv) == CA_OK) {
        for (int i = 0; i < nt; i++) CA_ASSERT(ti[i] >= 0 && ti[i] < ca_dataset_size(ds, CA_SPLIT_TRAIN));
        for (int i = 0; i < nv; i++) CA_ASSERT(vi[i] >= 0 && vi[i] < ca_dataset_size(ds, CA_SPLIT_VAL));
        free(ti); free(vi);
    }
    ca_dataset_free(ds);
    return 0;
}
