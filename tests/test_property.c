/* Property tests: random documents (every BSON type, nesting, sizes from empty to
 * maxBsonObjectSize) through every public write and read API, in counts that split batches by
 * maxWriteBatchSize and maxMessageSizeBytes, hundreds in flight; the result is compared with a
 * model kept here. Against docsrv (a scripted server as strict as MongoDB about its limits,
 * announcing small ones so that splits are cheap) and against FerretDB, where libmongoc reads back
 * what mqc wrote: a differential check, not mqc checking itself.
 *
 * Seed: MQC_PROPERTY_SEED (else from the clock), printed in every failure. MQC_PROPERTY_LONG=1
 * multiplies counts and sizes (and uses FerretDB's full maxBsonObjectSize). */
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <time.h>

#include "docsrv.h"
#include "mqc.h"
#include "propgen.h"
#include "tf.h"

#define P_ASSERT(cond, ...)                                                                                  \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            tf_note(__VA_ARGS__);                                                                            \
            FAIL("property failed: %s (seed %llu: rerun with MQC_PROPERTY_SEED=%llu)", #cond,                \
                 (unsigned long long) g_seed, (unsigned long long) g_seed);                                  \
        }                                                                                                    \
    } while (0)

static uint64_t g_seed;

static bool long_run(void) { return getenv("MQC_PROPERTY_LONG") && atoi(getenv("MQC_PROPERTY_LONG")) > 0; }

static void seed_rng(pg_rng_t *r)
{
    const char *e = getenv("MQC_PROPERTY_SEED");
    g_seed = e && *e ? strtoull(e, NULL, 10) : (uint64_t) time(NULL) ^ ((uint64_t) clock() << 20);
    pg_seed(r, g_seed);
    tf_note("seed %llu (MQC_PROPERTY_SEED=%llu replays it)", (unsigned long long) g_seed, (unsigned long long) g_seed);
}

/* ---- the model: id -> document ----------------------------------------------------------- */

typedef struct {
    bson_t **doc;            /* by _id (int32 0..cap-1); NULL: absent */
    size_t cap;
    pg_rng_t rng;
    pg_types_t types;
    size_t max_size;         /* the largest document to generate */
    mqc_client_t *c;
    mqc_collection_t *coll;
    char db[64], name[96];
} prop_t;

static void model_put(prop_t *p, int32_t id, bson_t *d)
{
    if ((size_t) id >= p->cap) {
        size_t cap = (size_t) id * 2 + 64;
        p->doc = realloc(p->doc, cap * sizeof *p->doc);
        memset(p->doc + p->cap, 0, (cap - p->cap) * sizeof *p->doc);
        p->cap = cap;
    }
    if (p->doc[id]) bson_destroy(p->doc[id]);
    p->doc[id] = d;
}

static bson_t *model_get(prop_t *p, int32_t id) { return (size_t) id < p->cap ? p->doc[id] : NULL; }

static size_t model_count(prop_t *p, int32_t group)
{
    size_t n = 0;
    bson_iter_t it;
    for (size_t i = 0; i < p->cap; i++)
        if (p->doc[i] && (group < 0 || (bson_iter_init_find(&it, p->doc[i], "g") && bson_iter_int32(&it) == group))) n++;
    return n;
}

static bson_t *new_doc(prop_t *p, int32_t id)
{
    bson_t tmp;
    pg_doc(&p->rng, &tmp, id, (int32_t) pg_below(&p->rng, 8), pg_size(&p->rng, 0, p->max_size), p->types);
    bson_t *h = bson_copy(&tmp);
    bson_destroy(&tmp);
    return h;
}

/* $set of one field, as MongoDB applies it: in place when present, else at the end. */
static bson_t *model_set(const bson_t *doc, const char *key, const bson_value_t *v)
{
    bson_t *out = bson_new();
    bson_iter_t it;
    bool seen = false;
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it)) {
        if (!strcmp(bson_iter_key(&it), key)) BSON_APPEND_VALUE(out, key, v), seen = true;
        else bson_append_iter(out, NULL, 0, &it);
    }
    if (!seen) BSON_APPEND_VALUE(out, key, v);
    return out;
}

/* ---- running operations ---------------------------------------------------------------------- */

typedef struct {
    int calls;
    bson_t *reply;
    mqc_error_t error;
    bool failed;
} res_t;

static void on_res(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    res_t *r = ud;
    r->calls++;
    if (r->reply) bson_destroy(r->reply);
    r->reply = reply ? bson_copy(reply) : NULL;
    r->failed = error != NULL;
    if (error) r->error = *error;
}

static void wait_all(prop_t *p)
{
    P_ASSERT(mqc_client_run_until_idle(p->c, 300), "operations still pending");
}

static int64_t get_i(const bson_t *d, const char *k)
{
    bson_iter_t it;
    return d && bson_iter_init_find(&it, d, k) ? bson_iter_as_int64(&it) : -1;
}

#define EXPECT_OK(r)                                                                                         \
    P_ASSERT((r).calls == 1 && !(r).failed, "calls %d, error %s: %s", (r).calls,                            \
             mqc_error_domain_name((r).error.domain), (r).error.message)

/* Reads the whole collection through a find (or aggregate) cursor with small random batches and
 * compares it, in _id order, with the model. */
typedef struct {
    bson_t **got;
    size_t n, cap;
    bool done, failed;
    mqc_error_t err;
    int batches;
} drain_t;

static void on_batch(mqc_cursor_t *cur, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    drain_t *d = ud;
    d->batches++;
    if (error) {
        d->failed = d->done = true;
        d->err = *error;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (d->n == d->cap) d->got = realloc(d->got, (d->cap = d->cap * 2 + 64) * sizeof *d->got);
        d->got[d->n++] = bson_copy(&docs[i]);
    }
    if (!mqc_cursor_more(cur) || !mqc_cursor_next(cur)) d->done = true;
}

static void drain_free(drain_t *d)
{
    for (size_t i = 0; i < d->n; i++) bson_destroy(d->got[i]);
    free(d->got);
}

static void check_against_model(prop_t *p, bson_t **got, size_t n, int32_t group, const char *what)
{
    size_t k = 0;
    bson_iter_t it;
    for (size_t id = 0; id < p->cap; id++) {
        bson_t *m = p->doc[id];
        if (!m || (group >= 0 && !(bson_iter_init_find(&it, m, "g") && bson_iter_int32(&it) == group))) continue;
        P_ASSERT(k < n, "%s: %zu documents, the model has more (next _id %zu)", what, n, id);
        P_ASSERT(pg_equal(got[k], m), "%s: document %zu differs:\n  got   %s\n  model %s", what, k, pg_show(got[k]),
                 pg_show(m));
        k++;
    }
    P_ASSERT(k == n, "%s: %zu documents, the model has %zu", what, n, k);
}

static void read_back(prop_t *p, bool aggregate, int32_t group)
{
    drain_t d = {0};
    int32_t batch = (int32_t) (1 + pg_below(&p->rng, 40));
    bson_t *filter = group >= 0 ? BCON_NEW("g", BCON_INT32(group)) : bson_new();
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}", "batchSize", BCON_INT32(batch));
    mqc_cursor_t *cur;
    if (aggregate) {
        bson_t *pipe = BCON_NEW("0", "{", "$match", BCON_DOCUMENT(filter), "}", "1", "{", "$sort", "{", "_id",
                                BCON_INT32(1), "}", "}");
        bson_t *aopts = BCON_NEW("batchSize", BCON_INT32(batch));
        cur = mqc_collection_aggregate(p->coll, pipe, aopts, on_batch, &d);
        bson_destroy(pipe);
        bson_destroy(aopts);
    } else {
        cur = mqc_collection_find(p->coll, filter, opts, on_batch, &d);
    }
    wait_all(p);
    P_ASSERT(d.done && !d.failed, "cursor: %s", d.err.message);
    check_against_model(p, d.got, d.n, group, aggregate ? "aggregate" : "find");
    P_ASSERT(d.n < 2 * (size_t) batch || d.batches > 1, "%zu documents in one batch of %d", d.n, batch);
    mqc_cursor_destroy(cur);
    drain_free(&d);
    bson_destroy(filter);
    bson_destroy(opts);
}

static void count_check(prop_t *p, int32_t group)
{
    res_t r = {0};
    bson_t *f = group >= 0 ? BCON_NEW("g", BCON_INT32(group)) : bson_new();
    mqc_collection_count_documents(p->coll, f, NULL, on_res, &r);
    wait_all(p);
    EXPECT_OK(r);
    P_ASSERT(get_i(r.reply, "count") == (int64_t) model_count(p, group), "count %lld, model %zu",
             (long long) get_i(r.reply, "count"), model_count(p, group));
    bson_destroy(r.reply);
    bson_destroy(f);
}


static void prop_open(prop_t *p, const char *uri, pg_types_t types, size_t max_size)
{
    memset(p, 0, sizeof *p);
    seed_rng(&p->rng);
    p->types = types;
    p->max_size = max_size;
    mqc_error_t err;
    p->c = mqc_client_new_from_uri(NULL, uri, &err);
    ASSERT_MSG(p->c, "client: %s", err.message);
    snprintf(p->db, sizeof p->db, "mqc_prop");
    snprintf(p->name, sizeof p->name, "%s", tf_unique("prop"));
    p->coll = mqc_client_get_collection(p->c, p->db, p->name);
}

static void prop_close(prop_t *p)
{
    bson_t *drop = BCON_NEW("drop", BCON_UTF8(p->name));
    mqc_client_command(p->c, p->db, drop, NULL, NULL, NULL);
    mqc_client_run_until_idle(p->c, 60);
    bson_destroy(drop);
    mqc_collection_destroy(p->coll);
    mqc_client_destroy(p->c);
    for (size_t i = 0; i < p->cap; i++)
        if (p->doc[i]) bson_destroy(p->doc[i]);
    free(p->doc);
}

/* ids [from, from + n) through insert_many */
static void do_insert_many(prop_t *p, int32_t from, int n, bool ordered)
{
    bson_t **docs = malloc((size_t) n * sizeof *docs);
    for (int i = 0; i < n; i++) {
        docs[i] = new_doc(p, from + i);
        model_put(p, from + i, bson_copy(docs[i]));
    }
    bson_t *opts = BCON_NEW("ordered", BCON_BOOL(ordered));
    res_t r = {0};
    mqc_collection_insert_many(p->coll, (const bson_t *const *) docs, (size_t) n, opts, on_res, &r);
    wait_all(p);
    EXPECT_OK(r);
    P_ASSERT(get_i(r.reply, "insertedCount") == n, "insertedCount %lld of %d", (long long) get_i(r.reply, "insertedCount"), n);
    bson_destroy(r.reply);
    bson_destroy(opts);
    for (int i = 0; i < n; i++) bson_destroy(docs[i]);
    free(docs);
}

/* A random value under key v, as a one-field document (its value is read with bson_iter). */
static bson_t *rand_v(prop_t *p)
{
    bson_t *d = bson_new();
    pg_value(&p->rng, d, "v", 2, p->types);
    return d;
}

static const bson_value_t *v_of(const bson_t *d)
{
    static bson_iter_t it;
    bson_iter_init_find(&it, d, "v");
    return bson_iter_value(&it);
}

/* distinct ids from [0, space) */
static int32_t *pick_ids(prop_t *p, int n, int32_t space)
{
    int32_t *v = malloc((size_t) space * sizeof *v);
    for (int32_t i = 0; i < space; i++) v[i] = i;
    for (int i = 0; i < n && i < space; i++) {
        int32_t j = i + (int32_t) pg_below(&p->rng, (uint32_t) (space - i)), t = v[i];
        v[i] = v[j], v[j] = t;
    }
    return v;
}

enum { S_SET, S_REPLACE, S_DELETE, S_INSERT, S_FIND, S_UPSERT, S_KINDS };

/* n single-document operations at once on distinct ids, each checked against the model */
static void do_singles(prop_t *p, int n, int32_t space)
{
    int32_t *ids = pick_ids(p, n, space);
    res_t *r = calloc((size_t) n, sizeof *r);
    int *kind = calloc((size_t) n, sizeof *kind);
    bson_t **expect = calloc((size_t) n, sizeof *expect);
    bool *present = calloc((size_t) n, sizeof *present);
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        bson_t *cur = model_get(p, id);
        bson_t *f = BCON_NEW("_id", BCON_INT32(id));
        present[i] = cur != NULL;
        kind[i] = (int) pg_below(&p->rng, S_KINDS);
        if (kind[i] == S_INSERT && cur) kind[i] = S_FIND;
        if (kind[i] == S_UPSERT && cur) kind[i] = S_SET;
        switch (kind[i]) {
        case S_SET: case S_UPSERT: {
            bson_t *v = rand_v(p);
            bson_t *u = BCON_NEW("$set", BCON_DOCUMENT(v));
            bson_t *o = kind[i] == S_UPSERT ? BCON_NEW("upsert", BCON_BOOL(true)) : NULL;
            mqc_collection_update_one(p->coll, f, u, o, on_res, &r[i]);
            if (cur) expect[i] = model_set(cur, "v", v_of(v));
            else if (kind[i] == S_UPSERT) expect[i] = model_set(f, "v", v_of(v));
            bson_destroy(v), bson_destroy(u), bson_destroy(o);
            break;
        }
        case S_REPLACE: {
            bson_t *d = new_doc(p, id);
            mqc_collection_replace_one(p->coll, f, d, NULL, on_res, &r[i]);
            if (cur) expect[i] = d;
            else bson_destroy(d);
            break;
        }
        case S_DELETE: mqc_collection_delete_one(p->coll, f, NULL, on_res, &r[i]); break;
        case S_INSERT:
            expect[i] = new_doc(p, id);
            mqc_collection_insert_one(p->coll, expect[i], NULL, on_res, &r[i]);
            break;
        default: mqc_collection_find_one(p->coll, f, NULL, on_res, &r[i]); break;
        }
        bson_destroy(f);
    }
    wait_all(p);
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        EXPECT_OK(r[i]);
        switch (kind[i]) {
        case S_SET: case S_REPLACE:
            P_ASSERT(get_i(r[i].reply, "matchedCount") == present[i], "_id %d: matchedCount %lld", id,
                     (long long) get_i(r[i].reply, "matchedCount"));
            if (expect[i]) model_put(p, id, expect[i]);
            break;
        case S_UPSERT:
            P_ASSERT(get_i(r[i].reply, "upsertedCount") == 1, "_id %d: upsertedCount %lld", id,
                     (long long) get_i(r[i].reply, "upsertedCount"));
            model_put(p, id, expect[i]);
            break;
        case S_DELETE:
            P_ASSERT(get_i(r[i].reply, "deletedCount") == present[i], "_id %d: deletedCount %lld", id,
                     (long long) get_i(r[i].reply, "deletedCount"));
            model_put(p, id, NULL);
            break;
        case S_INSERT:
            P_ASSERT(get_i(r[i].reply, "insertedCount") == 1, "_id %d: insertedCount %lld", id,
                     (long long) get_i(r[i].reply, "insertedCount"));
            model_put(p, id, expect[i]);
            break;
        default:
            P_ASSERT(present[i] ? pg_equal(r[i].reply, model_get(p, id)) : r[i].reply == NULL,
                     "find_one _id %d:\n  got   %s\n  model %s", id, pg_show(r[i].reply), pg_show(model_get(p, id)));
        }
        if (r[i].reply) bson_destroy(r[i].reply);
    }
    free(ids), free(r), free(kind), free(expect), free(present);
}

/* updateMany $inc and deleteMany over one group each */
static void do_many(prop_t *p)
{
    int32_t g = (int32_t) pg_below(&p->rng, 8), gd = (g + 1 + (int32_t) pg_below(&p->rng, 7)) % 8;
    res_t r = {0};
    bson_t *f = BCON_NEW("g", BCON_INT32(g)), *u = BCON_NEW("$inc", "{", "n", BCON_INT32(1), "}");
    size_t want = model_count(p, g);
    mqc_collection_update_many(p->coll, f, u, NULL, on_res, &r);
    wait_all(p);
    EXPECT_OK(r);
    P_ASSERT(get_i(r.reply, "matchedCount") == (int64_t) want, "updateMany matched %lld, model %zu",
             (long long) get_i(r.reply, "matchedCount"), want);
    bson_iter_t it;
    for (size_t i = 0; i < p->cap; i++)
        if (p->doc[i] && bson_iter_init_find(&it, p->doc[i], "g") && bson_iter_int32(&it) == g) {
            bson_iter_init_find(&it, p->doc[i], "n");
            bson_value_t v = {.value_type = BSON_TYPE_INT32, .value.v_int32 = bson_iter_int32(&it) + 1};
            model_put(p, (int32_t) i, model_set(p->doc[i], "n", &v));
        }
    bson_destroy(r.reply);
    memset(&r, 0, sizeof r);
    bson_destroy(f);
    f = BCON_NEW("g", BCON_INT32(gd));
    want = model_count(p, gd);
    mqc_collection_delete_many(p->coll, f, NULL, on_res, &r);
    wait_all(p);
    EXPECT_OK(r);
    P_ASSERT(get_i(r.reply, "deletedCount") == (int64_t) want, "deleteMany deleted %lld, model %zu",
             (long long) get_i(r.reply, "deletedCount"), want);
    for (size_t i = 0; i < p->cap; i++)
        if (p->doc[i] && bson_iter_init_find(&it, p->doc[i], "g") && bson_iter_int32(&it) == gd) model_put(p, (int32_t) i, NULL);
    bson_destroy(r.reply);
    bson_destroy(f);
    bson_destroy(u);
}

/* one bulk of n mixed operations on distinct ids */
static void do_bulk(prop_t *p, int n, int32_t space, bool ordered)
{
    int32_t *ids = pick_ids(p, n, space);
    bson_t *opts = BCON_NEW("ordered", BCON_BOOL(ordered));
    mqc_bulk_t *b = mqc_collection_bulk_new(p->coll, opts);
    int64_t ins = 0, matched = 0, del = 0;
    mqc_error_t err;
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        bson_t *cur = model_get(p, id), *f = BCON_NEW("_id", BCON_INT32(id));
        int k = cur ? (int) pg_below(&p->rng, 3) : 3;
        if (k == 0) {
            bson_t *v = rand_v(p), *u = BCON_NEW("$set", BCON_DOCUMENT(v));
            P_ASSERT(mqc_bulk_update_one(b, f, u, NULL, &err), "%s", err.message);
            model_put(p, id, model_set(cur, "v", v_of(v)));
            bson_destroy(v), bson_destroy(u);
            matched++;
        } else if (k == 1) {
            bson_t *d = new_doc(p, id);
            P_ASSERT(mqc_bulk_replace_one(b, f, d, NULL, &err), "%s", err.message);
            model_put(p, id, d);
            matched++;
        } else if (k == 2) {
            P_ASSERT(mqc_bulk_delete_one(b, f, NULL, &err), "%s", err.message);
            model_put(p, id, NULL);
            del++;
        } else {
            bson_t *d = new_doc(p, id);
            P_ASSERT(mqc_bulk_insert(b, d, &err), "%s", err.message);
            model_put(p, id, d);
            ins++;
        }
        bson_destroy(f);
    }
    res_t r = {0};
    mqc_bulk_execute(b, on_res, &r);
    wait_all(p);
    EXPECT_OK(r);
    P_ASSERT(get_i(r.reply, "insertedCount") == ins && get_i(r.reply, "matchedCount") == matched &&
             get_i(r.reply, "deletedCount") == del, "bulk result %s; expected %lld inserted, %lld matched, %lld deleted",
             pg_show(r.reply), (long long) ins, (long long) matched, (long long) del);
    bson_destroy(r.reply);
    bson_destroy(opts);
    free(ids);
}

/* find_one_and_update / _replace / _delete at once on distinct ids */
static void do_find_and(prop_t *p, int n, int32_t space)
{
    int32_t *ids = pick_ids(p, n, space);
    res_t *r = calloc((size_t) n, sizeof *r);
    bson_t **before = calloc((size_t) n, sizeof *before), **after = calloc((size_t) n, sizeof *after);
    bool *want_after = calloc((size_t) n, sizeof *want_after);
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        bson_t *cur = model_get(p, id), *f = BCON_NEW("_id", BCON_INT32(id));
        before[i] = cur ? bson_copy(cur) : NULL;
        want_after[i] = pg_below(&p->rng, 2);
        bson_t *o = BCON_NEW("returnDocument", BCON_UTF8(want_after[i] ? "after" : "before"));
        switch (pg_below(&p->rng, 3)) {
        case 0: {
            bson_t *v = rand_v(p), *u = BCON_NEW("$set", BCON_DOCUMENT(v));
            mqc_collection_find_one_and_update(p->coll, f, u, o, on_res, &r[i]);
            if (cur) after[i] = model_set(cur, "v", v_of(v));
            bson_destroy(v), bson_destroy(u);
            break;
        }
        case 1: {
            bson_t *d = new_doc(p, id);
            mqc_collection_find_one_and_replace(p->coll, f, d, o, on_res, &r[i]);
            if (cur) after[i] = d;
            else bson_destroy(d);
            break;
        }
        default:
            want_after[i] = false;
            mqc_collection_find_one_and_delete(p->coll, f, NULL, on_res, &r[i]);
            model_put(p, id, NULL);
        }
        if (after[i]) model_put(p, id, bson_copy(after[i]));
        bson_destroy(f), bson_destroy(o);
    }
    wait_all(p);
    for (int i = 0; i < n; i++) {
        EXPECT_OK(r[i]);
        bson_iter_t it;
        bson_t got;
        const bson_t *want = want_after[i] ? after[i] : before[i];
        P_ASSERT(bson_iter_init_find(&it, r[i].reply, "value"), "no value in %s", pg_show(r[i].reply));
        if (!want) {
            P_ASSERT(BSON_ITER_HOLDS_NULL(&it), "_id %d: value %s, expected null", ids[i], pg_show(r[i].reply));
        } else {
            uint32_t l;
            const uint8_t *d;
            P_ASSERT(BSON_ITER_HOLDS_DOCUMENT(&it), "_id %d: value not a document: %s", ids[i], pg_show(r[i].reply));
            bson_iter_document(&it, &l, &d);
            bson_init_static(&got, d, l);
            P_ASSERT(pg_equal(&got, want), "_id %d (%s):\n  got   %s\n  model %s", ids[i],
                     want_after[i] ? "after" : "before", pg_show(&got), pg_show(want));
        }
        bson_destroy(r[i].reply);
        if (before[i]) bson_destroy(before[i]);
        if (after[i]) bson_destroy(after[i]);
    }
    free(ids), free(r), free(before), free(after), free(want_after);
}

/* a gather of n operations: inserts of new ids and find_one of old ones */
typedef struct {
    size_t n, ok;
    bool called;
    bson_t **replies;
} gres_t;

static void on_gather(mqc_gather_t *g, const mqc_error_t *error, void *ud)
{
    (void) error;
    gres_t *k = ud;
    k->called = true;
    k->n = mqc_gather_size(g);
    k->ok = mqc_gather_ok_count(g);
    k->replies = calloc(k->n, sizeof *k->replies);
    for (size_t i = 0; i < k->n; i++)
        if (mqc_gather_reply(g, i)) k->replies[i] = bson_copy(mqc_gather_reply(g, i));
}

static void do_gather(prop_t *p, int n, int32_t first_new)
{
    mqc_gather_t *g = mqc_gather_new(p->c, MQC_GATHER_ALL);
    int32_t *ids = malloc((size_t) n * sizeof *ids);
    bool *is_find = malloc((size_t) n * sizeof *is_find);
    for (int i = 0; i < n; i++) {
        mqc_op_t *op;
        is_find[i] = pg_below(&p->rng, 2);
        if (is_find[i]) {
            ids[i] = (int32_t) pg_below(&p->rng, (uint32_t) first_new);
            bson_t *f = BCON_NEW("_id", BCON_INT32(ids[i]));
            op = mqc_collection_find_one(p->coll, f, NULL, NULL, NULL);
            bson_destroy(f);
        } else {
            ids[i] = first_new + i;
            bson_t *d = new_doc(p, ids[i]);
            op = mqc_collection_insert_one(p->coll, d, NULL, NULL, NULL);
            model_put(p, ids[i], d);
        }
        P_ASSERT(mqc_gather_add(g, op), "gather_add %d", i);
    }
    gres_t k = {0};
    mqc_gather_start(g, on_gather, &k);
    wait_all(p);
    P_ASSERT(k.called && k.n == (size_t) n && k.ok == (size_t) n, "gather: %zu of %zu ok", k.ok, k.n);
    for (int i = 0; i < n; i++) {
        if (is_find[i])
            P_ASSERT(model_get(p, ids[i]) ? pg_equal(k.replies[i], model_get(p, ids[i])) : k.replies[i] == NULL,
                     "gather slot %d, find_one _id %d:\n  got   %s\n  model %s", i, ids[i], pg_show(k.replies[i]),
                     pg_show(model_get(p, ids[i])));
        if (k.replies[i]) bson_destroy(k.replies[i]);
    }
    free(k.replies), free(ids), free(is_find);
}

/* ---- the scenario, against docsrv ------------------------------------------------------------ */

/* Small limits make splits cheap: 100 statements, 64 KiB documents, 192 KiB messages (MongoDB's
 * ratio of message to document). Every default run splits by count and by size. */
static const docsrv_limits_t small_limits = {64 * 1024, 192 * 1024, 100};

static void scenario(prop_t *p, int scale)
{
    int n0 = 150 * scale + (int) pg_below(&p->rng, 250 * (uint32_t) scale); /* past maxWriteBatchSize */
    int32_t space = n0 + 300;
    do_insert_many(p, 0, n0, pg_below(&p->rng, 2));
    size_t max = p->max_size;
    p->max_size = 300; /* small ones: the split is by count */
    do_insert_many(p, n0, 250, true);
    p->max_size = max;
    read_back(p, false, -1);
    do_singles(p, 300 * scale, space);          /* hundreds in flight */
    do_bulk(p, 150 * scale + (int) pg_below(&p->rng, 100), space, true);
    do_bulk(p, 150 * scale + (int) pg_below(&p->rng, 100), space, false);
    do_find_and(p, 200 * scale, space);
    do_many(p);
    do_gather(p, 1500 * scale, space);
    read_back(p, false, -1);
    read_back(p, true, -1);
    read_back(p, true, (int32_t) pg_below(&p->rng, 8));
    count_check(p, -1);
    count_check(p, (int32_t) pg_below(&p->rng, 8));
}

static void check_server_saw_splits(docsrv_t *s, const docsrv_limits_t *lim)
{
    docsrv_stats_t st = docsrv_stats(s);
    tf_note("docsrv: %llu commands, %llu write batches, at most %llu statements and %llu bytes in one, %llu getMores",
            (unsigned long long) st.commands, (unsigned long long) st.write_batches,
            (unsigned long long) st.max_statements, (unsigned long long) st.max_message, (unsigned long long) st.getmores);
    ASSERT_EQ(st.limit_errors, 0);
    ASSERT_LE(st.max_statements, lim->max_batch);
    ASSERT_LE(st.max_message, lim->max_message);
    ASSERT_GT(st.getmores, 0);
}

TEST("/property/docsrv/every_api_small_limits", property_docsrv_small)
{
    docsrv_t *s = docsrv_start(&small_limits);
    prop_t p;
    prop_open(&p, docsrv_uri(s, NULL), PG_TYPES_ALL, (size_t) small_limits.max_bson);
    scenario(&p, long_run() ? 10 : 1);
    /* what the server holds is what the model holds */
    size_t n;
    char ns[200];
    snprintf(ns, sizeof ns, "%s.%s", p.db, p.name);
    bson_t **docs = docsrv_docs(s, ns, &n);
    check_against_model(&p, docs, n, -1, "docsrv's store");
    docsrv_free_docs(docs, n);
    check_server_saw_splits(s, &small_limits);
    ASSERT_GT(docsrv_stats(s).max_message, small_limits.max_message / 2); /* size splits happened */
    ASSERT_EQ(docsrv_stats(s).max_statements, small_limits.max_batch);     /* count splits too */
    prop_close(&p);
    docsrv_stop(s);
}

/* Documents of exactly maxBsonObjectSize go (one per message when two don't fit); one byte more is
 * refused before anything is sent; {} gets an _id. MongoDB's default limits. */
TEST("/property/docsrv/max_bson_object_size", property_docsrv_max_size)
{
    docsrv_t *s = docsrv_start(NULL);
    prop_t p;
    prop_open(&p, docsrv_uri(s, NULL), PG_TYPES_ALL, 16 * 1024 * 1024);
    const size_t max = 16 * 1024 * 1024;
    bson_t *docs[4];
    for (int i = 0; i < 4; i++) {
        bson_t tmp;
        pg_doc(&p.rng, &tmp, i, 0, i == 3 ? max + 1 : max - (size_t) i, PG_TYPES_ALL);
        docs[i] = bson_copy(&tmp);
        bson_destroy(&tmp);
        P_ASSERT(docs[i]->len == (i == 3 ? max + 1 : max - (size_t) i), "generated %u bytes", docs[i]->len);
    }
    res_t r = {0};
    mqc_collection_insert_many(p.coll, (const bson_t *const *) docs, 3, NULL, on_res, &r);
    wait_all(&p);
    EXPECT_OK(r);
    ASSERT_EQ(get_i(r.reply, "insertedCount"), 3);
    bson_destroy(r.reply);
    for (int i = 0; i < 3; i++) model_put(&p, i, bson_copy(docs[i]));
    ASSERT_GE(docsrv_stats(s).write_batches, 2); /* 3 x 16 MiB > 48,000,000 bytes */
    read_back(&p, false, -1);
    /* One byte over: MongoDB refuses it (BSONObjectTooLarge, a write error). mqc lets statements
     * through up to maxBsonObjectSize + 16 KiB (an update statement may be that large), so the
     * server says it; past that mqc refuses before sending. */
    memset(&r, 0, sizeof r);
    mqc_collection_insert_one(p.coll, docs[3], NULL, on_res, &r);
    wait_all(&p);
    ASSERT(r.failed);
    P_ASSERT((r.error.domain == MQC_ERROR_WRITE && r.error.code == 10334) ||
             (r.error.domain == MQC_ERROR_CLIENT && r.error.code == MQC_CLIENT_TOO_LARGE),
             "max + 1: %s %d: %s", mqc_error_domain_name(r.error.domain), r.error.code, r.error.message);
    if (r.reply) bson_destroy(r.reply);
    bson_t huge;
    pg_doc(&p.rng, &huge, 9, 0, max + 16 * 1024 + 1, PG_TYPES_ALL);
    uint64_t before = docsrv_stats(s).commands;
    memset(&r, 0, sizeof r);
    mqc_collection_insert_one(p.coll, &huge, NULL, on_res, &r);
    wait_all(&p);
    bson_destroy(&huge);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_CLIENT);
    ASSERT_EQ(r.error.code, MQC_CLIENT_TOO_LARGE);
    ASSERT_EQ(docsrv_stats(s).commands, before);
    if (r.reply) bson_destroy(r.reply);
    /* the empty document */
    memset(&r, 0, sizeof r);
    bson_t empty = BSON_INITIALIZER;
    mqc_collection_insert_one(p.coll, &empty, NULL, on_res, &r);
    wait_all(&p);
    EXPECT_OK(r);
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, r.reply, "insertedId") && BSON_ITER_HOLDS_OID(&it));
    bson_t *want = bson_new();
    BSON_APPEND_OID(want, "_id", bson_iter_oid(&it));
    res_t f = {0};
    mqc_collection_find_one(p.coll, want, NULL, on_res, &f);
    wait_all(&p);
    EXPECT_OK(f);
    P_ASSERT(pg_equal(f.reply, want), "got %s", pg_show(f.reply));
    bson_destroy(f.reply), bson_destroy(r.reply), bson_destroy(want);
    for (int i = 0; i < 4; i++) bson_destroy(docs[i]);
    docsrv_stats_t st = docsrv_stats(s);
    ASSERT_EQ(st.limit_errors, 1); /* the max + 1 document */
    ASSERT_LE(st.max_message, 48000000);
    prop_close(&p);
    docsrv_stop(s);
}

/* Counts past MongoDB's own maxWriteBatchSize (100,000) with its default limits: long runs only
 * (the small-limits scenario splits by count in every run). */
TEST("/property/docsrv/past_100000", property_docsrv_100000)
{
    if (!long_run()) SKIP("MQC_PROPERTY_LONG=1 runs it (the default run splits against smaller limits)");
    docsrv_t *s = docsrv_start(NULL);
    prop_t p;
    prop_open(&p, docsrv_uri(s, NULL), PG_TYPES_ALL, 300);
    do_insert_many(&p, 0, 100050 + (int) pg_below(&p.rng, 5000), true);
    read_back(&p, false, -1);
    check_server_saw_splits(s, &(docsrv_limits_t){16 * 1024 * 1024, 48000000, 100000});
    ASSERT_GE(docsrv_stats(s).write_batches, 2);
    prop_close(&p);
    docsrv_stop(s);
}
