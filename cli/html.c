/* html: the HTML report with its SVG charts (html.h). */
#include "html.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "histfmt.h"
#include "report_sched.h"
#include "threshold.h"
#include "xopts.h"

#define W 1040
#define H 260
#define ML 70  /* margins: left, right, top, bottom */
#define MR 20
#define MT 20
#define MB 40

static const char *CSS =
    "body{font:14px/1.45 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;background:#f4f6f9;color:#1d2433}"
    "header{background:linear-gradient(120deg,#13315c,#1f6f8b);color:#fff;padding:22px 36px}"
    "header h1{margin:0;font-size:22px;font-weight:600}header .sub{opacity:.85;margin-top:4px;font-size:13px}"
    "main{max-width:1100px;margin:0 auto;padding:20px 28px 40px}"
    ".cards{display:grid;grid-template-columns:repeat(5,1fr);gap:14px;margin:6px 0 20px}"
    ".card{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 3px rgba(0,0,0,.08)}"
    ".card .k{font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:#6b7385}"
    ".card .v{font-size:24px;font-weight:600;margin-top:4px}.card .v small{font-size:13px;color:#6b7385;font-weight:400}"
    ".bad .v{color:#c0392b}.good .v{color:#1e8449}"
    "section{background:#fff;border-radius:10px;padding:16px 20px;margin-bottom:18px;box-shadow:0 1px 3px rgba(0,0,0,.08)}"
    "section h2{margin:0 0 10px;font-size:16px;font-weight:600}"
    "table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}"
    "th,td{padding:6px 10px;text-align:right;border-bottom:1px solid #eceff4}th{color:#6b7385;font-weight:500;font-size:12px}"
    "td:first-child,th:first-child{text-align:left}tr.total td{font-weight:600;border-top:2px solid #d5dae3}"
    ".grid{fill:none;stroke:#e3e7ee;stroke-width:1}.axis{font-size:11px;fill:#6b7385}"
    ".legend{font-size:12px;fill:#1d2433}.warn{background:#fff4e5;border-left:4px solid #f0a030;padding:8px 12px;margin-bottom:14px}"
    "code{background:#eef1f6;padding:1px 5px;border-radius:4px}"
    ".note{color:#6b7385;font-size:12px;margin:6px 0 0}.err{color:#c0392b;font-weight:600}"
    ".warn.err{background:#fdecea;border-left-color:#c0392b}"
    "tr.pass td:nth-child(2){color:#1e8449;font-weight:600}tr.fail td:nth-child(2){color:#c0392b;font-weight:600}"
    "table.thr td,table.thr th{text-align:left}pre.wl{background:#f7f9fc;border:1px solid #e3e7ee;border-radius:6px;padding:10px 12px;"
    "overflow-x:auto;font-size:12px;margin:0}";

static const char *const PALETTE[] = {"#8e44ad", "#16a085", "#d35400", "#2c3e50", "#b7950b", "#c0392b", "#7f8c8d", "#1abc9c"};

static const char *op_color(size_t i) { return PALETTE[i % (sizeof PALETTE / sizeof PALETTE[0])]; }

static double tl_quantile(const mqload_sparse_t *s, double q, mqload_hist_t *scratch)
{
    mqload_hist_init(scratch);
    mqload_hist_add_sparse(scratch, s);
    return mqload_hist_quantile(scratch, q);
}

/* A "nice" step for a linear axis with about n ticks. */
static double nice_step(double max, int n)
{
    double raw = max / n, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void fmt_count(double v, char *out, size_t n)
{
    if (v >= 1e6) snprintf(out, n, "%.1fM", v / 1e6);
    else if (v >= 1e3) snprintf(out, n, "%.1fk", v / 1e3);
    else if (v > 0 && v < 10 && v != floor(v)) snprintf(out, n, "%.1f", v);
    else snprintf(out, n, "%.0f", v);
}

/* The seconds drawn: those of the measured window. Operations that completed after it closed
 * (in flight at the end, finished during --grace) are counted in the totals but not drawn as a
 * second of their own: a sliver of a second drawn as a full one is the "drop at the end" that
 * no server ever had. A partial last second is drawn as a rate over the part that was measured. */
static size_t drawn_seconds(const mqload_result_t *r)
{
    size_t n = r->duration_s > 0 ? (size_t) ceil(r->duration_s - 1e-6) : r->n_seconds;
    return n ? n : 1;
}

static double covered(const mqload_result_t *r, size_t i)
{
    if (r->duration_s <= 0) return 1;
    double c = r->duration_s - (double) i;
    return c > 1 ? 1 : c > 0.05 ? c : 0.05;
}

static double xsec(const mqload_result_t *r, double t)
{
    double n = r->duration_s > 0 ? r->duration_s : (double) drawn_seconds(r);
    return ML + (W - ML - MR) * (t > n ? n : t) / n;
}

static void svg_open(mqload_strbuf_t *o, const char *id, const char *title)
{
    mqload_sb_printf(o, "<section><h2>%s</h2><svg class=\"chart\" data-chart=\"%s\" viewBox=\"0 0 %d %d\" width=\"100%%\" role=\"img\">",
                     title, id, W, H);
}

static void time_axis(mqload_strbuf_t *o, const mqload_result_t *r)
{
    double n = r->duration_s > 0 ? r->duration_s : (double) drawn_seconds(r);
    double step = nice_step(n > 1 ? n : 1, 10);
    if (step < 1) step = 1;
    for (double t = 0; t <= n + 1e-9; t += step)
        mqload_sb_printf(o, "<text class=\"axis\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0fs</text>", xsec(r, t), H - MB + 16, t);
}

/* A linear y axis from 0 to about max; returns its top. */
static double lin_axis(mqload_strbuf_t *o, double max)
{
    if (max <= 0) max = 1;
    double step = nice_step(max, 4), top = ceil(max / step) * step;
    if (step < 1 && max >= 1) step = 1, top = ceil(max);
    for (double v = 0; v <= top + 1e-9; v += step) {
        double y = MT + (H - MT - MB) * (1 - v / top);
        char lab[32];
        fmt_count(v, lab, sizeof lab);
        mqload_sb_printf(o, "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>", ML, W - MR, y, y);
        mqload_sb_printf(o, "<text class=\"axis\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", ML - 8, y + 4, lab);
    }
    return top;
}

static double yl(double v, double top) { return MT + (H - MT - MB) * (1 - v / top); }

static void legend(mqload_strbuf_t *o, int slot, const char *color, const char *label, bool dashed)
{
    int x = W - MR - 150 * (slot + 1);
    mqload_sb_printf(o, "<line x1=\"%d\" x2=\"%d\" y1=\"10\" y2=\"10\" stroke=\"%s\" stroke-width=\"3\"%s/>"
                        "<text class=\"legend\" x=\"%d\" y=\"14\">", x, x + 16, color, dashed ? " stroke-dasharray=\"5 3\"" : "", x + 20);
    mqload_sb_html(o, label);
    mqload_sb_puts(o, "</text>");
}

static double config_double(const mqload_result_t *r, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, &r->config, key) && BSON_ITER_HOLDS_NUMBER(&it)) return bson_iter_as_double(&it);
    return 0;
}

/* The arrival rate asked for: the result's (the workers' summed when merged), else the config's. */
static double target_rate(const mqload_result_t *r)
{
    return r->target_rate > 0 ? r->target_rate : config_double(r, "rate");
}

static void chart_throughput(mqload_strbuf_t *o, const mqload_result_t *r)
{
    size_t n = drawn_seconds(r), nt = n < r->n_seconds ? n : r->n_seconds;
    bool rate_stages = r->n_stages && !strcmp(r->stage_kind, "rate");
    double target = target_rate(r), max = target * 1.1;
    for (size_t i = 0; i < r->n_stages && rate_stages; i++)
        max = fmax(max, 1.1 * fmax(r->stages[i].from, r->stages[i].to));
    for (size_t i = 0; i < nt; i++) {
        double v = (double) r->timeline[i].ok / covered(r, i);
        if (v > max) max = v;
    }
    /* Successes only: fast failures must not pass for throughput (they are the red marks). */
    svg_open(o, "throughput", "Throughput: successful operations per second (failures in red)");
    double top = lin_axis(o, max);
    time_axis(o, r);
    /* Total: a step area, each second as wide as it was measured. */
    mqload_strbuf_t pts;
    mqload_sb_init(&pts);
    mqload_sb_printf(&pts, "%d,%d ", ML, H - MB);
    for (size_t i = 0; i < n; i++) {
        double v = i < nt ? (double) r->timeline[i].ok / covered(r, i) : 0, y = yl(v, top);
        mqload_sb_printf(&pts, "%.1f,%.1f %.1f,%.1f ", xsec(r, (double) i), y, xsec(r, (double) i + covered(r, i)), y);
    }
    mqload_sb_printf(&pts, "%.1f,%d", xsec(r, (double) n), H - MB);
    mqload_sb_printf(o, "<polygon class=\"series\" data-series=\"total\" points=\"%s\" fill=\"#2e86c1\" fill-opacity=\".15\" "
                        "stroke=\"#2e86c1\" stroke-width=\"2\"/>", pts.s);
    int slot = 0;
    legend(o, slot++, "#2e86c1", "successful operations", false);
    /* One line per operation when there are several (results written before mqload kept each
     * operation's seconds have none to draw). */
    bool by_op = false;
    for (size_t i = 0; i < nt; i++) by_op = by_op || r->timeline[i].n_op_hist > 0;
    for (size_t k = 0; k < r->n_ops && r->n_ops > 1 && by_op; k++) {
        pts.len = 0;
        pts.s[0] = 0;
        for (size_t i = 0; i < n; i++) {
            const mqload_second_t *s = i < nt ? &r->timeline[i] : NULL;
            double v = s && k < s->n_op_hist ? (double) s->op_hist[k].total / covered(r, i) : 0;
            mqload_sb_printf(&pts, "%.1f,%.1f ", xsec(r, (double) i + covered(r, i) / 2), yl(v, top));
        }
        mqload_sb_printf(o, "<polyline class=\"series\" data-series=\"op:");
        mqload_sb_html(o, r->ops[k].name);
        mqload_sb_printf(o, "\" points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"/>", pts.s, op_color(k));
        if (slot < 6) legend(o, slot++, op_color(k), r->ops[k].name, false);
    }
    if (rate_stages) {
        /* --stages: the target ramps stage by stage. */
        pts.len = 0;
        pts.s[0] = 0;
        double t0 = 0;
        for (size_t i = 0; i < r->n_stages; i++) {
            mqload_sb_printf(&pts, "%.1f,%.1f %.1f,%.1f ", xsec(r, t0), yl(r->stages[i].from, top), xsec(r, t0 + r->stages[i].dur_s),
                             yl(r->stages[i].to, top));
            t0 += r->stages[i].dur_s;
        }
        mqload_sb_printf(o, "<polyline class=\"series\" data-series=\"target\" points=\"%s\" fill=\"none\" stroke=\"#c0392b\" "
                            "stroke-width=\"1.6\" stroke-dasharray=\"7 4\"/>", pts.s);
        legend(o, slot++, "#c0392b", "target (stages)", true);
    } else if (target > 0) {
        char lab[64], c[32];
        fmt_count(target, c, sizeof c);
        snprintf(lab, sizeof lab, "target %s/s", c);
        mqload_sb_printf(o, "<line class=\"series\" data-series=\"target\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#c0392b\" "
                            "stroke-width=\"1.6\" stroke-dasharray=\"7 4\"/>", ML, W - MR, yl(target, top), yl(target, top));
        legend(o, slot++, "#c0392b", lab, true);
    }
    mqload_sb_free(&pts);
    /* Errors: a red tick at least 4 px high in every second that had any, whatever the scale. */
    for (size_t i = 0; i < nt; i++)
        if (r->timeline[i].errors) {
            double h = (double) (H - MB) - yl((double) r->timeline[i].errors / covered(r, i), top);
            if (h < 4) h = 4;
            mqload_sb_printf(o, "<rect class=\"errmark\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#c0392b\"/>",
                             xsec(r, (double) i), (double) (H - MB) - h, xsec(r, (double) i + covered(r, i)) - xsec(r, (double) i), h);
        }
    mqload_sb_puts(o, "</svg>");
    uint64_t drained = 0;
    for (size_t i = n; i < r->n_seconds; i++) drained += r->timeline[i].ops;
    if (drained)
        mqload_sb_printf(o, "<p class=\"note\">%llu operations in flight when the window closed completed after it; they are in "
                            "the totals, not drawn as a second of their own.</p>", (unsigned long long) drained);
    mqload_sb_puts(o, "</section>");
}

/* Errors on their own scale, so that 3 errors among 50,000 operations are seen. */
static void chart_errors(mqload_strbuf_t *o, const mqload_result_t *r)
{
    size_t n = drawn_seconds(r), nt = n < r->n_seconds ? n : r->n_seconds;
    double max = 0;
    for (size_t i = 0; i < r->n_seconds; i++)
        if ((double) r->timeline[i].errors > max) max = (double) r->timeline[i].errors;
    if (max <= 0) return;
    svg_open(o, "errors", "Errors per second (own scale)");
    double top = lin_axis(o, max);
    time_axis(o, r);
    for (size_t i = 0; i < nt; i++) {
        if (!r->timeline[i].errors) continue;
        double y = yl((double) r->timeline[i].errors, top), h = (double) (H - MB) - y;
        if (h < 3) h = 3, y = (double) (H - MB) - 3;
        mqload_sb_printf(o, "<rect class=\"series\" data-series=\"errors\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                            "fill=\"#c0392b\"><title>second %zu: %llu errors</title></rect>",
                         xsec(r, (double) i) + 1, y, xsec(r, (double) i + covered(r, i)) - xsec(r, (double) i) - 2, h, i,
                         (unsigned long long) r->timeline[i].errors);
    }
    legend(o, 0, "#c0392b", "errors/s", false);
    mqload_sb_puts(o, "</svg></section>");
}

/* Latency axis: log10 of microseconds between decades around the data. */
static void log_axis(mqload_strbuf_t *o, double lo_us, double hi_us, double *dlo, double *dhi)
{
    *dlo = floor(log10(lo_us > 0.1 ? lo_us : 0.1));
    *dhi = ceil(log10(hi_us > 1 ? hi_us : 1));
    if (*dhi <= *dlo) *dhi = *dlo + 1;
    for (double d = *dlo; d <= *dhi + 1e-9; d++) {
        double f = (d - *dlo) / (*dhi - *dlo);
        /* Decade labels: 1us 10us 100us 1ms ... (no needless decimals). */
        static const char *const units[] = {"us", "ms", "s"};
        int e = (int) d, u = e < 0 ? 0 : e / 3;
        if (u > 2) u = 2;
        char lab[32];
        snprintf(lab, sizeof lab, "%g%s", pow(10, e - 3 * u), units[u]);
        double y = MT + (H - MT - MB) * (1 - f);
        mqload_sb_printf(o, "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>", ML, W - MR, y, y);
        mqload_sb_printf(o, "<text class=\"axis\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", ML - 8, y + 4, lab);
    }
}

static double ly(double us, double dlo, double dhi)
{
    double l = log10(us > 0.01 ? us : 0.01);
    double f = (l - dlo) / (dhi - dlo);
    if (f < 0) f = 0;
    if (f > 1) f = 1;
    return MT + (H - MT - MB) * (1 - f);
}

static void latency_line(mqload_strbuf_t *o, const mqload_result_t *r, size_t op, double q, const char *series,
                         const char *color, const char *dash, double dlo, double dhi, mqload_hist_t *h)
{
    size_t n = drawn_seconds(r), nt = n < r->n_seconds ? n : r->n_seconds;
    mqload_strbuf_t pts;
    mqload_sb_init(&pts);
    size_t np = 0;
    for (size_t i = 0; i < nt; i++) {
        const mqload_sparse_t *sp = op == SIZE_MAX ? &r->timeline[i].hist
                                  : op < r->timeline[i].n_op_hist ? &r->timeline[i].op_hist[op] : NULL;
        if (!sp || !sp->total) continue;
        mqload_sb_printf(&pts, "%.1f,%.1f ", xsec(r, (double) i + covered(r, i) / 2), ly(tl_quantile(sp, q, h) / 1e3, dlo, dhi));
        np++;
    }
    if (np) {
        mqload_sb_puts(o, "<polyline class=\"series\" data-series=\"");
        mqload_sb_html(o, series);
        mqload_sb_printf(o, "\" points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" stroke-linejoin=\"round\"%s/>", pts.s,
                         color, dash);
    }
    mqload_sb_free(&pts);
}

static void chart_latency_time(mqload_strbuf_t *o, const mqload_result_t *r)
{
    size_t n = drawn_seconds(r), nt = n < r->n_seconds ? n : r->n_seconds;
    mqload_hist_t *h = mqload_hist_new();
    double lo = 1e18, hi = 0;
    for (size_t i = 0; i < nt; i++) {
        if (!r->timeline[i].hist.total) continue;
        double a = tl_quantile(&r->timeline[i].hist, 0.5, h) / 1e3, b = tl_quantile(&r->timeline[i].hist, 0.99, h) / 1e3;
        if (a < lo) lo = a;
        if (b > hi) hi = b;
        for (size_t k = 0; k < r->timeline[i].n_op_hist; k++) {
            if (!r->timeline[i].op_hist[k].total) continue;
            b = tl_quantile(&r->timeline[i].op_hist[k], 0.99, h) / 1e3;
            if (b > hi) hi = b;
        }
    }
    if (hi <= 0) lo = 1, hi = 1000;
    double dlo, dhi;
    svg_open(o, "latency", r->n_ops > 1 ? "Latency over time: p50 and p99 of each second, p99 per operation (log scale)"
                                         : "Latency over time: p50 and p99 of each second (log scale)");
    log_axis(o, lo, hi, &dlo, &dhi);
    time_axis(o, r);
    latency_line(o, r, SIZE_MAX, 0.5, "p50", "#1e8449", "", dlo, dhi, h);
    latency_line(o, r, SIZE_MAX, 0.99, "p99", "#13315c", "", dlo, dhi, h);
    int slot = 0;
    legend(o, slot++, "#1e8449", "p50", false);
    legend(o, slot++, "#13315c", "p99", false);
    for (size_t k = 0; k < r->n_ops && r->n_ops > 1; k++) {
        char series[64];
        snprintf(series, sizeof series, "p99:%s", r->ops[k].name);
        latency_line(o, r, k, 0.99, series, op_color(k), " stroke-dasharray=\"6 3\"", dlo, dhi, h);
        if (slot < 6) legend(o, slot++, op_color(k), series, true);
    }
    mqload_sb_puts(o, "</svg></section>");
    mqload_hist_destroy(h);
}

/* Operations in flight (the most seen in each second) and open connections. */
static void chart_inflight(mqload_strbuf_t *o, const mqload_result_t *r)
{
    size_t n = drawn_seconds(r), nt = n < r->n_seconds ? n : r->n_seconds;
    double max = 0;
    bool any_f = false, any_c = false;
    for (size_t i = 0; i < nt; i++) {
        const mqload_second_t *s = &r->timeline[i];
        if (s->in_flight >= 0) any_f = true, max = fmax(max, (double) s->in_flight);
        if (s->conns_open >= 0) any_c = true, max = fmax(max, (double) s->conns_open);
    }
    if (!any_f && !any_c) return;
    /* --concurrency: what a closed loop keeps in flight (an open loop's cap is not in the config
     * when it is the default, so it gets no line). */
    double conc = config_double(r, "concurrency_total") > 0 ? config_double(r, "concurrency_total") : config_double(r, "concurrency");
    bool open_loop = config_double(r, "rate") > 0;
    bool conc_set = !open_loop;
    if (conc_set && conc > max) max = conc;
    svg_open(o, "inflight", "Operations in flight (most in each second) and open connections");
    double top = lin_axis(o, max * 1.1);
    time_axis(o, r);
    if (conc_set && conc > 0) {
        mqload_sb_printf(o, "<line class=\"series\" data-series=\"concurrency\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
                            "stroke=\"#7f8c8d\" stroke-width=\"1.4\" stroke-dasharray=\"2 3\"/>", ML, W - MR, yl(conc, top), yl(conc, top));
        char lab[64];
        snprintf(lab, sizeof lab, "concurrency %.0f", conc);
        legend(o, 2, "#7f8c8d", lab, true);
    }
    for (int k = 0; k < 2; k++) {
        mqload_strbuf_t pts;
        mqload_sb_init(&pts);
        for (size_t i = 0; i < nt; i++) {
            int64_t v = k == 0 ? r->timeline[i].in_flight : r->timeline[i].conns_open;
            if (v < 0) continue;
            mqload_sb_printf(&pts, "%.1f,%.1f ", xsec(r, (double) i + covered(r, i) / 2), yl((double) v, top));
        }
        if (pts.len)
            mqload_sb_printf(o, "<polyline class=\"series\" data-series=\"%s\" points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>",
                             k == 0 ? "in_flight" : "conns_open", pts.s, k == 0 ? "#2e86c1" : "#8e44ad",
                             k == 0 ? "" : " stroke-dasharray=\"6 3\"");
        mqload_sb_free(&pts);
    }
    if (any_f) legend(o, 0, "#2e86c1", "in flight", false);
    if (any_c) legend(o, 1, "#8e44ad", "open connections", true);
    mqload_sb_puts(o, "</svg></section>");
}

/* HdrHistogram's classic plot: x is 1/(1-q) on a log scale (0%, 90%, 99%, 99.9% ...). */
static void chart_percentiles(mqload_strbuf_t *o, const mqload_result_t *r)
{
    const double xmax = 5; /* up to 99.999% */
    double lo = r->hist->total ? (double) r->hist->min_ns / 1e3 : 1, hi = r->hist->total ? (double) r->hist->max_ns / 1e3 : 1000;
    double dlo, dhi;
    svg_open(o, "percentiles", "Latency by percentile (log scales)");
    log_axis(o, lo, hi, &dlo, &dhi);
    static const char *const labels[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
    for (int d = 0; d <= (int) xmax; d++) {
        double x = ML + (W - ML - MR) * d / xmax;
        mqload_sb_printf(o, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>", x, x, MT, H - MB);
        mqload_sb_printf(o, "<text class=\"axis\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>", x, H - MB + 16, labels[d]);
    }
    size_t nser = r->n_ops > 1 ? r->n_ops + 1 : 1;
    for (size_t s = 0; s < nser; s++) {
        const mqload_hist_t *h = s == 0 ? r->hist : r->ops[s - 1].hist;
        if (!h->total) continue;
        mqload_strbuf_t pts;
        mqload_sb_init(&pts);
        double qmax = 1 - 1.0 / (double) h->total; /* beyond it, it is all the max */
        for (int i = 0; i <= 200; i++) {
            double xl = xmax * i / 200.0, q = 1 - pow(10, -xl);
            if (q > qmax) q = qmax;
            double us = mqload_hist_quantile(h, q) / 1e3;
            mqload_sb_printf(&pts, "%.1f,%.1f ", ML + (W - ML - MR) * xl / xmax, ly(us, dlo, dhi));
            if (q >= qmax) break;
        }
        const char *color = s == 0 ? "#13315c" : op_color(s - 1);
        mqload_sb_puts(o, "<polyline class=\"series\" data-series=\"");
        mqload_sb_html(o, s == 0 ? "total" : r->ops[s - 1].name);
        mqload_sb_printf(o, "\" points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"/>", pts.s, color, s == 0 ? "2.6" : "1.6");
        mqload_sb_free(&pts);
        /* Legend bottom right, where percentile curves never go. */
        size_t ly0 = (size_t) (H - MB - 12) - (nser - 1 - s) * 16;
        mqload_sb_printf(o, "<rect x=\"%d\" y=\"%zu\" width=\"12\" height=\"3\" fill=\"%s\"/><text class=\"legend\" x=\"%d\" y=\"%zu\">",
                         W - MR - 110, ly0 - 4, color, W - MR - 92, ly0);
        mqload_sb_html(o, s == 0 ? "total" : r->ops[s - 1].name);
        mqload_sb_puts(o, "</text>");
    }
    mqload_sb_puts(o, "</svg></section>");
}

static void card(mqload_strbuf_t *o, const char *cls, const char *k, const char *v, const char *unit)
{
    mqload_sb_printf(o, "<div class=\"card %s\"><div class=\"k\">%s</div><div class=\"v\">", cls, k);
    mqload_sb_html(o, v);
    mqload_sb_printf(o, " <small>%s</small></div></div>", unit);
}

static size_t pct_list(const mqload_result_t *r, const double **out)
{
    if (r->n_pcts) {
        *out = r->pcts;
        return r->n_pcts;
    }
    return mqload_default_percentiles(out);
}

static void op_row(mqload_strbuf_t *o, const mqload_result_t *r, const char *name, uint64_t ok, uint64_t errors,
                   const mqload_hist_t *h, bool total)
{
    const double *pcts;
    size_t np = pct_list(r, &pcts);
    char v[32];
    mqload_sb_printf(o, "<tr%s><td>", total ? " class=\"total\"" : "");
    mqload_sb_html(o, name);
    mqload_sb_printf(o, "</td><td>%llu</td><td>%llu</td><td%s>%llu</td>", (unsigned long long) (ok + errors),
                     (unsigned long long) ok, errors ? " class=\"err\"" : "", (unsigned long long) errors);
    for (size_t i = 0; i < np + 3; i++) {
        double val = i == 0 ? (double) h->min_ns : i == 1 ? mqload_hist_mean(h)
                   : i == np + 2 ? (double) h->max_ns : mqload_hist_quantile(h, pcts[i - 2]);
        if (h->total) mqload_fmt_latency(val, v, sizeof v);
        else snprintf(v, sizeof v, "-");
        mqload_sb_printf(o, "<td>%s</td>", v);
    }
    mqload_sb_puts(o, "</tr>");
}

/* The latency table: the successful operations', or (failed) the failed ones'. */
static void op_table(mqload_strbuf_t *o, const mqload_result_t *r, const char *title, bool failed)
{
    const double *pcts;
    size_t np = pct_list(r, &pcts);
    mqload_sb_printf(o, "<section><h2>%s</h2><table><tr><th>operation</th><th>count</th><th>ok</th><th>errors</th><th>min</th><th>mean</th>",
                     title);
    for (size_t i = 0; i < np; i++) {
        char label[24];
        mqload_percentile_label(pcts[i], false, label, sizeof label);
        mqload_sb_printf(o, "<th>%s</th>", label);
    }
    mqload_sb_puts(o, "<th>max</th></tr>");
    for (size_t i = 0; i < r->n_ops; i++) {
        const mqload_opstats_t *op = &r->ops[i];
        if (failed && !op->errors) continue;
        op_row(o, r, op->name, failed ? 0 : op->ok, op->errors, failed ? op->err_hist : op->hist, false);
    }
    op_row(o, r, "total", failed ? 0 : r->ok, r->errors, failed ? r->err_hist : r->hist, true);
    mqload_sb_puts(o, "</table></section>");
}

/* Each condition of the run's --threshold, evaluated on its own: which held, and what was measured. */
static void thresholds(mqload_strbuf_t *o, const mqload_result_t *r)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, &r->config, "threshold") || !BSON_ITER_HOLDS_UTF8(&it)) return;
    char *expr = bson_strdup(bson_iter_utf8(&it, NULL)), *save = NULL;
    mqload_sb_puts(o, "<section><h2>Thresholds</h2><table class=\"thr\"><tr><th>condition</th><th>result</th><th>detail</th></tr>");
    for (char *c = strtok_r(expr, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
        char err[256];
        mqload_strbuf_t sb;
        mqload_sb_init(&sb);
        mqload_threshold_t *t = mqload_threshold_parse(c, err, sizeof err);
        bool pass = t && mqload_threshold_check(t, r, &sb);
        mqload_sb_printf(o, "<tr class=\"%s\"><td><code>", pass ? "pass" : "fail");
        mqload_sb_html(o, c);
        mqload_sb_printf(o, "</code></td><td>%s</td><td>", pass ? "passed" : "FAILED");
        /* The checker's line is "threshold <cond> violated: <why>": keep the why. */
        const char *why = t ? strstr(sb.s, "violated: ") : err;
        if (why && t) why += strlen("violated: ");
        if (why) {
            char line[256];
            snprintf(line, sizeof line, "%s", why);
            line[strcspn(line, "\n")] = 0;
            mqload_sb_html(o, line);
        }
        mqload_sb_puts(o, "</td></tr>");
        mqload_threshold_free(t);
        mqload_sb_free(&sb);
    }
    mqload_sb_puts(o, "</table></section>");
    bson_free(expr);
}

static void workload_def(mqload_strbuf_t *o, const mqload_result_t *r)
{
    bson_iter_t it, d;
    if (!bson_iter_init_find(&it, &r->config, "workload_def") || !BSON_ITER_HOLDS_DOCUMENT(&it)) return;
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&it, &len, &data);
    bson_t doc;
    if (!bson_init_static(&doc, data, len)) return;
    (void) d;
    char *json = bson_as_relaxed_extended_json(&doc, NULL);
    if (!json) return;
    mqload_sb_puts(o, "<section><h2>Workload definition</h2><pre class=\"wl\">");
    /* One operation per line: the extended JSON comes on one line. */
    mqload_strbuf_t pretty;
    mqload_sb_init(&pretty);
    int depth = 0;
    bool in_str = false;
    for (const char *p = json; *p; p++) {
        char c = *p;
        if (in_str) {
            mqload_sb_printf(&pretty, "%c", c);
            if (c == '\\' && p[1]) mqload_sb_printf(&pretty, "%c", *++p);
            else if (c == '"') in_str = false;
            continue;
        }
        if (c == '"') in_str = true;
        if ((c == '}' || c == ']') && depth <= 2) {
            depth--;
            mqload_sb_printf(&pretty, "\n%*s%c", depth * 2, "", c);
            continue;
        }
        mqload_sb_printf(&pretty, "%c", c);
        if (c == '{' || c == '[') {
            depth++;
            if (depth <= 2) mqload_sb_printf(&pretty, "\n%*s", depth * 2, "");
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',' && depth <= 2) {
            mqload_sb_printf(&pretty, "\n%*s", depth * 2 - 1, "");
        }
    }
    mqload_sb_html(o, pretty.s);
    mqload_sb_puts(o, "</pre></section>");
    mqload_sb_free(&pretty);
    bson_free(json);
}

void mqload_report_html(const mqload_result_t *r, mqload_strbuf_t *o)
{
    char when[64] = "", buf[64];
    time_t t = (time_t) r->start_unix;
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    mqload_sb_printf(o, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mqload: ");
    mqload_sb_html(o, r->workload_name);
    mqload_sb_printf(o, "</title><style>%s</style></head><body><header><h1>mqload &middot; ", CSS);
    mqload_sb_html(o, r->workload_name);
    mqload_sb_printf(o, " &middot; engine %s</h1><div class=\"sub\">", r->engine);
    mqload_sb_html(o, r->uri_redacted);
    mqload_sb_printf(o, " &middot; %s &middot; %.1f s measured%s &middot; workload id <code style=\"color:#fff;background:rgba(255,255,255,.15)\">%s</code> &middot; mqload %s</div></header><main>",
                     when, r->duration_s, r->runs > 1 ? " (merged runs)" : "", r->workload_id, r->tool_version);
    if (r->interrupted) mqload_sb_puts(o, "<div class=\"warn\">Interrupted: this report covers what was measured until then.</div>");
    if (r->submitted != r->completed)
        mqload_sb_printf(o, "<div class=\"warn\">%llu operations were submitted but never completed.</div>",
                         (unsigned long long) (r->submitted - r->completed));
    if (r->notes[0]) {
        mqload_sb_puts(o, "<div class=\"warn\">");
        mqload_sb_html(o, r->notes);
        mqload_sb_puts(o, "</div>");
    }
    if (r->errors)
        mqload_sb_printf(o, "<div class=\"warn err\">%llu of %llu operations failed (%.3g%%): see the errors below.</div>",
                         (unsigned long long) r->errors, (unsigned long long) r->completed,
                         r->completed ? 100.0 * (double) r->errors / (double) r->completed : 0.0);
    if (mqload_result_shortfall(r))
        mqload_sb_printf(o, "<div class=\"warn err\">The target rate was not reached: %llu of %llu scheduled operations were "
                            "sent (%.1f%%); see Schedule below (exit 3).</div>",
                         (unsigned long long) r->submitted, (unsigned long long) r->scheduled,
                         100.0 * (double) r->submitted / (double) r->scheduled);
    double target = target_rate(r);
    mqload_sb_puts(o, "<div class=\"cards\">");
    fmt_count(mqload_result_throughput(r), buf, sizeof buf);
    if (target > 0) {
        char tg[32], unit[64];
        fmt_count(target, tg, sizeof tg);
        snprintf(unit, sizeof unit, "ops/s of %s/s asked", tg);
        card(o, mqload_result_throughput(r) < 0.95 * target ? "bad" : "", "throughput", buf, unit);
    } else {
        card(o, "", "throughput", buf, "ops/s");
    }
    /* Latency cards: the successful operations' (the failures have their own table). */
    if (r->hist->total) mqload_fmt_latency(mqload_hist_quantile(r->hist, 0.5), buf, sizeof buf);
    else snprintf(buf, sizeof buf, "-");
    card(o, "", "p50 latency", buf, "successful ops");
    if (r->hist->total) mqload_fmt_latency(mqload_hist_quantile(r->hist, 0.99), buf, sizeof buf);
    else snprintf(buf, sizeof buf, "-");
    card(o, "", "p99 latency", buf, "successful ops");
    fmt_count((double) r->completed, buf, sizeof buf);
    card(o, "", "operations", buf, "completed");
    snprintf(buf, sizeof buf, "%llu", (unsigned long long) r->errors);
    char pct[48];
    snprintf(pct, sizeof pct, "(%.3g%%)", r->completed ? 100.0 * (double) r->errors / (double) r->completed : 0.0);
    card(o, r->errors ? "bad" : "good", "errors", buf, pct);
    mqload_sb_puts(o, "</div>");
    chart_throughput(o, r);
    chart_errors(o, r);
    chart_latency_time(o, r);
    chart_inflight(o, r);
    chart_percentiles(o, r);
    thresholds(o, r);
    op_table(o, r, "Operations: latency of the successful ones", false);
    if (r->errors) op_table(o, r, "Failed operations: their latency", true);
    if (r->n_errs) {
        mqload_sb_puts(o, "<section><h2>Errors by kind</h2><table><tr><th>kind</th><th>count</th><th>first message</th></tr>");
        for (size_t i = 0; i < r->n_errs; i++) {
            mqload_sb_puts(o, "<tr><td class=\"err\">");
            mqload_sb_html(o, r->errs[i].kind);
            mqload_sb_printf(o, "</td><td>%llu</td><td>", (unsigned long long) r->errs[i].count);
            mqload_sb_html(o, r->errs[i].message);
            mqload_sb_puts(o, "</td></tr>");
        }
        mqload_sb_puts(o, "</table></section>");
    }
    if (r->open_loop || r->n_stages) {
        /* The schedule kept or not, and each stage: the text report's own words. */
        mqload_strbuf_t st;
        mqload_sb_init(&st);
        mqload_report_schedule_text(r, &st);
        mqload_report_stages_text(r, &st);
        mqload_sb_puts(o, "<section><h2>Schedule</h2><pre class=\"wl\">");
        mqload_sb_html(o, st.s);
        mqload_sb_puts(o, "</pre></section>");
        mqload_sb_free(&st);
    }
    workload_def(o, r);
    mqload_sb_puts(o, "<section><h2>Configuration</h2><table>");
    bson_iter_t it;
    if (bson_iter_init(&it, &r->config))
        while (bson_iter_next(&it)) {
            char val[512];
            if (BSON_ITER_HOLDS_UTF8(&it)) snprintf(val, sizeof val, "%s", bson_iter_utf8(&it, NULL));
            else if (BSON_ITER_HOLDS_BOOL(&it)) snprintf(val, sizeof val, "%s", bson_iter_bool(&it) ? "yes" : "no");
            else if (BSON_ITER_HOLDS_DOUBLE(&it)) snprintf(val, sizeof val, "%g", bson_iter_double(&it));
            else if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it))
                snprintf(val, sizeof val, "%lld", (long long) bson_iter_as_int64(&it));
            else continue;
            mqload_sb_puts(o, "<tr><td>");
            mqload_sb_html(o, bson_iter_key(&it));
            mqload_sb_puts(o, "</td><td>");
            mqload_sb_html(o, val);
            mqload_sb_puts(o, "</td></tr>");
        }
    mqload_sb_printf(o, "<tr><td>submitted / completed</td><td>%llu / %llu</td></tr>", (unsigned long long) r->submitted,
                     (unsigned long long) r->completed);
    if (r->conns_opened != UINT64_MAX)
        mqload_sb_printf(o, "<tr><td>connections opened</td><td>%llu</td></tr>", (unsigned long long) r->conns_opened);
    mqload_sb_puts(o, "</table></section><p class=\"note\">Latency is measured from the moment an "
                      "operation was due (open loop, --rate) or submitted (closed loop) to its completion; percentiles come "
                      "from a log-linear histogram (&le;0.4% error) merged exactly across threads and runs.</p></main></body></html>\n");
}
