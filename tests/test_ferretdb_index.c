/* The test server serves `_id` lookups from its _id index: scripts/ferretdb-patches make FerretDB
 * v1.24.2 push {_id: k} down to SQL in the form its index serves, on SQLite and on PostgreSQL
 * (MQC_FERRETDB_BACKEND=postgresql). Unpatched, every find, update and delete by an integer _id
 * decodes the whole collection in Go (~400 ms at 10,000 documents on SQLite) and string and
 * ObjectId keys scan the table: load tests and the demo then measure the server, not mqc.
 *
 * The measure is one that a busy machine cannot fake: the best of several single operations on a
 * collection of 30,000 documents against the best on one of 100, interleaved so that load affects
 * both alike. An index lookup costs about the same in both: ratios 0.8-1.4 measured, patched, on
 * both backends. A scan costs more the more rows it reads: unpatched, 10-26 on PostgreSQL, 80-540
 * on SQLite (at 10,000 documents PostgreSQL's were only 3.6-6.4, too near the bound). Under
 * valgrind the ratio is only reported (tf_time_bounds).
 *
 * The patches' safety rests on numbers: {_id: 5} must still find a double 5.0 and a NumberLong(5),
 * {_id: 0} a double -0.0, and keys beyond 2^53 still be found. /numbers_across_types checks that.
 *
 * libmongoc is the client here: what is measured is the server, whatever mqc does. */
#include <mongoc/mongoc.h>
#include <stdlib.h>

#include "tf.h"

#define N_SMALL 100
#define N_BIG 30000
#define TRIALS 15
#define MAX_RATIO 3.0
/* After this many trials, a ratio this far past the bound is a scan beyond doubt: unpatched SQLite
 * takes about a second per integer-key operation at N_BIG, and 15 trials of 12 cases would take
 * minutes. */
#define EARLY_TRIALS 5
#define EARLY_RATIO (10 * MAX_RATIO)
/* Documents past libbson's inline buffer, as users store them. */
#define PAD_LEN 300
/* Keys measured in a collection of n documents: the last ones inserted, so that a scan that stops
 * at the first match (update and delete have limit 1) still reads the whole table. Deletes take a
 * fresh one each trial, from the top down; finds and updates reuse the one below those. */
#define DELETE_KEY(n, t) ((n) / KEY_KINDS - 1 - (t))
#define FIXED_KEY(n) ((n) / KEY_KINDS - 1 - TRIALS)

typedef enum { KEY_INT32, KEY_INT64, KEY_STRING, KEY_OID, KEY_KINDS } key_kind_t;
static const char *const kind_names[KEY_KINDS] = {"int32", "int64", "string", "ObjectId"};

/* Each collection holds n documents, a quarter of them with each kind of key, numbered 0..n/4-1
 * within their kind. */
static void append_key(bson_t *b, const char *field, key_kind_t kind, int32_t i)
{
    char s[32];
    bson_oid_t oid;
    uint8_t raw[12] = {0x5e, 0x1d, 0xca, 0xfe};
    switch (kind) {
    case KEY_INT32: BSON_APPEND_INT32(b, field, i); break;
    case KEY_INT64: BSON_APPEND_INT64(b, field, (INT64_C(1) << 40) + i); break;
    case KEY_STRING:
        snprintf(s, sizeof s, "key-%06d", (int) i);
        BSON_APPEND_UTF8(b, field, s);
        break;
    default:
        for (int k = 0; k < 4; k++) raw[8 + k] = (uint8_t) ((uint32_t) i >> (24 - 8 * k));
        bson_oid_init_from_data(&oid, raw);
        BSON_APPEND_OID(b, field, &oid);
        break;
    }
}

static bson_t *key_filter(key_kind_t kind, int32_t i)
{
    bson_t *f = bson_new();
    append_key(f, "_id", kind, i);
    return f;
}

typedef struct {
    mongoc_client_t *client;
    mongoc_collection_t *coll[2]; /* [0] N_SMALL documents, [1] N_BIG */
    bool ready;
} fixture_t;

static fixture_t g_fx;

static void quiet_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    if (level > MONGOC_LOG_LEVEL_WARNING) return;
    if (level == MONGOC_LOG_LEVEL_WARNING && strstr(message, "\"endSessions\"")) return;
    mongoc_log_default_handler(level, domain, message, ud);
}

static void fixture_drop(void)
{
    for (int c = 0; c < 2; c++) {
        if (g_fx.coll[c]) mongoc_collection_drop(g_fx.coll[c], NULL);
        mongoc_collection_destroy(g_fx.coll[c]);
        g_fx.coll[c] = NULL;
    }
    mongoc_client_destroy(g_fx.client);
    g_fx.client = NULL;
}

static void seed(mongoc_collection_t *coll, int32_t n)
{
    char pad[PAD_LEN + 1];
    memset(pad, 'p', PAD_LEN);
    pad[PAD_LEN] = 0;
    bson_t **docs = calloc((size_t) n, sizeof *docs);
    ASSERT_NOT_NULL(docs);
    for (int32_t i = 0; i < n; i++) {
        docs[i] = bson_new();
        append_key(docs[i], "_id", (key_kind_t) (i % KEY_KINDS), i / KEY_KINDS);
        BSON_APPEND_INT32(docs[i], "n", 0);
        BSON_APPEND_UTF8(docs[i], "pad", pad);
    }
    bson_error_t err;
    bool ok = mongoc_collection_insert_many(coll, (const bson_t **) docs, (size_t) n, NULL, NULL, &err);
    for (int32_t i = 0; i < n; i++) bson_destroy(docs[i]);
    free(docs);
    ASSERT_MSG(ok, "seeding %d documents: %s", (int) n, err.message);
}

/* The two collections, seeded once per run (seeding 10,000 documents takes seconds). */
static fixture_t *fixture(void)
{
    if (g_fx.ready) return &g_fx;
    if (g_fx.client) FAIL("seeding failed earlier in this run");
    mongoc_log_set_handler(quiet_log, NULL);
    bson_error_t err;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(tf_server_uri("plain"), &err);
    ASSERT_MSG(uri, "URI: %s", err.message);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
    g_fx.client = mongoc_client_new_from_uri_with_error(uri, &err);
    mongoc_uri_destroy(uri);
    ASSERT_MSG(g_fx.client, "client: %s", err.message);
    mongoc_client_set_error_api(g_fx.client, MONGOC_ERROR_API_VERSION_2);
    atexit(fixture_drop);
    double t0 = tf_now();
    for (int c = 0; c < 2; c++) {
        g_fx.coll[c] = mongoc_client_get_collection(g_fx.client, "mqc_test", tf_unique(c ? "idx_big" : "idx_small"));
        seed(g_fx.coll[c], c ? N_BIG : N_SMALL);
    }
    tf_note("seeded %d + %d documents in %.1f s", N_SMALL, N_BIG, tf_now() - t0);
    g_fx.ready = true;
    return &g_fx;
}

typedef enum { OP_FIND, OP_UPDATE, OP_DELETE } op_t;

/* One operation by _id on coll; returns its duration in seconds. Fails the test unless it found,
 * changed or removed exactly the one document. */
static double one_op(mongoc_collection_t *coll, op_t op, key_kind_t kind, int32_t i)
{
    bson_t *filter = key_filter(kind, i);
    bson_error_t err;
    bson_t reply;
    double t0 = tf_now(), took;
    if (op == OP_FIND) {
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
        const bson_t *doc;
        int n = 0;
        while (mongoc_cursor_next(cur, &doc)) n++;
        took = tf_now() - t0;
        ASSERT_MSG(!mongoc_cursor_error(cur, &err), "find %s key %d: %s", kind_names[kind], (int) i, err.message);
        mongoc_cursor_destroy(cur);
        ASSERT_MSG(n == 1, "find %s key %d: %d documents, expected 1", kind_names[kind], (int) i, n);
    } else if (op == OP_UPDATE) {
        bson_t *upd = BCON_NEW("$inc", "{", "n", BCON_INT32(1), "}");
        bool ok = mongoc_collection_update_one(coll, filter, upd, NULL, &reply, &err);
        took = tf_now() - t0;
        bson_destroy(upd);
        ASSERT_MSG(ok, "update %s key %d: %s", kind_names[kind], (int) i, err.message);
        bson_iter_t it;
        int64_t n = bson_iter_init_find(&it, &reply, "modifiedCount") ? bson_iter_as_int64(&it) : -1;
        bson_destroy(&reply);
        ASSERT_MSG(n == 1, "update %s key %d: modifiedCount %d, expected 1", kind_names[kind], (int) i, (int) n);
    } else {
        bool ok = mongoc_collection_delete_one(coll, filter, NULL, &reply, &err);
        took = tf_now() - t0;
        ASSERT_MSG(ok, "delete %s key %d: %s", kind_names[kind], (int) i, err.message);
        bson_iter_t it;
        int64_t n = bson_iter_init_find(&it, &reply, "deletedCount") ? bson_iter_as_int64(&it) : -1;
        bson_destroy(&reply);
        ASSERT_MSG(n == 1, "delete %s key %d: deletedCount %d, expected 1", kind_names[kind], (int) i, (int) n);
    }
    bson_destroy(filter);
    return took;
}

static const char *const op_names[] = {"find", "update", "delete"};

/* Best of TRIALS operations on each collection, interleaved: the large collection's best over the
 * small one's. */
static double measure_ratio(op_t op, key_kind_t kind, double best[2])
{
    fixture_t *fx = fixture();
    best[0] = best[1] = 1e9;
    for (int t = 0; t < TRIALS; t++) {
        for (int c = 0; c < 2; c++) {
            int32_t n = c ? N_BIG : N_SMALL, i = op == OP_DELETE ? DELETE_KEY(n, t) : FIXED_KEY(n);
            double took = one_op(fx->coll[c], op, kind, i);
            if (took < best[c]) best[c] = took;
        }
        if (t + 1 >= EARLY_TRIALS && best[1] / best[0] >= EARLY_RATIO) break;
    }
    double ratio = best[1] / best[0];
    tf_note("%s by %s _id: best %.2f ms at %d documents, %.2f ms at %d: ratio %.1f", op_names[op],
            kind_names[kind], best[1] * 1e3, N_BIG, best[0] * 1e3, N_SMALL, ratio);
    return ratio;
}

/* Measures op for each kind of key in [from, to], then fails naming every kind whose ratio reaches
 * MAX_RATIO. */
static void check_ratio(op_t op, key_kind_t from, key_kind_t to)
{
    char bad[512] = "";
    size_t len = 0;
    for (int k = from; k <= (int) to; k++) {
        double best[2], ratio = measure_ratio(op, (key_kind_t) k, best);
        if (ratio >= MAX_RATIO && len < sizeof bad)
            len += (size_t) snprintf(bad + len, sizeof bad - len, "%s%s (%.2f ms at %d documents vs %.2f ms at %d, ratio %.1f)",
                                     len ? "; " : "", kind_names[k], best[1] * 1e3, N_BIG, best[0] * 1e3, N_SMALL, ratio);
    }
    if (!tf_time_bounds()) return;
    ASSERT_MSG(!bad[0], "%s by _id scans instead of using the _id index (bound: ratio < %.1f): %s; "
               "is the FerretDB binary built with scripts/ferretdb-patches?", op_names[op], MAX_RATIO, bad);
}

TEST("/ferretdb/id_index/find_int32", ferretdb_id_index_find_int32) { check_ratio(OP_FIND, KEY_INT32, KEY_INT32); }
TEST("/ferretdb/id_index/find_int64", ferretdb_id_index_find_int64) { check_ratio(OP_FIND, KEY_INT64, KEY_INT64); }
TEST("/ferretdb/id_index/find_string", ferretdb_id_index_find_string) { check_ratio(OP_FIND, KEY_STRING, KEY_STRING); }
TEST("/ferretdb/id_index/find_objectid", ferretdb_id_index_find_objectid) { check_ratio(OP_FIND, KEY_OID, KEY_OID); }
TEST("/ferretdb/id_index/update", ferretdb_id_index_update) { check_ratio(OP_UPDATE, KEY_INT32, KEY_OID); }
TEST("/ferretdb/id_index/delete", ferretdb_id_index_delete) { check_ratio(OP_DELETE, KEY_INT32, KEY_OID); }

/* What the pushdown must never lose: MongoDB's {_id: v} matches every number equal to v, whatever
 * its BSON type, and a double -0.0 equals 0. Each document sits in a collection of its own (5 and
 * 5.0 are the same _id to a unique index). */
TEST("/ferretdb/id_index/numbers_across_types", ferretdb_id_index_numbers_across_types)
{
    fixture_t *fx = fixture();
    const int64_t big = (INT64_C(1) << 53) + 1; /* no double holds it: found in Go, not pushed down */
    const struct {
        bson_t *stored, *query;
        const char *what;
    } cases[] = {
        {BCON_NEW("_id", BCON_DOUBLE(5.0)), BCON_NEW("_id", BCON_INT32(5)), "double 5.0 by int32 5"},
        {BCON_NEW("_id", BCON_DOUBLE(5.0)), BCON_NEW("_id", BCON_INT64(5)), "double 5.0 by int64 5"},
        {BCON_NEW("_id", BCON_INT64(7)), BCON_NEW("_id", BCON_INT32(7)), "int64 7 by int32 7"},
        {BCON_NEW("_id", BCON_INT32(7)), BCON_NEW("_id", BCON_INT64(7)), "int32 7 by int64 7"},
        {BCON_NEW("_id", BCON_DOUBLE(-0.0)), BCON_NEW("_id", BCON_INT32(0)), "double -0.0 by int32 0"},
        {BCON_NEW("_id", BCON_INT64(big)), BCON_NEW("_id", BCON_INT64(big)), "int64 2^53+1 by itself"},
        {BCON_NEW("_id", BCON_INT64(-big)), BCON_NEW("_id", BCON_INT64(-big)), "int64 -(2^53+1) by itself"},
        {BCON_NEW("_id", BCON_DOUBLE(9.5)), BCON_NEW("_id", BCON_INT32(9)), NULL /* must not match */},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mongoc_collection_t *coll = mongoc_client_get_collection(fx->client, "mqc_test", tf_unique("idx_num"));
        bson_error_t err;
        ASSERT_MSG(mongoc_collection_insert_one(coll, cases[i].stored, NULL, NULL, &err), "insert: %s", err.message);
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, cases[i].query, NULL, NULL);
        const bson_t *doc;
        int found = 0;
        while (mongoc_cursor_next(cur, &doc)) found++;
        ASSERT_MSG(!mongoc_cursor_error(cur, &err), "find: %s", err.message);
        mongoc_cursor_destroy(cur);
        if (cases[i].what) {
            ASSERT_MSG(found == 1, "%s: find gave %d documents, expected 1", cases[i].what, found);
        } else {
            ASSERT_MSG(found == 0, "double 9.5 found by int32 9 (%d documents)", found);
        }
        mongoc_collection_drop(coll, NULL);
        mongoc_collection_destroy(coll);
        bson_destroy(cases[i].stored);
        bson_destroy(cases[i].query);
    }
}
