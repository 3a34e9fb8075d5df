/* series: what the timeline holds beside each second's totals: each operation's successful
 * completions and their latencies in that second (recorded and merged by stats.c), and gauges
 * sampled during it (the most operations in flight, open connections). The HTML report draws
 * them; the JSON carries them so that `mqload merge` keeps them (gauges of several workers add
 * up, like their operations): this file writes and reads that JSON, and samples the gauges. */
#ifndef MQLOAD_SERIES_H
#define MQLOAD_SERIES_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "stats.h"
#include "strbuf.h"

struct mqload_run;

/* JSON of a timeline entry's extension: ,"in_flight":N,"conns_open":N,"by_op":{"find":{...}} */
void mqload_second_ext_json(const mqload_result_t *r, const mqload_second_t *s, mqload_strbuf_t *out);
/* Reads the extension's keys of a timeline entry (in_flight, conns_open, by_op). 1 read, 0 not one
 * of them, -1 malformed (err set). read_sparse reads a histogram (merge.c passes mqload_sparse_from_json). */
int mqload_second_ext_read(mqload_result_t *r, mqload_second_t *s, const bson_iter_t *f,
                           bool (*read_sparse)(const bson_iter_t *, mqload_sparse_t *, char *, size_t), char *err, size_t esz);

/* Gauges sampled by the main thread while the engines run. */
typedef struct {
    int64_t *in_flight, *conns; /* per second of the measured window; -1: no sample */
    size_t n, cap;
} mqload_gauges_t;

void mqload_gauges_init(mqload_gauges_t *g);
void mqload_gauges_free(mqload_gauges_t *g);
/* One sample at now (CLOCK_MONOTONIC ns); call as often as convenient (each keeps the maximum of
 * its second). */
void mqload_gauges_sample(mqload_gauges_t *g, const struct mqload_run *run, int64_t now);
/* Puts the samples into r's timeline. */
void mqload_gauges_apply(const mqload_gauges_t *g, mqload_result_t *r);

#endif
