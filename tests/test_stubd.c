/* stubd (tests/server/stubd.c), the benchmark's and the fault tests' server, checked with libmongoc: if
 * the reference C driver accepts its answers, a benchmark against it measures a working client. */
#include <bson/bson.h>
#include <limits.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chaos_stub.h"
#include "tf.h"

/* stubd with a fixed seed, so that any random fault option repeats (chaos_stub.h starts it). */
static void stub_start(chaos_stub_t *s, const char *const *extra)
{
    const char *argv[32] = {"--seed", "1"};
    int argc = 2;
    for (; extra && *extra && argc < 31; extra++) argv[argc++] = *extra;
    argv[argc] = NULL;
    chaos_stub_start(s, 0, argv);
}

/* mongoc_init is idempotent; cleanup is left to exit because libmongoc cannot be initialised
 * again after mongoc_cleanup, and other tests in this binary use it too. */
static mongoc_client_t *mongoc_for(const chaos_stub_t *s)
{
    char uri[128];
    mongoc_init();
    snprintf(uri, sizeof uri,
             "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=3000&connectTimeoutMS=3000"
             "&serverSelectionTryOnce=true",
             s->port);
    mongoc_client_t *c = mongoc_client_new(uri);
    ASSERT_NOT_NULL(c);
    return c;
}

static bool run_ping(mongoc_client_t *c, bson_error_t *err)
{
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_t reply;
    bool ok = mongoc_client_command_simple(c, "admin", cmd, NULL, &reply, err);
    bson_destroy(&reply);
    bson_destroy(cmd);
    return ok;
}

TEST("/stubd/ping_and_unknown_command", stubd_ping)
{
    chaos_stub_t s;
    stub_start(&s, NULL);
    mongoc_client_t *c = mongoc_for(&s);
    bson_error_t err;
    ASSERT_MSG(run_ping(c, &err), "ping: %s", err.message);

    bson_t *cmd = BCON_NEW("noSuchCommand", BCON_INT32(1));
    bson_t reply;
    bool ok = mongoc_client_command_simple(c, "admin", cmd, NULL, &reply, &err);
    ASSERT(!ok);
    ASSERT_EQ(err.code, 59);
    ASSERT_STR_CONTAINS(err.message, "no such command");
    bson_destroy(&reply);
    bson_destroy(cmd);
    mongoc_client_destroy(c);
    chaos_stub_stop(&s);
    ASSERT_GE(chaos_stub_stat(&s, "connections_accepted"), 1);
}

TEST("/stubd/find_by_id", stubd_find_by_id)
{
    chaos_stub_t s;
    stub_start(&s, NULL);
    mongoc_client_t *c = mongoc_for(&s);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "bench", "docs");
    bson_t *filter = BCON_NEW("_id", BCON_INT32(5));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *doc;
    bson_iter_t it;
    ASSERT(mongoc_cursor_next(cur, &doc));
    ASSERT(bson_iter_init_find(&it, doc, "_id"));
    ASSERT(BSON_ITER_HOLDS_INT32(&it)); /* the client's own _id value, type and all */
    ASSERT_EQ(bson_iter_int32(&it), 5);
    ASSERT(!mongoc_cursor_next(cur, &doc));
    bson_error_t err;
    ASSERT_MSG(!mongoc_cursor_error(cur, &err), "cursor: %s", err.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(c);
    chaos_stub_stop(&s);
    ASSERT_EQ(chaos_stub_stat(&s, "cursors_opened"), 0);
}

TEST("/stubd/cursor_batches", stubd_cursor_batches)
{
    chaos_stub_t s;
    stub_start(&s, (const char *const[]) { "--docs", "1000", NULL });
    mongoc_client_t *c = mongoc_for(&s);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "bench", "docs");
    bson_t *filter = bson_new();
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32(100));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    bson_iter_t it;
    int64_t n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        ASSERT(bson_iter_init_find(&it, doc, "_id"));
        ASSERT_EQ(bson_iter_as_int64(&it), n);
        n++;
    }
    bson_error_t err;
    ASSERT_MSG(!mongoc_cursor_error(cur, &err), "cursor: %s", err.message);
    ASSERT_EQ(n, 1000);
    mongoc_cursor_destroy(cur);

    /* A cursor left half-read is killed by the driver: killCursors must find it. */
    bson_t *opts2 = BCON_NEW("batchSize", BCON_INT32(10));
    cur = mongoc_collection_find_with_opts(coll, filter, opts2, NULL);
    ASSERT(mongoc_cursor_next(cur, &doc));
    mongoc_cursor_destroy(cur);

    bson_destroy(opts2);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(c);
    chaos_stub_stop(&s);
    ASSERT_EQ(chaos_stub_stat(&s, "cursors_opened"), 2);
    ASSERT_EQ(chaos_stub_stat(&s, "cursors_open"), 0);
}

TEST("/stubd/insert_counts", stubd_insert_counts)
{
    chaos_stub_t s;
    stub_start(&s, NULL);
    mongoc_client_t *c = mongoc_for(&s);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "bench", "docs");
    bson_t *docs[10];
    for (int i = 0; i < 10; i++) docs[i] = BCON_NEW("_id", BCON_INT32(i), "v", BCON_UTF8("x"));
    bson_t reply;
    bson_error_t err;
    bool ok = mongoc_collection_insert_many(coll, (const bson_t **) docs, 10, NULL, &reply, &err);
    ASSERT_MSG(ok, "insert_many: %s", err.message);
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, &reply, "insertedCount"));
    ASSERT_EQ(bson_iter_as_int64(&it), 10);
    bson_destroy(&reply);

    /* w:0 goes out with moreToCome: the stub must not answer, and the connection stays usable. */
    mongoc_write_concern_t *w0 = mongoc_write_concern_new();
    mongoc_write_concern_set_w(w0, MONGOC_WRITE_CONCERN_W_UNACKNOWLEDGED);
    bson_t opts = BSON_INITIALIZER;
    ASSERT(mongoc_write_concern_append(w0, &opts));
    ok = mongoc_collection_insert_one(coll, docs[0], &opts, NULL, &err);
    ASSERT_MSG(ok, "insert w:0: %s", err.message);
    ASSERT_MSG(run_ping(c, &err), "ping after w:0: %s", err.message);

    bson_destroy(&opts);
    mongoc_write_concern_destroy(w0);
    for (int i = 0; i < 10; i++) bson_destroy(docs[i]);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(c);
    chaos_stub_stop(&s);
    ASSERT_EQ(chaos_stub_stat(&s, "no_reply"), 1);
    ASSERT_EQ(chaos_stub_stat(&s, "bad_messages"), 0);
}

TEST("/stubd/delay", stubd_delay)
{
    chaos_stub_t s;
    stub_start(&s, (const char *const[]) { "--delay-us", "200000", NULL });
    mongoc_client_t *c = mongoc_for(&s);
    bson_error_t err;
    ASSERT_MSG(run_ping(c, &err), "ping: %s", err.message); /* connects: hello is not delayed */
    double t0 = tf_now();
    ASSERT_MSG(run_ping(c, &err), "ping: %s", err.message);
    double dt = tf_now() - t0;
    ASSERT_MSG(dt >= 0.19 && dt < 2.0, "a 200 ms delay took %.3f s", dt);
    mongoc_client_destroy(c);
    chaos_stub_stop(&s);
}

TEST("/stubd/fault/error_reply", stubd_fault_error)
{
    chaos_stub_t s;
    stub_start(&s, (const char *const[]) { "--fault-error", "91:@1", NULL });
    mongoc_client_t *c = mongoc_for(&s);
    bson_error_t err;
    ASSERT(!run_ping(c, &err));
    ASSERT_EQ(err.code, 91);
    ASSERT_STR_CONTAINS(err.message, "injected fault");
    mongoc_client_destroy(c);
    chaos_stub_stop(&s);
    /* The ping, and the endSessions libmongoc sends on its way out. */
    ASSERT_GE(chaos_stub_stat(&s, "error"), 1);
    ASSERT_EQ(chaos_stub_stat(&s, "total"), chaos_stub_stat(&s, "error"));
}

TEST("/stubd/fault/hangup_every_other", stubd_fault_hangup)
{
    chaos_stub_t s;
    stub_start(&s, (const char *const[]) { "--fault-hangup-before=@2", NULL });
    mongoc_client_t *c = mongoc_for(&s);
    bson_error_t err;
    ASSERT_MSG(run_ping(c, &err), "first ping: %s", err.message);
    ASSERT(!run_ping(c, &err)); /* the second command is hung up on */
    ASSERT_EQ(err.domain, MONGOC_ERROR_STREAM);
    ASSERT_MSG(run_ping(c, &err), "third ping, on a new connection: %s", err.message);
    mongoc_client_destroy(c);
    chaos_stub_stop(&s);
    ASSERT_GE(chaos_stub_stat(&s, "hangup_before"), 1);
    ASSERT_EQ(chaos_stub_stat(&s, "total"), chaos_stub_stat(&s, "hangup_before"));
    ASSERT_GE(chaos_stub_stat(&s, "connections_accepted"), 2);
}

/* The canned mode holds MongoDB's write limits: a write of no statements is InvalidLength. */
TEST("/stubd/write_without_statements_is_invalid_length", stubd_invalid_length)
{
    chaos_stub_t s;
    stub_start(&s, NULL);
    mongoc_client_t *c = mongoc_for(&s);
    bson_t *cmd = BCON_NEW("insert", "c", "documents", "[", "]");
    bson_t reply;
    bson_error_t err;
    ASSERT(!mongoc_client_command_simple(c, "db", cmd, NULL, &reply, &err));
    ASSERT_EQ(err.code, 16);
    ASSERT_STR_CONTAINS(err.message, "Write batch sizes must be between 1 and 100000");
    bson_destroy(&reply);
    bson_destroy(cmd);
    mongoc_client_destroy(c);
    chaos_stub_stop(&s);
}
