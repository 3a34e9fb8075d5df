/* conn: one connection's state machine. Every way into and out of a state is in this file:
 * connecting, hello (and the TLS and AUTH steps in conn_secure.c), ready/busy (reading
 * replies), and closing. The bytes go through lib/stream.c. */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_CHUNK 512 /* the reader grows to a whole message once its length is known */

static void conn_fail(mqc_conn_t *c, const mqc_error_t *error);
static void free_addrinfo_copy(struct addrinfo *a);
static void conn_send_hello(mqc_conn_t *c);
static void state_connecting(mqc_conn_t *c);
static void on_rio(struct ev_loop *loop, ev_io *w, int revents);
static void on_wio(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);

const char *mqc_conn_state_name(mqc_conn_state_t s)
{
    switch (s) {
    case MQC_CS_RESOLVING: return "resolving";
    case MQC_CS_CONNECTING: return "connecting";
    case MQC_CS_TLS: return "tls";
    case MQC_CS_HELLO: return "hello";
    case MQC_CS_AUTH: return "auth";
    case MQC_CS_READY: return "ready";
    case MQC_CS_BUSY: return "busy";
    case MQC_CS_CLOSED: return "closed";
    }
    return "?";
}

static void set_state(mqc_conn_t *c, mqc_conn_state_t s)
{
    /* An idle pooled connection only listens for a hang-up: like libev's own "background"
     * watchers it must not keep ev_run(loop, 0) from returning once the application is done. */
    bool idle = s == MQC_CS_READY && ev_is_active(&c->rio);
    if (idle && !c->weak) {
        ev_unref(c->ctx->loop);
        c->weak = true;
    } else if (!idle && c->weak) {
        ev_ref(c->ctx->loop);
        c->weak = false;
    }
    /* No time noted: nobody reads one, and a clock read on each change was two per find. */
    c->state = s;
}

/* ---- handler bracketing: frees and client destroys wait until our handler is done ------- */

static void conn_free(mqc_conn_t *c)
{
    mqc_wire_reader_cleanup(&c->reader);
    mqc_buf_free(&c->out);
    free_addrinfo_copy(c->addrs);
    free(c->fail);
    c->ctx->secure->free(c);
    free(c);
}

static void enter(mqc_conn_t *c)
{
    c->handling++;
    mqc_guard_enter(c->ctx->guard);
}

static void leave(mqc_conn_t *c)
{
    mqc_guard_t *guard = c->ctx->guard;
    if (--c->handling == 0 && c->free_pending) conn_free(c);
    mqc_guard_leave(guard);
}

void mqc_conn_enter(mqc_conn_t *c) { enter(c); }
void mqc_conn_leave(mqc_conn_t *c) { leave(c); }

/* ---- closing -------------------------------------------------------------------------- */

static void conn_shut(mqc_conn_t *c)
{
    struct ev_loop *loop = c->ctx->loop;
    if (c->state == MQC_CS_CLOSED) return;
    if (c->weak) {
        ev_ref(loop);
        c->weak = false;
    }
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->timer);
    if (c->state == MQC_CS_RESOLVING) mqc_list_remove(&c->rlink);
    mqc_stream_close(&c->stream);
    bool was_open = c->state == MQC_CS_READY || c->state == MQC_CS_BUSY;
    set_state(c, MQC_CS_CLOSED);
    if (was_open) {
        c->ctx->stats[MQC_STAT_CONNS_CLOSED]++;
        c->ctx->stats[MQC_STAT_CONNS_OPEN]--;
    }
}

/* The owner's close: now, in any state. The request's owner, if any, was already told (or is
 * being). */
void mqc_conn_close(mqc_conn_t *c)
{
    conn_shut(c);
    if (c->handling > 0) c->free_pending = true;
    else conn_free(c);
}

/* ---- opening: connect -------------------------------------------------------------------- */

static struct addrinfo *copy_addrinfo(const struct addrinfo *src)
{
    struct addrinfo *head = NULL, **tail = &head;
    for (; src; src = src->ai_next) {
        struct addrinfo *a = calloc(1, sizeof *a + src->ai_addrlen);
        if (!a) abort();
        a->ai_family = src->ai_family;
        a->ai_socktype = src->ai_socktype;
        a->ai_protocol = src->ai_protocol;
        a->ai_addrlen = src->ai_addrlen;
        a->ai_addr = (struct sockaddr *) (a + 1);
        memcpy(a->ai_addr, src->ai_addr, src->ai_addrlen);
        *tail = a;
        tail = &a->ai_next;
    }
    return head;
}

static void free_addrinfo_copy(struct addrinfo *a)
{
    while (a) {
        struct addrinfo *n = a->ai_next;
        free(a);
        a = n;
    }
}

/* ---- establishment budget ------------------------------------------------------------
 * Each step of opening a connection costs CPU: socket and connect, the hello, SCRAM (10-20 us),
 * a TLS handshake (0.1-0.5 ms). Hundreds of connections reach the same step in the same loop
 * iteration (a name resolved for all of them, a burst of submissions with a large
 * maxConnecting), and 1,000 connections made one iteration take 17 ms, 500 TLS handshakes 23-53
 * ms. So establishment work has a budget per iteration; past it, a ready connection waits for
 * the next one. libev's io watchers are level-triggered, so a socket left ready fires again
 * without re-arming; connections not yet connecting (their name just resolved, or opened past
 * the budget) wait with their owner (lib/server.c) and continue from a zero timer. Every
 * iteration runs at least one step, so nothing starves. */
#define ESTABLISH_BUDGET_US 2000

void mqc_conn_ctx_cleanup(mqc_conn_ctx_t *ctx) { mqc_wire_shared_free(&ctx->rshared); }

bool mqc_conn_budget_left(mqc_conn_ctx_t *ctx)
{
    unsigned it = ev_iteration(ctx->loop);
    if (it != ctx->est_iteration) {
        ctx->est_iteration = it;
        ctx->est_spent_us = 0;
    }
    return ctx->est_spent_us < ESTABLISH_BUDGET_US;
}

void mqc_conn_budget_spend(mqc_conn_ctx_t *ctx, int64_t since_us)
{
    ctx->est_spent_us += mqc_now_us() - since_us;
}

static bool establishing(const mqc_conn_t *c)
{
    return c->state == MQC_CS_CONNECTING || c->state == MQC_CS_TLS || c->state == MQC_CS_HELLO ||
           c->state == MQC_CS_AUTH;
}

mqc_conn_t *mqc_conn_new(mqc_conn_ctx_t *ctx, const mqc_uri_host_t *host, int32_t max_message_size,
                         const mqc_conn_events_t *events, void *up)
{
    mqc_conn_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->ctx = ctx;
    c->host = host;
    c->events = events;
    c->up = up;
    mqc_stream_init(&c->stream, host->host_and_port);
    mqc_wire_reader_init(&c->reader, max_message_size);
    mqc_buf_init(&c->out);
    mqc_list_init(&c->rlink);
    ev_init(&c->rio, on_rio);
    ev_init(&c->wio, on_wio);
    ev_init(&c->timer, on_timer);
    c->rio.data = c->wio.data = c->timer.data = c;
    /* The whole establishment (resolve, connect, TLS, hello, auth) is bounded by connectTimeoutMS. */
    int64_t ms = ctx->uri->connect_timeout_ms > 0 ? ctx->uri->connect_timeout_ms : 10000;
    ev_timer_set(&c->timer, (double) ms / 1000.0, 0.);
    ev_timer_start(ctx->loop, &c->timer);
    set_state(c, MQC_CS_RESOLVING);
    return c;
}

void mqc_conn_fail(mqc_conn_t *c, const mqc_error_t *error) { conn_fail(c, error); }

/* Tries c->ai, then the next addresses. Failure to even start is reported from the loop. */
static void conn_try_address(mqc_conn_t *c)
{
    mqc_error_t err;
    int rc = c->host->is_unix ? mqc_stream_connect_unix(&c->stream, c->host->host)
                              : mqc_stream_connect(&c->stream, &c->ai);
    if (rc == 0) {
        set_state(c, MQC_CS_CONNECTING);
        ev_io_set(&c->wio, c->stream.fd, EV_WRITE);
        ev_io_set(&c->rio, c->stream.fd, EV_READ);
        ev_io_start(c->ctx->loop, &c->wio);
        /* Connected already (loopback, unix): on with the handshake now. */
        if (mqc_stream_connect_done(&c->stream)) state_connecting(c);
        return;
    }
    if (rc == ENAMETOOLONG && c->host->is_unix)
        mqc_error_set(&err, MQC_ERROR_NETWORK, ENAMETOOLONG, "socket path too long: %s", c->host->host);
    else
        mqc_error_set(&err, MQC_ERROR_NETWORK, rc, "connect to %s failed: %s", c->host->host_and_port, strerror(rc));
    conn_fail(c, &err);
}

void mqc_conn_connect(mqc_conn_t *c, const struct addrinfo *addrs)
{
    mqc_list_remove(&c->rlink);
    if (!c->host->is_unix) {
        c->addrs = copy_addrinfo(addrs);
        c->ai = c->addrs;
    }
    conn_try_address(c);
}

/* CONNECTING: the socket became writable: connected, or failed (try the next address). */
static void state_connecting(mqc_conn_t *c)
{
    int soerr = mqc_stream_connected(&c->stream);
    if (soerr != 0) {
        ev_io_stop(c->ctx->loop, &c->wio);
        if (c->ai && c->ai->ai_next) {
            c->ai = c->ai->ai_next;
            conn_try_address(c);
            return;
        }
        /* Addresses may have changed: resolve again next time. */
        c->events->addrs_failed(c->up);
        mqc_error_t err;
        mqc_error_set(&err, MQC_ERROR_NETWORK, soerr, "connect to %s failed: %s", c->host->host_and_port,
                      strerror(soerr));
        conn_fail(c, &err);
        return;
    }
    ev_io_stop(c->ctx->loop, &c->wio);
    ev_io_start(c->ctx->loop, &c->rio);
    /* Connected: the other addresses are no longer needed (80 bytes each, per connection). */
    free_addrinfo_copy(c->addrs);
    c->addrs = c->ai = NULL;
    if (c->ctx->uri->tls) {
        set_state(c, MQC_CS_TLS);
        c->ctx->secure->tls_start(c);
        return;
    }
    conn_send_hello(c);
}

/* ---- reporting failures --------------------------------------------------------------- */

/* A failure during establishment goes to the owner (whose pool closes us); while BUSY, to the
 * request's sink; while READY (or BUSY for no one), the owner drops us. Failures found outside
 * our handlers (inside the owner's open) are deferred to the loop with a zero timer: the owner
 * must not hear back from inside its own call. */
static void conn_fail(mqc_conn_t *c, const mqc_error_t *error)
{
    if (c->state == MQC_CS_CLOSED) return;
    if (c->handling == 0) {
        /* Kept apart from the connection (a rare event; 516 bytes every connection would carry). */
        if (!c->fail && !(c->fail = malloc(sizeof *c->fail))) abort();
        *c->fail = *error;
        ev_timer_stop(c->ctx->loop, &c->timer);
        ev_timer_set(&c->timer, 0., 0.);
        ev_timer_start(c->ctx->loop, &c->timer);
        return;
    }
    switch (c->state) {
    case MQC_CS_RESOLVING:
    case MQC_CS_CONNECTING:
    case MQC_CS_TLS:
    case MQC_CS_HELLO:
    case MQC_CS_AUTH:
        c->ctx->stats[MQC_STAT_CONNS_FAILED]++;
        conn_shut(c);
        c->events->established(c->up, c, error);
        break;
    case MQC_CS_READY:
        conn_shut(c);
        c->events->lost(c->up, c);
        break;
    case MQC_CS_BUSY: {
        void *owner = c->owner;
        c->owner = NULL;
        conn_shut(c);
        if (owner) c->sink->on_error(owner, c, error);
        else c->events->lost(c->up, c);
        break;
    }
    case MQC_CS_CLOSED:
        break;
    }
}

void mqc_conn_fail_now(mqc_conn_t *c, const mqc_error_t *error) { conn_fail(c, error); }

void mqc_conn_after_tls(mqc_conn_t *c) { conn_send_hello(c); }

/* ---- bytes in and out ------------------------------------------------------------------ */

/* Writes what is buffered. false (and error) when the connection broke. Inline: every request
 * passes here. */
static inline __attribute__((always_inline)) bool conn_flush(mqc_conn_t *c, mqc_error_t *error)
{
    while (c->out_off < c->out.len) {
        ssize_t n = mqc_stream_write(&c->stream, c->out.data + c->out_off, c->out.len - c->out_off, error);
        if (n > 0) {
            c->out_off += (size_t) n;
            c->ctx->stats[MQC_STAT_BYTES_SENT] += (uint64_t) n;
            continue;
        }
        if (n == 0) { /* would block */
            if (!ev_is_active(&c->wio)) ev_io_start(c->ctx->loop, &c->wio);
            return true;
        }
        return false;
    }
    c->out.len = 0; /* mqc_buf_reset, without a call into wire.c per request */
    c->out_off = 0;
    if (ev_is_active(&c->wio) && !c->stream.read_wants_write) ev_io_stop(c->ctx->loop, &c->wio);
    return true;
}

bool mqc_conn_send_buffered(mqc_conn_t *c)
{
    mqc_error_t err;
    if (!conn_flush(c, &err)) {
        conn_fail(c, &err);
        return false;
    }
    return true;
}

/* Stops c's timer, calling into libev only when it runs or has fired: without socketTimeoutMS
 * it is idle from the handshake on, and a find passed here twice. */
static inline void timer_stop(mqc_conn_t *c)
{
    if (ev_is_active(&c->timer) || ev_is_pending(&c->timer)) ev_timer_stop(c->ctx->loop, &c->timer);
}

static void arm_reply_timer(mqc_conn_t *c)
{
    int64_t ms = c->ctx->uri->socket_timeout_ms;
    timer_stop(c);
    if (ms > 0) {
        ev_timer_set(&c->timer, (double) ms / 1000.0, 0.);
        ev_timer_start(c->ctx->loop, &c->timer);
    }
}

/* ---- HELLO ---------------------------------------------------------------------------- */

static void conn_send_hello(mqc_conn_t *c)
{
    bson_t cmd;
    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "isMaster", 1);
    BSON_APPEND_BOOL(&cmd, "helloOk", true);
    BSON_APPEND_DOCUMENT(&cmd, "client", c->ctx->metadata);
    c->ctx->secure->auth_add_to_hello(c, &cmd);
    set_state(c, MQC_CS_HELLO);
    c->request_id = mqc_wire_next_request_id(c->ctx->request_ids);
    /* Legacy OP_QUERY for the first message, as the handshake specification asks: any server
     * answers it, whatever wire versions it speaks. */
    mqc_wire_query_command(&c->out, c->request_id, "admin", &cmd);
    bson_destroy(&cmd);
    mqc_conn_send_buffered(c);
}

static int32_t get_i32(const bson_t *doc, const char *key, int32_t dflt)
{
    bson_iter_t it;
    /* Out of int32 range (or a double that is): the default, never a wrapped value. */
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_NUMBER(&it)) return dflt;
    if (BSON_ITER_HOLDS_DOUBLE(&it)) {
        double d = bson_iter_double(&it);
        return d >= INT32_MIN && d <= INT32_MAX ? (int32_t) d : dflt;
    }
    int64_t v = bson_iter_as_int64(&it);
    return v >= INT32_MIN && v <= INT32_MAX ? (int32_t) v : dflt;
}

/* Not inlined into conn_on_message: its documents would give every reply's way a 128-byte
 * aligned frame (libbson aligns bson_t so). */
static __attribute__((noinline)) void state_hello_reply(mqc_conn_t *c, const bson_t *reply)
{
    mqc_error_t err;
    mqc_server_caps_t caps;
    bson_iter_t it;
    if (!mqc_reply_ok(reply, &err)) {
        char msg[sizeof err.message];
        snprintf(msg, sizeof msg, "%s", err.message);
        mqc_error_set(&err, MQC_ERROR_SERVER, err.code, "handshake with %s failed: %s",
                      c->host->host_and_port, msg);
        conn_fail(c, &err);
        return;
    }
    memset(&caps, 0, sizeof caps);
    mqc_wire_limits_default(&caps.limits);
    caps.limits.max_bson_object_size = get_i32(reply, "maxBsonObjectSize", caps.limits.max_bson_object_size);
    caps.limits.max_message_size = get_i32(reply, "maxMessageSizeBytes", caps.limits.max_message_size);
    caps.limits.max_write_batch_size = get_i32(reply, "maxWriteBatchSize", caps.limits.max_write_batch_size);
    caps.max_wire_version = get_i32(reply, "maxWireVersion", 0);
    caps.min_wire_version = get_i32(reply, "minWireVersion", 0);
    caps.is_writable_primary = (bson_iter_init_find(&it, reply, "isWritablePrimary") ||
                                bson_iter_init_find(&it, reply, "ismaster")) &&
                               bson_iter_as_bool(&it);
    caps.is_mongos = bson_iter_init_find(&it, reply, "msg") && BSON_ITER_HOLDS_UTF8(&it) &&
                     strcmp(bson_iter_utf8(&it, NULL), "isdbgrid") == 0;
    caps.is_rs_member = bson_iter_init_find(&it, reply, "setName") && BSON_ITER_HOLDS_UTF8(&it);
    caps.session_timeout_minutes = get_i32(reply, "logicalSessionTimeoutMinutes", -1);
    c->server_connection_id = (uint32_t) get_i32(reply, "connectionId", 0);
    /* OP_MSG needs wire version 6 (MongoDB 3.6). */
    if (caps.max_wire_version < 6) {
        mqc_error_set(&err, MQC_ERROR_PROTOCOL, 0,
                      "server %s speaks wire versions %d..%d; mqc needs 6 (MongoDB 3.6) or later",
                      c->host->host_and_port, caps.min_wire_version, caps.max_wire_version);
        conn_fail(c, &err);
        return;
    }
    c->events->hello(c->up, &caps);
    mqc_wire_reader_set_max(&c->reader, caps.limits.max_message_size);
    if (c->ctx->secure->auth_needed(c)) {
        set_state(c, MQC_CS_AUTH);
        c->ctx->secure->auth_start(c, reply);
        return;
    }
    mqc_conn_established(c);
}

void mqc_conn_established(mqc_conn_t *c)
{
    /* The hello (it carries the client's metadata) took 512 bytes where a find takes 256: the
     * first request sizes the buffer it keeps. */
    if (c->out.len == 0) mqc_buf_free(&c->out);
    ev_timer_stop(c->ctx->loop, &c->timer);
    set_state(c, MQC_CS_READY);
    c->ctx->stats[MQC_STAT_CONNS_OPENED]++;
    c->ctx->stats[MQC_STAT_CONNS_OPEN]++;
    c->events->established(c->up, c, NULL);
}

/* An internal request of the connection itself (hello, auth): OP_MSG body to admin-like db. */
void mqc_conn_send_internal(mqc_conn_t *c, const bson_t *cmd)
{
    c->request_id = mqc_wire_next_request_id(c->ctx->request_ids);
    mqc_wire_msg_begin(&c->out, c->request_id, 0);
    mqc_wire_msg_body(&c->out, cmd);
    mqc_wire_msg_end(&c->out);
    mqc_conn_send_buffered(c);
}

/* ---- requests of ops ------------------------------------------------------------------ */

void mqc_conn_request_send(mqc_conn_t *c, const mqc_conn_sink_t *sink, void *owner, int32_t rid, bool unacked)
{
    c->sink = sink;
    c->owner = owner;
    c->request_id = rid;
    c->request_unacked = unacked;
    set_state(c, MQC_CS_BUSY);
    if (unacked) {
        /* Request ids only grow (per client), so the ids sent here unacknowledged form a range;
         * a server that answers them anyway (FerretDB does) answers within it. */
        if (c->unacked_lo == 0 || rid < c->unacked_lo) c->unacked_lo = rid;
        c->unacked_hi = rid;
        timer_stop(c);
    } else {
        arm_reply_timer(c);
    }
    enter(c);
    /* mqc_conn_send_buffered, one call less per request. */
    mqc_error_t err;
    bool sent = conn_flush(c, &err);
    if (!sent) conn_fail(c, &err);
    if (sent && unacked && c->out.len == 0 && c->state == MQC_CS_BUSY) {
        c->owner = NULL;
        set_state(c, MQC_CS_READY);
        sink->on_sent(owner, c);
    }
    leave(c);
}

bool mqc_conn_request_unsent(const mqc_conn_t *c)
{
    /* out holds only the request in flight (it is reset after each whole write), so bytes still
     * in it mean the server never saw the message's end. */
    return c->out.len > 0 && c->out_off < c->out.len;
}

bool mqc_conn_done(mqc_conn_t *c)
{
    if (c->state == MQC_CS_BUSY) timer_stop(c);
    /* Idle from now on: it stops keeping ev_run alive (set_state); a reply left it READY but
     * still its owner's (conn_on_message). */
    if (c->state == MQC_CS_BUSY || c->state == MQC_CS_READY) set_state(c, MQC_CS_READY);
    c->owner = NULL;
    return c->state == MQC_CS_READY;
}

void mqc_conn_abandon(mqc_conn_t *c)
{
    c->owner = NULL;
    conn_shut(c);
}

static bool is_unacked_reply(const mqc_conn_t *c, int32_t response_to)
{
    return c->unacked_lo != 0 && response_to >= c->unacked_lo && response_to <= c->unacked_hi;
}

/* A message we did not ask for: the connection closes. Apart, so that every reply's way does
 * not carry an error in its frame. */
static __attribute__((noinline)) void conn_unexpected(mqc_conn_t *c, const mqc_wire_msg_t *msg, bool exhaust)
{
    mqc_error_t err;
    if (exhaust)
        mqc_error_set(&err, MQC_ERROR_PROTOCOL, 0, "%s sent moreToCome (exhaust) without being asked",
                      c->host->host_and_port);
    else
        mqc_error_set(&err, MQC_ERROR_PROTOCOL, 0,
                      "%s sent a reply to request %d, which is not in flight (expected %d): connection closed",
                      c->host->host_and_port, msg->hdr.response_to,
                      c->state == MQC_CS_READY ? 0 : c->request_id);
    conn_fail(c, &err);
}

/* One whole message arrived. */
static void conn_on_message(mqc_conn_t *c, const mqc_wire_msg_t *msg)
{
    if (c->state == MQC_CS_BUSY || c->state == MQC_CS_HELLO || c->state == MQC_CS_AUTH) {
        if (msg->hdr.response_to == c->request_id && !c->request_unacked) {
            if (msg->flags & MQC_MSG_MORE_TO_COME && msg->hdr.opcode == MQC_OP_MSG) {
                conn_unexpected(c, msg, true);
                return;
            }
            if (c->state == MQC_CS_HELLO) {
                state_hello_reply(c, &msg->body);
                return;
            }
            if (c->state == MQC_CS_AUTH) {
                c->ctx->secure->auth_reply(c, &msg->body);
                return;
            }
            void *owner = c->owner;
            timer_stop(c);
            c->owner = NULL;
            /* READY, but not idle yet: its owner releases it (mqc_conn_done), or sends the next
             * request on it, before we return; until then it keeps its hold on the loop, which
             * spares a find an ev_unref and an ev_ref. */
            c->state = MQC_CS_READY;
            c->sink->on_reply(owner, c, &msg->body);
            return;
        }
    }
    /* FerretDB answers even moreToCome requests: drop those replies. */
    if (is_unacked_reply(c, msg->hdr.response_to)) return;
    conn_unexpected(c, msg, false);
}

/* READY, BUSY, HELLO, AUTH: read what the socket has, then hand over whole messages. */
static void conn_read(mqc_conn_t *c)
{
    mqc_error_t err;
    for (;;) {
        size_t avail;
        uint8_t *p = mqc_wire_reader_space(&c->reader, READ_CHUNK, &avail);
        ssize_t n = mqc_stream_read(&c->stream, p, avail, &err);
        if (n > 0) {
            mqc_wire_reader_commit(&c->reader, (size_t) n);
            c->ctx->stats[MQC_STAT_BYTES_RECEIVED] += (uint64_t) n;
            if ((size_t) n < avail && (!c->stream.tls || !mqc_stream_has_buffered(&c->stream))) break;
            continue;
        }
        if (n == 0) { /* would block */
            /* A TLS read that needs the socket writable (key update): the write watcher calls back. */
            if (c->stream.read_wants_write && !ev_is_active(&c->wio)) ev_io_start(c->ctx->loop, &c->wio);
            break;
        }
        /* Closed or failed: first deliver complete messages already buffered (a reply may have
         * come just before the hang-up), then report. */
        mqc_wire_msg_t msg;
        mqc_error_t perr;
        while (c->state != MQC_CS_CLOSED && mqc_wire_reader_next(&c->reader, &msg, &perr) == MQC_WIRE_MSG)
            conn_on_message(c, &msg);
        if (c->state != MQC_CS_CLOSED) conn_fail(c, &err);
        return;
    }
    mqc_wire_msg_t msg;
    while (c->state != MQC_CS_CLOSED && c->state != MQC_CS_TLS) {
        mqc_wire_rc_t rc = mqc_wire_reader_next(&c->reader, &msg, &err);
        if (rc == MQC_WIRE_NEED_MORE) break;
        if (rc == MQC_WIRE_ERROR) {
            char m[sizeof err.message];
            snprintf(m, sizeof m, "%s", err.message);
            mqc_error_set(&err, MQC_ERROR_PROTOCOL, err.code, "bad message from %s: %s",
                          c->host->host_and_port, m);
            conn_fail(c, &err);
            return;
        }
        conn_on_message(c, &msg);
    }
}

/* ---- watchers ------------------------------------------------------------------------- */

static void on_rio(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_conn_t *c = w->data;
    mqc_conn_ctx_t *ctx = c->ctx;
    bool est = establishing(c);
    if (est && !mqc_conn_budget_left(ctx)) return; /* the next iteration: see the budget above */
    int64_t t0 = est ? mqc_now_us() : 0;
    enter(c);
    if (c->state == MQC_CS_TLS) c->ctx->secure->tls_step(c);
    else if (c->state != MQC_CS_CLOSED) {
        /* The loop's shared buffer, unless a reply read into it is still in use (its callback
         * runs the loop): a connection owns read memory only while a message is split. */
        mqc_wire_shared_t *sh = &ctx->rshared;
        bool lend = !sh->busy;
        sh->busy = true;
        mqc_wire_reader_offer(&c->reader, lend ? sh : NULL);
        conn_read(c);
        mqc_wire_reader_offer(&c->reader, NULL);
        if (lend) mqc_wire_reader_idle(&c->reader); /* nested reads may still use theirs */
        sh->busy = !lend;
    }
    /* Spent before leave: a destroy from a callback within frees the client (and ctx) there. */
    if (est) mqc_conn_budget_spend(ctx, t0);
    leave(c);
}

static void on_wio(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_conn_t *c = w->data;
    mqc_conn_ctx_t *ctx = c->ctx;
    bool est = establishing(c);
    if (est && !mqc_conn_budget_left(ctx)) return;
    int64_t t0 = est ? mqc_now_us() : 0;
    enter(c);
    if (c->state == MQC_CS_CONNECTING) state_connecting(c);
    else if (c->state == MQC_CS_TLS) c->ctx->secure->tls_step(c);
    else if (c->state != MQC_CS_CLOSED) {
        void *owner = c->owner;
        if (mqc_conn_send_buffered(c) && c->state == MQC_CS_BUSY && c->request_unacked && c->out.len == 0) {
            c->owner = NULL;
            set_state(c, MQC_CS_READY);
            c->sink->on_sent(owner, c);
        }
    }
    /* Spent before leave: a destroy from a callback within frees the client (and ctx) there. */
    if (est) mqc_conn_budget_spend(ctx, t0);
    leave(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_conn_t *c = w->data;
    mqc_error_t err;
    enter(c);
    if (c->fail) {
        err = *c->fail;
        free(c->fail);
        c->fail = NULL;
        conn_fail(c, &err);
    } else if (c->state == MQC_CS_BUSY) {
        mqc_error_set(&err, MQC_ERROR_TIMEOUT, MQC_TIMEOUT_SOCKET,
                      "no reply from %s within socketTimeoutMS (%lld ms): connection closed",
                      c->host->host_and_port, (long long) c->ctx->uri->socket_timeout_ms);
        err.labels |= MQC_LABEL_NETWORK;
        conn_fail(c, &err);
    } else if (c->state != MQC_CS_READY && c->state != MQC_CS_CLOSED) {
        mqc_error_set(&err, MQC_ERROR_TIMEOUT, MQC_TIMEOUT_CONNECT,
                      "connecting to %s timed out after %lld ms (in state %s)", c->host->host_and_port,
                      (long long) c->ctx->uri->connect_timeout_ms, mqc_conn_state_name(c->state));
        conn_fail(c, &err);
    }
    leave(c);
}
