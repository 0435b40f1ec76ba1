/* cmd_preprocess.c — `clipadapt preprocess`: decode images and write their CLIP-preprocessed
 * tensors (F32 [3,N,N], named BASENAME@N) to one safetensors file. Bad files get one error line
 * each; without --skip-bad any bad file fails the command and nothing is written. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static void help(FILE *fp) {
    fprintf(fp,
            "usage: clipadapt preprocess --size N --output OUT.safetensors [options] IMAGE...\n\n"
            "Resize the shorter side to N (Pillow bicubic), centre-crop N x N, convert to RGB and\n"
            "normalise with CLIP's mean/std, exactly as the reference Python pipeline. Writes one\n"
            "F32 [3,N,N] tensor per image, named BASENAME@N (e.g. photo.jpg@224).\n\n"
            "options:\n"
            "  --size N          output side in pixels (required; e.g. 224 for ViT-B/32)\n"
            "  --output PATH     safetensors file to write (required; written atomically)\n"
            "  --skip-bad        report unreadable images and go on without them (default: fail)\n"
            "  --exif-rotate     apply the EXIF orientation first (default: off, like the reference)\n"
            "  --max-pixels N    refuse images with more pixels (default 178956970)\n"
            "  --threads N       images processed in parallel (default: all cores)\n"
            "  -h, --help        show this help\n");
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int cmd_preprocess(int argc, char **argv) {
    const char *out_path = NULL, *v;
    long size = 0, threads = 0, max_pixels = -1;
    int skip_bad = 0, nfiles = 0;
    ca_image_params ip = ca_image_default_params();
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    if (!files) return cli_error("out of memory");
    int rc = CLI_OK;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(stdout); free(files); return CLI_OK; }
        if (!strcmp(a, "--skip-bad")) { skip_bad = 1; continue; }
        if (!strcmp(a, "--exif-rotate")) { ip.exif_rotate = 1; continue; }
        if (!strcmp(a, "--")) { while (++i < argc) files[nfiles++] = argv[i]; break; }
        if ((r = cli_take(argc, argv, &i, "--size", &v))) {
            if (r < 0 || cli_int(v, &size) || size < 1 || size > 4096) { rc = cli_usage("preprocess", "--size needs an integer in 1..4096"); goto done; }
            continue;
        }
        if ((r = cli_take(argc, argv, &i, "--output", &v))) {
            if (r < 0 || !*v) { rc = cli_usage("preprocess", "--output needs a path"); goto done; }
            out_path = v;
            continue;
        }
        if ((r = cli_take(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || cli_int(v, &threads) || threads < 0 || threads > 1024) { rc = cli_usage("preprocess", "--threads needs an integer in 0..1024"); goto done; }
            continue;
        }
        if ((r = cli_take(argc, argv, &i, "--max-pixels", &v))) {
            if (r < 0 || cli_int(v, &max_pixels) || max_pixels < 1) { rc = cli_usage("preprocess", "--max-pixels needs a positive integer"); goto done; }
            ip.max_pixels = max_pixels;
            continue;
        }
        if (a[0] == '-' && a[1]) { rc = cli_usage("preprocess", "unknown option '%s'", a); goto done; }
        files[nfiles++] = a;
    }
    if (!size) { rc = cli_usage("preprocess", "--size is required"); goto done; }
    if (!out_path) { rc = cli_usage("preprocess", "--output is required"); goto done; }
    if (!nfiles) { rc = cli_usage("preprocess", "no input images"); goto done; }
    /* Tensor names must be unique: two inputs with the same basename cannot both be stored. */
    for (int i = 0; i < nfiles; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(base_name(files[i]), base_name(files[j]))) {
                rc = cli_usage("preprocess", "'%s' and '%s' would both be named '%s@%ld'", files[j], files[i],
                               base_name(files[i]), size);
                goto done;
            }

    {
        cli_file *in = calloc((size_t)nfiles, sizeof *in), out[] = {{"--output", out_path, 0}};
        if (!in) { rc = cli_error("out of memory"); goto done; }
        for (int i = 0; i < nfiles; i++) in[i] = (cli_file){"image", files[i], 0};
        rc = cli_check_outputs(in, nfiles, out, 1);
        free(in);
        if (rc) goto done;
    }
    size_t per = (size_t)3 * (size_t)size * (size_t)size;
    const int chunk = 32; /* images held in memory at once before they go to the writer */
    float *buf = malloc(per * sizeof(float) * chunk);
    int *ok = calloc((size_t)chunk, sizeof *ok);
    char (*msg)[512] = calloc((size_t)chunk, sizeof *msg);
    ca_st_writer *w = ca_st_writer_new();
    if (!buf || !ok || !msg || !w) { free(buf); free(ok); free(msg); ca_st_writer_free(w); rc = cli_error("out of memory"); goto done; }
    int bad = 0, written = 0, nth = (int)threads;
#ifdef _OPENMP
    if (nth <= 0) nth = omp_get_max_threads();
#endif
    if (nth <= 0) nth = 1;
    for (int c0 = 0; c0 < nfiles; c0 += chunk) {
        int cn = nfiles - c0 < chunk ? nfiles - c0 : chunk;
        #pragma omp parallel for schedule(dynamic) num_threads(nth)
        for (int k = 0; k < cn; k++) {
            ca_status st;
            ca_image *img = ca_image_load(files[c0 + k], &ip, &st);
            if (img) st = ca_preprocess(img, (int)size, buf + per * k);
            ok[k] = img && st == CA_OK;
            if (!ok[k]) {
                const char *d = ca_last_error();
                snprintf(msg[k], sizeof msg[k], "%s", d && *d ? d : ca_strerror(st));
            }
            ca_image_free(img);
        }
        for (int k = 0; k < cn; k++) {
            if (!ok[k]) {
                bad++;
                /* library messages name the file; make sure the line does even when one does not */
                if (strstr(msg[k], files[c0 + k])) cli_error("%s", msg[k]);
                else cli_error("%s: %s", files[c0 + k], msg[k]);
                continue;
            }
            if (bad && !skip_bad) continue; /* failing anyway: keep reporting, stop storing */
            char name[1024];
            snprintf(name, sizeof name, "%s@%ld", base_name(files[c0 + k]), size);
            int64_t shape[3] = {3, size, size};
            ca_status st = ca_st_writer_add(w, name, CA_DT_F32, 3, shape, buf + per * k);
            if (st) { bad++; cli_status(st); }
            else written++;
        }
        cli_progress("preprocess", c0 + cn, nfiles, NULL);
    }
    free(buf); free(ok); free(msg);
    if (bad && !skip_bad) {
        rc = cli_error("%d of %d images could not be processed; nothing written (use --skip-bad to skip them)", bad, nfiles);
    } else if (!written) {
        rc = cli_error("no image could be processed; nothing written");
    } else {
        char sz[32];
        snprintf(sz, sizeof sz, "%ld", size);
        ca_st_writer_metadata(w, "transform", "Resize(n, bicubic) CenterCrop(n) RGB ToTensor Normalize(CLIP mean/std)");
        ca_st_writer_metadata(w, "size", sz);
        ca_status st = ca_st_writer_save(w, out_path);
        if (st) rc = cli_status(st);
        else if (bad) fprintf(stderr, "clipadapt preprocess: wrote %d images to %s, skipped %d bad\n", written, out_path, bad);
    }
    ca_st_writer_free(w);
done:
    free(files);
    return rc;
}
