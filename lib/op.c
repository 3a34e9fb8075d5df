/* op: an operation's life. Submitted -> (server selected) -> waiting for a connection ->
 * active on a connection -> one callback. Every path ends in mqc_op_finish, which lets the
 * callback through once: directly when we are called from the loop, queued (and delivered by a
 * zero-delay timer) when we are inside the application's submit or cancel call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_event.h"
#include "conn.h"
#include "hotcmd.h"
#include "op.h"
#include "retry.h"
#include "server.h"
#include "topology.h"

/* An op in flight costs its size: 440 bytes is a malloc size class below the 464 it was
 * (glibc: a 448-byte chunk, not 480), which memory per op in flight on mqload counts. Pack a
 * new field into a hole, or make room, rather than grow it. */
_Static_assert(sizeof(mqc_op_t) <= 440, "mqc_op_t grew past 440 bytes: see op.h's field order");

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents);
static void op_start_request(mqc_op_t *op, mqc_conn_t *conn);

static void op_retry(mqc_op_t *op);

/* What the retry rules (retry.c) look at of op. */
static mqc_retry_case_t retry_case(const mqc_op_t *op)
{
    const mqc_ops_t *q = mqc_ops_of(op->client);
    return (mqc_retry_case_t){.kind = op->retry, .used = op->retried, .txn_ok = op->txn_ok,
                              .stopped = op->cancelled || q->closing || !*q->topo};
}

static void on_flush(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_client_t *client = w->data;
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_guard_enter(q->guard);
    mqc_op_flush_completions(client);
    mqc_guard_leave(q->guard);
}

void mqc_ops_init(mqc_client_t *client)
{
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_list_init(&q->live);
    mqc_list_init(&q->completions);
    mqc_list_init(&q->selecting);
    mqc_list_init(&q->deferred);
    mqc_list_init(&q->cursors);
    ev_init(&q->flush_timer, on_flush);
    q->flush_timer.data = client;
    q->max_pending = q->uri->max_pending > 0 ? (size_t) q->uri->max_pending : 0;
}

/* Zeroes an op from the free-list but for what is written before it is read: its name buffer
 * (db, copied with its terminator), its timer (ev_init, then ev_timer_set before each start) and
 * its pool waiter (mqc_op_dispatch and the pool set it up at each checkout; requeues, the op's
 * own count, is zeroed here). Half the op's 440 bytes, and a memset of the whole was the most
 * expensive line of a find's way down. Every other field, new ones too, is zeroed. */
static void op_reset(mqc_op_t *op)
{
    char *base = (char *) op;
    size_t db_end = offsetof(mqc_op_t, db) + sizeof op->db;
    size_t waiter = offsetof(mqc_op_t, waiter), waiter_end = waiter + sizeof op->waiter;
    size_t timer = offsetof(mqc_op_t, timer), timer_end = timer + sizeof op->timer;
    _Static_assert(offsetof(mqc_op_t, db) < offsetof(mqc_op_t, waiter) &&
                       offsetof(mqc_op_t, waiter) < offsetof(mqc_op_t, timer),
                   "op_reset expects db, waiter and timer in this order");
    memset(base, 0, offsetof(mqc_op_t, db));
    memset(base + db_end, 0, waiter - db_end);
    memset(base + waiter_end, 0, timer - waiter_end);
    /* In pieces of at most 64 bytes: the compiler writes each as a few 16-byte stores, where a
     * single one of ~110 bytes became a `rep stos`, slow to start. */
    size_t tail = sizeof *op - timer_end;
    memset(base + timer_end, 0, tail / 3);
    memset(base + timer_end + tail / 3, 0, tail / 3);
    memset(base + timer_end + 2 * (tail / 3), 0, tail - 2 * (tail / 3));
    op->waiter.requeues = 0;
}

mqc_op_t *mqc_op_new_n(mqc_client_t *client, const mqc_op_vt_t *vt, const char *name, const char *db, size_t dblen,
                       mqc_reply_cb cb, void *ud)
{
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_op_t *op = q->free_ops;
    if (op) {
        q->free_ops = op->impl;
        q->n_free_ops--;
        op_reset(op);
    } else if (!(op = calloc(1, sizeof *op))) {
        abort();
    }
    op->client = client;
    op->vt = vt;
    op->name = name;
    op->cb = cb;
    op->ud = ud;
    op->id = ++q->next_op_id;
    /* Submission time, and what deadlines count from: the loop's time (mqc_loop_us). */
    op->start_us = mqc_loop_us(q->loop);
    if (dblen < sizeof op->db) memcpy(op->db, db, dblen + 1); /* snprintf costs ~10x on this hot path */
    ev_init(&op->timer, on_deadline);
    op->timer.data = op;
    mqc_list_push_back(&q->live, &op->link);
    q->stats[MQC_STAT_OPS_SUBMITTED]++;
    q->stats[MQC_STAT_OPS_PENDING]++;
    if (q->uri->timeout_ms > 0) op->deadline_us = op->start_us + q->uri->timeout_ms * 1000;
    if (dblen >= sizeof op->db)
        mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "database name too long");
    return op;
}

void mqc_op_fail_early(mqc_op_t *op, uint32_t domain, int32_t code, const char *fmt, ...)
{
    if (op->q_error) return; /* the first reason is the one to report */
    va_list ap;
    char msg[sizeof op->q_error->message];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    op->q_error = malloc(sizeof *op->q_error);
    if (!op->q_error) abort();
    mqc_error_set(op->q_error, domain, code, "%s", msg);
}

static void op_queue(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error)
{
    mqc_client_t *client = op->client;
    mqc_ops_t *q = mqc_ops_of(client);
    op->state = MQC_OP_QUEUED;
    op->q_reply = reply ? bson_copy(reply) : NULL;
    if (error) {
        if (!op->q_error) {
            op->q_error = malloc(sizeof *op->q_error);
            if (!op->q_error) abort();
        }
        if (op->q_error != error) *op->q_error = *error;
    } else if (op->q_error) {
        free(op->q_error);
        op->q_error = NULL;
    }
    mqc_list_push_back(&q->completions, &op->qlink);
    if (!ev_is_active(&q->flush_timer)) {
        ev_timer_set(&q->flush_timer, 0., 0.);
        ev_timer_start(q->loop, &q->flush_timer);
    }
}

mqc_op_t *mqc_op_submit(mqc_op_t *op)
{
    mqc_client_t *client = op->client;
    mqc_ops_t *q = mqc_ops_of(client);
    q->submitting++;
    if (q->closing && !op->internal) {
        mqc_error_t e;
        mqc_error_set(&e, MQC_ERROR_SHUTDOWN, 0, "the client is being destroyed");
        op_queue(op, NULL, &e);
    } else if (op->q_error) {
        op_queue(op, NULL, op->q_error);
    } else {
        if (op->deadline_us > 0) {
            double after = (double) (op->deadline_us - mqc_loop_us(q->loop)) / 1e6;
            ev_timer_set(&op->timer, after > 0 ? after : 0., 0.);
            ev_timer_start(q->loop, &op->timer);
            op->timer_on = true;
        }
        if (q->holding > 0) {
            /* Submitted from a callback whose op still holds its connection: dispatched once
             * that connection is back in the pool, which then hands it to this op (or to an
             * older waiter) instead of opening another. */
            op->deferred = true;
            mqc_list_push_back(&q->deferred, &op->qlink);
        } else {
            mqc_op_dispatch(op);
        }
    }
    q->submitting--;
    return op;
}

static void op_checkout(mqc_op_t *op, mqc_server_t *s, mqc_pconn_t *held);

/* The ops submitted while a connection was held (see mqc_op_submit), in submission order. held:
 * that connection, still checked out for the first of them (op_deliver). */
static void dispatch_deferred(mqc_client_t *client, mqc_pconn_t *held)
{
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_link_t *l;
    q->submitting++;
    while (q->holding == 0 && (l = mqc_list_pop_front(&q->deferred))) {
        mqc_op_t *op = mqc_container_of(l, mqc_op_t, qlink);
        op->deferred = false;
        if (held) op_checkout(op, ((mqc_server_conn_t *) held)->server, held);
        else mqc_op_dispatch(op);
        held = NULL;
    }
    q->submitting--;
}

/* ---- sessions --------------------------------------------------------------------------- */

/* The pool's clock: the loop's time is good enough for minute-long expiries and costs nothing. */
static int64_t session_now(mqc_client_t *client) { return mqc_loop_us(mqc_ops_of(client)->loop); }

/* By the timeout the session was checked out with (op_send asked the topology then): the way
 * up does not go back down to the topology for it. */
void mqc_op_session_checkin(mqc_client_t *client, mqc_session_t *s)
{
    mqc_session_checkin_kept(mqc_ops_of(client)->sessions, s, session_now(client));
}

/* The op is done with its session: back to the pool, unless a cursor lent it (the cursor gives
 * it back) or kept it (on_batch took it). */
static void op_release_session(mqc_op_t *op)
{
    mqc_session_t *s = op->session;
    if (!s) return;
    op->session = NULL;
    if (!op->session_borrowed) mqc_op_session_checkin(op->client, s);
}

static void op_free(mqc_op_t *op)
{
    mqc_ops_t *q = mqc_ops_of(op->client);
    op_release_session(op);
    if (op->vt->destroy) op->vt->destroy(op);
    if (op->q_reply) bson_destroy(op->q_reply);
    if (op->q_error) free(op->q_error);
    if (q->closing || q->n_free_ops + 1 > MQC_FREE_LIST_MAX) {
        free(op);
        return;
    }
    op->impl = q->free_ops;
    q->free_ops = op;
    q->n_free_ops++;
}

/* Hands the op to the application (and its subscriber). The op is freed afterwards, and only then
 * does its connection (conn, when the request ended well) go back to the pool: finishing one op
 * never sends another before this op's callback has run. */
static void op_deliver(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, mqc_conn_t *conn)
{
    mqc_client_t *client = op->client;
    mqc_ops_t *q = mqc_ops_of(client);
    op->state = MQC_OP_DONE;
    op->end_us = mqc_loop_us(q->loop); /* see start_us in mqc_op_new */
    q->stats[MQC_STAT_OPS_COMPLETED]++;
    q->stats[MQC_STAT_OPS_PENDING]--;
    mqc_list_remove(&op->link);
    mqc_guard_enter(q->guard);
    if (conn) q->holding++;
    if (op->cb) op->cb(op, reply, error, op->ud);
    if (op->on_done) op->on_done(op, reply, error);
    op_free(op);
    if (conn) {
        /* The first op submitted from the callback takes conn straight, when checking it in and
         * out again would have come to that (one server to select, the pool's conditions:
         * mqc_server_pass); else conn goes back and the ops are dispatched as usual. */
        mqc_pconn_t *held = NULL;
        mqc_op_t *next = q->holding == 1 && !mqc_list_empty(&q->deferred)
                             ? mqc_container_of(q->deferred.next, mqc_op_t, qlink) : NULL;
        mqc_server_t *s = ((mqc_server_conn_t *) conn->up)->server;
        if (next && (next->pin ? next->pin : mqc_topology_lone(*q->topo)) == s) held = mqc_server_pass(conn);
        else mqc_server_release(conn, true);
        if (--q->holding == 0 && !mqc_list_empty(&q->deferred)) dispatch_deferred(client, held);
    }
    mqc_guard_leave(q->guard);
}

/* Lets go of whatever the op holds: its timer, its place in a wait queue, its connection. A
 * connection whose request ended well is returned for the caller to release after the
 * callback; NULL otherwise. */
static mqc_conn_t *op_detach(mqc_op_t *op, bool reply_complete)
{
    mqc_client_t *client = op->client;
    mqc_ops_t *q = mqc_ops_of(client);
    if (op->timer_on) {
        ev_timer_stop(q->loop, &op->timer);
        op->timer_on = false;
    }
    if (op->selecting || op->deferred) {
        mqc_list_remove(&op->qlink);
        op->selecting = op->deferred = false;
    }
    if (op->state == MQC_OP_WAITING && op->server) {
        mqc_pool_cancel_waiter(op->server->pool, &op->waiter, false);
        q->stats[MQC_STAT_WAIT_QUEUE]--;
    }
    mqc_conn_t *c = op->conn;
    op->conn = NULL;
    bool abandon = c && (c->owner == op || !reply_complete);
    /* A reply still due: never reuse the connection, nor the session, which the server may
     * still be running the request on. The session goes back before the connection: a
     * check-in can start a waiting op at once, which then finds it in the pool. */
    if (abandon && op->session) op->session->dirty = true;
    if (!op->session_keep) op_release_session(op);
    if (!abandon) return c;
    mqc_conn_abandon(c);
    mqc_server_release(c, false);
    return NULL;
}

void mqc_op_finish(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error)
{
    if (op->state == MQC_OP_QUEUED || op->state == MQC_OP_DONE) return;
    mqc_conn_t *c = op_detach(op, true);
    if (mqc_ops_of(op->client)->submitting > 0) {
        /* The callback waits for the loop: the connection need not. */
        op_queue(op, reply, error);
        if (c) mqc_server_release(c, true);
    } else {
        op_deliver(op, reply, error, c);
    }
}

void mqc_op_finish_later(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error)
{
    mqc_client_t *client = op->client;
    mqc_ops_t *q = mqc_ops_of(client);
    q->submitting++;
    mqc_op_finish(op, reply, error);
    q->submitting--;
}

void mqc_op_abort(mqc_op_t *op, const mqc_error_t *error)
{
    if (op->state == MQC_OP_QUEUED || op->state == MQC_OP_DONE) return;
    op_detach(op, false);
    if (mqc_ops_of(op->client)->submitting > 0) op_queue(op, NULL, error);
    else op_deliver(op, NULL, error, NULL);
}

void mqc_op_flush_completions(mqc_client_t *client)
{
    mqc_link_t *l;
    while ((l = mqc_list_pop_front(&mqc_ops_of(client)->completions))) {
        mqc_op_t *op = mqc_container_of(l, mqc_op_t, qlink);
        bson_t *reply = op->q_reply;
        op->q_reply = NULL;
        op_deliver(op, reply, op->q_error, NULL);
        if (reply) bson_destroy(reply);
    }
}

/* ---- dispatch -------------------------------------------------------------------------- */

/* A retryable write carries lsid + txnNumber when the server has sessions and the write is
 * acknowledged (the builders only mark acknowledged writes retryable). */
static bool wants_txn(const mqc_op_t *op, const mqc_server_t *s)
{
    return op->retry == MQC_RETRY_WRITE && op->session && mqc_ops_of(op->client)->uri->retry_writes && mqc_topology_supports_sessions(*mqc_ops_of(op->client)->topo, s);
}

/* The op has a connection: it takes its implicit session now, not when it was queued, so that
 * ops waiting for a connection hold none (the pool stays at the peak actually sent). A retry
 * and the next batch of a bulk keep the one they have. Unacknowledged writes take none (the
 * specification: the driver could not tell when the server is done with it). */
static void op_send(mqc_op_t *op, mqc_conn_t *conn)
{
    mqc_client_t *client = op->client;
    if (op->session) {
        op->session->last_use_us = session_now(client);
    } else if (!op->no_session) {
        int64_t timeout = mqc_topology_session_timeout(*mqc_ops_of(client)->topo, op->server);
        if (timeout >= 0) op->session = mqc_session_checkout(mqc_ops_of(client)->sessions, timeout, session_now(client));
    }
    /* A lone host's kind (standalone, primary, mongos) is known once a handshake is done: an op
     * dispatched before the first one learns it here. Only before its first txnNumber: a write
     * sent without one is never retried (retry.c), so this cannot give a retry a number its
     * first attempt lacked. */
    if (op->retry == MQC_RETRY_WRITE && op->txn_number == 0 && !op->txn_ok) op->txn_ok = wants_txn(op, op->server);
    op_start_request(op, conn);
}

static void on_checkout(mqc_pool_waiter_t *w, mqc_pconn_t *pc, const mqc_error_t *error)
{
    mqc_op_t *op = mqc_container_of(w, mqc_op_t, waiter);
    mqc_ops_t *q = mqc_ops_of(op->client);
    q->stats[MQC_STAT_WAIT_QUEUE]--;
    op->state = MQC_OP_ACTIVE; /* out of the queue: op_detach must not cancel the waiter */
    if (error) {
        /* Nothing was sent (the rules for a pool cleared under the op: retry.c). */
        mqc_retry_case_t rc = retry_case(op);
        switch (mqc_retry_after_checkout(&rc, q->uri, error, w->cleared_elsewhere, &w->requeues)) {
        case MQC_RETRY_REQUEUE:
            op->server = NULL;
            op->state = MQC_OP_NEW;
            mqc_op_dispatch(op);
            break;
        case MQC_RETRY_AGAIN: op_retry(op); break;
        case MQC_RETRY_FAIL: mqc_op_finish(op, NULL, error); break;
        }
        return;
    }
    op_send(op, mqc_server_conn(pc));
}

/* The op's timer runs to its deadline, or, while it waits for a server, to the end of that
 * wait when it comes first. */
static void arm_timer(mqc_op_t *op)
{
    mqc_client_t *client = op->client;
    mqc_ops_t *q = mqc_ops_of(client);
    int64_t at = op->deadline_us;
    if (op->selecting && (at == 0 || op->select_deadline_us < at)) at = op->select_deadline_us;
    if (op->timer_on) ev_timer_stop(q->loop, &op->timer);
    op->timer_on = at > 0;
    if (!op->timer_on) return;
    double after = (double) (at - mqc_loop_us(q->loop)) / 1e6;
    ev_timer_set(&op->timer, after > 0 ? after : 0., 0.);
    ev_timer_start(q->loop, &op->timer);
}

/* No suitable server yet: wait on the loop for the topology to change, at most
 * serverSelectionTimeoutMS from the first try (and never past the op's deadline). */
static void op_wait_for_server(mqc_op_t *op)
{
    mqc_client_t *client = op->client;
    mqc_ops_t *q = mqc_ops_of(client);
    if (op->select_deadline_us == 0) {
        int64_t ms = q->uri->server_selection_timeout_ms > 0 ? q->uri->server_selection_timeout_ms : 30000;
        op->select_deadline_us = mqc_loop_us(q->loop) + ms * 1000;
    }
    op->selecting = true;
    mqc_list_push_back(&q->selecting, &op->qlink);
    arm_timer(op);
}

/* The op's command document (mqc_op_vt_t.command_offset), or NULL. */
static bson_t *op_command(const mqc_op_t *op)
{
    if (op->vt->command_offset < 0 || !op->impl) return NULL;
    return (bson_t *) (void *) ((char *) op->impl + op->vt->command_offset);
}

/* The server for op: its pin, else the topology's choice; NULL with error set, the op fails;
 * unset, it waits for a change (a seed list still looked up, nothing suitable yet). */
static mqc_server_t *op_select(mqc_op_t *op, mqc_error_t *error)
{
    if (op->pin) return op->pin;
    mqc_ops_t *q = mqc_ops_of(op->client);
    if (!*q->topo && q->seed_failed) {
        *error = q->seed_error;
        return NULL;
    }
    bool wait;
    mqc_topology_t *t = *q->topo;
    /* Only a monitored topology reads the command (its $readPreference): a lone host's ops
     * skip finding it. */
    mqc_server_t *s = mqc_topology_select(t, op->is_write, t && t->monitored ? op_command(op) : NULL, op->tried, &wait, error);
    if (!s && wait) mqc_error_clear(error);
    return s;
}

void mqc_op_dispatch(mqc_op_t *op)
{
    mqc_error_t err;
    mqc_error_clear(&err);
    mqc_server_t *s = op_select(op, &err);
    if (!s) {
        if (!mqc_error_is_set(&err)) op_wait_for_server(op);
        else mqc_op_finish(op, NULL, &err);
        return;
    }
    op_checkout(op, s, NULL);
}

/* op selected s: a connection from its pool, then the request. held: one of s's connections,
 * still checked out, that the pool would hand to op at once (dispatch_deferred): op takes it
 * as its checkout would have. */
static void op_checkout(mqc_op_t *op, mqc_server_t *s, mqc_pconn_t *held)
{
    mqc_client_t *client = op->client;
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_error_t err;
    if (op->select_deadline_us) {
        op->select_deadline_us = 0;
        arm_timer(op);
    }
    op->txn_ok = wants_txn(op, s);
    if (held) {
        op->server = s;
        op->state = MQC_OP_ACTIVE;
        op_send(op, mqc_server_conn(held));
        return;
    }
    if (q->max_pending && q->stats[MQC_STAT_WAIT_QUEUE] >= q->max_pending &&
        mqc_pool_available(s->pool) == 0) {
        mqc_error_set(&err, MQC_ERROR_OVERLOADED, 0,
                      "overloaded: %zu operations already wait for a connection (maxPendingOperations)",
                      q->max_pending);
        mqc_op_finish(op, NULL, &err);
        return;
    }
    op->server = s;
    op->state = MQC_OP_WAITING;
    op->waiter.cb = on_checkout;
    /* On the pool's clock, the loop's (mqc_loop_us); 0: the pool notes the time itself if it
     * needs it (the op waits, or the pool has a monitor). */
    op->waiter.started_us = 0;
    op->waiter.deadline_us = 0;
    if (q->uri->wait_queue_timeout_ms > 0) {
        op->waiter.started_us = mqc_loop_us(q->loop);
        op->waiter.deadline_us = op->waiter.started_us + q->uri->wait_queue_timeout_ms * 1000;
    }
    q->stats[MQC_STAT_WAIT_QUEUE]++;
    mqc_pconn_t *pc = mqc_pool_checkout(s->pool, &op->waiter);
    if (pc) {
        q->stats[MQC_STAT_WAIT_QUEUE]--;
        op->state = MQC_OP_ACTIVE;
        op_send(op, mqc_server_conn(pc));
    }
}

/* ---- the op's sink: what the connection sends for it and tells it ------------------------- */

static void op_sink_reply(void *owner, mqc_conn_t *conn, const bson_t *reply);
static void op_sink_sent(void *owner, mqc_conn_t *conn);
static void op_sink_error(void *owner, mqc_conn_t *conn, const mqc_error_t *error);
static void op_step(mqc_op_t *op, mqc_conn_t *conn, mqc_step_t step, mqc_op_outcome_t *out);

static void emit_command(mqc_client_t *client, const mqc_command_event_t *ev)
{
    const mqc_ops_t *q = mqc_ops_of(client);
    if (q->monitor->command) mqc_command_event_deliver(q->monitor->command, ev, *q->monitor_ud);
}

/* Not inlined (nor emit_result): only with a monitor, and their documents would give the
 * request's and the reply's ways a 128-byte aligned frame (libbson aligns bson_t so). */
static __attribute__((noinline)) void emit_started(mqc_op_t *op, mqc_conn_t *c, const uint8_t *m, int32_t rid)
{
    bson_t body;
    /* The whole message: body plus document sequences, as the monitoring spec shows it. */
    uint32_t mlen;
    memcpy(&mlen, m, 4);
    mlen = BSON_UINT32_FROM_LE(mlen);
    if (mqc_command_from_msg(m, mlen, &body)) {
        mqc_command_event_t ev = {.type = MQC_COMMAND_STARTED, .command_name = mqc_command_name(&body, op->name),
                                  .database = op->db, .command = &body, .request_id = rid,
                                  .operation_id = op->id, .connection_id = mqc_server_pconn(c)->id,
                                  .server = op->server->host.host_and_port};
        emit_command(op->client, &ev);
    }
    bson_destroy(&body);
}

static const mqc_conn_sink_t op_sink = {op_sink_reply, op_sink_sent, op_sink_error};

/* The op's next request for the server it selected: the kind's encoder when it has one, else
 * the command document, with $readPreference for the server's type (lib/request.c) and the
 * session's fields, moreToCome for op->unacked. */
/* The command's $readPreference for the server's type (lib/request.c). Apart: its iterator
 * would give every request's way a 128-byte aligned frame (libbson aligns bson_iter_t so). */
static __attribute__((noinline)) void op_read_pref(mqc_op_t *op, bson_t *cmd, mqc_topology_t *t)
{
    bson_iter_t it;
    if (mqc_request_read_pref(cmd, mqc_ops_of(op->client)->uri, mqc_topology_type(t), mqc_topology_server_type(t, op->server)) &&
        bson_iter_init(&it, cmd) && bson_iter_next(&it))
        op->name = bson_iter_key(&it); /* the command's buffer may have moved */
}

static bool op_encode(mqc_op_t *op, mqc_buf_t *buf, int32_t rid, bool *unacked, mqc_error_t *error)
{
    const mqc_server_caps_t *caps = &op->server->caps;
    if (op->vt->encode) return op->vt->encode(op, caps, buf, rid, unacked, error);
    bson_t *cmd = op_command(op);
    mqc_topology_t *t = *mqc_ops_of(op->client)->topo;
    if (!op->is_write && !op->pin && (!caps->is_writable_primary || mqc_topology_type(t) != MQC_TOPOLOGY_SINGLE))
        op_read_pref(op, cmd, t);
    /* A retryable write's number: once, so that its retry sends the same. */
    if (op->txn_ok && op->txn_number == 0) mqc_op_next_txn(op);
    *unacked = op->unacked;
    mqc_op_msg(op, buf, rid, op->unacked ? MQC_MSG_MORE_TO_COME : 0, cmd);
    return true;
}

/* Sends the op's next request on conn: op encodes it (the op kind's encoder, for the caps of
 * the server op selected) into the connection's buffer and hands it down with its sink; conn
 * only writes it. An encoding failure sent nothing: the op ends with it, and the connection,
 * still good, goes back after the callback. */
static void op_start_request(mqc_op_t *op, mqc_conn_t *conn)
{
    mqc_error_t err;
    int32_t rid;
    bool unacked = false;
    mqc_buf_t *buf = mqc_conn_request_buf(conn, &rid);
    size_t start = buf->len;
    op->conn = conn;
    if (!op_encode(op, buf, rid, &unacked, &err)) {
        buf->len = start;
        mqc_op_finish(op, NULL, &err);
        return;
    }
    op->request_id = rid;
    /* The real clock, for the events' durations, only when someone listens (a find read it 9
     * times, for 0.15 µs of its 0.3 µs we had to save). */
    if (mqc_ops_of(op->client)->monitor->command) {
        op->sent_us = mqc_now_us();
        emit_started(op, conn, buf->data + start, rid);
    }
    mqc_conn_request_send(conn, &op_sink, op, rid, unacked);
}

/* ---- events from the connection ---------------------------------------------------------- */

static __attribute__((noinline)) void emit_result(mqc_op_t *op, mqc_conn_t *c, const bson_t *reply, const mqc_error_t *error)
{
    if (!mqc_ops_of(op->client)->monitor->command) return;
    /* The reply to a hello that carried speculative authentication is as sensitive as it. */
    bson_t empty = BSON_INITIALIZER;
    const bson_t *cmd = op_command(op);
    if (reply && cmd && bson_has_field(cmd, "speculativeAuthenticate")) reply = &empty;
    const char *name = cmd ? mqc_command_name(cmd, op->name) : op->name;
    mqc_command_event_t ev = {.type = error ? MQC_COMMAND_FAILED : MQC_COMMAND_SUCCEEDED,
                              .command_name = name, .database = op->db, .reply = reply,
                              .error = error, .request_id = op->request_id, .operation_id = op->id,
                              .connection_id = c ? mqc_server_pconn(c)->id : 0,
                              .server = op->server ? op->server->host.host_and_port : "",
                              .duration_us = op->sent_us ? mqc_now_us() - op->sent_us : 0};
    emit_command(op->client, &ev);
}

/* ---- retries ------------------------------------------------------------------------------ */

static void op_retry(mqc_op_t *op)
{
    mqc_ops_of(op->client)->stats[MQC_STAT_OPS_RETRIED]++;
    op->retried = true;
    op->tried = op->server;
    op->server = NULL;
    op->state = MQC_OP_NEW;
    mqc_op_dispatch(op);
}

/* A reply's SDAM meaning (a "not writable primary" or "node is recovering" error marks the
 * server Unknown), and whether it is retried instead of handed to the op (retry.c). */
static bool reply_retried(mqc_op_t *op, mqc_conn_t *conn, const bson_t *reply, const mqc_hotcmd_reply_t *scan)
{
    if (scan->ok && !scan->has_wce) return false;
    mqc_ops_t *q = mqc_ops_of(op->client);
    mqc_server_t *s = op->server;
    int32_t code = 0;
    if (s && mqc_sdam_classify_reply(reply, &code) != MQC_SDAM_STATE_NONE)
        mqc_topology_op_error(*q->topo, s, mqc_server_pconn(conn)->generation, MQC_SDAM_ERR_COMMAND, reply, NULL);
    mqc_retry_case_t c = retry_case(op);
    if (op->state != MQC_OP_ACTIVE || !mqc_retry_after_reply(&c, q->uri, s->caps.max_wire_version, reply, scan->ok))
        return false;
    op->conn = NULL;
    mqc_server_release(conn, true);
    op_retry(op);
    return true;
}

static void op_sink_reply(void *owner, mqc_conn_t *conn, const bson_t *reply)
{
    mqc_op_t *op = owner;
    mqc_ops_t *q = mqc_ops_of(op->client);
    if (q->monitor->command) {
        mqc_error_t e;
        bool ok = mqc_reply_ok(reply, &e);
        emit_result(op, conn, reply, ok ? NULL : &e);
    }
    /* Every reply is looked at: an error may mean a retry, and (a lone host too) a pool clear
     * when the server is shutting down. One pass over the reply finds what the retry check,
     * the op's on_reply and its result transform look at (ok, writeConcernError, cursor). */
    mqc_hotcmd_reply_t scan;
    mqc_hotcmd_reply_scan(reply, &scan);
    if (*q->topo && reply_retried(op, conn, reply, &scan)) return;
    op->reply_scan = &scan;
    /* "ok" was found when the reply was scanned: the full look only for an error. */
    mqc_op_outcome_t out;
    out.ok = scan.ok || mqc_reply_ok(reply, &out.err);
    op_step(op, conn, op->vt->on_reply(op, reply, &out), &out);
}

/* The op kind handed its outcome back: op finishes the op with it (DONE), or sends the next
 * request on the same connection (AGAIN). */
static void op_step(mqc_op_t *op, mqc_conn_t *conn, mqc_step_t step, mqc_op_outcome_t *out)
{
    op->reply_scan = NULL;
    if (step == MQC_STEP_AGAIN) {
        if (op->state == MQC_OP_ACTIVE) op_start_request(op, conn);
        return;
    }
    /* The op may be freed once finished: only the outcome, in this frame, is touched after. */
    mqc_op_finish(op, out->reply, out->error);
    if (out->tmp_used) bson_destroy(&out->tmp);
}

static void op_sink_sent(void *owner, mqc_conn_t *conn)
{
    mqc_op_t *op = owner;
    /* An unacknowledged write succeeded as far as anyone can know: {ok: 1} (monitoring spec). */
    bson_t ok = BSON_INITIALIZER;
    BSON_APPEND_INT32(&ok, "ok", 1);
    emit_result(op, conn, &ok, NULL);
    bson_destroy(&ok);
    mqc_op_outcome_t out;
    out.ok = true;
    op_step(op, conn, op->vt->on_sent(op, &out), &out);
}

static void op_sink_error(void *owner, mqc_conn_t *conn, const mqc_error_t *error)
{
    mqc_op_t *op = owner;
    mqc_server_t *s = op->server;
    mqc_client_t *client = op->client;
    mqc_ops_t *q = mqc_ops_of(client);
    uint32_t generation = mqc_server_pconn(conn)->generation;
    bool sent = !mqc_conn_request_unsent(conn); /* read before the pool closes it */
    op->conn = NULL;
    /* The server may have run the request, or still be running it: the session is not reused
     * (the retry keeps it, as the specification asks, then it is discarded). */
    if (op->session) op->session->dirty = true;
    emit_result(op, conn, NULL, error);
    /* SDAM: a network error (not a timeout) on an established connection marks a monitored
     * server Unknown and clears its pool (handleError): its other connections are suspect.
     * Timeouts only close the one connection, and so do protocol errors (a reply that cannot
     * be parsed): like a timeout, they are evidence about this connection's stream, not about
     * the server being reachable (docs/library/reliability.md, fault containment). The clear comes
     * before the broken connection's check-in: a check-in opens connections for the waiters,
     * which the clear would make stale at once, wasting maxConnecting slots. */
    bool net = error->domain == MQC_ERROR_NETWORK;
    if (*q->topo && (*q->topo)->monitored) {
        if (net || error->domain == MQC_ERROR_TIMEOUT)
            mqc_topology_op_error(*mqc_ops_of(client)->topo, s, generation, net ? MQC_SDAM_ERR_NETWORK : MQC_SDAM_ERR_TIMEOUT, NULL,
                                  error->message);
    } else if (net && generation == mqc_pool_generation(s->pool)) {
        /* A lone host without a monitor has no description to mark Unknown: of SDAM's rule
         * what remains is closing the idle connections ("if one socket is bad, it is likely
         * that all are"). No clear: the in-use ones are not interrupted anyway, and a dead
         * server shows on the next connection, whose failure clears the pool. A stale
         * connection's error (older generation) changes nothing. */
        mqc_pool_close_idle(s->pool);
    }
    mqc_server_release(conn, false);
    mqc_retry_case_t c = retry_case(op);
    if (op->state == MQC_OP_ACTIVE && mqc_retry_allowed(&c, q->uri, error, sent)) op_retry(op);
    else mqc_op_finish(op, NULL, error);
}

/* ---- deadline and cancellation ------------------------------------------------------------ */

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_op_t *op = w->data;
    mqc_client_t *client = op->client;
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_error_t err;
    op->timer_on = false;
    mqc_guard_enter(q->guard);
    if (op->selecting) {
        char topo[400];
        bool own = op->deadline_us > 0 && op->deadline_us <= op->select_deadline_us;
        mqc_error_set(&err, MQC_ERROR_SELECTION, 0, "%s: no suitable server (%s) within %s: %s",
                      op->name ? op->name : "operation", op->is_write ? "a writable one" : "by read preference",
                      own ? "the operation's timeout" : "serverSelectionTimeoutMS",
                      mqc_topology_describe(*mqc_ops_of(client)->topo, topo, sizeof topo));
        mqc_op_abort(op, &err);
        mqc_guard_leave(q->guard);
        return;
    }
    const char *where = op->state == MQC_OP_WAITING ? "waiting for a connection" : "awaiting the reply";
    mqc_error_set(&err, MQC_ERROR_TIMEOUT, MQC_TIMEOUT_OPERATION, "%s: operation exceeded its timeout (%lld ms) %s",
                  op->name ? op->name : "operation", (long long) ((op->deadline_us - op->start_us) / 1000), where);
    if (op->state == MQC_OP_WAITING && op->server) {
        mqc_pool_cancel_waiter(op->server->pool, &op->waiter, true);
        q->stats[MQC_STAT_WAIT_QUEUE]--;
        op->state = MQC_OP_ACTIVE;
    }
    if (op->group && op->vt->cancel) op->vt->cancel(op); /* members end; the gather follows */
    else mqc_op_abort(op, &err);
    mqc_guard_leave(q->guard);
}
