/* session_rules: the server-session rules of MongoDB, for the scripted server (tests/server/srv.c
 * applies them to every command but hello, in every mode). Header-only and libbson-only, so that
 * the server stays free of mqc code (and tests can use the lsid helpers).
 *
 * What a replica set or mongos does, and what these servers do instead where it matters:
 * - A session runs one operation at a time; a second one on the same lsid waits for the first.
 *   Here it is counted (overlaps), so that a test can demand 0 of a client.
 * - A write whose txnNumber is lower than the highest already seen on its lsid is refused with
 *   TransactionTooOld (code 225, no error label: not retryable). The same number again is a
 *   retry and is accepted.
 * - Distinct lsids are counted: a client should use no more sessions than it has operations in
 *   flight at once.
 *
 * Not thread-safe: the server calls it from its loop, under its lock. */
#ifndef MQC_SESSION_RULES_H
#define MQC_SESSION_RULES_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t id[16];
    bool used;
    int32_t busy;        /* requests on this lsid being processed now */
    int64_t txn;         /* highest txnNumber seen (0: none) */
} srules_slot_t;

typedef struct {
    srules_slot_t *slots; /* open addressing; cap is a power of two */
    size_t cap;
    uint64_t distinct;    /* lsids seen */
    uint64_t overlaps;    /* requests that arrived while their lsid was busy */
    uint64_t too_old;     /* refused with TransactionTooOld */
    uint64_t with_lsid, without_lsid;
    uint64_t busy_now, busy_peak; /* requests being processed, over all sessions */
} srules_t;

static inline uint64_t srules_hash(const uint8_t id[16])
{
    uint64_t h;
    memcpy(&h, id, 8);
    h ^= (uint64_t) id[8] << 7 ^ (uint64_t) id[15] << 29;
    return h * 0x9e3779b97f4a7c15ull;
}

static inline srules_slot_t *srules_find(srules_t *r, const uint8_t id[16], bool add)
{
    if (add && (r->distinct + 1) * 2 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        srules_slot_t *slots = calloc(cap, sizeof *slots);
        if (!slots) abort();
        for (size_t i = 0; i < r->cap; i++) {
            if (!r->slots[i].used) continue;
            size_t j = (size_t) srules_hash(r->slots[i].id) & (cap - 1);
            while (slots[j].used) j = (j + 1) & (cap - 1);
            slots[j] = r->slots[i];
        }
        free(r->slots);
        r->slots = slots;
        r->cap = cap;
    }
    if (!r->cap) return NULL;
    size_t j = (size_t) srules_hash(id) & (r->cap - 1);
    while (r->slots[j].used) {
        if (!memcmp(r->slots[j].id, id, 16)) return &r->slots[j];
        j = (j + 1) & (r->cap - 1);
    }
    if (!add) return NULL;
    r->slots[j].used = true;
    memcpy(r->slots[j].id, id, 16);
    r->distinct++;
    return &r->slots[j];
}

/* The 16-byte UUID of body's lsid, or NULL. */
static inline const uint8_t *srules_lsid(const bson_t *body)
{
    bson_iter_t it, sub;
    if (!bson_iter_init_find(&it, body, "lsid") || !BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &sub) ||
        !bson_iter_find(&sub, "id") || !BSON_ITER_HOLDS_BINARY(&sub))
        return NULL;
    bson_subtype_t st;
    uint32_t len;
    const uint8_t *data;
    bson_iter_binary(&sub, &st, &len, &data);
    return len == 16 ? data : NULL;
}

/* A request begins: id is srules_lsid(body) (NULL: none). Returns false when it must be
 * refused with TransactionTooOld (srules_too_old); srules_end follows either way. */
static inline bool srules_begin(srules_t *r, const bson_t *body, const uint8_t *id)
{
    if (++r->busy_now > r->busy_peak) r->busy_peak = r->busy_now;
    if (!id) {
        r->without_lsid++;
        return true;
    }
    r->with_lsid++;
    srules_slot_t *s = srules_find(r, id, true);
    if (s->busy++ > 0) r->overlaps++;
    bson_iter_t it;
    if (bson_iter_init_find(&it, body, "txnNumber") && BSON_ITER_HOLDS_INT(&it)) {
        int64_t txn = bson_iter_as_int64(&it);
        if (txn < s->txn) {
            r->too_old++;
            return false;
        }
        s->txn = txn;
    }
    return true;
}

/* The request's processing is over (its reply went out, or it never will). id: the lsid the
 * request carried (srules_lsid of the same body, copied by the caller when the body does not
 * live that long), NULL when none. */
static inline void srules_end(srules_t *r, const uint8_t *id)
{
    r->busy_now--;
    if (!id) return;
    srules_slot_t *s = srules_find(r, id, false);
    if (s && s->busy > 0) s->busy--;
}

/* The reply MongoDB gives a txnNumber older than the session's. */
static inline void srules_too_old(bson_t *reply, const bson_t *body)
{
    bson_iter_t it;
    int64_t txn = bson_iter_init_find(&it, body, "txnNumber") ? bson_iter_as_int64(&it) : 0;
    char msg[160];
    snprintf(msg, sizeof msg,
             "Cannot start transaction %lld on session because a newer transaction has already started",
             (long long) txn);
    BSON_APPEND_DOUBLE(reply, "ok", 0.0);
    BSON_APPEND_UTF8(reply, "errmsg", msg);
    BSON_APPEND_INT32(reply, "code", 225);
    BSON_APPEND_UTF8(reply, "codeName", "TransactionTooOld");
}

static inline void srules_free(srules_t *r)
{
    free(r->slots);
    memset(r, 0, sizeof *r);
}

#endif
