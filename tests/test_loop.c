/* loop: overload (a bounded wait queue answers the excess at once), the loop never blocked while
 * many connections open (resolver thread, handshakes), and client destroy in the middle of
 * everything. Against stubd (tests/server/). See docs/library/reliability.md. */
#include <bson/bson.h>
#include <ev.h>
#include <math.h>

#include "chaos_stub.h"
#include "mqc.h"
#include "support/result.h"

typedef struct {
    uint64_t calls, ok, overloaded, other;
    uint8_t *per_op; /* callbacks per op index, when tracked */
} tally_t;

static void tally_cb(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op, (void) reply;
    tally_t *t = ud;
    t->calls++;
    if (!error) t->ok++;
    else if (error->domain == MQC_ERROR_OVERLOADED) t->overloaded++;
    else t->other++;
}

static mqc_client_t *loop_client(int port, const char *host, const char *extra)
{
    return tf_client_newf("mongodb://%s:%d/?serverSelectionTimeoutMS=5000&connectTimeoutMS=5000%s", host, port,
                          extra ? extra : "");
}

TEST("/loop/overload/million_pings_bounded", loop_overload)
{
    /* 10 connections, replies 50 ms late: at most ~200 pings/s are served, so nearly all of a
     * million submissions meet a full wait queue (1000) and must fail at once. */
    chaos_stub_t s;
    const char *const args[] = {"--delay-us", "50000", NULL};
    chaos_stub_start(&s, 0, args);
    mqc_client_t *c = loop_client(s.port, "127.0.0.1", "&maxPoolSize=10&maxPendingOperations=1000");
    struct ev_loop *loop = mqc_client_get_loop(c);
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    tally_t t = {0};
    const uint64_t total = 1000000, chunk = 10000;
    long long rss0 = chaos_rss_bytes(), rss_max = rss0;
    double t0 = chaos_now(), worst_answer = 0;
    for (uint64_t sent = 0; sent < total; sent += chunk) {
        uint64_t before = t.overloaded;
        for (uint64_t i = 0; i < chunk; i++) mqc_client_command(c, "admin", cmd, NULL, tally_cb, &t);
        /* "at once": one non-blocking loop iteration answers every excess submission */
        double a = chaos_now();
        ev_run(loop, EVRUN_NOWAIT);
        worst_answer = fmax(worst_answer, chaos_now() - a);
        uint64_t excess = t.overloaded - before;
        ASSERT_GE(excess, chunk - 1000); /* at most the queue's 1000 (and the pool's 10) got in */
        long long rss = chaos_rss_bytes();
        if (rss > rss_max) rss_max = rss;
    }
    double took = chaos_now() - t0;
    uint64_t pending = mqc_client_stat(c, MQC_STAT_OPS_PENDING);
    tf_note("1e6 pings in %.2f s: %llu overloaded at once, %llu pending (queue + pool), %llu ok so far; "
            "worst loop pass answering 10,000 submissions %.1f ms; RSS %lld -> max %lld KiB",
            took, (unsigned long long) t.overloaded, (unsigned long long) pending, (unsigned long long) t.ok,
            worst_answer * 1e3, rss0 / 1024, rss_max / 1024);
    ASSERT_LE(pending, 1010);
    mqc_client_destroy(c); /* the queued rest fail with SHUTDOWN */
    bson_destroy(cmd);
    chaos_stub_stop(&s);
    ASSERT_EQ(t.calls, total);
    ASSERT_EQ(t.ok + t.overloaded + t.other, total);
    ASSERT_GE(t.overloaded, total - 2000);
    /* bounded: a chunk's ops live until the loop pass; growth never scales with the million
     * (an op is a few hundred bytes: unbounded would be hundreds of MB) */
    if (CHAOS_RSS_CHECKED) ASSERT_LT(rss_max - rss0, 64ll << 20);
}

/* ---- the longest loop iteration ---- */

typedef struct {
    ev_prepare prepare;
    ev_check check;
    double woke;   /* when the last poll returned (check) */
    double worst;  /* longest stretch from a poll's return to the next poll */
    uint64_t iterations;
} itermeter_t;

static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
    (void) revents;
    itermeter_t *m = w->data;
    m->woke = ev_time();
    (void) loop;
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void) loop, (void) revents;
    itermeter_t *m = w->data;
    if (m->woke > 0) {
        double d = ev_time() - m->woke;
        if (d > m->worst) m->worst = d;
        m->iterations++;
    }
}

TEST("/loop/latency/thousand_connections", loop_latency)
{
    /* 1,000 pings at once, each 100 ms late at the server, on a pool of 1,000 that may open them
     * all at once, to "localhost" (so getaddrinfo runs on the resolver thread): 1,000 connects,
     * hellos and replies go through one loop. The bound, 50 ms: a loop pass that handles every
     * ready socket does O(ready) work of a few microseconds each (1,000 at most here, a few ms
     * even under ASan); 50 ms would mean something blocked (a synchronous resolve, a blocking
     * connect or a quadratic scan), yet leaves room for a shared, noisy 2-core machine. */
    chaos_stub_t s;
    const char *const args[] = {"--delay-us", "100000", NULL};
    chaos_stub_start(&s, 0, args);
    mqc_client_t *c = loop_client(s.port, "localhost", "&maxPoolSize=1000&maxConnecting=1000");
    struct ev_loop *loop = mqc_client_get_loop(c);
    itermeter_t m = {0};
    ev_prepare_init(&m.prepare, on_prepare);
    ev_check_init(&m.check, on_check);
    m.prepare.data = m.check.data = &m;
    ev_prepare_start(loop, &m.prepare);
    ev_check_start(loop, &m.check);
    ev_unref(loop), ev_unref(loop); /* the watchers must not keep the loop alive */
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    tally_t t = {0};
    double t0 = chaos_now();
    for (int i = 0; i < 1000; i++) mqc_client_command(c, "admin", cmd, NULL, tally_cb, &t);
    ASSERT(mqc_client_run_until_idle(c, 60));
    double took = chaos_now() - t0;
    uint64_t opened = mqc_client_stat(c, MQC_STAT_CONNS_OPENED);
    ev_ref(loop), ev_ref(loop);
    ev_prepare_stop(loop, &m.prepare);
    ev_check_stop(loop, &m.check);
    tf_note("1,000 pings on %llu new connections in %.2f s: %llu loop iterations, longest %.2f ms",
            (unsigned long long) opened, took, (unsigned long long) m.iterations, m.worst * 1e3);
    mqc_client_destroy(c);
    bson_destroy(cmd);
    chaos_stub_stop(&s);
    ASSERT_EQ(t.ok, 1000);
    ASSERT_GE(opened, 500); /* most pings needed a connection of their own */
    if (tf_time_bounds()) ASSERT_LT(m.worst * 1e3, 50); /* ms */
}

/* ---- destroy in the middle of everything ---- */

typedef struct {
    uint64_t op_calls, batch_calls, gather_calls, ops, cursors, gathers;
    mqc_cursor_t *cursors_list[16];
} mid_t;

static void mid_op_cb(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op, (void) reply, (void) error;
    ((mid_t *) ud)->op_calls++;
}

static void mid_batch_cb(mqc_cursor_t *cur, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    (void) docs, (void) n;
    mid_t *m = ud;
    m->batch_calls++;
    if (!error && mqc_cursor_more(cur)) mqc_cursor_next(cur); /* keep getMores in flight */
}

static void mid_gather_cb(mqc_gather_t *g, const mqc_error_t *error, void *ud)
{
    (void) g, (void) error;
    ((mid_t *) ud)->gather_calls++;
}

TEST("/loop/destroy/in_the_middle_of_everything", loop_destroy_middle)
{
    /* Replies 20 ms late; a second host name that resolves ("localhost") so connects and
     * resolutions are in flight too; pings, cursors with getMores, gathers, w:0 inserts. */
    chaos_stub_t s;
    const char *const args[] = {"--delay-us", "20000", "--docs", "50", NULL};
    chaos_stub_start(&s, 0, args);
    for (int round = 0; round < 4; round++) {
        mqc_client_t *c = loop_client(s.port, "localhost", "&maxPoolSize=20");
        mid_t m = {0};
        bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
        bson_t *w0 = BCON_NEW("writeConcern", "{", "w", BCON_INT32(0), "}");
        bson_t *bs = BCON_NEW("batchSize", BCON_INT32(5));
        bson_t filter = BSON_INITIALIZER;
        mqc_collection_t *coll = mqc_client_get_collection(c, "db", "coll");
        for (int i = 0; i < 40; i++, m.ops++) mqc_client_command(c, "admin", cmd, NULL, mid_op_cb, &m);
        for (int i = 0; i < 16; i++, m.cursors++)
            m.cursors_list[i] = mqc_collection_find(coll, &filter, bs, mid_batch_cb, &m);
        for (int i = 0; i < 20; i++, m.ops++) {
            bson_t *doc = BCON_NEW("x", BCON_INT32(i));
            mqc_collection_insert_one(coll, doc, w0, mid_op_cb, &m);
            bson_destroy(doc);
        }
        for (int g = 0; g < 5; g++, m.gathers++) {
            mqc_gather_t *ga = mqc_gather_new(c, g % 2 ? MQC_GATHER_FAIL_FAST : MQC_GATHER_ALL);
            for (int i = 0; i < 4; i++, m.ops++) mqc_gather_add(ga, mqc_client_command(c, "admin", cmd, NULL, mid_op_cb, &m));
            mqc_gather_start(ga, mid_gather_cb, &m);
        }
        /* let some of it progress (round 0: nothing at all), then destroy */
        double until = chaos_now() + 0.03 * round;
        while (chaos_now() < until) ev_run(mqc_client_get_loop(c), EVRUN_ONCE | EVRUN_NOWAIT);
        mqc_client_destroy(c);
        ASSERT_EQ(m.op_calls, m.ops);        /* every op: exactly one callback */
        ASSERT_EQ(m.gather_calls, m.gathers);
        ASSERT_GE(m.batch_calls, m.cursors); /* each cursor heard at least its end */
        uint64_t batches = m.batch_calls;
        for (int i = 0; i < 16; i++) mqc_cursor_destroy(m.cursors_list[i]); /* inert: no more callbacks */
        ASSERT_EQ(m.batch_calls, batches);
        mqc_collection_destroy(coll);
        bson_destroy(cmd), bson_destroy(w0), bson_destroy(bs);
        tf_note("round %d: %llu op callbacks, %llu batches, %llu gathers", round, (unsigned long long) m.op_calls,
                (unsigned long long) m.batch_calls, (unsigned long long) m.gather_calls);
    }
    chaos_stub_stop(&s);
}
