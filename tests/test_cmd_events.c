/* Command monitoring events as the command logging and monitoring specification shows them
 * (lib/cmd_event.c), against a real server: document sequences in the command, the command's own
 * name, {ok: 1} for unacknowledged writes, and find's batchSize when it equals the limit. */
#include <stdlib.h>

#include "mqc.h"
#include "tf.h"

typedef struct {
    bson_t *started[64];
    char names[64][32];
    bson_t *succeeded[64];
    size_t n_started, n_succeeded;
} events_t;

static void on_command(const mqc_command_event_t *e, void *ud)
{
    events_t *ev = ud;
    if (e->type == MQC_COMMAND_STARTED && ev->n_started < 64) {
        snprintf(ev->names[ev->n_started], sizeof ev->names[0], "%s", e->command_name);
        ev->started[ev->n_started++] = bson_copy(e->command);
    }
    if (e->type == MQC_COMMAND_SUCCEEDED && ev->n_succeeded < 64)
        ev->succeeded[ev->n_succeeded++] = e->reply ? bson_copy(e->reply) : bson_new();
}

static void events_reset(events_t *ev)
{
    for (size_t i = 0; i < ev->n_started; i++) bson_destroy(ev->started[i]);
    for (size_t i = 0; i < ev->n_succeeded; i++) bson_destroy(ev->succeeded[i]);
    memset(ev, 0, sizeof *ev);
}

static mqc_client_t *monitored(events_t *ev)
{
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, tf_server_uri("plain"), &err);
    ASSERT_MSG(c, "%s", err.message);
    mqc_monitor_t mon = {.command = on_command};
    mqc_client_set_monitor(c, &mon, ev);
    return c;
}

static int count_array(const bson_t *doc, const char *key)
{
    bson_iter_t it, sub;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &sub)) return -1;
    int n = 0;
    while (bson_iter_next(&sub)) n++;
    return n;
}

/* An insert split into several messages: each started event holds its own batch's documents. */
TEST("/events/insert_sequences_split_batches", events_insert_sequences)
{
    static events_t ev;
    mqc_client_t *c = monitored(&ev);
    mqc_collection_t *coll = mqc_client_get_collection(c, tf_unique("ev"), "c");
    enum { N = 1000 };
    static char pad[55000];
    memset(pad, 'p', sizeof pad - 1);
    bson_t **docs = calloc(N, sizeof *docs);
    for (int i = 0; i < N; i++) docs[i] = BCON_NEW("_id", BCON_INT32(i), "pad", BCON_UTF8(pad));
    mqc_collection_insert_many(coll, (const bson_t *const *) docs, N, NULL, NULL, NULL);
    ASSERT(mqc_client_run_until_idle(c, 120));
    int total = 0;
    size_t inserts = 0;
    for (size_t i = 0; i < ev.n_started; i++) {
        if (strcmp(ev.names[i], "insert")) continue;
        inserts++;
        int k = count_array(ev.started[i], "documents");
        ASSERT_GT(k, 0);
        total += k;
    }
    ASSERT_GT(inserts, 1); /* 1000 x 55 KB is beyond one 48 MB message */
    ASSERT_EQ(total, N);
    for (int i = 0; i < N; i++) bson_destroy(docs[i]);
    free(docs);
    events_reset(&ev);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}

TEST("/events/names_unacked_batchsize", events_misc)
{
    static events_t ev;
    mqc_client_t *c = monitored(&ev);
    mqc_collection_t *coll = mqc_client_get_collection(c, tf_unique("ev"), "c");
    bson_t *docs[5];
    for (int i = 0; i < 5; i++) docs[i] = BCON_NEW("_id", BCON_INT32(i));
    mqc_collection_insert_many(coll, (const bson_t *const *) docs, 5, NULL, NULL, NULL);
    ASSERT(mqc_client_run_until_idle(c, 60));
    events_reset(&ev);

    /* countDocuments runs an aggregate: the event says so. */
    mqc_collection_count_documents(coll, NULL, NULL, NULL, NULL);
    ASSERT(mqc_client_run_until_idle(c, 60));
    ASSERT_EQ(ev.n_started, 1);
    ASSERT_STR_EQ(ev.names[0], "aggregate");
    events_reset(&ev);

    /* find with batchSize == limit asks for one more, so no getMore follows. */
    bson_t *opts = BCON_NEW("limit", BCON_INT32(4), "batchSize", BCON_INT32(4));
    static int got;
    mqc_cursor_t *cur = mqc_collection_find(coll, NULL, opts, NULL, NULL);
    ASSERT(mqc_client_run_until_idle(c, 60));
    (void) got;
    ASSERT_EQ(ev.n_started, 1);
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, ev.started[0], "batchSize"));
    ASSERT_EQ(bson_iter_as_int64(&it), 5);
    ASSERT_EQ(mqc_cursor_id(cur), 0);
    mqc_cursor_destroy(cur);
    bson_destroy(opts);
    events_reset(&ev);

    /* An unacknowledged insert: a succeeded event with {ok: 1}. */
    bson_t *w0 = BCON_NEW("writeConcern", "{", "w", BCON_INT32(0), "}");
    bson_t *doc = BCON_NEW("_id", BCON_INT32(100));
    mqc_collection_insert_one(coll, doc, w0, NULL, NULL);
    ASSERT(mqc_client_run_until_idle(c, 60));
    ASSERT_EQ(ev.n_succeeded, 1);
    ASSERT(bson_iter_init_find(&it, ev.succeeded[0], "ok"));
    ASSERT_EQ(bson_iter_as_int64(&it), 1);
    events_reset(&ev);

    /* runCommand with a primary read preference sends none. */
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_t *rp = BCON_NEW("readPreference", "{", "mode", BCON_UTF8("primary"), "}");
    mqc_client_command(c, "admin", cmd, rp, NULL, NULL);
    ASSERT(mqc_client_run_until_idle(c, 60));
    ASSERT_EQ(ev.n_started, 1);
    ASSERT(!bson_has_field(ev.started[0], "$readPreference"));
    events_reset(&ev);

    for (int i = 0; i < 5; i++) bson_destroy(docs[i]);
    bson_destroy(w0);
    bson_destroy(doc);
    bson_destroy(cmd);
    bson_destroy(rp);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}
