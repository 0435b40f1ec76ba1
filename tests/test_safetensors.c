/* test_safetensors.c — reader on every shared file, writer round trip, malformed headers,
 * half-float conversion. */
#include "core/core.h"
#include "harness.h"

#include <stdint.h>

static const char *SHARED_FILES[] = {
    "features/stanford_cars.safetensors", "features/caltech101.safetensors",
    "features/oxford_pets.safetensors", "features/oxford_flowers.safetensors",
    "testdata/models/vit-tiny.safetensors", "testdata/models/vit-tiny-hf.safetensors",
    "testdata/models/rn-tiny.safetensors", "testdata/models/vit-tiny-golden.safetensors",
    "testdata/models/rn-tiny-golden.safetensors", "testdata/preprocess/preprocess-golden.safetensors",
};

static void test_reads_every_shared_file(void) {
    for (size_t i = 0; i < sizeof SHARED_FILES / sizeof *SHARED_FILES; i++) {
        ca_status st;
        ca_st_file *f = ca_st_open(th_shared(SHARED_FILES[i]), &st);
        CHECK_MSG(f && st == CA_OK, "%s: %s", SHARED_FILES[i], ca_last_error());
        if (!f) continue;
        CHECK(ca_st_count(f) > 0);
        for (int k = 0; k < ca_st_count(f); k++) {
            const ca_tensor_info *t = ca_st_at(f, k);
            CHECK(t && ca_st_find(f, t->name) == t);
            CHECK_EQ_INT(t->nbytes, (size_t)t->numel * ca_dtype_size(t->dtype));
        }
        ca_st_close(f);
    }
    ca_st_close(NULL);
}

static void test_known_shapes(void) {
    ca_st_file *f = ca_st_open(th_shared("features/stanford_cars.safetensors"), NULL);
    CHECK(f != NULL);
    if (!f) return;
    const ca_tensor_info *t = ca_st_find(f, "text.weights");
    CHECK(t && t->dtype == CA_DT_F32 && t->ndim == 2 && t->shape[0] == 196 && t->shape[1] == 512);
    t = ca_st_find(f, "val.features");
    CHECK(t && t->dtype == CA_DT_F16 && t->shape[0] == 588);
    t = ca_st_find(f, "test.labels");
    CHECK(t && t->dtype == CA_DT_I64 && t->shape[0] == 1047);
    CHECK(ca_st_find(f, "nope") == NULL);
    ca_st_close(f);
}

static void test_roundtrip(void) {
    const char *path = "roundtrip.safetensors";
    char full[1024];
    snprintf(full, sizeof full, "%s/%s", th_tmpdir(), path);
    ca_st_writer *w = ca_st_writer_new();
    float a[6] = {1, -2, 3.5f, 0, 1e-8f, 65504};
    int64_t b[3] = {-1, 0, 1LL << 40};
    uint16_t h[2] = {ca_f32_to_f16(0.5f), ca_f32_to_f16(-3.25f)};
    CHECK(ca_st_writer_add(w, "a", CA_DT_F32, 2, (int64_t[]){2, 3}, a) == CA_OK);
    CHECK(ca_st_writer_add(w, "b", CA_DT_I64, 1, (int64_t[]){3}, b) == CA_OK);
    CHECK(ca_st_writer_add(w, "h", CA_DT_F16, 1, (int64_t[]){2}, h) == CA_OK);
    CHECK(ca_st_writer_add(w, "empty", CA_DT_F32, 2, (int64_t[]){0, 4}, NULL) == CA_OK);
    CHECK(ca_st_writer_add(w, "a", CA_DT_F32, 1, (int64_t[]){1}, a) == CA_E_ARG); /* duplicate */
    CHECK(ca_st_writer_metadata(w, "k", "v \"quoted\"") == CA_OK);
    CHECK(ca_st_writer_save(w, full) == CA_OK);
    ca_st_writer_free(w);
    ca_status st;
    ca_st_file *f = ca_st_open(full, &st);
    CHECK_MSG(f != NULL, "%s", ca_last_error());
    if (!f) return;
    CHECK_STR(ca_st_metadata(f, "k"), "v \"quoted\"");
    int64_t shp[2];
    float *ra = ca_st_load_f32(f, "a", 2, (int64_t[]){2, -1}, shp, &st);
    CHECK(ra && shp[1] == 3);
    for (int i = 0; ra && i < 6; i++) CHECK(ra[i] == a[i]);
    free(ra);
    int64_t rb[3];
    CHECK(ca_tensor_to_i64(ca_st_find(f, "b"), rb, 3) == CA_OK);
    CHECK(rb[0] == -1 && rb[2] == (1LL << 40));
    float rh[2];
    CHECK(ca_tensor_to_f32(ca_st_find(f, "h"), rh, 2) == CA_OK);
    CHECK(rh[0] == 0.5f && rh[1] == -3.25f);
    CHECK(ca_st_find(f, "empty") && ca_st_find(f, "empty")->numel == 0);
    /* wrong expected shape is named in the error */
    float *bad = ca_st_load_f32(f, "a", 2, (int64_t[]){3, 2}, NULL, &st);
    CHECK(!bad && st == CA_E_SHAPE && strstr(ca_last_error(), "'a'") != NULL);
    ca_st_close(f);
}

/* Write raw bytes: 8-byte length + header + data. */
static const char *write_raw(const char *name, const char *header, size_t hlen_override, const void *data, size_t dlen) {
    static char full[1024];
    snprintf(full, sizeof full, "%s/%s", th_tmpdir(), name);
    FILE *fp = fopen(full, "wb");
    uint64_t hl = hlen_override ? hlen_override : strlen(header);
    for (int i = 0; i < 8; i++) fputc((int)((hl >> (8 * i)) & 0xff), fp);
    fwrite(header, 1, strlen(header), fp);
    if (dlen) fwrite(data, 1, dlen, fp);
    fclose(fp);
    return full;
}

static void expect_bad(const char *label, const char *header, size_t hover, size_t dlen, const char *needle) {
    char data[64] = {0};
    const char *p = write_raw("bad.safetensors", header, hover, data, dlen);
    ca_status st = CA_OK;
    ca_st_file *f = ca_st_open(p, &st);
    CHECK_MSG(f == NULL && st != CA_OK, "%s: accepted a bad file", label);
    CHECK_MSG(strstr(ca_last_error(), "bad.safetensors") != NULL, "%s: error does not name the file: %s", label, ca_last_error());
    if (needle) CHECK_MSG(strstr(ca_last_error(), needle) != NULL, "%s: error '%s' lacks '%s'", label, ca_last_error(), needle);
    ca_st_close(f);
}

static void test_malformed(void) {
    expect_bad("not json", "{\"a\": ", 0, 0, "JSON");
    expect_bad("not object", "[1,2]", 0, 0, "object");
    expect_bad("header too long", "{}", 1000, 0, "header length");
    expect_bad("bad dtype", "{\"a\":{\"dtype\":\"X9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4, "'a'");
    expect_bad("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 0, 4, "'a'");
    expect_bad("truncated", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 8, "truncated");
    expect_bad("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 0, 12, "overlaps");
    expect_bad("negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 0, 4, "'a'");
    expect_bad("fractional offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.5,4]}}", 0, 4, "'a'");
    expect_bad("overflow shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 0, 4, "'a'");
    expect_bad("duplicate", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 0, 2, "twice");
    expect_bad("trailing bytes", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 5, "trailing");
    expect_bad("bad metadata", "{\"__metadata__\":{\"k\":1}}", 0, 0, "__metadata__");
    expect_bad("missing offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 0, 1, "data_offsets");
    ca_status st;
    CHECK(ca_st_open("/nonexistent/x.safetensors", &st) == NULL && st == CA_E_IO);
    CHECK(strstr(ca_last_error(), "/nonexistent/x.safetensors") != NULL);
    /* short file */
    char full[1024];
    snprintf(full, sizeof full, "%s/short.safetensors", th_tmpdir());
    FILE *fp = fopen(full, "wb");
    fputs("abc", fp);
    fclose(fp);
    CHECK(ca_st_open(full, &st) == NULL && st == CA_E_FORMAT);
}

static void test_half_floats(void) {
    /* every half value survives f16 -> f32 -> f16 (NaN payloads aside) */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ca_f16_to_f32((uint16_t)h);
        if (f != f) continue;
        if (ca_f32_to_f16(f) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(ca_f16_to_f32(0x3c00) == 1.0f);
    CHECK(ca_f16_to_f32(0x0001) == 5.9604644775390625e-8f);
    CHECK(ca_f32_to_f16(1.0f + 1.0f / 4096) == 0x3c00); /* ties to even */
    CHECK(ca_f32_to_f16(1e6f) == 0x7c00);
    CHECK(ca_bf16_to_f32(ca_f32_to_bf16(1.5f)) == 1.5f);
}

/* the bulk conversion (SIMD on the avx2/avx512 paths) against the per-element one: every half
 * value, from an odd byte offset, at lengths that end inside and outside a 16-lane block */
static void test_half_floats_bulk(void) {
    unsigned char *src = malloc(2 * 65536 + 1);
    float *dst = ca_malloc_big(65536 + 1, sizeof(float)); /* below the huge-page size: plain malloc */
    float *big = ca_malloc_big((size_t)3 << 20, sizeof(float)); /* 12 MiB: the 2 MiB-aligned path */
    CHECK(src && dst && big);
    if (!src || !dst || !big) { free(src); free(dst); free(big); return; }
    CHECK(((uintptr_t)big & ((2u << 20) - 1)) == 0);
    for (size_t i = 0; i < ((size_t)3 << 20); i += 4096) big[i] = (float)i; /* touch: the whole block is ours */
    for (uint32_t h = 0; h < 65536; h++) { src[1 + 2 * h] = (unsigned char)(h & 0xff); src[2 + 2 * h] = (unsigned char)(h >> 8); }
    const size_t lens[] = {0, 1, 15, 16, 17, 33, 65535, 65536};
    int bad = 0;
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        size_t n = lens[li];
        dst[n] = -7.0f; /* the element after the last must stay */
        ca_f16_to_f32_n(dst, src + 1, n);
        for (size_t i = 0; i < n; i++) {
            float want = ca_f16_to_f32((uint16_t)i), got = dst[i];
            if (want != want ? got == got : memcmp(&want, &got, 4) != 0) bad++;
        }
        if (dst[n] != -7.0f) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    free(src); free(dst); free(big);
}

int main(void) {
    RUN(test_reads_every_shared_file);
    RUN(test_known_shapes);
    RUN(test_roundtrip);
    RUN(test_malformed);
    RUN(test_half_floats);
    RUN(test_half_floats_bulk);
    TEST_END();
}
