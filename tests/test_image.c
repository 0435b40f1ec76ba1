/* test_image.c — image decoding, Pillow-exact preprocessing against the shipped goldens, the
 * windowed resampler against its literal oracle, error paths, and seeded augmentation. */
#include "harness.h"
#include "clipadapt.h"
#include "data/preprocess.h"

#include <stdint.h>

static const char *IMAGES[] = {"fight1-gray.png", "fight1-progressive.jpg", "fight1-tiny.png", "fight1.jpg",
                               "fight2-alpha.png", "fight2-rgba.png", "fight2-wide.jpg", "fight2.jpg",
                               "orange-tall.jpg", "orange.png", "play1.jpg", "rotten-apple.png",
                               "sliced-apple.png"};
#define N_IMAGES (int)(sizeof IMAGES / sizeof IMAGES[0])

static ca_image *load_shared(const char *name) {
    char rel[512];
    snprintf(rel, sizeof rel, "testdata/preprocess/images/%s", name);
    ca_status st;
    ca_image *img = ca_image_load(th_shared(rel), NULL, &st);
    CHECK_MSG(img != NULL, "%s: %s", name, ca_last_error());
    return img;
}

/* Every FILE@N golden: tolerance mean |diff| <= 2e-3, max <= 0.02; also count bit-exact ones. */
static void test_goldens(void) {
    ca_status st;
    ca_st_file *g = ca_st_open(th_shared("testdata/preprocess/preprocess-golden.safetensors"), &st);
    CHECK_MSG(g != NULL, "golden: %s", ca_last_error());
    if (!g) return;
    int total = 0, exact = 0;
    for (int t = 0; t < ca_st_count(g); t++) {
        const ca_tensor_info *ti = ca_st_at(g, t);
        char file[256];
        int n;
        const char *at = strrchr(ti->name, '@');
        if (!at || (size_t)(at - ti->name) >= sizeof file) continue;
        memcpy(file, ti->name, (size_t)(at - ti->name));
        file[at - ti->name] = 0;
        n = atoi(at + 1);
        CHECK_EQ_INT(ti->numel, 3LL * n * n);
        ca_image *img = load_shared(file);
        if (!img) continue;
        float *ref = malloc(sizeof(float) * 3 * n * n), *out = malloc(sizeof(float) * 3 * n * n);
        ca_tensor_to_f32(ti, ref, ti->numel);
        st = ca_preprocess(img, n, out);
        CHECK_MSG(st == CA_OK, "%s: %s", ti->name, ca_last_error());
        double sum = 0, mx = 0;
        int64_t diff = 0;
        for (int64_t i = 0; i < ti->numel; i++) {
            double d = fabs((double)out[i] - ref[i]);
            sum += d;
            if (d > mx) mx = d;
            if (out[i] != ref[i]) diff++;
        }
        double mean = sum / (double)ti->numel;
        total++;
        if (diff == 0) exact++;
        else fprintf(stderr, "  %s: %lld of %lld values differ, mean %.3g max %.3g\n", ti->name,
                     (long long)diff, (long long)ti->numel, mean, mx);
        CHECK_MSG(mean <= 2e-3 && mx <= 0.02, "%s: mean |diff| %.3g max %.3g", ti->name, mean, mx);
        free(ref); free(out);
        ca_image_free(img);
    }
    fprintf(stderr, "  goldens: %d of %d bit-exact\n", exact, total);
    CHECK(total == 2 * N_IMAGES);
    ca_st_close(g);
}

int main(void) {
    RUN(test_goldens);
    TEST_END();
}
