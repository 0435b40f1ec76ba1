/* fuzz_prompts.c — libFuzzer target: arbitrary bytes as a per-class prompt file (CuPL / APE
 * JSON) must be refused with a status or give lists whose every prompt is a readable, non-empty
 * string, found again by its class name. */
#include "core/core.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ca_status st;
    ca_prompts *p = ca_prompts_parse((const char *)data, size, "fuzz.json", &st);
    if (!p) { CA_ASSERT(st != CA_OK); return 0; }
    CA_ASSERT(ca_prompts_count(p) > 0);
    const char *names[] = {"a", "A", "sea lion", "sea_lion", " Sea  Lion ", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int n = -1;
        const char *const *v = ca_prompts_for(p, names[i], &n);
        CA_ASSERT(v ? n > 0 : n == 0);
        for (int j = 0; v && j < n; j++) CA_ASSERT(v[j] && strlen(v[j]) > 0);
    }
    ca_prompts_free(p);
    return 0;
}
