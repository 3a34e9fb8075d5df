/* conn: one connection's state machine. Every way into and out of a state is in this file:
 * state_resolving, state_connecting, state_hello (and the TLS and AUTH steps in conn_secure.c),
 * state_ready/state_busy (reading replies), and conn_close. */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn_secure.h"

#define READ_CHUNK 512 /* the reader grows to a whole message once its length is known */
#define ADDR_TTL_US (60 * 1000000LL)

static void conn_fail(mqc_conn_t *c, const mqc_error_t *error);
static void free_addrinfo_copy(struct addrinfo *a);
static void conn_start_connect(mqc_conn_t *c);
static void conn_send_hello(mqc_conn_t *c);
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
        ev_unref(c->client->loop);
        c->weak = true;
    } else if (!idle && c->weak) {
        ev_ref(c->client->loop);
        c->weak = false;
    }
    c->state = s;
    c->state_since_us = mqc_now_us();
}

/* ---- handler bracketing: frees and client destroys wait until our handler is done ------- */

static void conn_free(mqc_conn_t *c)
{
    mqc_wire_reader_destroy(c->reader);
    mqc_buf_free(&c->out);
    free_addrinfo_copy(c->addrs);
    mqc_conn_secure_free(c);
    free(c);
}

static void enter(mqc_conn_t *c)
{
    c->handling++;
    mqc_client_enter(c->client);
}

static void leave(mqc_conn_t *c)
{
    mqc_client_t *client = c->client;
    if (--c->handling == 0 && c->free_pending) conn_free(c);
    mqc_client_leave(client);
}

/* ---- closing -------------------------------------------------------------------------- */

static void conn_shut(mqc_conn_t *c)
{
    struct ev_loop *loop = c->client->loop;
    if (c->state == MQC_CS_CLOSED) return;
    if (c->weak) {
        ev_ref(loop);
        c->weak = false;
    }
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->timer);
    if (c->state == MQC_CS_RESOLVING) mqc_list_remove(&c->rlink);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    bool was_open = c->state == MQC_CS_READY || c->state == MQC_CS_BUSY;
    set_state(c, MQC_CS_CLOSED);
    if (was_open) {
        c->client->stats[MQC_STAT_CONNS_CLOSED]++;
        c->client->stats[MQC_STAT_CONNS_OPEN]--;
    }
}

/* The pool's close: now, in any state. The op, if any, was already told (or is being). */
static void connector_close(mqc_pconn_t *pc, const char *reason, void *ctx)
{
    (void) reason;
    (void) ctx;
    mqc_conn_t *c = (mqc_conn_t *) pc;
    conn_shut(c);
    if (c->handling > 0) c->free_pending = true;
    else conn_free(c);
}

/* ---- opening: resolve, connect --------------------------------------------------------- */

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

static void server_set_addrs(mqc_server_t *s, struct addrinfo *res)
{
    if (s->addrs) freeaddrinfo(s->addrs);
    s->addrs = res;
    s->addrs_expire_us = mqc_now_us() + ADDR_TTL_US;
}

/* ---- establishment budget ------------------------------------------------------------
 * Each step of opening a connection costs CPU: socket and connect, the hello, SCRAM (10-20 us),
 * a TLS handshake (0.1-0.5 ms). Hundreds of connections reach the same step in the same loop
 * iteration (a name resolved for all of them, a burst of submissions with a large
 * maxConnecting), and 1,000 connections made one iteration take 17 ms, 500 TLS handshakes 23-53
 * ms. So establishment work has a budget per iteration; past it, a ready connection waits for
 * the next one. libev's io watchers are level-triggered, so a socket left ready fires again
 * without re-arming; connections not yet connecting (their name just resolved, or opened past
 * the budget) queue in s->resolve_waiters and continue from a zero timer. Every iteration runs
 * at least one step, so nothing starves. */
#define ESTABLISH_BUDGET_US 2000

bool mqc_conn_budget_left(mqc_client_t *client)
{
    unsigned it = ev_iteration(client->loop);
    if (it != client->est_iteration) {
        client->est_iteration = it;
        client->est_spent_us = 0;
    }
    return client->est_spent_us < ESTABLISH_BUDGET_US;
}

void mqc_conn_budget_spend(mqc_client_t *client, int64_t since_us)
{
    client->est_spent_us += mqc_now_us() - since_us;
}

static bool establishing(const mqc_conn_t *c)
{
    return c->state == MQC_CS_CONNECTING || c->state == MQC_CS_TLS || c->state == MQC_CS_HELLO ||
           c->state == MQC_CS_AUTH;
}

/* Starts (or, when resolution failed, fails) the connections waiting for s's addresses, within
 * the budget; the rest wait for s->connect_later. */
static void start_resolve_waiters(mqc_server_t *s, const mqc_error_t *failed)
{
    mqc_client_t *client = s->client;
    mqc_link_t waiters = s->resolve_waiters;
    if (mqc_list_empty(&s->resolve_waiters)) mqc_list_init(&waiters);
    else {
        waiters.next->prev = &waiters;
        waiters.prev->next = &waiters;
    }
    mqc_list_init(&s->resolve_waiters);
    mqc_link_t *l;
    while ((l = mqc_list_pop_front(&waiters))) {
        mqc_conn_t *c = mqc_container_of(l, mqc_conn_t, rlink);
        if (!failed && !mqc_conn_budget_left(client)) {
            mqc_list_push_front(&waiters, l);
            break;
        }
        int64_t t0 = mqc_now_us();
        enter(c);
        if (!failed) conn_start_connect(c);
        else conn_fail(c, failed);
        leave(c);
        mqc_conn_budget_spend(client, t0);
    }
    if (mqc_list_empty(&waiters)) return;
    while ((l = mqc_list_pop_front(&waiters))) mqc_list_push_back(&s->resolve_waiters, l);
    if (!ev_is_active(&s->connect_later)) {
        ev_timer_set(&s->connect_later, 0., 0.);
        ev_timer_start(client->loop, &s->connect_later);
    }
}

static void on_connect_later(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_server_t *s = w->data;
    mqc_client_enter(s->client);
    start_resolve_waiters(s, NULL);
    mqc_client_leave(s->client);
}

void mqc_conn_server_init(mqc_server_t *s)
{
    ev_init(&s->connect_later, on_connect_later);
    s->connect_later.data = s;
}

void mqc_conn_server_cleanup(mqc_server_t *s) { ev_timer_stop(s->client->loop, &s->connect_later); }

/* s's addresses are known: connect now, within the budget, else behind the connections
 * already queued (a pool clear's retried waiters can open hundreds in one callback). */
static void connect_or_queue(mqc_conn_t *c)
{
    mqc_server_t *s = c->server;
    if (mqc_list_empty(&s->resolve_waiters) && mqc_conn_budget_left(s->client)) {
        int64_t t0 = mqc_now_us();
        conn_start_connect(c);
        mqc_conn_budget_spend(s->client, t0);
        return;
    }
    mqc_list_push_back(&s->resolve_waiters, &c->rlink);
    if (!s->resolving && !ev_is_active(&s->connect_later)) {
        ev_timer_set(&s->connect_later, 0., 0.);
        ev_timer_start(s->client->loop, &s->connect_later);
    }
}

static void on_resolved(void *ctx, struct addrinfo *res, int gai_code)
{
    mqc_server_t *s = ctx;
    mqc_client_t *client = s->client;
    s->resolving = false;
    mqc_client_enter(client);
    mqc_error_t err;
    if (res) server_set_addrs(s, res);
    else
        mqc_error_set(&err, MQC_ERROR_RESOLVE, gai_code, "cannot resolve %s: %s", s->host.host,
                      gai_strerror(gai_code));
    start_resolve_waiters(s, res ? NULL : &err);
    mqc_client_leave(client);
}

static mqc_pconn_t *connector_open(mqc_pool_t *pool, void *ctx)
{
    mqc_server_t *s = ctx;
    mqc_client_t *client = s->client;
    mqc_conn_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->client = client;
    c->server = s;
    c->fd = -1;
    c->reader = mqc_wire_reader_new(s->caps_known ? s->caps.limits.max_message_size : 0);
    mqc_buf_init(&c->out);
    ev_init(&c->rio, on_rio);
    ev_init(&c->wio, on_wio);
    ev_init(&c->timer, on_timer);
    c->rio.data = c->wio.data = c->timer.data = c;
    (void) pool;

    /* The whole establishment (resolve, connect, TLS, hello, auth) is bounded by connectTimeoutMS. */
    int64_t ms = client->uri.connect_timeout_ms > 0 ? client->uri.connect_timeout_ms : 10000;
    ev_timer_set(&c->timer, (double) ms / 1000.0, 0.);
    ev_timer_start(client->loop, &c->timer);
    set_state(c, MQC_CS_RESOLVING);

    if (s->host.is_unix || (s->addrs && s->addrs_expire_us > mqc_now_us())) {
        connect_or_queue(c);
        return &c->pc;
    }
    if (!s->addrs) {
        struct addrinfo *num = mqc_resolve_numeric(s->host.host, s->host.port);
        if (num) {
            server_set_addrs(s, num);
            s->addrs_expire_us = INT64_MAX;
            connect_or_queue(c);
            return &c->pc;
        }
    }
    mqc_list_push_back(&s->resolve_waiters, &c->rlink);
    if (!s->resolving) {
        s->resolving = true;
        if (!mqc_resolver_lookup(client->resolver, s->host.host, s->host.port, on_resolved, s)) {
            s->resolving = false;
            mqc_list_remove(&c->rlink);
            mqc_error_t err;
            mqc_error_set(&err, MQC_ERROR_RESOLVE, 0, "cannot start resolving %s", s->host.host);
            conn_fail(c, &err);
        }
    }
    return &c->pc;
}

const mqc_pool_connector_t mqc_conn_connector = {connector_open, connector_close};

/* Tries c->ai, then the next addresses. Failure to even start is reported from the loop. */
static void conn_try_address(mqc_conn_t *c)
{
    mqc_server_t *s = c->server;
    mqc_error_t err;
    int last_errno = 0;
    while (c->ai || s->host.is_unix) {
        int fd;
        int rc;
        if (s->host.is_unix) {
            struct sockaddr_un sun;
            memset(&sun, 0, sizeof sun);
            sun.sun_family = AF_UNIX;
            if (strlen(s->host.host) >= sizeof sun.sun_path) {
                mqc_error_set(&err, MQC_ERROR_NETWORK, ENAMETOOLONG, "socket path too long: %s", s->host.host);
                conn_fail(c, &err);
                return;
            }
            strcpy(sun.sun_path, s->host.host);
            fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) break;
            rc = connect(fd, (struct sockaddr *) &sun, sizeof sun);
        } else {
            fd = socket(c->ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                last_errno = errno;
                c->ai = c->ai->ai_next;
                continue;
            }
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
            rc = connect(fd, c->ai->ai_addr, c->ai->ai_addrlen);
        }
        if (rc == 0 || errno == EINPROGRESS) {
            c->fd = fd;
            set_state(c, MQC_CS_CONNECTING);
            ev_io_set(&c->wio, fd, EV_WRITE);
            ev_io_set(&c->rio, fd, EV_READ);
            ev_io_start(c->client->loop, &c->wio);
            return;
        }
        last_errno = errno;
        close(fd);
        if (s->host.is_unix) break;
        c->ai = c->ai->ai_next;
    }
    if (!last_errno) last_errno = errno;
    mqc_error_set(&err, MQC_ERROR_NETWORK, last_errno, "connect to %s failed: %s",
                  s->host.host_and_port, strerror(last_errno));
    conn_fail(c, &err);
}

static void conn_start_connect(mqc_conn_t *c)
{
    if (!c->server->host.is_unix) {
        c->addrs = copy_addrinfo(c->server->addrs);
        c->ai = c->addrs;
    }
    conn_try_address(c);
}

/* CONNECTING: the socket became writable: connected, or failed (try the next address). */
static void state_connecting(mqc_conn_t *c)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
    if (soerr != 0) {
        ev_io_stop(c->client->loop, &c->wio);
        close(c->fd);
        c->fd = -1;
        if (c->ai && c->ai->ai_next) {
            c->ai = c->ai->ai_next;
            conn_try_address(c);
            return;
        }
        /* Addresses may have changed: resolve again next time. */
        c->server->addrs_expire_us = c->server->addrs_expire_us == INT64_MAX ? INT64_MAX : 0;
        mqc_error_t err;
        mqc_error_set(&err, MQC_ERROR_NETWORK, soerr, "connect to %s failed: %s",
                      c->server->host.host_and_port, strerror(soerr));
        conn_fail(c, &err);
        return;
    }
    ev_io_stop(c->client->loop, &c->wio);
    ev_io_start(c->client->loop, &c->rio);
    if (c->client->uri.tls) {
        set_state(c, MQC_CS_TLS);
        mqc_conn_tls_start(c);
        return;
    }
    conn_send_hello(c);
}

/* ---- reporting failures --------------------------------------------------------------- */

/* A failure during establishment goes to the pool (which closes us); while BUSY, to the op;
 * while READY, the pool drops us. Failures found inside connector_open are deferred to the loop
 * with a zero timer: the pool must not hear back from inside open(). */
static void conn_fail(mqc_conn_t *c, const mqc_error_t *error)
{
    mqc_pool_t *pool = c->server->pool;
    if (c->state == MQC_CS_CLOSED) return;
    if (c->handling == 0) {
        c->fail = *error;
        c->fail_pending = true;
        ev_timer_stop(c->client->loop, &c->timer);
        ev_timer_set(&c->timer, 0., 0.);
        ev_timer_start(c->client->loop, &c->timer);
        return;
    }
    switch (c->state) {
    case MQC_CS_RESOLVING:
    case MQC_CS_CONNECTING:
    case MQC_CS_TLS:
    case MQC_CS_HELLO:
    case MQC_CS_AUTH:
        c->client->stats[MQC_STAT_CONNS_FAILED]++;
        conn_shut(c);
        mqc_pool_conn_established(pool, &c->pc, error);
        break;
    case MQC_CS_READY:
        conn_shut(c);
        mqc_pool_conn_lost(pool, &c->pc);
        break;
    case MQC_CS_BUSY: {
        void *owner = c->owner;
        c->owner = NULL;
        conn_shut(c);
        if (owner) c->sink->on_error(owner, c, error);
        else mqc_pool_checkin(pool, &c->pc, false);
        break;
    }
    case MQC_CS_CLOSED:
        break;
    }
}

void mqc_conn_fail_now(mqc_conn_t *c, const mqc_error_t *error) { conn_fail(c, error); }

void mqc_conn_after_tls(mqc_conn_t *c) { conn_send_hello(c); }

/* ---- bytes in and out ------------------------------------------------------------------ */

/* Writes what is buffered. false (and error) when the connection broke. */
static bool conn_flush(mqc_conn_t *c, mqc_error_t *error)
{
    while (c->out_off < c->out.len) {
        ssize_t n = mqc_conn_io_write(c, c->out.data + c->out_off, c->out.len - c->out_off, error);
        if (n > 0) {
            c->out_off += (size_t) n;
            c->client->stats[MQC_STAT_BYTES_SENT] += (uint64_t) n;
            continue;
        }
        if (n == 0) { /* would block */
            if (!ev_is_active(&c->wio)) ev_io_start(c->client->loop, &c->wio);
            return true;
        }
        return false;
    }
    mqc_buf_reset(&c->out);
    c->out_off = 0;
    if (ev_is_active(&c->wio) && !mqc_conn_io_wants_write(c)) ev_io_stop(c->client->loop, &c->wio);
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

static void arm_reply_timer(mqc_conn_t *c)
{
    int64_t ms = c->client->uri.socket_timeout_ms;
    ev_timer_stop(c->client->loop, &c->timer);
    if (ms > 0) {
        ev_timer_set(&c->timer, (double) ms / 1000.0, 0.);
        ev_timer_start(c->client->loop, &c->timer);
    }
}

/* ---- HELLO ---------------------------------------------------------------------------- */

static void conn_send_hello(mqc_conn_t *c)
{
    bson_t cmd;
    bson_init(&cmd);
    BSON_APPEND_INT32(&cmd, "isMaster", 1);
    BSON_APPEND_BOOL(&cmd, "helloOk", true);
    BSON_APPEND_DOCUMENT(&cmd, "client", &c->client->metadata);
    mqc_conn_auth_add_to_hello(c, &cmd);
    set_state(c, MQC_CS_HELLO);
    c->request_id = mqc_client_next_request_id(c->client);
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

static void state_hello_reply(mqc_conn_t *c, const bson_t *reply)
{
    mqc_error_t err;
    mqc_server_caps_t caps;
    bson_iter_t it;
    if (!mqc_reply_ok(reply, &err)) {
        char msg[sizeof err.message];
        snprintf(msg, sizeof msg, "%s", err.message);
        mqc_error_set(&err, MQC_ERROR_SERVER, err.code, "handshake with %s failed: %s",
                      c->server->host.host_and_port, msg);
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
                      c->server->host.host_and_port, caps.min_wire_version, caps.max_wire_version);
        conn_fail(c, &err);
        return;
    }
    c->server->caps = caps;
    c->server->caps_known = true;
    mqc_wire_reader_set_max(c->reader, caps.limits.max_message_size);
    if (mqc_conn_auth_needed(c)) {
        set_state(c, MQC_CS_AUTH);
        mqc_conn_auth_start(c, reply);
        return;
    }
    mqc_conn_established(c);
}

void mqc_conn_established(mqc_conn_t *c)
{
    ev_timer_stop(c->client->loop, &c->timer);
    set_state(c, MQC_CS_READY);
    c->client->stats[MQC_STAT_CONNS_OPENED]++;
    c->client->stats[MQC_STAT_CONNS_OPEN]++;
    mqc_pool_conn_established(c->server->pool, &c->pc, NULL);
}

/* An internal request of the connection itself (hello, auth): OP_MSG body to admin-like db. */
void mqc_conn_send_internal(mqc_conn_t *c, const bson_t *cmd)
{
    c->request_id = mqc_client_next_request_id(c->client);
    mqc_wire_msg_begin(&c->out, c->request_id, 0);
    mqc_wire_msg_body(&c->out, cmd);
    mqc_wire_msg_end(&c->out);
    mqc_conn_send_buffered(c);
}

/* ---- requests of ops ------------------------------------------------------------------ */

bool mqc_conn_start_request(mqc_conn_t *c, const mqc_conn_sink_t *sink, void *owner, mqc_error_t *error)
{
    bool unacked = false;
    int32_t rid = mqc_client_next_request_id(c->client);
    size_t start = c->out.len;
    if (!sink->encode(owner, c, &c->out, rid, &unacked, error)) {
        c->out.len = start;
        return false;
    }
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
        ev_timer_stop(c->client->loop, &c->timer);
    } else {
        arm_reply_timer(c);
    }
    enter(c);
    if (mqc_conn_send_buffered(c) && unacked && c->out.len == 0 && c->state == MQC_CS_BUSY) {
        c->owner = NULL;
        set_state(c, MQC_CS_READY);
        sink->on_sent(owner, c);
    }
    leave(c);
    return true;
}

bool mqc_conn_request_unsent(const mqc_conn_t *c)
{
    /* out holds only the request in flight (it is reset after each whole write), so bytes still
     * in it mean the server never saw the message's end. */
    return c->out.len > 0 && c->out_off < c->out.len;
}

void mqc_conn_release(mqc_conn_t *c, bool healthy)
{
    if (c->state == MQC_CS_BUSY) {
        ev_timer_stop(c->client->loop, &c->timer);
        set_state(c, MQC_CS_READY);
    }
    c->owner = NULL;
    mqc_pool_checkin(c->server->pool, &c->pc, healthy && c->state == MQC_CS_READY);
}

void mqc_conn_abandon(mqc_conn_t *c)
{
    c->owner = NULL;
    conn_shut(c);
    mqc_pool_checkin(c->server->pool, &c->pc, false);
}

static bool is_unacked_reply(const mqc_conn_t *c, int32_t response_to)
{
    return c->unacked_lo != 0 && response_to >= c->unacked_lo && response_to <= c->unacked_hi;
}

/* One whole message arrived. */
static void conn_on_message(mqc_conn_t *c, const mqc_wire_msg_t *msg)
{
    mqc_error_t err;
    if (c->state == MQC_CS_BUSY || c->state == MQC_CS_HELLO || c->state == MQC_CS_AUTH) {
        if (msg->hdr.response_to == c->request_id && !c->request_unacked) {
            if (msg->flags & MQC_MSG_MORE_TO_COME && msg->hdr.opcode == MQC_OP_MSG) {
                mqc_error_set(&err, MQC_ERROR_PROTOCOL, 0, "%s sent moreToCome (exhaust) without being asked",
                              c->server->host.host_and_port);
                conn_fail(c, &err);
                return;
            }
            if (c->state == MQC_CS_HELLO) {
                state_hello_reply(c, &msg->body);
                return;
            }
            if (c->state == MQC_CS_AUTH) {
                mqc_conn_auth_reply(c, &msg->body);
                return;
            }
            void *owner = c->owner;
            ev_timer_stop(c->client->loop, &c->timer);
            c->owner = NULL;
            set_state(c, MQC_CS_READY);
            c->sink->on_reply(owner, c, &msg->body);
            return;
        }
    }
    /* FerretDB answers even moreToCome requests: drop those replies. */
    if (is_unacked_reply(c, msg->hdr.response_to)) return;
    mqc_error_set(&err, MQC_ERROR_PROTOCOL, 0,
                  "%s sent a reply to request %d, which is not in flight (expected %d): connection closed",
                  c->server->host.host_and_port, msg->hdr.response_to,
                  c->state == MQC_CS_READY ? 0 : c->request_id);
    conn_fail(c, &err);
}

/* READY, BUSY, HELLO, AUTH: read what the socket has, then hand over whole messages. */
static void conn_read(mqc_conn_t *c)
{
    mqc_error_t err;
    for (;;) {
        size_t avail;
        uint8_t *p = mqc_wire_reader_space(c->reader, READ_CHUNK, &avail);
        ssize_t n = mqc_conn_io_read(c, p, avail, &err);
        if (n > 0) {
            mqc_wire_reader_commit(c->reader, (size_t) n);
            c->client->stats[MQC_STAT_BYTES_RECEIVED] += (uint64_t) n;
            if ((size_t) n < avail && !mqc_conn_io_has_buffered(c)) break;
            continue;
        }
        if (n == 0) break; /* would block */
        /* Closed or failed: first deliver complete messages already buffered (a reply may have
         * come just before the hang-up), then report. */
        mqc_wire_msg_t msg;
        mqc_error_t perr;
        while (c->state != MQC_CS_CLOSED && mqc_wire_reader_next(c->reader, &msg, &perr) == MQC_WIRE_MSG)
            conn_on_message(c, &msg);
        if (c->state != MQC_CS_CLOSED) conn_fail(c, &err);
        return;
    }
    mqc_wire_msg_t msg;
    while (c->state != MQC_CS_CLOSED && c->state != MQC_CS_TLS) {
        mqc_wire_rc_t rc = mqc_wire_reader_next(c->reader, &msg, &err);
        if (rc == MQC_WIRE_NEED_MORE) break;
        if (rc == MQC_WIRE_ERROR) {
            char m[sizeof err.message];
            snprintf(m, sizeof m, "%s", err.message);
            mqc_error_set(&err, MQC_ERROR_PROTOCOL, err.code, "bad message from %s: %s",
                          c->server->host.host_and_port, m);
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
    mqc_client_t *client = c->client;
    bool est = establishing(c);
    if (est && !mqc_conn_budget_left(client)) return; /* the next iteration: see the budget above */
    int64_t t0 = est ? mqc_now_us() : 0;
    enter(c);
    if (c->state == MQC_CS_TLS) mqc_conn_tls_step(c);
    else if (c->state != MQC_CS_CLOSED) conn_read(c);
    leave(c);
    if (est) mqc_conn_budget_spend(client, t0);
}

static void on_wio(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_conn_t *c = w->data;
    mqc_client_t *client = c->client;
    bool est = establishing(c);
    if (est && !mqc_conn_budget_left(client)) return;
    int64_t t0 = est ? mqc_now_us() : 0;
    enter(c);
    if (c->state == MQC_CS_CONNECTING) state_connecting(c);
    else if (c->state == MQC_CS_TLS) mqc_conn_tls_step(c);
    else if (c->state != MQC_CS_CLOSED) {
        void *owner = c->owner;
        if (mqc_conn_send_buffered(c) && c->state == MQC_CS_BUSY && c->request_unacked && c->out.len == 0) {
            c->owner = NULL;
            set_state(c, MQC_CS_READY);
            c->sink->on_sent(owner, c);
        }
    }
    leave(c);
    if (est) mqc_conn_budget_spend(client, t0);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_conn_t *c = w->data;
    mqc_error_t err;
    enter(c);
    if (c->fail_pending) {
        c->fail_pending = false;
        err = c->fail;
        conn_fail(c, &err);
    } else if (c->state == MQC_CS_BUSY) {
        mqc_error_set(&err, MQC_ERROR_TIMEOUT, MQC_TIMEOUT_SOCKET,
                      "no reply from %s within socketTimeoutMS (%lld ms): connection closed",
                      c->server->host.host_and_port, (long long) c->client->uri.socket_timeout_ms);
        err.labels |= MQC_LABEL_NETWORK;
        conn_fail(c, &err);
    } else if (c->state != MQC_CS_READY && c->state != MQC_CS_CLOSED) {
        mqc_error_set(&err, MQC_ERROR_TIMEOUT, MQC_TIMEOUT_CONNECT,
                      "connecting to %s timed out after %lld ms (in state %s)", c->server->host.host_and_port,
                      (long long) c->client->uri.connect_timeout_ms, mqc_conn_state_name(c->state));
        conn_fail(c, &err);
    }
    leave(c);
}
