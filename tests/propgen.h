/* propgen: random documents for the property tests and the API fuzz target: every BSON type,
 * nesting, exact sizes from a few bytes up to maxBsonObjectSize. Randomness comes from a seeded
 * PRNG (tests; the seed is printed so a failure replays) or from the fuzzer's input bytes. */
#ifndef MQC_PROPGEN_H
#define MQC_PROPGEN_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s;              /* xorshift state when data is NULL */
    const uint8_t *data;     /* fuzzer input: read in turn, then zeros */
    size_t len, pos;
} pg_rng_t;

void pg_seed(pg_rng_t *r, uint64_t seed);
void pg_from_bytes(pg_rng_t *r, const uint8_t *data, size_t len);
uint64_t pg_next(pg_rng_t *r);
/* 0..n-1 (n > 0) */
uint32_t pg_below(pg_rng_t *r, uint32_t n);
/* a size from lo to hi, log-uniform: small ones common, big ones present */
size_t pg_size(pg_rng_t *r, size_t lo, size_t hi);

typedef enum {
    PG_TYPES_ALL,            /* every type libbson writes, deprecated ones included */
    PG_TYPES_FERRETDB,       /* what FerretDB 1.x stores: no decimal128, code, symbol, dbpointer,
                              * undefined, min/max key, arrays in arrays; finite doubles
                              * other than -0 */
} pg_types_t;

/* Appends `key: <random value>` to out; depth bounds nesting. */
void pg_value(pg_rng_t *r, bson_t *out, const char *key, int depth, pg_types_t types);
/* A document {_id: id, g: group, n: 0, <random fields>, [pad: "..."]} of exactly `size` bytes
 * when size is at least its random part (else as small as it gets). out is initialised. */
void pg_doc(pg_rng_t *r, bson_t *out, int32_t id, int32_t group, size_t size, pg_types_t types);
/* Exact byte equality, and a short JSON rendering for messages (static storage, 2 slots). */
bool pg_equal(const bson_t *a, const bson_t *b);
const char *pg_show(const bson_t *doc);

#endif
