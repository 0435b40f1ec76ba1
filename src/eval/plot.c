/* plot.c — SVG line chart of test accuracy vs K (log2 axis), one line per method, with axes,
 * ticks, grid and a legend; over several seeds the line joins the means and each point carries a
 * ±std error bar. Plain SVG 1.1 that browsers render; no scripts, no fonts embedded. */
#include "eval/aggregate.h"
#include "eval/sbuf.h"

#include <math.h>

static const char *const COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define N_COLORS (sizeof COLORS / sizeof COLORS[0])

static void xml_text(ca_sbuf *b, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': ca_sbuf_printf(b, "&lt;"); break;
        case '>': ca_sbuf_printf(b, "&gt;"); break;
        case '&': ca_sbuf_printf(b, "&amp;"); break;
        case '"': ca_sbuf_printf(b, "&quot;"); break;
        default: ca_sbuf_printf(b, "%c", *s);
        }
    }
}

char *ca_plot_svg(const ca_run_result *r, int n, const char *title) {
    CA_ENTER();
    if (!r || n < 1) { ca_fail(CA_E_ARG, "plot: no runs"); return NULL; }
    ca_agg ag;
    if (ca_agg_build(r, n, &ag) != CA_OK) return NULL;
    const double W = 760, H = 460, ml = 64, mr = 200, mt = 44, mb = 56;
    const double pw = W - ml - mr, ph = H - mt - mb;
    double kmin = INFINITY, kmax = -INFINITY, amin = INFINITY, amax = -INFINITY;
    for (int c = 0; c < ag.ncell; c++) {
        const ca_agg_cell *ce = &ag.cells[c];
        if (ce->n == 0) continue;
        double lk = log2(ce->shots > 0 ? ce->shots : 1), sd = isfinite(ce->test_std) ? ce->test_std : 0;
        kmin = fmin(kmin, lk); kmax = fmax(kmax, lk);
        amin = fmin(amin, ce->test_mean - sd); amax = fmax(amax, ce->test_mean + sd);
    }
    double lo = floor(amin / 5) * 5, hi = ceil(amax / 5) * 5;
    if (hi - lo < 5) hi = lo + 5;
    double ystep = hi - lo > 50 ? 10 : 5;
    if (kmax - kmin < 1e-9) { kmin -= 1; kmax += 1; }
#define XP(lk) (ml + ((lk) - kmin) / (kmax - kmin) * pw)
#define YP(a) (mt + (hi - (a)) / (hi - lo) * ph)
    ca_sbuf b = {0};
    ca_sbuf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                       "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                       "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"13\">\n", W, H, W, H);
    ca_sbuf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    ca_sbuf_printf(&b, "<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">", ml + pw / 2);
    xml_text(&b, title ? title : "few-shot test accuracy");
    ca_sbuf_printf(&b, "</text>\n");
    if (ag.max_n > 1)
        ca_sbuf_printf(&b, "<text x=\"%.1f\" y=\"38\" text-anchor=\"middle\" font-size=\"11\">mean over %d seeds, bars: ±1 sample std</text>\n",
                       ml + pw / 2, ag.nseeds);
    /* y grid and ticks */
    for (double a = lo; a <= hi + 1e-9; a += ystep) {
        ca_sbuf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", ml, YP(a), ml + pw, YP(a));
        ca_sbuf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", ml - 5, YP(a), ml, YP(a));
        ca_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n", ml - 8, YP(a) + 4, a);
    }
    /* x ticks at every K present */
    for (int k = 0; k < ag.nk; k++) {
        double x = XP(log2(ag.shots[k] > 0 ? ag.shots[k] : 1));
        ca_sbuf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", x, mt, x, mt + ph);
        ca_sbuf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", x, mt + ph, x, mt + ph + 5);
        ca_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", x, mt + ph + 20, ag.shots[k]);
    }
    /* axes and labels */
    ca_sbuf_printf(&b, "<path d=\"M%.1f %.1f V%.1f H%.1f\" fill=\"none\" stroke=\"black\"/>\n", ml, mt, mt + ph, ml + pw);
    ca_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">shots per class (K, log scale)</text>\n", ml + pw / 2, H - 14);
    ca_sbuf_printf(&b, "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">test accuracy (%%)</text>\n", mt + ph / 2);
    /* one polyline per method through its means in ascending K; error bars; legend beside */
    for (int m = 0; m < ag.nm; m++) {
        /* past the palette, the colours come back dashed so that every method stays distinct */
        const char *col = COLORS[m % N_COLORS], *dash = (m / N_COLORS) % 2 ? "6 3" : "none";
        ca_sbuf_printf(&b, "<g stroke=\"%s\" fill=\"%s\" stroke-dasharray=\"%s\">\n<polyline fill=\"none\" stroke-width=\"2\" points=\"", col, col, dash);
        for (int k = 0; k < ag.nk; k++) {
            const ca_agg_cell *ce = ca_agg_at(&ag, m, k);
            if (ce->n) ca_sbuf_printf(&b, "%.1f,%.1f ", XP(log2(ce->shots > 0 ? ce->shots : 1)), YP(ce->test_mean));
        }
        ca_sbuf_printf(&b, "\"/>\n");
        for (int k = 0; k < ag.nk; k++) {
            const ca_agg_cell *ce = ca_agg_at(&ag, m, k);
            if (!ce->n) continue;
            double x = XP(log2(ce->shots > 0 ? ce->shots : 1));
            if (isfinite(ce->test_std)) {
                double y0 = YP(ce->test_mean - ce->test_std), y1 = YP(ce->test_mean + ce->test_std);
                ca_sbuf_printf(&b, "<path class=\"errorbar\" d=\"M%.1f %.1f V%.1f M%.1f %.1f H%.1f M%.1f %.1f H%.1f\" stroke-dasharray=\"none\" fill=\"none\"/>\n",
                               x, y0, y1, x - 4, y0, x + 4, x - 4, y1, x + 4);
                ca_sbuf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"><title>%d-shot: %.2f ± %.2f%% (%d seeds)</title></circle>\n",
                               x, YP(ce->test_mean), ce->shots, ce->test_mean, ce->test_std, ce->n);
            } else {
                ca_sbuf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"><title>%d-shot: %.2f%%</title></circle>\n",
                               x, YP(ce->test_mean), ce->shots, ce->test_mean);
            }
        }
        double ly = mt + 10 + 22 * m, lx = ml + pw + 20;
        ca_sbuf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke-width=\"2\"/>\n", lx, ly, lx + 24, ly);
        ca_sbuf_printf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\"/>\n", lx + 12, ly);
        ca_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" stroke=\"none\" fill=\"black\">", lx + 32, ly + 4);
        xml_text(&b, ag.methods[m]);
        ca_sbuf_printf(&b, "</text>\n</g>\n");
    }
    ca_sbuf_printf(&b, "</svg>\n");
#undef XP
#undef YP
    ca_agg_free(&ag);
    return ca_sbuf_take(&b);
}
