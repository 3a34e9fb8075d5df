/* xopts: mqload's output and YCSB options (--percentiles, --hlog, --csv, --ycsb-summary,
 * --metrics-listen, --fieldcount, ...), parsed here beside args.c so that each stays a readable size.
 * The values live in mqload_config_t.x. */
#ifndef MQLOAD_XOPTS_H
#define MQLOAD_XOPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

void mqload_xopts_init(mqload_xopts_t *x);
void mqload_xopts_free(mqload_xopts_t *x);
void mqload_xopts_usage(FILE *out);

/* The default percentile list (quantiles). */
size_t mqload_default_percentiles(const double **out);
/* Parses "50,95,99.9" or "p50,p99" into ascending quantiles. false when malformed. */
bool mqload_parse_percentiles(const char *s, double *out, size_t max, size_t *n);
/* "p99.9", "p50": the label of a quantile; json: "p99_9" for JSON keys. */
void mqload_percentile_label(double q, bool json, char *out, size_t n);

/* The option at argv[*i] if it is one of xopts.h's (*i moves past its value): 1 taken,
 * 0 not one of them, -1 bad value (err set). */
int mqload_xopts_parse(mqload_config_t *cfg, int argc, char **argv, int *i, char *err, size_t esz);
/* Checks across options, before the worker shares are computed; -1 with err set. */
int mqload_xopts_check(mqload_config_t *cfg, char *err, size_t esz);

#endif
