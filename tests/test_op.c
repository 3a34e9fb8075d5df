/* Unit tests of an operation's life (lib/op.c) through the public API, against the scripted
 * server (tests/fakesrv): cancelled or timed out while it waits for a connection (then never
 * sent), submitted from a callback (never called back inside the submitting call, and sent on
 * the connection the callback's op let go of), a callback that runs before its op's connection
 * goes to the next op, and exactly one
 * callback for every operation in every state when the client is destroyed. The faults on the
 * wire are /faults/; retries /faults/retry/. */
#include <ev.h>
#include <unistd.h>

#include "server/fakesrv.h"
#include "mqc.h"
#include "support/result.h"
#include "tf.h"

/* Turns the loop without blocking until the server has seen n commands (a blocking turn could
 * wait for a reply and let the next request go). */
static void until_commands(mqc_client_t *c, fakesrv_t *s, int n)
{
    double t0 = tf_now();
    while (fakesrv_commands(s) < n && tf_now() - t0 < 10) {
        ev_run(mqc_client_get_loop(c), EVRUN_NOWAIT);
        usleep(500);
    }
    ASSERT_EQ(fakesrv_commands(s), n);
}

static mqc_op_t *ping(mqc_client_t *c, const bson_t *opts, tf_res_t *r)
{
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    mqc_op_t *op = mqc_client_command(c, "admin", cmd, opts, tf_res_cb, r);
    bson_destroy(cmd);
    ASSERT_NOT_NULL(op);
    return op;
}

TEST("/op/cancel/while_queued_is_never_sent", op_cancel_queued)
{
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 300);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=1"));
    tf_res_t a = {0}, b = {0};
    ping(c, NULL, &a);                  /* takes the only connection for 300 ms */
    mqc_op_t *opb = ping(c, NULL, &b);  /* waits for it */
    until_commands(c, s, 1);
    mqc_op_cancel(opb);
    ASSERT_EQ(b.calls, 0);              /* from the loop, not inside mqc_op_cancel */
    tf_client_wait_idle(c, 10);
    ASSERT_EQ(b.calls, 1);
    ASSERT_EQ(b.error.domain, MQC_ERROR_CANCELLED);
    ASSERT_LT(b.at, a.at);              /* at once, not after A's reply (300 ms later) */
    ASSERT_EQ(a.calls, 1);
    ASSERT_MSG(!a.failed, "%s", a.error.message);
    ASSERT_EQ(fakesrv_commands(s), 1);  /* B never reached the server */
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/op/timeout/while_queued_is_never_sent", op_timeout_queued)
{
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 600);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=1"));
    tf_res_t a = {0}, b = {0};
    bson_t *opts = BCON_NEW("timeoutMS", BCON_INT32(100));
    ping(c, NULL, &a);
    ping(c, opts, &b);
    tf_client_wait_idle(c, 10);
    ASSERT_EQ(b.calls, 1);
    ASSERT(b.failed);
    ASSERT_EQ(b.error.domain, MQC_ERROR_TIMEOUT);
    ASSERT_LT(b.at, a.at);              /* at its deadline (100 ms), not after A's reply (600 ms) */
    ASSERT_EQ(a.calls, 1);
    ASSERT(!a.failed);
    ASSERT_EQ(fakesrv_commands(s), 1);
    bson_destroy(opts);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

/* 200 pings, each submitted from the previous one's callback, on two connections. */
typedef struct {
    mqc_client_t *c;
    int done, target;
    bool in_submit, called_inside;
    int errors;
} chain_t;

static void chain_next(chain_t *ch);

static void on_chain(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    chain_t *ch = ud;
    if (ch->in_submit) ch->called_inside = true;
    ch->done++;
    if (error) ch->errors++;
    if (ch->done < ch->target) chain_next(ch);
}

static void chain_next(chain_t *ch)
{
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    ch->in_submit = true;
    mqc_client_command(ch->c, "admin", cmd, NULL, on_chain, ch);
    ch->in_submit = false;
    bson_destroy(cmd);
}

TEST("/op/callback/submitted_from_a_callback", op_chain)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=2"));
    chain_t ch = {.c = c, .target = 200};
    chain_next(&ch);
    chain_next(&ch);                    /* two chains in parallel */
    tf_client_wait_idle(c, 20);
    ASSERT(!ch.called_inside);
    ASSERT_EQ(ch.errors, 0);
    ASSERT_GE(ch.done, 200);
    ASSERT_LE(ch.done, 201);            /* each chain stops once 200 are done */
    ASSERT_EQ(fakesrv_commands(s), ch.done);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

/* The callback of an op that got its reply runs before its connection goes back to the pool:
 * the op waiting for that connection is sent after, not before, it. */
typedef struct {
    int started;                /* COMMAND_STARTED events so far */
    int started_in_cb;          /* as seen from A's callback */
    int calls;
} order_t;

static void on_order_command(const mqc_command_event_t *ev, void *ud)
{
    if (ev->type == MQC_COMMAND_STARTED) ((order_t *) ud)->started++;
}

static void on_order_a(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    (void) error;
    order_t *o = ud;
    o->started_in_cb = o->started;
    o->calls++;
}

TEST("/op/callback/runs_before_its_connection_is_reused", op_callback_before_release)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=1"));
    order_t o = {0};
    mqc_monitor_t m = {.command = on_order_command};
    mqc_client_set_monitor(c, &m, &o);
    tf_res_t b = {0};
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    mqc_client_command(c, "admin", cmd, NULL, on_order_a, &o); /* A takes the only connection */
    ping(c, NULL, &b);                                           /* B waits for it */
    tf_client_wait_idle(c, 10);
    ASSERT_EQ(o.calls, 1);
    ASSERT_EQ(b.calls, 1);
    ASSERT_MSG(!b.failed, "%s", b.error.message);
    ASSERT_EQ(o.started_in_cb, 1);      /* only A had been sent when A's callback ran */
    ASSERT_EQ(o.started, 2);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), 1);
    bson_destroy(cmd);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

/* An op submitted from a callback is sent once the callback's connection is back: it reuses
 * that connection instead of opening another, though the pool could open more. */
TEST("/op/callback/submitted_from_a_callback_reuses_the_connection", op_chain_reuse)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=10"));
    chain_t ch = {.c = c, .target = 50};
    chain_next(&ch);
    tf_client_wait_idle(c, 20);
    ASSERT(!ch.called_inside);
    ASSERT_EQ(ch.errors, 0);
    ASSERT_EQ(ch.done, 50);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), 1);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/op/destroy/every_state_gets_one_callback", op_destroy_states)
{
    /* Two in flight (a reply 1 s away), 298 waiting for a connection, and some not yet past
     * selection: destroying the client ends each with one MQC_ERROR_SHUTDOWN callback. */
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 1000);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=2"));
    enum { N = 300 };
    static tf_res_t r[N];
    for (int i = 0; i < N; i++) {
        r[i] = (tf_res_t) {0};
        ping(c, NULL, &r[i]);
    }
    until_commands(c, s, 2);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_OPS_PENDING), N);
    mqc_client_destroy(c);
    int shutdown = 0;
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(r[i].calls, 1);
        if (r[i].failed && r[i].error.domain == MQC_ERROR_SHUTDOWN) shutdown++;
    }
    ASSERT_EQ(shutdown, N);
    fakesrv_stop(s);
}
