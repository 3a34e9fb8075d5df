/* keydist: YCSB's key generators (Gray et al., "Quickly generating billion-record synthetic
 * databases", as YCSB's ZipfianGenerator implements it). */
#include "keydist.h"

#include <math.h>
#include <string.h>

/* YCSB's ScrambledZipfianGenerator draws from a fixed 10-billion-item zipfian whose zeta it
 * precomputed, then hashes into the key space: no O(n) zeta per key space size. */
#define SCRAMBLED_ITEMS 10000000000ull
#define SCRAMBLED_ZETAN 26.46902820178302

int mqload_keydist_parse(const char *name)
{
    if (!strcmp(name, "uniform")) return MQLOAD_KEYS_UNIFORM;
    if (!strcmp(name, "zipfian")) return MQLOAD_KEYS_ZIPFIAN;
    if (!strcmp(name, "latest")) return MQLOAD_KEYS_LATEST;
    if (!strcmp(name, "hotspot")) return MQLOAD_KEYS_HOTSPOT;
    if (!strcmp(name, "exponential")) return MQLOAD_KEYS_EXPONENTIAL;
    return -1;
}

const char *mqload_keydist_name(mqload_keydist_kind_t kind)
{
    switch (kind) {
    case MQLOAD_KEYS_ZIPFIAN: return "zipfian";
    case MQLOAD_KEYS_LATEST: return "latest";
    case MQLOAD_KEYS_HOTSPOT: return "hotspot";
    case MQLOAD_KEYS_EXPONENTIAL: return "exponential";
    default: return "uniform";
    }
}

uint64_t mqload_fnv64(uint64_t v)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 8; i++) {
        h ^= v & 0xff;
        h *= 0x100000001b3ull;
        v >>= 8;
    }
    return h;
}

static double zeta_range(uint64_t from, uint64_t to, double theta)
{
    double s = 0;
    for (uint64_t i = from; i < to; i++) s += 1.0 / pow((double) (i + 1), theta);
    return s;
}

static void zipf_set(mqload_keydist_t *d, uint64_t items, double zetan)
{
    double theta = MQLOAD_ZIPF_THETA;
    d->items = items;
    d->zetan = zetan;
    d->zeta2 = 1.0 + pow(0.5, theta);
    d->alpha = 1.0 / (1.0 - theta);
    d->eta = (1.0 - pow(2.0 / (double) items, 1.0 - theta)) / (1.0 - d->zeta2 / zetan);
}

static uint64_t zipf_next(const mqload_keydist_t *d, mqload_rng_t *rng)
{
    double u = mqload_rng_double(rng), uz = u * d->zetan;
    if (uz < 1.0) return 0;
    if (uz < 1.0 + pow(0.5, MQLOAD_ZIPF_THETA)) return d->items > 1 ? 1 : 0;
    uint64_t v = (uint64_t) ((double) d->items * pow(d->eta * u - d->eta + 1.0, d->alpha));
    return v < d->items ? v : d->items - 1;
}

void mqload_keydist_init(mqload_keydist_t *d, mqload_keydist_kind_t kind, uint64_t n)
{
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->n = n ? n : 1;
    if (kind == MQLOAD_KEYS_ZIPFIAN) zipf_set(d, SCRAMBLED_ITEMS, SCRAMBLED_ZETAN);
    else if (kind == MQLOAD_KEYS_LATEST) zipf_set(d, d->n, zeta_range(0, d->n, MQLOAD_ZIPF_THETA));
    else if (kind == MQLOAD_KEYS_EXPONENTIAL)
        /* YCSB: gamma = -ln(1 - percentile/100) / range, range = recordcount * frac. */
        d->gamma = -log(1.0 - MQLOAD_EXPONENTIAL_PERCENTILE / 100.0) / ((double) d->n * MQLOAD_EXPONENTIAL_FRAC);
}

uint64_t mqload_keydist_next(mqload_keydist_t *d, mqload_rng_t *rng, uint64_t latest)
{
    switch (d->kind) {
    case MQLOAD_KEYS_ZIPFIAN:
        return mqload_fnv64(zipf_next(d, rng)) % d->n;
    case MQLOAD_KEYS_LATEST: {
        uint64_t items = latest + 1;
        /* The key space grew: extend zeta incrementally, as YCSB does, instead of recomputing. */
        if (items > d->items) zipf_set(d, items, d->zetan + zeta_range(d->items, items, MQLOAD_ZIPF_THETA));
        uint64_t off = zipf_next(d, rng);
        return off <= latest ? latest - off : 0;
    }
    case MQLOAD_KEYS_HOTSPOT: {
        /* The hot set is the lowest keys, at least one; with a single key it is all there is. */
        uint64_t hot = (uint64_t) ((double) d->n * MQLOAD_HOTSPOT_DATA_FRACTION);
        if (hot < 1) hot = 1;
        if (hot >= d->n || mqload_rng_double(rng) < MQLOAD_HOTSPOT_OPN_FRACTION) return mqload_rng_below(rng, hot);
        return hot + mqload_rng_below(rng, d->n - hot);
    }
    case MQLOAD_KEYS_EXPONENTIAL: {
        /* YCSB draws again while the distance reaches below key 0; bounded here, then uniform. */
        for (int tries = 0; tries < 64; tries++) {
            double u = mqload_rng_double(rng);
            double dist = -log(1.0 - u) / d->gamma;
            if (dist <= (double) latest) return latest - (uint64_t) dist;
        }
        return mqload_rng_below(rng, latest + 1);
    }
    default:
        return mqload_rng_below(rng, d->n);
    }
}
