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
} mqload_errcount_t;

typedef struct {
    uint64_t ops, ok, errors; /* completed in this second of the measured window */
    mqload_sparse_t hist;     /* their latencies */
    mqload_sparse_t *op_hist; /* per operation (the result's op index), n_op_hist of them (series.h) */
    size_t n_op_hist;
    int64_t in_flight, conns_open; /* sampled during the second: most in flight, open connections; -1: none */
} mqload_second_t;

typedef struct {
    char name[32];
    char type[16];
    uint64_t ok, errors;
    mqload_hist_t *hist;      /* all completed operations of this name (ok and failed) */
} mqload_opstats_t;

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
    mqload_hist_t *hist;      /* every completed operation */
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
    mqload_hist_t *sec_hist;  /* the current second's latencies */
    int64_t cur_sec;          /* -1 before the first measured completion */
    uint64_t sec_ops, sec_ok, sec_err;
    _Atomic uint64_t a_submitted, a_completed, a_errors; /* all ops (warmup too), by the engine; errors measured */
    pthread_mutex_t pub_lock;
    int64_t pub_sec;          /* the last second flushed (-1: none) */
    mqload_sparse_t pub_hist;
    uint64_t pub_ops, pub_errors;
    mqload_hist_t *sec_op_hist[MQLOAD_RESULT_MAX_OPS]; /* the current second per operation (series.h) */
    _Atomic uint64_t a_conns_open; /* the engine's open connections + 1, set each tick; 0: unknown */
    _Atomic uint64_t a_op_ok[MQLOAD_RESULT_MAX_OPS], a_op_err[MQLOAD_RESULT_MAX_OPS]; /* measured, per op (metrics.h) */
} mqload_tstats_t;

void mqload_tstats_init(mqload_tstats_t *s);
void mqload_tstats_free(mqload_tstats_t *s);
/* Records one measured operation that ended at sec (second of the measured window it completed
 * in) after latency_ns. err_kind NULL for success. */
void mqload_tstats_record(mqload_tstats_t *s, size_t op, uint64_t latency_ns, const char *err_kind, int64_t sec);
/* Closes the current second when sec has moved past it (call at least once a second, and with
 * INT64_MAX at the end). */
void mqload_tstats_flush(mqload_tstats_t *s, int64_t sec);

#endif
