/* security end to end: TLS and SCRAM against FerretDB (scripts/ferretdb --tls / --auth), the
 * pool's back-off after authentication failures, how long the loop is blocked while hundreds of
 * connections authenticate, MONGODB-X509 against fakesrv (FerretDB has no X.509 auth), mqload
 * over TLS + auth, and secrets: never in errors or reports, wiped from memory on destroy. */
#include <ctype.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../cli/merge.h"
#include "../lib/client.h"
#include "../lib/conn_secure.h"
#include "../lib/scram.h"
#include "../lib/tls.h"
#include "server/fakesrv.h"
#include "tf.h"

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct {
    int done, ok, failed;
    mqc_error_t err;             /* the first error */
} pings_t;

static void on_ping(mqc_op_t *op, const bson_t *reply, const mqc_error_t *err, void *ud)
{
    (void) op;
    (void) reply;
    pings_t *p = ud;
    p->done++;
    if (err && err->domain) {
        if (!p->failed++) p->err = *err;
    } else {
        p->ok++;
    }
}

static void submit_ping(mqc_client_t *c, pings_t *p)
{
    bson_t ping = BSON_INITIALIZER;
    BSON_APPEND_INT32(&ping, "ping", 1);
    mqc_client_command(c, "admin", &ping, NULL, on_ping, p);
    bson_destroy(&ping);
}

/* n pings on a new client for uri; returns their tally (err: the first error, or the client's
 * creation error with done == 0). */
static pings_t pings(const char *uri, int n)
{
    pings_t p = {0};
    mqc_client_t *c = mqc_client_new_from_uri(NULL, uri, &p.err);
    if (!c) {
        p.failed = 1;
        return p;
    }
    for (int i = 0; i < n; i++) submit_ping(c, &p);
    mqc_client_run_until_idle(c, 30);
    mqc_client_destroy(c);
    return p;
}

static void expect_ok(const char *uri)
{
    pings_t p = pings(uri, 1);
    ASSERT_MSG(p.ok == 1, "ping failed: %s", p.err.message);
}

/* Copies uri without the option key=...; out must hold strlen(uri) + 1. */
static void drop_option(const char *uri, const char *key, char *out, size_t outsz)
{
    char pat[64];
    snprintf(out, outsz, "%s", uri);
    snprintf(pat, sizeof pat, "%s=", key);
    char *k = strstr(out, pat);
    ASSERT_NOT_NULL(k);
    char *end = strchr(k, '&');
    if (end) memmove(k, end + 1, strlen(end + 1) + 1);
    else *(k - 1) = 0; /* the '?' or '&' before it */
}

/* Copies uri with its host 127.0.0.1 replaced by host. */
static void with_host(const char *uri, const char *host, char *out, size_t outsz)
{
    const char *h = strstr(uri, "127.0.0.1");
    ASSERT_NOT_NULL(h);
    snprintf(out, outsz, "%.*s%s%s", (int) (h - uri), uri, host, h + strlen("127.0.0.1"));
}

/* The password in "mongodb://user:password@...". */
static void password_of(const char *uri, char *out, size_t outsz)
{
    const char *u = uri + strlen("mongodb://");
    const char *colon = strchr(u, ':'), *at = strchr(u, '@');
    ASSERT_MSG(colon && at && colon < at, "no password in %s", uri);
    snprintf(out, outsz, "%.*s", (int) (at - colon - 1), colon + 1);
}

/* Copies uri with its password replaced by pw. */
static void with_password(const char *uri, const char *pw, char *out, size_t outsz)
{
    const char *u = uri + strlen("mongodb://");
    const char *colon = strchr(u, ':'), *at = strchr(u, '@');
    ASSERT_MSG(colon && at && colon < at, "no password in %s", uri);
    snprintf(out, outsz, "%.*s%s%s", (int) (colon + 1 - uri), uri, pw, at);
}

static void expect_no_secret(const char *what, const char *text, const char *secret)
{
    ASSERT_MSG(!strstr(text, secret), "%s contains the password: %s", what, text);
}

/* ---- TLS ------------------------------------------------------------------------------------ */

TEST("/security/tls/ca_file", security_tls_ca_file)
{
    expect_ok(tf_server_uri("tls"));
}

TEST("/security/tls/no_ca_file", security_tls_no_ca_file)
{
    const char *uri = tf_server_uri("tls");
    char u[1024];
    drop_option(uri, "tlsCAFile", u, sizeof u);
    pings_t p = pings(u, 3);
    ASSERT_EQ(p.failed, 3);
    ASSERT_EQ(p.err.domain, MQC_ERROR_TLS);
    ASSERT_STR_CONTAINS(p.err.message, "certificate verify failed");
    tf_note("%s", p.err.message);
}

TEST("/security/tls/allow_invalid_certificates", security_tls_allow_invalid)
{
    const char *uri = tf_server_uri("tls");
    char u[1024], v[1100];
    drop_option(uri, "tlsCAFile", u, sizeof u);
    snprintf(v, sizeof v, "%s&tlsAllowInvalidCertificates=true", u);
    expect_ok(v);
    snprintf(v, sizeof v, "%s&tlsInsecure=true", u);
    expect_ok(v);
    /* Host names alone do not excuse an unknown CA. */
    snprintf(v, sizeof v, "%s&tlsAllowInvalidHostnames=true", u);
    pings_t p = pings(v, 1);
    ASSERT_EQ(p.err.domain, MQC_ERROR_TLS);
}

/* A name /etc/hosts maps to 127.0.0.1 other than localhost (the test certificate names only
 * localhost and 127.0.0.1), or false. */
static bool other_loopback_name(char *out, size_t outsz)
{
    FILE *f = fopen("/etc/hosts", "r");
    char line[512];
    bool found = false;
    if (!f) return false;
    while (!found && fgets(line, sizeof line, f)) {
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok || strcmp(tok, "127.0.0.1") != 0) continue;
        while (!found && (tok = strtok_r(NULL, " \t\r\n", &save)))
            if (tok[0] != '#' && strcmp(tok, "localhost") != 0 && strlen(tok) < outsz) {
                snprintf(out, outsz, "%s", tok);
                found = true;
            }
    }
    fclose(f);
    return found;
}

TEST("/security/tls/hostnames", security_tls_hostnames)
{
    char name[256];
    if (!other_loopback_name(name, sizeof name)) SKIP("no other name for 127.0.0.1 in /etc/hosts");
    const char *uri = tf_server_uri("tls");
    char u[1024], v[1100];
    /* The certificate names DNS:localhost and IP:127.0.0.1: both pass. */
    expect_ok(uri);
    with_host(uri, "localhost", u, sizeof u);
    expect_ok(u);
    /* Another name of the same address does not. */
    with_host(uri, name, u, sizeof u);
    pings_t p = pings(u, 1);
    ASSERT_EQ(p.err.domain, MQC_ERROR_TLS);
    ASSERT_STR_CONTAINS(p.err.message, "hostname mismatch");
    tf_note("%s: %s", name, p.err.message);
    snprintf(v, sizeof v, "%s&tlsAllowInvalidHostnames=true", u);
    expect_ok(v);
}

/* ---- SCRAM ---------------------------------------------------------------------------------- */

TEST("/security/auth/scram_sha_256", security_auth_sha256)
{
    char u[1100];
    snprintf(u, sizeof u, "%s&authMechanism=SCRAM-SHA-256", tf_server_uri("auth"));
    expect_ok(u);
}

TEST("/security/auth/scram_sha_1", security_auth_sha1)
{
    char u[1100];
    snprintf(u, sizeof u, "%s&authMechanism=SCRAM-SHA-1", tf_server_uri("auth"));
    expect_ok(u);
}

TEST("/security/auth/negotiated", security_auth_negotiated)
{
    /* No authMechanism: saslSupportedMechs in the hello, speculative SCRAM-SHA-256. Several
     * connections: the salted password is computed once. */
    const char *uri = tf_server_uri("auth");
    char u[1100];
    snprintf(u, sizeof u, "%s&maxConnecting=8", uri);
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, u, &err);
    ASSERT_NOT_NULL(c);
    pings_t p = {0};
    for (int i = 0; i < 8; i++) submit_ping(c, &p);
    mqc_client_run_until_idle(c, 30);
    ASSERT_MSG(p.ok == 8, "%s", p.err.message);
    /* How many connections the 8 pings needed depends on how fast the first one was ready (the
     * 500-connection test below always has many); whatever it was, PBKDF2 ran once. */
    tf_note("%llu connections", (unsigned long long) mqc_client_stat(c, MQC_STAT_CONNS_OPENED));
    ASSERT_GE(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), 1);
    ASSERT_EQ(mqc_scram_cache_pbkdf2_runs(c->scram_cache), 1);
    mqc_client_destroy(c);
}

static void check_wrong_password(const char *kind, const char *mech)
{
    const char *uri = tf_server_uri(kind);
    char u[1100], v[1200];
    with_password(uri, "not-the-Password-4711", u, sizeof u);
    if (mech) snprintf(v, sizeof v, "%s&authMechanism=%s", u, mech);
    else snprintf(v, sizeof v, "%s", u);
    pings_t p = pings(v, 2);
    ASSERT_EQ(p.failed, 2);
    ASSERT_EQ(p.err.domain, MQC_ERROR_AUTH);
    ASSERT_STR_CONTAINS(p.err.message, mech ? mech : "SCRAM-SHA-256");
    ASSERT_STR_CONTAINS(p.err.message, "\"mqc\"");
    expect_no_secret("the error", p.err.message, "not-the-Password-4711");
    char real[128];
    password_of(uri, real, sizeof real);
    expect_no_secret("the error", p.err.message, real);
    tf_note("%s", p.err.message);
}

TEST("/security/auth/wrong_password", security_auth_wrong_password)
{
    check_wrong_password("auth", NULL);
    check_wrong_password("auth", "SCRAM-SHA-1");
    check_wrong_password("auth", "SCRAM-SHA-256");
}

TEST("/security/auth/tls_and_auth", security_auth_tls_and_auth)
{
    const char *uri = tf_server_uri("tls,auth");
    char u[1100];
    expect_ok(uri);
    snprintf(u, sizeof u, "%s&authMechanism=SCRAM-SHA-1", uri);
    expect_ok(u);
    check_wrong_password("tls,auth", NULL);
}

TEST("/security/auth/unsupported_mechanism", security_auth_unsupported)
{
    char u[1100];
    snprintf(u, sizeof u, "%s&authMechanism=PLAIN", tf_server_uri("auth"));
    pings_t p = pings(u, 1);
    ASSERT_EQ(p.err.domain, MQC_ERROR_AUTH);
    ASSERT_STR_CONTAINS(p.err.message, "PLAIN");
}

/* ---- back-off: no storm of handshakes after an authentication failure ----------------------- */

typedef struct {
    mqc_client_t *client;
    int left;
    pings_t p;
} chain_t;

static void on_chain(mqc_op_t *op, const bson_t *reply, const mqc_error_t *err, void *ud)
{
    chain_t *ch = ud;
    on_ping(op, reply, err, &ch->p);
    if (--ch->left > 0) {
        bson_t ping = BSON_INITIALIZER;
        BSON_APPEND_INT32(&ping, "ping", 1);
        mqc_client_command(ch->client, "admin", &ping, NULL, on_chain, ch);
        bson_destroy(&ping);
    }
}

static uint64_t attempts(const mqc_client_t *c)
{
    return mqc_client_stat(c, MQC_STAT_CONNS_FAILED) + mqc_client_stat(c, MQC_STAT_CONNS_OPENED);
}

TEST("/security/backoff/wrong_password", security_backoff_wrong_password)
{
    const char *uri = tf_server_uri("auth");
    char u[1100], v[1200];
    with_password(uri, "wrong-pw-backoff", u, sizeof u);
    snprintf(v, sizeof v, "%s&maxConnecting=8", u);
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, v, &err);
    ASSERT_NOT_NULL(c);

    /* 200 at once: they all wait for the first connections; the first failure fails them all. */
    pings_t p = {0};
    for (int i = 0; i < 200; i++) submit_ping(c, &p);
    mqc_client_run_until_idle(c, 30);
    ASSERT_EQ(p.failed, 200);
    ASSERT_EQ(p.err.domain, MQC_ERROR_AUTH);
    /* Connections opened before the first failure finish failing (they no longer count). */
    for (double t = tf_now(); mqc_pool_pending(c->servers[0]->pool) > 0 && tf_now() - t < 10;)
        ev_run(c->loop, EVRUN_ONCE);
    uint64_t n1 = attempts(c);
    tf_note("200 concurrent ops: %llu connection attempts", (unsigned long long) n1);
    ASSERT_LE(n1, 8);

    /* 200 one after another (each callback submits the next, as a load tool does): without a
     * back-off every one would open a connection. */
    chain_t ch = {.client = c, .left = 200};
    double t0 = tf_now();
    bson_t ping = BSON_INITIALIZER;
    BSON_APPEND_INT32(&ping, "ping", 1);
    mqc_client_command(c, "admin", &ping, NULL, on_chain, &ch);
    mqc_client_run_until_idle(c, 30);
    double took = tf_now() - t0;
    uint64_t n2 = attempts(c) - n1;
    tf_note("200 chained ops: %llu connection attempts in %.3f s", (unsigned long long) n2, took);
    ASSERT_EQ(ch.p.failed, 200);
    ASSERT_EQ(ch.p.err.domain, MQC_ERROR_AUTH);
    ASSERT_STR_CONTAINS(ch.p.err.message, "authentication failed for user \"mqc\"");
    ASSERT_LE(n2, 1 + (uint64_t) (took / 0.1)); /* at most one per back-off period, which doubles */
    ASSERT_LE(n2, 5);

    /* The delay doubles: right after a failed attempt a new op fails at once, no connection. */
    ev_sleep(0.25);
    uint64_t before = attempts(c);
    pings_t q = {0};
    submit_ping(c, &q);
    mqc_client_run_until_idle(c, 30);
    ASSERT_EQ(attempts(c), before + 1); /* the back-off had expired: one attempt */
    submit_ping(c, &q);
    mqc_client_run_until_idle(c, 30);
    ASSERT_EQ(attempts(c), before + 1); /* and now it runs again */
    ASSERT_EQ(q.failed, 2);
    ASSERT_EQ(q.err.domain, MQC_ERROR_AUTH);
    bson_destroy(&ping);
    mqc_client_destroy(c);
}

TEST("/security/backoff/reset_on_success", security_backoff_reset)
{
    /* MONGODB-X509 against fakesrv: the first authenticate fails, the next succeeds. */
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    char uri[256];
    snprintf(uri, sizeof uri, "mongodb://CN%%3Dmqc@127.0.0.1:%u/?authMechanism=MONGODB-X509", fakesrv_port(s));
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, uri, &err);
    ASSERT_MSG(c != NULL, "%s", err.message);
    pings_t p = {0};
    fakesrv_set_mode(s, FAKE_ERROR, 18, 1);
    submit_ping(c, &p);
    mqc_client_run_until_idle(c, 10);
    ASSERT_EQ(p.failed, 1);
    ASSERT_EQ(p.err.domain, MQC_ERROR_AUTH);
    submit_ping(c, &p); /* within the back-off: fails at once, nothing sent */
    mqc_client_run_until_idle(c, 10);
    ASSERT_EQ(p.failed, 2);
    ASSERT_EQ(fakesrv_connections(s), 1);
    ev_sleep(0.15);
    submit_ping(c, &p);
    mqc_client_run_until_idle(c, 10);
    ASSERT_EQ(p.ok, 1);
    ASSERT_EQ(fakesrv_connections(s), 2);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

/* ---- the loop while 500 connections authenticate -------------------------------------------- */

typedef struct {
    ev_prepare prep;
    ev_check check;
    double wall0, cpu0;
    double max_wall, max_cpu;
    bool armed;
} blockmeter_t;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* check runs first after the poll (highest priority), prepare just before the next poll: the time
 * between is what the loop spent running callbacks. */
static void on_meter_check(struct ev_loop *loop, ev_check *w, int revents)
{
    (void) loop;
    (void) revents;
    blockmeter_t *m = w->data;
    m->wall0 = tf_now();
    m->cpu0 = cpu_now();
    m->armed = true;
}

static void on_meter_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void) loop;
    (void) revents;
    blockmeter_t *m = w->data;
    if (!m->armed) return;
    double wall = tf_now() - m->wall0, cpu = cpu_now() - m->cpu0;
    if (wall > m->max_wall) m->max_wall = wall;
    if (cpu > m->max_cpu) m->max_cpu = cpu;
    m->armed = false;
}

static void meter_start(blockmeter_t *m, struct ev_loop *loop)
{
    memset(m, 0, sizeof *m);
    ev_prepare_init(&m->prep, on_meter_prepare);
    ev_check_init(&m->check, on_meter_check);
    ev_set_priority(&m->check, EV_MAXPRI);
    ev_set_priority(&m->prep, EV_MINPRI);
    m->prep.data = m->check.data = m;
    ev_prepare_start(loop, &m->prep);
    ev_check_start(loop, &m->check);
    ev_unref(loop);
    ev_unref(loop);
}

static void meter_stop(blockmeter_t *m, struct ev_loop *loop)
{
    ev_ref(loop);
    ev_ref(loop);
    ev_prepare_stop(loop, &m->prep);
    ev_check_stop(loop, &m->check);
}

/* by_name: "localhost" instead of 127.0.0.1, so that the client resolves it (lib/resolve.c). */
static void loop_block(const char *kind, int n, bool by_name)
{
    char u[1200], base[1100];
    snprintf(base, sizeof base, "%s", tf_server_uri(kind));
    char *ip = strstr(base, "127.0.0.1");
    if (by_name && ip) {
        memmove(ip + 9, ip + 9, strlen(ip + 9) + 1);
        memcpy(ip, "localhost", 9); /* as long as "127.0.0.1" */
    }
    snprintf(u, sizeof u, "%s&maxPoolSize=%d&maxConnecting=%d&connectTimeoutMS=60000", base, n, n);
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, u, &err);
    ASSERT_NOT_NULL(c);
    blockmeter_t m;
    pings_t p = {0};
    /* Cold: n at once on a new client, so up to n connections authenticate together and the
     * first of them finds no salted password: PBKDF2 runs once, on the worker thread, while
     * the others wait for it (lib/conn_secure.c). Every loop iteration is measured. */
    meter_start(&m, c->loop);
    double t0 = tf_now();
    for (int i = 0; i < n; i++) submit_ping(c, &p);
    mqc_client_run_until_idle(c, 120);
    double took = tf_now() - t0;
    meter_stop(&m, c->loop);
    uint64_t opened = mqc_client_stat(c, MQC_STAT_CONNS_OPENED), runs = mqc_scram_cache_pbkdf2_runs(c->scram_cache);
    uint64_t retried = mqc_client_stat(c, MQC_STAT_OPS_RETRIED);
    tf_note("%s: %d pings on %llu new connections in %.2f s (%llu retried); PBKDF2 ran %llu time(s), off the loop; "
            "longest loop iteration %.2f ms wall, %.2f ms CPU",
            kind, n, (unsigned long long) opened, took, (unsigned long long) retried, (unsigned long long) runs,
            m.max_wall * 1e3, m.max_cpu * 1e3);
    mqc_client_destroy(c);
    ASSERT_MSG(p.ok == n, "%d of %d failed: %s", p.failed, n, p.err.message);
    ASSERT_GT(opened, 1);
    ASSERT_EQ(runs, 1);
    /* CPU time, not wall time: the machine is shared and FerretDB runs beside us. */
#ifdef __SANITIZE_ADDRESS__
    /* Instrumented code runs 2-3 times slower; with TLS, hundreds of replies can arrive in one
     * iteration, each a TLS record read through OpenSSL's allocations, which ASan's allocator
     * makes dear: 28-32 ms were measured there (plain: 3-5 ms), work per reply, not blocking. */
    const double bound = strstr(kind, "tls") ? 0.050 : 0.030;
#else
    const double bound = 0.010;
#endif
    if (tf_time_bounds())
        ASSERT_MSG(m.max_cpu < bound, "the loop was blocked %.2f ms in one iteration", m.max_cpu * 1e3);
}

TEST("/security/cache/loop_block_500", security_cache_loop_block)
{
    loop_block("auth", 500, false);
}

TEST("/security/cache/loop_block_500_tls", security_cache_loop_block_tls)
{
    /* With maxConnecting=500 hundreds of TLS handshakes (key exchange, certificate checks)
     * become ready in one iteration: lib/conn.c spreads connection opening with a budget per
     * iteration (before it: 23-53 ms CPU in one iteration). */
    loop_block("tls,auth", 500, false);
}

TEST("/security/cache/loop_block_1000_by_name", security_cache_loop_block_1000)
{
    /* The case whole: 1,000 connections opening at once, each resolving "localhost",
     * connecting, authenticating (the first credential derivation included). */
    loop_block("auth", 1000, true);
}

TEST("/security/cache/pbkdf2_cost", security_cache_pbkdf2_cost)
{
    /* What one uncached conversation costs the loop: PBKDF2 at FerretDB's / MongoDB's counts. */
    uint8_t out[32], salt[16] = {1, 2, 3};
    double t0 = cpu_now();
    ASSERT(PKCS5_PBKDF2_HMAC("pencil", 6, salt, sizeof salt, 15000, EVP_sha256(), 32, out));
    double sha256 = cpu_now() - t0;
    t0 = cpu_now();
    ASSERT(PKCS5_PBKDF2_HMAC("pencil", 6, salt, sizeof salt, 10000, EVP_sha1(), 20, out));
    double sha1 = cpu_now() - t0;
    tf_note("PBKDF2: SCRAM-SHA-256 x15000 %.2f ms, SCRAM-SHA-1 x10000 %.2f ms (CPU)", sha256 * 1e3, sha1 * 1e3);
    ASSERT_MSG(sha256 < 0.5, "PBKDF2 took %.2f ms", sha256 * 1e3); /* a measurement, not a bound */
}

/* ---- MONGODB-X509 (FerretDB does not implement it: fakesrv stands in) ----------------------- */

static const char *str_of(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)) return bson_iter_utf8(&it, NULL);
    return NULL;
}

TEST("/security/x509/command", security_x509_command)
{
    bson_t cmd;
    mqc_auth_x509_command(&cmd, "CN=client,O=mqc", false);
    char *json = bson_as_canonical_extended_json(&cmd, NULL);
    ASSERT_STR_EQ(json, "{ \"authenticate\" : { \"$numberInt\" : \"1\" }, \"mechanism\" : \"MONGODB-X509\", "
                        "\"user\" : \"CN=client,O=mqc\" }");
    bson_free(json);
    bson_destroy(&cmd);
    mqc_auth_x509_command(&cmd, NULL, true);
    json = bson_as_canonical_extended_json(&cmd, NULL);
    ASSERT_STR_EQ(json, "{ \"authenticate\" : { \"$numberInt\" : \"1\" }, \"mechanism\" : \"MONGODB-X509\", "
                        "\"db\" : \"$external\" }");
    bson_free(json);
    bson_destroy(&cmd);
}

TEST("/security/x509/flow", security_x509_flow)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    char uri[256];
    snprintf(uri, sizeof uri, "mongodb://CN%%3Dclient%%2CO%%3Dmqc@127.0.0.1:%u/?authMechanism=MONGODB-X509",
             fakesrv_port(s));
    pings_t p = pings(uri, 1);
    ASSERT_MSG(p.ok == 1, "%s", p.err.message);
    bson_t hello, auth, spec;
    ASSERT(fakesrv_last_command(s, true, &hello));
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, &hello, "speculativeAuthenticate") && BSON_ITER_HOLDS_DOCUMENT(&it));
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&it, &len, &data);
    ASSERT(bson_init_static(&spec, data, len));
    ASSERT_STR_EQ(str_of(&spec, "mechanism"), "MONGODB-X509");
    ASSERT_STR_EQ(str_of(&spec, "user"), "CN=client,O=mqc");
    ASSERT_STR_EQ(str_of(&spec, "db"), "$external");
    ASSERT(!bson_has_field(&hello, "saslSupportedMechs"));
    /* Not accepted in the hello: the authenticate command follows, on $external, then the ping. */
    ASSERT_EQ(fakesrv_commands(s), 2);
    ASSERT(fakesrv_last_command(s, false, &auth)); /* the ping */
    ASSERT_STR_EQ(str_of(&auth, "$db"), "admin");
    bson_destroy(&auth);
    bson_destroy(&hello);

    /* Accepted speculatively: no authenticate command at all. */
    fakesrv_set_accept_speculative(s, true);
    int before = fakesrv_commands(s);
    p = pings(uri, 1);
    ASSERT_MSG(p.ok == 1, "%s", p.err.message);
    ASSERT_EQ(fakesrv_commands(s), before + 1);
    fakesrv_stop(s);
}

TEST("/security/x509/authenticate_command", security_x509_authenticate_command)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    char uri[256];
    snprintf(uri, sizeof uri, "mongodb://CN%%3Dx@127.0.0.1:%u/?authMechanism=MONGODB-X509", fakesrv_port(s));
    /* Every command fails: the first one the server sees is the authenticate command. */
    fakesrv_set_mode(s, FAKE_ERROR, 18, 0);
    pings_t p = pings(uri, 1);
    ASSERT_EQ(p.failed, 1);
    ASSERT_EQ(p.err.domain, MQC_ERROR_AUTH);
    ASSERT_EQ(p.err.code, 18);
    ASSERT_STR_CONTAINS(p.err.message, "MONGODB-X509 authentication failed for user \"CN=x\"");
    bson_t auth;
    ASSERT(fakesrv_last_command(s, false, &auth));
    ASSERT_EQ(fakesrv_commands(s), 1);
    ASSERT_STR_EQ(str_of(&auth, "mechanism"), "MONGODB-X509");
    ASSERT_STR_EQ(str_of(&auth, "user"), "CN=x");
    ASSERT_STR_EQ(str_of(&auth, "$db"), "$external");
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, &auth, "authenticate"));
    bson_destroy(&auth);
    fakesrv_stop(s);
}

/* The user name from the client certificate: a certificate made with the openssl tool. */
TEST("/security/x509/subject", security_x509_subject)
{
    char cmd[2048], pem[600];
    const char *dir = tf_tmpdir();
    snprintf(pem, sizeof pem, "%s/client.pem", dir);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 1 "
             "-subj '/C=US/O=mqc/OU=tests/CN=client one' >/dev/null 2>&1 && cat c.pem k.pem > client.pem",
             dir);
    if (system(cmd) != 0) SKIP("the openssl tool could not make a certificate");
    mqc_tls_options_t o = {.cert_key_file = pem, .allow_invalid_certs = true};
    mqc_error_t err;
    mqc_tls_ctx_t *ctx = mqc_tls_ctx_new(&o, &err);
    ASSERT_MSG(ctx != NULL, "%s", err.message);
    char subject[256];
    ASSERT(mqc_tls_ctx_client_subject(ctx, subject, sizeof subject));
    ASSERT_STR_EQ(subject, "CN=client one,OU=tests,O=mqc,C=US");
    mqc_tls_ctx_destroy(ctx);
}

/* ---- mqload over TLS + auth, and its outputs on a wrong password ----------------------------- */

static int run_mqload(const char *args, char *out, size_t outsz)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s/mqload' %s 2>&1", tf_build_dir(), args);
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void need_mqload(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/mqload", tf_build_dir());
    if (access(path, X_OK) != 0) SKIP("%s is not built", path);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[8 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

TEST("/security/mqload/tls_auth", security_mqload_tls_auth)
{
    need_mqload();
    const char *uri = tf_server_uri("tls,auth");
    char json[512], html[512], args[4096], pw[128];
    static char out[1 << 16];
    password_of(uri, pw, sizeof pw);
    snprintf(json, sizeof json, "%s/sec.json", tf_tmpdir());
    snprintf(html, sizeof html, "%s/sec.html", tf_tmpdir());
    snprintf(args, sizeof args, "--uri '%s' --db %s --engine mqc -d 2 --warmup 0.3 -c 4 --seed 200 "
             "--mix find=80,update=20 --seed-rng 1 --json '%s' --html '%s' --no-progress",
             uri, tf_unique("secload"), json, html);
    int rc = run_mqload(args, out, sizeof out);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    expect_no_secret("mqload's output", out, pw);
    mqload_result_t r;
    char *text = slurp(json), e[512];
    ASSERT_NOT_NULL(text);
    expect_no_secret("the JSON", text, pw);
    ASSERT_MSG(mqload_result_from_json(&r, text, strlen(text), e, sizeof e), "%s", e);
    uint64_t sub = r.submitted, comp = r.completed, ok = r.ok, errs = r.errors;
    mqload_result_free(&r);
    tf_note("TLS + SCRAM: %llu ops, %llu errors", (unsigned long long) ok, (unsigned long long) errs);
    ASSERT_EQ(sub, comp);
    ASSERT_GT(ok, 0);
    ASSERT_EQ(errs, 0);
    text = slurp(html);
    ASSERT_NOT_NULL(text);
    expect_no_secret("the HTML", text, pw);
}

TEST("/security/mqload/wrong_password", security_mqload_wrong_password)
{
    need_mqload();
    const char *uri = tf_server_uri("tls,auth");
    const char *bad = "Wr0ng-Secret-98765";
    char u[1100], json[512], html[512], args[4096], pw[128];
    static char out[1 << 16];
    password_of(uri, pw, sizeof pw);
    with_password(uri, bad, u, sizeof u);
    snprintf(json, sizeof json, "%s/bad.json", tf_tmpdir());
    snprintf(html, sizeof html, "%s/bad.html", tf_tmpdir());
    const char *engines[] = {"mqc", "mongoc"};
    for (size_t i = 0; i < 2; i++) {
        unlink(json);
        unlink(html);
        snprintf(args, sizeof args, "--uri '%s' --db %s --engine %s -d 1 --warmup 0 -c 2 --seed 10 --json '%s' "
                 "--html '%s' --no-progress", u, tf_unique("secbad"), engines[i], json, html);
        int rc = run_mqload(args, out, sizeof out);
        tf_note("%s: exit %d: %.300s", engines[i], rc, out);
        ASSERT_EQ(rc, 1);
        ASSERT_MSG(strstr(out, "authentication") || strstr(out, "Authentication"), "no clear message: %s", out);
        expect_no_secret("mqload's output", out, bad);
        expect_no_secret("mqload's output", out, pw);
        const char *files[] = {json, html};
        for (size_t f = 0; f < 2; f++) {
            char *text = slurp(files[f]);
            if (!text) continue;
            expect_no_secret(files[f], text, bad);
        }
    }
}

/* ---- secrets in memory ---------------------------------------------------------------------- */

/* Counts occurrences of the secret (stored masked: the needle itself is not the password) in
 * the process's resident private writable memory, the main thread's stack excepted. */
/* Reads every byte, sanitizer red zones and freed blocks included: that is the point. */
__attribute__((no_sanitize_address)) static int scan_memory(const uint8_t *masked, size_t len, uint8_t mask)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int hits = 0;
    long page = sysconf(_SC_PAGESIZE);
    ASSERT_NOT_NULL(f);
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8], path[256] = "";
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi, perms, path) < 3) continue;
        if (perms[0] != 'r' || perms[1] != 'w' || perms[3] != 'p') continue;
        if (strcmp(path, "[stack]") == 0 || strncmp(path, "[v", 2) == 0) continue;
        if (hi - lo > (1UL << 30)) continue; /* sanitizer shadow and reservations */
        for (unsigned long a = lo; a < hi; a += (unsigned long) page) {
            unsigned char vec;
            if (mincore((void *) a, (size_t) page, &vec) != 0 || !(vec & 1)) continue;
            const uint8_t *p = (const uint8_t *) a;
            size_t n = (size_t) page + (a + (unsigned long) page < hi ? len - 1 : 0);
            if (a + n > hi) n = hi - a;
            for (size_t i = 0; i + len <= n; i++) {
                if ((uint8_t) (p[i] ^ mask) != masked[0]) continue;
                size_t j = 1;
                while (j < len && (uint8_t) (p[i + j] ^ mask) == masked[j]) j++;
                if (j == len) hits++;
            }
        }
    }
    fclose(f);
    return hits;
}

__attribute__((noinline)) static void use_secret(const char *base_uri, const uint8_t *masked, size_t len,
                                                 uint8_t mask, const char *mech)
{
    char pw[64], u[1200];
    for (size_t i = 0; i < len; i++) pw[i] = (char) (masked[i] ^ mask);
    pw[len] = 0;
    with_password(base_uri, pw, u, sizeof u);
    size_t ulen = strlen(u);
    snprintf(u + ulen, sizeof u - ulen, "&authMechanism=%s", mech);
    explicit_bzero(pw, sizeof pw);
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, u, &err);
    explicit_bzero(u, sizeof u);
    ASSERT_NOT_NULL(c);
    pings_t p = {0};
    for (int i = 0; i < 3; i++) submit_ping(c, &p);
    mqc_client_run_until_idle(c, 30);
    mqc_client_destroy(c);
    ASSERT_EQ(p.err.domain, MQC_ERROR_AUTH);
    explicit_bzero(&p, sizeof p);
}

/* The same secret as tlsCertificateKeyFilePassword: parsed, kept, destroyed. */
__attribute__((noinline)) static void keep_secret_option(const char *base_uri, const uint8_t *masked, size_t len,
                                                         uint8_t mask)
{
    char pw[64], u[1200];
    for (size_t i = 0; i < len; i++) pw[i] = (char) (masked[i] ^ mask);
    pw[len] = 0;
    snprintf(u, sizeof u, "%s&tlsCertificateKeyFilePassword=%s", base_uri, pw);
    explicit_bzero(pw, sizeof pw);
    mqc_error_t err;
    mqc_client_t *c = mqc_client_new_from_uri(NULL, u, &err);
    explicit_bzero(u, sizeof u);
    ASSERT_NOT_NULL(c);
    ASSERT_NOT_NULL(c->uri.tls_certificate_key_file_password);
    ASSERT_EQ(strlen(c->uri.tls_certificate_key_file_password), len);
    mqc_client_destroy(c);
}

TEST("/security/secrets/wiped_on_destroy", security_secrets_wiped)
{
    /* A password made at run time, held only masked; the client authenticates with it (and
     * fails: it is not the server's), then is destroyed: no copy may remain in the heap. */
    const char *uri = tf_server_uri("auth");
    uint8_t mask = 0x5a, masked[24];
    uint8_t rnd[24];
    int fd = open("/dev/urandom", O_RDONLY);
    ASSERT(fd >= 0 && read(fd, rnd, sizeof rnd) == (ssize_t) sizeof rnd);
    close(fd);
    for (size_t i = 0; i < sizeof masked; i++) masked[i] = (uint8_t) ("abcdefghijklmnopqrstuvwxyz234567"[rnd[i] & 31] ^ mask);
    ASSERT_EQ(scan_memory(masked, sizeof masked, mask), 0);
    use_secret(uri, masked, sizeof masked, mask, "SCRAM-SHA-256");
    use_secret(uri, masked, sizeof masked, mask, "SCRAM-SHA-1");
    keep_secret_option(uri, masked, sizeof masked, mask);
    /* libmongoc's parser copies the password and frees the copies unwiped: mqc keeps secrets
     * from it (lib/uri.c take_secrets). ASan's quarantine keeps freed blocks as they were, so
     * any unwiped free is found here in the sanitizer build too. */
    int hits = scan_memory(masked, sizeof masked, mask);
    ASSERT_MSG(hits == 0, "the password survives in %d place(s) of the heap after destroy", hits);
}
