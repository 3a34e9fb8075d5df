/* keydist: the keys operations touch, as YCSB draws them.
 *  uniform   every key in [0, n) equally likely
 *  zipfian   YCSB's scrambled zipfian (constant 0.99): popular keys spread over the key space by a
 *            hash, so the hot set is not just the smallest ids
 *  latest    YCSB's skewed-latest: recently inserted keys are the most popular (ycsb-d)
 *  hotspot   YCSB's HotspotIntegerGenerator: 80% of operations on a hot 20% of the keys (the
 *            lowest ones), the rest on the other 80% (hotspotdatafraction 0.2, hotspotopnfraction 0.8)
 *  exponential  YCSB's ExponentialGenerator as CoreWorkload uses it: a key an exponentially
 *            distributed distance below the newest one, 95% of them within the newest
 *            0.8571 * n keys (exponential.percentile 95, exponential.frac 0.8571428571)
 * One per thread (latest keeps state). */
#ifndef MQLOAD_KEYDIST_H
#define MQLOAD_KEYDIST_H

#include <stdint.h>

#include "rng.h"

typedef enum {
    MQLOAD_KEYS_UNIFORM = 0,
    MQLOAD_KEYS_ZIPFIAN,
    MQLOAD_KEYS_LATEST,
    MQLOAD_KEYS_HOTSPOT,
    MQLOAD_KEYS_EXPONENTIAL,
} mqload_keydist_kind_t;

#define MQLOAD_HOTSPOT_DATA_FRACTION 0.2
#define MQLOAD_HOTSPOT_OPN_FRACTION 0.8
#define MQLOAD_EXPONENTIAL_PERCENTILE 95.0
#define MQLOAD_EXPONENTIAL_FRAC 0.8571428571
/* The names, for messages. */
#define MQLOAD_KEYDIST_NAMES "uniform, zipfian, latest, hotspot or exponential"

#define MQLOAD_ZIPF_THETA 0.99

typedef struct {
    mqload_keydist_kind_t kind;
    uint64_t n;                 /* key space [0, n) */
    /* zipfian over [0, items) for LATEST (items grows with inserts) */
    uint64_t items;
    double zetan, zeta2, alpha, eta;
    double gamma;               /* EXPONENTIAL: the rate of the distance below the newest key */
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
