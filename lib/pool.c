/* pool: the connections of one server after the CMAP specification, on one libev loop.
 *
 * Lists: `available` is a stack (most recently used on top, so idle ones sink and age out),
 * `pending` holds connections being established, `in_use` checked-out ones. Waiters queue FIFO
 * in `waiters`; a checkout that must fail at once goes to `failed`, delivered by a zero timer
 * (`kick`), never from inside mqc_pool_checkout.
 *
 * Re-entrancy: waiter callbacks run user code that may check out, check in, clear, close or
 * destroy this pool. Every entry point brackets itself with enter()/leave(); destroy from inside
 * one marks the pool doomed (everything is closed and failed at once, but the memory stays until
 * the outermost leave()), and each loop that calls back re-reads the lists and stops once
 * doomed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

typedef enum { POOL_PAUSED, POOL_READY, POOL_CLOSED } pool_state_t;

/* mqc_pool_waiter_t.where */
enum { W_NONE = 0, W_QUEUED, W_FAILED, W_CLEARING };
/* mqc_pool_waiter_t.fail_kind */
enum { FAIL_CLOSED = 1, FAIL_PAUSED, FAIL_OVERLOADED, FAIL_OPEN, FAIL_BACKOFF };

/* Back-off after an establishment failure that a retry cannot fix soon (authentication, TLS):
 * no new connection until backoff_until_us, checkouts meanwhile fail at once with that error.
 * The delay doubles per consecutive failure and is forgotten on the first success. */
#define BACKOFF_MIN_US (100 * 1000LL)
#define BACKOFF_MAX_US (10 * 1000 * 1000LL)

struct mqc_pool {
    struct ev_loop *loop;
    char *server;
    mqc_pool_options_t opts;
    mqc_pool_connector_t connector;
    void *connector_ctx;
    /* The hooks events go to: own_monitor (mqc_pool_set_monitor), or the caller's own, read at
     * each event (mqc_pool_share_monitor); NULL once destroyed. */
    const mqc_monitor_t *monitor;
    void *const *monitor_ud;
    mqc_monitor_t own_monitor;
    void *own_monitor_ud;
    bool created_sent;   /* POOL_CREATED delivered, or too late for it */

    pool_state_t state;
    bool auto_ready;
    uint32_t generation;
    uint32_t next_id;

    mqc_link_t available, pending, in_use;
    size_t n_available, n_pending, n_in_use;
    mqc_link_t waiters;  /* FIFO */
    size_t n_waiters;
    mqc_link_t failed;   /* deferred failures, delivered by kick */
    mqc_link_t clearing; /* waiters being failed by clear/close */
    mqc_error_t last_clear;
    int64_t backoff_us;       /* the current delay, 0 when the last establishment succeeded */
    int64_t backoff_until_us; /* no establishment before this */
    mqc_error_t backoff_error;

    ev_timer kick;
    ev_timer maint;
    bool maint_on;

    int depth;
    bool destroying;
    bool doomed;
};

static void pump(mqc_pool_t *p, bool deliver);
static void clear(mqc_pool_t *p, const mqc_error_t *error, bool elsewhere);

/* ---- small helpers ----------------------------------------------------------------------- */

static void enter(mqc_pool_t *p) { p->depth++; }

static void pool_free(mqc_pool_t *p);

static void leave(mqc_pool_t *p)
{
    if (--p->depth == 0 && p->doomed) pool_free(p);
}

/* The pool's clock: the loop's (mqc_loop_us). Idle times (maxIdleTimeMS), waits for a
 * connection and the events' durations need milliseconds, and the timers that end the waits
 * count from the same base. A find checks a connection out and in: reading the real clock
 * there cost two clock reads per find. */
static int64_t now_us(const mqc_pool_t *p) { return mqc_loop_us(p->loop); }

static void emit_to(mqc_pool_t *p, mqc_pool_event_type_t type, const mqc_pconn_t *c, const char *reason,
                    int64_t since_us, const mqc_error_t *error)
{
    mqc_pool_event_t ev = {.type = type, .server = p->server, .connection_id = c ? c->id : 0,
                           .reason = reason, .duration_us = since_us ? now_us(p) - since_us : 0, .error = error};
    p->monitor->pool(&ev, *p->monitor_ud);
}

/* since_us: the start of what the event's duration measures (on the pool's clock), 0 for none.
 * Inline: a find emits two events, which go nowhere without a monitor. */
static inline void emit(mqc_pool_t *p, mqc_pool_event_type_t type, const mqc_pconn_t *c, const char *reason,
                        int64_t since_us, const mqc_error_t *error)
{
    if (type != MQC_POOL_CREATED) p->created_sent = true;
    if (p->monitor && p->monitor->pool) emit_to(p, type, c, reason, since_us, error);
}

static size_t total(const mqc_pool_t *p) { return p->n_available + p->n_pending + p->n_in_use; }

static bool backing_off(const mqc_pool_t *p) { return p->backoff_us > 0 && mqc_now_us() < p->backoff_until_us; }

static bool can_establish(const mqc_pool_t *p)
{
    return p->state == POOL_READY && !p->doomed && !backing_off(p) &&
           (p->opts.max_pool_size <= 0 || total(p) < (size_t) p->opts.max_pool_size) &&
           p->n_pending < (size_t) p->opts.max_connecting;
}

/* The reason an available connection must not be handed out, or NULL. */
static const char *perished(const mqc_pool_t *p, const mqc_pconn_t *c, int64_t now)
{
    if (c->generation != p->generation) return "stale";
    if (p->opts.max_idle_time_ms > 0 && now - c->last_used_us > p->opts.max_idle_time_ms * 1000) return "idle";
    return NULL;
}

/* Announces and closes a connection in no list and counted nowhere (the connector frees it). */
static void close_unlisted(mqc_pool_t *p, mqc_pconn_t *c, const char *reason, const mqc_error_t *error)
{
    emit(p, MQC_CONN_CLOSED, c, reason, 0, error);
    p->connector.close(c, reason, p->connector_ctx);
}

/* Takes c out of its list, announces and closes it. */
static void close_conn(mqc_pool_t *p, mqc_pconn_t *c, const char *reason, const mqc_error_t *error)
{
    mqc_list_remove(&c->link);
    switch (c->state) {
    case MQC_PCONN_PENDING: p->n_pending--; break;
    case MQC_PCONN_AVAILABLE: p->n_available--; break;
    case MQC_PCONN_IN_USE: p->n_in_use--; break;
    }
    close_unlisted(p, c, reason, error);
}

static void make_available(mqc_pool_t *p, mqc_pconn_t *c)
{
    c->state = MQC_PCONN_AVAILABLE;
    if (p->opts.max_idle_time_ms > 0) c->last_used_us = now_us(p);
    mqc_list_push_front(&p->available, &c->link);
    p->n_available++;
}

/* The top non-perished available connection (perished ones are closed on the way), or NULL. */
static mqc_pconn_t *pop_available(mqc_pool_t *p)
{
    int64_t now = p->opts.max_idle_time_ms > 0 ? now_us(p) : 0;
    while (!mqc_list_empty(&p->available)) {
        mqc_pconn_t *c = mqc_container_of(p->available.next, mqc_pconn_t, link);
        const char *why = perished(p, c, now);
        if (why) {
            close_conn(p, c, why, NULL);
            continue;
        }
        mqc_list_remove(&c->link);
        p->n_available--;
        return c;
    }
    return NULL;
}

static void mark_in_use(mqc_pool_t *p, mqc_pconn_t *c)
{
    c->state = MQC_PCONN_IN_USE;
    mqc_list_push_back(&p->in_use, &c->link);
    p->n_in_use++;
}

static bool start_establish(mqc_pool_t *p)
{
    mqc_pconn_t *c = p->connector.open(p, p->connector_ctx);
    if (!c) return false;
    c->pool = p;
    c->id = ++p->next_id;
    c->generation = p->generation;
    c->state = MQC_PCONN_PENDING;
    c->created_us = c->last_used_us = now_us(p);
    mqc_list_push_back(&p->pending, &c->link);
    p->n_pending++;
    emit(p, MQC_CONN_CREATED, c, NULL, 0, NULL);
    return true;
}

static void schedule_kick(mqc_pool_t *p)
{
    if (p->doomed || ev_is_active(&p->kick)) return;
    ev_timer_set(&p->kick, 0., 0.);
    ev_timer_start(p->loop, &p->kick);
}

/* ---- waiters ----------------------------------------------------------------------------- */

static void unlink_waiter(mqc_pool_t *p, mqc_pool_waiter_t *w)
{
    if (w->where == W_QUEUED) p->n_waiters--;
    if (w->where != W_NONE) mqc_list_remove(&w->link);
    w->where = W_NONE;
    ev_timer_stop(p->loop, &w->timer);
}

static void give(mqc_pool_t *p, mqc_pool_waiter_t *w, mqc_pconn_t *c)
{
    unlink_waiter(p, w);
    mark_in_use(p, c);
    emit(p, MQC_CONN_CHECKED_OUT, c, NULL, w->started_us, NULL);
    w->cb(w, c, NULL);
}

static void fail(mqc_pool_t *p, mqc_pool_waiter_t *w, const char *reason, const mqc_error_t *error)
{
    unlink_waiter(p, w);
    emit(p, MQC_CONN_CHECKOUT_FAILED, NULL, reason, w->started_us, error);
    w->cb(w, NULL, error);
}

static void defer_failure(mqc_pool_t *p, mqc_pool_waiter_t *w, int kind)
{
    w->fail_kind = (uint8_t) kind;
    w->where = W_FAILED;
    mqc_list_push_back(&p->failed, &w->link);
    schedule_kick(p);
}

static const char *failure_of(mqc_pool_t *p, int kind, mqc_error_t *err)
{
    switch (kind) {
    case FAIL_CLOSED:
        mqc_error_set(err, MQC_ERROR_SHUTDOWN, 0, "connection pool for %s is closed", p->server);
        return "poolClosed";
    case FAIL_PAUSED:
        mqc_error_set(err, MQC_ERROR_NETWORK, 0, "connection pool for %s is paused%s%s", p->server,
                      p->last_clear.message[0] ? " after: " : " (not ready yet)", p->last_clear.message);
        err->labels = MQC_LABEL_RETRYABLE_READ | MQC_LABEL_RETRYABLE_WRITE;
        return "connectionError";
    case FAIL_OVERLOADED:
        mqc_error_set(err, MQC_ERROR_OVERLOADED, 0, "connection pool for %s: %zu checkouts already wait (limit)",
                      p->server, p->n_waiters);
        return "overloaded";
    case FAIL_BACKOFF:
        *err = p->backoff_error;
        return "connectionError";
    default:
        mqc_error_set(err, MQC_ERROR_NETWORK, 0, "connection pool for %s could not open a connection", p->server);
        return "connectionError";
    }
}

/* Fails every waiter that was moved to p->clearing, in FIFO order. */
static void fail_clearing(mqc_pool_t *p, const char *reason, const mqc_error_t *error)
{
    while (!p->doomed && !mqc_list_empty(&p->clearing)) {
        mqc_pool_waiter_t *w = mqc_container_of(p->clearing.next, mqc_pool_waiter_t, link);
        fail(p, w, reason, error);
    }
}

static void move_waiters_to_clearing(mqc_pool_t *p, bool elsewhere)
{
    mqc_link_t *l;
    while ((l = mqc_list_pop_front(&p->waiters))) {
        mqc_pool_waiter_t *w = mqc_container_of(l, mqc_pool_waiter_t, link);
        w->where = W_CLEARING;
        w->cleared_elsewhere = elsewhere;
        mqc_list_push_back(&p->clearing, l);
    }
    p->n_waiters = 0;
}

static void on_waiter_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) loop;
    (void) revents;
    mqc_pool_t *p = t->data;
    mqc_pool_waiter_t *w = mqc_container_of(t, mqc_pool_waiter_t, timer);
    mqc_error_t err;
    enter(p);
    mqc_error_set(&err, MQC_ERROR_TIMEOUT, MQC_TIMEOUT_WAIT_QUEUE,
                  "timed out after %lld ms waiting for a connection to %s (%zu in use, %zu opening)",
                  (long long) ((now_us(p) - w->started_us) / 1000), p->server, p->n_in_use, p->n_pending);
    fail(p, w, "timeout", &err);
    leave(p);
}

static void on_kick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) loop;
    (void) revents;
    mqc_pool_t *p = t->data;
    enter(p);
    while (!p->doomed && !mqc_list_empty(&p->failed)) {
        mqc_pool_waiter_t *w = mqc_container_of(p->failed.next, mqc_pool_waiter_t, link);
        mqc_error_t err;
        const char *reason = failure_of(p, w->fail_kind, &err);
        fail(p, w, reason, &err);
    }
    if (!p->doomed) pump(p, true);
    leave(p);
}

/* Matches waiters with connections: hands available ones to the oldest waiters (deliver: only
 * where callbacks may run; otherwise a kick does it), opens connections for the waiters not
 * covered by pending ones, and fills the pool up to minPoolSize. */
static void pump(mqc_pool_t *p, bool deliver)
{
    if (p->state != POOL_READY || p->doomed) return;
    while (!mqc_list_empty(&p->waiters) && !mqc_list_empty(&p->available)) {
        if (!deliver) {
            schedule_kick(p);
            break;
        }
        mqc_pconn_t *c = pop_available(p);
        if (!c) break;
        give(p, mqc_container_of(p->waiters.next, mqc_pool_waiter_t, link), c);
        if (p->doomed || p->state != POOL_READY) return;
    }
    while (p->n_waiters > p->n_pending && can_establish(p))
        if (!start_establish(p)) {
            /* The connector could not even start: fail the oldest waiter rather than hang it. */
            mqc_pool_waiter_t *w = mqc_container_of(p->waiters.next, mqc_pool_waiter_t, link);
            unlink_waiter(p, w);
            defer_failure(p, w, FAIL_OPEN);
        }
    while (p->opts.min_pool_size > 0 && total(p) < (size_t) p->opts.min_pool_size && can_establish(p))
        if (!start_establish(p)) break;
}

/* ---- maintenance ------------------------------------------------------------------------- */

static void maint_stop(mqc_pool_t *p)
{
    if (!p->maint_on) return;
    ev_ref(p->loop); /* balance the ev_unref of maint_start */
    ev_timer_stop(p->loop, &p->maint);
    p->maint_on = false;
}

static void maint_start(mqc_pool_t *p)
{
    if (p->maint_on || p->opts.maintenance_interval_ms <= 0) return;
    if (p->opts.min_pool_size <= 0 && p->opts.max_idle_time_ms <= 0) return;
    double s = (double) p->opts.maintenance_interval_ms / 1000.0;
    ev_timer_set(&p->maint, s, s);
    ev_timer_start(p->loop, &p->maint);
    /* Upkeep alone must not keep the application's ev_run() from returning. */
    ev_unref(p->loop);
    p->maint_on = true;
}

static void on_maint(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) loop;
    (void) revents;
    mqc_pool_t *p = t->data;
    enter(p);
    if (p->state == POOL_READY) {
        /* The stack's bottom holds the longest idle: close perished ones from there. */
        int64_t now = now_us(p);
        while (!mqc_list_empty(&p->available)) {
            mqc_pconn_t *c = mqc_container_of(p->available.prev, mqc_pconn_t, link);
            const char *why = perished(p, c, now);
            if (!why) break;
            close_conn(p, c, why, NULL);
        }
        pump(p, true);
    }
    leave(p);
}

/* ---- public ------------------------------------------------------------------------------ */

void mqc_pool_options_default(mqc_pool_options_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_pool_size = 100;
    opts->min_pool_size = 0;
    opts->max_connecting = 2;
    opts->maintenance_interval_ms = 1000;
}

mqc_pool_t *mqc_pool_new(struct ev_loop *loop, const char *server, const mqc_pool_options_t *opts,
                         const mqc_pool_connector_t *connector, void *connector_ctx)
{
    mqc_pool_t *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->loop = loop;
    p->server = strdup(server ? server : "");
    if (!p->server) abort();
    if (opts) p->opts = *opts;
    else mqc_pool_options_default(&p->opts);
    if (p->opts.max_connecting < 1) p->opts.max_connecting = 2;
    if (p->opts.min_pool_size < 0) p->opts.min_pool_size = 0;
    if (p->opts.maintenance_interval_ms == 0) p->opts.maintenance_interval_ms = 1000;
    p->connector = *connector;
    p->connector_ctx = connector_ctx;
    p->state = POOL_PAUSED;
    mqc_list_init(&p->available);
    mqc_list_init(&p->pending);
    mqc_list_init(&p->in_use);
    mqc_list_init(&p->waiters);
    mqc_list_init(&p->failed);
    mqc_list_init(&p->clearing);
    ev_init(&p->kick, on_kick);
    p->kick.data = p;
    ev_init(&p->maint, on_maint);
    p->maint.data = p;
    return p;
}

void mqc_pool_set_monitor(mqc_pool_t *pool, const mqc_monitor_t *monitor, void *ud)
{
    if (monitor) pool->own_monitor = *monitor;
    else memset(&pool->own_monitor, 0, sizeof pool->own_monitor);
    pool->own_monitor_ud = ud;
    mqc_pool_share_monitor(pool, &pool->own_monitor, &pool->own_monitor_ud);
}

void mqc_pool_share_monitor(mqc_pool_t *pool, const mqc_monitor_t *monitor, void *const *ud)
{
    pool->monitor = monitor;
    pool->monitor_ud = ud;
    if (!pool->created_sent && monitor && monitor->pool) {
        pool->created_sent = true;
        emit(pool, MQC_POOL_CREATED, NULL, NULL, 0, NULL);
    }
}

const mqc_pool_options_t *mqc_pool_get_options(const mqc_pool_t *pool) { return &pool->opts; }

mqc_pconn_t *mqc_pool_checkout(mqc_pool_t *pool, mqc_pool_waiter_t *w)
{
    mqc_pool_t *p = pool;
    mqc_pconn_t *c = NULL;
    enter(p);
    w->link.prev = w->link.next = NULL;
    w->where = W_NONE;
    w->cleared_elsewhere = false;
    /* When the checkout started: for the events' durations and a wait's deadline, so only with a
     * monitor (or below, when the waiter waits). */
    if (!w->started_us && p->monitor && p->monitor->pool) w->started_us = now_us(p);
    emit(p, MQC_CONN_CHECKOUT_STARTED, NULL, NULL, 0, NULL);
    if (p->state == POOL_READY && !p->doomed && mqc_list_empty(&p->waiters) && (c = pop_available(p))) {
        /* At once (a find's way): its timer is never armed, so not set up either. */
        mark_in_use(p, c);
        emit(p, MQC_CONN_CHECKED_OUT, c, NULL, w->started_us, NULL);
        leave(p);
        return c;
    }
    ev_init(&w->timer, on_waiter_timeout);
    w->timer.data = p;
    if (p->state == POOL_CLOSED || p->doomed) {
        defer_failure(p, w, FAIL_CLOSED);
    } else if (p->state == POOL_PAUSED) {
        defer_failure(p, w, FAIL_PAUSED);
    } else if (backing_off(p)) {
        defer_failure(p, w, FAIL_BACKOFF);
    } else if (p->opts.max_waiters && p->n_waiters >= p->opts.max_waiters) {
        defer_failure(p, w, FAIL_OVERLOADED);
    } else {
        w->where = W_QUEUED;
        mqc_list_push_back(&p->waiters, &w->link);
        p->n_waiters++;
        int64_t now = now_us(p);
        if (!w->started_us) w->started_us = now;
        int64_t deadline = w->deadline_us;
        if (p->opts.wait_queue_timeout_ms > 0) {
            int64_t d = w->started_us + p->opts.wait_queue_timeout_ms * 1000;
            if (!deadline || d < deadline) deadline = d;
        }
        if (deadline) {
            double s = (double) (deadline - now) / 1e6;
            ev_timer_set(&w->timer, s > 0 ? s : 0., 0.);
            ev_timer_start(p->loop, &w->timer);
        }
        pump(p, false);
    }
    leave(p);
    return c;
}

void mqc_pool_cancel_waiter(mqc_pool_t *pool, mqc_pool_waiter_t *w, bool timed_out)
{
    if (!pool || w->where == W_NONE) return;
    unlink_waiter(pool, w);
    if (timed_out) emit(pool, MQC_CONN_CHECKOUT_FAILED, NULL, "timeout", w->started_us, NULL);
}

void mqc_pool_checkin(mqc_pool_t *pool, mqc_pconn_t *conn, bool healthy)
{
    mqc_pool_t *p = pool;
    if (conn->state != MQC_PCONN_IN_USE) return;
    enter(p);
    mqc_list_remove(&conn->link);
    p->n_in_use--;
    emit(p, MQC_CONN_CHECKED_IN, conn, NULL, 0, NULL);
    const char *why = p->state == POOL_CLOSED ? "poolClosed"
                      : !healthy ? "error"
                      : conn->generation != p->generation ? "stale" : NULL;
    if (why) close_unlisted(p, conn, why, NULL);
    else make_available(p, conn);
    /* Nobody waits and no minimum to keep (a find's check-in): pump would find nothing to do. */
    if (p->n_waiters || p->opts.min_pool_size > 0) pump(p, true);
    leave(p);
}

bool mqc_pool_can_pass(const mqc_pool_t *p, const mqc_pconn_t *conn)
{
    /* Check-in would put conn on top of the available stack (not idle: just used) and pump would
     * do nothing; checkout would pop it at once. */
    return conn->state == MQC_PCONN_IN_USE && p->state == POOL_READY && !p->doomed && !p->n_waiters &&
           conn->generation == p->generation && !(p->monitor && p->monitor->pool) &&
           (p->opts.min_pool_size <= 0 || total(p) >= (size_t) p->opts.min_pool_size);
}

void mqc_pool_conn_established(mqc_pool_t *pool, mqc_pconn_t *conn, const mqc_error_t *error)
{
    mqc_pool_t *p = pool;
    if (conn->state != MQC_PCONN_PENDING) return;
    enter(p);
    if (error) {
        /* SDAM: a network error before the handshake completes clears the pool (waiters fail).
         * conn stays listed meanwhile, so that a destroy from a callback closes it. */
        if (conn->generation == p->generation) {
            if (error->domain == MQC_ERROR_AUTH || error->domain == MQC_ERROR_TLS) {
                p->backoff_us = p->backoff_us ? p->backoff_us * 2 : BACKOFF_MIN_US;
                if (p->backoff_us > BACKOFF_MAX_US) p->backoff_us = BACKOFF_MAX_US;
                p->backoff_until_us = mqc_now_us() + p->backoff_us;
                p->backoff_error = *error;
            }
            clear(p, error, false);
        }
        if (!p->doomed) close_conn(p, conn, "error", error);
        if (!p->doomed) pump(p, true);
        leave(p);
        return;
    }
    emit(p, MQC_CONN_READY, conn, NULL, conn->created_us, NULL);
    p->backoff_us = 0;
    if (p->state == POOL_CLOSED) {
        close_conn(p, conn, "poolClosed", NULL);
    } else if (conn->generation != p->generation) {
        close_conn(p, conn, "stale", NULL);
    } else {
        mqc_list_remove(&conn->link);
        p->n_pending--;
        make_available(p, conn);
    }
    pump(p, true);
    leave(p);
}

void mqc_pool_conn_lost(mqc_pool_t *pool, mqc_pconn_t *conn)
{
    if (conn->state != MQC_PCONN_AVAILABLE) return;
    enter(pool);
    close_conn(pool, conn, "error", NULL);
    pump(pool, true);
    leave(pool);
}

/* elsewhere: not an establishment failure of this pool (mqc_pool_waiter_t.cleared_elsewhere) */
static void clear(mqc_pool_t *p, const mqc_error_t *error, bool elsewhere)
{
    if (p->state == POOL_CLOSED || p->doomed) return;
    enter(p);
    mqc_error_t err;
    if (error) err = *error;
    else mqc_error_set(&err, MQC_ERROR_NETWORK, 0, "connection pool for %s was cleared", p->server);
    p->last_clear = err;
    p->generation++;
    bool was_ready = p->state == POOL_READY;
    p->state = POOL_PAUSED;
    maint_stop(p);
    if (was_ready) emit(p, MQC_POOL_CLEARED, NULL, NULL, 0, &err);
    move_waiters_to_clearing(p, elsewhere);
    while (!mqc_list_empty(&p->available))
        close_conn(p, mqc_container_of(p->available.next, mqc_pconn_t, link), "stale", NULL);
    if (p->auto_ready) mqc_pool_ready(p);
    /* CMAP: the wait queue is cleared eagerly, every waiter failing with a PoolClearedError that
     * "MUST be considered a retryable error", so that operations retry at once (lib/op.c: once,
     * writes too, since nothing of theirs was sent). The error keeps the cause's domain, code and
     * message and gains both retryable labels. An auto_ready pool is ready again already, and
     * leaving its waiters queued would look cheaper, but CMAP gives no such exception, and it
     * would also retry, without counting, ops that must not be retried (a generic command, a
     * getMore): those fail here as the specifications say. */
    err.labels |= MQC_LABEL_RETRYABLE_READ | MQC_LABEL_RETRYABLE_WRITE;
    fail_clearing(p, "connectionError", &err);
    leave(p);
}

void mqc_pool_clear(mqc_pool_t *pool, const mqc_error_t *error)
{
    clear(pool, error, true);
}

void mqc_pool_close_idle(mqc_pool_t *pool)
{
    mqc_pool_t *p = pool;
    if (p->state == POOL_CLOSED || p->doomed || !p->n_available) return;
    enter(p);
    while (!mqc_list_empty(&p->available))
        close_conn(p, mqc_container_of(p->available.next, mqc_pconn_t, link), "stale", NULL);
    pump(p, false);
    leave(p);
}

void mqc_pool_ready(mqc_pool_t *pool)
{
    if (pool->state != POOL_PAUSED || pool->doomed) return;
    enter(pool);
    pool->state = POOL_READY;
    emit(pool, MQC_POOL_READY, NULL, NULL, 0, NULL);
    maint_start(pool);
    pump(pool, false);
    leave(pool);
}

void mqc_pool_set_auto_ready(mqc_pool_t *pool, bool on) { pool->auto_ready = on; }

void mqc_pool_close(mqc_pool_t *pool)
{
    mqc_pool_t *p = pool;
    if (p->state == POOL_CLOSED) return;
    enter(p);
    p->state = POOL_CLOSED;
    maint_stop(p);
    while (!mqc_list_empty(&p->available))
        close_conn(p, mqc_container_of(p->available.next, mqc_pconn_t, link), "poolClosed", NULL);
    emit(p, MQC_POOL_CLOSED, NULL, NULL, 0, NULL);
    move_waiters_to_clearing(p, false);
    mqc_error_t err;
    mqc_error_set(&err, MQC_ERROR_SHUTDOWN, 0, "connection pool for %s was closed", p->server);
    fail_clearing(p, "poolClosed", &err);
    leave(p);
}

void mqc_pool_destroy(mqc_pool_t *pool)
{
    mqc_pool_t *p = pool;
    if (!p || p->destroying) return;
    p->destroying = true;
    enter(p);
    mqc_pool_close(p);
    /* Waiters whose failure was deferred, and any a callback queued meanwhile, end now. */
    mqc_error_t err;
    mqc_error_set(&err, MQC_ERROR_SHUTDOWN, 0, "connection pool for %s was destroyed", p->server);
    mqc_link_t *l;
    while ((l = p->failed.next) != &p->failed || (l = p->clearing.next) != &p->clearing ||
           (l = p->waiters.next) != &p->waiters)
        fail(p, mqc_container_of(l, mqc_pool_waiter_t, link), "poolClosed", &err);
    /* Every connection goes, in use or not: the caller frees the connector's context next. */
    while (!mqc_list_empty(&p->pending))
        close_conn(p, mqc_container_of(p->pending.next, mqc_pconn_t, link), "poolClosed", NULL);
    while (!mqc_list_empty(&p->in_use))
        close_conn(p, mqc_container_of(p->in_use.next, mqc_pconn_t, link), "poolClosed", NULL);
    ev_timer_stop(p->loop, &p->kick);
    maint_stop(p);
    p->monitor = NULL; /* the hooks' user data may be freed after we return */
    p->doomed = true;
    leave(p);
}

static void pool_free(mqc_pool_t *p)
{
    /* Callbacks run by destroy may have checked out again: those fail here, still once each. */
    mqc_error_t err;
    mqc_error_set(&err, MQC_ERROR_SHUTDOWN, 0, "connection pool for %s was destroyed", p->server);
    p->depth++;
    mqc_link_t *l;
    while ((l = mqc_list_pop_front(&p->failed))) {
        mqc_pool_waiter_t *w = mqc_container_of(l, mqc_pool_waiter_t, link);
        w->where = W_NONE;
        ev_timer_stop(p->loop, &w->timer);
        w->cb(w, NULL, &err);
    }
    ev_timer_stop(p->loop, &p->kick);
    free(p->server);
    free(p);
}

bool mqc_pool_is_ready(const mqc_pool_t *pool) { return pool->state == POOL_READY && !pool->doomed; }
uint32_t mqc_pool_generation(const mqc_pool_t *pool) { return pool->generation; }
const char *mqc_pool_server(const mqc_pool_t *pool) { return pool->server; }
size_t mqc_pool_total(const mqc_pool_t *pool) { return total(pool); }
size_t mqc_pool_available(const mqc_pool_t *pool) { return pool->n_available; }
size_t mqc_pool_pending(const mqc_pool_t *pool) { return pool->n_pending; }
size_t mqc_pool_waiters(const mqc_pool_t *pool) { return pool->n_waiters; }
