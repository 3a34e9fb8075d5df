/* stats: what a run measured. One mqload_result_t per thread while running (owned by that
 * thread alone), merged into one at the end; `mqload merge` merges results read from JSON the
 * same way. Merging adds counts and histogram buckets: it is exact. */
#ifndef MQLOAD_STATS_H
#define MQLOAD_STATS_H

#include <bson/bson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hist.h"

#define MQLOAD_RESULT_MAX_OPS 32

typedef struct {
    char kind[96];            /* "server:DuplicateKey(11000)", "timeout", "network", ... */
    uint64_t count;
    char message[256];        /* the first error of this kind ("" when unknown, e.g. old JSON) */
} mqload_errcount_t;

typedef struct {
    uint64_t ops, ok, errors; /* completed in this second of the measured window */
    uint64_t sent, late;      /* open loop: measured operations sent in this second, and the late ones */
    mqload_sparse_t hist;     /* the latencies of the successful ones (failures never hide a slow second) */
    mqload_sparse_t *op_hist; /* the same per operation (the result's op index), n_op_hist of them (below) */
    size_t n_op_hist;
    int64_t in_flight, conns_open; /* sampled during the second: most in flight, open connections; -1: none */
} mqload_second_t;

typedef struct {
    char name[32];
    char type[16];
    uint64_t ok, errors;
    mqload_hist_t *hist;      /* the successful operations of this name */
    mqload_hist_t *err_hist;  /* the failed ones: a fast failure must not pass for a fast success */
} mqload_opstats_t;

/* One stage of --stages / --concurrency-stages: its own counts and successful latencies. An
 * operation belongs to the stage its intended (open loop) or submit (closed loop) time falls in. */
typedef struct {
    double dur_s;
    double from, to;          /* target at the stage's start and end (ops/s or operations in flight) */
    uint64_t scheduled, submitted, unsent, late, ok, errors;
    mqload_hist_t *hist;      /* successful operations */
} mqload_stage_t;

#define MQLOAD_MAX_STAGES 64
/* An operation sent this long after its intended time counts as late. */
#define MQLOAD_LATE_NS 1000000

typedef struct {
    char tool_version[32];
    char engine[32];
    char uri_redacted[1024];
    char workload_id[17];
    char workload_name[64];
    bson_t config;            /* the run's configuration, echoed in reports */
    double start_unix;        /* wall-clock start of the measured window (s since the epoch) */
    double duration_s;        /* length of the measured window */
    uint64_t submitted, completed, ok, errors;
    uint64_t conns_opened;
    uint64_t runs;            /* results merged into this one (1 for a single run) */
    bool interrupted;
    mqload_hist_t *hist;      /* every successful operation */
    mqload_hist_t *err_hist;  /* every failed one */
    /* Open loop (--rate, --stages): the schedule kept or not. scheduled = operations due in the
     * window; submitted of them were sent, unsent never were (the in-flight cap was full until the
     * window closed); late = sent MQLOAD_LATE_NS or more after their intended time; lag = how late
     * each sent one was. max_backlog: the most operations due and not yet sent at one time (merged:
     * the sum of each thread's or worker's largest). */
    bool open_loop;
    double target_rate;       /* ops/s this result was asked for (summed on merge; 0 for stages) */
    uint64_t scheduled, unsent, late, max_backlog;
    uint64_t unsent_wait_ns;  /* how long the oldest unsent operation had waited when the window closed */
    mqload_hist_t *lag;       /* send delay of the measured operations (ns) */
    char stage_kind[16];      /* "rate", "concurrency" or "" */
    mqload_stage_t stages[MQLOAD_MAX_STAGES];
    size_t n_stages;
    mqload_opstats_t ops[MQLOAD_RESULT_MAX_OPS];
    size_t n_ops;
    mqload_errcount_t *errs;
    size_t n_errs, cap_errs;
    mqload_second_t *timeline;
    size_t n_seconds, cap_seconds;
    char notes[1024];         /* merge remarks */
    double pcts[16];          /* --percentiles of the table and JSON (quantiles); n_pcts 0: the default */
    size_t n_pcts;
} mqload_result_t;

void mqload_result_init(mqload_result_t *r);
void mqload_result_free(mqload_result_t *r);
/* The index of the op named name (created with type when missing; -1 when full). */
int mqload_result_op(mqload_result_t *r, const char *name, const char *type);
void mqload_result_add_error(mqload_result_t *r, const char *kind, uint64_t n);
/* The same, keeping msg when it is the first message of this kind. */
void mqload_result_add_error_msg(mqload_result_t *r, const char *kind, const char *msg, uint64_t n);
/* Sets up n stages (their histograms); false when n is too large. */
bool mqload_result_stages(mqload_result_t *r, const char *kind, size_t n);
/* Operations sent per second over the window (open loop), and whether that fell short of the
 * schedule: fewer than MQLOAD_SHORTFALL_SENT of the operations due were sent. */
double mqload_result_achieved_rate(const mqload_result_t *r);
#define MQLOAD_SHORTFALL_SENT 0.99
bool mqload_result_shortfall(const mqload_result_t *r);
/* Failed share of the completed operations (0..1). */
double mqload_result_error_rate(const mqload_result_t *r);
/* The timeline entry of second sec (grown as needed). */
mqload_second_t *mqload_result_second(mqload_result_t *r, size_t sec);
/* dst += src. src's timeline second i lands in dst's second i + offset_s. Counts, histograms,
 * errors and connections add up; duration and start take the widest window. */
void mqload_result_merge(mqload_result_t *dst, const mqload_result_t *src, size_t offset_s);
/* Errors sorted by count, most frequent first. */
void mqload_result_sort_errors(mqload_result_t *r);
/* Completed operations per second over the measured window. */
double mqload_result_throughput(const mqload_result_t *r);

/* A thread's live statistics: its result plus the current second, and what the progress line
 * reads from another thread (relaxed atomics, and the last full second under a lock taken once
 * a second by each side). */
typedef struct {
    mqload_result_t r;
    int64_t cur_sec;          /* -1 before the first measured completion */
    uint64_t sec_ops, sec_ok, sec_err;
    _Atomic uint64_t a_submitted, a_completed, a_errors; /* all ops (warmup too), by the engine; errors measured */
    _Atomic uint64_t a_backlog; /* open loop: operations due and not yet sent, now */
    pthread_mutex_t pub_lock;
    int64_t pub_sec;          /* the last second flushed (-1: none) */
    mqload_sparse_t pub_hist;
    uint64_t pub_ops, pub_errors;
    mqload_hist_t *sec_op_hist[MQLOAD_RESULT_MAX_OPS]; /* the current second's successful latencies per
                                                        * operation, the only histogram a completion
                                                        * records into (below) */
    _Atomic uint64_t a_conns_open; /* the engine's open connections + 1, set each tick; 0: unknown */
    _Atomic uint64_t a_op_ok[MQLOAD_RESULT_MAX_OPS], a_op_err[MQLOAD_RESULT_MAX_OPS]; /* measured, per op (metrics.h) */
} mqload_tstats_t;

/* Adds n to a counter of the thread owning these statistics: it alone writes it, so a relaxed
 * load and store do (readers see old or new, never torn) without a locked read-modify-write. */
static inline void mqload_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

void mqload_tstats_init(mqload_tstats_t *s);
void mqload_tstats_free(mqload_tstats_t *s);
/* Records one measured operation that ended at sec (second of the measured window it completed
 * in) after latency_ns. err_kind NULL for success. */
void mqload_tstats_record(mqload_tstats_t *s, size_t op, uint64_t latency_ns, const char *err_kind, int64_t sec);
/* The same with the error's message (kept when it is the first of its kind) and the stage (-1: none). */
void mqload_tstats_record_full(mqload_tstats_t *s, size_t op, uint64_t latency_ns, const char *err_kind,
                               const char *err_msg, int64_t sec, int stage);
/* A success of op (< MQLOAD_RESULT_MAX_OPS) in the open second, h its histogram of the second:
 * the only histogram a completion records into (the run's and the operation's get the second's
 * latencies when it closes, mqload_tstats_ext_flush). */
static inline void mqload_tstats_ok_in_second(mqload_tstats_t *s, mqload_hist_t *h, size_t op, uint64_t latency_ns)
{
    mqload_hist_record(h, latency_ns);
    s->sec_ops++, s->sec_ok++;
    mqload_count(&s->a_op_ok[op], 1);
    s->r.completed++, s->r.ok++, s->r.ops[op].ok++;
}

/* mqload_tstats_record_full of a success outside any stage: inlined in the common case, a
 * completion in the second already open. */
static inline void mqload_tstats_record_ok(mqload_tstats_t *s, size_t op, uint64_t latency_ns, int64_t sec)
{
    mqload_hist_t *h = op < MQLOAD_RESULT_MAX_OPS ? s->sec_op_hist[op] : NULL;
    if (h && s->cur_sec >= 0 && sec == s->cur_sec) mqload_tstats_ok_in_second(s, h, op, latency_ns);
    else mqload_tstats_record_full(s, op, latency_ns, NULL, NULL, sec, -1);
}

/* A measured operation sent lag_ns after its intended time, in stage (-1: none), during second
 * sec of the window. */
void mqload_tstats_sent(mqload_tstats_t *s, uint64_t lag_ns, int stage, int64_t sec);
/* Closes the current second when sec has moved past it (call at least once a second, and with
 * INT64_MAX at the end). */
void mqload_tstats_flush(mqload_tstats_t *s, int64_t sec);

/* Per operation, beside each second's totals: the timeline entry's op_hist and the thread's
 * sec_op_hist (their JSON is series.h's). */

/* The sparse histogram of op (the result's op index) in second s, created empty when missing. */
mqload_sparse_t *mqload_second_op(mqload_second_t *s, size_t op);
void mqload_second_ext_init(mqload_second_t *s);
void mqload_second_ext_free(mqload_second_t *s);
/* d (a second of dst) += s (a second of src): per-op latencies by op name, gauges summed. */
void mqload_second_ext_merge(mqload_result_t *dst, mqload_second_t *d, const mqload_result_t *src, const mqload_second_t *s);
/* *d += s for a gauge of a second (in_flight, conns_open), where -1 means "no sample". */
void mqload_gauge_add(int64_t *d, int64_t s);

/* Counts one measured completion of op for the live metrics (relaxed atomics). */
void mqload_tstats_ext_count(mqload_tstats_t *s, size_t op, bool error);
/* Moves the current second's per-op histograms into timeline entry t, the run's and each
 * operation's histograms, and all (every operation's latencies of the second). */
void mqload_tstats_ext_flush(mqload_tstats_t *s, mqload_second_t *t, mqload_sparse_t *all);
void mqload_tstats_ext_free(mqload_tstats_t *s);

#endif
