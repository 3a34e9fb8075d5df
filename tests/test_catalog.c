/* The catalog calls (lib/catalog.c) against a real server, and the fail point proxy
 * (tests/failproxy.c) in front of it. */
#include <stdlib.h>

#include "mqc.h"
#include "tf.h"

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

static void res_reset(res_t *r)
{
    if (r->reply) bson_destroy(r->reply);
    memset(r, 0, sizeof *r);
}

typedef struct {
    bson_t *docs[4096];
    size_t n;
    bool done, failed;
    mqc_error_t error;
    int batches;
} list_t;

static void on_list(mqc_cursor_t *c, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    list_t *l = ud;
    l->batches++;
    if (error) {
        l->failed = l->done = true;
        l->error = *error;
        return;
    }
    for (size_t i = 0; i < n && l->n < 4096; i++) l->docs[l->n++] = bson_copy(&docs[i]);
    if (!mqc_cursor_more(c) || !mqc_cursor_next(c)) l->done = true;
}

static void list_reset(list_t *l)
{
    for (size_t i = 0; i < l->n; i++) bson_destroy(l->docs[i]);
    memset(l, 0, sizeof *l);
}

static bool list_has_name(const list_t *l, const char *name)
{
    bson_iter_t it;
    for (size_t i = 0; i < l->n; i++)
        if (bson_iter_init_find(&it, l->docs[i], "name") && BSON_ITER_HOLDS_UTF8(&it) &&
            !strcmp(bson_iter_utf8(&it, NULL), name))
            return true;
    return false;
}

static mqc_client_t *client_for(const char *kind)
{
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, tf_server_uri(kind), &err);
    ASSERT_MSG(c, "client: %s", err.message);
    return c;
}

static void run(mqc_client_t *c, bool *done)
{
    for (int i = 0; i < 600 && !*done; i++) mqc_client_run_until_idle(c, 0.1);
    ASSERT_MSG(*done, "no callback within 60 s");
}

#define WAIT_OP(c, r)                                                                           \
    do {                                                                                        \
        mqc_client_run_until_idle(c, 60);                                                       \
        ASSERT_EQ((r).calls, 1);                                                                \
    } while (0)

TEST("/catalog/collections_indexes_rename", catalog_collections)
{
    mqc_client_t *c = client_for("plain");
    const char *dbname = tf_unique("cat");
    mqc_database_t *db = mqc_client_get_database(c, dbname);
    res_t r = {0};
    list_t l = {0};

    /* create, then create again: the server's NamespaceExists comes back as an error. */
    mqc_database_create_collection(db, "a", NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "create: %s", r.error.message);
    res_reset(&r);
    mqc_database_create_collection(db, "a", NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_SERVER);
    ASSERT_EQ(r.error.code, 48);
    res_reset(&r);

    /* Documents larger than the inline buffer, more than one batch of the listing. */
    mqc_collection_t *a = mqc_database_get_collection(db, "a");
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    bson_t *docs[250];
    for (int i = 0; i < 250; i++) {
        docs[i] = BCON_NEW("_id", BCON_INT32(i), "pad", BCON_UTF8(big));
    }
    mqc_collection_insert_many(a, (const bson_t *const *) docs, 250, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "insert: %s", r.error.message);
    for (int i = 0; i < 250; i++) bson_destroy(docs[i]);
    res_reset(&r);

    mqc_collection_estimated_document_count(a, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "estimatedDocumentCount: %s", r.error.message);
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, r.reply, "count"));
    ASSERT_EQ(bson_iter_as_int64(&it), 250);
    res_reset(&r);

    /* Twenty more collections, listed in batches of 5 (getMore on the listing's cursor). */
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%02d", i);
        mqc_database_create_collection(db, name, NULL, NULL, NULL);
    }
    mqc_client_run_until_idle(c, 60);
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32(5));
    mqc_cursor_t *cur = mqc_database_list_collections(db, NULL, opts, on_list, &l);
    run(c, &l.done);
    ASSERT_MSG(!l.failed, "listCollections: %s", l.error.message);
    ASSERT_EQ(l.n, 21);
    ASSERT(list_has_name(&l, "a"));
    ASSERT(list_has_name(&l, "c19"));
    mqc_cursor_destroy(cur);
    list_reset(&l);
    bson_destroy(opts);

    /* nameOnly with a filter. */
    bson_t *filter = BCON_NEW("name", BCON_UTF8("a"));
    opts = BCON_NEW("nameOnly", BCON_BOOL(true));
    cur = mqc_database_list_collections(db, filter, opts, on_list, &l);
    run(c, &l.done);
    ASSERT_EQ(l.n, 1);
    ASSERT(list_has_name(&l, "a"));
    mqc_cursor_destroy(cur);
    list_reset(&l);
    bson_destroy(filter);
    bson_destroy(opts);

    /* Indexes: create (a default name and a given one), list, drop one, drop the rest. */
    bson_t *keys = BCON_NEW("x", BCON_INT32(1), "y", BCON_INT32(-1));
    mqc_collection_create_index(a, keys, NULL, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "createIndex: %s", r.error.message);
    ASSERT(bson_iter_init_find(&it, r.reply, "name"));
    ASSERT_STR_EQ(bson_iter_utf8(&it, NULL), "x_1_y_-1");
    res_reset(&r);
    bson_t *m1 = BCON_NEW("key", "{", "z", BCON_INT32(1), "}", "name", BCON_UTF8("zz"), "unique", BCON_BOOL(true));
    bson_t *m2 = BCON_NEW("key", "{", "w", BCON_INT32(1), "}");
    const bson_t *models[] = {m1, m2};
    mqc_collection_create_indexes(a, models, 2, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "createIndexes: %s", r.error.message);
    res_reset(&r);
    cur = mqc_collection_list_indexes(a, NULL, on_list, &l);
    run(c, &l.done);
    ASSERT_EQ(l.n, 4);
    ASSERT(list_has_name(&l, "_id_"));
    ASSERT(list_has_name(&l, "zz"));
    ASSERT(list_has_name(&l, "w_1"));
    mqc_cursor_destroy(cur);
    list_reset(&l);
    mqc_collection_drop_index(a, "zz", NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "dropIndex: %s", r.error.message);
    res_reset(&r);
    mqc_collection_drop_index(a, "*", NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_CLIENT);
    res_reset(&r);
    mqc_collection_drop_indexes(a, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "dropIndexes: %s", r.error.message);
    res_reset(&r);
    cur = mqc_collection_list_indexes(a, NULL, on_list, &l);
    run(c, &l.done);
    ASSERT_EQ(l.n, 1);
    mqc_cursor_destroy(cur);
    list_reset(&l);
    bson_destroy(keys);
    bson_destroy(m1);
    bson_destroy(m2);
    /* A model without a key is the caller's error, said before anything is sent. */
    bson_t *nokey = BCON_NEW("name", BCON_UTF8("n"));
    const bson_t *bad[] = {nokey};
    mqc_collection_create_indexes(a, bad, 1, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_CLIENT);
    res_reset(&r);
    bson_destroy(nokey);

    /* rename, then runCursorCommand on the new name in batches of 100. */
    mqc_collection_rename(a, NULL, "b", NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "rename: %s", r.error.message);
    res_reset(&r);
    bson_t *cmd = BCON_NEW("find", BCON_UTF8("b"), "batchSize", BCON_INT32(100));
    opts = BCON_NEW("batchSize", BCON_INT32(100));
    cur = mqc_database_run_cursor_command(db, cmd, opts, on_list, &l);
    run(c, &l.done);
    ASSERT_MSG(!l.failed, "runCursorCommand: %s", l.error.message);
    ASSERT_EQ(l.n, 250);
    ASSERT_GE(l.batches, 3);
    mqc_cursor_destroy(cur);
    list_reset(&l);
    bson_destroy(cmd);
    bson_destroy(opts);

    /* drop twice: the second finds nothing, and that is success. */
    mqc_database_drop_collection(db, "b", NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "drop: %s", r.error.message);
    res_reset(&r);
    mqc_database_drop_collection(db, "b", NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "drop of a missing collection: %s", r.error.message);
    res_reset(&r);

    /* listDatabases sees the database; then it is dropped. */
    opts = BCON_NEW("nameOnly", BCON_BOOL(true));
    cur = mqc_client_list_databases(c, NULL, opts, on_list, &l);
    run(c, &l.done);
    ASSERT_MSG(!l.failed, "listDatabases: %s", l.error.message);
    ASSERT(list_has_name(&l, dbname));
    mqc_cursor_destroy(cur);
    list_reset(&l);
    bson_destroy(opts);
    mqc_database_drop(db, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "dropDatabase: %s", r.error.message);
    res_reset(&r);

    mqc_collection_destroy(a);
    mqc_database_destroy(db);
    mqc_client_destroy(c);
}

/* Hundreds of listings in flight at once, each ending in its callbacks. */
TEST("/catalog/many_listings_in_flight", catalog_many)
{
    mqc_client_t *c = client_for("plain");
    mqc_database_t *db = mqc_client_get_database(c, tf_unique("catm"));
    mqc_database_create_collection(db, "x", NULL, NULL, NULL);
    mqc_client_run_until_idle(c, 60);
    enum { N = 300 };
    static list_t ls[N];
    mqc_cursor_t *curs[N];
    for (int i = 0; i < N; i++) {
        memset(&ls[i], 0, sizeof ls[i]);
        curs[i] = mqc_database_list_collections(db, NULL, NULL, on_list, &ls[i]);
    }
    mqc_client_run_until_idle(c, 120);
    for (int i = 0; i < N; i++) {
        ASSERT_MSG(ls[i].done && !ls[i].failed, "listing %d: %s", i, ls[i].error.message);
        ASSERT_EQ(ls[i].n, 1);
        mqc_cursor_destroy(curs[i]);
        list_reset(&ls[i]);
    }
    mqc_database_drop(db, NULL, NULL, NULL);
    mqc_client_run_until_idle(c, 60);
    mqc_database_destroy(db);
    mqc_client_destroy(c);
}

/* ---- the fail point proxy ------------------------------------------------------------------ */

static void fail_point(mqc_client_t *c, const char *json)
{
    bson_error_t berr;
    bson_t *cmd = bson_new_from_json((const uint8_t *) json, -1, &berr);
    ASSERT_MSG(cmd, "%s", berr.message);
    res_t r = {0};
    mqc_client_command(c, "admin", cmd, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT_MSG(!r.failed, "configureFailPoint: %s", r.error.message);
    res_reset(&r);
    bson_destroy(cmd);
}

static void ping(mqc_client_t *c, res_t *r)
{
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    res_reset(r);
    mqc_client_command(c, "admin", cmd, NULL, on_res, r);
    WAIT_OP(c, *r);
    bson_destroy(cmd);
}

TEST("/failproxy/error_code_times_skip", failproxy_times)
{
    mqc_client_t *c = client_for("failpoint");
    res_t r = {0};
    fail_point(c, "{\"configureFailPoint\": \"failCommand\", \"mode\": {\"times\": 2, \"skip\": 1}, \"data\": "
                  "{\"failCommands\": [\"ping\"], \"errorCode\": 91, \"errorLabels\": [\"RetryableWriteError\"]}}");
    ping(c, &r);
    ASSERT_MSG(!r.failed, "skipped ping failed: %s", r.error.message);
    for (int i = 0; i < 2; i++) {
        ping(c, &r);
        ASSERT(r.failed);
        ASSERT_EQ(r.error.domain, MQC_ERROR_SERVER);
        ASSERT_EQ(r.error.code, 91);
        ASSERT(r.error.labels & MQC_LABEL_RETRYABLE_WRITE);
    }
    ping(c, &r);
    ASSERT_MSG(!r.failed, "ping after times ran out: %s", r.error.message);
    /* Commands not listed go through. */
    fail_point(c, "{\"configureFailPoint\": \"failCommand\", \"mode\": \"alwaysOn\", \"data\": "
                  "{\"failCommands\": [\"insert\"], \"errorCode\": 2}}");
    ping(c, &r);
    ASSERT(!r.failed);
    fail_point(c, "{\"configureFailPoint\": \"failCommand\", \"mode\": \"off\"}");
    res_reset(&r);
    mqc_client_destroy(c);
}

TEST("/failproxy/close_connection_and_app_name", failproxy_close)
{
    mqc_client_t *c = client_for("failpoint");
    char uri[512];
    snprintf(uri, sizeof uri, "%s?appname=proxytest", tf_server_uri("failpoint"));
    mqc_error_t err;
    mqc_client_t *app = mqc_client_new_from_uri(NULL, uri, &err);
    ASSERT_MSG(app, "%s", err.message);
    res_t r = {0};
    fail_point(c, "{\"configureFailPoint\": \"failCommand\", \"mode\": \"alwaysOn\", \"data\": "
                  "{\"failCommands\": [\"ping\"], \"closeConnection\": true, \"appName\": \"proxytest\"}}");
    ping(c, &r); /* another appName: untouched */
    ASSERT_MSG(!r.failed, "ping of another app: %s", r.error.message);
    ping(app, &r);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_NETWORK);
    fail_point(c, "{\"configureFailPoint\": \"failCommand\", \"mode\": \"off\"}");
    ping(app, &r);
    ASSERT_MSG(!r.failed, "ping after off: %s", r.error.message);
    res_reset(&r);
    mqc_client_destroy(app);
    mqc_client_destroy(c);
}

TEST("/failproxy/write_concern_error_and_block", failproxy_wce)
{
    mqc_client_t *c = client_for("failpoint");
    mqc_collection_t *coll = mqc_client_get_collection(c, tf_unique("fp"), "c");
    res_t r = {0};
    fail_point(c, "{\"configureFailPoint\": \"failCommand\", \"mode\": {\"times\": 1}, \"data\": "
                  "{\"failCommands\": [\"insert\"], \"writeConcernError\": {\"code\": 91, \"errmsg\": \"Replication is being shut down\"}}}");
    bson_t *doc = BCON_NEW("_id", BCON_INT32(1));
    mqc_collection_insert_one(coll, doc, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_WRITE_CONCERN);
    ASSERT_EQ(r.error.code, 91);
    res_reset(&r);
    /* The write itself ran, as on the server: the second insert of _id 1 is a duplicate. */
    mqc_collection_insert_one(coll, doc, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.code, 11000);
    res_reset(&r);
    fail_point(c, "{\"configureFailPoint\": \"failCommand\", \"mode\": {\"times\": 1}, \"data\": "
                  "{\"failCommands\": [\"ping\"], \"blockConnection\": true, \"blockTimeMS\": 300}}");
    double t0 = tf_now();
    ping(c, &r);
    ASSERT(!r.failed);
    ASSERT_GE(tf_now() - t0, 0.29); /* a lower bound only: noise can only make it longer */
    res_reset(&r);
    bson_destroy(doc);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}

TEST("/failproxy/unknown_fail_point_refused", failproxy_unknown)
{
    mqc_client_t *c = client_for("failpoint");
    bson_t *cmd = BCON_NEW("configureFailPoint", BCON_UTF8("failGetMoreAfterCursorCheckout"), "mode", BCON_UTF8("alwaysOn"));
    res_t r = {0};
    mqc_client_command(c, "admin", cmd, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT(r.failed);
    ASSERT_STR_CONTAINS(r.error.message, "only the failCommand and onPrimaryTransactionalWrite fail points");
    res_reset(&r);
    bson_destroy(cmd);
    mqc_client_destroy(c);
}

/* onPrimaryTransactionalWrite: a write with txnNumber commits and its connection closes before
 * the reply; with failBeforeCommitExceptionCode (and closeConnection false) nothing is written. */
TEST("/failproxy/on_primary_transactional_write", failproxy_ptw)
{
    mqc_client_t *c = client_for("failpoint");
    const char *db = tf_unique("ptw");
    res_t r = {0};
    bson_error_t berr;
    char json[512];
    fail_point(c, "{\"configureFailPoint\": \"onPrimaryTransactionalWrite\", \"mode\": {\"times\": 1}}");
    snprintf(json, sizeof json,
             "{\"insert\": \"c\", \"documents\": [{\"_id\": 1}], \"lsid\": {\"id\": {\"$binary\": {\"base64\": "
             "\"AAAAAAAAQACAAAAAAAAAAg==\", \"subType\": \"04\"}}}, \"txnNumber\": {\"$numberLong\": \"1\"}}");
    bson_t *ins = bson_new_from_json((const uint8_t *) json, -1, &berr);
    ASSERT_MSG(ins, "%s", berr.message);
    mqc_client_command(c, db, ins, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_NETWORK);
    res_reset(&r);
    mqc_collection_t *coll = mqc_client_get_collection(c, db, "c");
    mqc_collection_count_documents(coll, NULL, NULL, on_res, &r);
    WAIT_OP(c, r);
    bson_iter_t it;
    ASSERT(r.reply && bson_iter_init_find(&it, r.reply, "count"));
    ASSERT_EQ(bson_iter_as_int64(&it), 1); /* committed before the connection closed */
    res_reset(&r);
    fail_point(c, "{\"configureFailPoint\": \"onPrimaryTransactionalWrite\", \"mode\": {\"times\": 1}, \"data\": "
                  "{\"failBeforeCommitExceptionCode\": 91, \"closeConnection\": false}}");
    snprintf(json, sizeof json,
             "{\"insert\": \"c\", \"documents\": [{\"_id\": 2}], \"lsid\": {\"id\": {\"$binary\": {\"base64\": "
             "\"AAAAAAAAQACAAAAAAAAAAg==\", \"subType\": \"04\"}}}, \"txnNumber\": {\"$numberLong\": \"2\"}}");
    bson_t *ins2 = bson_new_from_json((const uint8_t *) json, -1, &berr);
    mqc_client_command(c, db, ins2, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.code, 91);
    res_reset(&r);
    mqc_collection_count_documents(coll, NULL, NULL, on_res, &r);
    WAIT_OP(c, r);
    ASSERT(r.reply && bson_iter_init_find(&it, r.reply, "count"));
    ASSERT_EQ(bson_iter_as_int64(&it), 1);
    res_reset(&r);
    bson_destroy(ins);
    bson_destroy(ins2);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}
