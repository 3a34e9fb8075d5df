/* Transport and the TLS/AUTH steps of a connection. */
#include "conn_secure.h"

#include <stdlib.h>

#include "scram.h"
#include "tls.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- transport: plain socket, or TLS over it ------------------------------------------- */


ssize_t mqc_conn_io_read(mqc_conn_t *c, uint8_t *buf, size_t len, mqc_error_t *error)
{
    if (c->tls) {
        int want = 0;
        ssize_t n = mqc_tls_read(c->tls, buf, len, &want, error);
        c->tls_read_wants_write = false;
        if (n > 0) return n;
        if (n == 0) {
            mqc_error_set(error, MQC_ERROR_NETWORK, 0, "%s closed the TLS session", c->server->host.host_and_port);
            error->labels |= MQC_LABEL_NETWORK;
            return -1;
        }
        if (want == MQC_TLS_WANT_NONE) {
            error->labels |= MQC_LABEL_NETWORK;
            return -1;
        }
        /* A read that needs the socket writable (key update): have the write watcher call back. */
        if (want == MQC_TLS_WANT_WRITE && !ev_is_active(&c->wio)) ev_io_start(c->client->loop, &c->wio);
        c->tls_read_wants_write = want == MQC_TLS_WANT_WRITE;
        return 0;
    }
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n > 0) return n;
        if (n == 0) {
            mqc_error_set(error, MQC_ERROR_NETWORK, 0, "%s closed the connection",
                          c->server->host.host_and_port);
            error->labels |= MQC_LABEL_NETWORK;
            return -1;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        mqc_error_set(error, MQC_ERROR_NETWORK, errno, "reading from %s failed: %s",
                      c->server->host.host_and_port, strerror(errno));
        error->labels |= MQC_LABEL_NETWORK;
        return -1;
    }
}

ssize_t mqc_conn_io_write(mqc_conn_t *c, const uint8_t *buf, size_t len, mqc_error_t *error)
{
    if (c->tls) {
        int want = 0;
        ssize_t n = mqc_tls_write(c->tls, buf, len, &want, error);
        if (n > 0) return n;
        if (want == MQC_TLS_WANT_NONE) {
            error->labels |= MQC_LABEL_NETWORK;
            return -1;
        }
        return 0; /* the read watcher is always on; the write watcher is started by the caller */
    }
    for (;;) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        mqc_error_set(error, MQC_ERROR_NETWORK, errno, "writing to %s failed: %s",
                      c->server->host.host_and_port, strerror(errno));
        error->labels |= MQC_LABEL_NETWORK;
        return -1;
    }
}

bool mqc_conn_io_has_buffered(const mqc_conn_t *c) { return c->tls && mqc_tls_pending(c->tls) > 0; }
bool mqc_conn_io_wants_write(const mqc_conn_t *c) { return c->tls && c->tls_read_wants_write; }

/* ---- TLS: the handshake right after connect; never a fallback to plaintext -------------- */

void mqc_conn_tls_start(mqc_conn_t *c)
{
    mqc_error_t err;
    if (!c->client->tls_ctx) {
        mqc_error_set(&err, MQC_ERROR_TLS, 0, "TLS requested but no TLS context");
        mqc_conn_fail_now(c, &err);
        return;
    }
    c->tls = mqc_tls_new(c->client->tls_ctx, c->fd, c->server->host.host, &err);
    if (!c->tls) {
        mqc_conn_fail_now(c, &err);
        return;
    }
    mqc_conn_tls_step(c);
}

void mqc_conn_tls_step(mqc_conn_t *c)
{
    mqc_error_t err;
    int want = 0;
    struct ev_loop *loop = c->client->loop;
    /* Called within the establishment budget of lib/conn.c (on_rio / on_wio). */
    int rc = mqc_tls_handshake(c->tls, &want, &err);
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
    mqc_link_t wait_link;        /* in client->auth_waiters while its keys are derived */
    mqc_scram_t *scram;          /* SCRAM: the conversation */
    bool x509;                   /* MONGODB-X509: a single authenticate command */
    char *x509_user;             /* its user (URI or certificate subject), NULL: the server's choice */
    bool speculative;            /* the first step rode in the hello */
};

static bool is_x509(const mqc_client_t *client)
{
    return client->uri.auth_mechanism && strcasecmp(client->uri.auth_mechanism, MQC_AUTH_X509) == 0;
}

bool mqc_conn_auth_needed(const mqc_conn_t *c) { return c->client->uri.username != NULL || is_x509(c->client); }

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
static char *x509_user(const mqc_client_t *client)
{
    char subject[1024];
    if (client->uri.username) return bson_strdup(client->uri.username);
    if (client->tls_ctx && mqc_tls_ctx_client_subject(client->tls_ctx, subject, sizeof subject))
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
static bool mech_from_uri(const mqc_client_t *client, mqc_scram_mech_t *mech, mqc_error_t *error)
{
    const char *m = client->uri.auth_mechanism;
    if (!m) return false;
    if (mqc_scram_mech_from_name(m, mech)) return true;
    mqc_error_set(error, MQC_ERROR_AUTH, MQC_CLIENT_UNSUPPORTED,
                  "authentication mechanism %s (user \"%s\") is not supported: mqc speaks SCRAM-SHA-256, "
                  "SCRAM-SHA-1 and MONGODB-X509",
                  m, client->uri.username ? client->uri.username : "");
    return true;
}

static void x509_add_to_hello(mqc_conn_t *c, bson_t *hello)
{
    c->auth = auth_new(c);
    c->auth->x509 = true;
    c->auth->x509_user = x509_user(c->client);
    bson_t spec;
    mqc_auth_x509_command(&spec, c->auth->x509_user, true);
    BSON_APPEND_DOCUMENT(hello, "speculativeAuthenticate", &spec);
    bson_destroy(&spec);
    c->auth->speculative = true;
}

void mqc_conn_auth_add_to_hello(mqc_conn_t *c, bson_t *hello)
{
    mqc_client_t *client = c->client;
    mqc_error_t err = {0};
    mqc_scram_mech_t mech = MQC_SCRAM_SHA_256;
    if (is_x509(client)) {
        x509_add_to_hello(c, hello);
        return;
    }
    if (!client->uri.username) return;
    bool named = mech_from_uri(client, &mech, &err);
    if (!named) mqc_scram_append_sasl_supported_mechs(hello, client->uri.auth_source, client->uri.username);
    else if (err.domain == MQC_ERROR_AUTH && err.code == MQC_CLIENT_UNSUPPORTED) return; /* reported in auth_start */
    /* The auth spec: speculate with the named mechanism, or SCRAM-SHA-256 when none is named. */
    c->auth = auth_new(c);
    c->auth->scram = mqc_scram_new(mech, client->uri.username, client->uri.password ? client->uri.password : "",
                                   client->scram_cache, &err);
    if (!c->auth->scram) return; /* auth_start makes the error again and reports it */
    bson_t spec;
    if (mqc_scram_speculative(c->auth->scram, client->uri.auth_source, &spec, &err)) {
        BSON_APPEND_DOCUMENT(hello, "speculativeAuthenticate", &spec);
        bson_destroy(&spec);
        c->auth->speculative = true;
    }
}

static void auth_send(mqc_conn_t *c, bson_t *cmd)
{
    BSON_APPEND_UTF8(cmd, "$db", c->auth && c->auth->x509 ? "$external" : c->client->uri.auth_source);
    mqc_conn_send_internal(c, cmd);
    bson_destroy(cmd);
}

/* ---- PBKDF2 off the loop ------------------------------------------------------------------
 * The first conversation of a credential misses the client's (deferred) cache: its keys are
 * derived on the client's worker thread while the connection waits in client->auth_waiters,
 * with any other connection of the same credential (MQC_SCRAM_WAIT). When the keys are stored,
 * every waiter resumes; a waiter whose connection closes meanwhile just leaves the list. */

typedef struct {
    mqc_client_t *client;
    mqc_scram_kdf_t *kdf;
} kdf_job_t;

static void auth_result(mqc_conn_t *c, mqc_scram_result_t rc, bson_t *next, const mqc_error_t *err);

/* Resumes the waiting conversations within the establishment budget (hundreds may resume at
 * once, each computing its proof); the rest continue in the next iteration. */
static void resume_waiters(mqc_client_t *client)
{
    /* A batch of its own: a resumed conversation may wait again, or its failure may close
     * other waiting connections (each unlinks itself). */
    mqc_link_t batch, *l;
    mqc_list_init(&batch);
    while ((l = mqc_list_pop_front(&client->auth_waiters))) mqc_list_push_back(&batch, l);
    while ((l = mqc_list_pop_front(&batch))) {
        if (!mqc_conn_budget_left(client)) {
            /* Not yet resumed first, then those that wait again. */
            mqc_list_push_front(&batch, l);
            while ((l = mqc_list_pop_front(&client->auth_waiters))) mqc_list_push_back(&batch, l);
            while ((l = mqc_list_pop_front(&batch))) mqc_list_push_back(&client->auth_waiters, l);
            if (!ev_is_active(&client->auth_resume)) {
                ev_timer_set(&client->auth_resume, 0., 0.);
                ev_timer_start(client->loop, &client->auth_resume);
            }
            return;
        }
        int64_t t0 = mqc_now_us();
        struct mqc_auth *a = mqc_container_of(l, struct mqc_auth, wait_link);
        mqc_error_t err = {0};
        bson_t next;
        mqc_scram_result_t rc = mqc_scram_resume(a->scram, &next, &err);
        auth_result(a->conn, rc, &next, &err);
        mqc_conn_budget_spend(client, t0);
    }
}

static void on_auth_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop;
    (void) revents;
    mqc_client_t *client = w->data;
    mqc_client_enter(client);
    resume_waiters(client);
    mqc_client_leave(client);
}

void mqc_conn_auth_client_init(mqc_client_t *client)
{
    mqc_list_init(&client->auth_waiters);
    ev_init(&client->auth_resume, on_auth_resume);
    client->auth_resume.data = client;
}

void mqc_conn_auth_client_cleanup(mqc_client_t *client) { ev_timer_stop(client->loop, &client->auth_resume); }

static void kdf_run(void *data) { mqc_scram_kdf_run(((kdf_job_t *) data)->kdf); }

static void kdf_done(void *data, bool cancelled)
{
    kdf_job_t *j = data;
    mqc_client_t *client = j->client;
    if (cancelled) {
        mqc_scram_kdf_free(j->kdf); /* the client is going away, its cache with it */
        free(j);
        return;
    }
    mqc_scram_kdf_store(client->scram_cache, j->kdf);
    free(j);
    resume_waiters(client);
}

static void derive(mqc_conn_t *c)
{
    mqc_client_t *client = c->client;
    kdf_job_t *j = malloc(sizeof *j);
    if (!j) abort();
    j->client = client;
    j->kdf = mqc_scram_kdf_take(c->auth->scram);
    mqc_list_push_back(&client->auth_waiters, &c->auth->wait_link);
    if (!client->kdf_worker) client->kdf_worker = mqc_worker_new(client->loop);
    if (client->kdf_worker && mqc_worker_submit(client->kdf_worker, kdf_run, kdf_done, j)) return;
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
    case MQC_SCRAM_WAIT: mqc_list_push_back(&c->client->auth_waiters, &c->auth->wait_link); break;
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

void mqc_conn_auth_start(mqc_conn_t *c, const bson_t *hello_reply)
{
    mqc_client_t *client = c->client;
    mqc_error_t err = {0};
    mqc_scram_mech_t mech = MQC_SCRAM_SHA_256;
    bson_iter_t it;
    bson_t next;
    if (c->auth && c->auth->x509) {
        x509_start(c, hello_reply);
        return;
    }
    if (mech_from_uri(client, &mech, &err) && err.domain == MQC_ERROR_AUTH && err.code == MQC_CLIENT_UNSUPPORTED) {
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
    if (!client->uri.auth_mechanism) mech = mqc_scram_mech_negotiate(hello_reply);
    if (!c->auth) c->auth = auth_new(c);
    if (!c->auth->scram || mqc_scram_get_mech(c->auth->scram) != mech) {
        mqc_scram_destroy(c->auth->scram);
        c->auth->scram = mqc_scram_new(mech, client->uri.username, client->uri.password ? client->uri.password : "",
                                       client->scram_cache, &err);
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

void mqc_conn_auth_reply(mqc_conn_t *c, const bson_t *reply)
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

void mqc_conn_secure_free(mqc_conn_t *c)
{
    mqc_tls_destroy(c->tls);
    c->tls = NULL;
    auth_free(c->auth);
    c->auth = NULL;
}
