/* report_sched: schedule, stages and error messages in the report (report_sched.h). */
#include "report_sched.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "histfmt.h"

static void lat(double ns, char *out, size_t n)
{
    mqload_fmt_latency(ns, out, n);
}

void mqload_report_schedule_text(const mqload_result_t *r, mqload_strbuf_t *out)
{
    if (!r->open_loop) return;
    char p50[24], p99[24], mx[24];
    double target = r->target_rate > 0 ? r->target_rate : r->duration_s > 0 ? (double) r->scheduled / r->duration_s : 0;
    lat(mqload_hist_quantile(r->lag, 0.5), p50, sizeof p50);
    lat(mqload_hist_quantile(r->lag, 0.99), p99, sizeof p99);
    lat(r->lag->total ? (double) r->lag->max_ns : 0, mx, sizeof mx);
    mqload_sb_printf(out, "schedule   target %.1f ops/s%s  achieved %.1f ops/s  scheduled %llu  sent %llu  unsent %llu\n",
                     target, r->target_rate > 0 ? "" : " (stages, average)", mqload_result_achieved_rate(r),
                     (unsigned long long) r->scheduled, (unsigned long long) r->submitted, (unsigned long long) r->unsent);
    mqload_sb_printf(out, "           sent late %llu (%.1f%%, %gms or more after the intended time); send delay p50 %s  p99 %s  max %s;"
                          " largest backlog %llu\n",
                     (unsigned long long) r->late, r->submitted ? 100.0 * (double) r->late / (double) r->submitted : 0.0,
                     MQLOAD_LATE_NS / 1e6, p50, p99, mx, (unsigned long long) r->max_backlog);
    if (mqload_result_shortfall(r)) {
        char w[24];
        lat((double) r->unsent_wait_ns, w, sizeof w);
        mqload_sb_printf(out, "SHORTFALL: the target rate was not reached. Only %llu of the %llu operations scheduled in the window "
                              "were sent (%.1f%%); %llu were still waiting for a free slot (-c caps the operations in flight) "
                              "when it closed, the oldest for %s. Latencies count from each operation's intended time; the "
                              "unsent ones are not in them.\n",
                         (unsigned long long) r->submitted, (unsigned long long) r->scheduled,
                         100.0 * (double) r->submitted / (double) r->scheduled, (unsigned long long) r->unsent, w);
    }
}

void mqload_report_stages_text(const mqload_result_t *r, mqload_strbuf_t *out)
{
    if (!r->n_stages) return;
    bool rate = !strcmp(r->stage_kind, "rate");
    mqload_sb_printf(out, "\nstages (%s)\n  %-8s %9s %17s %10s %10s %8s %10s %8s %11s %9s %9s\n",
                     rate ? "arrival rate" : "concurrency", "stage", "duration", rate ? "target ops/s" : "target in flight",
                     "scheduled", "sent", "unsent", "ok", "errors", "ops/s", "p50", "p99");
    for (size_t i = 0; i < r->n_stages; i++) {
        const mqload_stage_t *s = &r->stages[i];
        char p50[24] = "-", p99[24] = "-", tgt[40], sch[24] = "-", uns[24] = "-";
        if (s->hist->total) {
            lat(mqload_hist_quantile(s->hist, 0.5), p50, sizeof p50);
            lat(mqload_hist_quantile(s->hist, 0.99), p99, sizeof p99);
        }
        snprintf(tgt, sizeof tgt, "%g->%g", s->from, s->to);
        if (rate) {
            snprintf(sch, sizeof sch, "%llu", (unsigned long long) s->scheduled);
            snprintf(uns, sizeof uns, "%llu", (unsigned long long) s->unsent);
        }
        mqload_sb_printf(out, "  %-8zu %8.1fs %17s %10s %10llu %8s %10llu %8llu %11.1f %9s %9s\n", i + 1, s->dur_s, tgt, sch,
                         (unsigned long long) s->submitted, uns, (unsigned long long) s->ok, (unsigned long long) s->errors,
                         s->dur_s > 0 ? (double) (s->ok + s->errors) / s->dur_s : 0.0, p50, p99);
    }
}

static void hist_summary_json(const mqload_hist_t *h, mqload_strbuf_t *out)
{
    if (!h->total) {
        mqload_sb_puts(out, "{\"p50\":null,\"p99\":null,\"max\":null}");
        return;
    }
    mqload_sb_puts(out, "{\"p50\":");
    mqload_sb_json_num(out, mqload_hist_quantile(h, 0.5) / 1e3);
    mqload_sb_puts(out, ",\"p99\":");
    mqload_sb_json_num(out, mqload_hist_quantile(h, 0.99) / 1e3);
    mqload_sb_puts(out, ",\"max\":");
    mqload_sb_json_num(out, (double) h->max_ns / 1e3);
    mqload_sb_puts(out, "}");
}

void mqload_report_sched_json(const mqload_result_t *r, mqload_strbuf_t *out)
{
    if (r->open_loop) {
        mqload_sb_puts(out, ",\n\"schedule\":{\"target_rate\":");
        mqload_sb_json_num(out, r->target_rate);
        mqload_sb_puts(out, ",\"achieved_rate\":");
        mqload_sb_json_num(out, mqload_result_achieved_rate(r));
        mqload_sb_printf(out, ",\"scheduled\":%llu,\"sent\":%llu,\"unsent\":%llu,\"late\":%llu,\"late_threshold_us\":%g,"
                              "\"max_backlog\":%llu,\"unsent_oldest_wait_us\":%.3f,\"shortfall\":%s,\"send_delay_us\":",
                         (unsigned long long) r->scheduled, (unsigned long long) r->submitted, (unsigned long long) r->unsent,
                         (unsigned long long) r->late, MQLOAD_LATE_NS / 1e3, (unsigned long long) r->max_backlog,
                         (double) r->unsent_wait_ns / 1e3, mqload_result_shortfall(r) ? "true" : "false");
        hist_summary_json(r->lag, out);
        mqload_sb_puts(out, ",\"send_delay_histogram\":");
        mqload_hist_json(r->lag, out);
        mqload_sb_puts(out, "}");
    }
    if (r->n_stages) {
        mqload_sb_puts(out, ",\n\"stages_kind\":");
        mqload_sb_json_str(out, r->stage_kind);
        mqload_sb_puts(out, ",\"stages\":[");
        for (size_t i = 0; i < r->n_stages; i++) {
            const mqload_stage_t *s = &r->stages[i];
            mqload_sb_printf(out, "%s{\"stage\":%zu,\"duration_s\":", i ? ",\n" : "\n", i + 1);
            mqload_sb_json_num(out, s->dur_s);
            mqload_sb_puts(out, ",\"from\":");
            mqload_sb_json_num(out, s->from);
            mqload_sb_puts(out, ",\"to\":");
            mqload_sb_json_num(out, s->to);
            mqload_sb_printf(out, ",\"scheduled\":%llu,\"sent\":%llu,\"unsent\":%llu,\"late\":%llu,\"ok\":%llu,\"errors\":%llu,"
                                  "\"throughput_ops_s\":",
                             (unsigned long long) s->scheduled, (unsigned long long) s->submitted, (unsigned long long) s->unsent,
                             (unsigned long long) s->late, (unsigned long long) s->ok, (unsigned long long) s->errors);
            mqload_sb_json_num(out, s->dur_s > 0 ? (double) (s->ok + s->errors) / s->dur_s : 0);
            mqload_sb_puts(out, ",\"latency_us\":");
            hist_summary_json(s->hist, out);
            mqload_sb_puts(out, ",\"histogram\":");
            mqload_hist_json(s->hist, out);
            mqload_sb_puts(out, "}");
        }
        mqload_sb_puts(out, "]");
    }
    mqload_sb_puts(out, ",\n\"error_messages\":{");
    bool first = true;
    for (size_t i = 0; i < r->n_errs; i++) {
        if (!r->errs[i].message[0]) continue;
        if (!first) mqload_sb_puts(out, ",");
        first = false;
        mqload_sb_json_str(out, r->errs[i].kind);
        mqload_sb_puts(out, ":");
        mqload_sb_json_str(out, r->errs[i].message);
    }
    mqload_sb_puts(out, "}");
}

static uint64_t u64(const bson_iter_t *it)
{
    if (!BSON_ITER_HOLDS_NUMBER(it)) return 0;
    double v = bson_iter_as_double(it);
    return v > 0 ? (uint64_t) v : 0;
}

static double dbl(const bson_iter_t *it)
{
    return BSON_ITER_HOLDS_NUMBER(it) ? bson_iter_as_double(it) : 0;
}

static bool read_schedule(mqload_result_t *r, const bson_iter_t *it, char *err, size_t esz)
{
    bson_iter_t f;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &f)) return snprintf(err, esz, "\"schedule\" is not an object"), false;
    r->open_loop = true;
    while (bson_iter_next(&f)) {
        const char *k = bson_iter_key(&f);
        if (!strcmp(k, "target_rate")) r->target_rate = dbl(&f);
        else if (!strcmp(k, "scheduled")) r->scheduled = u64(&f);
        else if (!strcmp(k, "unsent")) r->unsent = u64(&f);
        else if (!strcmp(k, "late")) r->late = u64(&f);
        else if (!strcmp(k, "max_backlog")) r->max_backlog = u64(&f);
        else if (!strcmp(k, "unsent_oldest_wait_us")) r->unsent_wait_ns = (uint64_t) (dbl(&f) * 1e3);
        else if (!strcmp(k, "send_delay_histogram") && !mqload_hist_from_json(&f, r->lag, err, esz)) return false;
    }
    return true;
}

static bool read_stages(mqload_result_t *r, const bson_iter_t *it, char *err, size_t esz)
{
    bson_iter_t a, f;
    if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &a)) return snprintf(err, esz, "\"stages\" is not an array"), false;
    size_t n = 0;
    while (bson_iter_next(&a)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&a) || !bson_iter_recurse(&a, &f)) return snprintf(err, esz, "bad stage entry"), false;
        if (!mqload_result_stages(r, r->stage_kind[0] ? r->stage_kind : "rate", n + 1))
            return snprintf(err, esz, "too many stages"), false;
        mqload_stage_t *s = &r->stages[n++];
        while (bson_iter_next(&f)) {
            const char *k = bson_iter_key(&f);
            if (!strcmp(k, "duration_s")) s->dur_s = dbl(&f);
            else if (!strcmp(k, "from")) s->from = dbl(&f);
            else if (!strcmp(k, "to")) s->to = dbl(&f);
            else if (!strcmp(k, "scheduled")) s->scheduled = u64(&f);
            else if (!strcmp(k, "sent")) s->submitted = u64(&f);
            else if (!strcmp(k, "unsent")) s->unsent = u64(&f);
            else if (!strcmp(k, "late")) s->late = u64(&f);
            else if (!strcmp(k, "ok")) s->ok = u64(&f);
            else if (!strcmp(k, "errors")) s->errors = u64(&f);
            else if (!strcmp(k, "histogram") && !mqload_hist_from_json(&f, s->hist, err, esz)) return false;
        }
    }
    return true;
}

bool mqload_sched_from_json(mqload_result_t *r, const char *key, const bson_iter_t *it, bool *handled, char *err, size_t esz)
{
    *handled = true;
    if (!strcmp(key, "schedule")) return read_schedule(r, it, err, esz);
    if (!strcmp(key, "stages")) return read_stages(r, it, err, esz);
    if (!strcmp(key, "stages_kind")) {
        if (BSON_ITER_HOLDS_UTF8(it)) snprintf(r->stage_kind, sizeof r->stage_kind, "%s", bson_iter_utf8(it, NULL));
        return true;
    }
    if (!strcmp(key, "error_histogram")) return mqload_hist_from_json(it, r->err_hist, err, esz);
    if (!strcmp(key, "error_messages")) {
        /* After errors_by_kind (written first): attach each message to its kind. */
        bson_iter_t e;
        if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &e)) return true;
        while (bson_iter_next(&e))
            if (BSON_ITER_HOLDS_UTF8(&e)) mqload_result_add_error_msg(r, bson_iter_key(&e), bson_iter_utf8(&e, NULL), 0);
        return true;
    }
    *handled = false;
    return true;
}
