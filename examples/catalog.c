/* catalog: create a collection and an index, list the database's collections and the index
 * names, then drop the collection; each step starts from the callback of the one before.
 *   build/examples/catalog [URI]     (default mongodb://127.0.0.1:27017) */
#include <mqc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    mqc_database_t *db;
    mqc_collection_t *coll;
    int status;
} app_t;

static bool failed(app_t *app, const char *what, const mqc_error_t *error)
{
    if (!error) return false;
    fprintf(stderr, "%s failed (%s): %s\n", what, mqc_error_domain_name(error->domain), error->message);
    app->status = 1;
    return true;
}

static void on_dropped(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    if (!failed(ud, "drop", error)) printf("dropped\n");
}

/* One callback per batch: ask for the next one until the cursor is exhausted. */
static void on_index(mqc_cursor_t *cursor, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    app_t *app = ud;
    bson_iter_t it;
    if (failed(app, "listIndexes", error)) return;
    for (size_t i = 0; i < n; i++)
        if (bson_iter_init_find(&it, &docs[i], "name")) printf("index: %s\n", bson_iter_utf8(&it, NULL));
    if (mqc_cursor_more(cursor)) {
        mqc_cursor_next(cursor);
        return;
    }
    mqc_cursor_destroy(cursor); /* allowed inside its own callback */
    mqc_collection_drop(app->coll, NULL, on_dropped, app);
}

static void on_collection(mqc_cursor_t *cursor, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    app_t *app = ud;
    bson_iter_t it;
    if (failed(app, "listCollections", error)) return;
    for (size_t i = 0; i < n; i++)
        if (bson_iter_init_find(&it, &docs[i], "name")) printf("collection: %s\n", bson_iter_utf8(&it, NULL));
    if (mqc_cursor_more(cursor)) {
        mqc_cursor_next(cursor);
        return;
    }
    mqc_cursor_destroy(cursor);
    mqc_collection_list_indexes(app->coll, NULL, on_index, app);
}

static void on_index_created(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    app_t *app = ud;
    bson_iter_t it;
    if (failed(app, "createIndex", error)) return;
    if (bson_iter_init_find(&it, reply, "name")) printf("created index %s\n", bson_iter_utf8(&it, NULL));
    bson_t *opts = BCON_NEW("nameOnly", BCON_BOOL(true));
    mqc_database_list_collections(app->db, NULL, opts, on_collection, app);
    bson_destroy(opts);
}

static void on_created(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    app_t *app = ud;
    if (failed(app, "createCollection", error)) return;
    bson_t *keys = BCON_NEW("city", BCON_INT32(1), "age", BCON_INT32(-1));
    mqc_collection_create_index(app->coll, keys, NULL, NULL, on_index_created, app);
    bson_destroy(keys);
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : getenv("MQC_URI") ? getenv("MQC_URI") : "mongodb://127.0.0.1:27017";
    mqc_error_t error;
    app_t app = {0};
    mqc_client_t *client = mqc_client_new_from_uri(NULL, uri, &error);
    if (!client) {
        fprintf(stderr, "bad URI: %s\n", error.message);
        return 1;
    }
    app.db = mqc_client_get_database(client, "mqc_examples");
    app.coll = mqc_database_get_collection(app.db, "catalog");
    /* Start clean (drop succeeds when there is nothing to drop), then create. */
    mqc_collection_drop(app.coll, NULL, NULL, NULL);
    mqc_client_run_until_idle(client, 10);
    mqc_database_create_collection(app.db, "catalog", NULL, on_created, &app);
    if (!mqc_client_run_until_idle(client, 30)) app.status = 1;
    mqc_collection_destroy(app.coll);
    mqc_database_destroy(app.db);
    mqc_client_destroy(client);
    return app.status;
}
