/* confusion.c — the evaluation report of a classifier on labelled rows: top-1 and top-k
 * accuracy, per-class accuracy and the confusion matrix, written as CSV or as an SVG heatmap.
 * It scores logits only; computing them (ca_classifier_logits) and choosing files is the
 * caller's. */
#include "eval/sbuf.h"

#include <math.h>

void ca_eval_report_free(ca_eval_report *r) {
    if (!r) return;
    free(r->confusion); free(r->class_count); free(r->class_acc);
    memset(r, 0, sizeof *r);
}

ca_status ca_eval_logits(const float *logits, const int32_t *labels, int n, int C, int k, ca_eval_report *out) {
    CA_ENTER();
    if (!out) return ca_fail(CA_E_ARG, "ca_eval_logits: NULL report");
    memset(out, 0, sizeof *out);
    if (!logits || !labels || n < 1 || C < 1 || k < 1) return ca_fail(CA_E_ARG, "ca_eval_logits: bad arguments (n %d, C %d, k %d)", n, C, k);
    if (k > C) k = C;
    out->n = n; out->num_classes = C; out->k = k;
    out->confusion = ca_malloc2((size_t)C * (size_t)C, sizeof(int64_t));
    out->class_count = ca_malloc2((size_t)C, sizeof(int));
    out->class_acc = ca_malloc2((size_t)C, sizeof(double));
    int *top = ca_malloc2((size_t)k, sizeof(int));
    if (!out->confusion || !out->class_count || !out->class_acc || !top) {
        free(top);
        ca_eval_report_free(out);
        return ca_fail(CA_E_NOMEM, "evaluation report: out of memory (%d classes)", C);
    }
    memset(out->confusion, 0, sizeof(int64_t) * (size_t)C * C);
    memset(out->class_count, 0, sizeof(int) * (size_t)C);
    int64_t hit1 = 0, hitk = 0;
    for (int i = 0; i < n; i++) {
        int y = labels[i];
        if (y < 0 || y >= C) {
            free(top);
            ca_eval_report_free(out);
            return ca_fail(CA_E_ARG, "evaluation report: label %d of row %d is not a class index in [0, %d)", y, i, C);
        }
        /* top-1 as ca_accuracy: the first maximum (ca_top_k breaks ties the same way) */
        ca_top_k(logits + (size_t)i * C, C, k, top);
        out->confusion[(size_t)y * C + top[0]]++;
        out->class_count[y]++;
        hit1 += top[0] == y;
        for (int j = 0; j < k; j++) if (top[j] == y) { hitk++; break; }
    }
    free(top);
    out->top1 = 100.0 * (double)hit1 / n;
    out->topk = 100.0 * (double)hitk / n;
    for (int c = 0; c < C; c++)
        out->class_acc[c] = out->class_count[c] ? 100.0 * (double)out->confusion[(size_t)c * C + c] / out->class_count[c] : NAN;
    return CA_OK;
}

/* A CSV field: quoted when it holds a comma, quote or line break (RFC 4180). */
static void csv_field(ca_sbuf *b, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) { ca_sbuf_printf(b, "%s", s); return; }
    ca_sbuf_printf(b, "\"");
    for (; *s; s++) {
        if (*s == '"') ca_sbuf_printf(b, "\"\"");
        else ca_sbuf_printf(b, "%c", *s);
    }
    ca_sbuf_printf(b, "\"");
}

static const char *name_of(const char *const *names, int c, char *buf, size_t n) {
    if (names && names[c]) return names[c];
    snprintf(buf, n, "class %d", c);
    return buf;
}

char *ca_confusion_csv(const ca_eval_report *r, const char *const *class_names) {
    CA_ENTER();
    if (!r || !r->confusion) { ca_fail(CA_E_ARG, "ca_confusion_csv: no report"); return NULL; }
    int C = r->num_classes;
    char nb[32];
    ca_sbuf b = {0};
    ca_sbuf_printf(&b, "true\\predicted");
    for (int c = 0; c < C; c++) { ca_sbuf_printf(&b, ","); csv_field(&b, name_of(class_names, c, nb, sizeof nb)); }
    ca_sbuf_printf(&b, ",n,accuracy\n");
    for (int t = 0; t < C; t++) {
        csv_field(&b, name_of(class_names, t, nb, sizeof nb));
        for (int p = 0; p < C; p++) ca_sbuf_printf(&b, ",%lld", (long long)r->confusion[(size_t)t * C + p]);
        if (r->class_count[t]) ca_sbuf_printf(&b, ",%d,%.4f\n", r->class_count[t], r->class_acc[t]);
        else ca_sbuf_printf(&b, ",0,\n");
    }
    return ca_sbuf_take(&b);
}

static void xml_text(ca_sbuf *b, const char *s, int max) {
    int n = 0;
    for (; s && *s && n < max; s++, n++) {
        switch (*s) {
        case '<': ca_sbuf_printf(b, "&lt;"); break;
        case '>': ca_sbuf_printf(b, "&gt;"); break;
        case '&': ca_sbuf_printf(b, "&amp;"); break;
        case '"': ca_sbuf_printf(b, "&quot;"); break;
        default: ca_sbuf_printf(b, "%c", *s);
        }
    }
    if (s && *s) ca_sbuf_printf(b, "…");
}

char *ca_confusion_svg(const ca_eval_report *r, const char *const *class_names, const char *title) {
    CA_ENTER();
    if (!r || !r->confusion) { ca_fail(CA_E_ARG, "ca_confusion_svg: no report"); return NULL; }
    int C = r->num_classes;
    /* cells shrink with the class count so the plot stays about 760 px wide; names are drawn
     * while a cell is tall enough to hold them (every cell keeps a tooltip) */
    double cell = fmax(2.0, fmin(48.0, 760.0 / C));
    int labels = cell >= 9;
    double fs = fmin(12.0, cell * 0.8), lab = labels ? 150 : 30;
    double x0 = lab + 10, y0 = 60, side = cell * C;
    int longest = 1; /* the rotated column labels need about this many characters of height */
    char nb0[32];
    for (int c = 0; labels && c < C; c++) {
        int len = (int)strlen(name_of(class_names, c, nb0, sizeof nb0));
        if (len > longest) longest = len > 22 ? 23 : len;
    }
    double below = labels ? 12 + longest * fs * 0.55 : 4;
    double W = fmax(x0 + side + 90, 560), H = y0 + side + below + 30;
    char nb[32];
    ca_sbuf b = {0};
    ca_sbuf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                       "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                       "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"%.1f\">\n", W, H, W, H, fs);
    ca_sbuf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    ca_sbuf_printf(&b, "<text x=\"%.1f\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">", W / 2);
    xml_text(&b, title ? title : "confusion matrix", 200);
    ca_sbuf_printf(&b, "</text>\n<text x=\"%.1f\" y=\"42\" text-anchor=\"middle\" font-size=\"12\">top-1 %.2f%%, top-%d %.2f%%, "
                       "%d rows; colour = share of the true class's rows</text>\n", W / 2, r->top1, r->k, r->topk, r->n);
    ca_sbuf_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f7f7f7\" stroke=\"#999\"/>\n", x0, y0, side, side);
    /* cells: only the non-zero ones are drawn */
    for (int t = 0; t < C; t++)
        for (int p = 0; p < C; p++) {
            int64_t v = r->confusion[(size_t)t * C + p];
            if (!v) continue;
            double f = r->class_count[t] ? (double)v / r->class_count[t] : 0;
            /* white -> dark blue; the diagonal in the same scale */
            int rr = (int)lround(247 - f * (247 - 8)), gg = (int)lround(251 - f * (251 - 48)), bb = (int)lround(255 - f * (255 - 107));
            ca_sbuf_printf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#%02x%02x%02x\"><title>",
                           x0 + p * cell, y0 + t * cell, cell, cell, rr, gg, bb);
            xml_text(&b, name_of(class_names, t, nb, sizeof nb), 80);
            ca_sbuf_printf(&b, " → ");
            xml_text(&b, name_of(class_names, p, nb, sizeof nb), 80);
            ca_sbuf_printf(&b, ": %lld of %d (%.1f%%)</title></rect>\n", (long long)v, r->class_count[t], 100 * f);
            if (cell >= 22) /* room for the count itself */
                ca_sbuf_printf(&b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"%.1f\" fill=\"%s\">%lld</text>\n",
                               x0 + (p + 0.5) * cell, y0 + (t + 0.5) * cell + fs * 0.35, fs * 0.85, f > 0.5 ? "white" : "black", (long long)v);
        }
    if (labels)
        for (int c = 0; c < C; c++) {
            ca_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.2f\" text-anchor=\"end\">", x0 - 4, y0 + (c + 0.5) * cell + fs * 0.35);
            xml_text(&b, name_of(class_names, c, nb, sizeof nb), 22);
            ca_sbuf_printf(&b, "</text>\n<text transform=\"translate(%.2f %.1f) rotate(-60)\" text-anchor=\"end\">",
                           x0 + (c + 0.5) * cell + fs * 0.35, y0 + side + 6);
            xml_text(&b, name_of(class_names, c, nb, sizeof nb), 22);
            ca_sbuf_printf(&b, "</text>\n");
        }
    ca_sbuf_printf(&b, "<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">true class</text>\n",
                   y0 + side / 2);
    ca_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">predicted class</text>\n",
                   x0 + side / 2, y0 + side + below + 16);
    /* colour scale */
    for (int i = 0; i <= 10; i++) {
        double f = i / 10.0;
        int rr = (int)lround(247 - f * (247 - 8)), gg = (int)lround(251 - f * (251 - 48)), bb = (int)lround(255 - f * (255 - 107));
        ca_sbuf_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"%.2f\" fill=\"#%02x%02x%02x\"/>\n", x0 + side + 20,
                       y0 + (10 - i) * side / 11, side / 11, rr, gg, bb);
    }
    ca_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">100%%</text>\n", x0 + side + 38, y0 + 10);
    ca_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">0%%</text>\n", x0 + side + 38, y0 + side);
    ca_sbuf_printf(&b, "</svg>\n");
    return ca_sbuf_take(&b);
}
