/* outputs: CSV, YCSB summary and the file writing of the extra outputs (outputs.h). */
#include "outputs.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "hlog.h"
#include "precheck.h"
#include "report.h"

static size_t pct_list(const mqload_result_t *r, const double **out)
{
    if (r->n_pcts) {
        *out = r->pcts;
        return r->n_pcts;
    }
    return mqload_default_percentiles(out);
}

void mqload_report_csv(const mqload_result_t *r, mqload_strbuf_t *out)
{
    const double *pcts;
    size_t np = pct_list(r, &pcts);
    mqload_sb_puts(out, "second,unix_time,ops,ok,errors,mean_us");
    for (size_t i = 0; i < np; i++) {
        char label[24];
        mqload_percentile_label(pcts[i], true, label, sizeof label);
        mqload_sb_printf(out, ",%s_us", label);
    }
    mqload_sb_puts(out, ",max_us\n");
    mqload_hist_t *h = mqload_hist_new();
    for (size_t s = 0; s < r->n_seconds; s++) {
        const mqload_second_t *t = &r->timeline[s];
        mqload_hist_init(h);
        mqload_hist_add_sparse(h, &t->hist);
        mqload_sb_printf(out, "%zu,%.3f,%llu,%llu,%llu", s, r->start_unix + (double) s, (unsigned long long) t->ops,
                         (unsigned long long) t->ok, (unsigned long long) t->errors);
        if (!h->total) { /* no success in this second: empty latency fields, never a 0 that reads as fast */
            for (size_t i = 0; i < np + 2; i++) mqload_sb_puts(out, ",");
            mqload_sb_puts(out, "\n");
            continue;
        }
        mqload_sb_printf(out, ",%.1f", mqload_hist_mean(h) / 1e3);
        for (size_t i = 0; i < np; i++) mqload_sb_printf(out, ",%.1f", mqload_hist_quantile(h, pcts[i]) / 1e3);
        mqload_sb_printf(out, ",%.1f\n", (double) h->max_ns / 1e3);
    }
    mqload_hist_destroy(h);
}

/* YCSB's operation names (site.ycsb.Status / the DB interface's methods). */
static void ycsb_name(const mqload_opstats_t *o, char *out, size_t n)
{
    static const char *const MAP[][2] = {{"find", "READ"},     {"update", "UPDATE"}, {"insert", "INSERT"},
                                         {"scan", "SCAN"},     {"delete", "DELETE"}, {"rmw", "READ-MODIFY-WRITE"}};
    for (size_t i = 0; i < sizeof MAP / sizeof MAP[0]; i++)
        if (!strcmp(o->type, MAP[i][0]) && !strcmp(o->name, o->type)) {
            snprintf(out, n, "%s", MAP[i][1]);
            return;
        }
    /* A named operation keeps its name, upper-cased as YCSB's are. */
    size_t k = 0;
    for (; o->name[k] && k + 1 < n; k++) /* ", " separates YCSB's columns: no comma in a name */
        out[k] = o->name[k] == ',' ? '_' : (char) toupper((unsigned char) o->name[k]);
    out[k] = 0;
}

/* YCSB's ordinal(): 95 -> "95th", 99.9 -> "99.9th", 1 -> "1st". */
static void ordinal(double p, char *out, size_t n)
{
    double r = p;
    if (r == (double) (long) r) {
        long i = (long) r;
        const char *suf = (i % 100 >= 11 && i % 100 <= 13) ? "th" : i % 10 == 1 ? "st" : i % 10 == 2 ? "nd" : i % 10 == 3 ? "rd" : "th";
        snprintf(out, n, "%ld%s", i, suf);
    } else {
        snprintf(out, n, "%.6gth", r);
    }
}

/* One measurement's block: count and latencies of h (YCSB prints none for an empty one). */
static void ycsb_block(mqload_strbuf_t *out, const char *name, uint64_t count, const mqload_hist_t *h, const double *pcts, size_t np)
{
    mqload_sb_printf(out, "[%s], Operations, %llu\n", name, (unsigned long long) count);
    if (!h->total) return;
    mqload_sb_printf(out, "[%s], AverageLatency(us), %.3f\n", name, mqload_hist_mean(h) / 1e3);
    mqload_sb_printf(out, "[%s], MinLatency(us), %.0f\n", name, (double) h->min_ns / 1e3);
    mqload_sb_printf(out, "[%s], MaxLatency(us), %.0f\n", name, (double) h->max_ns / 1e3);
    for (size_t k = 0; k < np; k++) {
        char ord[24];
        ordinal(pcts[k] * 100.0, ord, sizeof ord);
        mqload_sb_printf(out, "[%s], %sPercentileLatency(us), %.0f\n", name, ord, mqload_hist_quantile(h, pcts[k]) / 1e3);
    }
}

void mqload_report_ycsb(const mqload_result_t *r, mqload_strbuf_t *out)
{
    const double *pcts;
    size_t np = pct_list(r, &pcts);
    mqload_sb_printf(out, "[OVERALL], RunTime(ms), %.0f\n", r->duration_s * 1e3);
    mqload_sb_printf(out, "[OVERALL], Throughput(ops/sec), %.4f\n", mqload_result_throughput(r));
    for (size_t i = 0; i < r->n_ops; i++) {
        const mqload_opstats_t *o = &r->ops[i];
        char name[40], failed[48];
        ycsb_name(o, name, sizeof name);
        /* As YCSB's DBWrapper does: [READ] measures the successes, [READ-FAILED] the failures; the
         * Return= counts of both are under [READ]. */
        ycsb_block(out, name, o->ok, o->hist, pcts, np);
        mqload_sb_printf(out, "[%s], Return=OK, %llu\n", name, (unsigned long long) o->ok);
        if (o->errors) {
            mqload_sb_printf(out, "[%s], Return=ERROR, %llu\n", name, (unsigned long long) o->errors);
            snprintf(failed, sizeof failed, "%s-FAILED", name);
            ycsb_block(out, failed, o->errors, o->err_hist, pcts, np);
        }
    }
}

bool mqload_write_outputs(const mqload_xopts_t *x, const mqload_result_t *r, char *err, size_t esz)
{
    bool ok = true;
    char e[512];
    struct {
        const char *path;
        void (*fn)(const mqload_result_t *, mqload_strbuf_t *);
    } outs[] = {{x->hlog, mqload_hlog_write}, {x->csv, mqload_report_csv}, {x->ycsb_summary, mqload_report_ycsb}};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        if (!outs[i].path) continue;
        mqload_strbuf_t sb;
        mqload_sb_init(&sb);
        outs[i].fn(r, &sb);
        if (!mqload_write_file(outs[i].path, sb.s, sb.len, e, sizeof e)) {
            if (ok) snprintf(err, esz, "%s", e);
            ok = false;
        }
        mqload_sb_free(&sb);
    }
    return ok;
}

bool mqload_outputs_on_stdout(const mqload_xopts_t *x)
{
    const char *outs[] = {x->hlog, x->csv, x->ycsb_summary};
    for (size_t i = 0; i < 3; i++)
        if (outs[i] && !strcmp(outs[i], "-")) return true;
    return false;
}

bool mqload_outputs_writable(const mqload_config_t *cfg, char *err, size_t esz)
{
    return mqload_output_check("--hlog", cfg->x.hlog, err, esz) && mqload_output_check("--csv", cfg->x.csv, err, esz) &&
           mqload_output_check("--ycsb-summary", cfg->x.ycsb_summary, err, esz);
}
