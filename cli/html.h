/* html: a self-contained HTML report (no scripts, no network): summary cards, throughput and
 * p50/p99 over time, the latency percentile distribution on a log axis, per-operation table,
 * errors and configuration. The charts are inline SVG drawn here. */
#ifndef MQLOAD_HTML_H
#define MQLOAD_HTML_H

#include "stats.h"
#include "strbuf.h"

void mqload_report_html(const mqload_result_t *r, mqload_strbuf_t *out);

#endif
