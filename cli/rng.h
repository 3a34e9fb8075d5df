/* rng: xoshiro256** (Blackman & Vigna), seeded through splitmix64. One per thread: never shared. */
#ifndef MQLOAD_RNG_H
#define MQLOAD_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} mqload_rng_t;

static inline uint64_t mqload_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Seeds from (seed, stream): each thread gets its own stream of one run's seed. */
static inline void mqload_rng_seed(mqload_rng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ull);
    for (int i = 0; i < 4; i++) r->s[i] = mqload_splitmix64(&x);
}

static inline uint64_t mqload_rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t mqload_rng_next(mqload_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = mqload_rng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = mqload_rng_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static inline double mqload_rng_double(mqload_rng_t *r) { return (double) (mqload_rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform in [0, n) without modulo bias (Lemire's multiply-shift with rejection). n > 0. */
static inline uint64_t mqload_rng_below(mqload_rng_t *r, uint64_t n)
{
    unsigned __int128 m = (unsigned __int128) mqload_rng_next(r) * n;
    uint64_t lo = (uint64_t) m;
    if (lo < n) {
        uint64_t thresh = -n % n;
        while (lo < thresh) {
            m = (unsigned __int128) mqload_rng_next(r) * n;
            lo = (uint64_t) m;
        }
    }
    return (uint64_t) (m >> 64);
}

#endif
