/* cmd_fit.c — `clipadapt fit`: fit one few-shot method on a feature set and save the classifier. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_fit(int argc, char **argv) {
    const char *features = NULL, *method = NULL, *output = NULL;
    int shots = 0, list = 0, quiet = 0;
    ca_fit_params p = ca_fit_default_params();
    cli_opt t[32];
    int n = 0;
    t[n++] = cli_opt_str("--features", &features, "FILE", "feature set from `clipadapt extract` (required)");
    t[n++] = cli_opt_str("--method", &method, "NAME", "method to fit (required; see below or --list)");
    t[n++] = cli_opt_int("--shots", &shots, 1, 1000000, "K", "fit on train.{K}shot (default: the largest K in the set)");
    t[n++] = cli_opt_str("--output", &output, "FILE", "classifier to write (required; atomically; '-' = stdout)");
    t[n++] = cli_opt_flag("--list", &list, "print the method names, one per line, and exit");
    t[n++] = cli_opt_flag("--quiet", &quiet, "no progress output");
    n += cli_opts_training(t + n, &p);
    char footer[4096] = "methods:\n";
    for (const char *const *m = ca_method_names(); *m; m++)
        snprintf(footer + strlen(footer), sizeof footer - strlen(footer), "  %-22s %s\n", *m, ca_method_help(*m));
    cli_cmd cmd = {"fit", "--features F --method M --output CLF [options]",
                   "Fit a few-shot method on train.{K}shot of a feature set (hyper-parameters and epochs chosen\n"
                   "on val only) and save the classifier: method, options, tensors, class names.",
                   footer, t, n, NULL};
    int r = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (r) return r == CLI_HELP ? CLI_OK : r;
    if (list) {
        for (const char *const *m = ca_method_names(); *m; m++) printf("%s\n", *m);
        return CLI_OK;
    }
    if (!features || !method || !output) return cli_usage("fit", "--features, --method and --output are required");
    if (ca_method_needs_text(method) < 0) return cli_usage("fit", "unknown method '%s' (clipadapt fit --list)", method);
    cli_file in[] = {{"--features", features, 0}}, out[] = {{"--output", output, 0}};
    int rc0 = cli_check_outputs(in, 1, out, 1);
    if (rc0) return rc0;
    ca_status st;
    ca_featureset *fs = ca_features_load(features, &st);
    if (!fs) return cli_status(st);
    if (shots == 0) {
        int ks[64];
        int nk = ca_features_shots(fs, ks, 64);
        shots = nk > 0 ? ks[nk < 64 ? nk - 1 : 63] : 1;
    }
    if (!quiet) p.progress = cli_progress;
    ca_classifier *c = ca_fit_features(method, fs, shots, &p, &st);
    int rc = CLI_OK;
    if (!c) rc = cli_status_file(st, features);
    else if ((st = ca_classifier_save(c, output, NULL)) != CA_OK) rc = cli_status(st);
    else {
        /* the report goes to stderr when the classifier itself goes to stdout */
        FILE *rep = strcmp(output, "-") ? stdout : stderr;
        fprintf(rep, "fitted %s on train.%dshot (%d classes, %d-d) -> %s\n", method, shots, ca_classifier_num_classes(c),
                ca_classifier_dim(c), output);
        for (int i = 0; i < ca_classifier_param_count(c); i++) {
            const char *nm = ca_classifier_param_name(c, i);
            double v = ca_classifier_param(c, nm, 0);
            const char *vn = ca_fit_param_value_name(nm, v);
            if (vn) fprintf(rep, "  %-14s %s\n", nm, vn);
            else fprintf(rep, "  %-14s %g\n", nm, v);
        }
    }
    ca_classifier_free(c);
    ca_features_free(fs);
    return rc;
}
