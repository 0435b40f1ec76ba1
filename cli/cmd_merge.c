/* cmd_merge.c — `clipadapt merge`: join the parts written by `--shard I/N` (or MPI ranks) into the
 * file a single process would have written, byte for byte. Prediction parts are text with a
 * "#clipadapt-part I/N KEY" first line and are concatenated in shard order; feature-set parts are
 * safetensors files with the same header (bar the "shard" metadata) whose rows not owned by the
 * part are zero bytes, so each byte of the result is the one non-zero byte among the parts. It
 * does not re-encode anything and checks that the parts are one complete job. */
#include "cli.h"
#include "core/core.h" /* ca_outfile: atomic output */

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *path;
    unsigned char *buf;
    size_t len;
    int idx, n;
    char key[32];
    size_t body;           /* text: bytes of the marker line; safetensors: 8 + header length */
    cJSON *hdr;            /* safetensors header without its "shard" metadata */
} part;

static int read_all(const char *path, part *p) {
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        unsigned char *nb = cap > (SIZE_MAX >> 1) ? NULL : realloc(b, cap * 2);
        if (!nb) { free(b); b = NULL; break; }
        b = nb; cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!b) return cli_error("%s: out of memory reading it", path);
    if (err) { free(b); return cli_error("%s: read failed", path); }
    p->buf = b; p->len = n; p->path = path;
    return CLI_OK;
}

static int parse_shard(const char *s, int *i, int *n) {
    char *e;
    long a = strtol(s, &e, 10);
    if (e == s || *e != '/') return -1;
    const char *s2 = e + 1;
    long b = strtol(s2, &e, 10);
    if (e == s2 || b < 1 || b > 1000000 || a < 0 || a >= b) return -1;
    *i = (int)a; *n = (int)b;
    return (int)(e - s);
}

/* A prediction part: "#clipadapt-part I/N KEY\n" then records. */
static int open_text(part *p) {
    const char *pre = "#clipadapt-part ";
    size_t pl = strlen(pre);
    const unsigned char *nl = memchr(p->buf, '\n', p->len < 256 ? p->len : 256);
    if (p->len < pl || memcmp(p->buf, pre, pl) || !nl) return -1;
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)((const char *)nl - (const char *)p->buf - pl), (const char *)p->buf + pl);
    int used = parse_shard(line, &p->idx, &p->n);
    if (used < 0 || line[used] != ' ' || strlen(line + used + 1) >= sizeof p->key || !line[used + 1]) return -1;
    snprintf(p->key, sizeof p->key, "%s", line + used + 1);
    p->body = (size_t)(nl - p->buf) + 1;
    return 0;
}

/* A feature-set part: safetensors whose metadata has "shard": "I/N". */
static int open_st(part *p) {
    if (p->len < 8) return -1;
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)p->buf[i] << (8 * i);
    if (hl < 2 || hl > p->len - 8 || hl > (100u << 20)) return -1;
    cJSON *h = cJSON_ParseWithLength((const char *)p->buf + 8, (size_t)hl);
    cJSON *md = h ? cJSON_GetObjectItemCaseSensitive(h, "__metadata__") : NULL;
    cJSON *sh = md ? cJSON_GetObjectItemCaseSensitive(md, "shard") : NULL;
    if (!cJSON_IsString(sh) || parse_shard(sh->valuestring, &p->idx, &p->n) != (int)strlen(sh->valuestring)) {
        cJSON_Delete(h);
        return -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(md, "shard");
    p->hdr = h;
    p->body = 8 + (size_t)hl;
    return 0;
}

int cmd_merge(int argc, char **argv) {
    const char *output = NULL;
    int npos = 0;
    const char **pos = calloc((size_t)argc + 1, sizeof(char *));
    if (!pos) return cli_error("out of memory");
    cli_opt t[] = {cli_opt_str("--output", &output, "F|-", "the merged file (required; written atomically)")};
    cli_cmd cmd = {"merge", "PART... --output F",
                   "Join the parts of a job split with --shard I/N (extract or predict) into the file one process\n"
                   "would have written, byte for byte. Parts may be given in any order; all N must be there, once.",
                   NULL, t, 1, NULL};
    int r = cli_parse(&cmd, argc, argv, pos, &npos);
    if (r) { free(pos); return r == CLI_HELP ? CLI_OK : r; }
    if (!output) { free(pos); return cli_usage("merge", "--output is required"); }
    if (npos == 0) { free(pos); return cli_usage("merge", "no parts given"); }
    {
        cli_file *fin = calloc((size_t)npos, sizeof *fin);
        if (!fin) { free(pos); return cli_error("out of memory"); }
        for (int i = 0; i < npos; i++) fin[i] = (cli_file){"part", pos[i], 0};
        cli_file fout[] = {{"--output", output, 0}};
        r = cli_check_outputs(fin, npos, fout, 1);
        free(fin);
        if (r) { free(pos); return r; }
    }
    part *p = calloc((size_t)npos, sizeof *p);
    part **order = calloc((size_t)npos, sizeof *order);
    unsigned char *outb = NULL;
    int rc = CLI_FAIL, kind = -1;   /* 0 text, 1 safetensors */
    if (!p || !order) { rc = cli_error("out of memory"); goto out; }
    for (int i = 0; i < npos; i++) {
        if ((rc = read_all(pos[i], &p[i])) != CLI_OK) goto out;
        rc = CLI_FAIL;
        int k = open_text(&p[i]) == 0 ? 0 : open_st(&p[i]) == 0 ? 1 : -1;
        if (k < 0) { rc = cli_error("%s: not a part written with --shard I/N (no part marker)", pos[i]); goto out; }
        if (kind >= 0 && k != kind) { rc = cli_error("%s: a %s part among %s parts", pos[i], k ? "feature-set" : "prediction", kind ? "feature-set" : "prediction"); goto out; }
        kind = k;
        if (p[i].n != npos) { rc = cli_error("%s: is part %d of %d, but %d parts were given", pos[i], p[i].idx, p[i].n, npos); goto out; }
        if (order[p[i].idx]) { rc = cli_error("%s: part %d/%d given twice (also %s)", pos[i], p[i].idx, p[i].n, order[p[i].idx]->path); goto out; }
        order[p[i].idx] = &p[i];
        if (k == 0 && strcmp(p[i].key, p[0].key)) {
            rc = cli_error("%s: belongs to another job than %s (other inputs, model, classifier or options)", pos[i], pos[0]);
            goto out;
        }
        if (k == 1 && (!cJSON_Compare(p[i].hdr, p[0].hdr, 1) || p[i].len - p[i].body != p[0].len - p[0].body)) {
            rc = cli_error("%s: belongs to another job than %s (its tensors or metadata differ)", pos[i], pos[0]);
            goto out;
        }
    }
    ca_outfile of;
    ca_status st = ca_outfile_open(&of, output);
    if (st != CA_OK) { rc = cli_status(st); goto out; }
    if (kind == 0) {
        for (int i = 0; st == CA_OK && i < npos; i++) st = ca_outfile_write(&of, order[i]->buf + order[i]->body, order[i]->len - order[i]->body);
    } else {
        char *js = cJSON_PrintUnformatted(p[0].hdr);
        size_t jl = js ? strlen(js) : 0, padded = (jl + 7) / 8 * 8, dl = p[0].len - p[0].body;
        outb = js ? calloc(dl + 1, 1) : NULL;
        if (!outb) { free(js); ca_outfile_abort(&of); rc = cli_error("out of memory"); goto out; }
        for (int i = 0; i < npos; i++) {
            const unsigned char *d = p[i].buf + p[i].body;
            for (size_t b = 0; b < dl; b++) {
                if (!d[b]) continue;
                if (outb[b] && outb[b] != d[b]) {
                    free(js); ca_outfile_abort(&of);
                    rc = cli_error("%s: its data overlaps another part's at byte %zu (parts of different runs?)", p[i].path, b);
                    goto out;
                }
                outb[b] = d[b];
            }
        }
        unsigned char len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
        st = ca_outfile_write(&of, len8, 8);
        if (st == CA_OK) st = ca_outfile_write(&of, js, jl);
        if (st == CA_OK) st = ca_outfile_write(&of, "        ", padded - jl);
        if (st == CA_OK) st = ca_outfile_write(&of, outb, dl);
        free(js);
    }
    if (st != CA_OK) { ca_outfile_abort(&of); rc = cli_status(st); goto out; }
    if ((st = ca_outfile_commit(&of)) != CA_OK) { rc = cli_status(st); goto out; }
    rc = CLI_OK;
out:
    for (int i = 0; p && i < npos; i++) { free(p[i].buf); cJSON_Delete(p[i].hdr); }
    free(p); free(order); free(outb); free(pos);
    return rc;
}
