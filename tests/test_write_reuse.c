/* Tests of lib/write.c's free-list of bulks: a single write is a bulk of one, taken from the
 * client's free-list and given back with its model array, model documents and result buffer
 * kept. Nothing of one write may reach the next: a write error or write concern error followed
 * by a clean write, upserted ids, an insertedId of every kind, a large document then a small one,
 * a bulk of many models then one, options (ordered: false, timeoutMS) then none. One write at a
 * time, so that each takes the bulk the one before gave back (nothing is kept under
 * AddressSanitizer: there the same checks run on fresh bulks). Against docsrv (tests/server: keeps
 * the documents, answers as MongoDB does, DuplicateKey and upserts included) and fakesrv (for a
 * writeConcernError). The results are also compared with the generic builders' (mqc_hotcmd_off):
 * the result and model documents written from bytes are the appends' bytes. */
#include <ev.h>
#include <string.h>

#include "server/docsrv.h"
#include "server/fakesrv.h"
#include "hotcmd.h"
#include "mqc.h"
#include "support/result.h"
#include "tf.h"

typedef enum { W_INSERT, W_UPDATE, W_UPSERT, W_REPLACE, W_DELETE } wkind_t;

/* One write, run to its callback; the reply (a copy) goes into r. */
static tf_res_t write1(mqc_client_t *c, mqc_collection_t *coll, wkind_t k, const bson_t *a, const bson_t *b,
                       const bson_t *opts)
{
    tf_res_t r = {.keep_reply = true};
    bson_t *up = NULL;
    switch (k) {
    case W_INSERT: mqc_collection_insert_one(coll, a, opts, tf_res_cb, &r); break;
    case W_UPDATE: mqc_collection_update_one(coll, a, b, opts, tf_res_cb, &r); break;
    case W_UPSERT:
        up = BCON_NEW("upsert", BCON_BOOL(true));
        mqc_collection_update_one(coll, a, b, up, tf_res_cb, &r);
        break;
    case W_REPLACE: mqc_collection_replace_one(coll, a, b, opts, tf_res_cb, &r); break;
    case W_DELETE: mqc_collection_delete_one(coll, a, opts, tf_res_cb, &r); break;
    }
    if (up) bson_destroy(up);
    tf_client_wait_idle(c, 20);
    ASSERT_EQ(r.calls, 1);
    ASSERT_NOT_NULL(r.reply);
    return r;
}

static int64_t count_of(const bson_t *reply, const char *key)
{
    bson_iter_t it;
    ASSERT_MSG(bson_iter_init_find(&it, reply, key), "no %s in the result", key);
    return bson_iter_as_int64(&it);
}

static void expect_counts(const bson_t *reply, int64_t ins, int64_t matched, int64_t modified, int64_t del,
                          int64_t ups)
{
    ASSERT_EQ(count_of(reply, "insertedCount"), ins);
    ASSERT_EQ(count_of(reply, "matchedCount"), matched);
    ASSERT_EQ(count_of(reply, "modifiedCount"), modified);
    ASSERT_EQ(count_of(reply, "deletedCount"), del);
    ASSERT_EQ(count_of(reply, "upsertedCount"), ups);
}

static void expect_clean(const tf_res_t *r)
{
    ASSERT_MSG(!r->failed, "%s", r->error.message);
    ASSERT(!bson_has_field(r->reply, "writeErrors"));
    ASSERT(!bson_has_field(r->reply, "writeConcernErrors"));
}

/* The upsertedIds document holds exactly n ids. */
static void expect_upserted_ids(const bson_t *reply, uint32_t n)
{
    bson_iter_t it, ch;
    ASSERT(bson_iter_init_find(&it, reply, "upsertedIds") && BSON_ITER_HOLDS_DOCUMENT(&it));
    ASSERT(bson_iter_recurse(&it, &ch));
    uint32_t k = 0;
    while (bson_iter_next(&ch)) k++;
    ASSERT_EQ(k, n);
}

static char pad[8192];

/* {_id: id, pad: "xx..."} of about size bytes (past libbson's 120-byte inline buffer when asked). */
static bson_t *doc_of(int id, size_t size)
{
    if (!pad[0]) memset(pad, 'x', sizeof pad - 1);
    ASSERT_LT(size, sizeof pad);
    bson_t *d = bson_new();
    BSON_APPEND_INT32(d, "_id", id);
    bson_append_utf8(d, "pad", -1, pad, (int) size);
    return d;
}

static bson_t *stored(docsrv_t *s, int id)
{
    size_t n;
    bson_t **docs = docsrv_docs(s, "db.c", &n), *out = NULL;
    for (size_t i = 0; i < n; i++) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, docs[i], "_id") && BSON_ITER_HOLDS_INT32(&it) && bson_iter_int32(&it) == id)
            out = bson_copy(docs[i]);
    }
    docsrv_free_docs(docs, n);
    return out;
}

TEST("/write/reuse/write_error_then_clean_write", write_reuse_error_then_clean)
{
    docsrv_t *s = docsrv_start(NULL);
    mqc_client_t *c = tf_client_new(docsrv_uri(s, "maxPoolSize=1"));
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t *d1 = doc_of(1, 300), *d1b = doc_of(1, 10), *d2 = doc_of(2, 10);
    for (int round = 0; round < 3; round++) {
        tf_res_t r = write1(c, coll, W_INSERT, d1, NULL, NULL);
        expect_clean(&r);
        expect_counts(r.reply, 1, 0, 0, 0, 0);
        tf_res_cleanup(&r);
        /* the same _id: DuplicateKey, a write error in the result and as the op's error */
        r = write1(c, coll, W_INSERT, d1b, NULL, NULL);
        ASSERT(r.failed);
        ASSERT_EQ(r.error.code, 11000);
        ASSERT(bson_has_field(r.reply, "writeErrors"));
        expect_counts(r.reply, 0, 0, 0, 0, 0);
        ASSERT(!bson_has_field(r.reply, "insertedId"));
        tf_res_cleanup(&r);
        /* the next write, on the same bulk: no error of the one before */
        r = write1(c, coll, W_INSERT, d2, NULL, NULL);
        expect_clean(&r);
        expect_counts(r.reply, 1, 0, 0, 0, 0);
        bson_iter_t it;
        ASSERT(bson_iter_init_find(&it, r.reply, "insertedId") && bson_iter_as_int64(&it) == 2);
        tf_res_cleanup(&r);
        bson_t *f = BCON_NEW("_id", BCON_INT32(2)), *u = BCON_NEW("$set", "{", "a", BCON_INT32(round), "}");
        r = write1(c, coll, W_UPDATE, f, u, NULL);
        expect_clean(&r);
        expect_counts(r.reply, 0, 1, 1, 0, 0);
        ASSERT(!bson_has_field(r.reply, "insertedId"));
        tf_res_cleanup(&r);
        /* refused before sending (no operator): the refusal does not stay with the bulk */
        bson_t *bad = BCON_NEW("a", BCON_INT32(1));
        tf_res_t rb = {0};
        mqc_collection_update_one(coll, f, bad, NULL, tf_res_cb, &rb);
        tf_client_wait_idle(c, 20);
        ASSERT_EQ(rb.calls, 1);
        ASSERT(rb.failed);
        ASSERT_EQ(rb.error.code, MQC_CLIENT_INVALID_ARG);
        tf_res_cleanup(&rb);
        bson_destroy(bad);
        r = write1(c, coll, W_DELETE, f, NULL, NULL);
        expect_clean(&r);
        expect_counts(r.reply, 0, 0, 0, 1, 0);
        tf_res_cleanup(&r);
        bson_destroy(f);
        f = BCON_NEW("_id", BCON_INT32(1));
        r = write1(c, coll, W_DELETE, f, NULL, NULL);
        expect_clean(&r);
        expect_counts(r.reply, 0, 0, 0, 1, 0);
        tf_res_cleanup(&r);
        bson_destroy(f);
        bson_destroy(u);
    }
    bson_destroy(d1), bson_destroy(d1b), bson_destroy(d2);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    docsrv_stop(s);
}

TEST("/write/reuse/write_concern_error_then_clean_write", write_reuse_wce_then_clean)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=1&retryWrites=false"));
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t *d = doc_of(5, 200);
    for (int round = 0; round < 3; round++) {
        fakesrv_set_mode(s, FAKE_WC_ERROR, 64, 1);
        tf_res_t r = write1(c, coll, W_INSERT, d, NULL, NULL);
        ASSERT(r.failed);
        ASSERT_EQ(r.error.domain, MQC_ERROR_WRITE_CONCERN);
        ASSERT(bson_has_field(r.reply, "writeConcernErrors"));
        tf_res_cleanup(&r);
        r = write1(c, coll, W_INSERT, d, NULL, NULL);
        expect_clean(&r);
        tf_res_cleanup(&r);
    }
    bson_destroy(d);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/write/reuse/upserted_ids_and_inserted_ids", write_reuse_ids)
{
    docsrv_t *s = docsrv_start(NULL);
    mqc_client_t *c = tf_client_new(docsrv_uri(s, "maxPoolSize=1"));
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    if (!pad[0]) memset(pad, 'x', sizeof pad - 1);
    bson_t *f = BCON_NEW("_id", BCON_INT32(10));
    bson_t *u1 = BCON_NEW("$set", "{", "a", BCON_INT32(1), "}"), *u2 = BCON_NEW("$set", "{", "a", BCON_INT32(2), "}");
    tf_res_t r = write1(c, coll, W_UPSERT, f, u1, NULL);
    expect_clean(&r);
    expect_counts(r.reply, 0, 0, 0, 0, 1);
    expect_upserted_ids(r.reply, 1);
    tf_res_cleanup(&r);
    r = write1(c, coll, W_UPDATE, f, u2, NULL);
    expect_clean(&r);
    expect_counts(r.reply, 0, 1, 1, 0, 0);
    expect_upserted_ids(r.reply, 0);
    tf_res_cleanup(&r);
    /* generated ids: an ObjectId each time, never the one before */
    bson_oid_t last = {{0}};
    bson_t *noid = BCON_NEW("a", BCON_INT32(1), "pad", BCON_UTF8(pad + sizeof pad - 200));
    for (int i = 0; i < 3; i++) {
        r = write1(c, coll, W_INSERT, noid, NULL, NULL);
        expect_clean(&r);
        bson_iter_t it;
        ASSERT(bson_iter_init_find(&it, r.reply, "insertedId") && BSON_ITER_HOLDS_OID(&it));
        ASSERT(!bson_oid_equal(bson_iter_oid(&it), &last));
        bson_oid_copy(bson_iter_oid(&it), &last);
        tf_res_cleanup(&r);
    }
    /* _id not the first key; then a large _id that does not fit the result's own buffer */
    bson_t *late = BCON_NEW("a", BCON_INT32(1), "_id", BCON_UTF8("late"), "z", BCON_INT32(2));
    r = write1(c, coll, W_INSERT, late, NULL, NULL);
    expect_clean(&r);
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, r.reply, "insertedId") && BSON_ITER_HOLDS_UTF8(&it));
    ASSERT_STR_EQ(bson_iter_utf8(&it, NULL), "late");
    tf_res_cleanup(&r);
    bson_t *big_id = BCON_NEW("_id", BCON_UTF8(pad + sizeof pad - 1001));
    r = write1(c, coll, W_INSERT, big_id, NULL, NULL);
    expect_clean(&r);
    ASSERT(bson_iter_init_find(&it, r.reply, "insertedId") && BSON_ITER_HOLDS_UTF8(&it));
    ASSERT_EQ(strlen(bson_iter_utf8(&it, NULL)), 1000);
    tf_res_cleanup(&r);
    bson_destroy(f), bson_destroy(u1), bson_destroy(u2), bson_destroy(noid), bson_destroy(late), bson_destroy(big_id);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    docsrv_stop(s);
}

TEST("/write/reuse/large_then_small_documents", write_reuse_sizes)
{
    docsrv_t *s = docsrv_start(NULL);
    mqc_client_t *c = tf_client_new(docsrv_uri(s, "maxPoolSize=1"));
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    /* sizes around the inline buffer and the free-list's keep limit (4096) */
    static const size_t sizes[] = {6000, 10, 3000, 100, 110, 5000, 0, 200, 7000, 1};
    for (int i = 0; i < (int) (sizeof sizes / sizeof sizes[0]); i++) {
        bson_t *d = doc_of(100 + i, sizes[i]);
        tf_res_t r = write1(c, coll, W_INSERT, d, NULL, NULL);
        expect_clean(&r);
        tf_res_cleanup(&r);
        bson_t *got = stored(s, 100 + i);
        ASSERT_NOT_NULL(got);
        ASSERT_MSG(bson_equal(got, d), "document %d of %zu bytes stored as %u bytes", i, sizes[i], got->len);
        bson_destroy(got);
        /* a replacement of another size over it, then a small update */
        bson_t *f = BCON_NEW("_id", BCON_INT32(100 + i));
        bson_t *repl = BCON_NEW("pad", BCON_UTF8(pad + sizeof pad - 1 - sizes[(i + 3) % 10]));
        r = write1(c, coll, W_REPLACE, f, repl, NULL);
        expect_clean(&r);
        expect_counts(r.reply, 0, 1, 1, 0, 0);
        tf_res_cleanup(&r);
        bson_t *u = BCON_NEW("$set", "{", "n", BCON_INT32(i), "}");
        r = write1(c, coll, W_UPDATE, f, u, NULL);
        expect_clean(&r);
        tf_res_cleanup(&r);
        got = stored(s, 100 + i);
        ASSERT_NOT_NULL(got);
        bson_iter_t it;
        ASSERT(bson_iter_init_find(&it, got, "pad"));
        ASSERT_EQ(strlen(bson_iter_utf8(&it, NULL)), sizes[(i + 3) % 10]);
        ASSERT(bson_iter_init_find(&it, got, "n") && bson_iter_int32(&it) == i);
        bson_destroy(got);
        bson_destroy(f), bson_destroy(repl), bson_destroy(u), bson_destroy(d);
    }
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    docsrv_stop(s);
}

/* The bulk's options and models do not outlive it: ordered: false, then a write without options
 * (ordered again, no timeout); a bulk of 40 models (its array given back), then one. */
TEST("/write/reuse/options_and_many_models_then_one", write_reuse_opts)
{
    docsrv_t *s = docsrv_start(NULL);
    mqc_client_t *c = tf_client_new(docsrv_uri(s, "maxPoolSize=1"));
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    mqc_error_t err;
    for (int round = 0; round < 2; round++) {
        /* unordered: goes on past the duplicate */
        bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false), "timeoutMS", BCON_INT32(20000));
        mqc_bulk_t *b = mqc_collection_bulk_new(coll, opts);
        for (int i = 0; i < 40; i++) {
            bson_t *d = doc_of(round * 1000 + (i == 20 ? 0 : i), i % 2 ? 300 : 5);
            ASSERT(mqc_bulk_insert(b, d, &err));
            bson_destroy(d);
        }
        tf_res_t r = {.keep_reply = true};
        mqc_bulk_execute(b, tf_res_cb, &r);
        tf_client_wait_idle(c, 20);
        ASSERT_EQ(r.calls, 1);
        ASSERT(r.failed);
        expect_counts(r.reply, 39, 0, 0, 0, 0);
        tf_res_cleanup(&r);
        /* the same duplicate, without options: ordered, and its error is its own */
        bson_t *dup = doc_of(round * 1000 + 1, 5);
        r = write1(c, coll, W_INSERT, dup, NULL, NULL);
        ASSERT(r.failed);
        ASSERT_EQ(r.error.code, 11000);
        expect_counts(r.reply, 0, 0, 0, 0, 0);
        tf_res_cleanup(&r);
        bson_t *one = doc_of(round * 1000 + 500, 50);
        r = write1(c, coll, W_INSERT, one, NULL, NULL);
        expect_clean(&r);
        expect_counts(r.reply, 1, 0, 0, 0, 0);
        tf_res_cleanup(&r);
        bson_t *got = stored(s, round * 1000 + 500);
        ASSERT_NOT_NULL(got);
        ASSERT(bson_equal(got, one));
        bson_destroy(got), bson_destroy(one), bson_destroy(dup), bson_destroy(opts);
    }
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    docsrv_stop(s);
}

/* The results and the stored documents are the same with the model documents and the result
 * written from bytes and with libbson's appends (mqc_hotcmd_off), _id of several kinds. */
TEST("/write/reuse/same_results_as_generic", write_reuse_same_as_generic)
{
    docsrv_t *s = docsrv_start(NULL);
    mqc_client_t *c = tf_client_new(docsrv_uri(s, "maxPoolSize=1"));
    mqc_collection_t *hot = mqc_client_get_collection(c, "db", "hot");
    mqc_collection_t *gen = mqc_client_get_collection(c, "db", "gen");
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "5f1e2d3c4b5a69788796a5b4");
    if (!pad[0]) memset(pad, 'x', sizeof pad - 1);
    bson_t *ids[] = {
        BCON_NEW("_id", BCON_INT32(7)), BCON_NEW("_id", BCON_INT64(1234567890123LL)),
        BCON_NEW("_id", BCON_UTF8("k")), BCON_NEW("_id", BCON_OID(&oid)),
        BCON_NEW("_id", "{", "a", BCON_INT32(1), "}"), BCON_NEW("_id", BCON_UTF8(pad + sizeof pad - 150)),
        /* values of no bytes: insertedId still reported */
        BCON_NEW("_id", BCON_NULL), BCON_NEW("_id", BCON_MINKEY), BCON_NEW("_id", BCON_MAXKEY),
    };
    bson_t *u = BCON_NEW("$set", "{", "v", BCON_UTF8(pad + sizeof pad - 130), "}");
    bson_t *pipe = BCON_NEW("0", "{", "$set", "{", "w", BCON_INT32(2), "}", "}");
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        bson_t *d = bson_copy(ids[i]);
        BSON_APPEND_UTF8(d, "pad", pad + sizeof pad - 1 - i * 40);
        tf_res_t rh[5], rg[5];
        for (int way = 0; way < 2; way++) {
            mqc_hotcmd_off = way == 1;
            mqc_collection_t *coll = way ? gen : hot;
            tf_res_t *r = way ? rg : rh;
            r[0] = write1(c, coll, W_INSERT, d, NULL, NULL);
            r[1] = write1(c, coll, W_UPDATE, ids[i], i % 2 ? u : pipe, NULL);
            bson_t *other = BCON_NEW("_id", BCON_INT32(1000 + (int) i));
            r[2] = write1(c, coll, W_UPSERT, other, u, NULL);
            r[3] = write1(c, coll, W_DELETE, ids[i], NULL, NULL);
            r[4] = write1(c, coll, W_DELETE, other, NULL, NULL);
            bson_destroy(other);
        }
        mqc_hotcmd_off = false;
        for (int k = 0; k < 5; k++) {
            ASSERT_EQ(rh[k].failed, rg[k].failed);
            if (!bson_equal(rh[k].reply, rg[k].reply)) {
                char *a = bson_as_canonical_extended_json(rh[k].reply, NULL), *b = bson_as_canonical_extended_json(rg[k].reply, NULL);
                FAIL("id %zu write %d: %s differs from the generic %s", i, k, a, b);
            }
            tf_res_cleanup(&rh[k]), tf_res_cleanup(&rg[k]);
        }
        bson_destroy(d);
    }
    /* an insert without _id in each way: the stored documents differ only by the ObjectId */
    for (int way = 0; way < 2; way++) {
        mqc_hotcmd_off = way == 1;
        bson_t *d = BCON_NEW("x", BCON_INT32(1), "pad", BCON_UTF8(pad + sizeof pad - 200));
        tf_res_t r = write1(c, way ? gen : hot, W_INSERT, d, NULL, NULL);
        expect_clean(&r);
        tf_res_cleanup(&r);
        bson_destroy(d);
    }
    mqc_hotcmd_off = false;
    size_t nh, ng;
    bson_t **dh = docsrv_docs(s, "db.hot", &nh), **dg = docsrv_docs(s, "db.gen", &ng);
    ASSERT_EQ(nh, 1);
    ASSERT_EQ(ng, 1);
    bson_t h = BSON_INITIALIZER, g = BSON_INITIALIZER;
    bson_copy_to_excluding_noinit(dh[0], &h, "_id", NULL);
    bson_copy_to_excluding_noinit(dg[0], &g, "_id", NULL);
    ASSERT(bson_equal(&h, &g));
    ASSERT_EQ(dh[0]->len, dg[0]->len);
    bson_destroy(&h), bson_destroy(&g);
    docsrv_free_docs(dh, nh), docsrv_free_docs(dg, ng);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) bson_destroy(ids[i]);
    bson_destroy(u), bson_destroy(pipe);
    mqc_collection_destroy(hot), mqc_collection_destroy(gen);
    mqc_client_destroy(c);
    docsrv_stop(s);
}
