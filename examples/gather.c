/* gather: 1,000 concurrent queries, one callback with every result in order.
 *   build/examples/gather [URI] */
#include <ev.h>
#include <mqc.h>
#include <stdio.h>
#include <stdlib.h>

#define N 1000

static void on_all(mqc_gather_t *g, const mqc_error_t *error, void *ud)
{
    int *status = ud;
    (void) error;
    size_t found = 0;
    for (size_t i = 0; i < mqc_gather_size(g); i++)
        if (mqc_gather_reply(g, i)) found++;
    printf("gathered %zu queries: %zu ok, %zu failed, %zu found a document\n", mqc_gather_size(g),
           mqc_gather_ok_count(g), mqc_gather_error_count(g), found);
    if (mqc_gather_error_count(g)) {
        const mqc_error_t *e = NULL;
        for (size_t i = 0; !e && i < mqc_gather_size(g); i++) e = mqc_gather_error(g, i);
        fprintf(stderr, "first error: %s\n", e->message);
        *status = 1;
    }
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : getenv("MQC_URI") ? getenv("MQC_URI") : "mongodb://127.0.0.1:27017";
    mqc_error_t error;
    int status = 0;
    /* The application's own loop: mqc only adds watchers to it. */
    struct ev_loop *loop = ev_default_loop(0);
    mqc_client_t *client = mqc_client_new_from_uri(loop, uri, &error);
    if (!client) {
        fprintf(stderr, "bad URI: %s\n", error.message);
        return 1;
    }
    mqc_collection_t *coll = mqc_client_get_collection(client, "mqc_examples", "gather");
    mqc_gather_t *g = mqc_gather_new(client, MQC_GATHER_ALL);
    for (int i = 0; i < N; i++) {
        bson_t *filter = BCON_NEW("_id", BCON_INT32(i));
        mqc_gather_add(g, mqc_collection_find_one(coll, filter, NULL, NULL, NULL));
        bson_destroy(filter);
    }
    mqc_gather_start(g, on_all, &status);
    ev_run(loop, 0); /* returns when nothing is left to do */
    mqc_collection_destroy(coll);
    mqc_client_destroy(client);
    return status;
}
