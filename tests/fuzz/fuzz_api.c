// fuzz-sources: lib/*.c tests/server/srv.c tests/server/reply.c tests/server/docsrv.c tests/server/docsrv_eval.c tests/propgen.c
// fuzz-options: -max_len=512 -timeout=20
/* libFuzzer target over the public API: the input is a script of submit (insert_one,
 * insert_many past maxWriteBatchSize, update/replace/delete, find_one, find_one_and_*, bulks),
 * cancel, cursor next/destroy, gather (of pending operations, nested, cancelled), loop turns and
 * client destroy, with random documents (propgen: every BSON type, sizes up to the server's
 * maxBsonObjectSize) against docsrv, the in-process scripted server, with small limits so that
 * batches split.
 *
 * Checks: every operation's callback fires exactly once (also when cancelled, grouped, or when
 * the client is destroyed with it pending); a gather's callback fires once with as many slots as
 * were added; a cursor's callbacks stop after an error or the end; nothing leaks or is touched
 * after free (ASan/UBSan). */
#include <bson/bson.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../server/docsrv.h"
#include "../propgen.h"
#include "mqc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz_api: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

#define MAX_OPS 96
#define MAX_CURSORS 8
#define MAX_GATHERS 8

typedef struct {
    mqc_op_t *op;           /* valid while !done */
    int calls;
    bool grouped;
} slot_t;

typedef struct {
    mqc_cursor_t *cur;
    bool ended;             /* error or exhausted: no callback may follow */
    int after_end;
} curslot_t;

typedef struct {
    int calls;
    size_t added, size;
} gslot_t;

static slot_t g_ops[MAX_OPS];
static int g_nops;
static curslot_t g_curs[MAX_CURSORS]; /* never reused within an input: a destroyed cursor's
                                        * cancelled batch may still be reported to its slot */
static int g_ncurs;
static gslot_t g_gathers[MAX_GATHERS];
static int g_ngathers;
static docsrv_t *g_srv;

static void on_op(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op, (void) reply, (void) error;
    slot_t *s = ud;
    s->calls++;
}

static void on_batch(mqc_cursor_t *cur, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    (void) docs, (void) n;
    curslot_t *c = ud;
    if (c->ended) c->after_end++;
    if (error || !mqc_cursor_more(cur)) c->ended = true;
}

static void on_gather(mqc_gather_t *g, const mqc_error_t *error, void *ud)
{
    (void) error;
    gslot_t *s = ud;
    s->calls++;
    s->size = mqc_gather_size(g);
}

static bson_t *doc(pg_rng_t *r, int max)
{
    bson_t tmp;
    pg_doc(r, &tmp, (int32_t) pg_below(r, 40), (int32_t) pg_below(r, 4), pg_size(r, 0, (size_t) max), PG_TYPES_ALL);
    bson_t *d = bson_copy(&tmp);
    bson_destroy(&tmp);
    return d;
}

static mqc_op_t *submit(pg_rng_t *r, mqc_collection_t *coll, slot_t *s)
{
    bson_t *f = BCON_NEW("_id", BCON_INT32((int32_t) pg_below(r, 40)));
    bson_t *u = BCON_NEW("$set", "{", "v", BCON_INT32((int32_t) pg_below(r, 9)), "}");
    bson_t *d = doc(r, 70000);
    mqc_op_t *op = NULL;
    switch (pg_below(r, 10)) {
    case 0: op = mqc_collection_insert_one(coll, d, NULL, on_op, s); break;
    case 1: {
        size_t n = 1 + pg_below(r, 130);
        bson_t **docs = malloc(n * sizeof *docs);
        for (size_t i = 0; i < n; i++) docs[i] = doc(r, i % 16 ? 300 : 40000);
        bson_t *o = BCON_NEW("ordered", BCON_BOOL(pg_below(r, 2)));
        op = mqc_collection_insert_many(coll, (const bson_t *const *) docs, n, o, on_op, s);
        for (size_t i = 0; i < n; i++) bson_destroy(docs[i]);
        free(docs);
        bson_destroy(o);
        break;
    }
    case 2: op = mqc_collection_update_one(coll, f, u, NULL, on_op, s); break;
    case 3: op = mqc_collection_replace_one(coll, f, d, NULL, on_op, s); break;
    case 4: op = mqc_collection_delete_one(coll, f, NULL, on_op, s); break;
    case 5: op = mqc_collection_find_one(coll, f, NULL, on_op, s); break;
    case 6: op = mqc_collection_find_one_and_update(coll, f, u, NULL, on_op, s); break;
    case 7: op = mqc_collection_find_one_and_delete(coll, f, NULL, on_op, s); break;
    case 8: {
        mqc_bulk_t *b = mqc_collection_bulk_new(coll, NULL);
        mqc_error_t e;
        for (uint32_t i = 0, n = 1 + pg_below(r, 150); i < n; i++) {
            switch (pg_below(r, 4)) {
            case 0: mqc_bulk_insert(b, d, &e); break; /* duplicate _id: a write error, the bulk stops */
            case 1: mqc_bulk_update_one(b, f, u, NULL, &e); break;
            case 2: mqc_bulk_replace_one(b, f, d, NULL, &e); break;
            default: mqc_bulk_delete_many(b, f, NULL, &e); break;
            }
        }
        op = mqc_bulk_execute(b, on_op, s);
        break;
    }
    default: op = mqc_collection_update_many(coll, f, u, NULL, on_op, s); break;
    }
    bson_destroy(f), bson_destroy(u), bson_destroy(d);
    return op;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const docsrv_limits_t lim = {64 * 1024, 192 * 1024, 100};
    if (!g_srv) g_srv = docsrv_start(&lim);
    pg_rng_t r;
    pg_from_bytes(&r, data, size);
    memset(g_ops, 0, sizeof g_ops), memset(g_curs, 0, sizeof g_curs), memset(g_gathers, 0, sizeof g_gathers);
    g_nops = g_ngathers = g_ncurs = 0;
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, docsrv_uri(g_srv, "maxPoolSize=4"), &err);
    CHECK(c);
    mqc_collection_t *coll = mqc_client_get_collection(c, "fuzz", "api");
    bool destroyed = false;
    while (r.pos < r.len && !destroyed) {
        uint32_t a = pg_below(&r, 16);
        if (a < 6 && g_nops < MAX_OPS) { /* submit */
            slot_t *s = &g_ops[g_nops++];
            s->op = submit(&r, coll, s);
            CHECK(s->op);
        } else if (a < 8 && g_nops) { /* cancel a pending op */
            slot_t *s = &g_ops[pg_below(&r, (uint32_t) g_nops)];
            if (s->calls == 0 && !s->grouped) mqc_op_cancel(s->op);
        } else if (a == 8) { /* open a cursor */
            int i = g_ncurs;
            if (i < MAX_CURSORS) {
                g_ncurs++;
                bson_t *o = BCON_NEW("batchSize", BCON_INT32((int32_t) pg_below(&r, 5)));
                bson_t *filter = bson_new();
                g_curs[i].ended = false;
                g_curs[i].cur = mqc_collection_find(coll, filter, o, on_batch, &g_curs[i]);
                bson_destroy(o), bson_destroy(filter);
            }
        } else if (a == 9) { /* next or destroy a cursor */
            curslot_t *cs = &g_curs[pg_below(&r, MAX_CURSORS)]; /* an unopened one is a no-op */
            if (cs->cur && pg_below(&r, 2)) mqc_cursor_next(cs->cur);
            else if (cs->cur) {
                mqc_cursor_destroy(cs->cur);
                cs->cur = NULL;
            }
        } else if (a == 10 && g_ngathers < MAX_GATHERS) { /* a gather of the pending ungrouped ops */
            gslot_t *gs = &g_gathers[g_ngathers++];
            mqc_gather_t *g = mqc_gather_new(c, (mqc_gather_mode_t) pg_below(&r, 3));
            for (int i = 0; i < g_nops; i++)
                if (g_ops[i].calls == 0 && !g_ops[i].grouped && pg_below(&r, 2) && mqc_gather_add(g, g_ops[i].op)) {
                    g_ops[i].grouped = true;
                    gs->added++;
                }
            if (pg_below(&r, 8) == 0) {
                mqc_gather_destroy(g); /* never started: its ops are cancelled, no gather callback */
                gs->calls = -1;
            } else {
                mqc_op_t *gop = mqc_gather_start(g, on_gather, gs);
                if (pg_below(&r, 4) == 0) mqc_op_cancel(gop);
            }
        } else if (a < 15) { /* loop turns */
            for (uint32_t i = 0, n = 1 + pg_below(&r, 4); i < n; i++) ev_run(mqc_client_get_loop(c), EVRUN_NOWAIT);
        } else if (pg_below(&r, 4) == 0) { /* destroy with operations pending */
            destroyed = true;
        }
    }
    if (!destroyed) CHECK(mqc_client_run_until_idle(c, 15));
    for (int i = 0; i < MAX_CURSORS; i++)
        if (g_curs[i].cur) mqc_cursor_destroy(g_curs[i].cur);
    mqc_collection_destroy(coll);
    mqc_client_destroy(c);
    for (int i = 0; i < g_nops; i++) CHECK(g_ops[i].calls == 1);
    for (int i = 0; i < g_ngathers; i++) {
        if (g_gathers[i].calls == -1) continue;
        CHECK(g_gathers[i].calls == 1);
        CHECK(g_gathers[i].size == g_gathers[i].added);
    }
    for (int i = 0; i < MAX_CURSORS; i++) CHECK(g_curs[i].after_end == 0);
    return 0;
}
