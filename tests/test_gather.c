/* Unit tests of lib/gather.c through the public API, against the scripted server (tests/fakesrv):
 * the three modes, nesting, cancellation, a gather never started, the rules of mqc_gather_add,
 * and hundreds of operations in flight. Every operation and every gather ends in exactly one
 * callback; an operation's own callback comes before its gather's. (Against a real server:
 * /client/gather/10000_finds.) */
#include <ev.h>

#include "server/fakesrv.h"
#include "mqc.h"
#include "support/result.h"
#include "tf.h"

typedef struct {
    int calls;
    size_t size, ok, errors;
    long winner;
    bool has_error;
    mqc_error_t error;
    int op_calls_before;        /* operations' own callbacks seen when the gather's came */
    int *op_calls;              /* the counter of those (the tests' tf_res_t callbacks) */
    bool inside_start;          /* set around mqc_gather_start: the callback must not come there */
    bool came_inside_start;
    int slots_consistent;       /* slots with an error, or else with a reply (a server's error
                                 * reply is kept with its error) */
    int slots_cancelled;
    double at;
} gres_t;

static void on_gather(mqc_gather_t *g, const mqc_error_t *error, void *ud)
{
    gres_t *r = ud;
    r->calls++;
    r->came_inside_start = r->inside_start;
    r->size = mqc_gather_size(g);
    r->ok = mqc_gather_ok_count(g);
    r->errors = mqc_gather_error_count(g);
    r->winner = mqc_gather_winner(g);
    r->has_error = error != NULL;
    if (error) r->error = *error;
    if (r->op_calls) r->op_calls_before = *r->op_calls;
    for (size_t i = 0; i < r->size; i++) {
        const bson_t *reply = mqc_gather_reply(g, i);
        const mqc_error_t *e = mqc_gather_error(g, i);
        if (e || reply) r->slots_consistent++;
        if (e && e->domain == MQC_ERROR_CANCELLED) r->slots_cancelled++;
    }
    r->at = tf_now();
}

/* Every op's callback goes through one tally, so the gather can see how many came before it. */
typedef struct {
    int calls;
    int ok, errors, cancelled;
} ops_t;

static void on_op(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    ops_t *o = ud;
    o->calls++;
    if (!error) o->ok++;
    else if (error->domain == MQC_ERROR_CANCELLED) o->cancelled++, o->errors++;
    else o->errors++;
}

static mqc_op_t *ping(mqc_client_t *c, ops_t *o)
{
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    mqc_op_t *op = mqc_client_command(c, "admin", cmd, NULL, on_op, o);
    bson_destroy(cmd);
    ASSERT_NOT_NULL(op);
    return op;
}

static mqc_op_t *start(mqc_gather_t *g, gres_t *r)
{
    r->inside_start = true;
    mqc_op_t *op = mqc_gather_start(g, on_gather, r);
    r->inside_start = false;
    return op;
}

TEST("/gather/all/mixed_results", gather_all_mixed)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_set_mode(s, FAKE_ERROR, 59, 2);     /* the first two commands fail, then all succeed */
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=1"));
    ops_t o = {0};
    gres_t r = {.op_calls = &o.calls};
    mqc_gather_t *g = mqc_gather_new(c, MQC_GATHER_ALL);
    for (int i = 0; i < 5; i++) ASSERT(mqc_gather_add(g, ping(c, &o)));
    start(g, &r);
    tf_client_wait_idle(c, 20);
    ASSERT_EQ(r.calls, 1);
    ASSERT(!r.came_inside_start);
    ASSERT(!r.has_error);               /* ALL mode: errors are per slot */
    ASSERT_EQ(r.size, 5);
    ASSERT_EQ(r.ok, 3);
    ASSERT_EQ(r.errors, 2);
    ASSERT_EQ(r.slots_consistent, 5);
    ASSERT_EQ(r.winner, -1);
    ASSERT_EQ(o.calls, 5);
    ASSERT_EQ(r.op_calls_before, 5);    /* every op's own callback came first */
    ASSERT_EQ(o.errors, 2);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/gather/fail_fast/first_error_cancels_the_rest", gather_fail_fast)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    /* The first command to arrive fails at once; the others would be answered 3 s late. */
    fakesrv_set_mode_then(s, FAKE_ERROR, 2, 1, FAKE_DELAY, 2000);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=4"));
    ops_t o = {0};
    gres_t r = {.op_calls = &o.calls};
    mqc_gather_t *g = mqc_gather_new(c, MQC_GATHER_FAIL_FAST);
    for (int i = 0; i < 4; i++) ASSERT(mqc_gather_add(g, ping(c, &o)));
    double t0 = tf_now();
    start(g, &r);
    tf_client_wait_idle(c, 20);
    ASSERT_EQ(r.calls, 1);
    ASSERT(r.has_error);
    ASSERT_EQ(r.error.domain, MQC_ERROR_SERVER);
    ASSERT_EQ(r.error.code, 2);
    ASSERT_EQ(r.ok, 0);
    ASSERT_EQ(r.errors, 4);
    ASSERT_EQ(r.slots_cancelled, 3);
    ASSERT_EQ(o.calls, 4);
    ASSERT_EQ(o.cancelled, 3);
    /* It did not wait for the late replies (2 s; valgrind is too slow to tell). */
    if (tf_time_bounds()) ASSERT_LT(r.at - t0, 1.6);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/gather/first/winner_cancels_the_rest", gather_first)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_set_mode_then(s, FAKE_OK, 0, 1, FAKE_DELAY, 2000);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=3"));
    ops_t o = {0};
    gres_t r = {.op_calls = &o.calls};
    mqc_gather_t *g = mqc_gather_new(c, MQC_GATHER_FIRST);
    for (int i = 0; i < 3; i++) ASSERT(mqc_gather_add(g, ping(c, &o)));
    double t0 = tf_now();
    start(g, &r);
    tf_client_wait_idle(c, 20);
    ASSERT_EQ(r.calls, 1);
    ASSERT(!r.has_error);
    ASSERT_GE(r.winner, 0);
    ASSERT_LT(r.winner, 3);
    ASSERT_EQ(r.ok, 1);
    ASSERT_EQ(r.slots_cancelled, 2);
    ASSERT_EQ(o.ok, 1);
    ASSERT_EQ(o.cancelled, 2);
    if (tf_time_bounds()) ASSERT_LT(r.at - t0, 1.6);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/gather/nested/inner_reply_lists_results_and_errors", gather_nested)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_set_mode(s, FAKE_ERROR, 13, 1);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=1"));
    ops_t o = {0};
    mqc_gather_t *inner = mqc_gather_new(c, MQC_GATHER_ALL);
    ASSERT(mqc_gather_add(inner, ping(c, &o)));   /* the first command: fails with 13 */
    ASSERT(mqc_gather_add(inner, ping(c, &o)));
    gres_t ri = {0}, ro = {0};
    mqc_op_t *inner_op = start(inner, &ri);
    ASSERT_NOT_NULL(inner_op);
    /* The gather's own op reports through the outer gather. */
    mqc_gather_t *outer = mqc_gather_new(c, MQC_GATHER_ALL);
    ASSERT(mqc_gather_add(outer, inner_op));
    ASSERT(mqc_gather_add(outer, ping(c, &o)));
    ASSERT(!mqc_gather_add(outer, inner_op));      /* already grouped */
    start(outer, &ro);
    ASSERT(!mqc_gather_add(outer, ping(c, &o)));   /* started: sealed */
    tf_client_wait_idle(c, 20);
    ASSERT_EQ(ri.calls, 1);
    ASSERT_EQ(ro.calls, 1);
    ASSERT_EQ(ri.ok, 1);
    ASSERT_EQ(ri.errors, 1);
    ASSERT_EQ(ro.size, 2);
    ASSERT_EQ(ro.ok, 2);                           /* an ALL gather succeeds as a slot */
    ASSERT_EQ(o.calls, 4);                         /* the refused add's ping still got its callback */
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

/* The nested reply's shape: {"results": [reply|null, ...], "errors": [null|{...}, ...]}; a slot
 * the server refused keeps the server's reply in "results" and its error in "errors". */
typedef struct {
    int calls;
    bool shape_ok;
    char why[256];
} shape_t;

static void on_outer_shape(mqc_gather_t *g, const mqc_error_t *error, void *ud)
{
    shape_t *sh = ud;
    (void) error;
    sh->calls++;
    const bson_t *reply = mqc_gather_reply(g, 0);
    bson_iter_t it, sub;
    if (!reply) {
        snprintf(sh->why, sizeof sh->why, "no reply for the inner gather's slot");
        return;
    }
    int results = 0, errors = 0, error_docs = 0, null_errors = 0, null_results = 0;
    if (bson_iter_init_find(&it, reply, "results") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &sub))
        while (bson_iter_next(&sub)) {
            results++;
            if (BSON_ITER_HOLDS_NULL(&sub)) null_results++;
        }
    if (bson_iter_init_find(&it, reply, "errors") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &sub))
        while (bson_iter_next(&sub)) {
            errors++;
            if (BSON_ITER_HOLDS_NULL(&sub)) null_errors++;
            if (BSON_ITER_HOLDS_DOCUMENT(&sub)) {
                bson_iter_t e;
                if (bson_iter_recurse(&sub, &e) && bson_iter_find(&e, "code") && bson_iter_as_int64(&e) == 13)
                    error_docs++;
            }
        }
    sh->shape_ok = results == 2 && null_results == 0 && errors == 2 && null_errors == 1 && error_docs == 1;
    if (!sh->shape_ok)
        snprintf(sh->why, sizeof sh->why, "results %d (null %d), errors %d (null %d, code 13: %d)", results,
                 null_results, errors, null_errors, error_docs);
}

TEST("/gather/nested/reply_shape", gather_nested_shape)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_set_mode(s, FAKE_ERROR, 13, 1);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=1"));
    ops_t o = {0};
    mqc_gather_t *inner = mqc_gather_new(c, MQC_GATHER_ALL);
    ASSERT(mqc_gather_add(inner, ping(c, &o)));
    ASSERT(mqc_gather_add(inner, ping(c, &o)));
    gres_t ri = {0};
    mqc_op_t *inner_op = start(inner, &ri);
    mqc_gather_t *outer = mqc_gather_new(c, MQC_GATHER_ALL);
    ASSERT(mqc_gather_add(outer, inner_op));
    shape_t sh = {0};
    mqc_gather_start(outer, on_outer_shape, &sh);
    tf_client_wait_idle(c, 20);
    ASSERT_EQ(sh.calls, 1);
    ASSERT_MSG(sh.shape_ok, "%s", sh.why);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/gather/empty/calls_back_from_the_loop", gather_empty)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, NULL));
    gres_t r = {0};
    mqc_gather_t *g = mqc_gather_new(c, MQC_GATHER_FAIL_FAST);
    start(g, &r);
    ASSERT_EQ(r.calls, 0);              /* never inside the call */
    tf_client_wait_idle(c, 5);
    ASSERT_EQ(r.calls, 1);
    ASSERT(!r.came_inside_start);
    ASSERT(!r.has_error);
    ASSERT_EQ(r.size, 0);
    ASSERT_EQ(fakesrv_commands(s), 0);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/gather/destroy_unstarted/cancels_its_ops", gather_destroy_unstarted)
{
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 300);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, NULL));
    ops_t o = {0};
    mqc_gather_t *g = mqc_gather_new(c, MQC_GATHER_ALL);
    for (int i = 0; i < 3; i++) ASSERT(mqc_gather_add(g, ping(c, &o)));
    mqc_gather_destroy(g);
    mqc_gather_destroy(NULL);
    tf_client_wait_idle(c, 20);
    ASSERT_EQ(o.calls, 3);
    ASSERT_EQ(o.cancelled, 3);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/gather/cancel/cancels_every_slot", gather_cancel)
{
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 2000);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, NULL));
    ops_t o = {0};
    gres_t r = {.op_calls = &o.calls};
    mqc_gather_t *g = mqc_gather_new(c, MQC_GATHER_ALL);
    for (int i = 0; i < 3; i++) ASSERT(mqc_gather_add(g, ping(c, &o)));
    mqc_op_t *gop = start(g, &r);
    ASSERT_NOT_NULL(gop);
    double t0 = tf_now();
    mqc_op_cancel(gop);
    tf_client_wait_idle(c, 20);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(o.calls, 3);
    ASSERT_EQ(o.cancelled, 3);
    ASSERT_EQ(r.slots_cancelled, 3);
    if (tf_time_bounds()) ASSERT_LT(r.at - t0, 1.6);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/gather/in_flight/500_find_ones", gather_500)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=8"));
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    ops_t o = {0};
    gres_t r = {.op_calls = &o.calls};
    mqc_gather_t *g = mqc_gather_new(c, MQC_GATHER_ALL);
    bson_t *filter = BCON_NEW("_id", BCON_INT32(1));
    for (int i = 0; i < 500; i++)
        ASSERT(mqc_gather_add(g, mqc_collection_find_one(coll, filter, NULL, on_op, &o)));
    bson_destroy(filter);
    start(g, &r);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_OPS_PENDING), 501);   /* 500 finds and the gather */
    tf_client_wait_idle(c, 30);
    ASSERT_EQ(r.calls, 1);
    ASSERT_EQ(r.size, 500);
    ASSERT_EQ(r.ok, 500);
    ASSERT_EQ(o.calls, 500);
    ASSERT_EQ(r.op_calls_before, 500);
    ASSERT_EQ(fakesrv_commands(s), 500);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}
