/* html: a self-contained HTML report (no scripts, no network): summary cards; throughput over time
 * with a line per operation and the target rate; errors per second on their own scale; p50/p99
 * over time with each operation's p99; operations in flight and open connections; the latency
 * percentile distribution on log axes; each threshold's result; the per-operation table; errors by
 * kind; the workload definition and the configuration. The charts are inline SVG drawn here
 * (<svg class="chart" data-chart=...>, each drawn series with class "series"). */
#ifndef MQLOAD_HTML_H
#define MQLOAD_HTML_H

#include "stats.h"
#include "strbuf.h"

void mqload_report_html(const mqload_result_t *r, mqload_strbuf_t *out);

#endif
