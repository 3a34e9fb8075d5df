/* conn_secure: the TLS and AUTH steps of a connection; see conn_secure.h. */
#include "conn_secure.h"

#include <stdlib.h>

#include "scram.h"
#include "tls.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- TLS: the handshake right after connect; never a fallback to plaintext -------------- */

static void tls_step(mqc_conn_t *c);

static void tls_start(mqc_conn_t *c)
{
    mqc_error_t err;
    if (!c->ctx->tls_ctx) {
        mqc_error_set(&err, MQC_ERROR_TLS, 0, "TLS requested but no TLS context");
        mqc_conn_fail_now(c, &err);
        return;
    }
    if (!mqc_stream_tls_start(&c->stream, c->ctx->tls_ctx, c->host->host, &err)) {
        mqc_conn_fail_now(c, &err);
        return;
    }
    tls_step(c);
}

static void tls_step(mqc_conn_t *c)
{
    mqc_error_t err;
    int want = 0;
    struct ev_loop *loop = c->ctx->loop;
    /* Called within the establishment budget of lib/conn.c (on_rio / on_wio). */
    int rc = mqc_stream_tls_step(&c->stream, &want, &err);
    if (rc < 0) {
        mqc_conn_fail_now(c, &err);
        return;
    }
    if (rc == 0) {
        if (want == MQC_TLS_WANT_WRITE && !ev_is_active(&c->wio)) ev_io_start(loop, &c->wio);
        if (want != MQC_TLS_WANT_WRITE && ev_is_active(&c->wio)) ev_io_stop(loop, &c->wio);
        return;
    }
    if (ev_is_active(&c->wio)) ev_io_stop(loop, &c->wio);
    mqc_conn_after_tls(c);
}

/* ---- AUTH: SCRAM over saslStart/saslContinue, or MONGODB-X509; speculative in the hello -- */

struct mqc_auth {
    mqc_conn_t *conn;
    mqc_link_t wait_link;        /* in ctx->auth_waiters while its keys are derived */
    mqc_scram_t *scram;          /* SCRAM: the conversation */
    bool x509;                   /* MONGODB-X509: a single authenticate command */
    char *x509_user;             /* its user (URI or certificate subject), NULL: the server's choice */
    bool speculative;            /* the first step rode in the hello */
};

static bool is_x509(const mqc_conn_ctx_t *ctx)
{
    return ctx->uri->auth_mechanism && strcasecmp(ctx->uri->auth_mechanism, MQC_AUTH_X509) == 0;
}

static bool auth_needed(const mqc_conn_t *c) { return c->ctx->uri->username != NULL || is_x509(c->ctx); }

void mqc_auth_x509_command(bson_t *cmd, const char *user, bool speculative)
{
    bson_init(cmd);
    BSON_APPEND_INT32(cmd, "authenticate", 1);
    BSON_APPEND_UTF8(cmd, "mechanism", MQC_AUTH_X509);
    /* MongoDB 3.4+ takes the user from the certificate when none is given. */
    if (user) BSON_APPEND_UTF8(cmd, "user", user);
    if (speculative) BSON_APPEND_UTF8(cmd, "db", "$external");
}

/* The X.509 user: the URI's, else the client certificate's subject (RFC 2253), else none. */
static char *x509_user(const mqc_conn_ctx_t *ctx)
{
    char subject[1024];
    if (ctx->uri->username) return bson_strdup(ctx->uri->username);
    if (ctx->tls_ctx && mqc_tls_ctx_client_subject(ctx->tls_ctx, subject, sizeof subject))
        return bson_strdup(subject);
    return NULL;
}

static void auth_free(struct mqc_auth *a)
{
    if (!a) return;
    mqc_list_remove(&a->wait_link);
    mqc_scram_destroy(a->scram);
    bson_free(a->x509_user);
    free(a);
}

static struct mqc_auth *auth_new(mqc_conn_t *c)
{
    struct mqc_auth *a = calloc(1, sizeof *a);
    if (!a) abort();
    a->conn = c;
    return a;
}

/* Which SCRAM mechanism the URI names: false when it names none; true with *mech set, or true
 * with error set when it names one mqc does not speak. */
static bool mech_from_uri(const mqc_conn_ctx_t *ctx, mqc_scram_mech_t *mech, mqc_error_t *error)
{
    const char *m = ctx->uri->auth_mechanism;
    if (!m) return false;
    if (mqc_scram_mech_from_name(m, mech)) return true;
    mqc_error_set(error, MQC_ERROR_AUTH, MQC_CLIENT_UNSUPPORTED,
                  "authentication mechanism %s (user \"%s\") is not supported: mqc speaks SCRAM-SHA-256, "
                  "SCRAM-SHA-1 and MONGODB-X509",
                  m, ctx->uri->username ? ctx->uri->username : "");
    return true;
}

static void x509_add_to_hello(mqc_conn_t *c, bson_t *hello)
{
    c->auth = auth_new(c);
    c->auth->x509 = true;
    c->auth->x509_user = x509_user(c->ctx);
    bson_t spec;
    mqc_auth_x509_command(&spec, c->auth->x509_user, true);
    BSON_APPEND_DOCUMENT(hello, "speculativeAuthenticate", &spec);
    bson_destroy(&spec);
    c->auth->speculative = true;
}

static void auth_add_to_hello(mqc_conn_t *c, bson_t *hello)
{
    mqc_conn_ctx_t *ctx = c->ctx;
    const mqc_uri_t *uri = ctx->uri;
    mqc_error_t err = {0};
    mqc_scram_mech_t mech = MQC_SCRAM_SHA_256;
    if (is_x509(ctx)) {
        x509_add_to_hello(c, hello);
        return;
    }
    if (!uri->username) return;
    bool named = mech_from_uri(ctx, &mech, &err);
    if (!named) mqc_scram_append_sasl_supported_mechs(hello, uri->auth_source, uri->username);
    else if (err.domain == MQC_ERROR_AUTH && err.code == MQC_CLIENT_UNSUPPORTED) return; /* reported in auth_start */
    /* The auth spec: speculate with the named mechanism, or SCRAM-SHA-256 when none is named. */
    c->auth = auth_new(c);
    c->auth->scram = mqc_scram_new(mech, uri->username, uri->password ? uri->password : "", ctx->scram_cache, &err);
    if (!c->auth->scram) return; /* auth_start makes the error again and reports it */
    bson_t spec;
    if (mqc_scram_speculative(c->auth->scram, uri->auth_source, &spec, &err)) {
        BSON_APPEND_DOCUMENT(hello, "speculativeAuthenticate", &spec);
        bson_destroy(&spec);
        c->auth->speculative = true;
    }
}

static void auth_send(mqc_conn_t *c, bson_t *cmd)
{
    BSON_APPEND_UTF8(cmd, "$db", c->auth && c->auth->x509 ? "$external" : c->ctx->uri->auth_source);
    mqc_conn_send_internal(c, cmd);
    bson_destroy(cmd);
}

/* ---- PBKDF2 off the loop ------------------------------------------------------------------
 * The first conversation of a credential misses the client's (deferred) cache: its keys are
 * derived on the client's worker thread while the connection waits in ctx->auth_waiters,
 * with any other connection of the same credential (MQC_SCRAM_WAIT). When the keys are stored,
 * every waiter resumes; a waiter whose connection closes meanwhile just leaves the list. */

typedef struct {
    mqc_conn_ctx_t *ctx;
    mqc_scram_kdf_t *kdf;
} kdf_job_t;

static void auth_result(mqc_conn_t *c, mqc_scram_result_t rc, bson_t *next, const mqc_error_t *err);
static const mqc_conn_secure_ops_t secure_ops;

/* Resumes the waiting conversations within the establishment budget (hundreds may resume at
 * once, each computing its proof); the rest continue in the next iteration. */
static void resume_waiters(mqc_conn_ctx_t *ctx)
{
    /* A batch of its own: a resumed conversation may wait again, or its failure may close
     * other waiting connections (each unlinks itself). */
    mqc_link_t batch, *l;
    mqc_list_init(&batch);
    while ((l = mqc_list_pop_front(&ctx->auth_waiters))) mqc_list_push_back(&batch, l);
    while ((l = mqc_list_pop_front(&batch))) {
        if (!mqc_conn_budget_left(ctx)) {
            /* Not yet resumed first, then those that wait again. */
            mqc_list_push_front(&batch, l);
            while ((l = mqc_list_pop_front(&ctx->auth_waiters))) mqc_list_push_back(&batch, l);
            while ((l = mqc_list_pop_front(&batch))) mqc_list_push_back(&ctx->auth_waiters, l);
            if (!ev_is_active(&ctx->auth_resume)) {
                ev_timer_set(&ctx->auth_resume, 0., 0.);
                ev_timer_start(ctx->loop, &ctx->auth_resume);
            }
            return;
        }
        int64_t t0 = mqc_now_us();
        struct mqc_auth *a = mqc_container_of(l, struct mqc_auth, wait_link);
        mqc_error_t err = {0};
        bson_t next;
        mqc_scram_result_t rc = mqc_scram_resume(a->scram, &next, &err);
        auth_result(a->conn, rc, &next, &err);
        mqc_conn_budget_spend(ctx, t0);
    }
}

static void on_auth_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_conn_ctx_t *ctx = w->data;
    mqc_guard_t *guard = ctx->guard;
    mqc_guard_enter(guard);
    resume_waiters(ctx);
    mqc_guard_leave(guard);
}

void mqc_conn_secure_init(mqc_conn_ctx_t *ctx)
{
    mqc_list_init(&ctx->auth_waiters);
    ev_init(&ctx->auth_resume, on_auth_resume);
    ctx->auth_resume.data = ctx;
    ctx->secure = &secure_ops;
}

void mqc_conn_secure_cleanup(mqc_conn_ctx_t *ctx)
{
    ev_timer_stop(ctx->loop, &ctx->auth_resume);
    mqc_worker_destroy(ctx->kdf_worker);
    ctx->kdf_worker = NULL;
}

static void kdf_run(void *data) { mqc_scram_kdf_run(((kdf_job_t *) data)->kdf); }

static void kdf_done(void *data, bool cancelled)
{
    kdf_job_t *j = data;
    mqc_conn_ctx_t *ctx = j->ctx;
    if (cancelled) {
        mqc_scram_kdf_free(j->kdf); /* the client is going away, its cache with it */
        free(j);
        return;
    }
    mqc_scram_kdf_store(ctx->scram_cache, j->kdf);
    free(j);
    resume_waiters(ctx);
}

static void derive(mqc_conn_t *c)
{
    mqc_conn_ctx_t *ctx = c->ctx;
    kdf_job_t *j = malloc(sizeof *j);
    if (!j) abort();
    j->ctx = ctx;
    j->kdf = mqc_scram_kdf_take(c->auth->scram);
    mqc_list_push_back(&ctx->auth_waiters, &c->auth->wait_link);
    if (!ctx->kdf_worker) ctx->kdf_worker = mqc_worker_new(ctx->loop);
    if (ctx->kdf_worker && mqc_worker_submit(ctx->kdf_worker, kdf_run, kdf_done, j)) return;
    /* No thread to be had: derive here, as a client without the worker would. */
    kdf_run(j);
    kdf_done(j, false);
}

static void auth_result(mqc_conn_t *c, mqc_scram_result_t rc, bson_t *next, const mqc_error_t *err)
{
    switch (rc) {
    case MQC_SCRAM_SEND: auth_send(c, next); break;
    case MQC_SCRAM_DONE: mqc_conn_established(c); break;
    case MQC_SCRAM_DERIVE: derive(c); break;
    case MQC_SCRAM_WAIT: mqc_list_push_back(&c->ctx->auth_waiters, &c->auth->wait_link); break;
    default: mqc_conn_fail_now(c, err); break;
    }
}

/* The reply to {authenticate: 1, mechanism: "MONGODB-X509"}: ok 1 is the end. */
static void x509_reply(mqc_conn_t *c, const bson_t *reply)
{
    mqc_error_t err;
    if (mqc_reply_ok(reply, &err)) {
        mqc_conn_established(c);
        return;
    }
    char msg[sizeof err.message];
    snprintf(msg, sizeof msg, "%s", err.message);
    const char *user = c->auth->x509_user;
    mqc_error_set(&err, MQC_ERROR_AUTH, err.code, "%s authentication failed for user \"%s\": %s", MQC_AUTH_X509,
                  user ? user : "(from the certificate)", msg);
    mqc_conn_fail_now(c, &err);
}

static void x509_start(mqc_conn_t *c, const bson_t *hello_reply)
{
    bson_iter_t it;
    /* A speculativeAuthenticate document in the hello reply means the server accepted it. */
    if (c->auth->speculative && bson_iter_init_find(&it, hello_reply, "speculativeAuthenticate") &&
        BSON_ITER_HOLDS_DOCUMENT(&it)) {
        mqc_conn_established(c);
        return;
    }
    c->auth->speculative = false;
    bson_t cmd;
    mqc_auth_x509_command(&cmd, c->auth->x509_user, false);
    auth_send(c, &cmd);
}

static void auth_start(mqc_conn_t *c, const bson_t *hello_reply)
{
    mqc_conn_ctx_t *ctx = c->ctx;
    const mqc_uri_t *uri = ctx->uri;
    mqc_error_t err = {0};
    mqc_scram_mech_t mech = MQC_SCRAM_SHA_256;
    bson_iter_t it;
    bson_t next;
    if (c->auth && c->auth->x509) {
        x509_start(c, hello_reply);
        return;
    }
    if (mech_from_uri(ctx, &mech, &err) && err.domain == MQC_ERROR_AUTH && err.code == MQC_CLIENT_UNSUPPORTED) {
        mqc_conn_fail_now(c, &err);
        return;
    }
    if (c->auth && c->auth->speculative && bson_iter_init_find(&it, hello_reply, "speculativeAuthenticate") &&
        BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t doc;
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&doc, data, len)) {
            mqc_scram_result_t rc = mqc_scram_reply(c->auth->scram, &doc, &next, &err);
            auth_result(c, rc, &next, &err);
            return;
        }
    }
    if (!uri->auth_mechanism) mech = mqc_scram_mech_negotiate(hello_reply);
    if (!c->auth) c->auth = auth_new(c);
    if (!c->auth->scram || mqc_scram_get_mech(c->auth->scram) != mech) {
        mqc_scram_destroy(c->auth->scram);
        c->auth->scram = mqc_scram_new(mech, uri->username, uri->password ? uri->password : "", ctx->scram_cache, &err);
        if (!c->auth->scram) {
            mqc_conn_fail_now(c, &err);
            return;
        }
    }
    c->auth->speculative = false;
    bson_t cmd;
    if (!mqc_scram_sasl_start(c->auth->scram, &cmd, &err)) {
        mqc_conn_fail_now(c, &err);
        return;
    }
    auth_send(c, &cmd);
}

static void auth_reply(mqc_conn_t *c, const bson_t *reply)
{
    mqc_error_t err;
    bson_t next;
    if (c->auth->x509) {
        x509_reply(c, reply);
        return;
    }
    mqc_scram_result_t rc = mqc_scram_reply(c->auth->scram, reply, &next, &err);
    auth_result(c, rc, &next, &err);
}

static void secure_free(mqc_conn_t *c)
{
    auth_free(c->auth);
    c->auth = NULL;
}

static const mqc_conn_secure_ops_t secure_ops = {tls_start,  tls_step,   auth_needed, auth_add_to_hello,
                                                 auth_start, auth_reply, secure_free};
