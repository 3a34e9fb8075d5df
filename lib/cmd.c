/* cmd: the plain command operation (one command, one reply) and the option helpers every
 * command builder uses. See cmd.h. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "hotcmd.h"
#include "op.h"

/* The result transform runs here, on the way up, so that the op ends once with the document
 * the application asked for (and gather, events and stats see that one). */
static void cmd_result(mqc_op_t *op, mqc_cmd_impl_t *impl, const bson_t *reply, mqc_op_outcome_t *out)
{
    mqc_cmd_result_t r;
    r.name = op->name;
    r.cmd = &impl->cmd;
    r.reply = reply;
    r.scan = op->reply_scan;
    r.result = reply;
    r.view = &out->view;
    r.tmp = &out->tmp;
    if (!impl->result(&r)) {
        out->err = r.error;
        out->error = &out->err;
        return;
    }
    out->reply = r.result;
    out->tmp_used = r.result == &out->tmp;
}

static mqc_step_t cmd_on_reply(mqc_op_t *op, const bson_t *reply, mqc_op_outcome_t *out)
{
    mqc_cmd_impl_t *impl = op->impl;
    out->reply = reply;
    out->error = NULL;
    out->tmp_used = false;
    if (!out->ok) out->error = &out->err;
    else if (impl->result) cmd_result(op, impl, reply, out);
    return MQC_STEP_DONE;
}

static mqc_step_t cmd_on_sent(mqc_op_t *op, mqc_op_outcome_t *out)
{
    bson_init(&out->tmp);
    BSON_APPEND_BOOL(&out->tmp, "acknowledged", false);
    out->tmp_used = true;
    out->reply = &out->tmp;
    out->error = NULL;
    return MQC_STEP_DONE;
}

/* A command grown past this gives its buffer back instead of keeping it in the free-list. */
#define FREE_IMPL_KEEP 4096

static void cmd_destroy(mqc_op_t *op)
{
    mqc_cmd_impl_t *impl = op->impl;
    mqc_ops_t *q = mqc_ops_of(op->client);
    if (!impl) return;
    if (q->closing || q->n_free_impls + 1 > MQC_FREE_LIST_MAX) {
        bson_destroy(&impl->cmd);
        free(impl);
        return;
    }
    if (impl->cmd.len > FREE_IMPL_KEEP) {
        bson_destroy(&impl->cmd);
        bson_init(&impl->cmd);
    } else {
        bson_reinit(&impl->cmd); /* keeps a buffer that outgrew the inline one */
    }
    impl->next_free = q->free_impls;
    q->free_impls = impl;
    q->n_free_impls++;
}

const mqc_op_vt_t mqc_cmd_vt = {"command", NULL, cmd_on_reply, cmd_on_sent, cmd_destroy, NULL,
                                (int) offsetof(mqc_cmd_impl_t, cmd)};

/* Zeroed; sized without bson_t's 128-byte alignment padding (mqc_bson16_t, cmd.h). */
static mqc_cmd_impl_t *cmd_impl_alloc(void)
{
    mqc_cmd_impl_t *impl = calloc(1, sizeof(mqc_cmd_impl_t));
    if (!impl) abort();
    return impl;
}

mqc_op_t *mqc_cmd_op_new(mqc_client_t *client, const char *db, const bson_t *cmd, mqc_reply_cb cb, void *ud)
{
    mqc_cmd_impl_t *impl = cmd_impl_alloc();
    bson_init(&impl->cmd);
    const char *name = "command";
    bson_iter_t it;
    if (cmd && bson_iter_init(&it, cmd) && bson_iter_next(&it)) name = bson_iter_key(&it);
    mqc_op_t *op = mqc_op_new(client, &mqc_cmd_vt, NULL, db, cb, ud);
    op->impl = impl;
    if (!cmd || bson_empty(cmd)) {
        mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "empty command");
        op->name = "command";
        return op;
    }
    if (!db || !*db) mqc_op_fail_early(op, MQC_ERROR_CLIENT, MQC_CLIENT_INVALID_ARG, "no database name");
    bson_copy_to_excluding_noinit(cmd, &impl->cmd, "$db", NULL);
    BSON_APPEND_UTF8(&impl->cmd, "$db", db && *db ? db : "admin");
    /* The name must outlive the caller's command: take it from our copy. */
    if (bson_iter_init(&it, &impl->cmd) && bson_iter_next(&it)) op->name = bson_iter_key(&it);
    (void) name;
    return op;
}

mqc_cmd_impl_t *mqc_cmd_impl_new(void)
{
    mqc_cmd_impl_t *impl = cmd_impl_alloc();
    bson_init(&impl->cmd);
    return impl;
}

mqc_cmd_impl_t *mqc_cmd_impl_get(mqc_client_t *client)
{
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_cmd_impl_t *impl = q->free_impls;
    if (!impl) return mqc_cmd_impl_new();
    q->free_impls = impl->next_free;
    q->n_free_impls--;
    impl->next_free = NULL;
    impl->result = NULL;
    return impl;
}

void mqc_cmd_free_list_drain(mqc_client_t *client)
{
    mqc_ops_t *q = mqc_ops_of(client);
    mqc_cmd_impl_t *impl;
    while ((impl = q->free_impls)) {
        q->free_impls = impl->next_free;
        bson_destroy(&impl->cmd);
        free(impl);
    }
    q->n_free_impls = 0;
}

mqc_op_t *mqc_cmd_op_take(mqc_client_t *client, const char *db, bson_t *cmd, mqc_reply_cb cb, void *ud)
{
    mqc_cmd_impl_t *impl = cmd_impl_alloc();
    /* The command was built for us (with "$db"): move it in instead of copying it again. */
    bson_steal(&impl->cmd, cmd);
    return mqc_cmd_op_adopt(client, db, impl, cb, ud);
}

mqc_op_t *mqc_cmd_op_adopt_named(mqc_client_t *client, const char *db, mqc_cmd_impl_t *impl, const char *name,
                                 mqc_reply_cb cb, void *ud)
{
    mqc_op_t *op = mqc_op_new(client, &mqc_cmd_vt, name, db, cb, ud);
    op->impl = impl;
    return op;
}

mqc_op_t *mqc_cmd_op_adopt(mqc_client_t *client, const char *db, mqc_cmd_impl_t *impl, mqc_reply_cb cb, void *ud)
{
    mqc_op_t *op = mqc_op_new(client, &mqc_cmd_vt, "command", db, cb, ud);
    op->impl = impl;
    /* The name is the first key, read in place: the command was built by mqc (libbson or
     * hotcmd.c), so it is well formed; its key's NUL is looked for inside it all the same. */
    const uint8_t *d = bson_get_data(&impl->cmd);
    uint32_t n = impl->cmd.len, i = 5;
    while (i < n && d[i]) i++; /* a command name is a few bytes: no call to memchr */
    if (i < n && d[4]) op->name = (const char *) d + 5;
    return op;
}

/* ---- option helpers ----------------------------------------------------------------------- */

static bool key_in(const char *key, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(key, *list) == 0) return true;
    return false;
}

void mqc_copy_passthrough_opts(bson_t *cmd, const bson_t *opts, const char *const *extra)
{
    static const char *const ours[] = {"timeoutMS", "readPreference", "readConcern", "writeConcern",
                                       "session", "$db", NULL};
    bson_iter_t it;
    if (!opts || !bson_iter_init(&it, opts)) return;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (key_in(k, ours) || key_in(k, extra)) continue;
        bson_append_iter(cmd, k, -1, &it);
    }
}

void mqc_apply_read_opts(mqc_client_t *client, bson_t *cmd, const bson_t *opts)
{
    const mqc_uri_t *uri = mqc_ops_of(client)->uri;
    bson_iter_t it;
    if (opts && bson_iter_init_find(&it, opts, "readConcern") && BSON_ITER_HOLDS_DOCUMENT(&it))
        bson_append_iter(cmd, "readConcern", -1, &it);
    else if (!bson_empty(&uri->read_concern))
        BSON_APPEND_DOCUMENT(cmd, "readConcern", &uri->read_concern);
    if (opts && bson_iter_init_find(&it, opts, "readPreference") && BSON_ITER_HOLDS_DOCUMENT(&it))
        bson_append_iter(cmd, "$readPreference", -1, &it);
}

void mqc_apply_write_concern(mqc_client_t *client, bson_t *cmd, const bson_t *opts, bool *unacked)
{
    const mqc_uri_t *uri = mqc_ops_of(client)->uri;
    bson_iter_t it, ch;
    const bson_t *wc = NULL;
    bson_t tmp;
    *unacked = false;
    if (opts && bson_iter_init_find(&it, opts, "writeConcern") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&tmp, data, len)) wc = &tmp;
    } else if (!bson_empty(&uri->write_concern)) {
        wc = &uri->write_concern;
    }
    if (!wc) return;
    BSON_APPEND_DOCUMENT(cmd, "writeConcern", wc);
    bool w0 = bson_iter_init_find(&ch, wc, "w") && BSON_ITER_HOLDS_NUMBER(&ch) && bson_iter_as_int64(&ch) == 0;
    bool j = bson_iter_init_find(&ch, wc, "j") && bson_iter_as_bool(&ch);
    *unacked = w0 && !j;
}

/* ---- mqc_client_command: the plain command op as the application runs it ------------------ */

/* A command the user runs gets an implicit session unless it brings its own lsid (the user's
 * session: mqc must not add a second one) or is an unacknowledged write (w: 0). */
static bool command_owns_session(const bson_t *command)
{
    bson_iter_t it, w;
    if (!command) return false;
    if (bson_iter_init_find(&it, command, "lsid")) return true;
    if (bson_iter_init_find(&it, command, "writeConcern") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &w) && bson_iter_find(&w, "w") && BSON_ITER_HOLDS_NUMBER(&w) &&
        bson_iter_as_int64(&w) == 0)
        return true;
    return false;
}

mqc_op_t *mqc_client_command(mqc_client_t *client, const char *db, const bson_t *command, const bson_t *opts,
                             mqc_reply_cb cb, void *ud)
{
    mqc_op_t *op = mqc_cmd_op_new(client, db, command, cb, ud);
    mqc_op_set_timeout_from(op, opts);
    op->no_session = command_owns_session(command);
    if (opts) {
        mqc_cmd_impl_t *impl = op->impl;
        bson_iter_t it;
        bson_iter_t mode;
        /* primary is what the server assumes: not sent (the server selection specification). */
        if (bson_iter_init_find(&it, opts, "readPreference") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
            !(bson_iter_recurse(&it, &mode) && bson_iter_find(&mode, "mode") && BSON_ITER_HOLDS_UTF8(&mode) &&
              !strcmp(bson_iter_utf8(&mode, NULL), "primary")))
            bson_append_iter(&impl->cmd, "$readPreference", -1, &it);
    }
    return mqc_op_submit(op);
}
