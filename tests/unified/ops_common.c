/* Helpers of the unified runner's operations: waiting for results, cursor entities, options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "../spec/spec.h"

/* ---- waiting for results ---------------------------------------------------------------------- */


void uxo_res_free(res_t *r)
{
    if (r->reply) bson_destroy(r->reply);
    for (size_t i = 0; i < r->n; i++) bson_destroy(r->docs[i]);
    free(r->docs);
}

void uxo_on_reply(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    res_t *r = ud;
    r->done = true;
    if (reply) r->reply = bson_copy(reply);
    if (error) {
        r->err = *error;
        r->has_err = true;
    }
}

void uxo_push_doc(res_t *r, const bson_t *d)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        if (!(r->docs = realloc(r->docs, r->cap * sizeof *r->docs))) abort();
    }
    r->docs[r->n++] = bson_copy(d);
}

/* Drains a cursor: every batch, then done. */
void uxo_on_batch_all(mqc_cursor_t *c, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    res_t *r = ud;
    if (error) {
        r->err = *error;
        r->has_err = r->done = true;
        return;
    }
    for (size_t i = 0; i < n; i++) uxo_push_doc(r, &docs[i]);
    if (!mqc_cursor_more(c) || !mqc_cursor_next(c)) r->done = true;
}

/* Runs the loop until *done; an operation that never ends is a failure of mqc (every operation
 * ends in one callback), reported by the caller as a missing result, not a hung run. */
void uxo_wait_for(mqc_client_t *client, bool *done)
{
    for (int i = 0; i < 300 && !*done; i++) mqc_client_run_until_idle(client, 0.1);
}

/* ---- cursor entities -------------------------------------------------------------------------- */


void uxo_on_batch_one(mqc_cursor_t *c, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    struct ux_cursor *uc = ud;
    uc->batch_pending = false;
    if (error) {
        uc->r.err = *error;
        uc->r.has_err = true;
        return;
    }
    for (size_t i = 0; i < n; i++) uxo_push_doc(&uc->r, &docs[i]);
}

void ux_cursor_free(struct ux_cursor *c)
{
    if (!c) return;
    mqc_cursor_destroy(c->cursor);
    /* A batch still asked for calls back (cancelled) from the loop: not into freed memory. */
    for (int i = 0; i < 300 && c->batch_pending; i++) mqc_client_run_until_idle(c->client, 0.1);
    if (c->batch_pending) return; /* leaked rather than written after free */
    uxo_res_free(&c->r);
    free(c);
}

struct ux_cursor *uxo_cursor_wrap(mqc_client_t *client)
{
    struct ux_cursor *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->client = client;
    c->batch_pending = true;
    return c;
}

void uxo_cursor_wait(struct ux_cursor *c)
{
    for (int i = 0; i < 300 && c->batch_pending; i++) mqc_client_run_until_idle(c->client, 0.1);
}

/* ---- helpers ---------------------------------------------------------------------------------- */


bool uxo_bad(call_t *c, const char *fmt, const char *what)
{
    char m[512];
    snprintf(m, sizeof m, fmt, what);
    return ux_set(&c->run->v, 1, "%s: %s", c->name, m);
}

bool uxo_lacks(call_t *c, const char *feature)
{
    c->skip = true;
    return ux_set(&c->run->v, 2, SKIP_MQC "%s", feature);
}

bool uxo_arg_doc(call_t *c, const char *key, bson_t *out, bool required)
{
    if (spec_sub(c->args, key, out)) return true;
    if (required) uxo_bad(c, "argument \"%s\" is missing or not a document", key);
    return false;
}

/* opts: every argument but the ones named (which the call takes apart itself). */
bool uxo_opts_from_args(call_t *c, bson_t *opts, const char *const *taken)
{
    bson_iter_t it;
    bson_init(opts);
    if (!bson_iter_init(&it, c->args)) return true;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        bool skip = false;
        for (const char *const *t = taken; t && *t; t++)
            if (!strcmp(*t, k)) skip = true;
        if (skip) continue;
        if (!strcmp(k, "session")) {
            bson_destroy(opts);
            return uxo_lacks(c, "explicit sessions");
        }
        if (!strcmp(k, "rawData")) {
            bson_destroy(opts);
            return uxo_lacks(c, "the rawData option (left out for servers before 8.2)");
        }
        if (!strcmp(k, "timeoutMode") || !strcmp(k, "cursorType")) {
            bson_destroy(opts);
            return uxo_lacks(c, k);
        }
        if (!strcmp(k, "returnDocument")) {
            const char *v = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
            if (strcmp(v, "Before") && strcmp(v, "After")) {
                bson_destroy(opts);
                return uxo_bad(c, "returnDocument \"%s\" is neither Before nor After", v);
            }
            BSON_APPEND_UTF8(opts, "returnDocument", !strcmp(v, "After") ? "after" : "before");
            continue;
        }
        bson_append_iter(opts, k, -1, &it);
    }
    /* The handle's options (collectionOptions, databaseOptions); runCommand takes none of them. */
    if (c->obj && c->obj->defaults && strcmp(c->name, "runCommand") && strcmp(c->name, "runCursorCommand") &&
        strcmp(c->name, "createCommandCursor") && bson_iter_init(&it, c->obj->defaults))
        while (bson_iter_next(&it))
            if (!bson_has_field(opts, bson_iter_key(&it))) bson_append_iter(opts, bson_iter_key(&it), -1, &it);
    return true;
}

void uxo_set_result_doc(call_t *c, const bson_t *d)
{
    c->result.value_type = BSON_TYPE_DOCUMENT;
    c->result.value.v_doc.data = bson_malloc(d->len);
    memcpy(c->result.value.v_doc.data, bson_get_data(d), d->len);
    c->result.value.v_doc.data_len = d->len;
    c->has_result = true;
}

void uxo_set_result_docs(call_t *c, bson_t **docs, size_t n)
{
    bson_t arr = BSON_INITIALIZER;
    char key[24];
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%zu", i);
        BSON_APPEND_DOCUMENT(&arr, key, docs[i]);
    }
    uxo_set_result_doc(c, &arr);
    c->result.value_type = BSON_TYPE_ARRAY;
    bson_destroy(&arr);
}

void uxo_set_result_field(call_t *c, const bson_t *d, const char *key)
{
    bson_iter_t it;
    if (d && bson_iter_init_find(&it, d, key)) {
        bson_value_copy(bson_iter_value(&it), &c->result);
        c->has_result = true;
    } else {
        c->result.value_type = BSON_TYPE_NULL;
        c->has_result = true;
    }
}
