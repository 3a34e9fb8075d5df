/* args: mqload's command line, parsed into one configuration (no globals). */
#ifndef MQLOAD_ARGS_H
#define MQLOAD_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "xopts.h"

#define MQLOAD_DEFAULT_URI "mongodb://127.0.0.1:27017"

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

typedef enum {
    MQLOAD_ARGS_RUN = 0,       /* run with the configuration */
    MQLOAD_ARGS_EXIT = 1,      /* --help or --version printed: exit 0 */
    MQLOAD_ARGS_ERROR = 2,     /* message in err: exit 1 */
} mqload_args_rc_t;

void mqload_config_init(mqload_config_t *cfg);
void mqload_config_free(mqload_config_t *cfg);

/* Parses argv (argv[0] is the program). Long options take "--name value" or "--name=value";
 * short ones "-c 8" or "-c8". Environment MQLOAD_URI is the default --uri, JOB_COMPLETION_INDEX
 * of --worker-index, MQLOAD_WORKERS of --workers. With several workers, concurrency and requests
 * become this worker's share (the first workers take the remainder); rate stays the total (the
 * engines divide it). out receives --help and --version text. */
mqload_args_rc_t mqload_args_parse(mqload_config_t *cfg, int argc, char **argv, FILE *out, char *err,
                                   size_t errsize);

/* "10", "10s", "500ms", "2m", "1h", "250us": seconds. false when malformed or negative. */
bool mqload_parse_duration(const char *s, double *out);
/* --start-at: RFC 3339 ("2030-01-02T03:04:05.25Z", "...+02:00", 't'/'z'/' ' accepted) or Unix
 * seconds ("1900000000.5"). Seconds since the epoch; false when malformed. */
bool mqload_parse_start_at(const char *s, double *out);
/* "5000", "5k", "1.5M": a count or rate. */
bool mqload_parse_number(const char *s, double *out);
/* "10s:1k,1m:5k,10s:0" into out (at most max stages); false with err set when malformed. */
bool mqload_parse_stages(const char *s, bool integers, mqload_stage_arg_t *out, size_t max, size_t *n, char *err,
                         size_t esz);

void mqload_usage(FILE *out);

/* xopts.c: the option at argv[*i] if it is one of xopts.h's (*i moves past its value): 1 taken,
 * 0 not one of them, -1 bad value (err set). */
int mqload_xopts_parse(mqload_config_t *cfg, int argc, char **argv, int *i, char *err, size_t esz);
/* xopts.c: checks across options, before the worker shares are computed; -1 with err set. */
int mqload_xopts_check(mqload_config_t *cfg, char *err, size_t esz);

#endif
