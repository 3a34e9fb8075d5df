/* Unit tests of a connection's life (lib/conn.c) through the public API, against the scripted
 * server (tests/fakesrv): the handshake it sends, a handshake the server hangs up on, one
 * connection reused by operations that follow each other, and (against docsrv) replies read into
 * the client's shared read buffer staying intact while their callback runs the loop. */
#include <ev.h>
#include <string.h>

#include "server/docsrv.h"
#include "server/fakesrv.h"
#include "mqc.h"
#include "support/result.h"
#include "tf.h"

static const char *str_at(const bson_t *doc, const char *dotted, char *buf, size_t size)
{
    bson_iter_t it, sub;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, dotted, &sub) || !BSON_ITER_HOLDS_UTF8(&sub))
        return NULL;
    snprintf(buf, size, "%s", bson_iter_utf8(&sub, NULL));
    return buf;
}

TEST("/conn/handshake/metadata_names_driver_version_and_app", conn_handshake_metadata)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "appname=conn-test"));
    tf_res_t r = tf_ping(c, NULL, 10);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    bson_t hello;
    ASSERT(fakesrv_last_command(s, true, &hello));
    char buf[256];
    ASSERT_STR_EQ(str_at(&hello, "client.driver.name", buf, sizeof buf), "mqc");
    /* The version the handshake names is the one the header defines, which the library reports. */
    ASSERT_STR_EQ(str_at(&hello, "client.driver.version", buf, sizeof buf), MQC_VERSION);
    ASSERT_STR_EQ(mqc_version(), MQC_VERSION);
    ASSERT_STR_EQ(str_at(&hello, "client.application.name", buf, sizeof buf), "conn-test");
    ASSERT_NOT_NULL(str_at(&hello, "client.os.type", buf, sizeof buf));
    bson_destroy(&hello);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/conn/handshake/hangup_fails_once_then_recovers", conn_handshake_hangup)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_hangup_hellos(s, 1);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "connectTimeoutMS=2000&serverSelectionTimeoutMS=2000"));
    tf_res_t r = tf_ping(c, NULL, 10);          /* exactly one callback, whatever it says */
    tf_note("after a hang-up in the handshake: %s", r.failed ? r.error.message : "ok (retried)");
    if (r.failed) ASSERT_EQ(r.error.domain, MQC_ERROR_NETWORK);
    ASSERT_GE(mqc_client_stat(c, MQC_STAT_CONNS_FAILED), 1);
    r = tf_ping(c, NULL, 10);
    ASSERT_MSG(!r.failed, "the next connection should work: %s", r.error.message);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/conn/reuse/sequential_ops_share_one_connection", conn_reuse)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, NULL));
    for (int i = 0; i < 50; i++) {
        tf_res_t r = i % 2 ? tf_ping(c, NULL, 10) : tf_find_one(c, NULL, 10);
        ASSERT_MSG(!r.failed, "op %d: %s", i, r.error.message);
    }
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), 1);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_CONNS_OPEN), 1);
    ASSERT_EQ(fakesrv_connections(s), 1);
    ASSERT_EQ(fakesrv_commands(s), 50);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

/* ---- the shared read buffer ------------------------------------------------------------ */

#define NEST_TEXT 300 /* documents well above bson_t's 120-byte inline buffer */
#define NEST_OPS 6

typedef struct {
    mqc_collection_t *coll;
    struct ev_loop *loop;
    int calls;
    int nested_calls;            /* answered while the first reply's callback ran the loop */
    int bad;                     /* replies that were not the document asked for */
    bool outer_intact;           /* the first reply, after the nested loop run */
} nest_t;

static void nest_doc(bson_t *d, int id)
{
    char s[NEST_TEXT + 1];
    memset(s, 'a' + id, NEST_TEXT);
    s[NEST_TEXT] = '\0';
    bson_init(d);
    BSON_APPEND_INT32(d, "_id", id);
    BSON_APPEND_UTF8(d, "s", s);
}

static bool nest_is(const bson_t *reply, int id)
{
    bson_t want;
    nest_doc(&want, id);
    bool same = reply && bson_equal(reply, &want);
    bson_destroy(&want);
    return same;
}

static void nest_find(nest_t *n, int id, mqc_reply_cb cb, intptr_t tag)
{
    bson_t filter;
    bson_init(&filter);
    BSON_APPEND_INT32(&filter, "_id", id);
    mqc_collection_find_one(n->coll, &filter, NULL, cb, (void *) tag);
    bson_destroy(&filter);
}

static nest_t *nest;

/* The first reply runs the loop until the others are answered: they are read meanwhile, on other
 * connections (ops submitted from a callback would wait for it to return: lib/op.c); then it
 * checks that its own reply, a view into the read buffer, is still what it was. */
static void nest_cb(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    int id = (int) (intptr_t) ud;
    if (error || !nest_is(reply, id)) nest->bad++;
    if (nest->calls++ > 0) return;
    double until = tf_now() + 10;
    while (nest->calls < NEST_OPS && tf_now() < until) ev_run(nest->loop, EVRUN_ONCE);
    nest->nested_calls = nest->calls - 1;
    nest->outer_intact = nest_is(reply, id);
}

TEST("/conn/read/reply_intact_while_its_callback_runs_the_loop", conn_read_nested)
{
    docsrv_t *s = docsrv_start(NULL);
    mqc_client_t *c = tf_client_new(docsrv_uri(s, "maxPoolSize=6&maxConnecting=6"));
    nest_t n = {.coll = mqc_client_get_collection(c, "db", "c"), .loop = mqc_client_get_loop(c)};
    nest = &n;
    bson_t docs[8];
    const bson_t *ptrs[8];
    for (int i = 0; i < 8; i++) {
        nest_doc(&docs[i], i + 1);
        ptrs[i] = &docs[i];
    }
    tf_res_t r = {0};
    mqc_collection_insert_many(n.coll, ptrs, 8, NULL, tf_res_cb, &r);
    tf_client_wait_idle(c, 20);
    ASSERT_MSG(r.calls == 1 && !r.failed, "%s", r.error.message);
    for (int round = 0; round < 20; round++) {
        n.calls = n.nested_calls = 0;
        n.outer_intact = false;
        for (int i = 1; i <= NEST_OPS; i++) nest_find(&n, i, nest_cb, i);
        tf_client_wait_idle(c, 20);
        ASSERT_EQ(n.calls, NEST_OPS);
        ASSERT_EQ(n.nested_calls, NEST_OPS - 1);
        ASSERT_EQ(n.bad, 0);
        ASSERT_MSG(n.outer_intact, "round %d: the first reply changed while its callback ran the loop", round);
    }
    ASSERT_GE(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), NEST_OPS);
    for (int i = 0; i < 8; i++) bson_destroy(&docs[i]);
    tf_res_cleanup(&r);
    mqc_collection_destroy(n.coll);
    mqc_client_destroy(c);
    docsrv_stop(s);
}
