/* The client against a scripted replica set (tests/server/fakers.c) and FerretDB with a set name:
 * discovery from one seed, selection by read preference, a step-down under load with retried
 * writes, selection waits, and mqload across a failover. */
#include <ev.h>
#include <stdlib.h>
#include <unistd.h>

#include "client.h"
#include "server/fakers.h"
#include "mqc.h"
#include "support/result.h"
#include "tf.h"
#include "topology.h"

typedef struct {
    int calls, errors;
    int last_member;
    mqc_error_t error;
    fakers_t *rs;
    int by_member[8];
} tally_t;

static void on_op(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) reply;
    tally_t *t = ud;
    t->calls++;
    if (error) {
        t->errors++;
        t->error = *error;
    }
    const char *srv = mqc_op_get_server(op);
    const char *colon = srv ? strrchr(srv, ':') : NULL;
    t->last_member = colon && t->rs ? fakers_member_of(t->rs, (uint16_t) atoi(colon + 1)) : -1;
    if (!error && t->last_member >= 0) t->by_member[t->last_member]++;
}

static mqc_client_t *rs_client(fakers_t *rs, int seed, const char *extra)
{
    return tf_client_new(fakers_uri(rs, seed, extra));
}

static void insert(mqc_client_t *c, tally_t *t)
{
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t *doc = BCON_NEW("x", BCON_INT32(1));
    mqc_collection_insert_one(coll, doc, NULL, on_op, t);
    bson_destroy(doc);
    mqc_collection_destroy(coll);
}

static void read_sp(mqc_client_t *c, tally_t *t)
{
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t *opts = BCON_NEW("readPreference", "{", "mode", BCON_UTF8("secondaryPreferred"), "}");
    mqc_collection_find_one(coll, NULL, opts, on_op, t);
    bson_destroy(opts);
    mqc_collection_destroy(coll);
}

typedef struct {
    int primary_changes;
    char primary[64];
} events_t;

static void on_topo(const mqc_topology_event_t *ev, void *ud)
{
    events_t *e = ud;
    if (ev->type != MQC_TOPOLOGY_PRIMARY_CHANGED) return;
    e->primary_changes++;
    snprintf(e->primary, sizeof e->primary, "%s", ev->current);
}

TEST("/topology/rs/discovery_from_one_seed", topo_discovery)
{
    fakers_t *rs = fakers_start(3, 1);
    mqc_client_t *c = rs_client(rs, 2, "heartbeatFrequencyMS=500");
    events_t ev = {0};
    mqc_monitor_t mon = {.topology = on_topo};
    mqc_client_set_monitor(c, &mon, &ev);
    tally_t t = {.rs = rs};
    insert(c, &t);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT_EQ(t.calls, 1);
    ASSERT_MSG(t.errors == 0, "%s", t.error.message);
    ASSERT_EQ(t.last_member, 1);
    ASSERT_EQ(fakers_writes(rs, 1), 1);
    ASSERT_EQ(fakers_txn_writes(rs, 1), 1); /* a retryable write: lsid + txnNumber */
    ASSERT_EQ(c->topo->td.n_servers, 3);
    ASSERT_EQ(c->topo->td.type, MQC_TOPOLOGY_RS_WITH_PRIMARY);
    ASSERT_EQ(ev.primary_changes, 1);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", fakers_port(rs, 1));
    ASSERT_STR_EQ(ev.primary, want);
    mqc_client_destroy(c);
    fakers_stop(rs);
}

TEST("/topology/rs/multi_document_writes_not_retryable", topo_multi_not_retryable)
{
    /* updateMany / deleteMany get no txnNumber (a server refuses one on a multi-document write),
     * updateOne / deleteOne do. */
    fakers_t *rs = fakers_start(3, 0);
    mqc_client_t *c = rs_client(rs, 0, "heartbeatFrequencyMS=500");
    tally_t t = {.rs = rs};
    insert(c, &t);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT_EQ(fakers_txn_writes(rs, 0), 1);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t *f = BCON_NEW("x", BCON_INT32(1)), *u = BCON_NEW("$set", "{", "y", BCON_INT32(2), "}");
    mqc_collection_update_many(coll, f, u, NULL, on_op, &t);
    mqc_collection_delete_many(coll, f, NULL, on_op, &t);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT_EQ(fakers_writes(rs, 0), 3);
    ASSERT_EQ(fakers_txn_writes(rs, 0), 1);
    mqc_collection_update_one(coll, f, u, NULL, on_op, &t);
    mqc_collection_delete_one(coll, f, NULL, on_op, &t);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT_EQ(fakers_writes(rs, 0), 5);
    ASSERT_EQ(fakers_txn_writes(rs, 0), 3);
    ASSERT_MSG(t.errors == 0, "%s", t.error.message);
    bson_destroy(f);
    bson_destroy(u);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakers_stop(rs);
}

TEST("/topology/rs/read_preference", topo_read_pref)
{
    fakers_t *rs = fakers_start(3, 0);
    mqc_client_t *c = rs_client(rs, 0, "heartbeatFrequencyMS=500");
    tally_t w = {.rs = rs}, r = {.rs = rs}, p = {.rs = rs};
    for (int i = 0; i < 10; i++) insert(c, &w);
    ASSERT(mqc_client_run_until_idle(c, 10));
    /* All three are known once the writes are through? Not necessarily: wait for the secondaries. */
    double until = tf_now() + 5;
    while (tf_now() < until && !(c->topo->td.n_servers == 3 && mqc_sdam_find(&c->topo->td, "dummy") == NULL &&
                                 c->topo->td.servers[1]->sd.type == MQC_SERVER_RS_SECONDARY &&
                                 c->topo->td.servers[2]->sd.type == MQC_SERVER_RS_SECONDARY))
        ev_run(mqc_client_get_loop(c), EVRUN_ONCE);
    for (int i = 0; i < 20; i++) read_sp(c, &r);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    mqc_collection_find_one(coll, NULL, NULL, on_op, &p);
    mqc_collection_destroy(coll);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT_EQ(w.calls, 10);
    ASSERT_EQ(w.errors, 0);
    ASSERT_EQ(w.by_member[0], 10);
    ASSERT_EQ(r.calls, 20);
    ASSERT_MSG(r.errors == 0, "%s", r.error.message);
    ASSERT_EQ(r.by_member[0], 0);
    ASSERT_EQ(r.by_member[1] + r.by_member[2], 20);
    ASSERT_EQ(p.by_member[0], 1); /* primary (the default) reads go to the primary */
    mqc_client_destroy(c);
    fakers_stop(rs);
}

/* ---- step-down under load ---------------------------------------------------------------- */

typedef struct {
    mqc_client_t *c;
    fakers_t *rs;
    tally_t w, r;
    int submitted;
    double t0;
    bool stepped;
    int reads_after_on_0;
    ev_timer tick;
} load_t;

static void on_read_after(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    load_t *l = ud;
    on_op(op, reply, error, &l->r);
    if (!error && l->stepped && l->r.last_member == 0) l->reads_after_on_0++;
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) revents;
    load_t *l = w->data;
    double el = tf_now() - l->t0;
    if (el > 2.0) {
        ev_timer_stop(loop, w);
        return;
    }
    if (el > 0.8 && !l->stepped) {
        fakers_set_primary(l->rs, 1); /* 0 steps down, 1 is elected (higher electionId) */
        l->stepped = true;
    }
    for (int i = 0; i < 4; i++) {
        insert(l->c, &l->w);
        mqc_collection_t *coll = mqc_client_get_collection(l->c, "db", "c");
        bson_t *opts = BCON_NEW("readPreference", "{", "mode", BCON_UTF8("secondaryPreferred"), "}");
        mqc_collection_find_one(coll, NULL, opts, on_read_after, l);
        bson_destroy(opts);
        mqc_collection_destroy(coll);
        l->submitted += 2;
    }
}

TEST("/topology/rs/stepdown_under_load", topo_stepdown)
{
    load_t l;
    memset(&l, 0, sizeof l);
    l.rs = fakers_start(3, 0);
    l.w.rs = l.r.rs = l.rs;
    l.c = rs_client(l.rs, 2, "heartbeatFrequencyMS=500");
    struct ev_loop *loop = mqc_client_get_loop(l.c);
    l.t0 = tf_now();
    ev_timer_init(&l.tick, on_tick, 0.01, 0.01);
    l.tick.data = &l;
    ev_timer_start(loop, &l.tick);
    while (ev_is_active(&l.tick)) ev_run(loop, EVRUN_ONCE);
    ASSERT(mqc_client_run_until_idle(l.c, 20));
    tf_note("submitted %d, writes %d (errors %d: %s), reads %d (errors %d), refused by 0: %d, writes on 1: %d",
            l.submitted, l.w.calls, l.w.errors, l.w.errors ? l.w.error.message : "", l.r.calls, l.r.errors,
            fakers_refused(l.rs, 0), fakers_writes(l.rs, 1));
    ASSERT_EQ(l.w.calls + l.r.calls, l.submitted);
    ASSERT_EQ(mqc_client_stat(l.c, MQC_STAT_OPS_SUBMITTED), mqc_client_stat(l.c, MQC_STAT_OPS_COMPLETED));
    ASSERT_MSG(l.w.errors == 0, "%d write errors, last: %s", l.w.errors, l.w.error.message);
    ASSERT_MSG(l.r.errors == 0, "%d read errors, last: %s", l.r.errors, l.r.error.message);
    ASSERT_GT(fakers_writes(l.rs, 1), 0);       /* writes moved to the new primary */
    ASSERT_GT(l.reads_after_on_0, 0);           /* the old primary now serves secondary reads */
    ASSERT_STR_CONTAINS(mqc_sdam_topo_type_name(l.c->topo->td.type), "ReplicaSetWithPrimary");
    mqc_client_destroy(l.c);
    fakers_stop(l.rs);
}

/* ---- selection waits ------------------------------------------------------------------------- */

static void elect_0(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    fakers_set_primary(w->data, 0);
}

TEST("/topology/select/waits_for_primary", topo_wait_primary)
{
    fakers_t *rs = fakers_start(3, -1);
    mqc_client_t *c = rs_client(rs, 0, "heartbeatFrequencyMS=500&serverSelectionTimeoutMS=5000");
    ev_timer el;
    ev_timer_init(&el, elect_0, 0.3, 0.);
    el.data = rs;
    ev_timer_start(mqc_client_get_loop(c), &el);
    tally_t t = {.rs = rs};
    double t0 = tf_now();
    insert(c, &t);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT_EQ(t.calls, 1);
    ASSERT_MSG(t.errors == 0, "%s", t.error.message);
    ASSERT_EQ(t.last_member, 0);
    tf_note("write completed after %.0f ms", (tf_now() - t0) * 1000);
    ASSERT_GE(tf_now() - t0, 0.29);
    mqc_client_destroy(c);
    fakers_stop(rs);
}

TEST("/topology/select/timeout_no_primary", topo_wait_timeout)
{
    fakers_t *rs = fakers_start(3, -1);
    mqc_client_t *c = rs_client(rs, 0, "heartbeatFrequencyMS=500&serverSelectionTimeoutMS=500");
    tally_t t = {.rs = rs};
    double t0 = tf_now();
    insert(c, &t);
    ASSERT(mqc_client_run_until_idle(c, 10));
    double el = tf_now() - t0;
    ASSERT_EQ(t.calls, 1);
    ASSERT_EQ(t.error.domain, MQC_ERROR_SELECTION);
    ASSERT_STR_CONTAINS(t.error.message, "ReplicaSetNoPrimary");
    tf_note("%s (after %.0f ms)", t.error.message, el * 1000);
    ASSERT_GE(el, 0.45);
    ASSERT_LT(el, 2.0);
    /* Reads with secondaryPreferred need no primary. */
    tally_t r = {.rs = rs};
    read_sp(c, &r);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT_MSG(r.errors == 0, "%s", r.error.message);
    mqc_client_destroy(c);
    fakers_stop(rs);
}

/* ---- mqload across a failover -------------------------------------------------------------- */

TEST("/topology/rs/mqload_failover", topo_mqload)
{
    fakers_t *rs = fakers_start(3, 0);
    char cmd[2048], json[512], out[16384];
    snprintf(json, sizeof json, "%s/rs.json", tf_tmpdir());
    snprintf(cmd, sizeof cmd,
             "'%s/mqload' --uri '%s' --duration 2.5s --warmup 0s --concurrency 8 --mix find=50,insert=50 --json '%s' "
             "--no-progress 2>&1",
             tf_build_dir(), fakers_uri(rs, 2, "heartbeatFrequencyMS=500"), json);
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    usleep(1200 * 1000);
    fakers_set_primary(rs, 1);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    tf_note("%s", out);
    ASSERT_STR_CONTAINS(out, "primary changed");
    FILE *f = fopen(json, "r");
    ASSERT_NOT_NULL(f);
    static char buf[1 << 20];
    size_t jn = fread(buf, 1, sizeof buf - 1, f);
    buf[jn] = '\0';
    fclose(f);
    const char *s = strstr(buf, "\"submitted\":"), *d = strstr(buf, "\"completed\":");
    ASSERT_NOT_NULL(s);
    ASSERT_NOT_NULL(d);
    long long sub = atoll(s + 12), done = atoll(d + 12);
    tf_note("exit %d, submitted %lld, completed %lld", rc, sub, done);
    ASSERT_GT(sub, 0);
    ASSERT_EQ(sub, done);
    fakers_stop(rs);
}

/* ---- FerretDB with a set name ----------------------------------------------------------------- */

TEST("/topology/ferretdb/replica_set", topo_ferret_rs)
{
    const char *base = tf_rs_uri();
    char uri[1024];
    snprintf(uri, sizeof uri, "%s%sreplicaSet=rs0&heartbeatFrequencyMS=500", base,
             strchr(base, '?') ? "&" : (base[strlen(base) - 1] == '/' ? "?" : "/?"));
    if (strstr(base, "replicaSet=")) snprintf(uri, sizeof uri, "%s", base);
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, uri, &err);
    ASSERT_MSG(c, "%s", err.message);
    const char *coll_name = tf_unique("rs");
    mqc_collection_t *coll = mqc_client_get_collection(c, "mqc_test", coll_name);
    tally_t w = {0}, r = {0};
    bson_t *doc = BCON_NEW("_id", BCON_INT32(7), "v", BCON_UTF8("x"));
    mqc_collection_insert_one(coll, doc, NULL, on_op, &w);
    ASSERT(mqc_client_run_until_idle(c, 20));
    ASSERT_MSG(w.errors == 0, "%s", w.error.message);
    bson_t *filter = BCON_NEW("_id", BCON_INT32(7));
    mqc_collection_find_one(coll, filter, NULL, on_op, &r);
    ASSERT(mqc_client_run_until_idle(c, 20));
    ASSERT_MSG(r.errors == 0, "%s", r.error.message);
    char desc[512];
    tf_note("%s", mqc_topology_describe(c->topo, desc, sizeof desc));
    ASSERT_EQ(c->topo->td.type, MQC_TOPOLOGY_RS_WITH_PRIMARY);
    ASSERT_EQ(c->topo->td.n_servers, 1);
    ASSERT_EQ(c->topo->td.servers[0]->sd.type, MQC_SERVER_RS_PRIMARY);
    bson_destroy(doc);
    bson_destroy(filter);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
}
