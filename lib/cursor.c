/* cursor: find/aggregate, then getMore on demand on the server that opened it, one batch per
 * callback; killCursors when a live cursor is destroyed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cursor.h"
#include "handles.h"
#include "op.h"
#include "reply.h"

struct mqc_cursor {
    mqc_client_t *client;        /* NULL once the client is gone */
    mqc_link_t link;             /* mqc_ops_t.cursors */
    mqc_batch_cb cb;
    void *ud;
    char db[64];
    char *coll;                  /* from the reply's ns */
    int64_t id;
    int32_t batch_size;
    bson_t getmore_extra;        /* comment, maxTimeMS (as maxAwaitTimeMS is for tailable only) */
    mqc_server_t *server;        /* the server holding the cursor */
    mqc_op_t *op;                /* the batch request in flight */
    mqc_session_t *session;      /* the implicit session of the opening command, until the
                                  * cursor is exhausted or killed: getMore and killCursors
                                  * must go with the lsid that opened it */
    int64_t timeout_ms;
    uint64_t count;
    bool started, exhausted, dead;
    bool in_cb, destroy_requested;
    bson_t *docs;
    size_t docs_cap;
    const char *array_key;       /* static: the reply array read as the only batch, or NULL */
};

static void cursor_free(mqc_cursor_t *c);

static void kill_server_cursor(mqc_cursor_t *c)
{
    if (!c->client || mqc_ops_of(c->client)->closing || c->id == 0 || !c->server || c->dead) return;
    bson_t cmd, ids;
    bson_init(&cmd);
    bson_append_utf8(&cmd, "killCursors", -1, c->coll, -1);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "cursors", &ids);
    BSON_APPEND_INT64(&ids, "0", c->id);
    bson_append_array_end(&cmd, &ids);
    mqc_op_t *op = mqc_cmd_op_new(c->client, c->db, &cmd, NULL, NULL);
    op->pin = c->server;
    op->session = c->session; /* the kill op gives it back when it is done */
    op->no_session = !c->session;
    c->session = NULL;
    mqc_op_submit(op);
    bson_destroy(&cmd);
    c->id = 0;
}

/* Takes "db.coll" (the reply's ns) as the cursor's names; a malformed ns keeps the old ones. */
static void take_ns(mqc_cursor_t *c, const char *ns, uint32_t len)
{
    char *coll;
    if (!mqc_ns_split(ns, len, c->db, sizeof c->db, &coll)) return;
    free(c->coll);
    c->coll = coll;
}

static void deliver(mqc_cursor_t *c, const bson_t *docs, size_t n, const mqc_error_t *err)
{
    c->in_cb = true;
    if (c->cb) c->cb(c, docs, n, err, c->ud);
    c->in_cb = false;
    if (c->destroy_requested) cursor_free(c);
}

/* The cursor is over on the server (exhausted, or an error): its session goes back. */
static void release_session(mqc_cursor_t *c)
{
    if (c->session && c->client) mqc_op_session_checkin(c->client, c->session);
    c->session = NULL;
}

static void on_batch(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    mqc_cursor_t *c = ud;
    c->op = NULL;
    if (!c->server) c->server = op->server;
    if (op->session && !op->session_borrowed && !c->session) {
        /* The opening command's session (session_keep): the cursor's from now on. */
        c->session = op->session;
        op->session = NULL;
    }
    if (error) {
        c->dead = true;
        release_session(c);
        /* A cursor the server knows is still worth killing unless the server said it is gone. */
        deliver(c, NULL, 0, error);
        return;
    }
    mqc_cursor_reply_t cr;
    if (!mqc_cursor_reply_parse(reply, &cr)) {
        mqc_error_t e;
        mqc_error_set(&e, MQC_ERROR_PROTOCOL, 0, "%s: the reply has no cursor document", mqc_op_get_name(op));
        c->dead = true;
        release_session(c);
        deliver(c, NULL, 0, &e);
        return;
    }
    c->id = cr.id;
    if (cr.ns) take_ns(c, cr.ns, cr.ns_len);
    size_t n = cr.has_batch ? mqc_batch_collect(&cr.batch, &c->docs, &c->docs_cap) : 0;
    c->count += n;
    if (c->id == 0) {
        c->exhausted = true;
        release_session(c);
    }
    deliver(c, c->docs, n, NULL);
}

static mqc_cursor_t *cursor_new_in(mqc_client_t *client, const char *db, const char *coll, const bson_t *opts,
                                   mqc_batch_cb cb, void *ud)
{
    mqc_cursor_t *c = calloc(1, sizeof *c);
    bson_iter_t it;
    if (!c) abort();
    c->client = client;
    c->cb = cb;
    c->ud = ud;
    snprintf(c->db, sizeof c->db, "%s", db);
    c->coll = strdup(coll);
    bson_init(&c->getmore_extra);
    if (opts && bson_iter_init_find(&it, opts, "batchSize") && BSON_ITER_HOLDS_NUMBER(&it))
        c->batch_size = (int32_t) bson_iter_as_int64(&it);
    if (opts && bson_iter_init_find(&it, opts, "comment")) bson_append_iter(&c->getmore_extra, "comment", -1, &it);
    if (opts && bson_iter_init_find(&it, opts, "timeoutMS") && BSON_ITER_HOLDS_NUMBER(&it))
        c->timeout_ms = bson_iter_as_int64(&it);
    mqc_list_push_back(&mqc_ops_of(client)->cursors, &c->link);
    return c;
}

/* listDatabases answers with a plain array: seen as a cursor's only batch, so that every
 * catalog listing reads the same way. */
static void on_array_reply(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    mqc_cursor_t *c = ud;
    bson_iter_t it;
    if (error || !reply || !bson_iter_init_find(&it, reply, c->array_key) || !BSON_ITER_HOLDS_ARRAY(&it)) {
        on_batch(op, reply, error, ud);
        return;
    }
    bson_t wrapped = BSON_INITIALIZER, cur;
    BSON_APPEND_DOCUMENT_BEGIN(&wrapped, "cursor", &cur);
    BSON_APPEND_INT64(&cur, "id", 0);
    bson_append_iter(&cur, "firstBatch", -1, &it);
    bson_append_document_end(&wrapped, &cur);
    on_batch(op, &wrapped, NULL, ud);
    bson_destroy(&wrapped);
}

mqc_cursor_t *mqc_cursor_open(mqc_client_t *client, const char *db, const char *coll, bson_t *cmd,
                              const bson_t *opts, bool retryable, const char *array_key, mqc_batch_cb cb, void *ud)
{
    mqc_cursor_t *c = cursor_new_in(client, db, coll, opts, cb, ud);
    c->array_key = array_key;
    c->op = mqc_cmd_op_new(c->client, c->db, cmd, array_key ? on_array_reply : on_batch, c);
    c->op->retry = retryable ? MQC_RETRY_READ : MQC_RETRY_NONE;
    c->op->session_keep = true; /* getMore and killCursors go with the lsid that opened it */
    mqc_op_set_timeout_from(c->op, opts);
    bson_iter_t it;
    if (opts && bson_iter_init_find(&it, opts, "readPreference") && BSON_ITER_HOLDS_DOCUMENT(&it))
        bson_append_iter(&((mqc_cmd_impl_t *) c->op->impl)->cmd, "$readPreference", -1, &it);
    c->started = true;
    bson_destroy(cmd);
    mqc_op_submit(c->op);
    return c;
}

void mqc_cursor_set_getmore_max_time(mqc_cursor_t *c, int64_t ms)
{
    bson_t rest = BSON_INITIALIZER;
    bson_copy_to_excluding_noinit(&c->getmore_extra, &rest, "maxTimeMS", NULL);
    bson_reinit(&c->getmore_extra);
    bson_concat(&c->getmore_extra, &rest);
    bson_destroy(&rest);
    if (ms > 0) BSON_APPEND_INT64(&c->getmore_extra, "maxTimeMS", ms);
}

mqc_cursor_t *mqc_cursor_start(mqc_client_t *client, const char *db, const char *coll, bson_t *cmd, const bson_t *opts,
                               bool retryable, mqc_batch_cb cb, void *ud)
{
    mqc_cursor_t *c = cursor_new_in(client, db, coll, opts, cb, ud);
    c->op = mqc_cmd_op_new(c->client, c->db, cmd, on_batch, c);
    /* The opening find/aggregate is a retryable read (an aggregate that writes is not); getMore
     * is not (the cursor lives on one server, and a lost reply may have advanced it). */
    c->op->retry = retryable ? MQC_RETRY_READ : MQC_RETRY_NONE;
    c->op->session_keep = true;
    mqc_op_set_timeout_from(c->op, opts);
    c->started = true;
    bson_destroy(cmd);
    mqc_op_submit(c->op);
    return c;
}

bool mqc_cursor_next(mqc_cursor_t *c)
{
    if (!c || !c->client || c->op || c->exhausted || c->dead || c->destroy_requested || !c->server) return false;
    bson_t cmd;
    bson_init(&cmd);
    BSON_APPEND_INT64(&cmd, "getMore", c->id);
    bson_append_utf8(&cmd, "collection", -1, c->coll, -1);
    if (c->batch_size > 0) BSON_APPEND_INT32(&cmd, "batchSize", c->batch_size);
    bson_concat(&cmd, &c->getmore_extra);
    c->op = mqc_cmd_op_new(c->client, c->db, &cmd, on_batch, c);
    c->op->pin = c->server;
    c->op->session = c->session;
    c->op->session_borrowed = true;
    c->op->no_session = !c->session; /* opened without one: its getMore too */
    if (c->timeout_ms > 0) c->op->deadline_us = c->op->start_us + c->timeout_ms * 1000;
    bson_destroy(&cmd);
    mqc_op_submit(c->op);
    return true;
}

bool mqc_cursor_more(const mqc_cursor_t *c) { return c && !c->exhausted && !c->dead && c->client; }
int64_t mqc_cursor_id(const mqc_cursor_t *c) { return c ? c->id : 0; }
uint64_t mqc_cursor_count(const mqc_cursor_t *c) { return c ? c->count : 0; }

static void cursor_free(mqc_cursor_t *c)
{
    kill_server_cursor(c);
    release_session(c); /* when no killCursors took it */
    if (c->client) mqc_list_remove(&c->link);
    bson_destroy(&c->getmore_extra);
    free(c->docs);
    free(c->coll);
    free(c);
}

void mqc_cursor_destroy(mqc_cursor_t *c)
{
    if (!c || c->destroy_requested) return;
    c->destroy_requested = true;
    if (c->in_cb) return; /* freed when the callback returns */
    if (c->op) {
        /* The request's callback still comes (cancelled) and frees the cursor afterwards. */
        mqc_op_cancel(c->op);
        return;
    }
    cursor_free(c);
}

void mqc_cursor_detach_all(mqc_client_t *client)
{
    mqc_link_t *l;
    while ((l = mqc_list_pop_front(&mqc_ops_of(client)->cursors))) {
        mqc_cursor_t *c = mqc_container_of(l, mqc_cursor_t, link);
        release_session(c); /* pooled, then ended with the others: that kills its server cursor */
        c->client = NULL;
        c->server = NULL;
        c->op = NULL;
    }
}
