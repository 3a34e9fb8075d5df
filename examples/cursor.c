/* cursor: seed 1,000 documents and walk them in batches of 100, asking for each next batch from
 * the batch callback.   build/examples/cursor [URI] */
#include <mqc.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    int batches;
    long docs;
    int status;
} walk_t;

static void on_batch(mqc_cursor_t *cursor, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    walk_t *w = ud;
    (void) docs;
    if (error) {
        fprintf(stderr, "cursor failed: %s\n", error->message);
        w->status = 1;
        return;
    }
    w->batches++;
    w->docs += (long) n;
    if (mqc_cursor_more(cursor)) mqc_cursor_next(cursor);
}

static void on_done(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    if (error) {
        fprintf(stderr, "%s failed: %s\n", mqc_op_get_name(op), error->message);
        *(int *) ud = 1;
    }
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : getenv("MQC_URI") ? getenv("MQC_URI") : "mongodb://127.0.0.1:27017";
    mqc_error_t error;
    walk_t w = {0};
    mqc_client_t *client = mqc_client_new_from_uri(NULL, uri, &error);
    if (!client) {
        fprintf(stderr, "bad URI: %s\n", error.message);
        return 1;
    }
    mqc_collection_t *coll = mqc_client_get_collection(client, "mqc_examples", "cursor");
    bson_t *empty = bson_new();
    mqc_collection_delete_many(coll, empty, NULL, on_done, &w.status);
    mqc_client_run_until_idle(client, 10);
    bson_t *docs[1000];
    for (int i = 0; i < 1000; i++) docs[i] = BCON_NEW("_id", BCON_INT32(i));
    mqc_collection_insert_many(coll, (const bson_t *const *) docs, 1000, NULL, on_done, &w.status);
    mqc_client_run_until_idle(client, 10);
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32(100));
    mqc_cursor_t *cursor = mqc_collection_find(coll, NULL, opts, on_batch, &w);
    if (!mqc_client_run_until_idle(client, 30)) w.status = 1;
    printf("walked %ld documents in %d batches\n", w.docs, w.batches);
    if (w.docs != 1000) w.status = 1;
    mqc_cursor_destroy(cursor);
    for (int i = 0; i < 1000; i++) bson_destroy(docs[i]);
    bson_destroy(opts);
    bson_destroy(empty);
    mqc_collection_destroy(coll);
    mqc_client_destroy(client);
    return w.status;
}
