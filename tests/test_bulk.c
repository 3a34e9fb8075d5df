/* Unit tests of lib/write.c (bulk writes) through the public API, against the scripted server (tests/fakesrv):
 * what a bulk sends (one command per run of the same kind, in order; batches split by the
 * server's maxWriteBatchSize and maxMessageSizeBytes), what it refuses before sending anything,
 * where an ordered bulk stops, unacknowledged bulks, and hundreds in flight. Documents are past
 * libbson's 120-byte inline buffer, and bulks past 8 models (the model array grows). The
 * command monitor shows every batch as sent (its command lacks the document sequence today: see
 * the note in on_command), fakesrv counts what arrived. */
#include <ev.h>

#include "server/fakesrv.h"
#include "mqc.h"
#include "support/result.h"
#include "tf.h"

#define MAX_CMDS 64

/* The batches as the command monitor saw them start. */
typedef struct {
    int n;
    char name[MAX_CMDS][16];
    int ordered[MAX_CMDS];      /* 1, 0, or -1 when missing */
} seen_t;

static void on_command(const mqc_command_event_t *ev, void *ud)
{
    seen_t *s = ud;
    if (ev->type != MQC_COMMAND_STARTED || !ev->command) return;
    const char *name = ev->command_name;
    if (strcmp(name, "insert") && strcmp(name, "update") && strcmp(name, "delete")) return;
    /* The started event's command is the body section only: the batch's documents (OP_MSG's
     * document sequence) are not in it, although the command monitoring specification has them
     * appear as an array. So batches are counted here, not their documents. */
    if (s->n < MAX_CMDS) {
        snprintf(s->name[s->n], sizeof s->name[0], "%s", name);
        bson_iter_t it;
        s->ordered[s->n] = bson_iter_init_find(&it, ev->command, "ordered") ? bson_iter_as_bool(&it) : -1;
    }
    s->n++;
}

static mqc_client_t *client_for(fakesrv_t *s, seen_t *seen, const char *extra)
{
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, extra));
    if (seen) {
        mqc_monitor_t m = {.command = on_command};
        mqc_client_set_monitor(c, &m, seen);
    }
    return c;
}

/* A document of about `size` bytes: {_id: i, pad: "xxx..."}. */
static bson_t *big_doc(int i, size_t size)
{
    static char pad[1 << 16];
    if (!pad[0]) memset(pad, 'x', sizeof pad - 1);
    ASSERT_LT(size, sizeof pad);
    bson_t *d = bson_new();
    BSON_APPEND_INT32(d, "_id", i);
    bson_append_utf8(d, "pad", -1, pad, (int) size);
    return d;
}

static tf_res_t execute(mqc_client_t *c, mqc_bulk_t *b, double secs)
{
    tf_res_t r = {.keep_reply = true};
    ASSERT_NOT_NULL(mqc_bulk_execute(b, tf_res_cb, &r));
    ASSERT_EQ(r.calls, 0);      /* never inside the call */
    tf_client_wait_idle(c, secs);
    ASSERT_EQ(r.calls, 1);
    return r;
}

TEST("/bulk/refused/invalid_models_send_nothing", bulk_refused)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    seen_t seen = {0};
    mqc_client_t *c = client_for(s, &seen, NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    mqc_error_t err;
    bson_t *f = BCON_NEW("_id", BCON_INT32(1));
    bson_t *plain = big_doc(1, 200);
    bson_t *ops = BCON_NEW("$set", "{", "a", BCON_INT32(1), "}");

    mqc_bulk_t *b = mqc_collection_bulk_new(coll, NULL);
    ASSERT(mqc_bulk_insert(b, plain, &err));
    /* An update needs operators; a replacement must have none. */
    memset(&err, 0, sizeof err);
    ASSERT(!mqc_bulk_update_one(b, f, plain, NULL, &err));
    ASSERT_EQ(err.domain, MQC_ERROR_CLIENT);
    memset(&err, 0, sizeof err);
    ASSERT(!mqc_bulk_update_many(b, f, plain, NULL, &err));
    ASSERT_EQ(err.domain, MQC_ERROR_CLIENT);
    memset(&err, 0, sizeof err);
    ASSERT(!mqc_bulk_replace_one(b, f, ops, NULL, &err));
    ASSERT_EQ(err.domain, MQC_ERROR_CLIENT);
    ASSERT(mqc_bulk_update_one(b, f, ops, NULL, &err));
    /* A bulk that refused a model fails as a whole, before any byte is sent. */
    tf_res_t r = execute(c, b, 10);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_CLIENT);
    tf_res_cleanup(&r);

    /* An empty bulk is refused the same way. */
    r = execute(c, mqc_collection_bulk_new(coll, NULL), 10);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_CLIENT);
    ASSERT_STR_CONTAINS(r.error.message, "at least one");
    tf_res_cleanup(&r);

    /* One never executed is freed with its copies. */
    b = mqc_collection_bulk_new(coll, NULL);
    ASSERT(mqc_bulk_insert(b, plain, &err));
    mqc_bulk_destroy(b);
    mqc_bulk_destroy(NULL);

    ASSERT_EQ(seen.n, 0);
    ASSERT_EQ(fakesrv_commands(s), 0);
    bson_destroy(f);
    bson_destroy(plain);
    bson_destroy(ops);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

/* Builds insert x2, update, insert, delete x2 with documents of 300 bytes. */
static mqc_bulk_t *mixed_bulk(mqc_collection_t *coll, const bson_t *opts)
{
    mqc_error_t err;
    mqc_bulk_t *b = mqc_collection_bulk_new(coll, opts);
    bson_t *d1 = big_doc(1, 300), *d2 = big_doc(2, 300), *d3 = big_doc(3, 300);
    bson_t *f = BCON_NEW("_id", BCON_INT32(1));
    bson_t *u = BCON_NEW("$set", "{", "a", BCON_INT32(1), "}");
    ASSERT(mqc_bulk_insert(b, d1, &err));
    ASSERT(mqc_bulk_insert(b, d2, &err));
    ASSERT(mqc_bulk_update_one(b, f, u, NULL, &err));
    ASSERT(mqc_bulk_insert(b, d3, &err));
    ASSERT(mqc_bulk_delete_one(b, f, NULL, &err));
    ASSERT(mqc_bulk_delete_many(b, f, NULL, &err));
    bson_destroy(d1);
    bson_destroy(d2);
    bson_destroy(d3);
    bson_destroy(f);
    bson_destroy(u);
    return b;
}

TEST("/bulk/ordered/one_command_per_run_in_order", bulk_ordered_runs)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    seen_t seen = {0};
    mqc_client_t *c = client_for(s, &seen, NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    tf_res_t r = execute(c, mixed_bulk(coll, NULL), 10);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    ASSERT_NOT_NULL(r.reply);
    ASSERT_EQ(seen.n, 4);
    ASSERT_STR_EQ(seen.name[0], "insert");
    ASSERT_STR_EQ(seen.name[1], "update");
    ASSERT_STR_EQ(seen.name[2], "insert");
    ASSERT_STR_EQ(seen.name[3], "delete");
    for (int i = 0; i < 4; i++) ASSERT_EQ(seen.ordered[i], 1);
    ASSERT_EQ(fakesrv_commands(s), 4);
    tf_res_cleanup(&r);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/bulk/unordered/says_so", bulk_unordered)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    seen_t seen = {0};
    mqc_client_t *c = client_for(s, &seen, NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
    tf_res_t r = execute(c, mixed_bulk(coll, opts), 10);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    ASSERT_EQ(seen.n, 4);      /* runs of one kind, as they come */
    for (int i = 0; i < seen.n && i < MAX_CMDS; i++) ASSERT_EQ(seen.ordered[i], 0);
    tf_res_cleanup(&r);
    bson_destroy(opts);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/bulk/ordered/stops_at_a_failed_command", bulk_ordered_stops)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_set_mode_then(s, FAKE_OK, 0, 1, FAKE_ERROR, 8000);  /* the second command fails */
    seen_t seen = {0};
    mqc_client_t *c = client_for(s, &seen, NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    tf_res_t r = execute(c, mixed_bulk(coll, NULL), 10);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_SERVER);
    ASSERT_EQ(r.error.code, 8000);
    ASSERT_EQ(seen.n, 2);                       /* insert, then the failed update: nothing after */
    ASSERT_EQ(fakesrv_commands(s), 2);
    ASSERT_NOT_NULL(r.reply);                   /* what the first batch did stays in the result */
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, r.reply, "insertedCount"));
    tf_res_cleanup(&r);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/bulk/split/by_count_past_max_write_batch_size", bulk_split_count)
{
    /* fakesrv says maxWriteBatchSize 100000: 100001 documents of 130+ bytes go in two batches. */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    seen_t seen = {0};
    mqc_client_t *c = client_for(s, &seen, NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    mqc_bulk_t *b = mqc_collection_bulk_new(coll, NULL);
    mqc_error_t err;
    for (int i = 0; i < 100001; i++) {
        bson_t *d = big_doc(i, 130);
        ASSERT(mqc_bulk_insert(b, d, &err));
        bson_destroy(d);
    }
    tf_res_t r = execute(c, b, 60);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    ASSERT_EQ(seen.n, 2);
    ASSERT_STR_EQ(seen.name[1], "insert");
    ASSERT_EQ(fakesrv_commands(s), 2);
    tf_res_cleanup(&r);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/bulk/split/by_size_past_max_message_size", bulk_split_size)
{
    /* fakesrv says maxMessageSizeBytes 48,000,000: 2,500 documents of 24 KB (~60 MB) cannot go
     * in one message. */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    seen_t seen = {0};
    mqc_client_t *c = client_for(s, &seen, NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    mqc_bulk_t *b = mqc_collection_bulk_new(coll, NULL);
    mqc_error_t err;
    for (int i = 0; i < 2500; i++) {
        bson_t *d = big_doc(i, 24 * 1024);
        ASSERT(mqc_bulk_insert(b, d, &err));
        bson_destroy(d);
    }
    tf_res_t r = execute(c, b, 60);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    ASSERT_EQ(seen.n, 2);      /* 48 MB, then the rest */
    ASSERT_STR_EQ(seen.name[0], "insert");
    ASSERT_STR_EQ(seen.name[1], "insert");
    ASSERT_EQ(fakesrv_commands(s), 2);
    tf_res_cleanup(&r);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/bulk/unacknowledged/w0", bulk_w0)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    seen_t seen = {0};
    mqc_client_t *c = client_for(s, &seen, NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t *opts = BCON_NEW("writeConcern", "{", "w", BCON_INT32(0), "}");
    tf_res_t r = execute(c, mixed_bulk(coll, opts), 10);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    ASSERT_NOT_NULL(r.reply);
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, r.reply, "acknowledged"));
    ASSERT(!bson_iter_as_bool(&it));
    ASSERT_EQ(seen.n, 4);
    /* Sent with moreToCome: the server answers none of them, and saw them all. */
    double t0 = tf_now();
    while (fakesrv_commands(s) < 4 && tf_now() - t0 < 5) ev_run(mqc_client_get_loop(c), EVRUN_NOWAIT);
    ASSERT_EQ(fakesrv_commands(s), 4);
    tf_res_cleanup(&r);
    bson_destroy(opts);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/bulk/in_flight/300_bulks", bulk_300)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, NULL, "maxPoolSize=8");
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    enum { N = 300 };
    static tf_res_t r[N];
    mqc_error_t err;
    for (int i = 0; i < N; i++) {
        mqc_bulk_t *b = mqc_collection_bulk_new(coll, NULL);
        for (int j = 0; j < 3; j++) {
            bson_t *d = big_doc(i * 3 + j, 200);
            ASSERT(mqc_bulk_insert(b, d, &err));
            bson_destroy(d);
        }
        r[i] = (tf_res_t) {0};
        ASSERT_NOT_NULL(mqc_bulk_execute(b, tf_res_cb, &r[i]));
    }
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_OPS_PENDING), N);
    tf_client_wait_idle(c, 30);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(r[i].calls, 1);
        if (!r[i].failed) ok++;
    }
    ASSERT_EQ(ok, N);
    ASSERT_EQ(fakesrv_commands(s), N);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}
