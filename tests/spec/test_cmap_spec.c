/* Spec tests of the connection pool: connection-monitoring-and-pooling/tests/cmap-format
 * (format: its README.md) against lib/pool.c with a scripted connector.
 *
 * Everything runs on one libev loop. A connection is established one loop turn after it is
 * opened. "Threads" are queues of operations: a checkout that waits keeps its thread busy until
 * the pool calls back, while the main thread goes on. "wait", "waitForThread" and "waitForEvent"
 * run the loop. Events are compared as the README says (ignore list, 42 = any value); the error
 * of the main thread is compared by type (messages differ between drivers). Cases that need a
 * server (integration style, failPoint) are skipped. */
#include <ev.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../tf.h"
#include "../support/fakeconn.h"
#include "pool.h"
#include "spec.h"

#define MAX_THREADS 16
#define MAX_LABELS 64
#define MAX_EVENTS 512

typedef struct runner runner_t;

typedef struct {
    char name[64];
    bson_t *ops;          /* array of pending operations, appended */
    uint32_t next_op, n_ops;
    bool busy;            /* a checkout waits */
    mqc_pool_waiter_t w;
    char label[64];       /* where the waiting checkout stores its connection */
    runner_t *r;
    mqc_error_t error;    /* the first error of this thread */
} sthread_t;

struct runner {
    struct ev_loop *loop;
    mqc_pool_t *pool;
    tf_fakeconn_t conns;  /* the scripted connector's state (tests/support/fakeconn) */
    bson_t *events[MAX_EVENTS];
    size_t n_events;
    bool recording;
    sthread_t threads[MAX_THREADS];
    size_t n_threads;
    struct {
        char name[64];
        mqc_pconn_t *conn;
    } labels[MAX_LABELS];
    size_t n_labels;
    mqc_error_t main_error;
    bool failed;
    char why[1024];
};

__attribute__((format(printf, 2, 3))) static void rfail(runner_t *r, const char *fmt, ...)
{
    va_list ap;
    if (r->failed) return;
    r->failed = true;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
}

/* ---- scripted connector (tests/support/fakeconn) --------------------------------------- */

/* A closed connection no longer answers to its label. */
static void on_conn_closed(tf_fakeconn_t *f, mqc_pconn_t *conn, void *ud)
{
    runner_t *r = ud;
    (void) f;
    for (size_t i = 0; i < r->n_labels; i++)
        if (r->labels[i].conn == conn) r->labels[i].conn = NULL;
}

/* ---- events ----------------------------------------------------------------------------- */

static const char *event_name(mqc_pool_event_type_t t)
{
    switch (t) {
    case MQC_POOL_CREATED: return "ConnectionPoolCreated";
    case MQC_POOL_READY: return "ConnectionPoolReady";
    case MQC_POOL_CLEARED: return "ConnectionPoolCleared";
    case MQC_POOL_CLOSED: return "ConnectionPoolClosed";
    case MQC_CONN_CREATED: return "ConnectionCreated";
    case MQC_CONN_READY: return "ConnectionReady";
    case MQC_CONN_CLOSED: return "ConnectionClosed";
    case MQC_CONN_CHECKOUT_STARTED: return "ConnectionCheckOutStarted";
    case MQC_CONN_CHECKOUT_FAILED: return "ConnectionCheckOutFailed";
    case MQC_CONN_CHECKED_OUT: return "ConnectionCheckedOut";
    case MQC_CONN_CHECKED_IN: return "ConnectionCheckedIn";
    }
    return "?";
}

static void on_event(const mqc_pool_event_t *ev, void *ud)
{
    runner_t *r = ud;
    if (!r->recording || r->n_events == MAX_EVENTS) return;
    bson_t *d = r->events[r->n_events++] = bson_new();
    BSON_APPEND_UTF8(d, "type", event_name(ev->type));
    BSON_APPEND_UTF8(d, "address", ev->server);
    switch (ev->type) {
    case MQC_POOL_CREATED: {
        const mqc_pool_options_t *o = mqc_pool_get_options(r->pool);
        bson_t opts;
        BSON_APPEND_DOCUMENT_BEGIN(d, "options", &opts);
        BSON_APPEND_INT32(&opts, "maxPoolSize", o->max_pool_size);
        BSON_APPEND_INT32(&opts, "minPoolSize", o->min_pool_size);
        BSON_APPEND_INT32(&opts, "maxConnecting", o->max_connecting);
        BSON_APPEND_INT64(&opts, "maxIdleTimeMS", o->max_idle_time_ms);
        BSON_APPEND_INT64(&opts, "waitQueueTimeoutMS", o->wait_queue_timeout_ms);
        bson_append_document_end(d, &opts);
        break;
    }
    case MQC_POOL_CLEARED: BSON_APPEND_BOOL(d, "interruptInUseConnections", false); break;
    case MQC_CONN_CREATED:
    case MQC_CONN_CHECKED_IN: BSON_APPEND_INT32(d, "connectionId", (int32_t) ev->connection_id); break;
    case MQC_CONN_READY:
    case MQC_CONN_CHECKED_OUT:
        BSON_APPEND_INT32(d, "connectionId", (int32_t) ev->connection_id);
        BSON_APPEND_DOUBLE(d, "duration", (double) ev->duration_us / 1000.0);
        break;
    case MQC_CONN_CLOSED:
        BSON_APPEND_INT32(d, "connectionId", (int32_t) ev->connection_id);
        BSON_APPEND_UTF8(d, "reason", ev->reason ? ev->reason : "");
        break;
    case MQC_CONN_CHECKOUT_FAILED:
        BSON_APPEND_UTF8(d, "reason", ev->reason ? ev->reason : "");
        BSON_APPEND_DOUBLE(d, "duration", (double) ev->duration_us / 1000.0);
        break;
    default: break;
    }
}

static size_t count_events(const runner_t *r, const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_events; i++)
        if (!strcmp(spec_str(r->events[i], "type"), type)) n++;
    return n;
}

/* ---- threads and operations --------------------------------------------------------------- */

static void set_label(runner_t *r, const char *label, mqc_pconn_t *conn)
{
    if (!label || !*label) return;
    for (size_t i = 0; i < r->n_labels; i++)
        if (!strcmp(r->labels[i].name, label)) {
            r->labels[i].conn = conn;
            return;
        }
    if (r->n_labels == MAX_LABELS) return;
    snprintf(r->labels[r->n_labels].name, sizeof r->labels[0].name, "%s", label);
    r->labels[r->n_labels++].conn = conn;
}

static mqc_pconn_t *get_label(runner_t *r, const char *label)
{
    for (size_t i = 0; label && i < r->n_labels; i++)
        if (!strcmp(r->labels[i].name, label)) return r->labels[i].conn;
    return NULL;
}

static void thread_continue(sthread_t *t);

static void on_thread_checkout(mqc_pool_waiter_t *w, mqc_pconn_t *conn, const mqc_error_t *error)
{
    sthread_t *t = mqc_container_of(w, sthread_t, w);
    t->busy = false;
    if (error && !t->error.domain) t->error = *error;
    if (conn) set_label(t->r, t->label, conn);
    thread_continue(t);
}

/* Runs an operation in thread t (NULL: the main thread). A main-thread checkout runs the loop
 * until it is served. */
static void run_until(runner_t *r, bool (*done)(runner_t *, const void *), const void *arg, double timeout_s);

static bool thread_idle(runner_t *r, const void *arg)
{
    (void) r;
    const sthread_t *t = arg;
    return !t->busy && t->next_op >= t->n_ops;
}

static void do_checkout(runner_t *r, sthread_t *t, const char *label)
{
    sthread_t *self = t;
    sthread_t main_thread;
    if (!self) {
        memset(&main_thread, 0, sizeof main_thread);
        main_thread.r = r;
        self = &main_thread;
    }
    memset(&self->w, 0, sizeof self->w);
    self->w.cb = on_thread_checkout;
    snprintf(self->label, sizeof self->label, "%s", label ? label : "");
    self->busy = true;
    mqc_pconn_t *c = mqc_pool_checkout(r->pool, &self->w);
    if (c) {
        self->busy = false;
        set_label(r, self->label, c);
        return;
    }
    if (t) return; /* the thread waits; its callback continues it */
    run_until(r, thread_idle, self, 10.0);
    if (self->busy) {
        mqc_pool_cancel_waiter(r->pool, &self->w, false);
        rfail(r, "main-thread checkOut never completed");
        return;
    }
    if (self->error.domain) r->main_error = self->error;
}

static void do_op(runner_t *r, sthread_t *t, const bson_t *op);

static void thread_continue(sthread_t *t)
{
    while (!t->busy && t->next_op < t->n_ops && !t->r->failed) {
        char key[16];
        bson_iter_t it;
        bson_t op;
        uint32_t len;
        const uint8_t *data;
        snprintf(key, sizeof key, "%u", t->next_op++);
        if (!bson_iter_init_find(&it, t->ops, key) || !BSON_ITER_HOLDS_DOCUMENT(&it)) continue;
        bson_iter_document(&it, &len, &data);
        bson_init_static(&op, data, len);
        do_op(t->r, t, &op);
    }
}

static sthread_t *find_thread(runner_t *r, const char *name)
{
    for (size_t i = 0; name && i < r->n_threads; i++)
        if (!strcmp(r->threads[i].name, name)) return &r->threads[i];
    return NULL;
}

static bool events_reached(runner_t *r, const void *arg)
{
    const bson_t *op = arg;
    return (int64_t) count_events(r, spec_str(op, "event")) >= spec_int(op, "count", 1);
}

static bool never(runner_t *r, const void *arg)
{
    (void) r;
    (void) arg;
    return false;
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void) loop;
    (void) t;
    (void) revents;
}

static void run_until(runner_t *r, bool (*done)(runner_t *, const void *), const void *arg, double timeout_s)
{
    ev_now_update(r->loop);
    double end = ev_now(r->loop) + timeout_s;
    ev_timer tick;
    ev_init(&tick, on_tick);
    while (!done(r, arg) && !r->failed) {
        ev_now_update(r->loop);
        double left = end - ev_now(r->loop);
        if (left <= 0) break;
        /* a timer bounds each turn so that the deadline is seen even when nothing happens */
        ev_timer_set(&tick, left < 0.01 ? left : 0.01, 0.);
        ev_timer_start(r->loop, &tick);
        ev_run(r->loop, EVRUN_ONCE);
        ev_timer_stop(r->loop, &tick);
    }
}

static void do_op(runner_t *r, sthread_t *t, const bson_t *op)
{
    const char *name = spec_str(op, "name");
    const char *tname = spec_str(op, "thread");
    if (!name) return;
    if (!t && tname) {
        sthread_t *th = find_thread(r, tname);
        if (!th) {
            rfail(r, "operation for unknown thread %s", tname);
            return;
        }
        bson_t tmp;
        char key[16];
        snprintf(key, sizeof key, "%u", th->n_ops++);
        bson_init(&tmp);
        bson_copy_to_excluding_noinit(op, &tmp, "thread", NULL);
        BSON_APPEND_DOCUMENT(th->ops, key, &tmp);
        bson_destroy(&tmp);
        thread_continue(th);
        return;
    }
    if (!strcmp(name, "start")) {
        const char *target = spec_str(op, "target");
        if (r->n_threads == MAX_THREADS || !target) return;
        sthread_t *th = &r->threads[r->n_threads++];
        memset(th, 0, sizeof *th);
        snprintf(th->name, sizeof th->name, "%s", target);
        th->ops = bson_new();
        th->r = r;
    } else if (!strcmp(name, "wait")) {
        run_until(r, never, NULL, (double) spec_int(op, "ms", 0) / 1000.0);
    } else if (!strcmp(name, "waitForThread")) {
        sthread_t *th = find_thread(r, spec_str(op, "target"));
        if (!th) return;
        run_until(r, thread_idle, th, 10.0);
        if (!thread_idle(r, th)) rfail(r, "thread %s did not finish in 10 s", th->name);
        else if (th->error.domain && !r->main_error.domain) r->main_error = th->error;
    } else if (!strcmp(name, "waitForEvent")) {
        double timeout = spec_has(op, "timeout") ? (double) spec_int(op, "timeout", 1000) / 1000.0 : 10.0;
        run_until(r, events_reached, op, timeout);
        if (!events_reached(r, op))
            rfail(r, "timed out waiting for %lld %s events", (long long) spec_int(op, "count", 1),
                  spec_str(op, "event") ? spec_str(op, "event") : "?");
    } else if (!strcmp(name, "checkOut")) {
        do_checkout(r, t, spec_str(op, "label"));
    } else if (!strcmp(name, "checkIn")) {
        mqc_pconn_t *c = get_label(r, spec_str(op, "connection"));
        if (!c) {
            rfail(r, "checkIn of unknown connection %s", spec_str(op, "connection") ? spec_str(op, "connection") : "?");
            return;
        }
        set_label(r, spec_str(op, "connection"), NULL);
        mqc_pool_checkin(r->pool, c, true);
    } else if (!strcmp(name, "clear")) {
        mqc_pool_clear(r->pool, NULL);
    } else if (!strcmp(name, "close")) {
        mqc_pool_close(r->pool);
    } else if (!strcmp(name, "ready")) {
        mqc_pool_ready(r->pool);
    } else {
        rfail(r, "unknown operation %s", name);
    }
}

/* ---- the test ----------------------------------------------------------------------------- */

static const char *error_type(const mqc_error_t *e)
{
    switch (e->domain) {
    case MQC_ERROR_TIMEOUT: return "WaitQueueTimeoutError";
    case MQC_ERROR_SHUTDOWN: return "PoolClosedError";
    case MQC_ERROR_NETWORK: return "PoolClearedError";
    default: return "ConnectionError";
    }
}

/* Skips (before anything is allocated) what this runner cannot run. */
static void check_runnable(const bson_t *c, mqc_pool_options_t *o)
{
    const char *style = spec_str(c, "style");
    if (spec_has(c, "failPoint") || spec_has(c, "runOn") || (style && strcmp(style, "unit") != 0))
        SKIP("needs a MongoDB server (integration test%s)", spec_has(c, "failPoint") ? " with a failPoint" : "");
    if (spec_int(c, "version", 1) != 1) SKIP("test format version %lld is not known", (long long) spec_int(c, "version", 1));
    bson_t ops, opts;
    bson_iter_t it;
    if (spec_sub(c, "operations", &ops) && bson_iter_init(&it, &ops))
        while (bson_iter_next(&it)) {
            bson_t op;
            uint32_t len;
            const uint8_t *data;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it)) continue;
            bson_iter_document(&it, &len, &data);
            bson_init_static(&op, data, len);
            if (spec_bool(&op, "interruptInUseConnections", false))
                SKIP("clear with interruptInUseConnections is not implemented by mqc's pool");
            static const char *const known[] = {"start", "wait", "waitForThread", "waitForEvent", "checkOut",
                                                "checkIn", "clear", "close", "ready"};
            const char *name = spec_str(&op, "name");
            bool ok = false;
            for (size_t i = 0; name && i < sizeof known / sizeof known[0]; i++) ok |= !strcmp(name, known[i]);
            if (!ok) SKIP("operation %s is not known to this runner", name ? name : "(none)");
        }
    mqc_pool_options_default(o);
    o->maintenance_interval_ms = 50;
    if (spec_sub(c, "poolOptions", &opts) && bson_iter_init(&it, &opts))
        while (bson_iter_next(&it)) {
            const char *k = bson_iter_key(&it);
            int64_t v = BSON_ITER_HOLDS_NUMBER(&it) ? bson_iter_as_int64(&it) : 0;
            if (!strcmp(k, "maxPoolSize")) o->max_pool_size = (int32_t) v;
            else if (!strcmp(k, "minPoolSize")) o->min_pool_size = (int32_t) v;
            else if (!strcmp(k, "maxConnecting")) o->max_connecting = (int32_t) v;
            else if (!strcmp(k, "maxIdleTimeMS")) o->max_idle_time_ms = v;
            else if (!strcmp(k, "waitQueueTimeoutMS")) o->wait_queue_timeout_ms = v;
            else if (!strcmp(k, "backgroundThreadIntervalMS")) o->maintenance_interval_ms = v < 0 ? -1 : v;
            else if (!strcmp(k, "appName")) continue;
            else SKIP("pool option %s is not implemented by mqc's pool", k);
        }
}

static bool ignored(const bson_t *ignore, const char *type)
{
    bson_iter_t it;
    if (!ignore || !bson_iter_init(&it, ignore)) return false;
    while (bson_iter_next(&it))
        if (BSON_ITER_HOLDS_UTF8(&it) && !strcmp(bson_iter_utf8(&it, NULL), type)) return true;
    return false;
}

static void compare(runner_t *r, const bson_t *c)
{
    bson_t expected_error, events, ignore;
    bool has_ignore = spec_sub(c, "ignore", &ignore);
    if (r->failed) return;
    if (spec_sub(c, "error", &expected_error)) {
        const char *type = spec_str(&expected_error, "type");
        if (!r->main_error.domain) {
            rfail(r, "expected a %s error, none was raised", type ? type : "");
            return;
        }
        if (type && strcmp(type, error_type(&r->main_error)) != 0) {
            rfail(r, "expected %s, got %s (%s)", type, error_type(&r->main_error), r->main_error.message);
            return;
        }
    } else if (r->main_error.domain) {
        rfail(r, "unexpected error: %s", r->main_error.message);
        return;
    }
    bson_iter_t it;
    if (!spec_sub(c, "events", &events) || !bson_iter_init(&it, &events)) return;
    size_t idx = 0, a = 0;
    while (bson_iter_next(&it)) {
        while (a < r->n_events && has_ignore && ignored(&ignore, spec_str(r->events[a], "type"))) a++;
        if (a >= r->n_events) {
            rfail(r, "expected event #%zu missing: only %zu were emitted", idx, a);
            return;
        }
        bson_t e;
        uint32_t len;
        const uint8_t *data;
        char why[512];
        bson_iter_document(&it, &len, &data);
        bson_init_static(&e, data, len);
        if (!spec_doc_equal(&e, r->events[a], true, false, why, sizeof why)) {
            char *je = bson_as_relaxed_extended_json(&e, NULL), *ja = bson_as_relaxed_extended_json(r->events[a], NULL);
            r->failed = true;
            snprintf(r->why, sizeof r->why, "event #%zu: %s (expected %s, got %s)", idx, why, je, ja);
            bson_free(je);
            bson_free(ja);
            return;
        }
        idx++;
        a++;
    }
}

static void run_cmap_case(void)
{
    const bson_t *c = spec_case()->doc;
    mqc_pool_options_t o;
    check_runnable(c, &o);

    runner_t *r = calloc(1, sizeof *r);
    r->loop = ev_loop_new(EVFLAG_AUTO);
    r->recording = true;
    r->conns = (tf_fakeconn_t) {.loop = r->loop, .on_close = on_conn_closed, .ud = r};
    r->pool = r->conns.pool = mqc_pool_new(r->loop, "localhost:27017", &o, &tf_fakeconn_connector, &r->conns);
    mqc_monitor_t m = {.pool = on_event};
    mqc_pool_set_monitor(r->pool, &m, r);

    bson_t ops;
    bson_iter_t it;
    if (spec_sub(c, "operations", &ops) && bson_iter_init(&it, &ops))
        while (!r->failed && !r->main_error.domain && bson_iter_next(&it)) {
            bson_t op;
            uint32_t len;
            const uint8_t *data;
            if (!BSON_ITER_HOLDS_DOCUMENT(&it)) continue;
            bson_iter_document(&it, &len, &data);
            bson_init_static(&op, data, len);
            do_op(r, NULL, &op);
        }
    compare(r, c);

    /* teardown: threads still waiting are withdrawn, then everything is freed */
    r->recording = false;
    for (size_t i = 0; i < r->n_threads; i++) {
        if (r->threads[i].busy) mqc_pool_cancel_waiter(r->pool, &r->threads[i].w, false);
        bson_destroy(r->threads[i].ops);
    }
    mqc_pool_destroy(r->pool);
    int live = r->conns.live;
    for (size_t i = 0; i < r->n_events; i++) bson_destroy(r->events[i]);
    ev_loop_destroy(r->loop);
    bool failed = r->failed;
    char why[sizeof r->why];
    memcpy(why, r->why, sizeof why);
    free(r);
    if (failed) FAIL("%s", why);
    ASSERT_EQ(live, 0);
}

TF_SUITE_INIT(cmap_spec_init)
{
    const char *root = spec_root();
    if (!root) return;
    spec_register_folder(root, "connection-monitoring-and-pooling/tests/cmap-format", "cmap", NULL, run_cmap_case);
}
