/* propkit: see propkit.h. */
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <time.h>

#include "propkit.h"

uint64_t prop_seed_used;

bool prop_long_run(void) { return getenv("MQC_PROPERTY_LONG") && atoi(getenv("MQC_PROPERTY_LONG")) > 0; }

static void prop_seed_rng(pg_rng_t *r)
{
    const char *e = getenv("MQC_PROPERTY_SEED");
    prop_seed_used = e && *e ? strtoull(e, NULL, 10) : (uint64_t) time(NULL) ^ ((uint64_t) clock() << 20);
    pg_seed(r, prop_seed_used);
    tf_note("seed %llu (MQC_PROPERTY_SEED=%llu replays it)", (unsigned long long) prop_seed_used, (unsigned long long) prop_seed_used);
}

/* ---- the model: id -> document ----------------------------------------------------------- */


void prop_model_put(prop_t *p, int32_t id, bson_t *d)
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

bson_t *prop_model_get(prop_t *p, int32_t id) { return (size_t) id < p->cap ? p->doc[id] : NULL; }

size_t prop_model_count(prop_t *p, int32_t group)
{
    size_t n = 0;
    bson_iter_t it;
    for (size_t i = 0; i < p->cap; i++)
        if (p->doc[i] && (group < 0 || (bson_iter_init_find(&it, p->doc[i], "g") && bson_iter_int32(&it) == group))) n++;
    return n;
}

bson_t *prop_new_doc(prop_t *p, int32_t id)
{
    bson_t tmp;
    pg_doc(&p->rng, &tmp, id, (int32_t) pg_below(&p->rng, 8), pg_size(&p->rng, 0, p->max_size), p->types);
    bson_t *h = bson_copy(&tmp);
    bson_destroy(&tmp);
    return h;
}

/* $set of one field, as MongoDB applies it: in place when present, else at the end. */
bson_t *prop_model_set(const bson_t *doc, const char *key, const bson_value_t *v)
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


void prop_on_res(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    prop_res_t *r = ud;
    r->calls++;
    if (r->reply) bson_destroy(r->reply);
    r->reply = reply ? bson_copy(reply) : NULL;
    r->failed = error != NULL;
    if (error) r->error = *error;
}

void prop_wait(prop_t *p)
{
    P_ASSERT(mqc_client_run_until_idle(p->c, 300), "operations still pending");
}

int64_t prop_get_i(const bson_t *d, const char *k)
{
    bson_iter_t it;
    return d && bson_iter_init_find(&it, d, k) ? bson_iter_as_int64(&it) : -1;
}

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

void prop_check(prop_t *p, bson_t **got, size_t n, int32_t group, const char *what)
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

void prop_read_back(prop_t *p, bool aggregate, int32_t group)
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
    prop_wait(p);
    P_ASSERT(d.done && !d.failed, "cursor: %s", d.err.message);
    prop_check(p, d.got, d.n, group, aggregate ? "aggregate" : "find");
    P_ASSERT(d.n < 2 * (size_t) batch || d.batches > 1, "%zu documents in one batch of %d", d.n, batch);
    mqc_cursor_destroy(cur);
    drain_free(&d);
    bson_destroy(filter);
    bson_destroy(opts);
}

void prop_count_check(prop_t *p, int32_t group)
{
    prop_res_t r = {0};
    bson_t *f = group >= 0 ? BCON_NEW("g", BCON_INT32(group)) : bson_new();
    mqc_collection_count_documents(p->coll, f, NULL, prop_on_res, &r);
    prop_wait(p);
    EXPECT_OK(r);
    P_ASSERT(prop_get_i(r.reply, "count") == (int64_t) prop_model_count(p, group), "count %lld, model %zu",
             (long long) prop_get_i(r.reply, "count"), prop_model_count(p, group));
    bson_destroy(r.reply);
    bson_destroy(f);
}


void prop_open(prop_t *p, const char *uri, pg_types_t types, size_t max_size)
{
    memset(p, 0, sizeof *p);
    prop_seed_rng(&p->rng);
    p->types = types;
    p->max_size = max_size;
    mqc_error_t err;
    p->c = mqc_client_new_from_uri(NULL, uri, &err);
    ASSERT_MSG(p->c, "client: %s", err.message);
    snprintf(p->db, sizeof p->db, "mqc_prop");
    snprintf(p->name, sizeof p->name, "%s", tf_unique("prop"));
    p->coll = mqc_client_get_collection(p->c, p->db, p->name);
}

void prop_close(prop_t *p)
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
void prop_insert_many(prop_t *p, int32_t from, int n, bool ordered)
{
    bson_t **docs = malloc((size_t) n * sizeof *docs);
    for (int i = 0; i < n; i++) {
        docs[i] = prop_new_doc(p, from + i);
        prop_model_put(p, from + i, bson_copy(docs[i]));
    }
    bson_t *opts = BCON_NEW("ordered", BCON_BOOL(ordered));
    prop_res_t r = {0};
    mqc_collection_insert_many(p->coll, (const bson_t *const *) docs, (size_t) n, opts, prop_on_res, &r);
    prop_wait(p);
    EXPECT_OK(r);
    P_ASSERT(prop_get_i(r.reply, "insertedCount") == n, "insertedCount %lld of %d", (long long) prop_get_i(r.reply, "insertedCount"), n);
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
void prop_singles(prop_t *p, int n, int32_t space)
{
    if (n > space) n = space; /* distinct ids */
    int32_t *ids = pick_ids(p, n, space);
    prop_res_t *r = calloc((size_t) n, sizeof *r);
    int *kind = calloc((size_t) n, sizeof *kind);
    bson_t **expect = calloc((size_t) n, sizeof *expect);
    bool *present = calloc((size_t) n, sizeof *present);
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        bson_t *cur = prop_model_get(p, id);
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
            mqc_collection_update_one(p->coll, f, u, o, prop_on_res, &r[i]);
            if (cur) expect[i] = prop_model_set(cur, "v", v_of(v));
            else if (kind[i] == S_UPSERT) expect[i] = prop_model_set(f, "v", v_of(v));
            bson_destroy(v), bson_destroy(u), bson_destroy(o);
            break;
        }
        case S_REPLACE: {
            bson_t *d = prop_new_doc(p, id);
            mqc_collection_replace_one(p->coll, f, d, NULL, prop_on_res, &r[i]);
            if (cur) expect[i] = d;
            else bson_destroy(d);
            break;
        }
        case S_DELETE: mqc_collection_delete_one(p->coll, f, NULL, prop_on_res, &r[i]); break;
        case S_INSERT:
            expect[i] = prop_new_doc(p, id);
            mqc_collection_insert_one(p->coll, expect[i], NULL, prop_on_res, &r[i]);
            break;
        default: mqc_collection_find_one(p->coll, f, NULL, prop_on_res, &r[i]); break;
        }
        bson_destroy(f);
    }
    prop_wait(p);
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        EXPECT_OK(r[i]);
        switch (kind[i]) {
        case S_SET: case S_REPLACE:
            P_ASSERT(prop_get_i(r[i].reply, "matchedCount") == present[i], "_id %d: matchedCount %lld", id,
                     (long long) prop_get_i(r[i].reply, "matchedCount"));
            if (expect[i]) prop_model_put(p, id, expect[i]);
            break;
        case S_UPSERT:
            P_ASSERT(prop_get_i(r[i].reply, "upsertedCount") == 1, "_id %d: upsertedCount %lld", id,
                     (long long) prop_get_i(r[i].reply, "upsertedCount"));
            prop_model_put(p, id, expect[i]);
            break;
        case S_DELETE:
            P_ASSERT(prop_get_i(r[i].reply, "deletedCount") == present[i], "_id %d: deletedCount %lld", id,
                     (long long) prop_get_i(r[i].reply, "deletedCount"));
            prop_model_put(p, id, NULL);
            break;
        case S_INSERT:
            P_ASSERT(prop_get_i(r[i].reply, "insertedCount") == 1, "_id %d: insertedCount %lld", id,
                     (long long) prop_get_i(r[i].reply, "insertedCount"));
            prop_model_put(p, id, expect[i]);
            break;
        default:
            P_ASSERT(present[i] ? pg_equal(r[i].reply, prop_model_get(p, id)) : r[i].reply == NULL,
                     "find_one _id %d:\n  got   %s\n  model %s", id, pg_show(r[i].reply), pg_show(prop_model_get(p, id)));
        }
        if (r[i].reply) bson_destroy(r[i].reply);
    }
    free(ids), free(r), free(kind), free(expect), free(present);
}

/* updateMany $inc and deleteMany over one group each */
void prop_many(prop_t *p)
{
    int32_t g = (int32_t) pg_below(&p->rng, 8), gd = (g + 1 + (int32_t) pg_below(&p->rng, 7)) % 8;
    prop_res_t r = {0};
    bson_t *f = BCON_NEW("g", BCON_INT32(g)), *u = BCON_NEW("$inc", "{", "n", BCON_INT32(1), "}");
    size_t want = prop_model_count(p, g);
    mqc_collection_update_many(p->coll, f, u, NULL, prop_on_res, &r);
    prop_wait(p);
    EXPECT_OK(r);
    P_ASSERT(prop_get_i(r.reply, "matchedCount") == (int64_t) want, "updateMany matched %lld, model %zu",
             (long long) prop_get_i(r.reply, "matchedCount"), want);
    bson_iter_t it;
    for (size_t i = 0; i < p->cap; i++)
        if (p->doc[i] && bson_iter_init_find(&it, p->doc[i], "g") && bson_iter_int32(&it) == g) {
            bson_iter_init_find(&it, p->doc[i], "n");
            bson_value_t v = {.value_type = BSON_TYPE_INT32, .value.v_int32 = bson_iter_int32(&it) + 1};
            prop_model_put(p, (int32_t) i, prop_model_set(p->doc[i], "n", &v));
        }
    bson_destroy(r.reply);
    memset(&r, 0, sizeof r);
    bson_destroy(f);
    f = BCON_NEW("g", BCON_INT32(gd));
    want = prop_model_count(p, gd);
    mqc_collection_delete_many(p->coll, f, NULL, prop_on_res, &r);
    prop_wait(p);
    EXPECT_OK(r);
    P_ASSERT(prop_get_i(r.reply, "deletedCount") == (int64_t) want, "deleteMany deleted %lld, model %zu",
             (long long) prop_get_i(r.reply, "deletedCount"), want);
    for (size_t i = 0; i < p->cap; i++)
        if (p->doc[i] && bson_iter_init_find(&it, p->doc[i], "g") && bson_iter_int32(&it) == gd) prop_model_put(p, (int32_t) i, NULL);
    bson_destroy(r.reply);
    bson_destroy(f);
    bson_destroy(u);
}

/* one bulk of n mixed operations on distinct ids */
void prop_bulk(prop_t *p, int n, int32_t space, bool ordered)
{
    if (n > space) n = space; /* distinct ids */
    int32_t *ids = pick_ids(p, n, space);
    bson_t *opts = BCON_NEW("ordered", BCON_BOOL(ordered));
    mqc_bulk_t *b = mqc_collection_bulk_new(p->coll, opts);
    int64_t ins = 0, matched = 0, del = 0;
    mqc_error_t err;
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        bson_t *cur = prop_model_get(p, id), *f = BCON_NEW("_id", BCON_INT32(id));
        int k = cur ? (int) pg_below(&p->rng, 3) : 3;
        if (k == 0) {
            bson_t *v = rand_v(p), *u = BCON_NEW("$set", BCON_DOCUMENT(v));
            P_ASSERT(mqc_bulk_update_one(b, f, u, NULL, &err), "%s", err.message);
            prop_model_put(p, id, prop_model_set(cur, "v", v_of(v)));
            bson_destroy(v), bson_destroy(u);
            matched++;
        } else if (k == 1) {
            bson_t *d = prop_new_doc(p, id);
            P_ASSERT(mqc_bulk_replace_one(b, f, d, NULL, &err), "%s", err.message);
            prop_model_put(p, id, d);
            matched++;
        } else if (k == 2) {
            P_ASSERT(mqc_bulk_delete_one(b, f, NULL, &err), "%s", err.message);
            prop_model_put(p, id, NULL);
            del++;
        } else {
            bson_t *d = prop_new_doc(p, id);
            P_ASSERT(mqc_bulk_insert(b, d, &err), "%s", err.message);
            prop_model_put(p, id, d);
            ins++;
        }
        bson_destroy(f);
    }
    prop_res_t r = {0};
    mqc_bulk_execute(b, prop_on_res, &r);
    prop_wait(p);
    EXPECT_OK(r);
    P_ASSERT(prop_get_i(r.reply, "insertedCount") == ins && prop_get_i(r.reply, "matchedCount") == matched &&
             prop_get_i(r.reply, "deletedCount") == del, "bulk result %s; expected %lld inserted, %lld matched, %lld deleted",
             pg_show(r.reply), (long long) ins, (long long) matched, (long long) del);
    bson_destroy(r.reply);
    bson_destroy(opts);
    free(ids);
}

/* find_one_and_update / _replace / _delete at once on distinct ids */
void prop_find_and(prop_t *p, int n, int32_t space)
{
    if (n > space) n = space; /* distinct ids */
    int32_t *ids = pick_ids(p, n, space);
    prop_res_t *r = calloc((size_t) n, sizeof *r);
    bson_t **before = calloc((size_t) n, sizeof *before), **after = calloc((size_t) n, sizeof *after);
    bool *want_after = calloc((size_t) n, sizeof *want_after);
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        bson_t *cur = prop_model_get(p, id), *f = BCON_NEW("_id", BCON_INT32(id));
        before[i] = cur ? bson_copy(cur) : NULL;
        want_after[i] = pg_below(&p->rng, 2);
        bson_t *o = BCON_NEW("returnDocument", BCON_UTF8(want_after[i] ? "after" : "before"));
        switch (pg_below(&p->rng, 3)) {
        case 0: {
            bson_t *v = rand_v(p), *u = BCON_NEW("$set", BCON_DOCUMENT(v));
            mqc_collection_find_one_and_update(p->coll, f, u, o, prop_on_res, &r[i]);
            if (cur) after[i] = prop_model_set(cur, "v", v_of(v));
            bson_destroy(v), bson_destroy(u);
            break;
        }
        case 1: {
            bson_t *d = prop_new_doc(p, id);
            mqc_collection_find_one_and_replace(p->coll, f, d, o, prop_on_res, &r[i]);
            if (cur) after[i] = d;
            else bson_destroy(d);
            break;
        }
        default:
            want_after[i] = false;
            mqc_collection_find_one_and_delete(p->coll, f, NULL, prop_on_res, &r[i]);
            prop_model_put(p, id, NULL);
        }
        if (after[i]) prop_model_put(p, id, bson_copy(after[i]));
        bson_destroy(f), bson_destroy(o);
    }
    prop_wait(p);
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

void prop_gather(prop_t *p, int n, int32_t first_new)
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
            bson_t *d = prop_new_doc(p, ids[i]);
            op = mqc_collection_insert_one(p->coll, d, NULL, NULL, NULL);
            prop_model_put(p, ids[i], d);
        }
        P_ASSERT(mqc_gather_add(g, op), "gather_add %d", i);
    }
    gres_t k = {0};
    mqc_gather_start(g, on_gather, &k);
    prop_wait(p);
    P_ASSERT(k.called && k.n == (size_t) n && k.ok == (size_t) n, "gather: %zu of %zu ok", k.ok, k.n);
    for (int i = 0; i < n; i++) {
        if (is_find[i])
            P_ASSERT(prop_model_get(p, ids[i]) ? pg_equal(k.replies[i], prop_model_get(p, ids[i])) : k.replies[i] == NULL,
                     "gather slot %d, find_one _id %d:\n  got   %s\n  model %s", i, ids[i], pg_show(k.replies[i]),
                     pg_show(prop_model_get(p, ids[i])));
        if (k.replies[i]) bson_destroy(k.replies[i]);
    }
    free(k.replies), free(ids), free(is_find);
}

