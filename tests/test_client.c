/* The client against a real server (FerretDB started by the harness, or MQC_TEST_URI). */
#include <ev.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>

#include "mqc.h"
#include "support/result.h"
#include "tf.h"

static mqc_client_t *new_client(const char *extra) { return tf_client_new(tf_uri_with(tf_server_uri("plain"), extra)); }
static void wait_idle(mqc_client_t *c) { tf_client_wait_idle(c, 60); }

static int64_t get_int(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    ASSERT_MSG(doc && bson_iter_init_find(&it, doc, key), "no %s in reply", key);
    return bson_iter_as_int64(&it);
}

#define EXPECT_OK(r)                                                                            \
    do {                                                                                        \
        ASSERT_EQ((r).calls, 1);                                                                \
        ASSERT_MSG(!(r).failed, "unexpected error: %s: %s", mqc_error_domain_name((r).error.domain), \
                   (r).error.message);                                                          \
    } while (0)

TEST("/client/uri/bad", client_uri_bad)
{
    mqc_error_t err;
    ASSERT_NULL(mqc_client_new_from_uri(NULL, "mongodb://user:s3cret@", &err));
    ASSERT_EQ(err.domain, MQC_ERROR_URI);
    ASSERT(strstr(err.message, "s3cret") == NULL);
    ASSERT_NULL(mqc_client_new_from_uri(NULL, "http://localhost", &err));
    ASSERT_EQ(err.domain, MQC_ERROR_URI);
}

TEST("/client/command/ping", client_command_ping)
{
    mqc_client_t *c = new_client(NULL);
    tf_res_t r = {.keep_reply = true};
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    mqc_op_t *op = mqc_client_command(c, "admin", cmd, NULL, tf_res_cb, &r);
    ASSERT_NOT_NULL(op);
    ASSERT_EQ(r.calls, 0); /* never from inside the submit call */
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "ok"), 1);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_OPS_COMPLETED), 1);
    ASSERT_GE(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), 1);
    tf_res_reset(&r);
    bson_destroy(cmd);
    mqc_client_destroy(c);
}

TEST("/client/command/server_error", client_command_server_error)
{
    mqc_client_t *c = new_client(NULL);
    tf_res_t r = {.keep_reply = true};
    bson_t *cmd = BCON_NEW("noSuchCommandMqc", BCON_INT32(1));
    mqc_client_command(c, "admin", cmd, NULL, tf_res_cb, &r);
    wait_idle(c);
    ASSERT_EQ(r.calls, 1);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_SERVER);
    ASSERT_EQ(r.error.code, 59);
    ASSERT_STR_EQ(r.error.code_name, "CommandNotFound");
    /* The connection is still good: the next command succeeds on it. */
    tf_res_reset(&r);
    bson_destroy(cmd);
    cmd = BCON_NEW("ping", BCON_INT32(1));
    mqc_client_command(c, "admin", cmd, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), 1);
    tf_res_reset(&r);
    bson_destroy(cmd);
    mqc_client_destroy(c);
}

TEST("/client/crud/roundtrip", client_crud_roundtrip)
{
    mqc_client_t *c = new_client(NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "mqc_test", tf_unique("crud"));
    tf_res_t r = {.keep_reply = true};

    bson_t *doc = BCON_NEW("_id", BCON_INT32(1), "name", BCON_UTF8("one"), "n", BCON_INT32(10));
    mqc_collection_insert_one(coll, doc, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "insertedCount"), 1);
    ASSERT_EQ(get_int(r.reply, "insertedId"), 1);
    tf_res_reset(&r);

    bson_t *noid = BCON_NEW("name", BCON_UTF8("generated"));
    mqc_collection_insert_one(coll, noid, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, r.reply, "insertedId") && BSON_ITER_HOLDS_OID(&it));
    tf_res_reset(&r);

    bson_t *docs[3];
    for (int i = 0; i < 3; i++) docs[i] = BCON_NEW("_id", BCON_INT32(100 + i), "n", BCON_INT32(i));
    mqc_collection_insert_many(coll, (const bson_t *const *) docs, 3, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "insertedCount"), 3);
    tf_res_reset(&r);

    bson_t *f1 = BCON_NEW("_id", BCON_INT32(1));
    mqc_collection_find_one(coll, f1, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "n"), 10);
    tf_res_reset(&r);

    bson_t *none = BCON_NEW("_id", BCON_INT32(999));
    mqc_collection_find_one(coll, none, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_NULL(r.reply);
    tf_res_reset(&r);

    bson_t *upd = BCON_NEW("$set", "{", "n", BCON_INT32(11), "}");
    mqc_collection_update_one(coll, f1, upd, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "matchedCount"), 1);
    ASSERT_EQ(get_int(r.reply, "modifiedCount"), 1);
    tf_res_reset(&r);

    bson_t *rng = BCON_NEW("_id", "{", "$gte", BCON_INT32(100), "}");
    bson_t *inc = BCON_NEW("$inc", "{", "n", BCON_INT32(5), "}");
    mqc_collection_update_many(coll, rng, inc, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "matchedCount"), 3);
    tf_res_reset(&r);

    bson_t *up_f = BCON_NEW("_id", BCON_INT32(500));
    bson_t *up_opts = BCON_NEW("upsert", BCON_BOOL(true));
    mqc_collection_update_one(coll, up_f, upd, up_opts, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "upsertedCount"), 1);
    tf_res_reset(&r);

    bson_t *repl = BCON_NEW("name", BCON_UTF8("replaced"));
    mqc_collection_replace_one(coll, f1, repl, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "modifiedCount"), 1);
    tf_res_reset(&r);

    /* An update without operators is refused by the client, through the callback. */
    mqc_collection_update_one(coll, f1, repl, NULL, tf_res_cb, &r);
    ASSERT_EQ(r.calls, 0);
    wait_idle(c);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.error.domain, MQC_ERROR_CLIENT);
    tf_res_reset(&r);

    mqc_collection_count_documents(coll, NULL, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "count"), 6);
    tf_res_reset(&r);

    mqc_collection_distinct(coll, "n", rng, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT(bson_iter_init_find(&it, r.reply, "values") && BSON_ITER_HOLDS_ARRAY(&it));
    tf_res_reset(&r);

    bson_t *fam_opts = BCON_NEW("returnDocument", BCON_UTF8("after"));
    mqc_collection_find_one_and_update(coll, up_f, inc, fam_opts, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    bson_iter_t v;
    ASSERT(bson_iter_init(&it, r.reply) && bson_iter_find_descendant(&it, "value.n", &v));
    ASSERT_EQ(bson_iter_as_int64(&v), 16);
    tf_res_reset(&r);

    mqc_collection_find_one_and_replace(coll, up_f, repl, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    tf_res_reset(&r);

    mqc_collection_find_one_and_delete(coll, up_f, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT(bson_iter_init(&it, r.reply) && bson_iter_find_descendant(&it, "value.name", &v));
    ASSERT_STR_EQ(bson_iter_utf8(&v, NULL), "replaced");
    tf_res_reset(&r);

    mqc_collection_delete_one(coll, f1, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "deletedCount"), 1);
    tf_res_reset(&r);

    mqc_collection_delete_many(coll, rng, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "deletedCount"), 3);
    tf_res_reset(&r);

    /* Ordered bulk with a duplicate key: stops at the error, which names its index. */
    mqc_bulk_t *b = mqc_collection_bulk_new(coll, NULL);
    mqc_error_t berr;
    bson_t *d7 = BCON_NEW("_id", BCON_INT32(7));
    ASSERT(mqc_bulk_insert(b, d7, &berr));
    ASSERT(mqc_bulk_insert(b, d7, &berr));
    ASSERT(mqc_bulk_delete_one(b, d7, NULL, &berr));
    mqc_bulk_execute(b, tf_res_cb, &r);
    wait_idle(c);
    ASSERT_EQ(r.calls, 1);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_WRITE);
    ASSERT_EQ(r.error.code, 11000);
    ASSERT_EQ(get_int(r.reply, "insertedCount"), 1);
    ASSERT_EQ(get_int(r.reply, "deletedCount"), 0);
    ASSERT(bson_iter_init(&it, r.reply) && bson_iter_find_descendant(&it, "writeErrors.0.index", &v));
    ASSERT_EQ(bson_iter_as_int64(&v), 1);
    tf_res_reset(&r);

    /* Unordered: goes on after the error. */
    bson_t *uo = BCON_NEW("ordered", BCON_BOOL(false));
    b = mqc_collection_bulk_new(coll, uo);
    bson_t *d8 = BCON_NEW("_id", BCON_INT32(8));
    ASSERT(mqc_bulk_insert(b, d7, &berr));
    ASSERT(mqc_bulk_insert(b, d8, &berr));
    mqc_bulk_execute(b, tf_res_cb, &r);
    wait_idle(c);
    ASSERT(r.failed);
    ASSERT_EQ(get_int(r.reply, "insertedCount"), 1);
    tf_res_reset(&r);

    bson_t *drop = BCON_NEW("drop", BCON_UTF8(mqc_collection_get_name(coll)));
    mqc_client_command(c, "mqc_test", drop, NULL, NULL, NULL);
    wait_idle(c);

    bson_destroy(doc); bson_destroy(noid); bson_destroy(f1); bson_destroy(none); bson_destroy(upd);
    bson_destroy(rng); bson_destroy(inc); bson_destroy(up_f); bson_destroy(up_opts); bson_destroy(repl);
    bson_destroy(fam_opts); bson_destroy(d7); bson_destroy(d8); bson_destroy(uo); bson_destroy(drop);
    for (int i = 0; i < 3; i++) bson_destroy(docs[i]);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}

/* ---- many at once ---------------------------------------------------------------------------- */

typedef struct {
    int calls, errors;
} counter_t;

static void on_count(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    counter_t *k = ud;
    k->calls++;
    if (error) k->errors++;
}

static void seed(mqc_client_t *c, mqc_collection_t *coll, int n)
{
    bson_t **docs = calloc((size_t) n, sizeof *docs);
    for (int i = 0; i < n; i++) docs[i] = BCON_NEW("_id", BCON_INT32(i), "v", BCON_INT32(i * 3));
    tf_res_t r = {.keep_reply = true};
    mqc_collection_insert_many(coll, (const bson_t *const *) docs, (size_t) n, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "insertedCount"), n);
    tf_res_reset(&r);
    for (int i = 0; i < n; i++) bson_destroy(docs[i]);
    free(docs);
}

typedef struct {
    bool called;
    size_t ok, n;
    bool all_match;
} gather_check_t;

static void on_gather(mqc_gather_t *g, const mqc_error_t *error, void *ud)
{
    gather_check_t *k = ud;
    k->called = true;
    k->n = mqc_gather_size(g);
    k->ok = mqc_gather_ok_count(g);
    k->all_match = error == NULL;
    for (size_t i = 0; i < k->n; i++) {
        const bson_t *doc = mqc_gather_reply(g, i);
        bson_iter_t it;
        /* Slot i asked for _id i % 10: the results come back in the order added. */
        if (!doc || !bson_iter_init_find(&it, doc, "v") || bson_iter_as_int64(&it) != (int64_t) (i % 10) * 3)
            k->all_match = false;
    }
}

TEST("/client/gather/10000_finds", client_gather_10000)
{
    /* FerretDB's SQLite backend scans the collection per query: keep it small so that the test
     * measures the client's 10,000 concurrent operations, not the server's scans. */
    mqc_client_t *c = new_client("maxPoolSize=16");
    mqc_collection_t *coll = mqc_client_get_collection(c, "mqc_test", tf_unique("gather"));
    seed(c, coll, 10);
    mqc_gather_t *g = mqc_gather_new(c, MQC_GATHER_ALL);
    for (int i = 0; i < 10000; i++) {
        bson_t *f = BCON_NEW("_id", BCON_INT32(i % 10));
        ASSERT(mqc_gather_add(g, mqc_collection_find_one(coll, f, NULL, NULL, NULL)));
        bson_destroy(f);
    }
    gather_check_t k = {0};
    mqc_gather_start(g, on_gather, &k);
    wait_idle(c);
    ASSERT(k.called);
    ASSERT_EQ(k.n, 10000);
    ASSERT_EQ(k.ok, 10000);
    ASSERT(k.all_match);
    ASSERT_LE(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), 16);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_OPS_SUBMITTED), mqc_client_stat(c, MQC_STAT_OPS_COMPLETED));
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}

typedef struct {
    uint64_t docs;
    int batches;
    unsigned char *seen;
    int dupes;
    bool done, failed;
} walk_t;

static void on_walk(mqc_cursor_t *cur, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    walk_t *w = ud;
    if (error) {
        w->failed = true;
        w->done = true;
        return;
    }
    w->batches++;
    for (size_t i = 0; i < n; i++) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, &docs[i], "_id")) {
            int64_t id = bson_iter_as_int64(&it);
            if (w->seen[id]) w->dupes++;
            w->seen[id] = 1;
        }
        w->docs++;
    }
    if (mqc_cursor_more(cur)) mqc_cursor_next(cur);
    else w->done = true;
}

TEST("/client/cursor/50000_docs_batch_100", client_cursor_50000)
{
    mqc_client_t *c = new_client(NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "mqc_test", tf_unique("cursor"));
    seed(c, coll, 50000);
    walk_t w = {0};
    w.seen = calloc(50000, 1);
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32(100), "sort", "{", "_id", BCON_INT32(1), "}");
    mqc_cursor_t *cur = mqc_collection_find(coll, NULL, opts, on_walk, &w);
    wait_idle(c);
    ASSERT(w.done);
    ASSERT(!w.failed);
    ASSERT_EQ(w.docs, 50000);
    ASSERT_EQ(w.dupes, 0);
    ASSERT_GE(w.batches, 500);
    for (int i = 0; i < 50000; i++) ASSERT_MSG(w.seen[i], "document %d never came", i);
    ASSERT_EQ(mqc_cursor_count(cur), 50000);
    mqc_cursor_destroy(cur);
    /* A cursor destroyed half way is killed on the server. */
    walk_t w2 = {0};
    w2.seen = calloc(50000, 1);
    cur = mqc_collection_find(coll, NULL, opts, NULL, NULL);
    (void) w2;
    wait_idle(c);
    ASSERT_NE(mqc_cursor_id(cur), 0);
    mqc_cursor_destroy(cur);
    wait_idle(c); /* the killCursors */
    free(w.seen);
    free(w2.seen);
    bson_destroy(opts);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}

static int g_insert_cmds;
static void count_inserts(const mqc_command_event_t *ev, void *ud)
{
    (void) ud;
    if (ev->type == MQC_COMMAND_STARTED && strcmp(ev->command_name, "insert") == 0) g_insert_cmds++;
}

TEST("/client/insert_many/200000_split", client_insert_many_200000)
{
    mqc_client_t *c = new_client(NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "mqc_test", tf_unique("big"));
    mqc_monitor_t m = {.command = count_inserts};
    mqc_client_set_monitor(c, &m, NULL);
    g_insert_cmds = 0;
    seed(c, coll, 200000);
    ASSERT_GE(g_insert_cmds, 2);
    tf_note("200000 documents went in %d insert commands", g_insert_cmds);
    tf_res_t r = {.keep_reply = true};
    mqc_collection_count_documents(coll, NULL, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_EQ(get_int(r.reply, "count"), 200000);
    tf_res_reset(&r);
    bson_t *drop = BCON_NEW("drop", BCON_UTF8(mqc_collection_get_name(coll)));
    mqc_client_command(c, "mqc_test", drop, NULL, NULL, NULL);
    wait_idle(c);
    bson_destroy(drop);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}

/* insert_many of documents past libbson's inline buffer, enough of them that the bulk's list of
 * models grows several times while they are added, hundreds of operations in flight: each document
 * must reach the server intact. (The models once held their bson_t by value: growing the list moved
 * documents that point into themselves, and the first large insert_many crashed.) */
TEST("/client/insert_many/large_documents", client_insert_many_large_documents)
{
    enum { OPS = 200, PER_OP = 20, PAD = 300 };
    mqc_client_t *c = new_client(NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "mqc_test", tf_unique("large"));
    char pad[PAD + 1];
    memset(pad, 'q', PAD);
    pad[PAD] = 0;
    counter_t k = {0};
    bson_t *docs[PER_OP];
    for (int op = 0; op < OPS; op++) {
        for (int i = 0; i < PER_OP; i++) {
            int id = op * PER_OP + i;
            pad[id % PAD] = (char) ('a' + id % 26); /* each document differs */
            docs[i] = BCON_NEW("_id", BCON_INT32(id), "pad", BCON_UTF8(pad), "sub", "{", "id", BCON_INT32(id), "}");
            pad[id % PAD] = 'q';
            ASSERT_GT(docs[i]->len, 120u);
        }
        mqc_collection_insert_many(coll, (const bson_t *const *) docs, PER_OP, NULL, on_count, &k);
        for (int i = 0; i < PER_OP; i++) bson_destroy(docs[i]);
    }
    wait_idle(c);
    ASSERT_EQ(k.calls, OPS);
    ASSERT_EQ(k.errors, 0);
    /* Read back through libmongoc and check every document. */
    bson_error_t err;
    mongoc_client_t *mc = mongoc_client_new(tf_server_uri("plain"));
    ASSERT_NOT_NULL(mc);
    mongoc_collection_t *mcoll = mongoc_client_get_collection(mc, "mqc_test", mqc_collection_get_name(coll));
    bson_t *sort = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
    bson_t empty = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(mcoll, &empty, sort, NULL);
    const bson_t *got;
    int n = 0;
    while (mongoc_cursor_next(cur, &got)) {
        bson_iter_t it;
        ASSERT_MSG(bson_iter_init_find(&it, got, "_id") && bson_iter_as_int64(&it) == n, "document %d missing or out of order", n);
        ASSERT_MSG(bson_iter_init_find(&it, got, "pad") && BSON_ITER_HOLDS_UTF8(&it), "document %d: no pad", n);
        const char *p = bson_iter_utf8(&it, NULL);
        ASSERT_MSG(strlen(p) == PAD && p[n % PAD] == 'a' + n % 26, "document %d: pad damaged", n);
        n++;
    }
    ASSERT_MSG(!mongoc_cursor_error(cur, &err), "find: %s", err.message);
    ASSERT_EQ(n, OPS * PER_OP);
    mongoc_cursor_destroy(cur);
    mongoc_collection_drop(mcoll, NULL);
    bson_destroy(sort);
    mongoc_collection_destroy(mcoll);
    mongoc_client_destroy(mc);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}

TEST("/client/destroy/1000_pending", client_destroy_pending)
{
    mqc_client_t *c = new_client("maxPoolSize=4");
    counter_t k = {0};
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    for (int i = 0; i < 1000; i++) mqc_client_command(c, "admin", cmd, NULL, on_count, &k);
    /* Let some get going, then destroy with the rest pending. */
    ev_run(mqc_client_get_loop(c), EVRUN_NOWAIT);
    mqc_client_destroy(c);
    ASSERT_EQ(k.calls, 1000);
    tf_note("%d of 1000 ended with an error (shutdown)", k.errors);
    bson_destroy(cmd);
}

/* Destroying the client from inside a callback. */
static void destroy_in_cb(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) reply;
    (void) error;
    counter_t *k = ud;
    k->calls++;
    if (k->calls == 1) mqc_client_destroy(mqc_op_get_client(op));
}

TEST("/client/destroy/from_callback", client_destroy_from_callback)
{
    mqc_client_t *c = new_client(NULL);
    struct ev_loop *loop = ev_loop_new(0);
    mqc_client_destroy(c);
    mqc_error_t err;
    c = mqc_client_new_from_uri(loop, tf_server_uri("plain"), &err);
    ASSERT_NOT_NULL(c);
    counter_t k = {0};
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    for (int i = 0; i < 50; i++) mqc_client_command(c, "admin", cmd, NULL, destroy_in_cb, &k);
    double t0 = tf_now();
    while (k.calls < 50 && tf_now() - t0 < 30) ev_run(loop, EVRUN_ONCE);
    ASSERT_EQ(k.calls, 50);
    bson_destroy(cmd);
    ev_loop_destroy(loop);
}

TEST("/client/w0/unacknowledged", client_w0)
{
    mqc_client_t *c = new_client("w=0");
    mqc_collection_t *coll = mqc_client_get_collection(c, "mqc_test", tf_unique("w0"));
    tf_res_t r = {.keep_reply = true};
    for (int i = 0; i < 20; i++) {
        bson_t *d = BCON_NEW("_id", BCON_INT32(i));
        mqc_collection_insert_one(coll, d, NULL, tf_res_cb, &r);
        bson_destroy(d);
    }
    wait_idle(c);
    ASSERT_EQ(r.calls, 20);
    ASSERT(!r.failed);
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, r.reply, "acknowledged") && !bson_iter_as_bool(&it));
    tf_res_reset(&r);
    /* Reads on the same connections still get their own replies (stray w:0 replies dropped). */
    bson_t *ack = BCON_NEW("writeConcern", "{", "w", BCON_INT32(1), "}");
    mqc_collection_count_documents(coll, NULL, ack, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    ASSERT_LE(get_int(r.reply, "count"), 20);
    tf_res_reset(&r);
    bson_destroy(ack);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}

TEST("/client/network/refused", client_refused)
{
    mqc_error_t err;
    /* Port 1 on loopback: nothing listens there. */
    mqc_client_t *c = mqc_client_new_from_uri(NULL, "mongodb://127.0.0.1:1/?connectTimeoutMS=2000", &err);
    ASSERT_NOT_NULL(c);
    tf_res_t r = {.keep_reply = true};
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    mqc_client_command(c, "admin", cmd, NULL, tf_res_cb, &r);
    wait_idle(c);
    ASSERT_EQ(r.calls, 1);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_NETWORK);
    ASSERT_STR_CONTAINS(r.error.message, "refused");
    tf_res_reset(&r);
    bson_destroy(cmd);
    mqc_client_destroy(c);
}

TEST("/client/network/unresolvable", client_unresolvable)
{
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, "mongodb://no-such-host.invalid:27017/", &err);
    ASSERT_NOT_NULL(c);
    tf_res_t r = {.keep_reply = true};
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    mqc_client_command(c, "admin", cmd, NULL, tf_res_cb, &r);
    wait_idle(c);
    ASSERT_EQ(r.calls, 1);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_RESOLVE);
    ASSERT_STR_CONTAINS(r.error.message, "no-such-host.invalid");
    tf_res_reset(&r);
    bson_destroy(cmd);
    mqc_client_destroy(c);
}

TEST("/client/libmongoc/readback_bytes", client_libmongoc_readback)
{
    mqc_client_t *c = new_client(NULL);
    const char *name = tf_unique("readback");
    mqc_collection_t *coll = mqc_client_get_collection(c, "mqc_test", name);
    bson_t *doc = BCON_NEW("_id", BCON_INT32(42), "s", BCON_UTF8("héllo"), "d", BCON_DOUBLE(1.5), "a", "[",
                           BCON_INT32(1), BCON_INT64(2), "]", "sub", "{", "b", BCON_BOOL(true), "}");
    tf_res_t r = {.keep_reply = true};
    mqc_collection_insert_one(coll, doc, NULL, tf_res_cb, &r);
    wait_idle(c);
    EXPECT_OK(r);
    tf_res_reset(&r);

    mongoc_client_t *mc = mongoc_client_new(tf_server_uri("plain"));
    mongoc_collection_t *mcoll = mongoc_client_get_collection(mc, "mqc_test", name);
    bson_t *f = BCON_NEW("_id", BCON_INT32(42));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(mcoll, f, NULL, NULL);
    const bson_t *got;
    ASSERT(mongoc_cursor_next(cur, &got));
    ASSERT_EQ(got->len, doc->len);
    ASSERT(memcmp(bson_get_data(got), bson_get_data(doc), doc->len) == 0);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(mcoll);
    mongoc_client_destroy(mc);
    bson_destroy(f);
    bson_destroy(doc);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}
