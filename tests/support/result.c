/* tests/support: see result.h. */
#include "result.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../tf.h"

static void note(tf_res_t *r, const bson_t *reply, const mqc_error_t *error)
{
    r->calls++;
    r->failed = error != NULL;
    r->at = tf_now();
    if (error) {
        if (!r->errors) r->first_error = *error;
        r->errors++;
        r->error = *error;
    } else {
        r->ok++;
    }
    if (r->keep_reply) {
        if (r->reply) bson_destroy(r->reply);
        r->reply = reply ? bson_copy(reply) : NULL;
    }
}

void tf_res_cb(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    note(ud, reply, error);
}

void tf_res_batch_cb(mqc_cursor_t *cursor, const bson_t *docs, size_t n, const mqc_error_t *error, void *ud)
{
    (void) cursor;
    tf_res_t *r = ud;
    note(r, NULL, error);
    r->docs = n;
    (void) docs;
}

void tf_res_reset(tf_res_t *r)
{
    bool keep = r->keep_reply;
    if (r->reply) bson_destroy(r->reply);
    memset(r, 0, sizeof *r);
    r->keep_reply = keep;
}

void tf_res_cleanup(tf_res_t *r) { tf_res_reset(r); }

mqc_client_t *tf_client_new(const char *uri)
{
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, uri, &err);
    ASSERT_MSG(c, "client for %s: %s", uri, err.message);
    return c;
}

mqc_client_t *tf_client_newf(const char *fmt, ...)
{
    char uri[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(uri, sizeof uri, fmt, ap);
    va_end(ap);
    return tf_client_new(uri);
}

const char *tf_uri_with(const char *base, const char *extra)
{
    static char buf[4][4096];
    static unsigned slot;
    char *out = buf[slot++ % 4];
    size_t bl = strlen(base);
    if (!extra || !*extra) {
        snprintf(out, sizeof buf[0], "%s", base);
        return out;
    }
    const char *sep = strchr(base, '?') ? (base[bl - 1] == '?' || base[bl - 1] == '&' ? "" : "&")
                      : (bl && base[bl - 1] == '/') ? "?" : "/?";
    snprintf(out, sizeof buf[0], "%s%s%s", base, sep, extra);
    return out;
}

void tf_client_wait_idle(mqc_client_t *c, double secs)
{
    ASSERT_MSG(mqc_client_run_until_idle(c, secs), "operations still pending after %g s: %llu", secs,
               (unsigned long long) mqc_client_stat(c, MQC_STAT_OPS_PENDING));
}

tf_res_t tf_run_command(mqc_client_t *c, const char *db, const bson_t *cmd, const bson_t *opts, double secs)
{
    tf_res_t r = {0};
    mqc_client_command(c, db, cmd, opts, tf_res_cb, &r);
    ASSERT(mqc_client_run_until_idle(c, secs));
    ASSERT_EQ(r.calls, 1);
    return r;
}

tf_res_t tf_ping(mqc_client_t *c, const bson_t *opts, double secs)
{
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    tf_res_t r = {0};
    mqc_client_command(c, "admin", cmd, opts, tf_res_cb, &r);
    bson_destroy(cmd);
    ASSERT(mqc_client_run_until_idle(c, secs));
    ASSERT_EQ(r.calls, 1);
    return r;
}

tf_res_t tf_find_one(mqc_client_t *c, const bson_t *opts, double secs)
{
    tf_res_t r = {0};
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t filter = BSON_INITIALIZER;
    mqc_collection_find_one(coll, &filter, opts, tf_res_cb, &r);
    ASSERT(mqc_client_run_until_idle(c, secs));
    ASSERT_EQ(r.calls, 1);
    mqc_collection_destroy(coll);
    return r;
}

tf_res_t tf_insert_one(mqc_client_t *c, const bson_t *opts, double secs)
{
    tf_res_t r = {0};
    mqc_collection_t *coll = mqc_client_get_collection(c, "db", "c");
    bson_t *doc = BCON_NEW("x", BCON_INT32(1));
    mqc_collection_insert_one(coll, doc, opts, tf_res_cb, &r);
    ASSERT(mqc_client_run_until_idle(c, secs));
    ASSERT_EQ(r.calls, 1);
    bson_destroy(doc);
    mqc_collection_destroy(coll);
    return r;
}
