/* Fault containment: one bad connection costs at most the operation on it, and that one only when
 * it cannot be retried (docs/library/reliability.md, "Fault containment"). Each test puts hundreds of
 * operations in flight (more than maxPoolSize, so that some wait for a connection), injects one
 * fault, and counts: failed operations, callbacks per operation (exactly one), connections opened.
 *
 * The lone-host tests run on stubd (tests/server/, through tests/chaos_stub.h), whose `--fault-KIND=@N` hits
 * exactly the Nth command: N = 200 of the 256 first commands lands the fault while the pool is
 * full and the wait queue is long. The monitored test runs on tests/fakesrv playing a replica-set
 * primary, where SDAM requires a clear and the waiters it fails go back through selection. */
#include <ev.h>

#include "chaos_stub.h"
#include "server/fakesrv.h"
#include "mqc.h"
#include "tf.h"

#define IN_FLIGHT 256
#define BIG_DOC 300   /* bytes of payload: well past libbson's 120-byte inline buffer */
#define MANY_DOCS 1500 /* an insert_many that splits into two batches (maxWriteBatchSize 1000) */

typedef enum { K_READ, K_INSERT, K_INSERT_MANY, K_PING } kind_t;

typedef struct {
    int calls[IN_FLIGHT];
    kind_t kind[IN_FLIGHT];
    int failed[4];
    int done;
    mqc_error_t last_error;
} tally_t;

static tally_t *g_tally;

static void on_done(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    tally_t *t = g_tally;
    size_t i = (size_t) (uintptr_t) ud;
    t->calls[i]++;
    t->done++;
    if (error) {
        t->failed[t->kind[i]]++;
        t->last_error = *error;
    }
}

static mqc_client_t *client_at(const char *uri)
{
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, uri, &err);
    ASSERT_MSG(c, "client: %s", err.message);
    return c;
}

/* Closes other than the broken connection's: a lone host closes its idle connections on a
 * network error (how many are idle then depends on how fast the pool filled), but a clear, which
 * would also close the ones in use, must not happen. */
typedef struct {
    int cleared;
    int closed_in_error;
} pool_tally_t;

static void on_pool(const mqc_pool_event_t *e, void *ud)
{
    pool_tally_t *p = ud;
    if (e->type == MQC_POOL_CLEARED) p->cleared++;
    if (e->type == MQC_CONN_CLOSED && strcmp(e->reason, "error") == 0) p->closed_in_error++;
}

static bson_t *big_doc(int i)
{
    char pad[BIG_DOC + 1];
    memset(pad, 'x', BIG_DOC);
    pad[BIG_DOC] = '\0';
    return BCON_NEW("i", BCON_INT32(i), "pad", BCON_UTF8(pad));
}

/* Submits IN_FLIGHT operations at once: reads only, or a mix of reads, single inserts of big
 * documents, batch-splitting insert_manys and pings. */
static void submit_all(mqc_client_t *c, tally_t *t, bool mixed)
{
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t filter = BSON_INITIALIZER;
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    for (int i = 0; i < IN_FLIGHT; i++) {
        void *ud = (void *) (uintptr_t) i;
        kind_t k = !mixed         ? K_READ
                   : i % 64 == 7  ? K_INSERT_MANY
                   : i % 16 == 3  ? K_PING
                   : i % 4 == 1   ? K_INSERT
                                  : K_READ;
        t->kind[i] = k;
        if (k == K_READ) {
            mqc_collection_find_one(coll, &filter, NULL, on_done, ud);
        } else if (k == K_INSERT) {
            bson_t *d = big_doc(i);
            mqc_collection_insert_one(coll, d, NULL, on_done, ud);
            bson_destroy(d);
        } else if (k == K_INSERT_MANY) {
            bson_t *docs[MANY_DOCS];
            for (int j = 0; j < MANY_DOCS; j++) docs[j] = big_doc(j);
            mqc_collection_insert_many(coll, (const bson_t *const *) docs, MANY_DOCS, NULL, on_done, ud);
            for (int j = 0; j < MANY_DOCS; j++) bson_destroy(docs[j]);
        } else {
            mqc_client_command(c, "admin", ping, NULL, on_done, ud);
        }
    }
    bson_destroy(ping);
    mqc_collection_destroy(coll);
}

static void check_once(const tally_t *t)
{
    ASSERT_EQ(t->done, IN_FLIGHT);
    for (int i = 0; i < IN_FLIGHT; i++) ASSERT_MSG(t->calls[i] == 1, "op %d: %d callbacks", i, t->calls[i]);
}

/* One stubd fault (the 200th command) under IN_FLIGHT operations on a lone host. */
static void one_fault(const char *fault_arg, const char *fault_arg2, bool mixed)
{
    chaos_stub_t s;
    const char *const args[] = {"--seed", "1", fault_arg, fault_arg2, NULL};
    chaos_stub_start(&s, 0, args);
    char uri[160];
    snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/?directConnection=true&maxPoolSize=100", s.port);
    mqc_client_t *c = client_at(uri);
    pool_tally_t pt = {0, 0};
    mqc_monitor_t mon = {.pool = on_pool};
    mqc_client_set_monitor(c, &mon, &pt);
    tally_t t;
    memset(&t, 0, sizeof t);
    g_tally = &t;
    submit_all(c, &t, mixed);
    ASSERT(mqc_client_run_until_idle(c, 60));
    uint64_t opened = mqc_client_stat(c, MQC_STAT_CONNS_OPENED);
    uint64_t retried = mqc_client_stat(c, MQC_STAT_OPS_RETRIED);
    uint64_t closed = mqc_client_stat(c, MQC_STAT_CONNS_CLOSED);
    mqc_client_destroy(c);
    chaos_stub_stop(&s);
    g_tally = NULL;
    long long injected = chaos_stub_stat(&s, "total");
    int failed = t.failed[K_READ] + t.failed[K_INSERT] + t.failed[K_INSERT_MANY] + t.failed[K_PING];
    tf_note("%s%s: %lld fault(s), %d failed (reads %d, inserts %d, insert_manys %d, pings %d)%s%s, %llu retried, "
            "%llu connections opened, %llu closed", fault_arg, fault_arg2 ? fault_arg2 : "", injected, failed,
            t.failed[K_READ], t.failed[K_INSERT], t.failed[K_INSERT_MANY], t.failed[K_PING], failed ? ": " : "",
            failed ? t.last_error.message : "", (unsigned long long) retried, (unsigned long long) opened,
            (unsigned long long) closed);
    check_once(&t);
    ASSERT_EQ(injected, 1);
    ASSERT_EQ(t.failed[K_READ], 0);   /* retryable reads: no failure at all */
    ASSERT_LE(failed, 1);             /* anything else: at most the op on the broken connection */
    ASSERT_LE(opened, 100 + 2);       /* the pool's 100, and at most two for the fault */
    ASSERT_LE(pt.closed_in_error, 1); /* the broken one; the others closed were idle: */
    ASSERT_EQ(pt.cleared, 0);         /* not the pool */
    ASSERT_LE(closed, opened);
}

#define AT "=@200"
TEST("/faults/containment/hangup_before", contain_hangup_before)
{
    one_fault("--fault-hangup-before" AT, NULL, false);
    one_fault("--fault-hangup-before" AT, NULL, true);
}
TEST("/faults/containment/hangup_mid", contain_hangup_mid)
{
    one_fault("--fault-hangup-mid" AT, NULL, false);
    one_fault("--fault-hangup-mid" AT, NULL, true);
}
TEST("/faults/containment/garbage", contain_garbage)
{
    one_fault("--fault-garbage" AT, NULL, false);
    one_fault("--fault-garbage" AT, NULL, true);
}
TEST("/faults/containment/oversize", contain_oversize)
{
    one_fault("--fault-oversize" AT, NULL, false);
    one_fault("--fault-oversize" AT, NULL, true);
}
TEST("/faults/containment/wrong_response_to", contain_wrong_response_to)
{
    one_fault("--fault-wrong-response-to" AT, NULL, false);
    one_fault("--fault-wrong-response-to" AT, NULL, true);
}
TEST("/faults/containment/interrupted_at_shutdown", contain_shutdown)
{
    one_fault("--fault-error", "11600:@200", false);
    one_fault("--fault-error", "11600:@200", true);
}

TEST("/faults/containment/monitored_clear_requeues_waiters", contain_monitored)
{
    /* A replica-set primary (monitored): a hang-up marks it Unknown and clears its pool, as SDAM
     * requires, which fails the operations waiting for a connection (CMAP). Those were never
     * sent: they go back through selection without using their retry, and wait for the monitor
     * to find the primary again. Reads: no failure. Pings: at most the one on the broken
     * connection (a generic command is not retried). */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%u", fakesrv_port(s));
    bson_t *extra = BCON_NEW("setName", "rs0", "hosts", "[", BCON_UTF8(host), "]");
    fakesrv_set_hello_extra(s, extra);
    bson_destroy(extra);
    char uri[200];
    snprintf(uri, sizeof uri, "mongodb://%s/?replicaSet=rs0&maxPoolSize=8&heartbeatFrequencyMS=500", host);
    mqc_client_t *c = client_at(uri);
    /* Warm: the primary is known and the pool full before the fault. */
    tally_t t;
    memset(&t, 0, sizeof t);
    g_tally = &t;
    submit_all(c, &t, true);
    ASSERT(mqc_client_run_until_idle(c, 60));
    check_once(&t);
    ASSERT_EQ(t.failed[K_READ] + t.failed[K_INSERT] + t.failed[K_INSERT_MANY] + t.failed[K_PING], 0);
    memset(&t, 0, sizeof t);
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 1);
    submit_all(c, &t, true);
    ASSERT(mqc_client_run_until_idle(c, 60));
    g_tally = NULL;
    int failed = t.failed[K_READ] + t.failed[K_INSERT] + t.failed[K_INSERT_MANY] + t.failed[K_PING];
    tf_note("monitored: %d failed (reads %d, inserts %d, insert_manys %d, pings %d)%s%s", failed, t.failed[K_READ],
            t.failed[K_INSERT], t.failed[K_INSERT_MANY], t.failed[K_PING], failed ? ": " : "",
            failed ? t.last_error.message : "");
    check_once(&t);
    ASSERT_EQ(t.failed[K_READ], 0);
    ASSERT_LE(failed, 1);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}
