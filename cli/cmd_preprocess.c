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

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int set_max_pixels(const char *cmd, const char *v, void *dst) {
    long n;
    if (cli_int(v, &n) || n < 1) { cli_usage(cmd, "--max-pixels needs a positive integer"); return -1; }
    ((ca_image_params *)dst)->max_pixels = n;
    return 0;
}

int cmd_preprocess(int argc, char **argv) {
    const char *out_path = NULL;
    int size = 0, threads = 0, skip_bad = 0, nfiles = 0;
    ca_image_params ip = ca_image_default_params();
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    if (!files) return cli_error("out of memory");
    int rc = CLI_OK;
    cli_opt t[] = {
        cli_opt_int("--size", &size, 1, 4096, "N", "output side in pixels (required; e.g. 224 for ViT-B/32)"),
        cli_opt_str("--output", &out_path, "PATH", "safetensors file to write (required; written atomically; '-' = stdout)"),
        cli_opt_flag("--skip-bad", &skip_bad, "report unreadable images and go on without them (default: fail)"),
        cli_opt_flag("--exif-rotate", &ip.exif_rotate, "apply the EXIF orientation first (default: off, like the reference)"),
        {.name = "--max-pixels", .kind = CLI_FN, .fn = set_max_pixels, .dst = &ip, .metavar = "N",
         .help = "refuse images with more pixels (default 178956970)"},
        cli_opt_int("--threads", &threads, 0, 1024, "N", "images processed in parallel (default: all cores)"),
    };
    cli_cmd cmd = {"preprocess", "--size N --output OUT.safetensors [options] IMAGE...",
                   "Resize the shorter side to N (Pillow bicubic), centre-crop N x N, convert to RGB and\n"
                   "normalise with CLIP's mean/std, exactly as the reference Python pipeline. Writes one\n"
                   "F32 [3,N,N] tensor per image, named BASENAME@N (e.g. photo.jpg@224).",
                   NULL, t, (int)(sizeof t / sizeof t[0]), NULL};
    {
        int r = cli_parse(&cmd, argc, argv, files, &nfiles);
        if (r) { free(files); return r == CLI_HELP ? CLI_OK : r; }
    }
    if (!size) { rc = cli_usage("preprocess", "--size is required"); goto done; }
    if (!out_path) { rc = cli_usage("preprocess", "--output is required"); goto done; }
    if (!nfiles) { rc = cli_usage("preprocess", "no input images"); goto done; }
    /* Tensor names must be unique: two inputs with the same basename cannot both be stored. */
    for (int i = 0; i < nfiles; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(base_name(files[i]), base_name(files[j]))) {
                rc = cli_usage("preprocess", "'%s' and '%s' would both be named '%s@%d'", files[j], files[i],
                               base_name(files[i]), size);
                goto done;
            }

    {
        cli_file *in = calloc((size_t)(nfiles > 0 ? nfiles : 1), sizeof *in), out[] = {{"--output", out_path, 0}};
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
            snprintf(name, sizeof name, "%s@%d", base_name(files[c0 + k]), size);
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
        snprintf(sz, sizeof sz, "%d", size);
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
