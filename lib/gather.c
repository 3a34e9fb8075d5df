/* gather: one callback for a group of operations, results in the order added (asyncio.gather).
 * The group is itself an operation (its "own op"), so it can be cancelled and nested. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op.h"

typedef struct {
    mqc_op_t *op;                /* valid until done */
    bson_t *reply;
    mqc_error_t error;
    bool done, failed;
} slot_t;

struct mqc_gather {
    mqc_client_t *client;
    mqc_gather_mode_t mode;
    slot_t *slots;
    size_t n, cap, n_done, n_ok, n_err;
    mqc_op_t *own;
    mqc_gather_cb cb;
    void *ud;
    bool started, decided;
    long winner;
    mqc_error_t first_error;
    bool has_first_error;
};

static void on_member_done(mqc_op_t *member, const bson_t *reply, const mqc_error_t *error);

mqc_gather_t *mqc_gather_new(mqc_client_t *client, mqc_gather_mode_t mode)
{
    mqc_gather_t *g = calloc(1, sizeof *g);
    if (!g) abort();
    g->client = client;
    g->mode = mode;
    g->winner = -1;
    return g;
}

static void gather_free(mqc_gather_t *g)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->slots[i].reply) bson_destroy(g->slots[i].reply);
    free(g->slots);
    free(g);
}

static void cancel_pending(mqc_gather_t *g)
{
    for (size_t i = 0; i < g->n; i++)
        if (!g->slots[i].done && g->slots[i].op) mqc_op_cancel(g->slots[i].op);
}

void mqc_gather_destroy(mqc_gather_t *g)
{
    if (!g) return;
    if (g->started) return; /* owned by the library now */
    for (size_t i = 0; i < g->n; i++)
        if (!g->slots[i].done && g->slots[i].op) {
            g->slots[i].op->on_done = NULL;
            mqc_op_cancel(g->slots[i].op);
        }
    gather_free(g);
}

bool mqc_gather_add(mqc_gather_t *g, mqc_op_t *op)
{
    if (!g || !op || g->started || op->on_done || op->state == MQC_OP_DONE || op->client != g->client) return false;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->slots = realloc(g->slots, g->cap * sizeof *g->slots);
        if (!g->slots) abort();
    }
    memset(&g->slots[g->n], 0, sizeof g->slots[g->n]);
    g->slots[g->n].op = op;
    op->on_done = on_member_done;
    op->done_ctx = g;
    op->done_slot = g->n++;
    return true;
}

/* The nested form of the results: {"results": [...], "errors": [...]}. */
static void build_summary(mqc_gather_t *g, bson_t *out)
{
    bson_t res, errs;
    char key[24];
    bson_init(out);
    BSON_APPEND_ARRAY_BEGIN(out, "results", &res);
    for (size_t i = 0; i < g->n; i++) {
        snprintf(key, sizeof key, "%zu", i);
        if (g->slots[i].reply) BSON_APPEND_DOCUMENT(&res, key, g->slots[i].reply);
        else BSON_APPEND_NULL(&res, key);
    }
    bson_append_array_end(out, &res);
    BSON_APPEND_ARRAY_BEGIN(out, "errors", &errs);
    for (size_t i = 0; i < g->n; i++) {
        snprintf(key, sizeof key, "%zu", i);
        if (!g->slots[i].failed) {
            BSON_APPEND_NULL(&errs, key);
            continue;
        }
        bson_t e;
        BSON_APPEND_DOCUMENT_BEGIN(&errs, key, &e);
        BSON_APPEND_UTF8(&e, "domain", mqc_error_domain_name(g->slots[i].error.domain));
        BSON_APPEND_INT32(&e, "code", g->slots[i].error.code);
        BSON_APPEND_UTF8(&e, "codeName", g->slots[i].error.code_name);
        BSON_APPEND_UTF8(&e, "message", g->slots[i].error.message);
        bson_append_document_end(&errs, &e);
    }
    bson_append_array_end(out, &errs);
}

static void gather_complete(mqc_gather_t *g, bool later)
{
    void (*finish)(mqc_op_t *, const bson_t *, const mqc_error_t *) = later ? mqc_op_finish_later : mqc_op_finish;
    const mqc_error_t *err = g->has_first_error ? &g->first_error : NULL;
    if (g->own->on_done) { /* a member of another gather */
        bson_t summary;
        build_summary(g, &summary);
        finish(g->own, &summary, err);
        bson_destroy(&summary);
    } else {
        finish(g->own, NULL, err);
    }
}

/* A member's end, after its own callback (mqc_op_t.on_done). */
static void on_member_done(mqc_op_t *member, const bson_t *reply, const mqc_error_t *error)
{
    mqc_gather_t *g = member->done_ctx;
    slot_t *s = &g->slots[member->done_slot];
    s->done = true;
    s->op = NULL;
    g->n_done++;
    if (reply) s->reply = bson_copy(reply);
    if (error) {
        s->error = *error;
        s->failed = true;
        g->n_err++;
    } else {
        g->n_ok++;
    }
    if (!g->decided) {
        if (g->mode == MQC_GATHER_FIRST) {
            g->decided = true;
            g->winner = (long) member->done_slot;
            if (error) g->first_error = *error, g->has_first_error = true;
            cancel_pending(g);
        } else if (g->mode == MQC_GATHER_FAIL_FAST && error) {
            g->decided = true;
            g->first_error = *error;
            g->has_first_error = true;
            cancel_pending(g);
        }
    }
    if (g->started && g->n_done == g->n) gather_complete(g, false);
}

static void own_done(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    mqc_gather_t *g = ud;
    if (g->cb) g->cb(g, error, g->ud);
}

static void own_cancel(mqc_op_t *op)
{
    mqc_gather_t *g = op->impl;
    if (!g->decided && g->mode != MQC_GATHER_ALL) {
        g->decided = true;
        mqc_error_set(&g->first_error, MQC_ERROR_CANCELLED, 0, "gather was cancelled");
        g->has_first_error = true;
    }
    cancel_pending(g);
}

static void own_destroy(mqc_op_t *op)
{
    if (op->impl) gather_free(op->impl);
}

static const mqc_op_vt_t gather_vt = {"gather", NULL, NULL, NULL, own_destroy, own_cancel, -1};

mqc_op_t *mqc_gather_start(mqc_gather_t *g, mqc_gather_cb cb, void *ud)
{
    mqc_client_t *client = g->client;
    g->cb = cb;
    g->ud = ud;
    g->started = true;
    g->own = mqc_op_new(client, &gather_vt, "gather", NULL, own_done, g);
    g->own->impl = g;
    g->own->group = true;
    g->own->state = MQC_OP_ACTIVE;
    g->own->deadline_us = 0;
    /* On a closing client the members failed already or will: the gather ends with them. */
    if (g->n_done == g->n) gather_complete(g, true); /* never call back from inside the application's call */
    return g->own;
}

size_t mqc_gather_size(const mqc_gather_t *g) { return g->n; }
const bson_t *mqc_gather_reply(const mqc_gather_t *g, size_t i) { return i < g->n ? g->slots[i].reply : NULL; }
const mqc_error_t *mqc_gather_error(const mqc_gather_t *g, size_t i)
{
    return i < g->n && g->slots[i].failed ? &g->slots[i].error : NULL;
}
long mqc_gather_winner(const mqc_gather_t *g) { return g->winner; }
size_t mqc_gather_ok_count(const mqc_gather_t *g) { return g->n_ok; }
size_t mqc_gather_error_count(const mqc_gather_t *g) { return g->n_err; }
