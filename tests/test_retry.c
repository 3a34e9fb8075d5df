/* Retries on a lone host, against the scripted server (tests/fakesrv, which answers hello as a
 * standalone: no setName, no msg: isdbgrid). Such a client uses the host directly, without a
 * monitor, and still retries as the retryable reads/writes specifications say: once, after the
 * bad connection was discarded, on a fresh one; a read after a network error or a retryable
 * code; a write only when its request never (wholly) reached the server, since a standalone
 * gets no txnNumber. A lone host's pool is not cleared for one connection's error; the waiters
 * failed by a clear (CMAP's PoolClearedError: a connection that could not be made) are retried
 * the same way. See docs/library/reliability.md. */
#include <ev.h>

#include "server/fakesrv.h"
#include "mqc.h"
#include "support/result.h"
#include "tf.h"

/* Command events: what was started on which connection, and how each attempt ended. */
typedef struct {
    int started, succeeded, failed;
    uint32_t conn[8];            /* connection id of each started event */
} events_t;

static void on_command(const mqc_command_event_t *ev, void *ud)
{
    events_t *e = ud;
    if (ev->type == MQC_COMMAND_STARTED) {
        if (e->started < 8) e->conn[e->started] = ev->connection_id;
        e->started++;
    } else if (ev->type == MQC_COMMAND_SUCCEEDED) {
        e->succeeded++;
    } else {
        e->failed++;
    }
}

static mqc_client_t *client_for(fakesrv_t *s, const char *extra, events_t *ev)
{
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, extra ? extra : "socketTimeoutMS=3000"));
    if (ev) {
        mqc_monitor_t m = {.command = on_command};
        mqc_client_set_monitor(c, &m, ev);
    }
    return c;
}

static tf_res_t find_one(mqc_client_t *c, const bson_t *opts) { return tf_find_one(c, opts, 20); }
static tf_res_t insert_one(mqc_client_t *c) { return tf_insert_one(c, NULL, 20); }

static uint64_t cstat(mqc_client_t *c, mqc_stat_t which) { return mqc_client_stat(c, which); }

TEST("/faults/retry/read_hangup_once", retry_read_hangup_once)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    events_t ev = {0};
    mqc_client_t *c = client_for(s, NULL, &ev);
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 1);
    tf_res_t r = find_one(c, NULL);
    ASSERT_MSG(!r.failed, "the retry should have succeeded: %s", r.error.message);
    /* exactly one retry, on a new connection; the broken one was closed, never reused */
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_EQ(fakesrv_commands(s), 2);
    ASSERT_EQ(fakesrv_connections(s), 2);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPENED), 2);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_CLOSED), 1);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPEN), 1);
    ASSERT_EQ(ev.started, 2);
    ASSERT_EQ(ev.failed, 1);
    ASSERT_EQ(ev.succeeded, 1);
    ASSERT_NE(ev.conn[0], ev.conn[1]);
    /* a later read runs on the surviving connection */
    r = find_one(c, NULL);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPENED), 2);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);

    /* a cursor's opening find is retried the same way (half a reply this time) */
    fakesrv_set_mode(s, FAKE_HANGUP_MID, 0, 1);
    tf_res_t b = {0};
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t filter = BSON_INITIALIZER;
    mqc_cursor_t *cur = mqc_collection_find(coll, &filter, NULL, tf_res_batch_cb, &b);
    ASSERT(mqc_client_run_until_idle(c, 20));
    ASSERT_EQ(b.calls, 1);
    ASSERT_MSG(!b.failed, "%s", b.error.message);
    ASSERT_EQ(b.docs, 1);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 2);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPENED), 3);
    mqc_cursor_destroy(cur);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/read_hangup_twice", retry_read_hangup_twice)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, NULL, NULL);
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 2);
    tf_res_t r = find_one(c, NULL);
    /* the retry failed as well: one clear network error, no second retry */
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_NETWORK);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_EQ(fakesrv_commands(s), 2);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPEN), 0);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_CLOSED), 2);
    r = find_one(c, NULL);
    ASSERT_MSG(!r.failed, "after the faults: %s", r.error.message);
    ASSERT_EQ(fakesrv_commands(s), 3);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/read_retryable_code", retry_read_code)
{
    /* 189 PrimarySteppedDown (a state change, not a shutdown): retried once; the connection is
     * healthy and kept */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, NULL, NULL);
    fakesrv_set_mode(s, FAKE_ERROR, 189, 1);
    tf_res_t r = find_one(c, NULL);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_EQ(fakesrv_commands(s), 2);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPENED), 1);
    /* not a retryable code: the server's error as it is */
    fakesrv_set_mode(s, FAKE_ERROR, 2, 1);
    r = find_one(c, NULL);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_SERVER);
    ASSERT_EQ(r.error.code, 2);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/read_protocol_error_retried", retry_read_protocol)
{
    /* A reply that cannot be parsed leaves that connection's stream unusable, as a hang-up
     * mid-reply does: the read is retried once on a new connection. Nothing else is touched
     * (a lone host: no pool clear; docs/library/reliability.md, fault containment). Twice in a row:
     * one protocol error. */
    static const fake_mode_t modes[] = {FAKE_GARBAGE, FAKE_OVERSIZE, FAKE_WRONG_RESPONSE_TO};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
        mqc_client_t *c = client_for(s, NULL, NULL);
        fakesrv_set_mode(s, modes[i], 0, 1);
        tf_res_t r = find_one(c, NULL);
        ASSERT_MSG(!r.failed, "%s", r.error.message);
        ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
        ASSERT_EQ(fakesrv_commands(s), 2);
        ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPENED), 2);
        fakesrv_set_mode(s, modes[i], 0, 2);
        r = find_one(c, NULL);
        ASSERT(r.failed);
        ASSERT_EQ(r.error.domain, MQC_ERROR_PROTOCOL);
        ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 2);
        mqc_client_destroy(c);
        fakesrv_stop(s);
    }
}

TEST("/faults/retry/read_not_retried_with_retryReads_false", retry_read_disabled)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, "retryReads=false", NULL);
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 1);
    tf_res_t r = find_one(c, NULL);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_NETWORK);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 0);
    ASSERT_EQ(fakesrv_commands(s), 1);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/write_sent_not_retried_on_standalone", retry_write_sent)
{
    /* The request reached the standalone (no txnNumber: it could not tell a duplicate), then the
     * connection broke: the write may have run, so it is not sent again. */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, NULL, NULL);
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 1);
    tf_res_t r = insert_one(c);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_NETWORK);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 0);
    ASSERT_EQ(fakesrv_commands(s), 1);
    bson_t last;
    ASSERT(fakesrv_last_command(s, false, &last));
    bson_iter_t it;
    ASSERT(!bson_iter_init_find(&it, &last, "txnNumber"));
    bson_destroy(&last);
    r = insert_one(c);
    ASSERT_MSG(!r.failed, "after the fault: %s", r.error.message);
    ASSERT_EQ(fakesrv_commands(s), 2);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPENED), 2);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

static int64_t txn_of_last(fakesrv_t *s)
{
    bson_t last;
    bson_iter_t it;
    int64_t n = -1;
    ASSERT(fakesrv_last_command(s, false, &last));
    if (bson_iter_init_find(&it, &last, "txnNumber")) n = bson_iter_as_int64(&it);
    ASSERT_MSG(n < 0 || bson_iter_init_find(&it, &last, "lsid"), "txnNumber without lsid");
    bson_destroy(&last);
    return n;
}

/* The lsid's UUID of the latest command; false when it has none. */
static bool lsid_of_last(fakesrv_t *s, uint8_t id[16])
{
    bson_t last;
    bson_iter_t it, sub;
    bool found = false;
    ASSERT(fakesrv_last_command(s, false, &last));
    if (bson_iter_init_find(&it, &last, "lsid") && BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &sub) &&
        bson_iter_find(&sub, "id") && BSON_ITER_HOLDS_BINARY(&sub)) {
        const uint8_t *data;
        uint32_t len;
        bson_subtype_t st;
        bson_iter_binary(&sub, &st, &len, &data);
        found = st == BSON_SUBTYPE_UUID && len == 16;
        if (found) memcpy(id, data, 16);
    }
    bson_destroy(&last);
    return found;
}

/* fakesrv playing a replica-set primary (setName), with sessions or without. */
static fakesrv_t *primary_srv(bool sessions)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    bson_t *extra = sessions ? BCON_NEW("setName", "rs0", "logicalSessionTimeoutMinutes", BCON_INT32(30))
                             : BCON_NEW("setName", "rs0");
    fakesrv_set_hello_extra(s, extra);
    bson_destroy(extra);
    return s;
}

TEST("/faults/retry/write_sent_retried_on_single_primary", retry_write_single_primary)
{
    /* A lone host (no monitor) that says it is a replica-set primary with sessions: its writes
     * carry lsid + txnNumber from the first one (the handshake is done when the op gets its
     * connection), so a sent write is retried, with the same number. */
    fakesrv_t *s = primary_srv(true);
    mqc_client_t *c = client_for(s, NULL, NULL);
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 1);
    tf_res_t r = insert_one(c);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_EQ(fakesrv_commands(s), 2);
    int64_t first = txn_of_last(s);
    ASSERT_EQ(first, 1); /* each session numbers its own writes */
    uint8_t lsid1[16], lsid2[16];
    ASSERT(lsid_of_last(s, lsid1));
    r = insert_one(c);
    ASSERT(!r.failed);
    /* The session saw a network error: discarded, so the next write has a new one (from 1). */
    ASSERT(lsid_of_last(s, lsid2));
    ASSERT(memcmp(lsid1, lsid2, 16) != 0);
    ASSERT_EQ(txn_of_last(s), 1);
    ASSERT_EQ(cstat(c, MQC_STAT_SESSIONS_DISCARDED), 1);
    ASSERT_EQ(cstat(c, MQC_STAT_SESSIONS_CREATED), 2);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/write_sent_not_retried_on_single_primary_without_sessions", retry_write_single_no_sessions)
{
    fakesrv_t *s = primary_srv(false);
    mqc_client_t *c = client_for(s, NULL, NULL);
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 1);
    tf_res_t r = insert_one(c);
    ASSERT(r.failed);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 0);
    ASSERT_EQ(txn_of_last(s), -1);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/write_concern_error_retried", retry_write_concern_error)
{
    /* ok: 1 with a writeConcernError labelled RetryableWriteError (91, ShutdownInProgress): the
     * write is sent again with the same txnNumber; the retried reply is the op's result. */
    fakesrv_t *s = primary_srv(true);
    mqc_client_t *c = client_for(s, NULL, NULL);
    tf_res_t r = insert_one(c); /* a handshake first: the host is known to be a primary */
    ASSERT(!r.failed);
    int64_t before = txn_of_last(s);
    fakesrv_set_mode(s, FAKE_WC_ERROR, 91, 1);
    r = insert_one(c);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_EQ(fakesrv_commands(s), 3);
    ASSERT_EQ(txn_of_last(s), before + 1); /* one number for both attempts */
    /* Twice in a row: one retry, then the write concern error is the result. */
    fakesrv_set_mode(s, FAKE_WC_ERROR, 91, 2);
    r = insert_one(c);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_WRITE_CONCERN);
    ASSERT_EQ(r.error.code, 91);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 2);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/shutdown_error_closes_idle_lone_connections", retry_shutdown_closes_idle)
{
    /* A lone host answering ShutdownInProgress (91): its idle connections are closed (SDAM: they
     * are about to die) but the pool is not cleared: the connection that carried the error stays
     * until it fails by itself, and nothing else in use is touched (docs/library/reliability.md, fault
     * containment). A plain command error (2, BadValue) closes nothing. The ping itself is never
     * retried (a generic command). */
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 100);
    mqc_client_t *c = client_for(s, NULL, NULL);
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    tf_res_t r = {0}, r2 = {0};
    mqc_client_command(c, "admin", ping, NULL, tf_res_cb, &r);
    mqc_client_command(c, "admin", ping, NULL, tf_res_cb, &r2); /* two at once: two connections */
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT(!r.failed && !r2.failed);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPENED), 2);
    fakesrv_set_mode(s, FAKE_ERROR, 2, 1);
    mqc_client_command(c, "admin", ping, NULL, tf_res_cb, &r);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT(r.failed);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_CLOSED), 0); /* BadValue: nothing closed */
    fakesrv_set_mode(s, FAKE_ERROR, 91, 1);
    mqc_client_command(c, "admin", ping, NULL, tf_res_cb, &r);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT(r.failed);
    ASSERT_EQ(r.error.code, 91);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 0);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_CLOSED), 1); /* the idle one */
    mqc_client_command(c, "admin", ping, NULL, tf_res_cb, &r);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT(!r.failed);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPENED), 2); /* the one that answered 91 is still there */
    ASSERT_EQ(r.calls, 4);
    bson_destroy(ping);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/write_retried_when_connect_failed", retry_write_connect)
{
    /* The write's connection broke in the handshake: nothing was sent, so it is retried (on a
     * new connection) even on a standalone. */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, NULL, NULL);
    fakesrv_hangup_hellos(s, 1);
    tf_res_t r = insert_one(c);
    ASSERT_MSG(!r.failed, "the retry should have succeeded: %s", r.error.message);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_FAILED), 1);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPENED), 1);
    ASSERT_EQ(fakesrv_connections(s), 2);
    ASSERT_EQ(fakesrv_commands(s), 1);
    /* twice: the retry's connection fails too, one clear error */
    fakesrv_hangup_hellos(s, 2);
    mqc_client_destroy(c);
    c = client_for(s, NULL, NULL);
    r = insert_one(c);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_NETWORK);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_FAILED), 2);
    ASSERT_EQ(fakesrv_commands(s), 1);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/write_retried_when_send_failed", retry_write_send)
{
    /* An idle pooled connection was reset by the server while the loop did not run: the next
     * write fails inside send(), no byte of it sent, so it is retried on a new connection. */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    events_t ev = {0};
    mqc_client_t *c = client_for(s, NULL, &ev);
    tf_res_t r = insert_one(c);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    fakesrv_reset_connections(s);
    r = insert_one(c);
    ASSERT_MSG(!r.failed, "the retry should have succeeded: %s", r.error.message);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_EQ(fakesrv_commands(s), 2); /* the failed attempt never arrived */
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPENED), 2);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPEN), 1);
    ASSERT_EQ(ev.started, 3);
    ASSERT_EQ(ev.failed, 1);
    ASSERT_EQ(ev.conn[0], ev.conn[1]); /* the first write and the failed attempt: the old connection */
    ASSERT_NE(ev.conn[1], ev.conn[2]);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/aggregate_with_out_not_retried", retry_aggregate_out)
{
    /* An aggregate that writes ($out, $merge) is no retryable read; one without is. */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, NULL, NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t *writes = BCON_NEW("0", "{", "$match", "{", "}", "}", "1", "{", "$out", BCON_UTF8("x"), "}");
    bson_t *reads = BCON_NEW("pipeline", "[", "{", "$match", "{", "}", "}", "]");
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 1);
    tf_res_t a = {0};
    mqc_cursor_t *cur = mqc_collection_aggregate(coll, writes, NULL, tf_res_batch_cb, &a);
    ASSERT(mqc_client_run_until_idle(c, 20));
    mqc_cursor_destroy(cur);
    ASSERT_EQ(a.calls, 1);
    ASSERT(a.failed);
    ASSERT_EQ(a.error.domain, MQC_ERROR_NETWORK);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 0);
    ASSERT_EQ(fakesrv_commands(s), 1);
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 1);
    tf_res_t b = {0};
    cur = mqc_collection_aggregate(coll, reads, NULL, tf_res_batch_cb, &b);
    ASSERT(mqc_client_run_until_idle(c, 20));
    mqc_cursor_destroy(cur);
    ASSERT_EQ(b.calls, 1);
    ASSERT_MSG(!b.failed, "%s", b.error.message);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_EQ(fakesrv_commands(s), 3);
    bson_destroy(writes);
    bson_destroy(reads);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/deadline_bounds_the_total", retry_deadline)
{
    /* hang-up, then the retry's reply comes 1.5 s late: timeoutMS (300 ms) ends the op, counted
     * from its submission, not from the retry */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, NULL, NULL);
    fakesrv_set_mode_then(s, FAKE_HANGUP_BEFORE, 0, 1, FAKE_DELAY, 1500);
    bson_t *opts = BCON_NEW("timeoutMS", BCON_INT32(300));
    double t0 = tf_now();
    tf_res_t r = find_one(c, opts);
    double took = tf_now() - t0;
    tf_note("took %.3f s: %s", took, r.error.message);
    ASSERT(r.failed);
    ASSERT_EQ(r.error.domain, MQC_ERROR_TIMEOUT);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_GE((int) (took * 1000), 250);
    ASSERT_LT((int) (took * 1000), 900);
    bson_destroy(opts);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

/* Starts a find_one whose first attempt hangs up and whose retry waits (reply 1 s late), and
 * runs the loop until the retry is on the wire. */
static mqc_op_t *start_retrying_find(fakesrv_t *s, mqc_client_t *c, mqc_collection_t *coll, tf_res_t *r)
{
    fakesrv_set_mode_then(s, FAKE_HANGUP_BEFORE, 0, 1, FAKE_DELAY, 1000);
    bson_t filter = BSON_INITIALIZER;
    mqc_op_t *op = mqc_collection_find_one(coll, &filter, NULL, tf_res_cb, r);
    double t0 = tf_now();
    while (fakesrv_commands(s) < 2 && tf_now() - t0 < 5) ev_run(mqc_client_get_loop(c), EVRUN_ONCE | EVRUN_NOWAIT);
    ASSERT_EQ(fakesrv_commands(s), 2);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_EQ(r->calls, 0);
    return op;
}

TEST("/faults/retry/cancel_during_retry", retry_cancel)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, NULL, NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    tf_res_t r = {0};
    mqc_op_t *op = start_retrying_find(s, c, coll, &r);
    mqc_op_cancel(op);
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.error.domain, MQC_ERROR_CANCELLED);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_PENDING), 0);
    ASSERT_EQ(cstat(c, MQC_STAT_CONNS_OPEN), 0); /* the retry's reply is stale: its connection closed */
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/faults/retry/destroy_during_retry", retry_destroy)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, NULL, NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    tf_res_t r = {0};
    start_retrying_find(s, c, coll, &r);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.error.domain, MQC_ERROR_SHUTDOWN);
    fakesrv_stop(s);
}

TEST("/faults/retry/waiters_untouched_by_a_fault", retry_waiters_untouched)
{
    /* maxPoolSize=1 and five reads at once: the first one's connection hangs up. A lone host
     * does not clear its pool for one connection's error (docs/library/reliability.md, fault
     * containment), so the four waiting for a connection just get the next one; the first read
     * is retried once. One fault, no failed operation, one retry. */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = client_for(s, "maxPoolSize=1&socketTimeoutMS=3000", NULL);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t filter = BSON_INITIALIZER;
    tf_res_t r[5];
    memset(r, 0, sizeof r);
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 1);
    for (int i = 0; i < 5; i++) mqc_collection_find_one(coll, &filter, NULL, tf_res_cb, &r[i]);
    ASSERT(mqc_client_run_until_idle(c, 20));
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(r[i].calls, 1);
        ASSERT_MSG(!r[i].failed, "read %d: %s", i, r[i].error.message);
    }
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);
    ASSERT_EQ(fakesrv_commands(s), 6);

    /* Generic commands are never retried (the specifications exclude runCommand): the ping on
     * the broken connection fails; the four waiting behind it succeed. */
    tf_res_t p[5];
    memset(p, 0, sizeof p);
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 1);
    for (int i = 0; i < 5; i++) mqc_client_command(c, "admin", ping, NULL, tf_res_cb, &p[i]);
    ASSERT(mqc_client_run_until_idle(c, 20));
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(p[i].calls, 1);
        ASSERT_MSG(p[i].failed == (i == 0), "ping %d: %s", i, p[i].failed ? p[i].error.message : "ok");
    }
    ASSERT_EQ(p[0].error.domain, MQC_ERROR_NETWORK);
    ASSERT_EQ(cstat(c, MQC_STAT_OPS_RETRIED), 1);

    bson_destroy(ping);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}
