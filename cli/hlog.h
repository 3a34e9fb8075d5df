/* hlog: HdrHistogram's interval log (.hlog, log format 1.3), so that a run's latencies can be
 * read by HdrHistogram's own tools (HistogramLogProcessor, HistogramLogAnalyzer, the Python and
 * Go ports) and merged with what other tools recorded.
 *
 * Our histogram's bucket layout (hist.h: unit 1 ns, 128 linear sub-buckets per power of two) is
 * exactly that of an HdrHistogram with lowestDiscernibleValue 1, 2 significant digits: the counts
 * array carries over index for index, so the log holds the very counts the report was computed
 * from, not an approximation of them. Values are nanoseconds (HdrHistogram's convention: its tools
 * divide by 1e6 to show milliseconds), one interval line per second of the measured window for all
 * operations, followed by one tagged line ("Tag=find,...") per operation that completed in it. */
#ifndef MQLOAD_HLOG_H
#define MQLOAD_HLOG_H

#include "hist.h"
#include "stats.h"
#include "strbuf.h"

/* HdrHistogram settings the encoding declares. */
#define MQLOAD_HDR_LOWEST 1
#define MQLOAD_HDR_HIGHEST ((int64_t) 1 << (MQLOAD_HIST_MAX_EXP + 1))
#define MQLOAD_HDR_SIGFIGS 2

/* Appends the base64 of h's V2 compressed encoding ("HISTF..."). */
void mqload_hdr_encode(const mqload_sparse_t *h, mqload_strbuf_t *out);
/* The whole interval log of a result: header comments, legend, one line per timeline second. */
void mqload_hlog_write(const mqload_result_t *r, mqload_strbuf_t *out);

#endif
