/* test_torchfile.c — PyTorch checkpoints: every fixture of ../shared/testdata/models/pytorch
 * encodes to its golden (pytorch-golden.safetensors) through the library; the activation is
 * never guessed silently (OpenCLIP config, override, the note when assumed); hostile pickles
 * are refused without side effects; hand-made files (tests/fuzz/corpus/torchfile, written by
 * scripts/make_torch_seeds.py) cover views, deflate, ZIP64, TorchScript trees and legacy streams;
 * truncated and corrupted copies of every fixture fail cleanly; sharded checkpoints (safetensors
 * and HF pytorch_model.bin shards, made here from the fixtures) load as their unsharded file.
 */
#include "clipadapt.h"
#include "harness.h"
#include "torchwrite.h"

#include <sys/stat.h>
#include <unistd.h>

#define PT "testdata/models/pytorch/"
#define SEEDS "tests/fuzz/corpus/torchfile/"

static ca_st_file *golden;

/* max |a - ref| against the golden tolerance 1e-4·max|ref| + 1e-5 */
static void compare(const char *what, const float *got, const ca_tensor_info *ref) {
    float *r = malloc(sizeof(float) * (size_t)ref->numel);
    ca_tensor_to_f32(ref, r, ref->numel);
    double mx = 0, err = 0;
    for (int64_t i = 0; i < ref->numel; i++) {
        if (fabs(r[i]) > mx) mx = fabs(r[i]);
        double d = fabs((double)got[i] - r[i]);
        if (!(d <= err)) err = d;
    }
    double tol = 1e-4 * mx + 1e-5;
    CHECK_MSG(err <= tol, "%s: max error %.3g > tolerance %.3g", what, err, tol);
    if (getenv("CA_TEST_VERBOSE")) fprintf(stderr, "  %s: max error %.3g (tolerance %.3g)\n", what, err, tol);
    free(r);
}

/* Encode the golden inputs with path (p may override params) and compare with "<key>.*". */
static void check_golden(const char *path, const char *key, const char *input, const ca_model_params *p) {
    ca_status st;
    ca_model *m = ca_model_load(path, p, &st);
    CHECK_MSG(m, "%s: %s", path, ca_last_error());
    if (!m) return;
    char name[256];
    snprintf(name, sizeof name, "input.%s.images", input);
    const ca_tensor_info *im = ca_st_find(golden, name);
    snprintf(name, sizeof name, "input.%s.tokens", input);
    const ca_tensor_info *tk = ca_st_find(golden, name);
    snprintf(name, sizeof name, "%s.image_features", key);
    const ca_tensor_info *gi = ca_st_find(golden, name);
    snprintf(name, sizeof name, "%s.text_features", key);
    const ca_tensor_info *gt = ca_st_find(golden, name);
    CHECK(im && tk && gi && gt);
    if (im && tk && gi && gt) {
        float *x = malloc(sizeof(float) * (size_t)im->numel), *out = malloc(sizeof(float) * (size_t)(gi->numel + gt->numel));
        int64_t *t = malloc(sizeof(int64_t) * (size_t)tk->numel);
        ca_tensor_to_f32(im, x, im->numel);
        ca_tensor_to_i64(tk, t, tk->numel);
        CHECK(ca_model_encode_images(m, x, (int)im->shape[0], out) == CA_OK);
        snprintf(name, sizeof name, "%s images", key);
        compare(name, out, gi);
        CHECK(ca_model_encode_text(m, t, (int)tk->shape[0], out) == CA_OK);
        snprintf(name, sizeof name, "%s text", key);
        compare(name, out, gt);
        free(x); free(out); free(t);
    }
    ca_model_free(m);
}

static void test_fixtures_match_goldens(void) {
    static const char *vit[] = {"vit-tiny.jit.pt", "vit-tiny.open_clip.pt", "vit-tiny.legacy.pt", "vit-tiny.train_ckpt.pt"};
    char path[512];
    for (size_t i = 0; i < sizeof vit / sizeof vit[0]; i++) {
        snprintf(path, sizeof path, "%s", th_shared(PT));
        strncat(path, vit[i], sizeof path - strlen(path) - 1);
        check_golden(path, vit[i], "vit", NULL);
    }
    check_golden(th_shared(PT "rn-tiny.jit.pt"), "rn-tiny.jit.pt", "rn", NULL);
    ca_model_params p = ca_model_default_params();
    p.config_path = th_shared("testdata/models/vit-tiny-hf.config.json");
    check_golden(th_shared(PT "vit-tiny-hf.pytorch_model.bin"), "vit-tiny-hf.pytorch_model.bin", "vit", &p);
}

static void test_formats_and_names(void) {
    static const struct { const char *file, *format; } F[] = {
        {"vit-tiny.jit.pt", "torchscript"}, {"rn-tiny.jit.pt", "torchscript"}, {"vit-tiny.open_clip.pt", "pytorch-zip"},
        {"vit-tiny.legacy.pt", "pytorch-legacy"}, {"vit-tiny.train_ckpt.pt", "pytorch-zip"},
        {"vit-tiny-hf.pytorch_model.bin", "pytorch-zip"},
    };
    char path[512];
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++) {
        snprintf(path, sizeof path, "%s%s", th_shared(PT), F[i].file);
        ca_status st;
        ca_st_file *f = ca_weights_open(path, &st);
        CHECK_MSG(f, "%s", ca_last_error());
        if (!f) continue;
        CHECK_STR(ca_st_format(f), F[i].format);
        ca_st_close(f);
    }
    /* the legacy file and the training checkpoint hold the F16 tensors of vit-tiny.safetensors:
     * same names (module. stripped), shapes and bytes */
    ca_status st;
    ca_st_file *ref = ca_st_open(th_shared("testdata/models/vit-tiny.safetensors"), &st);
    static const char *same[] = {"vit-tiny.legacy.pt", "vit-tiny.train_ckpt.pt"};
    for (int k = 0; k < 2 && ref; k++) {
        snprintf(path, sizeof path, "%s%s", th_shared(PT), same[k]);
        ca_st_file *f = ca_weights_open(path, &st);
        CHECK(f && ca_st_count(f) == ca_st_count(ref));
        for (int i = 0; f && i < ca_st_count(ref); i++) {
            const ca_tensor_info *a = ca_st_at(ref, i), *b = ca_st_find(f, a->name);
            CHECK_MSG(b, "%s: no tensor '%s'", same[k], a->name);
            if (!b) continue;
            CHECK_MSG(a->dtype == b->dtype && a->numel == b->numel && !memcmp(a->data, b->data, a->nbytes),
                      "%s: tensor '%s' differs", same[k], a->name);
        }
        ca_st_close(f);
    }
    ca_st_close(ref);
    /* a TorchScript archive names tensors by attribute path */
    ca_st_file *f = ca_weights_open(th_shared(PT "rn-tiny.jit.pt"), &st);
    CHECK(f && ca_st_find(f, "visual.layer1.0.bn1.running_var") && ca_st_find(f, "visual.attnpool.c_proj.weight"));
    ca_st_close(f);
}

static void test_hostile_files_refused(void) {
    static const char *evil[] = {"evil-system.pt", "evil-eval.pt", "evil-legacy.pt"};
    unlink("/tmp/clipadapt-pwned");
    char path[512];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", th_shared(PT), evil[i]);
        ca_status st;
        ca_model *m = ca_model_load(path, NULL, &st);
        CHECK(!m && st == CA_E_UNSAFE);
        CHECK_MSG(strstr(ca_last_error(), evil[i]) && strstr(ca_last_error(), ": refused") && !strchr(ca_last_error(), '\n'),
                  "message: %s", ca_last_error());
        CHECK(strstr(ca_last_error(), i == 1 ? "'__builtin__.eval'" : "'posix.system'"));
        ca_model_free(m);
    }
    CHECK(access("/tmp/clipadapt-pwned", F_OK) != 0);
    CHECK_EQ_INT(CA_E_UNSAFE, 12);
    CHECK_STR(ca_strerror(CA_E_UNSAFE), "refused as unsafe");
}

/* A folder with vit-tiny.safetensors as open_clip_model.safetensors and (optionally) the GELU
 * OpenCLIP config as open_clip_config.json, as OpenCLIP's hub folders hold them. */
static void make_openclip_dir(char *dir, size_t n, int with_config) {
    snprintf(dir, n, "/tmp/ca-torch-XXXXXX");
    if (!mkdtemp(dir)) { dir[0] = 0; return; }
    char dst[600];
    snprintf(dst, sizeof dst, "%s/open_clip_model.safetensors", dir);
    char *abs = realpath(th_shared("testdata/models/vit-tiny.safetensors"), NULL);
    CHECK(abs && symlink(abs, dst) == 0);
    free(abs);
    if (with_config) {
        snprintf(dst, sizeof dst, "%s/open_clip_config.json", dir);
        abs = realpath(th_shared(PT "vit-tiny-gelu.open_clip_config.json"), NULL);
        CHECK(abs && symlink(abs, dst) == 0);
        free(abs);
    }
}

static void remove_dir(const char *dir) {
    char p[600];
    snprintf(p, sizeof p, "%s/open_clip_model.safetensors", dir); unlink(p);
    snprintf(p, sizeof p, "%s/open_clip_config.json", dir); unlink(p);
    rmdir(dir);
}

static void test_activation(void) {
    char dir[64], file[128];
    /* with the config (as a folder and as the file in it): GELU, and the vit-tiny-gelu golden */
    make_openclip_dir(dir, sizeof dir, 1);
    snprintf(file, sizeof file, "%s/open_clip_model.safetensors", dir);
    check_golden(dir, "vit-tiny-gelu", "vit", NULL);
    check_golden(file, "vit-tiny-gelu", "vit", NULL);
    ca_status st;
    ca_model *m = ca_model_load(file, NULL, &st);
    ca_model_info in;
    CHECK(m && ca_model_get_info(m, &in) == CA_OK && !strcmp(in.activation, "gelu") && strstr(in.activation_source, "quick_gelu absent"));
    ca_model_free(m);
    remove_dir(dir);
    /* without: QuickGELU, said so; then the GELU golden must NOT match (the test can fail) */
    make_openclip_dir(dir, sizeof dir, 0);
    snprintf(file, sizeof file, "%s/open_clip_model.safetensors", dir);
    m = ca_model_load(file, NULL, &st);
    CHECK(m && ca_model_get_info(m, &in) == CA_OK && !strcmp(in.activation, "quickgelu") && !strncmp(in.activation_source, "assumed", 7));
    ca_model_free(m);
    remove_dir(dir);
    check_golden(th_shared("testdata/models/vit-tiny.safetensors"), "vit-tiny.open_clip.pt", "vit", NULL);
    int was = th_cur_fail;
    fprintf(stderr, "  (next two mismatches are expected: QuickGELU features against the GELU golden)\n");
    check_golden(th_shared("testdata/models/vit-tiny.safetensors"), "vit-tiny-gelu", "vit", NULL);
    CHECK_MSG(th_cur_fail > was, "QuickGELU features matched the GELU golden: the GELU test cannot fail");
    th_cur_fail = was;
    /* the override */
    ca_model_params p = ca_model_default_params();
    p.activation = CA_ACTIVATION_GELU;
    check_golden(th_shared("testdata/models/vit-tiny.safetensors"), "vit-tiny-gelu", "vit", &p);
    /* an explicit OpenCLIP config */
    p = ca_model_default_params();
    p.config_path = th_shared(PT "vit-tiny-gelu.open_clip_config.json");
    check_golden(th_shared(PT "vit-tiny.open_clip.pt"), "vit-tiny-gelu", "vit", &p);
    /* TorchScript archives are OpenAI's */
    m = ca_model_load(th_shared(PT "vit-tiny.jit.pt"), NULL, &st);
    CHECK(m && ca_model_get_info(m, &in) == CA_OK && !strcmp(in.activation, "quickgelu") && strstr(in.activation_source, "TorchScript"));
    ca_model_free(m);
}

/* Element i of an F32 tensor (descriptors may point at unaligned bytes of the file). */
static float f32_at(const ca_tensor_info *t, int64_t i) {
    float v = -1;
    if (t && t->dtype == CA_DT_F32 && i < t->numel) memcpy(&v, (const char *)t->data + 4 * i, 4);
    return v;
}

static void test_handmade_files(void) {
    ca_status st;
    static const char *sd[] = {SEEDS "state_dict.pt", SEEDS "deflated_zip64.pt"};
    for (int k = 0; k < 2; k++) {
        ca_st_file *f = ca_weights_open(sd[k], &st);
        CHECK_MSG(f, "%s", ca_last_error());
        if (!f) continue;
        const ca_tensor_info *a = ca_st_find(f, "a"), *b = ca_st_find(f, "b"), *d = ca_st_find(f, "c.d");
        CHECK(a && b && d && ca_st_count(f) == 3);
        if (a && b && d) {
            CHECK(a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && b->shape[0] == 3 && b->shape[1] == 2);
            static const float want[6] = {0, 3, 1, 4, 2, 5};   /* the transpose, made contiguous */
            for (int i = 0; i < 6; i++) CHECK_NEAR(f32_at(b, i), want[i], 0);
            for (int i = 0; i < 6; i++) CHECK_NEAR(f32_at(a, i), i, 0);
            float dv;
            CHECK(d->dtype == CA_DT_F16 && ca_tensor_to_f32(d, &dv, 1) == CA_OK);
            CHECK_NEAR(dv, 2.0, 0);                             /* storage offset 1 */
        }
        ca_st_close(f);
    }
    ca_st_file *f = ca_weights_open(SEEDS "train_ckpt.pt", &st);
    const ca_tensor_info *x = f ? ca_st_find(f, "x") : NULL;
    CHECK(x && x->numel == 4 && f32_at(x, 0) == 2.0f && f32_at(x, 3) == 5.0f && ca_st_count(f) == 1);
    ca_st_close(f);
    f = ca_weights_open(SEEDS "torchscript.pt", &st);
    CHECK(f && !strcmp(ca_st_format(f), "torchscript") && ca_st_find(f, "fc.weight") && ca_st_count(f) == 1);
    CHECK(f && ca_st_metadata(f, "torchscript.activation") && !strcmp(ca_st_metadata(f, "torchscript.activation"), "quickgelu"));
    ca_st_close(f);
    f = ca_weights_open(SEEDS "legacy.pt", &st);
    float w[2] = {0, 0};
    CHECK(f && !strcmp(ca_st_format(f), "pytorch-legacy") && ca_st_find(f, "w") && ca_tensor_to_f32(ca_st_find(f, "w"), w, 2) == CA_OK);
    CHECK(w[0] == 1.0f && w[1] == 2.0f);
    ca_st_close(f);
    static const struct { const char *file; ca_status st; const char *msg; } BAD[] = {
        {SEEDS "evil.pt", CA_E_UNSAFE, "pickle calls 'posix.system': refused"},
        {SEEDS "view_out_of_range.pt", CA_E_FORMAT, "view reaches element"},
        {SEEDS "bad_memo.pt", CA_E_FORMAT, "memo reference"},
        {SEEDS "missing_storage.pt", CA_E_FORMAT, "storage '9' missing"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        f = ca_weights_open(BAD[i].file, &st);
        CHECK_MSG(!f && st == BAD[i].st && strstr(ca_last_error(), BAD[i].msg) && strstr(ca_last_error(), BAD[i].file),
                  "%s: status %d, '%s'", BAD[i].file, st, ca_last_error());
        ca_st_close(f);
    }
}

/* A NaN in a PyTorch file's weights is refused at load, naming the tensor, as for safetensors:
 * each format's copy of vit-tiny with the first element of 'visual.conv1.weight' made NaN (the
 * tensor's bytes are found in the file; stored zip entries carry no checked CRC). */
static void test_nonfinite_weights(void) {
    static const char *files[] = {"vit-tiny.open_clip.pt", "vit-tiny.legacy.pt", "vit-tiny.jit.pt"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char src[1024], dst[1024];
        snprintf(src, sizeof src, "%s%s", th_shared(PT), files[k]);
        snprintf(dst, sizeof dst, "%s/nan-%s", th_tmpdir(), files[k]);
        ca_status st;
        ca_st_file *f = ca_weights_open(src, &st);
        const ca_tensor_info *t = f ? ca_st_find(f, "visual.conv1.weight") : NULL;
        FILE *fp = fopen(src, "rb");
        char *buf = NULL;
        long len = -1;
        if (fp && fseek(fp, 0, SEEK_END) == 0 && (len = ftell(fp)) > 0 && fseek(fp, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len)))
            len = (long)fread(buf, 1, (size_t)len, fp);
        if (fp) fclose(fp);
        char *at = buf && t && t->nbytes >= 64 ? memmem(buf, (size_t)len, t->data, 64) : NULL;
        CHECK_MSG(at, "%s: visual.conv1.weight not found in the file", files[k]);
        if (at) {
            if (t->dtype == CA_DT_F32) { static const uint32_t nan32 = 0x7fc00000u; memcpy(at, &nan32, 4); }
            else { static const uint16_t nan16 = 0x7e00u; memcpy(at, &nan16, 2); }   /* F16 and BF16 NaN */
            fp = fopen(dst, "wb");
            CHECK(fp && fwrite(buf, 1, (size_t)len, fp) == (size_t)len);
            if (fp) fclose(fp);
            ca_model *m = ca_model_load(dst, NULL, &st);
            CHECK_MSG(!m && st == CA_E_NONFINITE && strstr(ca_last_error(), "visual.conv1.weight") && strstr(ca_last_error(), dst),
                      "%s: status %d, '%s'", files[k], st, ca_last_error());
            ca_model_free(m);
            unlink(dst);
        }
        free(buf);
        ca_st_close(f);
    }
}

/* Every prefix-truncation and a spread of byte flips of each fixture: an error or a handle,
 * never a crash (run under SAN=1 for the memory checks). */
static void test_damaged_copies(void) {
    static const char *files[] = {"vit-tiny.jit.pt", "vit-tiny.legacy.pt", "vit-tiny.open_clip.pt"};
    char path[512], tmp[] = "/tmp/ca-torch-damaged-XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s%s", th_shared(PT), files[k]);
        size_t len;
        FILE *fp = fopen(path, "rb");
        CHECK(fp != NULL);
        if (!fp) continue;
        fseek(fp, 0, SEEK_END);
        len = (size_t)ftell(fp);
        fseek(fp, 0, SEEK_SET);
        unsigned char *b = malloc(len);
        CHECK(fread(b, 1, len, fp) == len);
        fclose(fp);
        /* cuts: the pickle, the storages, the central directory, the last byte */
        size_t cuts[] = {10, 100, 1000, len / 3, len / 2, len - 5000, len - 100, len - 1};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            FILE *o = fopen(tmp, "wb");
            fwrite(b, 1, cuts[c], o);
            fclose(o);
            ca_status st;
            ca_st_file *f = ca_weights_open(tmp, &st);
            CHECK_MSG(!f && st != CA_OK && strstr(ca_last_error(), tmp) && !strchr(ca_last_error(), '\n'),
                      "%s cut at %zu: opened or bad message '%s'", files[k], cuts[c], ca_last_error());
            ca_st_close(f);
        }
        /* flips in the last 64 KiB (pickle, directory) and at the start */
        for (int r = 0; r < 200; r++) {
            size_t at = r < 20 ? (size_t)r * 7 : len - 1 - (size_t)((r * 2654435761u) % (len < 65536 ? len : 65536));
            unsigned char keep = b[at];
            b[at] ^= (unsigned char)(1 + r % 255);
            FILE *o = fopen(tmp, "wb");
            fwrite(b, 1, len, o);
            fclose(o);
            b[at] = keep;
            ca_status st;
            ca_st_file *f = ca_weights_open(tmp, &st);
            if (!f) CHECK_MSG(st != CA_OK && ca_last_error()[0], "%s flip at %zu: no message", files[k], at);
            ca_st_close(f);
        }
        free(b);
    }
    unlink(tmp);
}

/* Write the golden inputs of a tower family ("vit" or "rn") as `images` and `tokens`. */
static int write_inputs(const char *input, const char *path) {
    char name[64];
    ca_st_writer *w = ca_st_writer_new();
    int ok = w != NULL;
    static const char *what[2] = {"images", "tokens"};
    for (int k = 0; k < 2 && ok; k++) {
        snprintf(name, sizeof name, "input.%s.%s", input, what[k]);
        const ca_tensor_info *t = ca_st_find(golden, name);
        ok = t && ca_st_writer_add(w, what[k], t->dtype, t->ndim, t->shape, t->data) == CA_OK;
    }
    ok = ok && ca_st_writer_save(w, path) == CA_OK;
    ca_st_writer_free(w);
    return ok;
}

/* `clipadapt encode` on each fixture (and the GELU folder) against the goldens. */
static void test_cli_encode(void) {
    const char *ca = getenv("CA");
    if (!ca || access(ca, X_OK) != 0) { fprintf(stderr, "  (no $CA binary: CLI check skipped)\n"); return; }
    char dir[] = "/tmp/ca-torch-cli-XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0); return; }
    char in_vit[128], in_rn[128], out[128], cmd[4096];
    snprintf(in_vit, sizeof in_vit, "%s/in-vit.safetensors", dir);
    snprintf(in_rn, sizeof in_rn, "%s/in-rn.safetensors", dir);
    snprintf(out, sizeof out, "%s/out.safetensors", dir);
    CHECK(write_inputs("vit", in_vit) && write_inputs("rn", in_rn));
    char gdir[64];
    make_openclip_dir(gdir, sizeof gdir, 1);
    static const char *files[] = {"vit-tiny.jit.pt", "vit-tiny.open_clip.pt", "vit-tiny.legacy.pt", "vit-tiny.train_ckpt.pt",
                                  "rn-tiny.jit.pt", "vit-tiny-hf.pytorch_model.bin", "GELU-FOLDER"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        int rn = !strncmp(files[i], "rn-", 3), hf = strstr(files[i], "-hf") != NULL, gelu = files[i][0] == 'G';
        char model[600];
        if (gelu) snprintf(model, sizeof model, "%s", gdir);
        else snprintf(model, sizeof model, "%s%s", th_shared(PT), files[i]);
        snprintf(cmd, sizeof cmd, "'%s' encode --model '%s' %s%s%s --input '%s' --output '%s' 2>/dev/null", ca, model,
                 hf ? "--config '" : "", hf ? th_shared("testdata/models/vit-tiny-hf.config.json") : "", hf ? "'" : "",
                 rn ? in_rn : in_vit, out);
        unlink(out);
        CHECK_MSG(system(cmd) == 0, "failed: %s", cmd);
        ca_st_file *o = ca_st_open(out, NULL);
        CHECK_MSG(o, "%s: no output", files[i]);
        if (!o) continue;
        static const char *feat[2] = {"image_features", "text_features"};
        for (int q = 0; q < 2; q++) {
            char gname[128];
            snprintf(gname, sizeof gname, "%s.%s", gelu ? "vit-tiny-gelu" : files[i], feat[q]);
            const ca_tensor_info *a = ca_st_find(o, feat[q]), *g = ca_st_find(golden, gname);
            CHECK_MSG(a && g && a->dtype == CA_DT_F32 && a->numel == g->numel, "%s: %s missing or mis-shaped", files[i], feat[q]);
            if (a && g && a->dtype == CA_DT_F32 && a->numel == g->numel) {
                snprintf(gname, sizeof gname, "clipadapt encode %s %s", files[i], feat[q]);
                compare(gname, a->data, g);
            }
        }
        ca_st_close(o);
    }
    remove_dir(gdir);
    unlink(in_vit); unlink(in_rn); unlink(out);
    rmdir(dir);
}

/* A sharded checkpoint: vit-tiny.safetensors split in two shards plus its index (HF layout),
 * given as the index and as the folder; also a shard missing a promised tensor. */
static void test_sharded(void) {
    char dir[] = "/tmp/ca-torch-shard-XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0); return; }
    ca_status st;
    ca_st_file *src = ca_st_open(th_shared("testdata/models/vit-tiny.safetensors"), &st);
    CHECK(src != NULL);
    if (!src) return;
    char p1[128], p2[128], idx[128], idx2[128];
    snprintf(p1, sizeof p1, "%s/model-00001-of-00002.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/model-00002-of-00002.safetensors", dir);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    snprintf(idx2, sizeof idx2, "%s/broken.index.json", dir);
    ca_st_writer *w[2] = {ca_st_writer_new(), ca_st_writer_new()};
    FILE *j = fopen(idx, "w"), *j2 = fopen(idx2, "w");
    fprintf(j, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    fprintf(j2, "{\"weight_map\": {\"not.there\": \"model-00001-of-00002.safetensors\"");
    int n = ca_st_count(src);
    for (int i = 0; i < n; i++) {
        const ca_tensor_info *t = ca_st_at(src, i);
        int k = i >= n / 2;
        CHECK(ca_st_writer_add(w[k], t->name, t->dtype, t->ndim, t->shape, t->data) == CA_OK);
        fprintf(j, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "", t->name, k + 1);
    }
    fprintf(j, "}}\n");
    fprintf(j2, "}}\n");
    fclose(j);
    fclose(j2);
    CHECK(ca_st_writer_save(w[0], p1) == CA_OK && ca_st_writer_save(w[1], p2) == CA_OK);
    ca_st_writer_free(w[0]);
    ca_st_writer_free(w[1]);
    ca_st_close(src);
    ca_st_file *f = ca_weights_open(idx, &st);
    CHECK_MSG(f && !strcmp(ca_st_format(f), "safetensors-sharded") && ca_st_count(f) == n, "%s", ca_last_error());
    ca_st_close(f);
    /* the files it reads, found without reading tensors: the index and both shards, also
     * through the folder (output policies refuse to overwrite any of them) */
    for (int k = 0; k < 2; k++) {
        int nf = 0;
        char **fs = ca_weights_files(k ? dir : idx, &nf, &st);
        CHECK_MSG(fs && nf == 3 && !strcmp(fs[0], idx) && !strcmp(fs[1], p1) && !strcmp(fs[2], p2) && !fs[3],
                  "ca_weights_files(%s): %d files", k ? dir : idx, nf);
        ca_weights_files_free(fs);
    }
    int nf = -1;
    char **fs = ca_weights_files(p1, &nf, &st);
    CHECK(fs && nf == 1 && !strcmp(fs[0], p1));
    ca_weights_files_free(fs);
    CHECK(!ca_weights_files("/nonexistent/x.safetensors", &nf, &st) && st == CA_E_IO && nf == 0);
    /* the vit-tiny weights: the same features as the other vit-tiny files */
    check_golden(idx, "vit-tiny.open_clip.pt", "vit", NULL);
    check_golden(dir, "vit-tiny.open_clip.pt", "vit", NULL);
    f = ca_weights_open(idx2, &st);
    CHECK_MSG(!f && st == CA_E_FORMAT && strstr(ca_last_error(), "'not.there'"), "%s", ca_last_error());
    ca_st_close(f);
    unlink(p1); unlink(p2); unlink(idx); unlink(idx2);
    rmdir(dir);
}

/* HF sharded PyTorch bins: vit-tiny-hf.pytorch_model.bin split in two `torch.save` shards
 * (tests/torchwrite.h) plus pytorch_model.bin.index.json and config.json in a folder, given as
 * the index and as the folder: the same features as the unsharded file's golden. */
static void test_sharded_bin(void) {
    char dir[] = "/tmp/ca-torch-binshard-XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0); return; }
    ca_status st;
    ca_st_file *src = ca_weights_open(th_shared(PT "vit-tiny-hf.pytorch_model.bin"), &st);
    CHECK_MSG(src != NULL, "%s", ca_last_error());
    if (!src) { rmdir(dir); return; }
    int n = ca_st_count(src);
    unsigned char *keep[2] = {calloc((size_t)n, 1), calloc((size_t)n, 1)};
    char shard[2][160] = {"", ""}, idx[160], cfg[160];
    snprintf(idx, sizeof idx, "%s/pytorch_model.bin.index.json", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    FILE *j = fopen(idx, "w");
    CHECK(keep[0] && keep[1] && j);
    if (!keep[0] || !keep[1] || !j) goto out;
    fprintf(j, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (int i = 0; i < n; i++) {
        int k = i >= n / 2;
        keep[k][i] = 1;
        fprintf(j, "%s\"%s\": \"pytorch_model-0000%d-of-00002.bin\"", i ? ", " : "", ca_st_at(src, i)->name, k + 1);
    }
    fprintf(j, "}}\n");
    fclose(j);
    for (int k = 0; k < 2; k++) {
        snprintf(shard[k], sizeof shard[k], "%s/pytorch_model-0000%d-of-00002.bin", dir, k + 1);
        CHECK(tw_write(src, keep[k], shard[k], "archive", 0) == 0);
    }
    FILE *ci = fopen(th_shared("testdata/models/vit-tiny-hf.config.json"), "rb"), *co = fopen(cfg, "wb");
    CHECK(ci && co);
    for (int ch; ci && co && (ch = fgetc(ci)) != EOF;) fputc(ch, co);
    if (ci) fclose(ci);
    if (co) fclose(co);
    ca_st_file *f = ca_weights_open(idx, &st);
    CHECK_MSG(f && !strcmp(ca_st_format(f), "pytorch-sharded") && ca_st_count(f) == n, "%s", ca_last_error());
    ca_st_close(f);
    check_golden(idx, "vit-tiny-hf.pytorch_model.bin", "vit", NULL);   /* config.json found beside */
    check_golden(dir, "vit-tiny-hf.pytorch_model.bin", "vit", NULL);
    /* the test can fail: one shard short, the index names a tensor no shard has */
    unlink(shard[1]);
    f = ca_weights_open(idx, &st);
    CHECK_MSG(!f && st == CA_E_IO && strstr(ca_last_error(), "pytorch_model-00002-of-00002.bin"), "%d %s", st, ca_last_error());
    ca_st_close(f);
out:
    ca_st_close(src);
    free(keep[0]);
    free(keep[1]);
    unlink(shard[0]); unlink(shard[1]); unlink(idx); unlink(cfg);
    rmdir(dir);
}

int main(void) {
    ca_status st;
    golden = ca_st_open(th_shared(PT "pytorch-golden.safetensors"), &st);
    if (!golden) {
        fprintf(stderr, "%s\n", ca_last_error());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(test_fixtures_match_goldens);
    RUN(test_formats_and_names);
    RUN(test_hostile_files_refused);
    RUN(test_activation);
    RUN(test_handmade_files);
    RUN(test_nonfinite_weights);
    RUN(test_damaged_copies);
    RUN(test_sharded);
    RUN(test_sharded_bin);
    RUN(test_cli_encode);
    ca_st_close(golden);
    TEST_END();
}
