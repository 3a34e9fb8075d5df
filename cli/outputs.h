/* outputs: the result in other tools' formats: a per-second CSV, YCSB's summary, HdrHistogram's
 * interval log (hlog.h); and writing every output the options ask for. */
#ifndef MQLOAD_OUTPUTS_H
#define MQLOAD_OUTPUTS_H

#include <stdbool.h>
#include <stddef.h>

#include "args.h"
#include "stats.h"
#include "strbuf.h"

/* second,unix,ops,ok,errors,mean_us,<percentiles>_us,max_us: one row per second of the window. */
void mqload_report_csv(const mqload_result_t *r, mqload_strbuf_t *out);
/* YCSB's text exporter: "[OVERALL], RunTime(ms), ..." and "[READ], 99thPercentileLatency(us), ...". */
void mqload_report_ycsb(const mqload_result_t *r, mqload_strbuf_t *out);
/* Writes --hlog, --csv and --ycsb-summary. false (err set, the others still written) on a failure. */
bool mqload_write_outputs(const mqload_xopts_t *x, const mqload_result_t *r, char *err, size_t esz);
/* One of --hlog, --csv, --ycsb-summary is "-" (stdout). */
bool mqload_outputs_on_stdout(const mqload_xopts_t *x);
/* Each output path's directory exists and is writable: false with err set. Checked before any traffic. */
bool mqload_outputs_writable(const mqload_config_t *cfg, char *err, size_t esz);

#endif
