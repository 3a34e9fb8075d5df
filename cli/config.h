/* config: mqload's whole configuration, one struct and no globals: filled by args.c from the
 * command line (xopts.c parses the output and YCSB options into its x), read by everything else. */
#ifndef MQLOAD_CONFIG_H
#define MQLOAD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQLOAD_MAX_PERCENTILES 16

typedef struct {
    double pcts[MQLOAD_MAX_PERCENTILES]; /* --percentiles, as quantiles in (0, 1), ascending */
    size_t n_pcts;                      /* 0: the default list (p50 p90 p95 p99 p99.9 p99.99) */
    char *hlog;                         /* --hlog FILE: HdrHistogram interval log */
    char *csv;                          /* --csv FILE: one row per second */
    char *ycsb_summary;                 /* --ycsb-summary FILE: YCSB's text format ("-": stdout) */
    char *metrics_listen;               /* --metrics-listen HOST:PORT: OpenMetrics/Prometheus */
    double metrics_linger_s;            /* --metrics-linger: keep serving the final values this long */
    uint32_t fieldcount, fieldlength;   /* YCSB document shape (0: YCSB's 10 x 100 bytes) */
    uint64_t recordcount;               /* --recordcount (0: not given) */
    bool phase_set;
    bool phase_load;                    /* --phase load: insert recordcount records, measured */
} mqload_xopts_t;

typedef enum { MQLOAD_ENGINE_MQC = 0, MQLOAD_ENGINE_MONGOC } mqload_engine_t;

/* --stages / --concurrency-stages: "10s:1k,1m:5k,10s:0", each stage ramping linearly from the
 * previous target (the first from --rate or -c, default 0) to its own. */
#define MQLOAD_MAX_STAGE_ARGS 32
typedef enum { MQLOAD_STAGES_NONE = 0, MQLOAD_STAGES_RATE, MQLOAD_STAGES_CONCURRENCY } mqload_stages_kind_t;
typedef struct {
    double dur_s;
    double target;             /* total ops/s, or total operations in flight */
} mqload_stage_arg_t;

#define MQLOAD_DEFAULT_MAX_ERROR_RATE 0.05 /* --max-error-rate: above this share of failures, exit 4 */

typedef struct {
    char *uri;                 /* as given: contains the password, never print it */
    char *db, *collection;
    bool db_set, collection_set;
    double duration_s;         /* 0 when -n is used */
    uint64_t requests;         /* -n; 0 = by duration */
    double warmup_s;
    uint32_t concurrency;      /* closed loop: total in flight; open loop: in-flight cap */
    bool concurrency_set;
    double rate;               /* -R: total ops/s; 0 = closed loop */
    uint32_t threads;
    uint32_t connections;      /* -C per thread; 0 = enough for the concurrency */
    char *op;                  /* --op */
    char *mix;                 /* --mix */
    char *workload_file;       /* --workload */
    char *preset;              /* --preset */
    uint64_t seed_docs;        /* --seed N */
    bool seed_set;
    uint64_t keys;             /* --keys: key space (default: --seed N, else 10000) */
    bool keys_set;
    int key_dist;              /* mqload_keydist_kind_t; -1 = the workload's or uniform */
    uint32_t seed_batch;       /* --seed-batch: documents per insert_many */
    uint64_t rng_seed;         /* --seed-rng */
    bool rng_seed_set;
    char *json_out;            /* --json FILE or "-" */
    char *html_out;
    char *threshold;
    mqload_engine_t engine;
    bool quiet;
    int progress;              /* -1 auto (tty), 0 off, 1 on */
    double timeout_s;          /* --timeout: per-operation timeoutMS; 0 = none */
    double grace_s;            /* --grace: waiting for in-flight operations at the end */
    uint32_t worker_index, workers; /* --worker-index/--workers: this process's share */
    bool workers_set;          /* --workers or MQLOAD_WORKERS given */
    /* After parsing, concurrency and requests are this worker's share; the totals asked for: */
    uint32_t concurrency_total;
    uint64_t requests_total;
    double start_at;           /* --start-at: wall-clock start of the measured window (Unix s); 0 = none */
    double start_tolerance_s;  /* --start-tolerance: later than start_at + this is a late start */
    bool json_framed;          /* --json-framed: the JSON result on stdout, framed for pod logs */
    bool warmup_set, duration_set;
    mqload_stages_kind_t stages_kind;
    mqload_stage_arg_t stages[MQLOAD_MAX_STAGE_ARGS];
    size_t n_stages;
    bool open_loop;            /* --rate or --stages: operations arrive on a schedule */
    double max_error_rate;     /* 0..1; failures above it exit 4 (1 = never) */
    char *server_label;        /* --server-label: what the server is, echoed in every report */
    mqload_xopts_t x;          /* output and YCSB options (xopts.h) */
} mqload_config_t;

#endif
