/* sched: when operations are due. An open-loop run (--rate, --stages) gives operation k of a
 * share (a thread, or a worker's pool of threads) an intended time; latency counts from it. The
 * arrival rate is piecewise linear: the warmup at the start rate, then each stage ramping from
 * the previous target to its own (k6's ramping-arrival-rate); a plain --rate is one constant
 * piece without end. --concurrency-stages ramp the operations in flight the same way. */
#ifndef MQLOAD_SCHED_H
#define MQLOAD_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "args.h"

typedef struct {
    double start_s, dur_s;    /* from t0 (the warmup's start); dur_s is INFINITY for the last piece of a plain rate */
    double r0, r1;            /* rate (ops/s of this share) or concurrency at the start and the end */
    double n0;                /* operations due before this piece */
    int stage;                /* index into cfg->stages; -1 for the warmup and a plain rate */
} mqload_piece_t;

typedef struct {
    int64_t t0_ns;
    size_t n;
    mqload_piece_t p[MQLOAD_MAX_STAGE_ARGS + 1];
    size_t cursor;            /* the piece the last lookup found (lookups move forward) */
} mqload_sched_t;

/* The arrival schedule of one share out of `shares` of cfg's rate or rate stages, from t0_ns. */
void mqload_sched_init_rate(mqload_sched_t *s, const mqload_config_t *cfg, double shares, int64_t t0_ns);
/* The concurrency ramp of --concurrency-stages for one share out of `shares`. */
void mqload_sched_init_conc(mqload_sched_t *s, const mqload_config_t *cfg, double shares, int64_t t0_ns);
/* Intended time of operation k (INT64_MAX when the schedule ends before it). */
int64_t mqload_sched_time(mqload_sched_t *s, uint64_t k);
/* How many operations are due strictly before t_ns. */
uint64_t mqload_sched_count_before(mqload_sched_t *s, int64_t t_ns);
/* The stage (index into cfg's stages) t_ns falls in, -1 outside the stages. */
int mqload_sched_stage_at(const mqload_sched_t *s, int64_t t_ns);
/* The concurrency ramp's value at t_ns (the share's operations in flight, not rounded). */
double mqload_sched_value_at(const mqload_sched_t *s, int64_t t_ns);

#endif
