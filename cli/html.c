/* html: the HTML report with its SVG charts (html.h). */
#include "html.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "report.h"

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
    "code{background:#eef1f6;padding:1px 5px;border-radius:4px}";

static double tl_quantile(const mqload_second_t *s, double q, mqload_hist_t *scratch)
{
    mqload_hist_init(scratch);
    mqload_hist_add_sparse(scratch, &s->hist);
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
    else snprintf(out, n, "%.0f", v);
}

static void svg_open(mqload_strbuf_t *o, const char *title)
{
    mqload_sb_printf(o, "<section><h2>%s</h2><svg viewBox=\"0 0 %d %d\" width=\"100%%\" role=\"img\">", title, W, H);
}

static void time_axis(mqload_strbuf_t *o, size_t n)
{
    double step = nice_step((double) (n ? n : 1), 10);
    if (step < 1) step = 1;
    for (double t = 0; t <= (double) n; t += step) {
        double x = ML + (W - ML - MR) * t / (double) (n ? n : 1);
        mqload_sb_printf(o, "<text class=\"axis\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0fs</text>", x, H - MB + 16, t);
    }
}

static void chart_throughput(mqload_strbuf_t *o, const mqload_result_t *r)
{
    size_t n = r->n_seconds;
    double max = 1;
    for (size_t i = 0; i < n; i++)
        if ((double) r->timeline[i].ops > max) max = (double) r->timeline[i].ops;
    double step = nice_step(max, 4), top = ceil(max / step) * step;
    svg_open(o, "Throughput (operations completed per second)");
    for (double v = 0; v <= top + 1e-9; v += step) {
        double y = MT + (H - MT - MB) * (1 - v / top);
        char lab[32];
        fmt_count(v, lab, sizeof lab);
        mqload_sb_printf(o, "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>", ML, W - MR, y, y);
        mqload_sb_printf(o, "<text class=\"axis\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", ML - 8, y + 4, lab);
    }
    time_axis(o, n);
    if (n) {
        double bw = (double) (W - ML - MR) / (double) n;
        mqload_strbuf_t pts;
        mqload_sb_init(&pts);
        mqload_sb_printf(&pts, "%d,%d ", ML, H - MB);
        for (size_t i = 0; i < n; i++) {
            double y = MT + (H - MT - MB) * (1 - (double) r->timeline[i].ops / top);
            mqload_sb_printf(&pts, "%.1f,%.1f %.1f,%.1f ", ML + bw * (double) i, y, ML + bw * (double) (i + 1), y);
        }
        mqload_sb_printf(&pts, "%d,%d", W - MR, H - MB);
        mqload_sb_printf(o, "<polygon points=\"%s\" fill=\"#2e86c1\" fill-opacity=\".18\" stroke=\"#2e86c1\" stroke-width=\"2\"/>", pts.s);
        mqload_sb_free(&pts);
        for (size_t i = 0; i < n; i++)
            if (r->timeline[i].errors) {
                double y = MT + (H - MT - MB) * (1 - (double) r->timeline[i].errors / top);
                mqload_sb_printf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#c0392b\" fill-opacity=\".7\"/>",
                                 ML + bw * (double) i, y, bw, (double) (H - MB) - y);
            }
    }
    mqload_sb_printf(o, "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"12\" fill=\"#2e86c1\" fill-opacity=\".5\"/>"
                        "<text class=\"legend\" x=\"%d\" y=\"16\">ops/s</text>"
                        "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"12\" fill=\"#c0392b\"/><text class=\"legend\" x=\"%d\" y=\"16\">errors/s</text>",
                     W - 190, W - 172, W - 110, W - 92);
    mqload_sb_puts(o, "</svg></section>");
}

/* Latency axis: log10 of microseconds between decades around the data. */
static void log_axis(mqload_strbuf_t *o, double lo_us, double hi_us, double *dlo, double *dhi, int x0, int x1, bool vertical)
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
        if (vertical) {
            double y = MT + (H - MT - MB) * (1 - f);
            mqload_sb_printf(o, "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>", x0, x1, y, y);
            mqload_sb_printf(o, "<text class=\"axis\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>", x0 - 8, y + 4, lab);
        }
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

static void chart_latency_time(mqload_strbuf_t *o, const mqload_result_t *r)
{
    size_t n = r->n_seconds;
    mqload_hist_t *h = mqload_hist_new();
    double lo = 1e18, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (!r->timeline[i].hist.total) continue;
        double a = tl_quantile(&r->timeline[i], 0.5, h) / 1e3, b = tl_quantile(&r->timeline[i], 0.99, h) / 1e3;
        if (a < lo) lo = a;
        if (b > hi) hi = b;
    }
    if (hi <= 0) lo = 1, hi = 1000;
    double dlo, dhi;
    svg_open(o, "Latency over time: p50 and p99 of each second (log scale)");
    log_axis(o, lo, hi, &dlo, &dhi, ML, W - MR, true);
    time_axis(o, n);
    const char *colors[2] = {"#1e8449", "#d35400"};
    const double qs[2] = {0.5, 0.99};
    for (int k = 0; k < 2 && n; k++) {
        mqload_strbuf_t pts;
        mqload_sb_init(&pts);
        double bw = (double) (W - ML - MR) / (double) n;
        for (size_t i = 0; i < n; i++) {
            if (!r->timeline[i].hist.total) continue;
            double us = tl_quantile(&r->timeline[i], qs[k], h) / 1e3;
            mqload_sb_printf(&pts, "%.1f,%.1f ", ML + bw * ((double) i + 0.5), ly(us, dlo, dhi));
        }
        mqload_sb_printf(o, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\" stroke-linejoin=\"round\"/>",
                         pts.s, colors[k]);
        mqload_sb_free(&pts);
    }
    mqload_sb_printf(o, "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"3\" fill=\"#1e8449\"/><text class=\"legend\" x=\"%d\" y=\"12\">p50</text>"
                        "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"3\" fill=\"#d35400\"/><text class=\"legend\" x=\"%d\" y=\"12\">p99</text>",
                     W - 150, W - 132, W - 90, W - 72);
    mqload_sb_puts(o, "</svg></section>");
    mqload_hist_destroy(h);
}

/* HdrHistogram's classic plot: x is 1/(1-q) on a log scale (0%, 90%, 99%, 99.9% ...). */
static void chart_percentiles(mqload_strbuf_t *o, const mqload_result_t *r)
{
    const double xmax = 5; /* up to 99.999% */
    double lo = r->hist->total ? (double) r->hist->min_ns / 1e3 : 1, hi = r->hist->total ? (double) r->hist->max_ns / 1e3 : 1000;
    double dlo, dhi;
    svg_open(o, "Latency by percentile (log scales)");
    log_axis(o, lo, hi, &dlo, &dhi, ML, W - MR, true);
    static const char *const labels[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
    for (int d = 0; d <= (int) xmax; d++) {
        double x = ML + (W - ML - MR) * d / xmax;
        mqload_sb_printf(o, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>", x, x, MT, H - MB);
        mqload_sb_printf(o, "<text class=\"axis\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>", x, H - MB + 16, labels[d]);
    }
    const char *palette[] = {"#2e86c1", "#8e44ad", "#16a085", "#d35400", "#7f8c8d", "#c0392b"};
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
        const char *color = s == 0 ? "#13315c" : palette[(s - 1) % 6];
        mqload_sb_printf(o, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"/>", pts.s, color,
                         s == 0 ? "2.6" : "1.6");
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

static void op_row(mqload_strbuf_t *o, const char *name, uint64_t ok, uint64_t errors, const mqload_hist_t *h, bool total)
{
    static const double qs[] = {0.5, 0.9, 0.99, 0.999, 0.9999};
    char v[32];
    mqload_sb_printf(o, "<tr%s><td>", total ? " class=\"total\"" : "");
    mqload_sb_html(o, name);
    mqload_sb_printf(o, "</td><td>%llu</td><td>%llu</td><td>%llu</td>", (unsigned long long) (ok + errors),
                     (unsigned long long) ok, (unsigned long long) errors);
    double vals[8] = {h->total ? (double) h->min_ns : 0, mqload_hist_mean(h), 0, 0, 0, 0, 0, (double) h->max_ns};
    for (int i = 0; i < 5; i++) vals[2 + i] = mqload_hist_quantile(h, qs[i]);
    for (int i = 0; i < 8; i++) {
        if (h->total) mqload_fmt_latency(vals[i], v, sizeof v);
        else snprintf(v, sizeof v, "-");
        mqload_sb_printf(o, "<td>%s</td>", v);
    }
    mqload_sb_puts(o, "</tr>");
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
    mqload_sb_puts(o, "<div class=\"cards\">");
    fmt_count(mqload_result_throughput(r), buf, sizeof buf);
    card(o, "", "throughput", buf, "ops/s");
    mqload_fmt_latency(mqload_hist_quantile(r->hist, 0.5), buf, sizeof buf);
    card(o, "", "p50 latency", buf, "");
    mqload_fmt_latency(mqload_hist_quantile(r->hist, 0.99), buf, sizeof buf);
    card(o, "", "p99 latency", buf, "");
    fmt_count((double) r->completed, buf, sizeof buf);
    card(o, "", "operations", buf, "completed");
    snprintf(buf, sizeof buf, "%.3g%%", r->completed ? 100.0 * (double) r->errors / (double) r->completed : 0.0);
    card(o, r->errors ? "bad" : "good", "errors", buf, "");
    mqload_sb_puts(o, "</div>");
    chart_throughput(o, r);
    chart_latency_time(o, r);
    chart_percentiles(o, r);
    mqload_sb_puts(o, "<section><h2>Operations</h2><table><tr><th>operation</th><th>count</th><th>ok</th><th>errors</th>"
                      "<th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th></tr>");
    for (size_t i = 0; i < r->n_ops; i++) op_row(o, r->ops[i].name, r->ops[i].ok, r->ops[i].errors, r->ops[i].hist, false);
    op_row(o, "total", r->ok, r->errors, r->hist, true);
    mqload_sb_puts(o, "</table></section>");
    if (r->n_errs) {
        mqload_sb_puts(o, "<section><h2>Errors by kind</h2><table><tr><th>kind</th><th>count</th></tr>");
        for (size_t i = 0; i < r->n_errs; i++) {
            mqload_sb_puts(o, "<tr><td>");
            mqload_sb_html(o, r->errs[i].kind);
            mqload_sb_printf(o, "</td><td>%llu</td></tr>", (unsigned long long) r->errs[i].count);
        }
        mqload_sb_puts(o, "</table></section>");
    }
    mqload_sb_puts(o, "<section><h2>Configuration</h2><table>");
    bson_iter_t it;
    if (bson_iter_init(&it, &r->config))
        while (bson_iter_next(&it)) {
            char val[256];
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
    mqload_sb_puts(o, "</table></section><p style=\"color:#6b7385;font-size:12px\">Latency is measured from the moment an "
                      "operation was due (open loop, --rate) or submitted (closed loop) to its completion; percentiles come "
                      "from a log-linear histogram (&le;0.4% error) merged exactly across threads and runs.</p></main></body></html>\n");
}
