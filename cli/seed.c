/* seed: drop, then insert_many in batches with several batches in flight (seed.h). */
#include "seed.h"

#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_IN_FLIGHT 4

void mqload_seed_range(const mqload_run_t *run, uint64_t *lo, uint64_t *hi)
{
    uint64_t n = run->cfg->seed_docs, w = run->cfg->workers ? run->cfg->workers : 1, i = run->cfg->worker_index;
    *lo = n / w * i + (i < n % w ? i : n % w);
    *hi = *lo + mqload_share(n, w, i);
}

/* With several workers nobody may drop the collection (a drop by one would race with the others'
 * seeding): each worker deletes only the keys it owns, its seeding range and the keys its lanes
 * insert (keys + lane + lanes * i, i.e. _id >= keys with _id % lanes == (keys + lane) % lanes). */
static void own_keys_filter(const mqload_run_t *run, uint64_t lo, uint64_t hi, bson_t *filter)
{
    bson_t or, c, id, mod;
    uint64_t keys = run->wl->keys, per = run->lanes / (run->cfg->workers ? run->cfg->workers : 1);
    BSON_APPEND_ARRAY_BEGIN(filter, "$or", &or);
    BSON_APPEND_DOCUMENT_BEGIN(&or, "0", &c);
    BSON_APPEND_DOCUMENT_BEGIN(&c, "_id", &id);
    BSON_APPEND_INT64(&id, "$gte", (int64_t) lo);
    BSON_APPEND_INT64(&id, "$lt", (int64_t) hi);
    bson_append_document_end(&c, &id);
    bson_append_document_end(&or, &c);
    for (uint64_t l = 0; l < per; l++) {
        char key[24];
        snprintf(key, sizeof key, "%llu", (unsigned long long) (l + 1));
        BSON_APPEND_DOCUMENT_BEGIN(&or, key, &c);
        BSON_APPEND_DOCUMENT_BEGIN(&c, "_id", &id);
        BSON_APPEND_INT64(&id, "$gte", (int64_t) keys);
        BSON_APPEND_ARRAY_BEGIN(&id, "$mod", &mod);
        BSON_APPEND_INT64(&mod, "0", (int64_t) run->lanes);
        BSON_APPEND_INT64(&mod, "1", (int64_t) ((keys + run->lane0 + l) % run->lanes));
        bson_append_array_end(&id, &mod);
        bson_append_document_end(&c, &id);
        bson_append_document_end(&or, &c);
    }
    bson_append_array_end(filter, &or);
}

typedef struct {
    mqc_client_t *client;
    mqc_collection_t *coll;
    mqload_wl_thread_t wl;
    uint64_t next, hi;
    uint32_t batch;
    size_t in_flight;
    bool failed;
    mqc_error_t error;
    uint64_t inserted;
} seeder_t;

static void seed_submit(seeder_t *s);

static void insert_cb(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    seeder_t *s = ud;
    bson_iter_t it;
    (void) op;
    s->in_flight--;
    if (error) {
        if (!s->failed) s->error = *error;
        s->failed = true;
        return;
    }
    if (reply && bson_iter_init_find(&it, reply, "insertedCount") && BSON_ITER_HOLDS_NUMBER(&it))
        s->inserted += (uint64_t) bson_iter_as_int64(&it);
    seed_submit(s);
}

static void seed_submit(seeder_t *s)
{
    while (!s->failed && s->in_flight < SEED_IN_FLIGHT && s->next < s->hi) {
        uint64_t n = s->hi - s->next < s->batch ? s->hi - s->next : s->batch;
        bson_t *docs = calloc(n, sizeof *docs);
        const bson_t **ptrs = calloc(n, sizeof *ptrs);
        if (!docs || !ptrs) abort();
        for (uint64_t i = 0; i < n; i++) {
            bson_init(&docs[i]);
            mqload_wl_seed_doc(&s->wl, (int64_t) (s->next + i), &docs[i]);
            ptrs[i] = &docs[i];
        }
        bson_t opts = BSON_INITIALIZER;
        BSON_APPEND_BOOL(&opts, "ordered", false);
        /* The library copies the documents before returning (mqc.h). */
        mqc_collection_insert_many(s->coll, ptrs, (size_t) n, &opts, insert_cb, s);
        bson_destroy(&opts);
        for (uint64_t i = 0; i < n; i++) bson_destroy(&docs[i]);
        free(docs);
        free(ptrs);
        s->next += n;
        s->in_flight++;
    }
}

static void drop_cb(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    seeder_t *s = ud;
    (void) op, (void) reply;
    s->in_flight--;
    /* NamespaceNotFound (26): nothing to drop, which is fine (also the answer to the delete of a
     * worker's own keys). */
    if (error && !(error->domain == MQC_ERROR_SERVER && error->code == 26)) {
        s->error = *error;
        s->failed = true;
        return;
    }
    seed_submit(s);
}

bool mqload_seed_mqc(mqc_client_t *client, mqload_run_t *run, char *err, size_t esz)
{
    seeder_t s;
    memset(&s, 0, sizeof s);
    s.client = client;
    s.batch = run->cfg->seed_batch;
    mqload_seed_range(run, &s.next, &s.hi);
    if (!mqload_wl_thread_init(&s.wl, run->wl, run->rng_seed ^ 0x5eed, 0, 1, err, esz)) return false;
    s.coll = mqc_client_get_collection(client, run->wl->db, run->wl->collection);
    uint64_t want = s.hi - s.next;
    if (run->cfg->workers > 1) {
        bson_t filter = BSON_INITIALIZER;
        own_keys_filter(run, s.next, s.hi, &filter);
        s.in_flight++;
        mqc_collection_delete_many(s.coll, &filter, NULL, drop_cb, &s);
        bson_destroy(&filter);
    } else {
        bson_t cmd = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&cmd, "drop", run->wl->collection);
        s.in_flight++;
        mqc_client_command(client, run->wl->db, &cmd, NULL, drop_cb, &s);
        bson_destroy(&cmd);
    }
    mqc_client_run_until_idle(client, 0);
    mqc_collection_destroy(s.coll);
    mqload_wl_thread_free(&s.wl);
    if (s.failed) {
        snprintf(err, esz, "seeding %s.%s failed: %s error: %s", run->wl->db, run->wl->collection,
                 mqc_error_domain_name(s.error.domain), s.error.message);
        return false;
    }
    if (s.inserted != want) {
        snprintf(err, esz, "seeding %s.%s: inserted %llu of %llu documents", run->wl->db, run->wl->collection,
                 (unsigned long long) s.inserted, (unsigned long long) want);
        return false;
    }
    return true;
}

bool mqload_seed_mongoc(void *mongoc_client, mqload_run_t *run, char *err, size_t esz)
{
    mongoc_client_t *client = mongoc_client;
    uint64_t lo, hi;
    bson_error_t be;
    mqload_wl_thread_t wl;
    mqload_seed_range(run, &lo, &hi);
    if (!mqload_wl_thread_init(&wl, run->wl, run->rng_seed ^ 0x5eed, 0, 1, err, esz)) return false;
    mongoc_collection_t *coll = mongoc_client_get_collection(client, run->wl->db, run->wl->collection);
    bool ok = true;
    if (run->cfg->workers > 1) {
        bson_t filter = BSON_INITIALIZER;
        own_keys_filter(run, lo, hi, &filter);
        if (!mongoc_collection_delete_many(coll, &filter, NULL, NULL, &be)) {
            snprintf(err, esz, "seeding %s.%s: deleting this worker's keys failed: %s", run->wl->db, run->wl->collection,
                     be.message);
            ok = false;
        }
        bson_destroy(&filter);
    } else if (!mongoc_collection_drop(coll, &be) && be.code != 26 && !strstr(be.message, "ns not found")) {
        snprintf(err, esz, "seeding %s.%s: drop failed: %s", run->wl->db, run->wl->collection, be.message);
        ok = false;
    }
    uint32_t batch = run->cfg->seed_batch;
    bson_t *docs = calloc(batch, sizeof *docs);
    const bson_t **ptrs = calloc(batch, sizeof *ptrs);
    if (!docs || !ptrs) abort();
    for (uint64_t next = lo; ok && next < hi;) {
        size_t n = hi - next < batch ? (size_t) (hi - next) : batch;
        for (size_t i = 0; i < n; i++) {
            bson_init(&docs[i]);
            mqload_wl_seed_doc(&wl, (int64_t) (next + i), &docs[i]);
            ptrs[i] = &docs[i];
        }
        bson_t opts = BSON_INITIALIZER;
        BSON_APPEND_BOOL(&opts, "ordered", false);
        if (!mongoc_collection_insert_many(coll, ptrs, n, &opts, NULL, &be)) {
            snprintf(err, esz, "seeding %s.%s failed: %s", run->wl->db, run->wl->collection, be.message);
            ok = false;
        }
        bson_destroy(&opts);
        for (size_t i = 0; i < n; i++) bson_destroy(&docs[i]);
        next += n;
    }
    free(docs);
    free(ptrs);
    mongoc_collection_destroy(coll);
    mqload_wl_thread_free(&wl);
    return ok;
}
