/* heartbeat: see heartbeat.h. A small state machine of its own (not conn.c's): a monitoring
 * connection never authenticates, never carries operations and must not touch the pool. Its
 * bytes go through lib/stream.c, as a pool connection's do. */
#include "heartbeat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { M_IDLE = 0, M_RESOLVING, M_CONNECTING, M_TLS, M_HELLO } mstate_t;

struct mqc_heartbeat {
    mqc_heartbeat_config_t cfg;
    struct ev_loop *loop;
    mstate_t state;
    mqc_stream_t stream;
    ev_io rio, wio;
    ev_timer timer;              /* IDLE: next check; otherwise: the check's deadline */
    mqc_wire_reader_t *reader;
    mqc_buf_t out;
    size_t out_off;
    struct addrinfo *addrs;      /* owned (freeaddrinfo) */
    struct addrinfo *ai;
    bool addrs_numeric;          /* from mqc_resolve_numeric: kept across checks */
    bool resolving;
    bool hello_ok;               /* the server answered helloOk: OP_MSG hello from now on */
    bool connected_once;         /* the connection carried a hello already (OP_MSG next) */
    bool retry_pending;          /* the failed check's immediate retry is running */
    bool check_requested;
    int32_t request_id;
    int64_t sent_us;
    int64_t last_check_us;       /* start of the last check, for minHeartbeatFrequencyMS */
    int handling;                /* > 0 while a handler of ours is on the stack */
    bool free_pending;           /* destroyed while handling: freed on the way out */
};

static void m_free(mqc_heartbeat_t *m);

/* Handler bracketing: a report may remove this very server (and destroy its monitor) or,
 * through an op's callback, the client: both are finished on the way out. */
static void m_enter(mqc_heartbeat_t *m)
{
    m->handling++;
    mqc_guard_enter(m->cfg.guard);
}

static void m_leave(mqc_heartbeat_t *m)
{
    mqc_guard_t *guard = m->cfg.guard;
    if (--m->handling == 0 && m->free_pending) m_free(m);
    mqc_guard_leave(guard);
}

/* ---- watchers that do not hold the loop ------------------------------------------------ */

static void io_on(mqc_heartbeat_t *m, ev_io *w)
{
    if (ev_is_active(w)) return;
    ev_io_start(m->loop, w);
    ev_unref(m->loop);
}

static void io_off(mqc_heartbeat_t *m, ev_io *w)
{
    if (!ev_is_active(w)) return;
    ev_ref(m->loop);
    ev_io_stop(m->loop, w);
}

static void timer_set(mqc_heartbeat_t *m, double after)
{
    if (ev_is_active(&m->timer)) {
        ev_ref(m->loop);
        ev_timer_stop(m->loop, &m->timer);
    }
    ev_timer_set(&m->timer, after > 0 ? after : 0., 0.);
    ev_timer_start(m->loop, &m->timer);
    ev_unref(m->loop);
}

static void timer_off(mqc_heartbeat_t *m)
{
    if (!ev_is_active(&m->timer)) return;
    ev_ref(m->loop);
    ev_timer_stop(m->loop, &m->timer);
}

/* ---- the connection -------------------------------------------------------------------- */

static int64_t heartbeat_ms(const mqc_heartbeat_t *m)
{
    int64_t ms = m->cfg.frequency_ms;
    return ms < MQC_MIN_HEARTBEAT_MS ? MQC_MIN_HEARTBEAT_MS : ms;
}

static void close_conn(mqc_heartbeat_t *m)
{
    io_off(m, &m->rio);
    io_off(m, &m->wio);
    mqc_stream_close(&m->stream);
    if (m->resolving) {
        mqc_resolver_cancel(m->cfg.resolver, m);
        m->resolving = false;
    }
    mqc_wire_reader_destroy(m->reader);
    m->reader = NULL;
    mqc_buf_reset(&m->out);
    m->out_off = 0;
    m->connected_once = false;
    m->hello_ok = false;
}

static void schedule(mqc_heartbeat_t *m)
{
    m->state = M_IDLE;
    int64_t now = mqc_now_us();
    int64_t next = m->last_check_us + heartbeat_ms(m) * 1000;
    if (m->check_requested) next = m->last_check_us + MQC_MIN_HEARTBEAT_MS * 1000;
    timer_set(m, (double) (next - now) / 1e6);
}

static void start_check(mqc_heartbeat_t *m);

/* The check failed: the connection goes, the server is reported Unknown, and a server that was
 * known is checked again at once (once), since one failure may be a dropped idle connection. */
static void check_failed(mqc_heartbeat_t *m, const mqc_error_t *error)
{
    bool was_known = m->cfg.known(m->cfg.ud, m->cfg.address);
    close_conn(m);
    /* Addresses of a name may have changed: resolve again. */
    if (!m->addrs_numeric && m->addrs) {
        freeaddrinfo(m->addrs);
        m->addrs = NULL;
    }
    mqc_sd_t sd;
    mqc_sd_init_unknown(&sd, m->cfg.address, error->message);
    sd.last_update_ms = mqc_now_us() / 1000;
    m->cfg.report(m->cfg.ud, &sd);
    mqc_sd_cleanup(&sd);
    if (m->free_pending) return;
    bool network = error->domain == MQC_ERROR_NETWORK || error->domain == MQC_ERROR_TIMEOUT ||
                   error->domain == MQC_ERROR_RESOLVE || error->domain == MQC_ERROR_TLS;
    if (network && was_known && !m->retry_pending) {
        m->retry_pending = true;
        start_check(m);
    } else {
        m->retry_pending = false;
        schedule(m);
    }
}

static void fail_now(mqc_heartbeat_t *m, uint32_t domain, int code, const char *what)
{
    mqc_error_t err;
    mqc_error_set(&err, domain, code, "%s: %s", m->cfg.address, what);
    check_failed(m, &err);
}

static void flush_out(mqc_heartbeat_t *m)
{
    mqc_error_t err;
    while (m->out_off < m->out.len) {
        ssize_t w = mqc_stream_write(&m->stream, m->out.data + m->out_off, m->out.len - m->out_off, &err);
        if (w < 0) {
            check_failed(m, &err);
            return;
        }
        if (w == 0) {
            io_on(m, &m->wio);
            return;
        }
        m->out_off += (size_t) w;
    }
    mqc_buf_reset(&m->out);
    m->out_off = 0;
    io_off(m, &m->wio);
}

static void send_hello(mqc_heartbeat_t *m)
{
    bson_t cmd = BSON_INITIALIZER;
    m->state = M_HELLO;
    m->request_id = mqc_wire_next_request_id(m->cfg.request_ids);
    if (!m->connected_once) {
        BSON_APPEND_INT32(&cmd, "isMaster", 1);
        BSON_APPEND_BOOL(&cmd, "helloOk", true);
        BSON_APPEND_DOCUMENT(&cmd, "client", m->cfg.metadata);
        mqc_wire_query_command(&m->out, m->request_id, "admin", &cmd);
    } else {
        BSON_APPEND_INT32(&cmd, m->hello_ok ? "hello" : "isMaster", 1);
        BSON_APPEND_UTF8(&cmd, "$db", "admin");
        mqc_wire_msg_begin(&m->out, m->request_id, 0);
        mqc_wire_msg_body(&m->out, &cmd);
        mqc_wire_msg_end(&m->out);
    }
    bson_destroy(&cmd);
    m->sent_us = mqc_now_us();
    io_on(m, &m->rio);
    flush_out(m);
}

static void on_reply(mqc_heartbeat_t *m, const bson_t *reply)
{
    bson_iter_t it;
    double rtt_ms = (double) (mqc_now_us() - m->sent_us) / 1000.0;
    m->connected_once = true;
    if (bson_iter_init_find(&it, reply, "helloOk") && bson_iter_as_bool(&it)) m->hello_ok = true;
    mqc_sd_t sd;
    mqc_sd_init_from_hello(&sd, m->cfg.address, reply, rtt_ms, mqc_now_us() / 1000);
    timer_off(m);
    bool failed = sd.type == MQC_SERVER_UNKNOWN;
    m->retry_pending = false;
    m->state = M_IDLE;
    m->cfg.report(m->cfg.ud, &sd);
    mqc_sd_cleanup(&sd);
    if (m->free_pending) return;
    if (failed) close_conn(m); /* an ok: 0 hello: start afresh next time */
    schedule(m);
}

static void read_some(mqc_heartbeat_t *m)
{
    mqc_error_t err;
    for (;;) {
        size_t avail;
        uint8_t *p = mqc_wire_reader_space(m->reader, 512, &avail);
        ssize_t n = mqc_stream_read(&m->stream, p, avail, &err);
        if (n < 0) {
            check_failed(m, &err);
            return;
        }
        if (n == 0) break;
        mqc_wire_reader_commit(m->reader, (size_t) n);
        if ((size_t) n < avail && !mqc_stream_has_buffered(&m->stream)) break;
    }
    mqc_wire_msg_t msg;
    mqc_wire_rc_t rc = mqc_wire_reader_next(m->reader, &msg, &err);
    if (rc == MQC_WIRE_NEED_MORE) return;
    if (rc == MQC_WIRE_ERROR) {
        check_failed(m, &err);
        return;
    }
    if (m->state != M_HELLO || msg.hdr.response_to != m->request_id) {
        fail_now(m, MQC_ERROR_PROTOCOL, 0, "unexpected message on the monitoring connection");
        return;
    }
    on_reply(m, &msg.body);
}

static void tls_step(mqc_heartbeat_t *m)
{
    int want = 0;
    mqc_error_t err;
    int rc = mqc_stream_tls_step(&m->stream, &want, &err);
    if (rc < 0) {
        check_failed(m, &err);
        return;
    }
    if (rc == 0) {
        if (want == MQC_TLS_WANT_WRITE) io_on(m, &m->wio);
        else io_off(m, &m->wio);
        io_on(m, &m->rio);
        return;
    }
    io_off(m, &m->wio);
    send_hello(m);
}

static void connected(mqc_heartbeat_t *m);

static void try_connect(mqc_heartbeat_t *m)
{
    int last = m->ai ? mqc_stream_connect(&m->stream, &m->ai) : ECONNREFUSED;
    if (last == 0) {
        m->state = M_CONNECTING;
        ev_io_set(&m->wio, m->stream.fd, EV_WRITE);
        ev_io_set(&m->rio, m->stream.fd, EV_READ);
        io_on(m, &m->wio);
        /* Connected already (loopback, unix): on with the check now. */
        if (mqc_stream_connect_done(&m->stream)) connected(m);
        return;
    }
    fail_now(m, MQC_ERROR_NETWORK, last, strerror(last));
}

static void connected(mqc_heartbeat_t *m)
{
    int soerr = mqc_stream_connected(&m->stream);
    if (soerr) {
        io_off(m, &m->wio);
        if (m->ai && m->ai->ai_next) {
            m->ai = m->ai->ai_next;
            try_connect(m);
        } else {
            fail_now(m, MQC_ERROR_NETWORK, soerr, strerror(soerr));
        }
        return;
    }
    io_off(m, &m->wio);
    m->reader = mqc_wire_reader_new(0);
    if (m->cfg.tls_ctx) {
        mqc_error_t err;
        m->state = M_TLS;
        if (!mqc_stream_tls_start(&m->stream, m->cfg.tls_ctx, m->cfg.host->host, &err)) {
            check_failed(m, &err);
            return;
        }
        tls_step(m);
        return;
    }
    send_hello(m);
}

static void on_resolved(void *ctx, struct addrinfo *res, int gai_code)
{
    mqc_heartbeat_t *m = ctx;
    m->resolving = false;
    m_enter(m);
    if (!res) {
        fail_now(m, MQC_ERROR_RESOLVE, gai_code, gai_strerror(gai_code));
    } else {
        m->addrs = res;
        m->ai = res;
        try_connect(m);
    }
    m_leave(m);
}

static void start_check(mqc_heartbeat_t *m)
{
    m->last_check_us = mqc_now_us();
    m->check_requested = false;
    int64_t ms = m->cfg.connect_timeout_ms > 0 ? m->cfg.connect_timeout_ms : 10000;
    timer_set(m, (double) ms / 1000.0);
    if (m->stream.fd >= 0 && m->reader) { /* the connection from the last check is still good */
        send_hello(m);
        return;
    }
    if (!m->addrs) {
        m->addrs = mqc_resolve_numeric(m->cfg.host->host, m->cfg.host->port);
        m->addrs_numeric = m->addrs != NULL;
    }
    if (m->addrs) {
        m->ai = m->addrs;
        try_connect(m);
        return;
    }
    m->state = M_RESOLVING;
    m->resolving = true;
    if (!mqc_resolver_lookup(m->cfg.resolver, m->cfg.host->host, m->cfg.host->port, on_resolved, m)) {
        m->resolving = false;
        fail_now(m, MQC_ERROR_RESOLVE, 0, "cannot start resolving");
    }
}

/* ---- watchers ------------------------------------------------------------------------- */

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void) loop;
    mqc_heartbeat_t *m = w->data;
    m_enter(m);
    if (m->state == M_CONNECTING && w == &m->wio) connected(m);
    else if (m->state == M_TLS) tls_step(m);
    else if (m->state == M_HELLO && w == &m->wio) flush_out(m);
    else if (m->state == M_HELLO || (revents & EV_READ)) {
        if (m->state == M_IDLE) { /* an idle monitoring connection only hears a hang-up */
            close_conn(m);
        } else {
            read_some(m);
        }
    }
    m_leave(m);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_heartbeat_t *m = w->data;
    /* A one-shot timer that fired is inactive: libev dropped its reference, give it back. */
    ev_ref(m->loop);
    m_enter(m);
    if (m->state == M_IDLE) {
        start_check(m);
    } else {
        char what[64];
        snprintf(what, sizeof what, "check timed out after %lld ms", (long long) m->cfg.connect_timeout_ms);
        fail_now(m, MQC_ERROR_TIMEOUT, MQC_TIMEOUT_CONNECT, what);
    }
    m_leave(m);
}

/* ---- the interface ---------------------------------------------------------------------- */

mqc_heartbeat_t *mqc_heartbeat_new(const mqc_heartbeat_config_t *cfg)
{
    mqc_heartbeat_t *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->cfg = *cfg;
    m->loop = cfg->loop;
    mqc_stream_init(&m->stream, cfg->address);
    mqc_buf_init(&m->out);
    ev_init(&m->rio, on_io);
    ev_init(&m->wio, on_io);
    ev_init(&m->timer, on_timer);
    m->rio.data = m->wio.data = m->timer.data = m;
    /* The first check starts from the loop, never inside the call that made the server. */
    m->state = M_IDLE;
    timer_set(m, 0.);
    return m;
}

void mqc_heartbeat_request_check(mqc_heartbeat_t *m)
{
    if (!m || m->state != M_IDLE) return;
    if (m->check_requested) return;
    m->check_requested = true;
    schedule(m);
}

void mqc_heartbeat_cancel_check(mqc_heartbeat_t *m)
{
    if (!m || m->state == M_IDLE) return;
    close_conn(m);
    m->retry_pending = false;
    schedule(m);
}

static void m_free(mqc_heartbeat_t *m)
{
    if (m->addrs) freeaddrinfo(m->addrs);
    mqc_buf_free(&m->out);
    free(m);
}

void mqc_heartbeat_destroy(mqc_heartbeat_t *m)
{
    if (!m || m->free_pending) return;
    close_conn(m);
    timer_off(m);
    m->free_pending = true;
    if (m->handling == 0) m_free(m);
}
