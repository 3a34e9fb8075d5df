/* threshold: pass/fail conditions on a result, k6-style.
 *   "p99<5ms,p50<=1ms,errors<0.1%,ops>10000,throughput>5000,find.p99<2ms"
 * Metrics: min mean p50 p90 p99 p99.9 p99.99 max (latency: ns, us, ms, s; a bare number is ms),
 * errors (a count, or a percentage of completed operations with %), ok, ops (completed),
 * throughput (ops/s). An "<op>." prefix restricts a metric to one operation of the workload.
 * Comparisons: < <= > >= ==. */
#ifndef MQLOAD_THRESHOLD_H
#define MQLOAD_THRESHOLD_H

#include <stdbool.h>
#include <stddef.h>

#include "stats.h"
#include "strbuf.h"

typedef struct mqload_threshold mqload_threshold_t;

/* NULL with err set for a malformed expression. */
mqload_threshold_t *mqload_threshold_parse(const char *expr, char *err, size_t esz);
void mqload_threshold_free(mqload_threshold_t *t);
/* Before the run: every "<op>." prefix names one of the workload's operations (names[0..n-1]).
 * false with err set ("--threshold fnd.p99<5ms: no operation named 'fnd' (the workload has: find)"). */
bool mqload_threshold_check_ops(const mqload_threshold_t *t, const char *const *names, size_t n, char *err, size_t esz);
/* True when every condition holds; each violated one adds a line to out ("threshold p99<5ms
 * violated: p99 = 7.31ms"). A condition naming an operation the result lacks is violated. */
bool mqload_threshold_check(const mqload_threshold_t *t, const mqload_result_t *r, mqload_strbuf_t *out);

#endif
