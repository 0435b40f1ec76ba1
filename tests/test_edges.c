/* test_edges.c — the edges of issue 15 at the library level: the one output routine (atomic
 * replace, links followed, special files and directories, errors naming the caller's path with
 * the system's reason), ca_fail prefixing its own detail, and non-finite weights refused at load.
 * `test_edges --nan-copy IN OUT TENSOR` writes a copy of a safetensors file with the first element
 * of TENSOR set to NaN, for tests/cli/test_edges.sh. */
#include "harness.h"
#include "clipadapt.h"
#include "core/core.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *MODEL = "../shared/testdata/models/vit-tiny.safetensors";
static char dir[256];

static char *slurp(const char *path, size_t *n) {
    ca_status st;
    return ca_read_file(path, n, &st);
}

/* Copy IN to OUT with element 0 of TENSOR (F32, F16 or BF16) set to NaN. */
static int nan_copy(const char *in, const char *out, const char *tensor) {
    size_t n;
    char *buf = slurp(in, &n);
    if (!buf || n < 8) { fprintf(stderr, "%s: cannot read\n", in); return 1; }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)(unsigned char)buf[i] << (8 * i);
    if (hl > n - 8) { fprintf(stderr, "%s: bad header\n", in); return 1; }
    char *hdr = strndup(buf + 8, (size_t)hl);
    cJSON *root = cJSON_Parse(hdr), *t = cJSON_GetObjectItemCaseSensitive(root, tensor);
    cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets"), *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    if (!cJSON_IsArray(off) || !cJSON_IsString(dt)) { fprintf(stderr, "%s: no tensor '%s'\n", in, tensor); return 1; }
    size_t at = 8 + (size_t)hl + (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
    if (!strcmp(dt->valuestring, "F32")) { float v = NAN; memcpy(buf + at, &v, 4); }
    else { uint16_t h = !strcmp(dt->valuestring, "F16") ? 0x7e00 : 0x7fc0; memcpy(buf + at, &h, 2); }
    FILE *fp = fopen(out, "wb");
    int bad = !fp || fwrite(buf, 1, n, fp) != n;
    if (fp && fclose(fp)) bad = 1;
    cJSON_Delete(root); free(hdr); free(buf);
    return bad;
}

static void test_fail_prefixes_itself(void) {
    ca_fail(CA_E_IO, "inner reason %d", 7);
    ca_status st = ca_fail(CA_E_FORMAT, "outer: %s", ca_last_error());
    CHECK_EQ_INT(st, CA_E_FORMAT);
    CHECK_STR(ca_last_error(), "outer: inner reason 7");
    ca_fail(CA_E_IO, "x");
    ca_fail(CA_E_IO, "%s%s", ca_last_error(), ca_last_error());
    CHECK_STR(ca_last_error(), "xx");
    CHECK_STR(ca_strerror(CA_E_NONFINITE), "non-finite value (NaN or infinity)");
    CHECK_EQ_INT(CA_E_NONFINITE, 11);
}

static void test_atomic_replace_keeps_mode(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/a.txt", dir);
    CHECK_EQ_INT(ca_write_text(p, "one\n"), CA_OK);
    chmod(p, 0640);
    CHECK_EQ_INT(ca_write_text(p, "two\n"), CA_OK);
    size_t n;
    char *s = slurp(p, &n);
    CHECK_STR(s, "two\n");
    free(s);
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0640);
}

static void test_symlink_followed(void) {
    char target[512], link[512];
    snprintf(target, sizeof target, "%s/target.txt", dir);
    snprintf(link, sizeof link, "%s/link.txt", dir);
    CHECK_EQ_INT(ca_write_text(target, "old\n"), CA_OK);
    CHECK(symlink("target.txt", link) == 0);
    CHECK_EQ_INT(ca_write_text(link, "new\n"), CA_OK);
    struct stat lb;
    CHECK(lstat(link, &lb) == 0 && S_ISLNK(lb.st_mode));
    size_t n;
    char *s = slurp(target, &n);
    CHECK_STR(s, "new\n");
    free(s);
    /* a dangling link: its target is created */
    char dl[512], dt[512];
    snprintf(dl, sizeof dl, "%s/dangling", dir);
    snprintf(dt, sizeof dt, "%s/created.txt", dir);
    CHECK(symlink("created.txt", dl) == 0);
    CHECK_EQ_INT(ca_write_text(dl, "made\n"), CA_OK);
    CHECK(lstat(dl, &lb) == 0 && S_ISLNK(lb.st_mode));
    s = slurp(dt, &n);
    CHECK_STR(s, "made\n");
    free(s);
}

static void test_errors_name_the_path(void) {
    ca_status st = ca_write_text(dir, "x");
    CHECK_EQ_INT(st, CA_E_IO);
    CHECK_MSG(strstr(ca_last_error(), dir) && strstr(ca_last_error(), "directory"), "got '%s'", ca_last_error());
    char p[512];
    snprintf(p, sizeof p, "%s/no/such/folder/out.txt", dir);
    st = ca_write_text(p, "x");
    CHECK_EQ_INT(st, CA_E_IO);
    CHECK_MSG(strstr(ca_last_error(), p) && !strstr(ca_last_error(), ".tmp"), "got '%s'", ca_last_error());
    if (access("/dev/full", W_OK) == 0) {
        st = ca_write_text("/dev/full", "data that cannot be stored\n");
        CHECK_EQ_INT(st, CA_E_IO);
        CHECK_MSG(strstr(ca_last_error(), "/dev/full") && strstr(ca_last_error(), strerror(ENOSPC)), "got '%s'", ca_last_error());
        struct stat sb;
        CHECK(stat("/dev/full", &sb) == 0 && S_ISCHR(sb.st_mode));   /* still the device */
    }
    /* a safetensors writer on a character device writes in place */
    ca_st_writer *w = ca_st_writer_new();
    float v = 1;
    ca_st_writer_add(w, "x", CA_DT_F32, 1, (int64_t[]){1}, &v);
    CHECK_EQ_INT(ca_st_writer_save(w, "/dev/null"), CA_OK);
    ca_st_writer_free(w);
    struct stat sb;
    CHECK(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode));
}

static void test_no_temporaries_left(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/sub/out.txt", dir);
    CHECK_EQ_INT(ca_write_text(p, "x"), CA_OK);
    snprintf(p, sizeof p, "%s/sub", dir);
    int n = 0;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", p);
    FILE *fp = popen(cmd, "r");
    if (fp) { if (fscanf(fp, "%d", &n) != 1) n = -1; pclose(fp); }
    CHECK_EQ_INT(n, 1);
}

static void test_nan_weights_refused(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/nan.safetensors", dir);
    const char *name = "visual.transformer.resblocks.0.attn.in_proj_weight";
    if (nan_copy(MODEL, p, name)) { CHECK_MSG(0, "cannot make a NaN copy of %s", MODEL); return; }
    ca_status st;
    ca_model *m = ca_model_load(p, NULL, &st);
    CHECK(m == NULL);
    CHECK_EQ_INT(st, CA_E_NONFINITE);
    CHECK_MSG(strstr(ca_last_error(), name) && strstr(ca_last_error(), p), "got '%s'", ca_last_error());
    ca_model_free(m);
    m = ca_model_load(MODEL, NULL, &st);   /* the original still loads */
    CHECK(m != NULL);
    ca_model_free(m);
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--nan-copy")) return nan_copy(argv[2], argv[3], argv[4]);
    snprintf(dir, sizeof dir, "%s/ca-edges-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    RUN(test_fail_prefixes_itself);
    RUN(test_atomic_replace_keeps_mode);
    RUN(test_symlink_followed);
    RUN(test_errors_name_the_path);
    RUN(test_no_temporaries_left);
    RUN(test_nan_weights_refused);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_END();
}
