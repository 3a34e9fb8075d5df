/* histfmt: how a measurement is written down: a latency as text ("1.23ms"), and a histogram as
 * the JSON the result carries, {"scheme", "unit", "count", "min", "max", "sum", "buckets": [[index,
 * count], ...]}, and read back from it exactly. Below the reports and the merge, which all use it. */
#ifndef MQLOAD_HISTFMT_H
#define MQLOAD_HISTFMT_H

#include <stdbool.h>
#include <stddef.h>

#include <bson/bson.h>

#include "hist.h"
#include "strbuf.h"

/* Formats a latency given in ns ("412us", "1.23ms", "2.5s"). */
void mqload_fmt_latency(double ns, char *out, size_t outsz);
/* A histogram as JSON (the form above). */
void mqload_hist_json(const mqload_hist_t *h, mqload_strbuf_t *out);
void mqload_sparse_json(const mqload_sparse_t *s, mqload_strbuf_t *out);
/* Reading mqload's JSON back (histfmt.c, merge.c): sets err to "msg" or "msg: key" and returns
 * false; a count as an unsigned number (0 when negative or not a number). */
bool mqload_json_fail(char *err, size_t esz, const char *msg, const char *key);
uint64_t mqload_json_u64(const bson_iter_t *it);
/* Reads a histogram written by mqload_hist_json into h (added to what h holds). */
bool mqload_hist_from_json(const bson_iter_t *it, mqload_hist_t *h, char *err, size_t esz);
/* The same into s (initialised by the call; the caller frees it, also on failure). */
bool mqload_sparse_from_json(const bson_iter_t *it, mqload_sparse_t *s, char *err, size_t esz);

#endif
