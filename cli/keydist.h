/* keydist: the keys operations touch, as YCSB draws them.
 *  uniform   every key in [0, n) equally likely
 *  zipfian   YCSB's scrambled zipfian (constant 0.99): popular keys spread over the key space by a
 *            hash, so the hot set is not just the smallest ids
 *  latest    YCSB's skewed-latest: recently inserted keys are the most popular (ycsb-d)
 * One per thread (latest keeps state). */
#ifndef MQLOAD_KEYDIST_H
#define MQLOAD_KEYDIST_H

#include <stdint.h>

#include "rng.h"

typedef enum { MQLOAD_KEYS_UNIFORM = 0, MQLOAD_KEYS_ZIPFIAN, MQLOAD_KEYS_LATEST } mqload_keydist_kind_t;

#define MQLOAD_ZIPF_THETA 0.99

typedef struct {
    mqload_keydist_kind_t kind;
    uint64_t n;                 /* key space [0, n) */
    /* zipfian over [0, items) for LATEST (items grows with inserts) */
    uint64_t items;
    double zetan, zeta2, alpha, eta;
} mqload_keydist_t;

/* kind from its name; -1 for an unknown name. */
int mqload_keydist_parse(const char *name);
const char *mqload_keydist_name(mqload_keydist_kind_t kind);

void mqload_keydist_init(mqload_keydist_t *d, mqload_keydist_kind_t kind, uint64_t n);
/* A key in [0, n) (LATEST: in [0, latest]). latest is the newest key known to exist. */
uint64_t mqload_keydist_next(mqload_keydist_t *d, mqload_rng_t *rng, uint64_t latest);

/* FNV-1a over the 8 bytes of v, as YCSB scrambles zipfian values. */
uint64_t mqload_fnv64(uint64_t v);

#endif
