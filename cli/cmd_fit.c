/* cmd_fit.c — `clipadapt fit`: fit one few-shot method on a feature set and save the classifier. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static void help(void) {
    printf("usage: clipadapt fit --features F --method M --shots K --output CLF.safetensors [options]\n"
           "\n"
           "Fit a few-shot method on split train.{K}shot of a feature set (val for its search, text.weights\n"
           "when the method needs them) and save the classifier (method, hyper-parameters, tensors, class\n"
           "names) as safetensors for `clipadapt predict` and `clipadapt eval`.\n"
           "\n"
           "  --features F      feature set (from `clipadapt extract`, or ../shared/features)\n"
           "  --method M        method name (see below; --list prints them one per line)\n"
           "  --shots K         which train.{K}shot split (default: the largest in the file)\n"
           "  --output F        classifier file, written atomically\n"
           "  --seed N          seed of all randomness (default 1)\n"
           "  --epochs N        training epochs (default: the method's)\n"
           "  --batch N         training batch size (default: the method's)\n"
           "  --lr X            learning rate (default: the method's)\n"
           "  --weight-decay X  weight decay (default: the method's)\n"
           "  --alpha X, --beta X  Tip-Adapter-F initial alpha/beta (default 1, 1)\n"
           "  --reduction N     CLIP-Adapter bottleneck ratio (default 4)\n"
           "  --ratio X         CLIP-Adapter residual ratio (default 0.2)\n"
           "  --threads N       threads (default: all)\n"
           "  --covariance E    gda, gda-zs covariance: ks (ICLR 2024 estimator) or tuned (default tuned)\n"
           "\nmethods:\n");
    for (const char *const *m = ca_method_names(); *m; m++) printf("  %-22s %s\n", *m, ca_method_help(*m));
}

int cmd_fit(int argc, char **argv) {
    const char *features = NULL, *method = NULL, *output = NULL;
    long shots = 0;
    ca_fit_params p = ca_fit_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        long n;
        double d;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(); return CLI_OK; }
        if (!strcmp(a, "--list")) {
            for (const char *const *m = ca_method_names(); *m; m++) printf("%s\n", *m);
            return CLI_OK;
        }
        if ((r = cli_take(argc, argv, &i, "--features", &v)) != 0) { if (r < 0) return cli_usage("fit", "--features needs a file"); features = v; continue; }
        if ((r = cli_take(argc, argv, &i, "--method", &v)) != 0) { if (r < 0) return cli_usage("fit", "--method needs a name"); method = v; continue; }
        if ((r = cli_take(argc, argv, &i, "--covariance", &v)) != 0) {
            if (r < 0 || (strcmp(v, "ks") && strcmp(v, "tuned"))) return cli_usage("fit", "--covariance wants ks or tuned");
            p.covariance = strcmp(v, "ks") ? CA_COV_TUNED : CA_COV_KS;
            continue;
        }
        if ((r = cli_take(argc, argv, &i, "--output", &v)) != 0) { if (r < 0) return cli_usage("fit", "--output needs a file"); output = v; continue; }
#define INT(flag, dst, lo) if ((r = cli_take(argc, argv, &i, flag, &v)) != 0) { \
            if (r < 0 || cli_int(v, &n) || n < (lo) || n > 1000000000) return cli_usage("fit", "%s needs an integer >= %d", flag, (int)(lo)); \
            dst = n; continue; }
#define DBL(flag, dst, lo) if ((r = cli_take(argc, argv, &i, flag, &v)) != 0) { \
            if (r < 0 || cli_double(v, &d) || d < (lo)) return cli_usage("fit", "%s needs a number >= %g", flag, (double)(lo)); \
            dst = d; continue; }
        INT("--shots", shots, 1) INT("--seed", p.seed, 0) INT("--epochs", p.epochs, 1) INT("--batch", p.batch, 1)
        INT("--reduction", p.reduction, 1) INT("--threads", p.threads, 1)
        DBL("--lr", p.lr, 0) DBL("--weight-decay", p.weight_decay, 0) DBL("--alpha", p.init_alpha, 0)
        DBL("--beta", p.init_beta, 0) DBL("--ratio", p.ratio, 0)
#undef INT
#undef DBL
        return cli_usage("fit", "unknown option '%s'", a);
    }
    if (!features || !method || !output) return cli_usage("fit", "--features, --method and --output are required");
    if (ca_method_needs_text(method) < 0) return cli_usage("fit", "unknown method '%s' (clipadapt fit --list)", method);
    ca_status st;
    ca_featureset *fs = ca_features_load(features, &st);
    if (!fs) return cli_status(st);
    if (shots == 0) {
        int ks[64];
        int nk = ca_features_shots(fs, ks, 64);
        shots = nk > 0 ? ks[nk < 64 ? nk - 1 : 63] : 1;
    }
    p.progress = cli_progress;
    ca_classifier *c = ca_fit_features(method, fs, (int)shots, &p, &st);
    int rc = CLI_OK;
    if (!c) rc = cli_status(st);
    else if ((st = ca_classifier_save(c, output, NULL)) != CA_OK) rc = cli_status(st);
    else {
        printf("fitted %s on train.%ldshot (%d classes, %d-d) -> %s\n", method, shots, ca_classifier_num_classes(c),
               ca_classifier_dim(c), output);
        for (int i = 0; i < ca_classifier_param_count(c); i++) {
            const char *nm = ca_classifier_param_name(c, i);
            printf("  %-14s %g\n", nm, ca_classifier_param(c, nm, 0));
        }
    }
    ca_classifier_free(c);
    ca_features_free(fs);
    return rc;
}
