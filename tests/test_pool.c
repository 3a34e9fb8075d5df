/* Unit tests of lib/pool.c with the scripted connector of tests/support/fakeconn: connections
 * "establish" after a zero (or given) delay on the loop, or fail when told to. */
#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "support/fakeconn.h"
#include "tf.h"

/* The scripted connector is tests/support/fakeconn (shared with the CMAP runner). */
typedef tf_fakeconn_t fake_t;

typedef struct {
    mqc_pool_waiter_t w;
    int calls;
    mqc_pconn_t *conn;
    mqc_error_t err;
    int order;
    void (*then)(mqc_pool_waiter_t *w);
} twaiter_t;

static bool in_checkout;
static int order_counter;
static mqc_pool_t *destroy_target;

static void on_w(mqc_pool_waiter_t *w, mqc_pconn_t *conn, const mqc_error_t *error)
{
    twaiter_t *t = mqc_container_of(w, twaiter_t, w);
    ASSERT_MSG(!in_checkout, "waiter callback ran inside mqc_pool_checkout");
    t->calls++;
    t->conn = conn;
    t->order = ++order_counter;
    if (error) t->err = *error;
    if (t->then) t->then(w);
}

static mqc_pconn_t *checkout(mqc_pool_t *p, twaiter_t *t)
{
    void (*then)(mqc_pool_waiter_t *) = t->then;
    memset(t, 0, sizeof *t);
    t->then = then;
    t->w.cb = on_w;
    in_checkout = true;
    mqc_pconn_t *c = mqc_pool_checkout(p, &t->w);
    in_checkout = false;
    if (c) {
        t->conn = c;
        t->calls = -100; /* marks "returned at once": a callback would make it visible */
    }
    return c;
}

static void on_wake(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) loop;
    (void) t;
    (void) revents;
}

/* Runs the loop for s seconds (a timer makes sure each turn wakes up in time). */
static void run_for(struct ev_loop *loop, double s)
{
    ev_now_update(loop);
    double end = ev_time() + s;
    ev_timer t;
    ev_timer_init(&t, on_wake, s, 0.);
    ev_timer_start(loop, &t);
    while (ev_time() < end) ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &t);
}

static void setup(fake_t *f, mqc_pool_options_t *o)
{
    memset(f, 0, sizeof *f);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->pool = mqc_pool_new(f->loop, "fake:27017", o, &tf_fakeconn_connector, f);
    order_counter = 0;
}

static void teardown(fake_t *f)
{
    mqc_pool_destroy(f->pool);
    ASSERT_EQ(f->live, 0);
    ev_loop_destroy(f->loop);
}

TEST("/pool/exactly_once", pool_exactly_once)
{
    fake_t f;
    mqc_pool_options_t o;
    mqc_pool_options_default(&o);
    o.max_pool_size = 2;
    setup(&f, &o);
    mqc_pool_ready(f.pool);
    twaiter_t w[10];
    memset(&w, 0, sizeof w);
    for (int i = 0; i < 10; i++) ASSERT_NULL(checkout(f.pool, &w[i]));
    ASSERT_EQ(mqc_pool_waiters(f.pool), 10);
    ASSERT_LE(mqc_pool_total(f.pool), 2);
    for (int round = 0; round < 10; round++) {
        run_for(f.loop, 0.005);
        for (int i = 0; i < 10; i++)
            if (w[i].calls == 1 && w[i].conn) {
                mqc_pconn_t *c = w[i].conn;
                w[i].conn = NULL;
                mqc_pool_checkin(f.pool, c, true);
            }
    }
    for (int i = 0; i < 10; i++) ASSERT_EQ(w[i].calls, 1);
    ASSERT_EQ(f.opened, 2);
    ASSERT_EQ(mqc_pool_available(f.pool), 2);
    teardown(&f);
}

TEST("/pool/immediate_and_lifo", pool_immediate_and_lifo)
{
    fake_t f;
    setup(&f, NULL);
    mqc_pool_ready(f.pool);
    twaiter_t a, b;
    memset(&a, 0, sizeof a); memset(&b, 0, sizeof b);
    ASSERT_NULL(checkout(f.pool, &a));
    ASSERT_NULL(checkout(f.pool, &b));
    run_for(f.loop, 0.005);
    ASSERT(a.calls == 1 && b.calls == 1 && a.conn && b.conn);
    uint32_t ida = a.conn->id, idb = b.conn->id;
    mqc_pool_checkin(f.pool, a.conn, true);
    mqc_pool_checkin(f.pool, b.conn, true);
    /* most recently checked in comes out first, at once */
    mqc_pconn_t *c = checkout(f.pool, &a);
    ASSERT_NOT_NULL(c);
    ASSERT_EQ(c->id, idb);
    mqc_pconn_t *d = checkout(f.pool, &b);
    ASSERT_NOT_NULL(d);
    ASSERT_EQ(d->id, ida);
    mqc_pool_checkin(f.pool, c, true);
    mqc_pool_checkin(f.pool, d, false); /* unhealthy: closed */
    ASSERT_STR_EQ(f.last_close_reason, "error");
    ASSERT_EQ(mqc_pool_total(f.pool), 1);
    teardown(&f);
}

TEST("/pool/cancel", pool_cancel)
{
    fake_t f;
    setup(&f, NULL);
    mqc_pool_ready(f.pool);
    twaiter_t a, b, c;
    memset(&a, 0, sizeof a); memset(&b, 0, sizeof b); memset(&c, 0, sizeof c);
    ASSERT_NULL(checkout(f.pool, &a));
    ASSERT_NULL(checkout(f.pool, &b));
    mqc_pool_cancel_waiter(f.pool, &a.w, false);
    mqc_pool_cancel_waiter(f.pool, &a.w, false); /* not queued any more: no-op */
    ASSERT_EQ(mqc_pool_waiters(f.pool), 1);
    run_for(f.loop, 0.005);
    ASSERT_EQ(a.calls, 0);
    ASSERT_EQ(b.calls, 1);
    /* a deferred failure can be withdrawn too */
    mqc_pool_clear(f.pool, NULL);
    ASSERT_NULL(checkout(f.pool, &c));
    mqc_pool_cancel_waiter(f.pool, &c.w, true);
    run_for(f.loop, 0.005);
    ASSERT_EQ(c.calls, 0);
    mqc_pool_checkin(f.pool, b.conn, true);
    ASSERT_STR_EQ(f.last_close_reason, "stale");
    teardown(&f);
}

static void destroy_then(mqc_pool_waiter_t *w)
{
    (void) w;
    mqc_pool_destroy(destroy_target);
}

static void checkout_again_then(mqc_pool_waiter_t *w)
{
    twaiter_t *t = mqc_container_of(w, twaiter_t, w);
    /* reuse the waiter from inside its own callback on a pool that is going away */
    if (t->calls == 1) {
        t->then = checkout_again_then;
        mqc_pconn_t *c = mqc_pool_checkout(destroy_target, &t->w);
        ASSERT_NULL(c);
    }
}

TEST("/pool/destroy_in_callback", pool_destroy_in_callback)
{
    fake_t f;
    mqc_pool_options_t o;
    mqc_pool_options_default(&o);
    o.max_pool_size = 1;
    setup(&f, &o);
    mqc_pool_ready(f.pool);
    destroy_target = f.pool;
    twaiter_t a, b, c;
    memset(&a, 0, sizeof a); memset(&b, 0, sizeof b); memset(&c, 0, sizeof c);
    a.then = destroy_then;
    b.then = checkout_again_then;
    c.then = NULL;
    ASSERT_NULL(checkout(f.pool, &a));
    ASSERT_NULL(checkout(f.pool, &b));
    ASSERT_NULL(checkout(f.pool, &c));
    run_for(f.loop, 0.005);
    ASSERT_EQ(a.calls, 1);
    ASSERT_NOT_NULL(a.conn); /* a got the connection, then destroyed the pool */
    ASSERT_EQ(b.calls, 2);   /* failed with SHUTDOWN, then its new checkout failed too */
    ASSERT_EQ(b.err.domain, MQC_ERROR_SHUTDOWN);
    ASSERT_EQ(c.calls, 1);
    ASSERT_EQ(c.err.domain, MQC_ERROR_SHUTDOWN);
    ASSERT_EQ(f.live, 0);
    ev_loop_destroy(f.loop);
}

TEST("/pool/max_connecting", pool_max_connecting)
{
    fake_t f;
    mqc_pool_options_t o;
    mqc_pool_options_default(&o);
    o.max_connecting = 2;
    setup(&f, &o);
    f.delay = 0.01;
    mqc_pool_ready(f.pool);
    twaiter_t w[6];
    memset(&w, 0, sizeof w);
    for (int i = 0; i < 6; i++) {
        ASSERT_NULL(checkout(f.pool, &w[i]));
        ASSERT_LE(mqc_pool_pending(f.pool), 2);
    }
    ASSERT_EQ(f.opened, 2);
    for (int i = 0; i < 20 && order_counter < 6; i++) {
        run_for(f.loop, 0.005);
        ASSERT_LE(mqc_pool_pending(f.pool), 2);
    }
    for (int i = 0; i < 6; i++) {
        ASSERT_EQ(w[i].calls, 1);
        ASSERT_EQ(w[i].order, i + 1); /* FIFO */
        mqc_pool_checkin(f.pool, w[i].conn, true);
    }
    ASSERT_EQ(f.opened, 6);
    teardown(&f);
}

TEST("/pool/fifo_fairness", pool_fifo_fairness)
{
    fake_t f;
    mqc_pool_options_t o;
    mqc_pool_options_default(&o);
    o.max_pool_size = 1;
    setup(&f, &o);
    mqc_pool_ready(f.pool);
    twaiter_t first, w[4];
    memset(&first, 0, sizeof first); memset(&w, 0, sizeof w);
    ASSERT_NULL(checkout(f.pool, &first));
    run_for(f.loop, 0.003);
    ASSERT_EQ(first.calls, 1);
    for (int i = 0; i < 4; i++) ASSERT_NULL(checkout(f.pool, &w[i]));
    mqc_pconn_t *held = first.conn;
    for (int i = 0; i < 4; i++) {
        mqc_pool_checkin(f.pool, held, true);
        ASSERT_EQ(w[i].calls, 1); /* handed over on check-in, to the oldest waiter */
        for (int j = i + 1; j < 4; j++) ASSERT_EQ(w[j].calls, 0);
        held = w[i].conn;
    }
    mqc_pool_checkin(f.pool, held, true);
    ASSERT_EQ(f.opened, 1);
    teardown(&f);
}

TEST("/pool/overloaded", pool_overloaded)
{
    fake_t f;
    mqc_pool_options_t o;
    mqc_pool_options_default(&o);
    o.max_pool_size = 1;
    o.max_waiters = 2;
    setup(&f, &o);
    mqc_pool_ready(f.pool);
    twaiter_t w[3];
    memset(&w, 0, sizeof w);
    for (int i = 0; i < 3; i++) ASSERT_NULL(checkout(f.pool, &w[i]));
    ASSERT_EQ(w[2].calls, 0); /* not from inside checkout */
    run_for(f.loop, 0.005);
    ASSERT_EQ(w[2].calls, 1);
    ASSERT_EQ(w[2].err.domain, MQC_ERROR_OVERLOADED);
    ASSERT_EQ(w[0].calls, 1);
    ASSERT_NOT_NULL(w[0].conn);
    ASSERT_EQ(w[1].calls, 0);
    mqc_pool_checkin(f.pool, w[0].conn, true);
    ASSERT_EQ(w[1].calls, 1);
    mqc_pool_checkin(f.pool, w[1].conn, true);
    teardown(&f);
}

TEST("/pool/clear_fails_waiters", pool_clear_fails_waiters)
{
    fake_t f;
    mqc_pool_options_t o;
    mqc_pool_options_default(&o);
    o.max_pool_size = 1;
    setup(&f, &o);
    mqc_pool_ready(f.pool);
    twaiter_t a, w[3], late;
    memset(&a, 0, sizeof a); memset(&w, 0, sizeof w); memset(&late, 0, sizeof late);
    ASSERT_NULL(checkout(f.pool, &a));
    run_for(f.loop, 0.003);
    for (int i = 0; i < 3; i++) ASSERT_NULL(checkout(f.pool, &w[i]));
    mqc_error_t cause;
    mqc_error_set(&cause, MQC_ERROR_NETWORK, 104, "connection reset by peer");
    uint32_t gen = mqc_pool_generation(f.pool);
    mqc_pool_clear(f.pool, &cause);
    ASSERT_EQ(mqc_pool_generation(f.pool), gen + 1);
    ASSERT(!mqc_pool_is_ready(f.pool));
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(w[i].calls, 1);
        ASSERT_EQ(w[i].err.code, 104);
        ASSERT_EQ(w[i].order, i + 2);
    }
    /* paused: a checkout fails from the loop */
    ASSERT_NULL(checkout(f.pool, &late));
    ASSERT_EQ(late.calls, 0);
    run_for(f.loop, 0.003);
    ASSERT_EQ(late.calls, 1);
    ASSERT_EQ(late.err.domain, MQC_ERROR_NETWORK);
    ASSERT_STR_CONTAINS(late.err.message, "paused");
    mqc_pool_checkin(f.pool, a.conn, true);
    ASSERT_STR_EQ(f.last_close_reason, "stale");
    teardown(&f);
}

TEST("/pool/auto_ready", pool_auto_ready)
{
    fake_t f;
    setup(&f, NULL);
    mqc_pool_set_auto_ready(f.pool, true);
    mqc_pool_ready(f.pool);
    twaiter_t a, b;
    memset(&a, 0, sizeof a); memset(&b, 0, sizeof b);
    ASSERT_NULL(checkout(f.pool, &a));
    f.fail_next = true; /* the establishment fails: the pool clears, a fails, and it is ready again */
    run_for(f.loop, 0.003);
    ASSERT_EQ(a.calls, 1);
    ASSERT_NULL(a.conn);
    ASSERT_EQ(a.err.code, 111);
    ASSERT(mqc_pool_is_ready(f.pool));
    ASSERT_EQ(mqc_pool_generation(f.pool), 1);
    ASSERT_NULL(checkout(f.pool, &b));
    run_for(f.loop, 0.003);
    ASSERT_EQ(b.calls, 1);
    ASSERT_NOT_NULL(b.conn);
    mqc_pool_checkin(f.pool, b.conn, true);
    teardown(&f);
}

TEST("/pool/wait_queue_timeout", pool_wait_queue_timeout)
{
    fake_t f;
    mqc_pool_options_t o;
    mqc_pool_options_default(&o);
    o.max_pool_size = 1;
    o.wait_queue_timeout_ms = 20;
    setup(&f, &o);
    mqc_pool_ready(f.pool);
    twaiter_t a, b, c;
    memset(&a, 0, sizeof a); memset(&b, 0, sizeof b); memset(&c, 0, sizeof c);
    ASSERT_NULL(checkout(f.pool, &a));
    ASSERT_NULL(checkout(f.pool, &b));
    memset(&c, 0, sizeof c);
    c.w.cb = on_w;
    c.w.deadline_us = mqc_loop_us(f.loop) + 5000; /* its own, shorter deadline */
    ASSERT_NULL(mqc_pool_checkout(f.pool, &c.w));
    run_for(f.loop, 0.010);
    ASSERT_EQ(c.calls, 1);
    ASSERT_EQ(c.err.domain, MQC_ERROR_TIMEOUT);
    ASSERT_EQ(b.calls, 0);
    run_for(f.loop, 0.030);
    ASSERT_EQ(b.calls, 1);
    ASSERT_EQ(b.err.domain, MQC_ERROR_TIMEOUT);
    ASSERT_EQ(b.err.code, MQC_TIMEOUT_WAIT_QUEUE);
    mqc_pool_checkin(f.pool, a.conn, true);
    teardown(&f);
}

TEST("/pool/idle_and_min_size", pool_idle_and_min_size)
{
    fake_t f;
    mqc_pool_options_t o;
    mqc_pool_options_default(&o);
    o.min_pool_size = 2;
    o.max_idle_time_ms = 10;
    o.maintenance_interval_ms = 5;
    setup(&f, &o);
    run_for(f.loop, 0.005);
    ASSERT_EQ(f.opened, 0); /* paused: no population */
    mqc_pool_ready(f.pool);
    run_for(f.loop, 0.005);
    ASSERT_EQ(mqc_pool_available(f.pool), 2);
    run_for(f.loop, 0.040);
    /* idle ones are closed and replaced to keep minPoolSize */
    ASSERT_GT(f.closed, 0);
    ASSERT_EQ(mqc_pool_total(f.pool), 2);
    teardown(&f);
}

TEST("/pool/close", pool_close)
{
    fake_t f;
    setup(&f, NULL);
    mqc_pool_ready(f.pool);
    twaiter_t a, b;
    memset(&a, 0, sizeof a); memset(&b, 0, sizeof b);
    ASSERT_NULL(checkout(f.pool, &a));
    run_for(f.loop, 0.003);
    mqc_pool_close(f.pool);
    ASSERT_NULL(checkout(f.pool, &b));
    run_for(f.loop, 0.003);
    ASSERT_EQ(b.calls, 1);
    ASSERT_EQ(b.err.domain, MQC_ERROR_SHUTDOWN);
    mqc_pool_checkin(f.pool, a.conn, true);
    ASSERT_STR_EQ(f.last_close_reason, "poolClosed");
    teardown(&f);
}

TEST("/pool/close_idle_keeps_the_rest", pool_close_idle)
{
    /* What a lone host does for one connection's error: the idle connections close ("stale"),
     * nothing else changes: the generation stays, the pool stays ready, the connection in use
     * comes back as usual, and the waiters keep waiting. */
    fake_t f;
    mqc_pool_options_t o;
    mqc_pool_options_default(&o);
    o.max_pool_size = 3;
    setup(&f, &o);
    mqc_pool_ready(f.pool);
    twaiter_t w[3], q;
    memset(&w, 0, sizeof w); memset(&q, 0, sizeof q);
    for (int i = 0; i < 3; i++) ASSERT_NULL(checkout(f.pool, &w[i]));
    run_for(f.loop, 0.005);
    for (int i = 0; i < 3; i++) ASSERT_NOT_NULL(w[i].conn);
    mqc_pool_checkin(f.pool, w[1].conn, true);
    mqc_pool_checkin(f.pool, w[2].conn, true);
    ASSERT_EQ(mqc_pool_available(f.pool), 2);
    uint32_t gen = mqc_pool_generation(f.pool);
    mqc_pool_close_idle(f.pool);
    ASSERT_EQ(f.closed, 2);
    ASSERT_STR_EQ(f.last_close_reason, "stale");
    ASSERT_EQ(mqc_pool_available(f.pool), 0);
    ASSERT_EQ(mqc_pool_generation(f.pool), gen);
    ASSERT(mqc_pool_is_ready(f.pool));
    /* a waiter queued now is not failed by it either */
    ASSERT_NULL(checkout(f.pool, &q));
    mqc_pool_close_idle(f.pool); /* nothing idle: nothing happens */
    ASSERT_EQ(q.calls, 0);
    mqc_pool_checkin(f.pool, w[0].conn, true);
    run_for(f.loop, 0.005);
    ASSERT_EQ(q.calls, 1);
    ASSERT_NOT_NULL(q.conn);
    ASSERT_EQ(f.closed, 2);
    mqc_pool_checkin(f.pool, q.conn, true);
    teardown(&f);
}

TEST("/pool/cleared_elsewhere", pool_cleared_elsewhere)
{
    /* A waiter failed by mqc_pool_clear (another connection's error, SDAM) is marked
     * cleared_elsewhere: it may go back through selection without using its retry. One failed
     * because a connection could not be made is not. */
    fake_t f;
    mqc_pool_options_t o;
    mqc_pool_options_default(&o);
    o.max_pool_size = 1;
    setup(&f, &o);
    mqc_pool_set_auto_ready(f.pool, true);
    mqc_pool_ready(f.pool);
    twaiter_t a, b, c;
    memset(&a, 0, sizeof a); memset(&b, 0, sizeof b); memset(&c, 0, sizeof c);
    ASSERT_NULL(checkout(f.pool, &a));
    run_for(f.loop, 0.003);
    ASSERT_NOT_NULL(a.conn);
    ASSERT_NULL(checkout(f.pool, &b));
    mqc_pool_clear(f.pool, NULL);
    ASSERT_EQ(b.calls, 1);
    ASSERT_NULL(b.conn);
    ASSERT(b.w.cleared_elsewhere);
    ASSERT(b.err.labels & MQC_LABEL_RETRYABLE_READ);
    mqc_pool_checkin(f.pool, a.conn, true); /* stale: closed */
    f.fail_next = true;
    ASSERT_NULL(checkout(f.pool, &c));
    run_for(f.loop, 0.003);
    ASSERT_EQ(c.calls, 1);
    ASSERT_NULL(c.conn);
    ASSERT_EQ(c.err.code, 111);
    ASSERT(!c.w.cleared_elsewhere);
    teardown(&f);
}
