/* Tests of lib/hotcmd.c: the hot commands written from prebuilt bytes are the generic builders'
 * bytes. Each case runs through the public API twice on one client, with the hot encoders on and
 * off (mqc_hotcmd_off, for tests only), and the two commands as the command monitor saw them
 * start must be equal byte for byte: find_one, insert_one, update_one, replace_one, delete_one,
 * with options the hot path takes and options it leaves to the generic one, with _id of every
 * BSON type, documents past the 120-byte inline buffer, URIs with a readConcern, a
 * writeConcern, w: 0, and servers with sessions (lsid, txnNumber) and a mongos (which adds
 * $readPreference). Then the reply scan against bson_iter_init_find, the hand walk of replies
 * against libbson's iterators on hostile and mutated replies (support/hotref.h), and hundreds in
 * flight through the free-lists. */
#include <ev.h>
#include <string.h>

#include "server/fakesrv.h"
#include "hotcmd.h"
#include "mqc.h"
#include "reply.h"
#include "support/hotref.h"
#include "support/result.h"
#include "tf.h"

typedef struct {
    bson_t *last; /* the latest command started (a copy) */
    int n;
} seen_t;

static void on_command(const mqc_command_event_t *ev, void *ud)
{
    seen_t *s = ud;
    if (ev->type != MQC_COMMAND_STARTED || !ev->command) return;
    if (s->last) bson_destroy(s->last);
    s->last = bson_copy(ev->command);
    s->n++;
}

typedef enum { K_FIND, K_INSERT, K_UPDATE, K_REPLACE, K_DELETE } kind_t;
static const char *const kind_name[] = {"find", "insert", "update", "update", "delete"};

/* Runs one operation, returns the command it started (the caller destroys it). */
static bson_t *run(mqc_client_t *c, seen_t *seen, mqc_collection_t *coll, kind_t k, const bson_t *a,
                   const bson_t *b, const bson_t *opts)
{
    tf_res_t r = {0};
    int before = seen->n;
    switch (k) {
    case K_FIND: mqc_collection_find_one(coll, a, opts, tf_res_cb, &r); break;
    case K_INSERT: mqc_collection_insert_one(coll, a, opts, tf_res_cb, &r); break;
    case K_UPDATE: mqc_collection_update_one(coll, a, b, opts, tf_res_cb, &r); break;
    case K_REPLACE: mqc_collection_replace_one(coll, a, b, opts, tf_res_cb, &r); break;
    case K_DELETE: mqc_collection_delete_one(coll, a, opts, tf_res_cb, &r); break;
    }
    tf_client_wait_idle(c, 20);
    ASSERT_EQ(r.calls, 1);
    ASSERT_MSG(!r.failed, "%s: %s", kind_name[k], r.error.message);
    ASSERT_EQ(seen->n, before + 1);
    bson_t *cmd = seen->last;
    seen->last = NULL;
    tf_res_cleanup(&r);
    return cmd;
}

/* The session's fields are the session's, not the builder's: the txnNumber grows from one write
 * to the next. Both commands must have them or neither. */
static bson_t *without_session(bson_t *cmd, bool *had)
{
    bson_t *out = bson_new();
    *had = bson_has_field(cmd, "lsid");
    bson_copy_to_excluding_noinit(cmd, out, "lsid", "txnNumber", NULL);
    bson_destroy(cmd);
    return out;
}

/* Set when reads must carry $readPreference (a secondary connected to directly). */
static bool expect_read_pref;

static char *json(const bson_t *b) { return bson_as_canonical_extended_json(b, NULL); }

/* The same operation with the hot encoders and without: the same command. */
static void same_both_ways(mqc_client_t *c, seen_t *seen, mqc_collection_t *coll, kind_t k, const bson_t *a,
                           const bson_t *b, const bson_t *opts, const char *label)
{
    bool had_hot, had_generic;
    mqc_hotcmd_off = false;
    bson_t *hot = without_session(run(c, seen, coll, k, a, b, opts), &had_hot);
    mqc_hotcmd_off = true;
    bson_t *generic = without_session(run(c, seen, coll, k, a, b, opts), &had_generic);
    mqc_hotcmd_off = false;
    ASSERT_EQ(had_hot, had_generic);
    if (hot->len != generic->len || memcmp(bson_get_data(hot), bson_get_data(generic), hot->len) != 0) {
        char *h = json(hot), *g = json(generic);
        FAIL("%s %s: the hot path's command differs from the generic one's:\n  hot:     %s\n  generic: %s",
             label, kind_name[k], h, g);
    }
    if (k == K_FIND && expect_read_pref) ASSERT(bson_has_field(hot, "$readPreference"));
    bson_destroy(hot);
    bson_destroy(generic);
}

static char pad[400];

/* Filters ({_id: v}) with _id of every type a key may have, and larger ones. */
static size_t make_filters(bson_t **out)
{
    size_t n = 0;
    bson_oid_t oid;
    bson_decimal128_t dec;
    uint8_t uuid[16];
    for (int i = 0; i < 16; i++) uuid[i] = (uint8_t) (i * 17);
    bson_oid_init_from_string(&oid, "5f1e2d3c4b5a69788796a5b4");
    bson_decimal128_from_string("12.5", &dec);
    memset(pad, 'k', sizeof pad - 1);
    out[n++] = BCON_NEW("_id", BCON_INT32(7));
    out[n++] = BCON_NEW("_id", BCON_INT64(1234567890123LL));
    out[n++] = BCON_NEW("_id", BCON_DOUBLE(1.5));
    out[n++] = BCON_NEW("_id", BCON_UTF8("key-17"));
    out[n++] = BCON_NEW("_id", BCON_OID(&oid));
    out[n++] = BCON_NEW("_id", BCON_BIN(BSON_SUBTYPE_UUID, uuid, 16));
    out[n++] = BCON_NEW("_id", BCON_DECIMAL128(&dec));
    out[n++] = BCON_NEW("_id", BCON_DATE_TIME(1600000000000LL));
    out[n++] = BCON_NEW("_id", BCON_BOOL(true));
    out[n++] = BCON_NEW("_id", BCON_NULL);
    out[n++] = BCON_NEW("_id", "{", "a", BCON_INT32(1), "b", BCON_UTF8("x"), "}");
    out[n++] = BCON_NEW("_id", BCON_UTF8(pad)); /* past 120 bytes: the command too */
    out[n++] = BCON_NEW("_id", BCON_INT32(3), "pad", BCON_UTF8(pad + 250));
    out[n++] = bson_new(); /* {} */
    return n;
}

static size_t make_opts(bson_t **out, bool write)
{
    size_t n = 0;
    out[n++] = NULL;
    out[n++] = bson_new();
    out[n++] = BCON_NEW("timeoutMS", BCON_INT64(20000));
    out[n++] = BCON_NEW("writeConcern", "{", "w", BCON_INT32(1), "}");
    out[n++] = BCON_NEW("writeConcern", "{", "w", BCON_UTF8("majority"), "j", BCON_BOOL(true), "}");
    out[n++] = BCON_NEW("comment", BCON_UTF8("c"));
    out[n++] = BCON_NEW("readConcern", "{", "level", BCON_UTF8("local"), "}");
    out[n++] = BCON_NEW("readPreference", "{", "mode", BCON_UTF8("primaryPreferred"), "}");
    out[n++] = BCON_NEW("hint", BCON_UTF8("_id_"));
    out[n++] = BCON_NEW("collation", "{", "locale", BCON_UTF8("en"), "}");
    out[n++] = BCON_NEW("timeoutMS", BCON_INT64(20000), "let", "{", "x", BCON_INT32(1), "}");
    if (write) {
        out[n++] = BCON_NEW("ordered", BCON_BOOL(false));
        out[n++] = BCON_NEW("upsert", BCON_BOOL(true));
        out[n++] = BCON_NEW("bypassDocumentValidation", BCON_BOOL(true));
        out[n++] = BCON_NEW("session", BCON_INT32(0), "ordered", BCON_BOOL(true));
        out[n++] = BCON_NEW("writeConcern", "{", "w", BCON_INT32(0), "}");
    } else {
        out[n++] = BCON_NEW("limit", BCON_INT32(5));
        out[n++] = BCON_NEW("batchSize", BCON_INT32(2), "singleBatch", BCON_BOOL(false));
        out[n++] = BCON_NEW("projection", "{", "a", BCON_INT32(1), "}");
        out[n++] = BCON_NEW("sort", "{", "a", BCON_INT32(-1), "}");
        out[n++] = BCON_NEW("maxTimeMS", BCON_INT32(100));
        out[n++] = BCON_NEW("$db", BCON_UTF8("other"));
    }
    return n;
}

static void free_all(bson_t **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]) bson_destroy(v[i]);
}

/* Every kind x filter/document x option set on one server and URI. */
static void every_case(fakesrv_t *s, const char *extra, const char *label)
{
    seen_t seen = {0};
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, extra));
    mqc_monitor_t m = {.command = on_command};
    mqc_client_set_monitor(c, &m, &seen);
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "hot_coll");
    bson_t *filters[32], *ropts[32], *wopts[32];
    size_t nf = make_filters(filters), nr = make_opts(ropts, false), nw = make_opts(wopts, true);
    bson_t *set = BCON_NEW("$set", "{", "a", BCON_INT32(1), "}");
    bson_t *set_big = BCON_NEW("$set", "{", "pad", BCON_UTF8(pad + 100), "}");
    bson_t *pipe = BCON_NEW("0", "{", "$set", "{", "a", BCON_INT32(2), "}", "}");
    bson_t *repl = BCON_NEW("a", BCON_INT32(1), "pad", BCON_UTF8(pad + 200));
    char what[128];
    for (size_t f = 0; f < nf; f++) {
        for (size_t o = 0; o < nr; o++) {
            snprintf(what, sizeof what, "%s filter %zu opts %zu", label, f, o);
            same_both_ways(c, &seen, coll, K_FIND, filters[f], NULL, ropts[o], what);
        }
        if (f + 1 < nf) { /* inserts need an _id to be repeatable: every filter but {} has one */
            bson_t *doc = bson_copy(filters[f]);
            BSON_APPEND_UTF8(doc, "pad", pad + (f % 2 ? 0 : 300)); /* past 120 bytes, or not */
            for (size_t o = 0; o < nw; o++) {
                snprintf(what, sizeof what, "%s doc %zu opts %zu", label, f, o);
                same_both_ways(c, &seen, coll, K_INSERT, doc, NULL, wopts[o], what);
            }
            bson_destroy(doc);
        }
        for (size_t o = 0; o < nw; o++) {
            snprintf(what, sizeof what, "%s filter %zu opts %zu", label, f, o);
            same_both_ways(c, &seen, coll, K_UPDATE, filters[f], o % 3 == 0 ? set_big : o % 3 == 1 ? set : pipe,
                           wopts[o], what);
            same_both_ways(c, &seen, coll, K_REPLACE, filters[f], repl, wopts[o], what);
            same_both_ways(c, &seen, coll, K_DELETE, filters[f], NULL, wopts[o], what);
        }
    }
    /* find_one without a filter */
    for (size_t o = 0; o < nr; o++) same_both_ways(c, &seen, coll, K_FIND, NULL, NULL, ropts[o], label);
    free_all(filters, nf);
    free_all(ropts, nr);
    free_all(wopts, nw);
    bson_destroy(set);
    bson_destroy(set_big);
    bson_destroy(pipe);
    bson_destroy(repl);
    tf_note("%s: %d commands compared in pairs", label, seen.n);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    if (seen.last) bson_destroy(seen.last); /* endSessions at destroy is the last one */
}

TEST("/hotcmd/same_bytes/standalone", hot_same_standalone)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    every_case(s, NULL, "standalone");
    every_case(s, "readConcernLevel=majority&w=majority&journal=true", "rc+wc");
    every_case(s, "w=0", "w0");
    fakesrv_stop(s);
}

TEST("/hotcmd/same_bytes/primary_with_sessions", hot_same_primary)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_play(s, FAKE_ROLE_PRIMARY, NULL);
    every_case(s, "retryWrites=true", "primary");
    every_case(s, "retryWrites=false&readConcernLevel=local&wtimeoutMS=1000&w=1", "primary+opts");
    fakesrv_stop(s);
}

TEST("/hotcmd/same_bytes/mongos_read_preference", hot_same_mongos)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_play(s, FAKE_ROLE_MONGOS, NULL);
    every_case(s, "readPreference=secondaryPreferred", "mongos");
    fakesrv_stop(s);
}

/* A replica set member that is not primary, connected to directly: mqc adds $readPreference
 * (primaryPreferred) to reads, rewriting the command the hot path wrote. */
TEST("/hotcmd/same_bytes/direct_secondary", hot_same_secondary)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    bson_t *more = BCON_NEW("isWritablePrimary", BCON_BOOL(false), "ismaster", BCON_BOOL(false), "secondary",
                            BCON_BOOL(true));
    fakesrv_play(s, FAKE_ROLE_PRIMARY, more);
    expect_read_pref = true;
    every_case(s, "directConnection=true", "secondary");
    bson_destroy(more);
    fakesrv_stop(s);
}

/* The encoders take the plain cases (else the tests above would compare the generic path with
 * itself) and refuse the rest without touching the command. */
TEST("/hotcmd/encoders/take_plain_refuse_rest", hot_take_refuse)
{
    bson_t cmd, *f = BCON_NEW("_id", BCON_INT32(1)), *rc = BCON_NEW("level", BCON_UTF8("majority"));
    bson_t *t = BCON_NEW("timeoutMS", BCON_INT64(5)), *proj = BCON_NEW("projection", "{", "a", BCON_INT32(1), "}");
    bson_t *rp = BCON_NEW("readPreference", "{", "mode", BCON_UTF8("nearest"), "}");
    bson_t *wc = BCON_NEW("writeConcern", "{", "w", BCON_INT32(1), "}");
    bson_t empty = BSON_INITIALIZER;
    static const char *const handled[] = {"ordered", NULL};
    bson_init(&cmd);
    ASSERT(mqc_hotcmd_find_one(&cmd, "c", "db", f, NULL, NULL));
    ASSERT(bson_validate(&cmd, BSON_VALIDATE_NONE, NULL));
    bson_reinit(&cmd);
    ASSERT(mqc_hotcmd_find_one(&cmd, "c", "db", NULL, t, rc));
    bson_reinit(&cmd);
    ASSERT(!mqc_hotcmd_find_one(&cmd, "c", "db", f, proj, NULL));
    ASSERT(!mqc_hotcmd_find_one(&cmd, "c", "db", f, rp, NULL));
    ASSERT(bson_empty(&cmd));
    ASSERT(mqc_hotcmd_write_body(&cmd, "insert", "c", "db", true, NULL, handled, &empty));
    bson_reinit(&cmd);
    ASSERT(mqc_hotcmd_write_body(&cmd, "update", "c", "db", false, t, handled, wc));
    ASSERT(bson_has_field(&cmd, "writeConcern"));
    bson_reinit(&cmd);
    ASSERT(!mqc_hotcmd_write_body(&cmd, "delete", "c", "db", true, proj, handled, &empty));
    ASSERT(bson_empty(&cmd));
    /* a command that is not empty is never written over */
    BSON_APPEND_INT32(&cmd, "x", 1);
    ASSERT(!mqc_hotcmd_find_one(&cmd, "c", "db", f, NULL, NULL));
    ASSERT(!mqc_hotcmd_write_body(&cmd, "insert", "c", "db", true, NULL, handled, &empty));
    mqc_hotcmd_off = true;
    bson_reinit(&cmd);
    ASSERT(!mqc_hotcmd_find_one(&cmd, "c", "db", f, NULL, NULL));
    mqc_hotcmd_off = false;
    bson_destroy(&cmd);
    bson_destroy(f);
    bson_destroy(rc);
    bson_destroy(t);
    bson_destroy(proj);
    bson_destroy(rp);
    bson_destroy(wc);
}

/* One pass finds what the separate look-ups found. */
TEST("/hotcmd/reply_scan/as_find_would", hot_reply_scan)
{
    bson_t *replies[] = {
        BCON_NEW("ok", BCON_INT32(1)),
        BCON_NEW("ok", BCON_INT32(0), "errmsg", BCON_UTF8("x")),
        BCON_NEW("ok", BCON_DOUBLE(1.0)),
        BCON_NEW("ok", BCON_DOUBLE(0.0)),
        BCON_NEW("ok", BCON_BOOL(false)),
        BCON_NEW("ok", BCON_UTF8("yes")),
        BCON_NEW("ok", BCON_NULL),
        BCON_NEW("cursor", "{", "firstBatch", "[", "]", "id", BCON_INT64(0), "}", "ok", BCON_INT32(1)),
        BCON_NEW("cursor", BCON_INT32(5), "ok", BCON_INT32(1)),
        BCON_NEW("ok", BCON_INT32(1), "writeConcernError", "{", "code", BCON_INT32(64), "}"),
        BCON_NEW("ok", BCON_INT32(1), "ok", BCON_INT32(0)),
        BCON_NEW("cursor", BCON_INT32(1), "cursor", "{", "id", BCON_INT64(0), "}", "ok", BCON_INT32(1)),
        BCON_NEW("okay", BCON_INT32(1), "o", BCON_INT32(1), "cursors", "{", "}", "writeConcernErrors", BCON_INT32(1)),
        bson_new(),
    };
    for (size_t i = 0; i < sizeof replies / sizeof replies[0]; i++) {
        mqc_hotcmd_reply_t scan;
        bson_iter_t it;
        mqc_hotcmd_reply_scan(replies[i], &scan);
        bool ok = bson_iter_init_find(&it, replies[i], "ok") && bson_iter_as_bool(&it);
        ASSERT_MSG(scan.ok == ok, "reply %zu: ok", i);
        ASSERT_MSG(scan.has_wce == bson_iter_init_find(&it, replies[i], "writeConcernError"), "reply %zu: wce", i);
        bool cur = bson_iter_init_find(&it, replies[i], "cursor") && BSON_ITER_HOLDS_DOCUMENT(&it);
        ASSERT_MSG(scan.has_cursor == cur, "reply %zu: cursor", i);
        if (cur) {
            uint32_t len;
            const uint8_t *data;
            bson_iter_document(&it, &len, &data);
            ASSERT(scan.cursor == data && scan.cursor_len == len);
        }
        bson_destroy(replies[i]);
    }
}

/* ---- the hand walk against libbson's iterators, on hostile replies ---------------------- */

/* A reply written byte by byte: elements appended raw, the length and terminator set by
 * raw_end (so that bson_init_static takes it, as the wire decoder would hand it over). */
typedef struct {
    uint8_t b[512];
    size_t n;
} raw_t;

static void raw_begin(raw_t *r) { r->n = 4; }

static void raw_put(raw_t *r, const void *p, size_t n)
{
    memcpy(r->b + r->n, p, n);
    r->n += n;
}

static void raw_el(raw_t *r, uint8_t type, const char *key, const void *val, size_t n)
{
    raw_put(r, &type, 1);
    raw_put(r, key, strlen(key) + 1);
    raw_put(r, val, n);
}

/* A nested document or array from another raw_t (its own length written as given). */
static void raw_doc(raw_t *r, uint8_t type, const char *key, const raw_t *doc)
{
    raw_el(r, type, key, doc->b, doc->n);
}

static void raw_end_len(raw_t *r, uint32_t len)
{
    r->b[r->n++] = 0;
    uint8_t *p = r->b;
    p[0] = (uint8_t) len, p[1] = (uint8_t) (len >> 8), p[2] = (uint8_t) (len >> 16), p[3] = (uint8_t) (len >> 24);
}

static void raw_end(raw_t *r)
{
    raw_end_len(r, (uint32_t) r->n + 1);
}

static void check_agree(const uint8_t *data, size_t len, const char *what, int i)
{
    bson_t reply;
    const char *why;
    if (!bson_init_static(&reply, data, len)) return; /* the wire decoder hands over no such reply */
    ASSERT_MSG(hotref_agree(&reply, &why), "%s %d: the hand walk differs on %s", what, i, why);
}

/* cursor: {firstBatch: [<first>], id: 0} with first's bytes as given */
static void cursor_with(raw_t *c, uint8_t first_type, const void *first, size_t n)
{
    raw_t batch;
    raw_begin(&batch);
    raw_el(&batch, first_type, "0", first, n);
    raw_end(&batch);
    raw_begin(c);
    raw_doc(c, BSON_TYPE_ARRAY, "firstBatch", &batch);
    int64_t zero = 0;
    raw_el(c, BSON_TYPE_INT64, "id", &zero, 8);
    raw_end(c);
}

TEST("/hotcmd/reply_walk/hostile_as_libbson", hot_reply_hostile)
{
    static const uint8_t doc_x[] = {12, 0, 0, 0, 0x10, 'x', 0, 7, 0, 0, 0, 0};
    raw_t r, c, d;
    int i = 0;
    /* "ok" of every type, and values libbson refuses (a bool that is not 0 or 1) */
    struct {
        uint8_t type;
        uint8_t v[16];
        size_t n;
    } oks[] = {
        {BSON_TYPE_INT32, {1}, 4}, {BSON_TYPE_INT32, {0}, 4}, {BSON_TYPE_INT32, {0, 0, 0, 0x80}, 4},
        {BSON_TYPE_INT64, {0}, 8}, {BSON_TYPE_INT64, {0, 0, 0, 0, 0, 1}, 8},
        {BSON_TYPE_DOUBLE, {0, 0, 0, 0, 0, 0, 0xF0, 0x3F}, 8},                /* 1.0 */
        {BSON_TYPE_DOUBLE, {0}, 8}, {BSON_TYPE_DOUBLE, {0, 0, 0, 0, 0, 0, 0, 0x80}, 8}, /* -0.0 */
        {BSON_TYPE_DOUBLE, {0, 0, 0, 0, 0, 0, 0xF8, 0x7F}, 8},                /* NaN */
        {BSON_TYPE_DOUBLE, {1}, 8},                                           /* denormal */
        {BSON_TYPE_BOOL, {1}, 1}, {BSON_TYPE_BOOL, {0}, 1}, {BSON_TYPE_BOOL, {2}, 1},
        {BSON_TYPE_UTF8, {1, 0, 0, 0, 0}, 5}, {BSON_TYPE_UTF8, {0, 0, 0, 0, 0}, 5}, /* length 0: corrupt */
        {BSON_TYPE_UTF8, {2, 0, 0, 0, 'x', 'y'}, 6},                          /* no NUL: corrupt */
        {BSON_TYPE_NULL, {0}, 0}, {BSON_TYPE_UNDEFINED, {0}, 0}, {BSON_TYPE_MINKEY, {0}, 0},
        {BSON_TYPE_MAXKEY, {0}, 0}, {BSON_TYPE_DOCUMENT, {5, 0, 0, 0, 0}, 5}, {BSON_TYPE_ARRAY, {5, 0, 0, 0, 0}, 5},
        {BSON_TYPE_OID, {1}, 12}, {BSON_TYPE_DATE_TIME, {0}, 8}, {BSON_TYPE_TIMESTAMP, {1}, 8},
        {BSON_TYPE_DECIMAL128, {0}, 16}, {BSON_TYPE_BINARY, {1, 0, 0, 0, 0, 'b'}, 6},
        {BSON_TYPE_REGEX, {'a', 0, 'i', 0}, 4}, {BSON_TYPE_CODE, {1, 0, 0, 0, 0}, 5},
        {BSON_TYPE_SYMBOL, {1, 0, 0, 0, 0}, 5}, {0x14, {0}, 0}, {0x80, {0}, 4},
    };
    for (size_t k = 0; k < sizeof oks / sizeof oks[0]; k++) {
        for (int after = 0; after < 2; after++) {
            raw_begin(&r);
            if (after) raw_el(&r, BSON_TYPE_INT32, "n", "\1\0\0\0", 4);
            raw_el(&r, oks[k].type, "ok", oks[k].v, oks[k].n);
            /* what follows a corrupt element is never seen */
            raw_el(&r, BSON_TYPE_DOCUMENT, "writeConcernError", "\5\0\0\0\0", 5);
            raw_end(&r);
            check_agree(r.b, r.n, "ok type", i++);
        }
    }
    /* keys: long ones near the end (the eight-byte steps), empty, cut by the end */
    const char *keys[] = {"", "o", "ok", "okk", "cursor", "cursors", "cursor_", "writeConcernError",
                          "writeConcernErro", "writeConcernErrors", "0123456", "01234567", "012345678",
                          "0123456789abcdef", "0123456789abcdefg"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        raw_begin(&r);
        raw_el(&r, BSON_TYPE_INT32, keys[k], "\1\0\0\0", 4);
        raw_el(&r, BSON_TYPE_INT32, "ok", "\1\0\0\0", 4);
        raw_el(&r, BSON_TYPE_NULL, keys[k], "", 0);
        raw_end(&r);
        check_agree(r.b, r.n, "keys", i++);
        for (size_t cut = 5; cut < r.n; cut++) { /* the reply cut short, its length and NUL kept true */
            raw_t t = r;
            t.n = cut - 1;
            raw_end(&t);
            check_agree(t.b, t.n, "cut", (int) cut);
        }
    }
    /* cursors: not a document, twice, lengths that lie, batches of every shape */
    raw_begin(&r);
    raw_el(&r, BSON_TYPE_INT32, "cursor", "\1\0\0\0", 4);
    cursor_with(&c, BSON_TYPE_DOCUMENT, doc_x, sizeof doc_x);
    raw_doc(&r, BSON_TYPE_DOCUMENT, "cursor", &c);
    raw_el(&r, BSON_TYPE_INT32, "ok", "\1\0\0\0", 4);
    raw_end(&r);
    check_agree(r.b, r.n, "cursor twice", i++);
    struct {
        uint8_t type;
        const void *v;
        size_t n;
    } firsts[] = {
        {BSON_TYPE_DOCUMENT, doc_x, sizeof doc_x},
        {BSON_TYPE_DOCUMENT, "\5\0\0\0\0", 5},
        {BSON_TYPE_DOCUMENT, "\4\0\0\0\0", 5},               /* below 5: bson_init_static refuses */
        {BSON_TYPE_DOCUMENT, "\5\0\0\0\1", 5},               /* no terminator */
        {BSON_TYPE_DOCUMENT, "\0\0\0\0\0", 5},
        {BSON_TYPE_DOCUMENT, "\xff\0\0\0\0", 5},             /* overruns the batch */
        {BSON_TYPE_INT32, "\1\0\0\0", 4},
        {BSON_TYPE_BINARY, "\1\0\0\0\0x", 6},
        {BSON_TYPE_ARRAY, "\5\0\0\0\0", 5},
        {0, "", 0},
    };
    for (size_t k = 0; k < sizeof firsts / sizeof firsts[0]; k++) {
        cursor_with(&c, firsts[k].type, firsts[k].v, firsts[k].n);
        for (int shape = 0; shape < 6; shape++) {
            raw_begin(&d);
            if (shape == 1) raw_el(&d, BSON_TYPE_INT32, "firstBatch", "\1\0\0\0", 4); /* not an array */
            if (shape == 2) raw_el(&d, BSON_TYPE_BINARY, "b", "\1\0\0\0\0x", 6);      /* before the batch */
            if (shape == 3) raw_el(&d, BSON_TYPE_REGEX, "r", "a\0i", 4);
            raw_put(&d, c.b + 4, c.n - 5); /* the cursor's elements */
            raw_end(&d);
            if (shape == 4) d.b[0] = 4;    /* the cursor's length below 5 */
            if (shape == 5) d.b[d.n - 1] = 1; /* the cursor's last byte not a NUL */
            raw_begin(&r);
            if (shape == 3) raw_el(&r, BSON_TYPE_REGEX, "r", "a\0i", 4); /* the scan falls back too */
            raw_doc(&r, BSON_TYPE_DOCUMENT, "cursor", &d);
            raw_el(&r, BSON_TYPE_DOUBLE, "ok", "\0\0\0\0\0\0\xf0\x3f", 8);
            raw_end(&r);
            check_agree(r.b, r.n, "cursor shape", (int) (k * 10 + (size_t) shape));
            /* the nextBatch of a getMore */
            uint8_t *fb = memmem(r.b, r.n, "firstBatch", 10);
            if (fb) {
                raw_t t = r;
                size_t at = (size_t) (fb - r.b);
                memcpy(t.b + at, "nextBatch", 10); /* one byte shorter: its NUL, then "h\0" */
                check_agree(t.b, t.n, "nextBatch", i++);
            }
        }
    }
    /* the outer length above what the bytes hold, a terminator in the middle */
    raw_begin(&r);
    raw_el(&r, BSON_TYPE_INT32, "ok", "\1\0\0\0", 4);
    raw_end_len(&r, 200);
    check_agree(r.b, r.n, "length", i++);
    raw_begin(&r);
    raw_el(&r, BSON_TYPE_INT32, "n", "\1\0\0\0", 4);
    raw_put(&r, "\0", 1);
    raw_el(&r, BSON_TYPE_INT32, "ok", "\1\0\0\0", 4);
    raw_end(&r);
    check_agree(r.b, r.n, "early end", i++);
    /* a cursor whose length runs to the reply's end, or past it */
    for (uint32_t l = 0; l < 40; l++) {
        cursor_with(&c, BSON_TYPE_DOCUMENT, doc_x, sizeof doc_x);
        raw_begin(&r);
        raw_doc(&r, BSON_TYPE_DOCUMENT, "cursor", &c);
        raw_end(&r);
        size_t at = 4 + 1 + 7;
        uint32_t len = (uint32_t) c.n - 20 + l;
        r.b[at] = (uint8_t) len, r.b[at + 1] = (uint8_t) (len >> 8), r.b[at + 2] = 0, r.b[at + 3] = 0;
        check_agree(r.b, r.n, "cursor length", (int) l);
    }
    /* the scan's shortcut (the batch first in the cursor, its element "0" first in the batch):
     * other first keys, and a cursor or a batch that ends inside those keys */
    const char *first_keys[] = {"0", "", "00", "1", "0\x01", "01234567", "0123456789"};
    for (size_t k = 0; k < sizeof first_keys / sizeof first_keys[0]; k++) {
        raw_t batch;
        raw_begin(&batch);
        raw_el(&batch, BSON_TYPE_DOCUMENT, first_keys[k], doc_x, sizeof doc_x);
        raw_end(&batch);
        for (int next = 0; next < 2; next++) {
            raw_begin(&c);
            raw_doc(&c, BSON_TYPE_ARRAY, next ? "nextBatch" : "firstBatch", &batch);
            raw_end(&c);
            for (uint32_t cl = 4; cl <= c.n + 1; cl++) {
                for (uint32_t bl = 4; bl <= batch.n + 1; bl += (cl == c.n ? 1 : batch.n)) {
                    raw_begin(&r);
                    raw_doc(&r, BSON_TYPE_DOCUMENT, "cursor", &c);
                    raw_el(&r, BSON_TYPE_INT32, "ok", "\1\0\0\0", 4);
                    raw_end(&r);
                    size_t at = 4 + 1 + 7, bat = at + 4 + 1 + (next ? 10 : 11);
                    r.b[at] = (uint8_t) cl;
                    r.b[bat] = (uint8_t) bl;
                    check_agree(r.b, r.n, "batch shortcut", (int) (k * 1000 + cl * 10 + (uint32_t) next));
                }
            }
        }
    }
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Replies of the hot path and their neighbours, bytes changed at random: lengths, types, NULs,
 * cuts. Whatever libbson's iterators make of one, the hand walk makes the same. */
TEST("/hotcmd/reply_walk/mutated_as_libbson", hot_reply_mutated)
{
    char big[200];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = 0;
    bson_t *seeds[] = {
        BCON_NEW("cursor", "{", "firstBatch", "[", "{", "_id", BCON_INT64(42), "pad", BCON_UTF8(big), "}", "]", "id",
                 BCON_INT64(0), "ns", BCON_UTF8("db.c"), "}", "ok", BCON_DOUBLE(1.0)),
        BCON_NEW("cursor", "{", "id", BCON_INT64(7), "ns", BCON_UTF8("db.c"), "nextBatch", "[", "{", "a", BCON_INT32(1),
                 "}", "{", "b", BCON_INT32(2), "}", "]", "}", "ok", BCON_INT32(1)),
        BCON_NEW("cursor", "{", "firstBatch", "[", "]", "id", BCON_INT64(0), "}", "ok", BCON_INT32(1),
                 "operationTime", BCON_TIMESTAMP(1, 2), "$clusterTime", "{", "clusterTime", BCON_TIMESTAMP(1, 2), "}"),
        BCON_NEW("n", BCON_INT32(1), "writeConcernError", "{", "code", BCON_INT32(64), "errmsg", BCON_UTF8("w"), "}",
                 "ok", BCON_BOOL(true)),
        BCON_NEW("ok", BCON_INT32(0), "errmsg", BCON_UTF8("not primary"), "code", BCON_INT32(10107), "codeName",
                 BCON_UTF8("NotWritablePrimary")),
        BCON_NEW("cursor", "{", "firstBatch", "[", "{", "bin", BCON_BIN(0, (const uint8_t *) "abc", 3), "}", "]", "}",
                 "ok", BCON_INT64(1)),
    };
    uint64_t seed = 0x9E3779B97F4A7C15u;
    uint8_t b[512];
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        const uint8_t *src = bson_get_data(seeds[k]);
        size_t n0 = seeds[k]->len;
        ASSERT(n0 <= sizeof b);
        check_agree(src, n0, "seed", (int) k);
        for (int round = 0; round < 50000; round++) {
            size_t n = n0;
            memcpy(b, src, n);
            int changes = 1 + (int) (rng_next(&seed) % 4);
            for (int j = 0; j < changes; j++) {
                size_t at = 4 + (size_t) (rng_next(&seed) % (n - 5));
                uint64_t v = rng_next(&seed);
                switch (v % 6) {
                case 0: b[at] = (uint8_t) (v >> 8); break;
                case 1: b[at] = 0; break;
                case 2: b[at] = (uint8_t) ((v >> 8) % 0x14); break; /* a type byte */
                case 3: b[at] = 0xFF; break;
                case 4: /* a length: small, or near what is left */
                    if (at + 4 < n) {
                        uint32_t l = (v >> 8) & 1 ? (uint32_t) ((v >> 9) % 16) : (uint32_t) (n - at - (v >> 9) % 8);
                        b[at] = (uint8_t) l, b[at + 1] = (uint8_t) (l >> 8), b[at + 2] = 0, b[at + 3] = 0;
                    }
                    break;
                default: /* cut short */
                    n = at + 1;
                    break;
                }
                if (n < 6) n = 6;
            }
            b[n - 1] = 0;
            b[0] = (uint8_t) n, b[1] = (uint8_t) (n >> 8), b[2] = 0, b[3] = 0;
            check_agree(b, n, "mutation", round);
        }
        bson_destroy(seeds[k]);
    }
}

/* Hundreds in flight, twice: the second round runs on ops and commands from the free-lists
 * (commands past 120 bytes among them), and every one gets its callback. */
TEST("/hotcmd/free_lists/hundreds_in_flight", hot_free_lists)
{
    enum { N = 600 };
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "maxPoolSize=8"));
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    memset(pad, 'p', sizeof pad - 1);
    for (int round = 0; round < 2; round++) {
        tf_res_t r = {0};
        for (int i = 0; i < N; i++) {
            bson_t *f = i % 3 ? BCON_NEW("_id", BCON_INT32(i)) : BCON_NEW("_id", BCON_UTF8(pad + i % 100));
            if (i % 4 == 3) mqc_collection_insert_one(coll, f, NULL, tf_res_cb, &r);
            else mqc_collection_find_one(coll, f, NULL, tf_res_cb, &r);
            bson_destroy(f);
        }
        tf_client_wait_idle(c, 60);
        ASSERT_EQ(r.calls, N);
        ASSERT_EQ(r.errors, 0);
        tf_res_cleanup(&r);
    }
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_OPS_COMPLETED), 2 * N);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

/* ---- a write's reply: the one-pass fold against libbson's look-ups ---------------------- */

/* hot 0: libbson's look-ups alone; 1: the fold's own scan; 2: op.c's scan of the reply */
static void fold_both(const bson_t *reply, mqc_write_kind_t kind, mqc_write_result_t *res, bool *stop, int hot)
{
    mqc_hotcmd_reply_t scan;
    mqc_hotcmd_reply_scan(reply, &scan);
    mqc_hotcmd_off = hot == 0;
    mqc_write_result_init(res);
    stop[0] = mqc_write_result_fold(res, kind, 10, 3, reply, hot == 2 ? &scan : NULL);
    stop[1] = mqc_write_result_fold(res, kind, 13, 3, reply, hot == 2 ? &scan : NULL); /* the next batch */
    mqc_hotcmd_off = false;
}

static void fold_agree(const uint8_t *data, size_t len, const char *what, int i)
{
    bson_t reply;
    if (!bson_init_static(&reply, data, len)) return; /* the wire decoder hands over no such reply */
    for (int k = 0; k < 6; k++) {
        int kind = MQC_WRITE_INSERT + k / 2;
        mqc_write_result_t a, b;
        bool sa[2], sb[2];
        fold_both(&reply, (mqc_write_kind_t) kind, &a, sa, 0);
        fold_both(&reply, (mqc_write_kind_t) kind, &b, sb, 1 + k % 2);
        ASSERT_MSG(sa[0] == sb[0] && sa[1] == sb[1], "%s %d kind %d: write errors", what, i, kind);
        ASSERT_MSG(a.inserted == b.inserted && a.matched == b.matched && a.modified == b.modified &&
                       a.deleted == b.deleted && a.upserted == b.upserted,
                   "%s %d kind %d: counts", what, i, kind);
        ASSERT_MSG(a.n_write_errors == b.n_write_errors && a.n_wc_errors == b.n_wc_errors && a.has_error == b.has_error,
                   "%s %d kind %d: errors", what, i, kind);
        ASSERT_MSG(bson_equal(&a.upserted_ids, &b.upserted_ids) && bson_equal(&a.write_errors, &b.write_errors) &&
                       bson_equal(&a.wc_errors, &b.wc_errors),
                   "%s %d kind %d: documents", what, i, kind);
        ASSERT_MSG(!a.has_error || (a.first_error.domain == b.first_error.domain &&
                                    a.first_error.code == b.first_error.code &&
                                    strcmp(a.first_error.message, b.first_error.message) == 0),
                   "%s %d kind %d: first error", what, i, kind);
        mqc_write_result_cleanup(&a);
        mqc_write_result_cleanup(&b);
    }
}

TEST("/hotcmd/write_fold/mutated_as_libbson", hot_write_fold)
{
    bson_t *seeds[] = {
        BCON_NEW("n", BCON_INT32(1), "ok", BCON_DOUBLE(1.0)),
        BCON_NEW("n", BCON_INT32(2), "nModified", BCON_INT32(1), "ok", BCON_INT32(1)),
        BCON_NEW("n", BCON_INT64(3), "upserted", "[", "{", "index", BCON_INT32(1), "_id", BCON_INT32(7), "}", "{",
                 "index", BCON_INT64(9), "_id", BCON_UTF8("x"), "}", "]", "nModified", BCON_DOUBLE(1.5), "ok",
                 BCON_INT32(1)),
        BCON_NEW("n", BCON_INT32(0), "writeErrors", "[", "{", "index", BCON_INT32(0), "code", BCON_INT32(11000),
                 "errmsg", BCON_UTF8("dup"), "}", "]", "ok", BCON_INT32(1)),
        BCON_NEW("n", BCON_DOUBLE(2.0), "writeConcernError", "{", "code", BCON_INT32(64), "errmsg", BCON_UTF8("w"),
                 "}", "nModified", BCON_INT64(-4), "ok", BCON_BOOL(true)),
        BCON_NEW("ok", BCON_INT32(1), "n", BCON_UTF8("1"), "n", BCON_INT32(5), "nModified", BCON_NULL, "nModified",
                 BCON_INT32(2), "upserted", BCON_INT32(1), "writeErrors", "{", "}"),
        /* a type the walk does not read: libbson does it all */
        BCON_NEW("r", BCON_REGEX("a", "i"), "n", BCON_INT32(1), "writeErrors", "[", "{", "index", BCON_INT32(2),
                 "code", BCON_INT32(2), "errmsg", BCON_UTF8("bad"), "}", "]", "ok", BCON_INT32(1)),
        BCON_NEW("n", BCON_INT32(1), "b", BCON_BIN(0, (const uint8_t *) "abc", 3), "nModified", BCON_INT32(1),
                 "writeConcernError", "{", "code", BCON_INT32(100), "}", "ok", BCON_INT32(1)),
        bson_new(),
    };
    uint64_t seed = 0x2545F4914F6CDD1Du;
    uint8_t b[512];
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        const uint8_t *src = bson_get_data(seeds[k]);
        size_t n0 = seeds[k]->len;
        ASSERT(n0 <= sizeof b);
        fold_agree(src, n0, "seed", (int) k);
        for (int round = 0; n0 > 6 && round < 20000; round++) {
            size_t n = n0;
            memcpy(b, src, n);
            int changes = 1 + (int) (rng_next(&seed) % 3);
            for (int j = 0; j < changes; j++) {
                size_t at = 4 + (size_t) (rng_next(&seed) % (n - 5));
                uint64_t v = rng_next(&seed);
                switch (v % 5) {
                case 0: b[at] = (uint8_t) (v >> 8); break;
                case 1: b[at] = 0; break;
                case 2: b[at] = (uint8_t) ((v >> 8) % 0x14); break; /* a type byte */
                case 3: /* a length: small, or near what is left */
                    if (at + 4 < n) {
                        uint32_t l = (v >> 8) & 1 ? (uint32_t) ((v >> 9) % 16) : (uint32_t) (n - at - (v >> 9) % 8);
                        b[at] = (uint8_t) l, b[at + 1] = (uint8_t) (l >> 8), b[at + 2] = 0, b[at + 3] = 0;
                    }
                    break;
                default: n = at + 1; break; /* cut short */
                }
                if (n < 6) n = 6;
            }
            b[n - 1] = 0;
            b[0] = (uint8_t) n, b[1] = (uint8_t) (n >> 8), b[2] = 0, b[3] = 0;
            fold_agree(b, n, "mutation", (int) (k * 100000 + (size_t) round));
        }
        bson_destroy(seeds[k]);
    }
}

/* The short copies (hotcmd.c's put_short) at every length around their cases: names of 0 to 40
 * bytes and filters of 5 to 45, written as libbson writes them, for find_one and a write body. */
TEST("/hotcmd/encoders/name_and_filter_lengths", hot_name_filter_lengths)
{
    char name[48], db[48], key[48];
    for (size_t n = 0; n <= 40; n++) {
        memset(name, 'a' + (int) (n % 26), n);
        name[n] = 0;
        memset(db, 'z' - (int) (n % 26), n);
        db[n] = 0;
        /* {k: 1} with a key of n bytes: 11 + n bytes, and {} */
        memset(key, 'k', n);
        key[n] = 0;
        bson_t f, want, got;
        bson_init(&f);
        if (n) BSON_APPEND_INT32(&f, key, 1);
        const char *dbs[] = {db, name};
        for (int d = 0; d < 2; d++) {
            bson_init(&want);
            bson_append_utf8(&want, "find", 4, name, -1);
            BSON_APPEND_DOCUMENT(&want, "filter", &f);
            BSON_APPEND_INT32(&want, "limit", 1);
            BSON_APPEND_BOOL(&want, "singleBatch", true);
            BSON_APPEND_UTF8(&want, "$db", dbs[d]);
            bson_init(&got);
            ASSERT(mqc_hotcmd_find_one(&got, name, dbs[d], &f, NULL, NULL));
            ASSERT_EQ(got.len, want.len);
            ASSERT(memcmp(bson_get_data(&got), bson_get_data(&want), want.len) == 0);
            bson_destroy(&got);
            bson_destroy(&want);
            bson_init(&want);
            BSON_APPEND_UTF8(&want, "insert", name);
            BSON_APPEND_BOOL(&want, "ordered", true);
            BSON_APPEND_UTF8(&want, "$db", dbs[d]);
            bson_init(&got);
            ASSERT(mqc_hotcmd_write_body(&got, "insert", name, dbs[d], true, NULL, NULL, NULL));
            ASSERT_EQ(got.len, want.len);
            ASSERT(memcmp(bson_get_data(&got), bson_get_data(&want), want.len) == 0);
            bson_destroy(&got);
            bson_destroy(&want);
        }
        bson_destroy(&f);
    }
}
