/* find: insert a document and read it back with find_one, on a loop the client owns.
 *   build/examples/find [URI]        (default mongodb://127.0.0.1:27017) */
#include <mqc.h>
#include <stdio.h>
#include <stdlib.h>

static void on_found(mqc_op_t *op, const bson_t *doc, const mqc_error_t *error, void *ud)
{
    int *status = ud;
    if (error) {
        fprintf(stderr, "find_one failed (%s): %s\n", mqc_error_domain_name(error->domain), error->message);
        *status = 1;
        return;
    }
    char *json = doc ? bson_as_relaxed_extended_json(doc, NULL) : NULL;
    printf("found in %lld us: %s\n", (long long) mqc_op_get_duration_us(op), json ? json : "(nothing)");
    bson_free(json);
}

static void on_inserted(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    int *status = ud;
    if (error) {
        fprintf(stderr, "insert failed: %s\n", error->message);
        *status = 1;
    }
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : getenv("MQC_URI") ? getenv("MQC_URI") : "mongodb://127.0.0.1:27017";
    mqc_error_t error;
    int status = 0;
    mqc_client_t *client = mqc_client_new_from_uri(NULL, uri, &error);
    if (!client) {
        fprintf(stderr, "bad URI: %s\n", error.message);
        return 1;
    }
    mqc_collection_t *coll = mqc_client_get_collection(client, "mqc_examples", "find");
    bson_t *doc = BCON_NEW("_id", BCON_UTF8("hello"), "greeting", BCON_UTF8("hello from mqc"));
    bson_t *filter = BCON_NEW("_id", BCON_UTF8("hello"));
    bson_t *upsert = BCON_NEW("upsert", BCON_BOOL(true));
    /* Both are in flight at once on different connections; replace_one with upsert keeps the
     * example re-runnable. */
    mqc_collection_replace_one(coll, filter, doc, upsert, on_inserted, &status);
    mqc_client_run_until_idle(client, 10);
    mqc_collection_find_one(coll, filter, NULL, on_found, &status);
    if (!mqc_client_run_until_idle(client, 10)) status = 1;
    bson_destroy(doc);
    bson_destroy(filter);
    bson_destroy(upsert);
    mqc_collection_destroy(coll);
    mqc_client_destroy(client);
    return status;
}
