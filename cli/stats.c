/* stats: per-thread recording and exact merging of results (stats.h). */
#include "stats.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mqload_result_init(mqload_result_t *r)
{
    memset(r, 0, sizeof *r);
    bson_init(&r->config);
    r->hist = mqload_hist_new();
    r->err_hist = mqload_hist_new();
    r->lag = mqload_hist_new();
    r->runs = 1;
}

void mqload_result_free(mqload_result_t *r)
{
    bson_destroy(&r->config);
    mqload_hist_destroy(r->hist);
    mqload_hist_destroy(r->err_hist);
    mqload_hist_destroy(r->lag);
    for (size_t i = 0; i < r->n_ops; i++) {
        mqload_hist_destroy(r->ops[i].hist);
        mqload_hist_destroy(r->ops[i].err_hist);
    }
    for (size_t i = 0; i < r->n_stages; i++) mqload_hist_destroy(r->stages[i].hist);
    for (size_t i = 0; i < r->n_seconds; i++) {
        mqload_sparse_free(&r->timeline[i].hist);
        mqload_second_ext_free(&r->timeline[i]);
    }
    free(r->timeline);
    free(r->errs);
    memset(r, 0, sizeof *r);
}

int mqload_result_op(mqload_result_t *r, const char *name, const char *type)
{
    for (size_t i = 0; i < r->n_ops; i++)
        if (!strcmp(r->ops[i].name, name)) return (int) i;
    if (r->n_ops == MQLOAD_RESULT_MAX_OPS) return -1;
    mqload_opstats_t *o = &r->ops[r->n_ops];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    snprintf(o->type, sizeof o->type, "%s", type ? type : name);
    o->hist = mqload_hist_new();
    o->err_hist = mqload_hist_new();
    return (int) r->n_ops++;
}

bool mqload_result_stages(mqload_result_t *r, const char *kind, size_t n)
{
    if (n > MQLOAD_MAX_STAGES) return false;
    if (kind != r->stage_kind) snprintf(r->stage_kind, sizeof r->stage_kind, "%s", kind);
    for (size_t i = r->n_stages; i < n; i++) {
        memset(&r->stages[i], 0, sizeof r->stages[i]);
        r->stages[i].hist = mqload_hist_new();
    }
    if (n > r->n_stages) r->n_stages = n;
    return true;
}

double mqload_result_achieved_rate(const mqload_result_t *r)
{
    return r->duration_s > 0 ? (double) r->submitted / r->duration_s : 0;
}

bool mqload_result_shortfall(const mqload_result_t *r)
{
    return r->open_loop && r->scheduled > 0 && (double) r->submitted < MQLOAD_SHORTFALL_SENT * (double) r->scheduled;
}

double mqload_result_error_rate(const mqload_result_t *r)
{
    return r->completed ? (double) r->errors / (double) r->completed : 0;
}

void mqload_result_add_error(mqload_result_t *r, const char *kind, uint64_t n)
{
    mqload_result_add_error_msg(r, kind, NULL, n);
}

void mqload_result_add_error_msg(mqload_result_t *r, const char *kind, const char *msg, uint64_t n)
{
    for (size_t i = 0; i < r->n_errs; i++)
        if (!strcmp(r->errs[i].kind, kind)) {
            r->errs[i].count += n;
            if (!r->errs[i].message[0] && msg) snprintf(r->errs[i].message, sizeof r->errs[i].message, "%s", msg);
            return;
        }
    if (r->n_errs == r->cap_errs) {
        r->cap_errs = r->cap_errs ? r->cap_errs * 2 : 8;
        r->errs = realloc(r->errs, r->cap_errs * sizeof *r->errs);
        if (!r->errs) abort();
    }
    mqload_errcount_t *e = &r->errs[r->n_errs++];
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    snprintf(e->message, sizeof e->message, "%s", msg ? msg : "");
    e->count = n;
}

mqload_second_t *mqload_result_second(mqload_result_t *r, size_t sec)
{
    if (sec >= r->cap_seconds) {
        size_t cap = r->cap_seconds ? r->cap_seconds : 64;
        while (cap <= sec) cap *= 2;
        r->timeline = realloc(r->timeline, cap * sizeof *r->timeline);
        if (!r->timeline) abort();
        r->cap_seconds = cap;
    }
    while (r->n_seconds <= sec) {
        mqload_second_t *s = &r->timeline[r->n_seconds++];
        s->ops = s->ok = s->errors = s->sent = s->late = 0;
        mqload_sparse_init(&s->hist);
        mqload_second_ext_init(s);
    }
    return &r->timeline[sec];
}

void mqload_result_merge(mqload_result_t *dst, const mqload_result_t *src, size_t offset_s)
{
    dst->submitted += src->submitted;
    dst->completed += src->completed;
    dst->ok += src->ok;
    dst->errors += src->errors;
    dst->conns_opened += src->conns_opened;
    dst->interrupted = dst->interrupted || src->interrupted;
    mqload_hist_merge(dst->hist, src->hist);
    mqload_hist_merge(dst->err_hist, src->err_hist);
    dst->open_loop = dst->open_loop || src->open_loop;
    dst->target_rate += src->target_rate;
    dst->scheduled += src->scheduled;
    dst->unsent += src->unsent;
    dst->late += src->late;
    dst->max_backlog += src->max_backlog;
    if (src->unsent_wait_ns > dst->unsent_wait_ns) dst->unsent_wait_ns = src->unsent_wait_ns;
    mqload_hist_merge(dst->lag, src->lag);
    if (src->n_stages) {
        mqload_result_stages(dst, src->stage_kind, src->n_stages);
        for (size_t i = 0; i < src->n_stages; i++) {
            mqload_stage_t *d = &dst->stages[i];
            const mqload_stage_t *s = &src->stages[i];
            d->dur_s = s->dur_s;
            /* Workers each run their share of a stage's target: the totals add up. */
            d->from += s->from, d->to += s->to;
            d->scheduled += s->scheduled, d->submitted += s->submitted, d->unsent += s->unsent;
            d->late += s->late, d->ok += s->ok, d->errors += s->errors;
            mqload_hist_merge(d->hist, s->hist);
        }
    }
    for (size_t i = 0; i < src->n_ops; i++) {
        int j = mqload_result_op(dst, src->ops[i].name, src->ops[i].type);
        if (j < 0) continue;
        dst->ops[j].ok += src->ops[i].ok;
        dst->ops[j].errors += src->ops[i].errors;
        mqload_hist_merge(dst->ops[j].hist, src->ops[i].hist);
        mqload_hist_merge(dst->ops[j].err_hist, src->ops[i].err_hist);
    }
    for (size_t i = 0; i < src->n_errs; i++)
        mqload_result_add_error_msg(dst, src->errs[i].kind, src->errs[i].message, src->errs[i].count);
    for (size_t i = 0; i < src->n_seconds; i++) {
        const mqload_second_t *s = &src->timeline[i];
        mqload_second_t *d = mqload_result_second(dst, i + offset_s);
        d->ops += s->ops;
        d->ok += s->ok;
        d->errors += s->errors;
        d->sent += s->sent;
        d->late += s->late;
        mqload_sparse_merge(&d->hist, &s->hist);
        mqload_second_ext_merge(dst, d, src, s);
    }
}

static int cmp_err(const void *a, const void *b)
{
    const mqload_errcount_t *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    return strcmp(x->kind, y->kind);
}

void mqload_result_sort_errors(mqload_result_t *r)
{
    if (r->n_errs > 1) qsort(r->errs, r->n_errs, sizeof *r->errs, cmp_err);
}

double mqload_result_throughput(const mqload_result_t *r)
{
    return r->duration_s > 0 ? (double) r->completed / r->duration_s : 0;
}

void mqload_tstats_init(mqload_tstats_t *s)
{
    memset(s, 0, sizeof *s);
    mqload_result_init(&s->r);
    s->cur_sec = -1;
    s->pub_sec = -1;
    mqload_sparse_init(&s->pub_hist);
    pthread_mutex_init(&s->pub_lock, NULL);
}

void mqload_tstats_free(mqload_tstats_t *s)
{
    mqload_result_free(&s->r);
    mqload_sparse_free(&s->pub_hist);
    mqload_tstats_ext_free(s);
    pthread_mutex_destroy(&s->pub_lock);
}

void mqload_tstats_flush(mqload_tstats_t *s, int64_t sec)
{
    if (s->cur_sec < 0 || sec <= s->cur_sec) return;
    mqload_second_t *t = mqload_result_second(&s->r, (size_t) s->cur_sec);
    t->ops += s->sec_ops;
    t->ok += s->sec_ok;
    t->errors += s->sec_err;
    mqload_sparse_t sp; /* the second's successful latencies, every operation's */
    mqload_sparse_init(&sp);
    mqload_tstats_ext_flush(s, t, &sp);
    mqload_sparse_merge(&t->hist, &sp);
    pthread_mutex_lock(&s->pub_lock);
    mqload_sparse_free(&s->pub_hist);
    s->pub_hist = sp; /* handed over */
    s->pub_sec = s->cur_sec;
    s->pub_ops = s->sec_ops;
    s->pub_errors = s->sec_err;
    pthread_mutex_unlock(&s->pub_lock);
    s->sec_ops = s->sec_ok = s->sec_err = 0;
    s->cur_sec = -1;
}

void mqload_tstats_record(mqload_tstats_t *s, size_t op, uint64_t latency_ns, const char *err_kind, int64_t sec)
{
    mqload_tstats_record_full(s, op, latency_ns, err_kind, NULL, sec, -1);
}

void mqload_tstats_sent(mqload_tstats_t *s, uint64_t lag_ns, int stage, int64_t sec)
{
    mqload_hist_record(s->r.lag, lag_ns);
    bool late = lag_ns >= MQLOAD_LATE_NS;
    if (late) s->r.late++;
    /* The owning thread alone touches its result's timeline (the live line reads pub_* only). */
    mqload_second_t *t = mqload_result_second(&s->r, (size_t) (sec > 0 ? sec : 0));
    t->sent++;
    if (late) t->late++;
    if (stage >= 0 && (size_t) stage < s->r.n_stages) {
        s->r.stages[stage].submitted++;
        if (late) s->r.stages[stage].late++;
    }
}

void mqload_tstats_record_full(mqload_tstats_t *s, size_t op, uint64_t latency_ns, const char *err_kind,
                               const char *err_msg, int64_t sec, int stage)
{
    if (stage >= 0 && (size_t) stage < s->r.n_stages) {
        mqload_stage_t *st = &s->r.stages[stage];
        if (err_kind) st->errors++;
        else st->ok++, mqload_hist_record(st->hist, latency_ns);
    }
    if (sec < 0) sec = 0;
    if (s->cur_sec >= 0 && sec != s->cur_sec) {
        if (sec > s->cur_sec) {
            mqload_tstats_flush(s, sec);
        } else {
            /* A completion stamped before the open second (clock read order between callbacks):
             * put it straight into its own second's entry, it is already closed. */
            mqload_second_t *t = mqload_result_second(&s->r, (size_t) sec);
            if (!err_kind) {
                mqload_sparse_t one;
                mqload_sparse_init(&one);
                mqload_sparse_push(&one, mqload_hist_index(latency_ns), 1);
                one.total = 1, one.min_ns = one.max_ns = latency_ns, one.sum_ns = (double) latency_ns;
                mqload_sparse_merge(&t->hist, &one);
                mqload_sparse_merge(mqload_second_op(t, op), &one);
                mqload_sparse_free(&one);
            }
            t->ops++;
            if (err_kind) t->errors++;
            else t->ok++;
            goto totals;
        }
    }
    s->cur_sec = sec;
    if (!err_kind && op < MQLOAD_RESULT_MAX_OPS) {
        if (!s->sec_op_hist[op]) s->sec_op_hist[op] = mqload_hist_new();
        mqload_tstats_ok_in_second(s, s->sec_op_hist[op], op, latency_ns);
        return;
    }
    s->sec_ops++;
    if (err_kind) s->sec_err++;
    else s->sec_ok++;
totals:
    mqload_tstats_ext_count(s, op, err_kind != NULL);
    mqload_hist_record(err_kind ? s->r.err_hist : s->r.hist, latency_ns);
    mqload_hist_record(err_kind ? s->r.ops[op].err_hist : s->r.ops[op].hist, latency_ns);
    s->r.completed++;
    if (err_kind) {
        s->r.errors++;
        s->r.ops[op].errors++;
        mqload_result_add_error_msg(&s->r, err_kind, err_msg, 1);
        mqload_count(&s->a_errors, 1);
    } else {
        s->r.ok++;
        s->r.ops[op].ok++;
    }
}

/* ---- per-operation seconds: the op_hist of timeline entries, sec_op_hist of a thread ---- */

mqload_sparse_t *mqload_second_op(mqload_second_t *s, size_t op)
{
    if (op >= s->n_op_hist) {
        s->op_hist = realloc(s->op_hist, (op + 1) * sizeof *s->op_hist);
        if (!s->op_hist) abort();
        for (size_t i = s->n_op_hist; i <= op; i++) mqload_sparse_init(&s->op_hist[i]);
        s->n_op_hist = op + 1;
    }
    return &s->op_hist[op];
}

void mqload_second_ext_init(mqload_second_t *s)
{
    s->op_hist = NULL;
    s->n_op_hist = 0;
    s->in_flight = s->conns_open = -1;
}

void mqload_second_ext_free(mqload_second_t *s)
{
    for (size_t i = 0; i < s->n_op_hist; i++) mqload_sparse_free(&s->op_hist[i]);
    free(s->op_hist);
    mqload_second_ext_init(s);
}

void mqload_gauge_add(int64_t *d, int64_t s)
{
    if (s >= 0) *d = (*d < 0 ? 0 : *d) + s;
}

void mqload_second_ext_merge(mqload_result_t *dst, mqload_second_t *d, const mqload_result_t *src, const mqload_second_t *s)
{
    for (size_t i = 0; i < s->n_op_hist && i < src->n_ops; i++) {
        if (!s->op_hist[i].total) continue;
        int j = mqload_result_op(dst, src->ops[i].name, src->ops[i].type);
        if (j >= 0) mqload_sparse_merge(mqload_second_op(d, (size_t) j), &s->op_hist[i]);
    }
    mqload_gauge_add(&d->in_flight, s->in_flight);
    mqload_gauge_add(&d->conns_open, s->conns_open);
}

void mqload_tstats_ext_count(mqload_tstats_t *s, size_t op, bool error)
{
    if (op < MQLOAD_RESULT_MAX_OPS) mqload_count(error ? &s->a_op_err[op] : &s->a_op_ok[op], 1);
}

void mqload_tstats_ext_flush(mqload_tstats_t *s, mqload_second_t *t, mqload_sparse_t *all)
{
    for (size_t op = 0; op < MQLOAD_RESULT_MAX_OPS; op++) {
        mqload_hist_t *h = s->sec_op_hist[op];
        if (!h || !h->total) continue;
        mqload_sparse_t sp;
        mqload_sparse_init(&sp);
        mqload_sparse_from_hist(&sp, h);
        mqload_sparse_merge(mqload_second_op(t, op), &sp);
        mqload_sparse_merge(all, &sp);
        /* The run's and the operation's histograms get the second's latencies only now: a
         * completion records into one histogram (mqload_tstats_record_full). */
        mqload_hist_add_sparse(s->r.hist, &sp);
        if (op < s->r.n_ops) mqload_hist_add_sparse(s->r.ops[op].hist, &sp);
        mqload_sparse_free(&sp);
        mqload_hist_init(h);
    }
}

void mqload_tstats_ext_free(mqload_tstats_t *s)
{
    for (size_t op = 0; op < MQLOAD_RESULT_MAX_OPS; op++) {
        mqload_hist_destroy(s->sec_op_hist[op]);
        s->sec_op_hist[op] = NULL;
    }
}
