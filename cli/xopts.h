/* xopts: mqload's output and YCSB options (--percentiles, --hlog, --csv, --ycsb-summary,
 * --metrics-listen, --fieldcount, ...), parsed here beside args.c so that each stays a readable size.
 * The values live in mqload_config_t.x. */
#ifndef MQLOAD_XOPTS_H
#define MQLOAD_XOPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

void mqload_xopts_init(mqload_xopts_t *x);
void mqload_xopts_free(mqload_xopts_t *x);
void mqload_xopts_usage(FILE *out);

/* The default percentile list (quantiles). */
size_t mqload_default_percentiles(const double **out);
/* Parses "50,95,99.9" or "p50,p99" into ascending quantiles. false when malformed. */
bool mqload_parse_percentiles(const char *s, double *out, size_t max, size_t *n);
/* "p99.9", "p50": the label of a quantile; json: "p99_9" for JSON keys. */
void mqload_percentile_label(double q, bool json, char *out, size_t n);

#endif
