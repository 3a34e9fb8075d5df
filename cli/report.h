/* report: the text report and the JSON result (schema in docs/mqload/mqload.md). Both take a finished
 * (merged) result; neither ever sees the raw URI, only result->uri_redacted. */
#ifndef MQLOAD_REPORT_H
#define MQLOAD_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "stats.h"
#include "strbuf.h"

void mqload_report_text(const mqload_result_t *r, mqload_strbuf_t *out);
void mqload_report_json(const mqload_result_t *r, mqload_strbuf_t *out);
/* A histogram as JSON: {"scheme", "unit", "count", "min", "max", "sum", "buckets": [[index, count], ...]}. */
void mqload_hist_json(const mqload_hist_t *h, mqload_strbuf_t *out);
void mqload_sparse_json(const mqload_sparse_t *s, mqload_strbuf_t *out);
/* Writes text to path ("-" for stdout). false with err set. */
bool mqload_write_file(const char *path, const char *text, size_t len, char *err, size_t esz);
/* Formats a latency given in ns ("412us", "1.23ms", "2.5s"). */
void mqload_fmt_latency(double ns, char *out, size_t outsz);

#endif
