/* opts.c — the one option table of the clipadapt program. Every command describes its flags as
 * cli_opt rows (most taken from the shared rows below, so the same thing has the same flag and
 * help everywhere); cli_parse reads argv against them and cli_help prints --help from them.
 * Not here: what a command does with the values. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const OPTIMIZERS[] = {"default", "sgd", "adamw", NULL};
static const char *const RATIO_MODES[] = {"fixed", "search", "learn", NULL};
static const char *const COVARIANCES[] = {"tuned", "ks", NULL};   /* CA_COV_TUNED, CA_COV_KS */

/* ---- shared rows ---- */

cli_opt cli_opt_str(const char *name, const char **dst, const char *metavar, const char *help) {
    return (cli_opt){.name = name, .kind = CLI_STR, .dst = dst, .metavar = metavar, .help = help};
}
cli_opt cli_opt_flag(const char *name, int *dst, const char *help) {
    return (cli_opt){.name = name, .kind = CLI_FLAG, .dst = dst, .help = help};
}
cli_opt cli_opt_int(const char *name, int *dst, double lo, double hi, const char *metavar, const char *help) {
    return (cli_opt){.name = name, .kind = CLI_INT, .dst = dst, .lo = lo, .hi = hi, .metavar = metavar, .help = help};
}
cli_opt cli_opt_dbl(const char *name, double *dst, double lo, double hi, const char *metavar, const char *help) {
    return (cli_opt){.name = name, .kind = CLI_DBL, .dst = dst, .lo = lo, .hi = hi, .metavar = metavar, .help = help};
}

int cli_opts_training(cli_opt *t, ca_fit_params *p) {
    int n = 0;
    t[n++] = (cli_opt){.name = "--seed", .kind = CLI_U64, .dst = &p->seed, .lo = 0, .hi = 9007199254740992.0, .metavar = "N",
                       .help = "seed of every random choice (default 1)", .section = "training and search"};
    t[n++] = (cli_opt){.name = "--search-scale", .kind = CLI_PAIR_DBL, .dst = &p->search_scale_beta, .dst2 = &p->search_scale_alpha,
                       .lo = 1e-9, .hi = 1e9, .metavar = "SB,SA", .help = "Tip-Adapter search grid scales for beta, alpha (default 20,10)"};
    t[n++] = (cli_opt){.name = "--search-steps", .kind = CLI_PAIR_INT, .dst = &p->search_steps_beta, .dst2 = &p->search_steps_alpha,
                       .lo = 1, .hi = 100000, .metavar = "NB,NA", .help = "Tip-Adapter search grid steps for beta, alpha (default 200,20)"};
    t[n++] = (cli_opt){.name = "--init-alpha", .alias = "--alpha", .kind = CLI_DBL, .dst = &p->init_alpha, .lo = -1e9, .hi = 1e9,
                       .metavar = "A", .help = "Tip-Adapter-F training alpha (default 1)"};
    t[n++] = (cli_opt){.name = "--init-beta", .alias = "--beta", .kind = CLI_DBL, .dst = &p->init_beta, .lo = 0, .hi = 1000,
                       .metavar = "B", .help = "Tip-Adapter-F training beta (default 1)"};
    t[n++] = cli_opt_int("--epochs", &p->epochs, 1, 100000, "N", "training epochs (default: the method's; Tip-Adapter-F 20, CLIP-Adapter 200)");
    t[n++] = cli_opt_int("--batch", &p->batch, 1, 1000000, "N", "training batch size (default: the method's; 256, 32)");
    t[n++] = cli_opt_dbl("--lr", &p->lr, 1e-300, 1e300, "X", "learning rate (default: the method's; 1e-3, AdamW 1e-3, SGD 0.02)");
    t[n++] = cli_opt_dbl("--weight-decay", &p->weight_decay, 0, 1e9, "X", "weight decay (default: the method's; 0.01)");
    t[n++] = cli_opt_int("--reduction", &p->reduction, 1, 65536, "R", "CLIP-Adapter bottleneck D/R (default 4)");
    t[n++] = cli_opt_dbl("--ratio", &p->ratio, 0, 1, "X", "CLIP-Adapter residual ratio (default 0.2)");
    t[n++] = (cli_opt){.name = "--ratio-mode", .kind = CLI_ENUM, .dst = &p->ratio_mode, .choices = RATIO_MODES, .metavar = "M",
                       .help = "CLIP-Adapter ratio: fixed, searched on val, or a learnt gate (default fixed)"};
    t[n++] = (cli_opt){.name = "--optimizer", .kind = CLI_ENUM, .dst = &p->optimizer, .choices = OPTIMIZERS, .metavar = "O",
                       .help = "optimiser (default: the method's, AdamW)"};
    t[n++] = (cli_opt){.name = "--covariance", .kind = CLI_ENUM, .dst = &p->covariance, .choices = COVARIANCES, .metavar = "E",
                       .help = "gda, gda-zs covariance: tuned (shrinkage chosen on val) or ks (the ICLR 2024 estimator) (default tuned)"};
    t[n++] = cli_opt_int("--warmup-epochs", &p->warmup_epochs, 0, 100000, "N", "learning-rate warm-up epochs (default: the method's)");
    t[n++] = cli_opt_int("--threads", &p->threads, 0, 4096, "N", "threads (default: all cores)");
    return n;
}

/* ---- parsing ---- */

static int matches(const cli_opt *o, const char *a, const char **val) {
    const char *names[2] = {o->name, o->alias};
    for (int k = 0; k < 2; k++) {
        if (!names[k]) continue;
        size_t n = strlen(names[k]);
        if (strncmp(a, names[k], n) != 0) continue;
        if (a[n] == 0) { *val = NULL; return 1; }
        if (a[n] == '=' && o->kind != CLI_FLAG) { *val = a + n + 1; return 1; }
    }
    return 0;
}

static int pair(const char *s, double *a, double *b) {
    char buf[128];
    const char *comma = strchr(s, ',');
    if (!comma || (size_t)(comma - s) >= sizeof buf) return -1;
    memcpy(buf, s, (size_t)(comma - s));
    buf[comma - s] = 0;
    return cli_double(buf, a) || cli_double(comma + 1, b) ? -1 : 0;
}

static int set_value(const char *cmd, const cli_opt *o, const char *v) {
    long l;
    double d, d2;
    switch (o->kind) {
    case CLI_STR:
        if (!*v) return cli_usage(cmd, "%s needs a non-empty %s", o->name, o->metavar ? o->metavar : "value");
        *(const char **)o->dst = v;
        return CLI_OK;
    case CLI_INT: case CLI_U64:
        if (cli_int(v, &l) || l < o->lo || l > o->hi)
            return cli_usage(cmd, "%s wants an integer in [%.0f, %.0f], got '%s'", o->name, o->lo, o->hi, v);
        if (o->kind == CLI_INT) *(int *)o->dst = (int)l;
        else *(uint64_t *)o->dst = (uint64_t)l;
        return CLI_OK;
    case CLI_DBL:
        if (cli_double(v, &d) || d < o->lo || d > o->hi)
            return cli_usage(cmd, "%s wants a number in [%g, %g], got '%s'", o->name, o->lo, o->hi, v);
        *(double *)o->dst = d;
        return CLI_OK;
    case CLI_PAIR_DBL: case CLI_PAIR_INT:
        if (pair(v, &d, &d2) || d < o->lo || d > o->hi || d2 < o->lo || d2 > o->hi ||
            (o->kind == CLI_PAIR_INT && (d != (int)d || d2 != (int)d2)))
            return cli_usage(cmd, "%s wants %s (%s in [%g, %g]), got '%s'", o->name, o->metavar,
                             o->kind == CLI_PAIR_INT ? "integers" : "numbers", o->lo, o->hi, v);
        if (o->kind == CLI_PAIR_DBL) { *(double *)o->dst = d; *(double *)o->dst2 = d2; }
        else { *(int *)o->dst = (int)d; *(int *)o->dst2 = (int)d2; }
        return CLI_OK;
    case CLI_ENUM:
        for (int k = 0; o->choices[k]; k++)
            if (!strcmp(o->choices[k], v)) { *(int *)o->dst = k; return CLI_OK; }
        {
            char list[256] = "";
            for (int k = 0; o->choices[k]; k++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", o->choices[k]);
            return cli_usage(cmd, "%s wants one of %s, got '%s'", o->name, list, v);
        }
    case CLI_FN:
        return o->fn(cmd, v, o->dst) ? CLI_USAGE : CLI_OK;
    default:
        return CLI_OK;
    }
}

int cli_parse(const cli_cmd *c, int argc, char **argv, const char **pos, int *npos) {
    int np = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { cli_help(c, stdout); return CLI_HELP; }
        if (!strcmp(a, "--") && pos) { while (++i < argc) pos[np++] = argv[i]; break; }
        const cli_opt *o = NULL;
        for (int k = 0; k < c->nopts && !o; k++)
            if (matches(&c->opts[k], a, &v)) o = &c->opts[k];
        if (!o && c->short_v && !strcmp(a, "-v")) { *c->short_v = 1; continue; }
        if (!o) {
            if (a[0] == '-' && a[1]) return cli_usage(c->name, "unknown option '%s'", a);
            if (!pos) return cli_usage(c->name, "unexpected argument '%s'", a);
            pos[np++] = a;
            continue;
        }
        if (o->kind == CLI_FLAG) { *(int *)o->dst = 1; continue; }
        if (!v) {
            if (i + 1 >= argc) return cli_usage(c->name, "%s needs a value (%s)", o->name, o->metavar ? o->metavar : "VALUE");
            v = argv[++i];
        }
        int r = set_value(c->name, o, v);
        if (r) return r;
    }
    if (npos) *npos = np;
    return CLI_OK;
}

void cli_help(const cli_cmd *c, FILE *fp) {
    fprintf(fp, "usage: clipadapt %s %s\n\n%s\n", c->name, c->usage, c->about);
    for (int k = 0; k < c->nopts; k++) {
        const cli_opt *o = &c->opts[k];
        if (o->section) fprintf(fp, "\n%s:\n", o->section);
        else if (k == 0) fputc('\n', fp);
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->kind == CLI_FLAG ? "" : " ", o->kind == CLI_FLAG ? "" : o->metavar ? o->metavar : "VALUE");
        char text[1024];
        snprintf(text, sizeof text, "%s", o->help);
        if (o->kind == CLI_ENUM) {
            snprintf(text + strlen(text), sizeof text - strlen(text), " [");
            for (int j = 0; o->choices[j]; j++) snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s", j ? "|" : "", o->choices[j]);
            snprintf(text + strlen(text), sizeof text - strlen(text), "]");
        }
        if (o->alias) snprintf(text + strlen(text), sizeof text - strlen(text), " (also %s)", o->alias);
        /* wrap at 100 columns under the help column */
        fprintf(fp, "  %-24s", left);
        int col = 27;
        if ((int)strlen(left) > 24) { fprintf(fp, "\n%26s", ""); }
        for (char *save = NULL, *w = strtok_r(text, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
            int wl = (int)strlen(w);
            if (col > 27 && col + 1 + wl > 100) { fprintf(fp, "\n%26s", ""); col = 27; }
            fprintf(fp, " %s", w);
            col += 1 + wl;
        }
        fputc('\n', fp);
    }
    if (c->footer) fprintf(fp, "\n%s", c->footer);
}
