/* template: documents with generated values, compiled once and evaluated per operation.
 *
 * A template is Extended JSON in which a one-key document naming a generator is replaced by a
 * fresh value each time:
 *   {"$randInt": [lo, hi]}        integer in [lo, hi] (int32 when both fit, else int64)
 *   {"$randDouble": [lo, hi]}     double in [lo, hi)
 *   {"$seq": {}}                  0, 1, 2, ... ({"start": s, "step": k} optional); distinct
 *                                 across threads (and workers): lane + lanes * n
 *   {"$randString": n}            n random alphanumeric characters ({"$randString": [lo, hi]}: length in range)
 *   {"$choose": [v, ...]}         one of the values (themselves templates), uniformly, or
 *                                 {"$choose": {"from": [...], "weights": [...]}}
 *   {"$now": {}}                  the current time (BSON date)
 *   {"$key": {}}                  the operation's key (int64): drawn from the key distribution,
 *                                 or the next fresh key for inserts
 * Everything else is copied as it is. Compilation turns the JSON into a small tree whose constant
 * subtrees are pre-encoded BSON, so evaluating never re-reads JSON; a template in which only $key
 * varies is kept as its encoded bytes, the key patched in per evaluation. A compiled template holds
 * per-thread state ($seq counters): each thread compiles its own copy. */
#ifndef MQLOAD_TEMPLATE_H
#define MQLOAD_TEMPLATE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "rng.h"

typedef struct mqload_template mqload_template_t;

typedef struct {
    mqload_rng_t *rng;
    int64_t key;       /* the value of $key */
    uint64_t lane;     /* this thread's lane (thread index over all workers) */
    uint64_t lanes;    /* total number of lanes */
} mqload_tctx_t;

/* Compiles the document (or, with is_array, the array) doc. NULL with errmsg set on a malformed
 * generator ("$randInt needs [lo, hi]", ...). Owned by the caller. */
mqload_template_t *mqload_template_compile(const bson_t *doc, bool is_array, char *errmsg, size_t errsize);
/* Compiles the document or array that iter points at. */
mqload_template_t *mqload_template_compile_iter(const bson_iter_t *iter, char *errmsg, size_t errsize);
void mqload_template_destroy(mqload_template_t *t);
/* Writes a fresh instance into out (reinitialised first; out is not static). */
void mqload_template_eval(mqload_template_t *t, mqload_tctx_t *ctx, bson_t *out);
/* A fresh instance: the template's own document when only $key varies (its key patched in
 * place, valid until the next call on t), else buf with the instance written into it. */
const bson_t *mqload_template_render(mqload_template_t *t, mqload_tctx_t *ctx, bson_t *buf);
/* The same by walking the tree, which mqload_template_eval and _render skip when only $key
 * varies (they copy or patch the bytes then): the tests check both give the same bytes. */
void mqload_template_eval_tree(mqload_template_t *t, mqload_tctx_t *ctx, bson_t *out);
/* True when the template contains no generator (its value never changes). */
bool mqload_template_is_constant(const mqload_template_t *t);
/* True when evaluating copies pre-encoded bytes (nothing but $key varies), not the tree. */
bool mqload_template_is_fixed(const mqload_template_t *t);
/* True when the template uses $key somewhere. */
bool mqload_template_uses_key(const mqload_template_t *t);

#endif
