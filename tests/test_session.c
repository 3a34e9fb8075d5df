/* Server sessions (lib/session.c, issue 14): the pool's rules as units, then the library and
 * mqload under load against scripted servers that hold sessions to MongoDB's rules
 * (tests/server/session_rules.h): a mongos and a replica-set primary, 256 and 1,024 operations in
 * flight, every kind of operation. The bug these keep out: one lsid and one txnNumber counter
 * per client, which a real server answers with overlapping uses of a session and
 * TransactionTooOld (225) under concurrency. The load tests are in test_session_load.c. */
#include <bson/bson.h>
#include <ev.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/session_rules.h"
#include "chaos_stub.h"
#include "server/fakesrv.h"
#include "mqc.h"
#include "session.h"
#include "tf.h"
#include "wire.h"

#define MIN_US (60 * 1000000LL)

/* ---- the pool, as a unit ------------------------------------------------------------------ */

TEST("/session/pool/lifo", session_pool_lifo)
{
    mqc_session_pool_t p;
    mqc_session_pool_init(&p);
    mqc_session_t *a = mqc_session_checkout(&p, 30, 0), *b = mqc_session_checkout(&p, 30, 0);
    ASSERT(a != b);
    ASSERT(memcmp(mqc_session_id(a), mqc_session_id(b), 16) != 0);
    ASSERT_EQ(p.in_use, 2);
    mqc_session_checkin(&p, a, 30, 1);
    mqc_session_checkin(&p, b, 30, 2);
    ASSERT_EQ(p.n_idle, 2);
    /* the most recently returned first */
    ASSERT(mqc_session_checkout(&p, 30, 3) == b);
    ASSERT(mqc_session_checkout(&p, 30, 3) == a);
    mqc_session_t *c = mqc_session_checkout(&p, 30, 3);
    ASSERT_EQ(p.created, 3);
    ASSERT_EQ(p.peak_in_use, 3);
    mqc_session_checkin(&p, a, 30, 4);
    mqc_session_checkin(&p, b, 30, 4);
    mqc_session_checkin(&p, c, 30, 4);
    ASSERT_EQ(p.in_use, 0);
    /* steady state: one at a time reuses one session */
    for (int i = 0; i < 1000; i++) mqc_session_checkin(&p, mqc_session_checkout(&p, 30, 5), 30, 5);
    ASSERT_EQ(p.created, 3);
    mqc_session_pool_cleanup(&p);
}

TEST("/session/pool/txn_numbers_per_session", session_pool_txn)
{
    mqc_session_pool_t p;
    mqc_session_pool_init(&p);
    mqc_session_t *a = mqc_session_checkout(&p, 30, 0), *b = mqc_session_checkout(&p, 30, 0);
    ASSERT_EQ(mqc_session_next_txn(a), 1);
    ASSERT_EQ(mqc_session_next_txn(a), 2);
    ASSERT_EQ(mqc_session_next_txn(b), 1);
    mqc_session_checkin(&p, a, 30, 0);
    a = mqc_session_checkout(&p, 30, 0);
    ASSERT_EQ(mqc_session_next_txn(a), 3); /* a reused session keeps counting up */
    mqc_session_checkin(&p, a, 30, 0);
    mqc_session_checkin(&p, b, 30, 0);
    mqc_session_pool_cleanup(&p);
}

TEST("/session/pool/dirty_discarded", session_pool_dirty)
{
    mqc_session_pool_t p;
    mqc_session_pool_init(&p);
    mqc_session_t *a = mqc_session_checkout(&p, 30, 0);
    a->dirty = true; /* a network error */
    mqc_session_checkin(&p, a, 30, 0);
    ASSERT_EQ(p.n_idle, 0);
    ASSERT_EQ(p.discarded, 1);
    mqc_session_t *b = mqc_session_checkout(&p, 30, 0);
    ASSERT_EQ(p.created, 2);
    ASSERT(!b->dirty);
    mqc_session_checkin(&p, b, 30, 0);
    mqc_session_pool_cleanup(&p);
}

TEST("/session/pool/expiry", session_pool_expiry)
{
    mqc_session_pool_t p;
    mqc_session_pool_init(&p);
    mqc_session_t *a = mqc_session_checkout(&p, 30, 0);
    mqc_session_checkin(&p, a, 30, 0);
    /* 28.5 minutes later: more than a minute left, reused */
    mqc_session_t *b = mqc_session_checkout(&p, 30, 28 * MIN_US + MIN_US / 2);
    ASSERT(b == a);
    mqc_session_checkin(&p, b, 30, 28 * MIN_US + MIN_US / 2);
    /* 29.5 minutes after its last use: within a minute of the timeout, discarded at checkout */
    int64_t t = 28 * MIN_US + MIN_US / 2 + 29 * MIN_US + MIN_US / 2;
    mqc_session_t *c = mqc_session_checkout(&p, 30, t);
    ASSERT_EQ(p.discarded, 1);
    ASSERT_EQ(p.created, 2);
    /* checkin prunes stale sessions from the back, and drops a stale one returned */
    mqc_session_t *d = mqc_session_checkout(&p, 30, t);
    mqc_session_checkin(&p, d, 30, t);
    mqc_session_checkin(&p, c, 30, t + 29 * MIN_US + MIN_US / 2); /* c itself is now stale too */
    ASSERT_EQ(p.n_idle, 0);
    ASSERT_EQ(p.discarded, 3);
    /* an unknown timeout (-1) never expires */
    mqc_session_t *e = mqc_session_checkout(&p, -1, 0);
    mqc_session_checkin(&p, e, -1, 1000 * MIN_US);
    ASSERT(mqc_session_checkout(&p, -1, 2000 * MIN_US) == e);
    mqc_session_checkin(&p, e, -1, 0);
    mqc_session_pool_cleanup(&p);
}

TEST("/session/pool/end_sessions_batches", session_pool_drain)
{
    enum { N = 25000 };
    mqc_session_pool_t p;
    mqc_session_pool_init(&p);
    mqc_session_t **s = malloc(N * sizeof *s);
    for (int i = 0; i < N; i++) s[i] = mqc_session_checkout(&p, 30, 0);
    for (int i = 0; i < N; i++) mqc_session_checkin(&p, s[i], 30, 0);
    uint8_t (*ids)[16] = malloc(MQC_SESSION_END_BATCH * sizeof *ids);
    size_t sizes[4], k = 0, n;
    srules_t seen = {0};
    while ((n = mqc_session_pool_drain(&p, ids, MQC_SESSION_END_BATCH)) > 0 && k < 4) {
        sizes[k++] = n;
        for (size_t i = 0; i < n; i++) srules_find(&seen, ids[i], true);
    }
    ASSERT_EQ(k, 3);
    ASSERT_EQ(sizes[0], 10000);
    ASSERT_EQ(sizes[1], 10000);
    ASSERT_EQ(sizes[2], 5000);
    ASSERT_EQ(seen.distinct, N); /* every id once */
    ASSERT_EQ(p.ended, N);
    ASSERT_EQ(p.n_idle, 0);
    srules_free(&seen);
    free(ids);
    free(s);
    mqc_session_pool_cleanup(&p);
}

TEST("/session/wire/elements_in_body", session_wire_elements)
{
    /* lsid and txnNumber joined to a body bigger than libbson's inline buffer, as sent */
    mqc_session_pool_t p;
    mqc_session_pool_init(&p);
    mqc_session_t *s = mqc_session_checkout(&p, 30, 0);
    bson_t body = BSON_INITIALIZER;
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    BSON_APPEND_UTF8(&body, "insert", "c");
    BSON_APPEND_UTF8(&body, "pad", big);
    BSON_APPEND_UTF8(&body, "$db", "db");
    for (int64_t txn = 0; txn <= 0x100000001LL; txn += 0x100000001LL) {
        uint8_t ext[MQC_SESSION_EXT_MAX];
        size_t n = mqc_session_elements(s, txn, ext);
        mqc_buf_t buf = {0};
        mqc_wire_msg_begin(&buf, 1, 0);
        mqc_wire_msg_body_ext(&buf, &body, ext, n);
        mqc_wire_msg_end(&buf);
        bson_t got;
        ASSERT(bson_init_static(&got, buf.data + 21, buf.len - 21));
        ASSERT(bson_validate(&got, BSON_VALIDATE_NONE, NULL));
        const uint8_t *id = srules_lsid(&got);
        ASSERT_NOT_NULL(id);
        ASSERT(memcmp(id, mqc_session_id(s), 16) == 0);
        bson_iter_t it;
        ASSERT(bson_iter_init_find(&it, &got, "pad"));
        ASSERT_STR_EQ(bson_iter_utf8(&it, NULL), big);
        ASSERT_EQ(bson_iter_init_find(&it, &got, "txnNumber"), txn > 0);
        if (txn > 0) ASSERT_EQ(bson_iter_int64(&it), txn);
        free(buf.data);
    }
    bson_destroy(&body);
    mqc_session_checkin(&p, s, 30, 0);
    mqc_session_pool_cleanup(&p);
}

/* ---- what the client sends, seen by a command monitor ------------------------------------ */

typedef struct {
    char name[32];
    bool has_lsid;
    uint8_t lsid[16];
    int64_t txn;      /* -1: none */
    int lsid_fields;  /* how many "lsid" keys the body has */
    int n_end_ids;    /* endSessions: how many ids */
} seen_cmd_t;

typedef struct {
    seen_cmd_t cmd[512];
    int n;
} seen_t;

static void on_command(const mqc_command_event_t *ev, void *ud)
{
    seen_t *s = ud;
    if (ev->type != MQC_COMMAND_STARTED || s->n >= (int) (sizeof s->cmd / sizeof s->cmd[0])) return;
    seen_cmd_t *c = &s->cmd[s->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", ev->command_name);
    const uint8_t *id = srules_lsid(ev->command);
    c->has_lsid = id != NULL;
    if (id) memcpy(c->lsid, id, 16);
    bson_iter_t it, arr;
    c->txn = bson_iter_init_find(&it, ev->command, "txnNumber") ? bson_iter_as_int64(&it) : -1;
    if (bson_iter_init(&it, ev->command))
        while (bson_iter_next(&it)) c->lsid_fields += !strcmp(bson_iter_key(&it), "lsid");
    if (bson_iter_init_find(&it, ev->command, "endSessions") && bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr)) c->n_end_ids++;
}

static mqc_client_t *client_for(const char *uri, seen_t *seen)
{
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, uri, &err);
    ASSERT_MSG(c, "%s", err.message);
    if (seen) {
        mqc_monitor_t m = {.command = on_command};
        mqc_client_set_monitor(c, &m, seen);
    }
    return c;
}

typedef struct {
    int done, failed;
    mqc_error_t error;
} res_t;

static void on_reply(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    res_t *r = ud;
    r->done++;
    if (error) {
        r->failed++;
        r->error = *error;
    }
}

/* Documents of n bytes of padding: past libbson's 120-byte inline buffer. */
static bson_t *pad_doc(int i, size_t n)
{
    char pad[400];
    if (n >= sizeof pad) n = sizeof pad - 1;
    memset(pad, 'a' + i % 26, n);
    pad[n] = 0;
    return BCON_NEW("_id", BCON_INT32(i), "pad", BCON_UTF8(pad));
}


static bson_t *big_doc(int i)
{
    char pad[400];
    memset(pad, 'a' + i % 26, sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    return BCON_NEW("_id", BCON_INT32(i), "pad", BCON_UTF8(pad));
}

TEST("/session/client/retry_keeps_session_and_txn", session_retry_keeps)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_play(s, FAKE_ROLE_PRIMARY, NULL);
    seen_t seen = {0};
    mqc_client_t *c = client_for(fakesrv_uri(s, "retryWrites=true"), &seen);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    res_t r = {0};
    bson_t *d = big_doc(1);
    mqc_collection_insert_one(coll, d, NULL, on_reply, &r); /* the handshake: a primary with sessions */
    ASSERT(mqc_client_run_until_idle(c, 5));
    fakesrv_set_mode(s, FAKE_HANGUP_BEFORE, 0, 1);
    int first = seen.n;
    mqc_collection_insert_one(coll, d, NULL, on_reply, &r);
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT_EQ(r.failed, 0);
    ASSERT_EQ(seen.n - first, 2); /* the attempt and its retry */
    seen_cmd_t *a = &seen.cmd[first], *b = &seen.cmd[first + 1];
    ASSERT(a->has_lsid && b->has_lsid);
    ASSERT(memcmp(a->lsid, b->lsid, 16) == 0);
    ASSERT_GT(a->txn, 0);
    ASSERT_EQ(a->txn, b->txn);
    /* the session that saw the network error is not reused */
    mqc_collection_insert_one(coll, d, NULL, on_reply, &r);
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT(memcmp(seen.cmd[seen.n - 1].lsid, a->lsid, 16) != 0);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_SESSIONS_DISCARDED), 1);
    fakesrv_sessions_t st;
    fakesrv_sessions(s, &st);
    ASSERT_EQ(st.too_old, 0);
    bson_destroy(d);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/session/client/bulk_batches_number_on_one_session", session_bulk_batches)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    bson_t *more = BCON_NEW("maxWriteBatchSize", BCON_INT32(10));
    fakesrv_play(s, FAKE_ROLE_MONGOS, more);
    bson_destroy(more);
    seen_t seen = {0};
    mqc_client_t *c = client_for(fakesrv_uri(s, NULL), &seen);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    res_t r = {0};
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    mqc_client_command(c, "admin", cmd, NULL, on_reply, &r);
    ASSERT(mqc_client_run_until_idle(c, 5));
    bson_t *docs[35];
    for (int i = 0; i < 35; i++) docs[i] = pad_doc(i, 200);
    int first = seen.n;
    mqc_collection_insert_many(coll, (const bson_t *const *) docs, 35, NULL, on_reply, &r);
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT_EQ(r.failed, 0);
    ASSERT_EQ(seen.n - first, 4); /* 10 + 10 + 10 + 5 */
    for (int i = 0; i < 4; i++) {
        ASSERT(seen.cmd[first + i].has_lsid);
        ASSERT(memcmp(seen.cmd[first + i].lsid, seen.cmd[first].lsid, 16) == 0);
        ASSERT_EQ(seen.cmd[first + i].txn, seen.cmd[first].txn + i); /* each batch its own number */
    }
    for (int i = 0; i < 35; i++) bson_destroy(docs[i]);
    bson_destroy(cmd);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/session/client/who_carries_lsid", session_who_carries)
{
    /* w: 0 writes carry none; a command with the user's lsid keeps it alone; every other kind
     * (find_one_and_*, aggregate, a gather's members, commands) carries the implicit one. */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_play(s, FAKE_ROLE_MONGOS, NULL);
    seen_t seen = {0};
    mqc_client_t *c = client_for(fakesrv_uri(s, NULL), &seen);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    res_t r = {0};
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    mqc_client_command(c, "admin", ping, NULL, on_reply, &r);
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT(seen.cmd[seen.n - 1].has_lsid);

    bson_t *d = big_doc(1), *w0 = BCON_NEW("writeConcern", "{", "w", BCON_INT32(0), "}");
    mqc_collection_insert_one(coll, d, w0, on_reply, &r);
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT_STR_EQ(seen.cmd[seen.n - 1].name, "insert");
    ASSERT(!seen.cmd[seen.n - 1].has_lsid);
    ASSERT_EQ(seen.cmd[seen.n - 1].txn, -1);

    uint8_t mine[16];
    memset(mine, 0x5a, sizeof mine);
    bson_t *own = BCON_NEW("ping", BCON_INT32(1), "lsid", "{", "id", BCON_BIN(BSON_SUBTYPE_UUID, mine, 16), "}");
    mqc_client_command(c, "admin", own, NULL, on_reply, &r);
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT_EQ(seen.cmd[seen.n - 1].lsid_fields, 1);
    ASSERT(memcmp(seen.cmd[seen.n - 1].lsid, mine, 16) == 0);

    bson_t *f = BCON_NEW("_id", BCON_INT32(1)), *u = BCON_NEW("$set", "{", "x", BCON_INT32(1), "}");
    int first = seen.n;
    mqc_collection_find_one_and_update(coll, f, u, NULL, on_reply, &r);
    mqc_gather_t *g = mqc_gather_new(c, MQC_GATHER_ALL);
    for (int i = 0; i < 5; i++) mqc_gather_add(g, mqc_collection_find_one(coll, f, NULL, NULL, NULL));
    mqc_gather_start(g, NULL, NULL);
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT_EQ(seen.n - first, 6);
    for (int i = first; i < seen.n; i++) {
        ASSERT_MSG(seen.cmd[i].has_lsid, "%s without lsid", seen.cmd[i].name);
        ASSERT_EQ(seen.cmd[i].lsid_fields, 1);
    }
    ASSERT_STR_EQ(seen.cmd[first].name, "findAndModify");
    ASSERT_GT(seen.cmd[first].txn, 0); /* a retryable write on a mongos */
    ASSERT_EQ(seen.cmd[first + 1].txn, -1);
    ASSERT_EQ(r.failed, 0);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_SESSIONS_IN_USE), 0);
    fakesrv_sessions_t st;
    fakesrv_sessions(s, &st);
    ASSERT_EQ(st.overlaps, 0);
    ASSERT_EQ(st.too_old, 0);
    bson_destroy(f);
    bson_destroy(u);
    bson_destroy(own);
    bson_destroy(d);
    bson_destroy(w0);
    bson_destroy(ping);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/session/client/end_sessions_on_destroy", session_end_on_destroy)
{
    /* 40 pings at once, each 20 ms on the server: 40 sessions, all ended in one endSessions. */
    fakesrv_t *s = fakesrv_start(FAKE_DELAY, 20);
    fakesrv_play(s, FAKE_ROLE_MONGOS, NULL);
    seen_t seen = {0};
    mqc_client_t *c = client_for(fakesrv_uri(s, "maxPoolSize=40"), &seen);
    res_t r = {0};
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    mqc_client_command(c, "admin", ping, NULL, on_reply, &r);
    ASSERT(mqc_client_run_until_idle(c, 5));
    for (int i = 0; i < 40; i++) mqc_client_command(c, "admin", ping, NULL, on_reply, &r);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT_EQ(r.failed, 0);
    int created = (int) mqc_client_stat(c, MQC_STAT_SESSIONS_CREATED);
    ASSERT_LE(created, 40);
    ASSERT_GE(created, 2);
    fakesrv_set_mode(s, FAKE_OK, 0, 0);
    mqc_client_destroy(c);
    seen_cmd_t *last = &seen.cmd[seen.n - 1];
    ASSERT_STR_EQ(last->name, "endSessions");
    ASSERT(!last->has_lsid);
    ASSERT_EQ(last->n_end_ids, created);
    fakesrv_sessions_t st;
    fakesrv_sessions(s, &st);
    ASSERT_EQ(st.distinct, (uint64_t) created);
    ASSERT_EQ(st.overlaps, 0);
    bson_destroy(ping);
    fakesrv_stop(s);
}

TEST("/session/client/end_sessions_bounded_when_server_hangs", session_end_bounded)
{
    /* The server stops answering: destroy still returns, within the bound (1 s). */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_play(s, FAKE_ROLE_MONGOS, NULL);
    mqc_client_t *c = client_for(fakesrv_uri(s, NULL), NULL);
    res_t r = {0};
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    mqc_client_command(c, "admin", ping, NULL, on_reply, &r);
    ASSERT(mqc_client_run_until_idle(c, 5));
    fakesrv_set_mode(s, FAKE_DELAY, 2500, 0);
    int64_t t0 = mqc_now_us();
    mqc_client_destroy(c);
    int64_t took = mqc_now_us() - t0;
    ASSERT_LT(took, 2 * 1000000);
    tf_note("destroy with a silent server: %.0f ms", took / 1e3);
    bson_destroy(ping);
    fakesrv_stop(s);
}

/* ---- cursors keep their session (stubd: real cursors) ------------------------------------- */

typedef struct {
    int batches;
    bool done, failed;
} cur_t;

static void on_batch_stop(mqc_cursor_t *cur, const bson_t *docs, size_t n, const mqc_error_t *err, void *ud)
{
    (void) cur;
    (void) docs;
    (void) n;
    cur_t *c = ud;
    c->batches++;
    c->failed |= err != NULL;
}

TEST("/session/client/cursor_keeps_its_session", session_cursor_keeps)
{
    chaos_stub_t st;
    const char *argv[] = {"--mongos", "--docs", "50", NULL};
    chaos_stub_start(&st, 0, argv);
    char uri[128];
    snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/", st.port);
    seen_t seen = {0};
    mqc_client_t *c = client_for(uri, &seen);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32(10)), *none = bson_new();
    cur_t cs = {0};
    mqc_cursor_t *cur = mqc_collection_find(coll, none, opts, on_batch_stop, &cs);
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT_EQ(cs.batches, 1);
    ASSERT(mqc_cursor_more(cur));
    uint8_t lsid[16];
    ASSERT(seen.cmd[seen.n - 1].has_lsid);
    memcpy(lsid, seen.cmd[seen.n - 1].lsid, 16);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_SESSIONS_IN_USE), 1); /* the cursor holds it */
    /* other operations meanwhile get other sessions */
    res_t r = {0};
    int first = seen.n;
    for (int i = 0; i < 20; i++) mqc_collection_find_one(coll, none, NULL, on_reply, &r);
    ASSERT(mqc_client_run_until_idle(c, 5));
    for (int i = first; i < seen.n; i++) ASSERT(memcmp(seen.cmd[i].lsid, lsid, 16) != 0);
    /* getMore and killCursors go with the cursor's */
    ASSERT(mqc_cursor_next(cur));
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT_STR_EQ(seen.cmd[seen.n - 1].name, "getMore");
    ASSERT(memcmp(seen.cmd[seen.n - 1].lsid, lsid, 16) == 0);
    mqc_cursor_destroy(cur);
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT_STR_EQ(seen.cmd[seen.n - 1].name, "killCursors");
    ASSERT(memcmp(seen.cmd[seen.n - 1].lsid, lsid, 16) == 0);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_SESSIONS_IN_USE), 0);
    /* an exhausted cursor gives it back by itself */
    cs = (cur_t){0};
    cur = mqc_collection_find(coll, none, NULL, on_batch_stop, &cs);
    ASSERT(mqc_client_run_until_idle(c, 5));
    ASSERT(!mqc_cursor_more(cur));
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_SESSIONS_IN_USE), 0);
    mqc_cursor_destroy(cur);
    ASSERT_EQ(r.failed, 0);
    bson_destroy(opts);
    bson_destroy(none);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    chaos_stub_stop(&st);
    ASSERT_EQ(chaos_stub_stat(&st, "overlaps"), 0);
}

/* ---- the scripted servers are strict: a client that breaks the rules is caught -------------- */

static bson_t *txn_insert(const uint8_t id[16], int64_t txn)
{
    return BCON_NEW("insert", "c", "documents", "[", "{", "x", BCON_INT32(1), "}", "]", "lsid", "{", "id",
                    BCON_BIN(BSON_SUBTYPE_UUID, id, 16), "}", "txnNumber", BCON_INT64(txn));
}

typedef struct {
    int done;
    bool failed;
    mqc_error_t error;
    bool labelled;
} strict_t;

static void on_strict(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    strict_t *r = ud;
    r->done++;
    if (error) {
        r->failed = true;
        r->error = *error;
        r->labelled = (error->labels & MQC_LABEL_RETRYABLE_WRITE) != 0;
    }
    (void) reply;
}

static void strict_server_checks(bool stub)
{
    /* Commands bringing their own lsid (sent as given): an older txnNumber is refused with
     * TransactionTooOld, not retryable; the same number again (a retry) is accepted; two
     * requests at once on one lsid are counted as an overlap. */
    chaos_stub_t st;
    fakesrv_t *s = NULL;
    char uri[128];
    if (stub) {
        const char *argv[] = {"--mongos", "--delay-us", "30000", NULL};
        chaos_stub_start(&st, 0, argv);
        snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/", st.port);
    } else {
        s = fakesrv_start(FAKE_DELAY, 30);
        fakesrv_play(s, FAKE_ROLE_MONGOS, NULL);
        snprintf(uri, sizeof uri, "%s", fakesrv_uri(s, NULL));
    }
    mqc_client_t *c = client_for(uri, NULL);
    uint8_t id[16];
    memset(id, 0x33, sizeof id);
    strict_t r5 = {0}, r3 = {0}, r5b = {0}, a = {0}, b = {0};
    bson_t *c5 = txn_insert(id, 5), *c3 = txn_insert(id, 3), *c7 = txn_insert(id, 7);
    mqc_client_command(c, "db", c5, NULL, on_strict, &r5);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT_MSG(!r5.failed, "%s", r5.error.message);
    mqc_client_command(c, "db", c3, NULL, on_strict, &r3);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT(r3.failed);
    ASSERT_EQ(r3.error.code, 225);
    ASSERT_STR_EQ(r3.error.code_name, "TransactionTooOld");
    ASSERT(!r3.labelled);
    mqc_client_command(c, "db", c5, NULL, on_strict, &r5b);
    ASSERT(mqc_client_run_until_idle(c, 10));
    ASSERT(!r5b.failed);
    /* two at once on one lsid */
    mqc_client_command(c, "db", c7, NULL, on_strict, &a);
    mqc_client_command(c, "db", c7, NULL, on_strict, &b); /* the same number: whichever comes first */
    ASSERT(mqc_client_run_until_idle(c, 10));
    mqc_client_destroy(c);
    uint64_t overlaps, too_old, distinct;
    if (stub) {
        chaos_stub_stop(&st);
        overlaps = (uint64_t) chaos_stub_stat(&st, "overlaps");
        too_old = (uint64_t) chaos_stub_stat(&st, "transaction_too_old");
        distinct = (uint64_t) chaos_stub_stat(&st, "distinct");
    } else {
        fakesrv_sessions_t ss;
        fakesrv_sessions(s, &ss);
        overlaps = ss.overlaps, too_old = ss.too_old, distinct = ss.distinct;
        fakesrv_stop(s);
    }
    ASSERT_EQ(overlaps, 1);
    ASSERT_EQ(too_old, 1);
    ASSERT_EQ(distinct, 1);
    bson_destroy(c5);
    bson_destroy(c3);
    bson_destroy(c7);
}

TEST("/session/strict/fakesrv", session_strict_fakesrv) { strict_server_checks(false); }
TEST("/session/strict/stubd", session_strict_stubd) { strict_server_checks(true); }
