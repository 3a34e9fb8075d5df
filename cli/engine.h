/* engine: running a workload. Two engines share this interface: mqc (event-loop threads, each
 * with its own client; runner.c) and mongoc (libmongoc's pool, one blocking thread per operation
 * in flight; engine_mongoc.c). The app fills a run, the engine checks the server, seeds, starts its
 * threads and joins them; the main thread meanwhile prints progress and handles Ctrl-C. */
#ifndef MQLOAD_ENGINE_H
#define MQLOAD_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "args.h"
#include "stats.h"
#include "workload.h"

typedef struct mqload_run {
    const mqload_config_t *cfg;
    const mqload_workload_t *wl;
    char *uri;                   /* the URI to connect with (maxPoolSize added); secret */
    char uri_redacted[1024];
    uint64_t rng_seed;
    uint64_t lanes, lane0;       /* key lanes over all workers; this process's first lane */

    /* timing (CLOCK_MONOTONIC ns) */
    int64_t t0_ns;               /* start of warmup */
    int64_t measure_ns;          /* start of the measured window */
    int64_t end_ns;              /* end of the measured window (INT64_MAX with --requests) */
    double start_unix;           /* wall clock at measure_ns */
    double start_late_s;         /* --start-at: how much after it this worker could start */
    _Atomic int stop;            /* set by Ctrl-C: stop submitting, drain, report */
    _Atomic int64_t stop_ns;

    /* per engine thread */
    size_t n_stats;
    mqload_tstats_t *stats;
    _Atomic size_t threads_done;
    _Atomic int64_t last_done_ns; /* latest completion of a measured op */

    uint64_t conns_opened;       /* summed at the end; UINT64_MAX when unknown */
    void *engine;                /* the engine's private state */
} mqload_run_t;

int64_t mqload_now_ns(void);
/* How many threads (each with its own statistics and key lane) the configured engine runs. */
size_t mqload_engine_threads(const mqload_config_t *cfg);
#define MQLOAD_MONGOC_OPEN_LOOP_THREADS 64
/* The mqc engine's in-flight cap per thread in an open loop without -c. */
#define MQLOAD_OPEN_LOOP_DEFAULT_CAP 10000
/* Share i of total split n ways (the first ones take the remainder). */
uint64_t mqload_share(uint64_t total, uint64_t n, uint64_t i);
/* The kind under which an error is counted ("server:DuplicateKey(11000)", "timeout:operation"). */
void mqload_error_kind_mqc(const void *mqc_error, char *out, size_t outsz);
/* The URI with maxPoolSize=n set (replacing the URI's own only when force). Caller frees. */
char *mqload_uri_with_pool(const char *uri, uint32_t n, bool force);

/* The mqc engine (runner.c). */
bool mqload_mqc_prepare(mqload_run_t *run, char *err, size_t esz);  /* clients; bad URI fails here */
bool mqload_mqc_check(mqload_run_t *run, char *err, size_t esz);    /* ping */
bool mqload_mqc_seed(mqload_run_t *run, char *err, size_t esz);
bool mqload_mqc_start(mqload_run_t *run, char *err, size_t esz);
void mqload_mqc_join(mqload_run_t *run);
void mqload_mqc_cleanup(mqload_run_t *run);

/* The libmongoc engine (engine_mongoc.c). */
bool mqload_mongoc_prepare(mqload_run_t *run, char *err, size_t esz);
bool mqload_mongoc_check(mqload_run_t *run, char *err, size_t esz);
bool mqload_mongoc_seed(mqload_run_t *run, char *err, size_t esz);
bool mqload_mongoc_start(mqload_run_t *run, char *err, size_t esz);
void mqload_mongoc_join(mqload_run_t *run);
void mqload_mongoc_cleanup(mqload_run_t *run);

#endif
