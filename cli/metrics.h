/* metrics: live metrics of a running mqload in the OpenMetrics / Prometheus text format, served
 * over HTTP (GET /metrics) on --metrics-listen HOST:PORT by a thread of its own. It reads only
 * what the progress line reads (the engine threads' atomics and their published seconds), so the
 * hot path does not change. Counters are cumulative from the start of the run; the latency
 * histogram covers measured operations, a second behind (it grows by each thread's published
 * second). Clients asking for application/openmetrics-text get OpenMetrics 1.0, others the
 * Prometheus text format 0.0.4. */
#ifndef MQLOAD_METRICS_H
#define MQLOAD_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "strbuf.h"

typedef struct mqload_metrics mqload_metrics_t;

/* Binds addr ("127.0.0.1:9464", ":9464", "[::1]:0"), before any traffic. NULL with err set when the
 * address cannot be bound. The chosen port is in *port. */
mqload_metrics_t *mqload_metrics_listen(const char *addr, int *port, char *err, size_t esz);
/* Starts serving run's metrics (its engine threads' statistics exist). false with err set. */
bool mqload_metrics_serve(mqload_metrics_t *m, mqload_run_t *run, char *err, size_t esz);
/* The run is over: from now on the latency histogram is the result's (exact, every second) and
 * mqload_measuring is 0. For --metrics-linger. */
void mqload_metrics_final(mqload_metrics_t *m, const mqload_result_t *res);
/* Stops serving and frees; NULL-safe. */
void mqload_metrics_stop(mqload_metrics_t *m);
/* The exposition (for tests): openmetrics selects the format. */
void mqload_metrics_render(mqload_metrics_t *m, bool openmetrics, mqload_strbuf_t *out);

#endif
