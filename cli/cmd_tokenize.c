/* cmd_tokenize.c — `clipadapt tokenize`: CLIP BPE ids of each stdin line as a JSON array, or
 * the padded model-input row with --context. Output is written only once every line succeeded. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *p; size_t n, cap; } strbuf;

static int sb_add(strbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n + 1) nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) return -1;
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

static int sb_ids(strbuf *b, const int64_t *ids, int n) {
    char num[32];
    if (sb_add(b, "[", 1)) return -1;
    for (int i = 0; i < n; i++) {
        int k = snprintf(num, sizeof num, i ? ", %lld" : "%lld", (long long)ids[i]);
        if (sb_add(b, num, (size_t)k)) return -1;
    }
    return sb_add(b, "]\n", 2);
}

int cmd_tokenize(int argc, char **argv) {
    const char *bpe = NULL, *vocab = NULL, *merges = NULL;
    int context = 0, truncate = 0;
    cli_opt t[] = {
        cli_opt_int("--context", &context, 2, 1000000, "N", "print the padded row of N ids (CLIP uses 77)"),
        cli_opt_flag("--truncate", &truncate, "with --context: cut a too-long line (its last id becomes the end token) instead of failing"),
        cli_opt_str("--bpe", &bpe, "PATH", "CLIP vocabulary (bpe_simple_vocab_16e6.txt.gz, gzip or plain text); default: $CLIPADAPT_BPE"),
        cli_opt_str("--vocab", &vocab, "PATH", "Hugging Face vocab.json (with --merges, instead of --bpe)"),
        cli_opt_str("--merges", &merges, "PATH", "Hugging Face merges.txt"),
    };
    cli_cmd cmd = {"tokenize", "[--context N] [--truncate] [--bpe PATH | --vocab vocab.json --merges merges.txt]",
                   "Reads UTF-8 text from stdin, one item per line, and prints one JSON array of token ids per\n"
                   "line: the BPE ids alone (no start/end tokens), or with --context N the full model input\n"
                   "[49406, ids..., 49407, 0, ...] of exactly N ids. Cleaning, pre-tokenisation and BPE are those\n"
                   "of the reference CLIP tokenizer.",
                   "exit status: 0 ok, 1 bad input (invalid UTF-8, line too long, unreadable vocabulary), 2 usage\n",
                   t, (int)(sizeof t / sizeof t[0]), NULL};
    int r = cli_parse(&cmd, argc, argv, NULL, NULL);
    if (r) return r == CLI_HELP ? CLI_OK : r;
    if (truncate && !context) return cli_usage("tokenize", "--truncate needs --context");
    if (!vocab != !merges) return cli_usage("tokenize", "--vocab and --merges go together");
    if (vocab && bpe) return cli_usage("tokenize", "give either --bpe or --vocab/--merges, not both");

    ca_status st;
    ca_tokenizer *tok;
    if (vocab) {
        tok = ca_tokenizer_load_hf(vocab, merges, &st);
    } else {
        if (!bpe) bpe = getenv("CLIPADAPT_BPE");
        if (!bpe || !*bpe)
            return cli_error("tokenize: no vocabulary: pass --bpe PATH (bpe_simple_vocab_16e6.txt.gz) or set CLIPADAPT_BPE");
        tok = ca_tokenizer_load(bpe, &st);
    }
    if (!tok) return cli_status(st);

    strbuf out = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = CLI_OK;
    int64_t *row = context ? malloc(sizeof *row * (size_t)context) : NULL;
    int64_t *ids64 = NULL;
    int32_t *ids = NULL;
    int ids_cap = 0;
    if (context && !row) { rc = cli_error("tokenize: out of memory"); goto done; }
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n') len--;
        if (context) {
            st = ca_tokenize_row(tok, line, (size_t)len, (int)context, truncate, row, NULL);
            if (st != CA_OK) { rc = cli_error("stdin line %ld: %s", lineno, ca_last_error()); goto done; }
            if (sb_ids(&out, row, (int)context)) { rc = cli_error("tokenize: out of memory"); goto done; }
            continue;
        }
        int n = ca_tokenize_n(tok, line, (size_t)len, ids, ids_cap, &st);
        if (n > ids_cap) {  /* the first call counted them; size the buffers and run again */
            int32_t *ni = realloc(ids, sizeof *ids * (size_t)n);
            int64_t *n64 = realloc(ids64, sizeof *ids64 * (size_t)n);
            if (ni) ids = ni;
            if (n64) ids64 = n64;
            if (!ni || !n64) { rc = cli_error("tokenize: out of memory"); goto done; }
            ids_cap = n;
            n = ca_tokenize_n(tok, line, (size_t)len, ids, ids_cap, &st);
        }
        if (n < 0) { rc = cli_error("stdin line %ld: %s", lineno, ca_last_error()); goto done; }
        for (int k = 0; k < n; k++) ids64[k] = ids[k];
        if (sb_ids(&out, ids64, n)) { rc = cli_error("tokenize: out of memory"); goto done; }
    }
    if (ferror(stdin)) { rc = cli_error("tokenize: error reading stdin"); goto done; }
    if (out.n && fwrite(out.p, 1, out.n, stdout) != out.n) rc = cli_error("tokenize: error writing stdout");
    if (fflush(stdout)) rc = cli_error("tokenize: error writing stdout");
done:
    free(out.p); free(line); free(row); free(ids); free(ids64);
    ca_tokenizer_free(tok);
    return rc;
}
