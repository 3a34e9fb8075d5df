/* server: see server.h. Opening a connection: the pool asks (connector_open), the server
 * finds addresses (cached, numeric, or resolved once for every connection waiting for them),
 * and the connection connects within the client's establishment budget (lib/conn.c); what
 * the connection reports goes to the pool. */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#define ADDR_TTL_US (60 * 1000000LL)

static void server_set_addrs(mqc_server_t *s, struct addrinfo *res)
{
    if (s->addrs) freeaddrinfo(s->addrs);
    s->addrs = res;
    s->addrs_expire_us = mqc_now_us() + ADDR_TTL_US;
}

static struct ev_loop *loop_of(const mqc_server_t *s) { return s->env->conns->loop; }

/* ---- what a connection tells its owner -------------------------------------------------- */

static void conn_hello(void *up, const mqc_server_caps_t *caps)
{
    mqc_server_t *s = ((mqc_server_conn_t *) up)->server;
    s->caps = *caps;
    s->caps_known = true;
}

static void conn_established(void *up, mqc_conn_t *c, const mqc_error_t *error)
{
    (void) c;
    mqc_server_conn_t *sc = up;
    mqc_pool_conn_established(sc->server->pool, &sc->pc, error);
}

/* An idle connection died (the pool drops it), or one checked out broke with no request on it
 * (it goes back as broken). */
static void conn_lost(void *up, mqc_conn_t *c)
{
    (void) c;
    mqc_server_conn_t *sc = up;
    if (sc->pc.state == MQC_PCONN_AVAILABLE) mqc_pool_conn_lost(sc->server->pool, &sc->pc);
    else mqc_pool_checkin(sc->server->pool, &sc->pc, false);
}

static void conn_addrs_failed(void *up)
{
    mqc_server_t *s = ((mqc_server_conn_t *) up)->server;
    s->addrs_expire_us = s->addrs_expire_us == INT64_MAX ? INT64_MAX : 0;
}

static const mqc_conn_events_t conn_events = {conn_hello, conn_established, conn_lost, conn_addrs_failed};

void mqc_server_release(mqc_conn_t *c, bool healthy)
{
    mqc_server_conn_t *sc = c->up;
    bool ready = mqc_conn_done(c);
    mqc_pool_checkin(sc->server->pool, &sc->pc, healthy && ready);
}

mqc_pconn_t *mqc_server_pass(mqc_conn_t *c)
{
    mqc_server_conn_t *sc = c->up;
    /* READY with no owner: the reply came and nothing is in flight; it stays as it is (not made
     * idle: mqc_conn_done) for the request that follows at once. */
    if (c->state == MQC_CS_READY && !c->owner && mqc_pool_can_pass(sc->server->pool, &sc->pc)) return &sc->pc;
    mqc_server_release(c, true);
    return NULL;
}

/* ---- addresses, and the establishment budget -------------------------------------------- */

/* Starts (or, when resolution failed, fails) the connections waiting for s's addresses, within
 * the budget; the rest wait for s->connect_later. */
static void start_resolve_waiters(mqc_server_t *s, const mqc_error_t *failed)
{
    mqc_conn_ctx_t *ctx = s->env->conns;
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
        if (!failed && !mqc_conn_budget_left(ctx)) {
            mqc_list_push_front(&waiters, l);
            break;
        }
        int64_t t0 = mqc_now_us();
        mqc_conn_enter(c);
        if (!failed) mqc_conn_connect(c, s->addrs);
        else mqc_conn_fail(c, failed);
        mqc_conn_leave(c);
        mqc_conn_budget_spend(ctx, t0);
    }
    if (mqc_list_empty(&waiters)) return;
    while ((l = mqc_list_pop_front(&waiters))) mqc_list_push_back(&s->resolve_waiters, l);
    if (!ev_is_active(&s->connect_later)) {
        ev_timer_set(&s->connect_later, 0., 0.);
        ev_timer_start(loop_of(s), &s->connect_later);
    }
}

static void on_connect_later(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_server_t *s = w->data;
    mqc_guard_t *guard = s->env->conns->guard;
    mqc_guard_enter(guard);
    start_resolve_waiters(s, NULL);
    mqc_guard_leave(guard);
}

/* s's addresses are known: connect now, within the budget, else behind the connections
 * already queued (a pool clear's retried waiters can open hundreds in one callback). */
static void connect_or_queue(mqc_server_t *s, mqc_conn_t *c)
{
    mqc_conn_ctx_t *ctx = s->env->conns;
    if (mqc_list_empty(&s->resolve_waiters) && mqc_conn_budget_left(ctx)) {
        int64_t t0 = mqc_now_us();
        mqc_conn_connect(c, s->addrs);
        mqc_conn_budget_spend(ctx, t0);
        return;
    }
    mqc_list_push_back(&s->resolve_waiters, &c->rlink);
    if (!s->resolving && !ev_is_active(&s->connect_later)) {
        ev_timer_set(&s->connect_later, 0., 0.);
        ev_timer_start(loop_of(s), &s->connect_later);
    }
}

static void on_resolved(void *ctx, struct addrinfo *res, int gai_code)
{
    mqc_server_t *s = ctx;
    mqc_guard_t *guard = s->env->conns->guard;
    s->resolving = false;
    mqc_guard_enter(guard);
    mqc_error_t err;
    if (res) server_set_addrs(s, res);
    else
        mqc_error_set(&err, MQC_ERROR_RESOLVE, gai_code, "cannot resolve %s: %s", s->host.host,
                      gai_strerror(gai_code));
    start_resolve_waiters(s, res ? NULL : &err);
    mqc_guard_leave(guard);
}

/* ---- the pool's connector ------------------------------------------------------------------ */

static mqc_pconn_t *connector_open(mqc_pool_t *pool, void *ctx)
{
    (void) pool;
    mqc_server_t *s = ctx;
    mqc_server_conn_t *sc = calloc(1, sizeof *sc);
    if (!sc) abort();
    sc->server = s;
    mqc_conn_t *c = sc->conn = mqc_conn_new(s->env->conns, &s->host, s->caps_known ? s->caps.limits.max_message_size : 0,
                                            &conn_events, sc);
    if (s->host.is_unix || (s->addrs && s->addrs_expire_us > mqc_now_us())) {
        connect_or_queue(s, c);
        return &sc->pc;
    }
    if (!s->addrs) {
        struct addrinfo *num = mqc_resolve_numeric(s->host.host, s->host.port);
        if (num) {
            server_set_addrs(s, num);
            s->addrs_expire_us = INT64_MAX;
            connect_or_queue(s, c);
            return &sc->pc;
        }
    }
    mqc_list_push_back(&s->resolve_waiters, &c->rlink);
    if (!s->resolving) {
        s->resolving = true;
        if (!mqc_resolver_lookup(s->env->resolver, s->host.host, s->host.port, on_resolved, s)) {
            s->resolving = false;
            mqc_list_remove(&c->rlink);
            mqc_error_t err;
            mqc_error_set(&err, MQC_ERROR_RESOLVE, 0, "cannot start resolving %s", s->host.host);
            mqc_conn_fail(c, &err);
        }
    }
    return &sc->pc;
}

/* The pool's close: now, in any state. The request's owner, if any, was already told (or is
 * being). */
static void connector_close(mqc_pconn_t *pc, const char *reason, void *ctx)
{
    (void) reason;
    (void) ctx;
    mqc_server_conn_t *sc = (mqc_server_conn_t *) pc;
    mqc_conn_close(sc->conn);
    free(sc);
}

static const mqc_pool_connector_t connector = {connector_open, connector_close};

/* ---- life ------------------------------------------------------------------------------------ */

mqc_server_t *mqc_server_new(const mqc_server_env_t *env, const mqc_uri_host_t *host, bool monitored)
{
    const mqc_uri_t *uri = env->conns->uri;
    mqc_server_t *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->env = env;
    s->host = *host;
    mqc_list_init(&s->resolve_waiters);
    ev_init(&s->connect_later, on_connect_later);
    s->connect_later.data = s;
    mqc_wire_limits_default(&s->caps.limits);
    mqc_pool_options_t po;
    mqc_pool_options_default(&po);
    po.max_pool_size = uri->max_pool_size;
    po.min_pool_size = uri->min_pool_size;
    po.max_connecting = uri->max_connecting;
    po.max_idle_time_ms = uri->max_idle_time_ms;
    s->pool = mqc_pool_new(env->conns->loop, host->host_and_port, &po, &connector, s);
    mqc_pool_share_monitor(s->pool, env->pool_monitor, env->pool_monitor_ud);
    /* Without a monitor (a Single topology) a server is usable at once and a cleared pool
     * reopens at once; a monitored server's pool waits for its monitor (SDAM's POOL_READY). */
    if (!monitored) {
        mqc_pool_set_auto_ready(s->pool, true);
        mqc_pool_ready(s->pool);
    }
    return s;
}

void mqc_server_monitor(mqc_server_t *s, void (*report)(void *ud, const mqc_sd_t *sd),
                        bool (*known)(void *ud, const char *address), void *ud)
{
    const mqc_conn_ctx_t *cx = s->env->conns;
    mqc_heartbeat_config_t cfg = {.loop = cx->loop, .resolver = s->env->resolver, .host = &s->host,
                                  .address = s->address, .frequency_ms = cx->uri->heartbeat_frequency_ms,
                                  .connect_timeout_ms = cx->uri->connect_timeout_ms, .metadata = cx->metadata,
                                  .tls_ctx = cx->tls_ctx, .request_ids = cx->request_ids, .guard = cx->guard,
                                  .report = report, .known = known, .ud = ud};
    s->heartbeat = mqc_heartbeat_new(&cfg);
}

void mqc_server_destroy(mqc_server_t *s)
{
    if (!s) return;
    mqc_heartbeat_destroy(s->heartbeat);
    if (s->resolving) mqc_resolver_cancel(s->env->resolver, s);
    ev_timer_stop(loop_of(s), &s->connect_later);
    mqc_pool_destroy(s->pool);
    if (s->addrs) freeaddrinfo(s->addrs);
    free(s);
}
