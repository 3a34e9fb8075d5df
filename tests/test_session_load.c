/* Sessions under load (issue 14): the library and mqload at 256 and 1,024 operations in flight
 * against scripted servers that hold sessions to MongoDB's rules (tests/server/session_rules.h), one
 * saying it is a mongos and one a replica-set primary (so writes carry txnNumber). Each asserts
 * 0 overlapping uses of a session, 0 TransactionTooOld, and no more distinct sessions than the
 * peak number of operations in flight. With one lsid per client (the old code) the mqload runs
 * see one session, thousands of overlaps and TransactionTooOld errors. */
#include <bson/bson.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chaos_stub.h"
#include "server/fakesrv.h"
#include "mqc.h"
#include "tf.h"

enum { N_DOCS = 25, KINDS = 8 };

typedef struct {
    mqc_client_t *c;
    mqc_collection_t *coll;
    int total, started, in_flight, peak;
    int errors, too_old;
    mqc_error_t last_error;
    bool fam;                    /* findAndModify (fakesrv answers it; stubd does not know it) */
    bson_t *docs[N_DOCS], *big, *filter, *update, *ping, *pipeline, *cursor_opts;
} load_t;

static void start_one(load_t *L);

static void one_done(load_t *L, const mqc_error_t *error)
{
    L->in_flight--;
    if (error) {
        L->errors++;
        L->last_error = *error;
        if (error->code == 225) L->too_old++;
    }
    if (L->started < L->total) start_one(L);
}

static void on_op(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    one_done(ud, error);
}

/* A gather's member: counted in flight on its own; the gather starts the next one. */
static void on_member(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    load_t *L = ud;
    L->in_flight--;
    if (error) {
        L->errors++;
        L->last_error = *error;
        if (error->code == 225) L->too_old++;
    }
}

static void on_gather(mqc_gather_t *g, const mqc_error_t *error, void *ud)
{
    (void) g;
    (void) error;
    load_t *L = ud;
    if (L->started < L->total) start_one(L);
}

static void on_batch(mqc_cursor_t *cur, const bson_t *docs, size_t n, const mqc_error_t *err, void *ud)
{
    (void) docs;
    (void) n;
    load_t *L = ud;
    if (!err && mqc_cursor_more(cur) && mqc_cursor_next(cur)) return;
    mqc_cursor_destroy(cur);
    one_done(L, err);
}

static void start_one(load_t *L)
{
    int kind = L->started++ % KINDS;
    if (++L->in_flight > L->peak) L->peak = L->in_flight;
    switch (kind) {
    case 0: mqc_collection_insert_one(L->coll, L->big, NULL, on_op, L); break;
    case 1: mqc_collection_insert_many(L->coll, (const bson_t *const *) L->docs, N_DOCS, NULL, on_op, L); break;
    case 2: mqc_collection_find_one(L->coll, L->filter, NULL, on_op, L); break;
    case 3: mqc_collection_update_one(L->coll, L->filter, L->update, NULL, on_op, L); break;
    case 4: mqc_client_command(L->c, "admin", L->ping, NULL, on_op, L); break;
    case 5: mqc_collection_aggregate(L->coll, L->pipeline, L->cursor_opts, on_batch, L); break;
    case 6:
        if (L->fam) mqc_collection_find_one_and_update(L->coll, L->filter, L->update, NULL, on_op, L);
        else mqc_collection_delete_one(L->coll, L->filter, NULL, on_op, L);
        break;
    default: {
        mqc_gather_t *g = mqc_gather_new(L->c, MQC_GATHER_ALL);
        L->in_flight += 2; /* three members in flight */
        if (L->in_flight > L->peak) L->peak = L->in_flight;
        for (int i = 0; i < 3; i++) mqc_gather_add(g, mqc_collection_find_one(L->coll, L->filter, NULL, on_member, L));
        mqc_gather_start(g, on_gather, L);
    }
    }
}

/* Runs `total` operations of every kind, `in_flight` at a time, against uri. */
static void run_load(const char *uri, int in_flight, int total, bool fam, int64_t *created, int *peak)
{
    load_t L = {.total = total, .fam = fam};
    mqc_error_t err;
    L.c = mqc_client_new_from_uri(NULL, uri, &err);
    ASSERT_MSG(L.c, "%s", err.message);
    L.coll = mqc_client_get_collection(L.c, "db", "c");
    char pad[300];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    /* Every write sends documents past libbson's 120-byte inline buffer (~200 to 300 bytes). */
    for (int i = 0; i < N_DOCS; i++) L.docs[i] = BCON_NEW("pad", BCON_UTF8(pad + 100), "i", BCON_INT32(i));
    L.big = BCON_NEW("pad", BCON_UTF8(pad));
    L.filter = BCON_NEW("_id", BCON_INT32(3));
    L.update = BCON_NEW("$set", "{", "pad", BCON_UTF8(pad), "}");
    L.ping = BCON_NEW("ping", BCON_INT32(1));
    L.pipeline = BCON_NEW("0", "{", "$match", "{", "}", "}");
    L.cursor_opts = BCON_NEW("batchSize", BCON_INT32(10));
    for (int i = 0; i < in_flight && L.started < L.total; i++) start_one(&L);
    ASSERT_MSG(mqc_client_run_until_idle(L.c, 120), "%d operations still in flight", L.in_flight);
    ASSERT_MSG(L.errors == 0, "%d errors (%d TransactionTooOld), last: %s", L.errors, L.too_old, L.last_error.message);
    *created = (int64_t) mqc_client_stat(L.c, MQC_STAT_SESSIONS_CREATED);
    *peak = L.peak;
    int64_t client_peak = (int64_t) mqc_client_stat(L.c, MQC_STAT_SESSIONS_PEAK);
    ASSERT_LE(client_peak, L.peak);
    ASSERT_EQ(mqc_client_stat(L.c, MQC_STAT_SESSIONS_IN_USE), 0);
    ASSERT_EQ(mqc_client_stat(L.c, MQC_STAT_SESSIONS_DISCARDED), 0);
    /* LIFO: the pool never grows past what was out at once */
    ASSERT_EQ(*created, client_peak);
    for (int i = 0; i < N_DOCS; i++) bson_destroy(L.docs[i]);
    bson_destroy(L.big);
    bson_destroy(L.filter);
    bson_destroy(L.update);
    bson_destroy(L.ping);
    bson_destroy(L.pipeline);
    bson_destroy(L.cursor_opts);
    mqc_collection_destroy(L.coll);
    mqc_client_destroy(L.c);
}

static void check(const char *what, int in_flight, int peak, int64_t created, uint64_t distinct, uint64_t overlaps,
                  uint64_t too_old)
{
    tf_note("%s, %d in flight: peak %d, sessions created %lld, distinct lsids at the server %llu, overlaps %llu, "
            "TransactionTooOld %llu",
            what, in_flight, peak, (long long) created, (unsigned long long) distinct, (unsigned long long) overlaps,
            (unsigned long long) too_old);
    ASSERT_EQ(overlaps, 0);
    ASSERT_EQ(too_old, 0);
    ASSERT_LE(distinct, (uint64_t) peak);
    ASSERT_EQ(distinct, (uint64_t) created);
    ASSERT_GT(distinct, 1); /* many at once: one session would not do */
}

/* fakesrv: a thread per connection (at most 256), each request 2 ms on the server, bulks split
 * by maxWriteBatchSize 10 (each batch a txnNumber of its own on the op's session). */
static void fakesrv_load(fake_role_t role, int in_flight, int pool)
{
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 2);
    bson_t *more = BCON_NEW("maxWriteBatchSize", BCON_INT32(10));
    fakesrv_play(s, role, more);
    bson_destroy(more);
    char opts[64];
    snprintf(opts, sizeof opts, "maxPoolSize=%d", pool);
    int64_t created;
    int peak;
    run_load(fakesrv_uri(s, opts), in_flight, in_flight * 6, true, &created, &peak);
    fakesrv_sessions_t st;
    fakesrv_sessions(s, &st);
    check(role == FAKE_ROLE_MONGOS ? "library, fakesrv as mongos" : "library, fakesrv as primary", in_flight, peak,
          created, st.distinct, st.overlaps, st.too_old);
    /* Ops waiting for one of `pool` connections hold no session. One more: the opening command
     * of a cursor keeps its session until its callback has run (the cursor may take it), while
     * its connection already serves the next op. */
    ASSERT_LE(st.distinct, (uint64_t) pool + 1);
    fakesrv_stop(s);
}

TEST("/session/load/library_fakesrv_mongos_256", session_load_fake_mongos) { fakesrv_load(FAKE_ROLE_MONGOS, 256, 256); }
TEST("/session/load/library_fakesrv_primary_1024", session_load_fake_primary) { fakesrv_load(FAKE_ROLE_PRIMARY, 1024, 200); }

/* stubd: real cursors (batchSize 10 of 100 documents: getMores on the cursor's session). */
static void stubd_load(const char *role, int in_flight, int pool)
{
    chaos_stub_t st;
    const char *argv[] = {role, role[2] == 'r' ? "rs0" : "--delay-us", role[2] == 'r' ? "--delay-us" : "1000",
                          role[2] == 'r' ? "1000" : NULL, NULL};
    chaos_stub_start(&st, 0, argv);
    char uri[128];
    snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/?maxPoolSize=%d", st.port, pool);
    int64_t created;
    int peak;
    run_load(uri, in_flight, in_flight * 6, false, &created, &peak);
    chaos_stub_stop(&st);
    check(role, in_flight, peak, created, (uint64_t) chaos_stub_stat(&st, "distinct"),
          (uint64_t) chaos_stub_stat(&st, "overlaps"), (uint64_t) chaos_stub_stat(&st, "transaction_too_old"));
}

TEST("/session/load/library_stubd_mongos_1024", session_load_stubd_mongos) { stubd_load("--mongos", 1024, 1024); }
TEST("/session/load/library_stubd_primary_256", session_load_stubd_primary) { stubd_load("--replset", 256, 64); }

/* ---- mqload ---- */

static bson_t *run_mqload(const char *const *args)
{
    char exe[PATH_MAX], json[PATH_MAX];
    static unsigned runs;
    snprintf(exe, sizeof exe, "%s/mqload", tf_build_dir());
    snprintf(json, sizeof json, "%s/session-mqload-%u.json", tf_tmpdir(), ++runs);
    const char *argv[64] = {exe, "--json", json, "-q"};
    int argc = 4;
    for (; *args && argc < 63; args++) argv[argc++] = *args;
    argv[argc] = NULL;
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 1), dup2(devnull, 2);
        execv(exe, (char *const *) argv);
        _exit(127);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_MSG(WIFEXITED(status), "mqload died: status %d", status);
    FILE *f = fopen(json, "rb");
    ASSERT_MSG(f, "mqload wrote no JSON (exit %d)", WEXITSTATUS(status));
    static char text[1 << 20];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = 0;
    bson_error_t be;
    bson_t *doc = bson_new_from_json((const uint8_t *) text, (ssize_t) len, &be);
    ASSERT_MSG(doc, "mqload's JSON did not parse: %s", be.message);
    return doc;
}

static int64_t jget(const bson_t *doc, const char *path)
{
    bson_iter_t it, f;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &f)) return -1;
    return BSON_ITER_HOLDS_NUMBER(&f) ? bson_iter_as_int64(&f) : -1;
}

static void mqload_load(const char *role, const char *set, int c)
{
    chaos_stub_t st;
    const char *argv[] = {role, set ? set : "--delay-us", set ? "--delay-us" : "1000", set ? "1000" : NULL, NULL};
    chaos_stub_start(&st, 0, argv);
    char uri[96], conc[16], n[16];
    snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/", st.port);
    snprintf(conc, sizeof conc, "%d", c);
    snprintf(n, sizeof n, "%d", c * 12);
    const char *args[] = {"--uri", uri, "-c", conc, "-n", n, "--warmup", "0", "--mix", "insert=60,update=20,find=20",
                          NULL};
    bson_t *res = run_mqload(args);
    chaos_stub_stop(&st);
    int64_t errors = jget(res, "errors"), ok = jget(res, "ok");
    bson_destroy(res);
    char what[64];
    snprintf(what, sizeof what, "mqload, stubd %s", role);
    check(what, c, c, chaos_stub_stat(&st, "distinct"), (uint64_t) chaos_stub_stat(&st, "distinct"),
          (uint64_t) chaos_stub_stat(&st, "overlaps"), (uint64_t) chaos_stub_stat(&st, "transaction_too_old"));
    ASSERT_EQ(errors, 0);
    ASSERT_EQ(ok, c * 12);
}

TEST("/session/load/mqload_mongos_256", session_mqload_mongos_256) { mqload_load("--mongos", NULL, 256); }
TEST("/session/load/mqload_mongos_1024", session_mqload_mongos_1024) { mqload_load("--mongos", NULL, 1024); }
TEST("/session/load/mqload_primary_256", session_mqload_primary_256) { mqload_load("--replset", "rs0", 256); }
TEST("/session/load/mqload_primary_1024", session_mqload_primary_1024) { mqload_load("--replset", "rs0", 1024); }
