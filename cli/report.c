/* report: text and JSON output of a result (report.h). */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "hist.h"
#include "histfmt.h"
#include "report_sched.h"
#include "series.h"
#include "xopts.h"

/* Always in the JSON, whatever --percentiles says, so that readers of older results keep working. */
static const struct {
    const char *key;
    double q;
} QUANTILES[] = {
    {"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p99_9", 0.999}, {"p99_99", 0.9999},
};

/* The percentiles of the table: --percentiles, or the default list (p95 included). */
static size_t table_pcts(const mqload_result_t *r, const double **out)
{
    if (r->n_pcts) {
        *out = r->pcts;
        return r->n_pcts;
    }
    return mqload_default_percentiles(out);
}

static void latency_row(mqload_strbuf_t *out, const mqload_result_t *r, const char *name, uint64_t count, uint64_t ok,
                        uint64_t errors, const mqload_hist_t *h)
{
    const double *pcts;
    size_t np = table_pcts(r, &pcts);
    char v[24];
    mqload_sb_printf(out, "  %-10s %10llu %10llu %8llu", name, (unsigned long long) count, (unsigned long long) ok,
                     (unsigned long long) errors);
    for (size_t i = 0; i < np + 3; i++) {
        double val = i == 0 ? (double) h->min_ns : i == 1 ? mqload_hist_mean(h)
                   : i == np + 2 ? (double) h->max_ns : mqload_hist_quantile(h, pcts[i - 2]);
        if (h->total) mqload_fmt_latency(val, v, sizeof v);
        else snprintf(v, sizeof v, "-");
        mqload_sb_printf(out, " %9s", v);
    }
    mqload_sb_puts(out, "\n");
}

static void latency_header(mqload_strbuf_t *out, const mqload_result_t *r, const char *title)
{
    const double *pcts;
    size_t np = table_pcts(r, &pcts);
    mqload_sb_printf(out, "%s%-10s %10s %10s %8s %9s %9s", strcmp(title, "latency") ? "" : "\n", title, "count", "ok",
                     "errors", "min", "mean");
    for (size_t i = 0; i < np; i++) {
        char label[24];
        mqload_percentile_label(pcts[i], false, label, sizeof label);
        mqload_sb_printf(out, " %9s", label);
    }
    mqload_sb_printf(out, " %9s\n", "max");
}

static void config_line(mqload_strbuf_t *out, const bson_t *cfg)
{
    bson_iter_t it;
    int col = 0;
    if (!bson_iter_init(&it, cfg)) return;
    while (bson_iter_next(&it)) {
        char val[160];
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "server")) continue; /* a line of its own (mqload_report_text) */
        if (BSON_ITER_HOLDS_UTF8(&it)) snprintf(val, sizeof val, "%s", bson_iter_utf8(&it, NULL));
        else if (BSON_ITER_HOLDS_BOOL(&it)) snprintf(val, sizeof val, "%s", bson_iter_bool(&it) ? "yes" : "no");
        else if (BSON_ITER_HOLDS_DOUBLE(&it)) snprintf(val, sizeof val, "%g", bson_iter_double(&it));
        else if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it))
            snprintf(val, sizeof val, "%lld", (long long) bson_iter_as_int64(&it));
        else continue; /* nested (the workload description): in the JSON only */
        int n = (int) strlen(k) + (int) strlen(val) + 3;
        if (col + n > 96) mqload_sb_puts(out, "\n"), col = 0;
        mqload_sb_printf(out, "%s%s=%s", col ? "  " : "  ", k, val);
        col += n;
    }
    if (col) mqload_sb_puts(out, "\n");
}

void mqload_report_text(const mqload_result_t *r, mqload_strbuf_t *out)
{
    mqload_sb_printf(out, "mqload %s  engine %s  %s\n", r->tool_version, r->engine, r->uri_redacted);
    bson_iter_t sv;
    if (bson_iter_init_find(&sv, &r->config, "server") && BSON_ITER_HOLDS_UTF8(&sv))
        mqload_sb_printf(out, "server %s\n", bson_iter_utf8(&sv, NULL));
    mqload_sb_printf(out, "workload %s (id %s)%s\n", r->workload_name, r->workload_id,
                     r->runs > 1 ? "  [merged]" : "");
    config_line(out, &r->config);
    if (r->interrupted) mqload_sb_puts(out, "interrupted: the report covers what was measured until then\n");
    if (r->notes[0]) mqload_sb_printf(out, "notes: %s\n", r->notes);
    mqload_sb_printf(out, "\nduration %.2fs  submitted %llu  completed %llu  ok %llu  errors %llu (%.3f%%)\n",
                     r->duration_s, (unsigned long long) r->submitted, (unsigned long long) r->completed,
                     (unsigned long long) r->ok, (unsigned long long) r->errors,
                     r->completed ? 100.0 * (double) r->errors / (double) r->completed : 0.0);
    mqload_sb_printf(out, "throughput %.1f ops/s", mqload_result_throughput(r));
    if (r->errors && r->duration_s > 0) /* failures are often fast: never let them pass for throughput */
        mqload_sb_printf(out, " (successful %.1f ops/s)", (double) r->ok / r->duration_s);
    if (r->conns_opened != UINT64_MAX) mqload_sb_printf(out, "  connections opened %llu", (unsigned long long) r->conns_opened);
    mqload_sb_puts(out, "\n");
    if (r->submitted != r->completed)
        mqload_sb_printf(out, "WARNING: %llu operations submitted but not completed\n",
                         (unsigned long long) (r->submitted - r->completed));
    mqload_report_schedule_text(r, out);
    /* Percentiles of successful operations; failures (often fast ones) get their own rows. */
    latency_header(out, r, "latency");
    for (size_t i = 0; i < r->n_ops; i++) {
        const mqload_opstats_t *o = &r->ops[i];
        latency_row(out, r, o->name, o->ok + o->errors, o->ok, o->errors, o->hist);
    }
    latency_row(out, r, "total", r->completed, r->ok, r->errors, r->hist);
    if (r->errors) {
        /* The rows above are the successful operations'; the failed ones get their own. */
        latency_header(out, r, "failed");
        for (size_t i = 0; i < r->n_ops && r->n_ops > 1; i++)
            if (r->ops[i].errors) latency_row(out, r, r->ops[i].name, r->ops[i].errors, 0, r->ops[i].errors, r->ops[i].err_hist);
        latency_row(out, r, "total", r->errors, 0, r->errors, r->err_hist);
    }
    mqload_report_stages_text(r, out);
    if (r->n_errs) {
        mqload_sb_puts(out, "\nerrors by kind (with the first message of each)\n");
        for (size_t i = 0; i < r->n_errs; i++)
            mqload_sb_printf(out, "  %10llu  %s%s%s\n", (unsigned long long) r->errs[i].count, r->errs[i].kind,
                             r->errs[i].message[0] ? ": " : "", r->errs[i].message);
    }
}

static void latency_json(const mqload_result_t *r, const mqload_hist_t *h, mqload_strbuf_t *out)
{
    /* Nothing to measure (no success, or no failure): null, never a 0 that reads as fast. */
#define LAT_NUM(v) do { if (h->total) mqload_sb_json_num(out, (v)); else mqload_sb_puts(out, "null"); } while (0)
    mqload_sb_puts(out, "{\"min\":");
    LAT_NUM((double) h->min_ns / 1e3);
    mqload_sb_puts(out, ",\"mean\":");
    LAT_NUM(mqload_hist_mean(h) / 1e3);
    for (size_t i = 0; i < sizeof QUANTILES / sizeof QUANTILES[0]; i++) {
        mqload_sb_printf(out, ",\"%s\":", QUANTILES[i].key);
        LAT_NUM(mqload_hist_quantile(h, QUANTILES[i].q) / 1e3);
    }
    const double *pcts;
    size_t np = table_pcts(r, &pcts);
    for (size_t i = 0; i < np; i++) {
        bool dup = false;
        for (size_t k = 0; k < sizeof QUANTILES / sizeof QUANTILES[0]; k++) dup = dup || QUANTILES[k].q == pcts[i];
        if (dup) continue;
        char key[24];
        mqload_percentile_label(pcts[i], true, key, sizeof key);
        mqload_sb_printf(out, ",\"%s\":", key);
        LAT_NUM(mqload_hist_quantile(h, pcts[i]) / 1e3);
    }
    mqload_sb_puts(out, ",\"max\":");
    LAT_NUM((double) h->max_ns / 1e3);
    mqload_sb_puts(out, "}");
#undef LAT_NUM
}

void mqload_report_json(const mqload_result_t *r, mqload_strbuf_t *out)
{
    mqload_sb_puts(out, "{\"tool\":\"mqload\",\"version\":");
    mqload_sb_json_str(out, r->tool_version);
    mqload_sb_puts(out, ",\"engine\":");
    mqload_sb_json_str(out, r->engine);
    mqload_sb_puts(out, ",\"uri_redacted\":");
    mqload_sb_json_str(out, r->uri_redacted);
    mqload_sb_puts(out, ",\"workload_id\":");
    mqload_sb_json_str(out, r->workload_id);
    mqload_sb_puts(out, ",\"workload\":");
    mqload_sb_json_str(out, r->workload_name);
    size_t cl;
    char *cfg = bson_as_relaxed_extended_json(&r->config, &cl);
    mqload_sb_printf(out, ",\n\"config\":%s", cfg ? cfg : "{}");
    bson_free(cfg);
    mqload_sb_puts(out, ",\n\"start_unix\":");
    mqload_sb_printf(out, "%.6f", r->start_unix);
    mqload_sb_puts(out, ",\"duration_s\":");
    mqload_sb_printf(out, "%.6f", r->duration_s);
    mqload_sb_printf(out, ",\"runs\":%llu,\"interrupted\":%s", (unsigned long long) r->runs, r->interrupted ? "true" : "false");
    mqload_sb_printf(out, ",\n\"submitted\":%llu,\"completed\":%llu,\"ok\":%llu,\"errors\":%llu,\"throughput_ops_s\":",
                     (unsigned long long) r->submitted, (unsigned long long) r->completed, (unsigned long long) r->ok,
                     (unsigned long long) r->errors);
    mqload_sb_json_num(out, mqload_result_throughput(r));
    if (r->conns_opened == UINT64_MAX) mqload_sb_puts(out, ",\"connections_opened\":null");
    else mqload_sb_printf(out, ",\"connections_opened\":%llu", (unsigned long long) r->conns_opened);
    mqload_sb_puts(out, ",\n\"latency_us\":");
    latency_json(r, r->hist, out);
    mqload_sb_puts(out, ",\n\"ops\":{");
    for (size_t i = 0; i < r->n_ops; i++) {
        const mqload_opstats_t *o = &r->ops[i];
        mqload_sb_puts(out, i ? ",\n" : "\n");
        mqload_sb_json_str(out, o->name);
        mqload_sb_puts(out, ":{\"type\":");
        mqload_sb_json_str(out, o->type);
        mqload_sb_printf(out, ",\"count\":%llu,\"ok\":%llu,\"errors\":%llu,\"latency_us\":",
                         (unsigned long long) (o->ok + o->errors), (unsigned long long) o->ok, (unsigned long long) o->errors);
        latency_json(r, o->hist, out);
        mqload_sb_puts(out, ",\"histogram\":");
        mqload_hist_json(o->hist, out);
        mqload_sb_puts(out, ",\"error_latency_us\":");
        latency_json(r, o->err_hist, out);
        mqload_sb_puts(out, ",\"error_histogram\":");
        mqload_hist_json(o->err_hist, out);
        mqload_sb_puts(out, "}");
    }
    mqload_sb_puts(out, "},\n\"errors_by_kind\":{");
    for (size_t i = 0; i < r->n_errs; i++) {
        if (i) mqload_sb_puts(out, ",");
        mqload_sb_json_str(out, r->errs[i].kind);
        mqload_sb_printf(out, ":%llu", (unsigned long long) r->errs[i].count);
    }
    mqload_sb_puts(out, "},\n\"histogram\":");
    mqload_hist_json(r->hist, out);
    mqload_sb_puts(out, ",\n\"error_latency_us\":");
    latency_json(r, r->err_hist, out);
    mqload_sb_puts(out, ",\n\"error_histogram\":");
    mqload_hist_json(r->err_hist, out);
    mqload_report_sched_json(r, out);
    mqload_sb_puts(out, ",\n\"timeline\":[");
    for (size_t i = 0; i < r->n_seconds; i++) {
        const mqload_second_t *s = &r->timeline[i];
        mqload_hist_t *h = mqload_hist_new();
        mqload_hist_add_sparse(h, &s->hist);
        /* "unix": the wall-clock second this entry starts at, so runs of many machines line up. */
        mqload_sb_printf(out, "%s{\"t\":%zu,\"unix\":%.3f,\"ops\":%llu,\"ok\":%llu,\"errors\":%llu,\"p50_us\":",
                         i ? ",\n" : "\n", i, r->start_unix + (double) i, (unsigned long long) s->ops,
                         (unsigned long long) s->ok, (unsigned long long) s->errors);
        /* A second without a success has no latency to show: null, never a 0 that reads as fast. */
        if (h->total) mqload_sb_json_num(out, mqload_hist_quantile(h, 0.5) / 1e3);
        else mqload_sb_puts(out, "null");
        mqload_sb_puts(out, ",\"p99_us\":");
        if (h->total) mqload_sb_json_num(out, mqload_hist_quantile(h, 0.99) / 1e3);
        else mqload_sb_puts(out, "null");
        if (r->open_loop) mqload_sb_printf(out, ",\"sent\":%llu,\"late\":%llu", (unsigned long long) s->sent, (unsigned long long) s->late);
        mqload_sb_puts(out, ",\"histogram\":");
        mqload_sparse_json(&s->hist, out);
        mqload_second_ext_json(r, s, out);
        mqload_sb_puts(out, "}");
        mqload_hist_destroy(h);
    }
    mqload_sb_puts(out, "],\n\"notes\":");
    mqload_sb_json_str(out, r->notes);
    mqload_sb_puts(out, "}\n");
}

bool mqload_write_file(const char *path, const char *text, size_t len, char *err, size_t esz)
{
    if (!strcmp(path, "-")) {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        return true;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, esz, "cannot write %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = fwrite(text, 1, len, f) == len;
    if (fclose(f) != 0) ok = false;
    if (!ok) snprintf(err, esz, "cannot write %s: %s", path, strerror(errno));
    return ok;
}
