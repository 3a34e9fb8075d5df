/* The test environment itself: the servers that scripts/ferretdb starts (or that MQC_TEST_*_URI name)
 * serve, through libmongoc, a document written and read back — plain, over TLS with the run's
 * throw-away CA, and with SCRAM credentials — and they refuse what they should refuse. These run
 * before anything of mqc is trusted, so a failure here points at the environment, not the library.
 *
 * Every test fails (never skips) when its server cannot be had: tf_server_uri() fails the test. */
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>

#include "tf.h"

/* Drops libmongoc's debug and info chatter (the refused-credentials tests would print pages of it),
 * keeping warnings and errors, except the one FerretDB earns at every client destroy: it has no
 * endSessions command. */
static void quiet_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    if (level > MONGOC_LOG_LEVEL_WARNING) return;
    if (level == MONGOC_LOG_LEVEL_WARNING && strstr(message, "\"endSessions\"")) return;
    mongoc_log_default_handler(level, domain, message, ud);
}

/* A client for uri (copied; the caller keeps it), failing in seconds rather than libmongoc's
 * default 30 when the server is not there. */
static mongoc_client_t *client_from(mongoc_uri_t *uri)
{
    bson_error_t err;
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 5000);
    mongoc_client_t *c = mongoc_client_new_from_uri_with_error(uri, &err);
    ASSERT_MSG(c, "mongoc_client_new(%s): %s", mongoc_uri_get_string(uri), err.message);
    mongoc_client_set_error_api(c, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(c, "mqc-test-env");
    return c;
}

/* Parses uri_str (failing the test when libmongoc rejects it). */
static mongoc_uri_t *parse_uri(const char *uri_str)
{
    bson_error_t err;
    mongoc_init(); /* once per process; libmongoc ignores later calls */
    mongoc_log_set_handler(quiet_log, NULL);
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_str, &err);
    ASSERT_MSG(uri, "libmongoc rejects the URI %s: %s", uri_str, err.message);
    return uri;
}

static mongoc_client_t *client_for(const char *uri_str)
{
    mongoc_uri_t *uri = parse_uri(uri_str);
    mongoc_client_t *c = client_from(uri);
    mongoc_uri_destroy(uri);
    return c;
}

/* Inserts a document of several BSON types into a fresh collection, reads it back by _id and
 * compares bytes, then drops the collection. */
static void roundtrip(const char *uri_str)
{
    bson_error_t err;
    mongoc_client_t *c = client_for(uri_str);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "mqc_test", tf_unique("env"));
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    bson_t *doc = BCON_NEW("_id", BCON_OID(&oid), "s", BCON_UTF8("h\xc3\xa9llo"), "i", BCON_INT32(-7),
                           "l", BCON_INT64(INT64_C(1) << 40), "d", BCON_DOUBLE(2.5), "b", BCON_BOOL(true),
                           "sub", "{", "a", "[", BCON_INT32(1), BCON_UTF8("two"), "]", "}");

    bool ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &err);
    ASSERT_MSG(ok, "insert via %s: %s (domain %u, code %u)", uri_str, err.message, err.domain, err.code);

    bson_t *filter = BCON_NEW("_id", BCON_OID(&oid));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *got = NULL;
    bool found = mongoc_cursor_next(cur, &got);
    ASSERT_MSG(!mongoc_cursor_error(cur, &err), "find via %s: %s", uri_str, err.message);
    ASSERT_MSG(found, "the inserted document is not found via %s", uri_str);
    if (!bson_equal(got, doc)) {
        char *a = bson_as_canonical_extended_json(doc, NULL), *b = bson_as_canonical_extended_json(got, NULL);
        tf_note("wrote %s", a);
        tf_note("read  %s", b);
        FAIL("read back differs from written: %s vs %s", b, a);
    }
    ASSERT_MSG(!mongoc_cursor_next(cur, &got), "more than one document in a fresh collection");
    mongoc_cursor_destroy(cur);

    ASSERT_MSG(mongoc_collection_drop(coll, &err), "drop: %s", err.message);
    bson_destroy(filter);
    bson_destroy(doc);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(c);
}

/* Runs {ping: 1} on admin; returns whether it worked, with the error in *err. */
static bool ping(mongoc_client_t *c, bson_error_t *err)
{
    bson_t *cmd = BCON_NEW("ping", BCON_INT32(1));
    bson_t reply;
    bool ok = mongoc_client_command_simple(c, "admin", cmd, NULL, &reply, err);
    bson_destroy(&reply);
    bson_destroy(cmd);
    return ok;
}

TEST("/env/ferretdb/plain", env_ferretdb_plain)
{
    roundtrip(tf_server_uri("plain"));
}

TEST("/env/ferretdb/tls", env_ferretdb_tls)
{
    const char *uri = tf_server_uri("tls");
    ASSERT_MSG(strcasestr(uri, "tls=true") || strcasestr(uri, "ssl=true"), "TLS URI without tls=true: %s", uri);
    roundtrip(uri);
}

TEST("/env/ferretdb/auth", env_ferretdb_auth)
{
    const char *uri = tf_server_uri("auth");
    ASSERT_MSG(strchr(uri, '@'), "auth URI without credentials: %s", uri);
    roundtrip(uri);
}

TEST("/env/ferretdb/tls_auth", env_ferretdb_tls_auth)
{
    roundtrip(tf_server_uri("tls,auth"));
}

/* FerretDB v1.24's new auth speaks both SCRAM mechanisms (not PLAIN): pin each in turn. */
TEST("/env/ferretdb/auth_mechanisms", env_ferretdb_auth_mechanisms)
{
    const char *base = tf_server_uri("auth");
    static const char *const mechs[] = {"SCRAM-SHA-1", "SCRAM-SHA-256"};
    for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++) {
        char uri[2048];
        snprintf(uri, sizeof uri, "%s%sauthMechanism=%s", base, strchr(base, '?') ? "&" : "/?", mechs[i]);
        bson_error_t err;
        mongoc_client_t *c = client_for(uri);
        ASSERT_MSG(ping(c, &err), "%s: %s", mechs[i], err.message);
        mongoc_client_destroy(c);
    }
}

TEST("/env/ferretdb/auth_rejects_wrong_password", env_ferretdb_auth_rejects_wrong_password)
{
    const char *good = tf_server_uri("auth");
    bson_error_t err;
    mongoc_uri_t *uri = parse_uri(good);
    ASSERT_MSG(mongoc_uri_get_username(uri), "auth URI without a user: %s", good);
    ASSERT(mongoc_uri_set_password(uri, "not-the-password"));
    mongoc_client_t *c = client_from(uri);
    mongoc_uri_destroy(uri);
    ASSERT_MSG(!ping(c, &err), "a wrong password was accepted by %s", good);
    ASSERT_EQ(err.domain, MONGOC_ERROR_CLIENT);
    ASSERT_EQ(err.code, MONGOC_ERROR_CLIENT_AUTHENTICATE);
    mongoc_client_destroy(c);
}

/* The server's certificate must verify against the run's CA and nothing else: with the system
 * store instead, the handshake fails. */
TEST("/env/ferretdb/tls_needs_the_ca", env_ferretdb_tls_needs_the_ca)
{
    const char *good = tf_server_uri("tls");
    if (!strcasestr(good, "tlsCAFile=")) SKIP("the TLS URI names no tlsCAFile (a publicly trusted server?)");
    bson_error_t err;
    mongoc_uri_t *uri = parse_uri(good);
    /* The Debian system bundle holds public roots only. */
    ASSERT(mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, "/etc/ssl/certs/ca-certificates.crt"));
    mongoc_client_t *c = client_from(uri);
    mongoc_uri_destroy(uri);
    ASSERT_MSG(!ping(c, &err), "the TLS server verified against the system roots: %s", good);
    ASSERT_STR_CONTAINS(err.message, "TLS handshake failed");
    mongoc_client_destroy(c);
}

/* scripts/ferretdb start --tls serves TLS only: a plain connection to that port gets nothing. */
TEST("/env/ferretdb/tls_only", env_ferretdb_tls_only)
{
    if (getenv("MQC_TEST_TLS_URI") && *getenv("MQC_TEST_TLS_URI")) SKIP("TLS server given by MQC_TEST_TLS_URI");
    const char *good = tf_server_uri("tls");
    bson_error_t err;
    mongoc_uri_t *uri = parse_uri(good);
    const mongoc_host_list_t *h = mongoc_uri_get_hosts(uri);
    ASSERT_NOT_NULL(h);
    char plain[300];
    snprintf(plain, sizeof plain, "mongodb://%s/", h->host_and_port);
    mongoc_uri_destroy(uri);

    mongoc_client_t *c = client_for(plain);
    ASSERT_MSG(!ping(c, &err), "plain TCP was served on the TLS port: %s", plain);
    mongoc_client_destroy(c);
}

/* A replica-set-named instance: hello carries the set name, so a driver given replicaSet= in the
 * URI finds a primary and writes. */
TEST("/env/ferretdb/replica_set_name", env_ferretdb_replica_set_name)
{
    const char *uri_str = tf_rs_uri();
    bson_error_t err;
    mongoc_uri_t *uri = parse_uri(uri_str);
    const char *want = mongoc_uri_get_replica_set(uri);
    ASSERT_MSG(want, "replica set URI without replicaSet=: %s", uri_str);
    char *want_copy = bson_strdup(want);
    mongoc_uri_destroy(uri);

    mongoc_client_t *c = client_for(uri_str);
    bson_t *cmd = BCON_NEW("hello", BCON_INT32(1));
    bson_t reply;
    bson_iter_t it;
    ASSERT_MSG(mongoc_client_command_simple(c, "admin", cmd, NULL, &reply, &err), "hello: %s", err.message);
    ASSERT_MSG(bson_iter_init_find(&it, &reply, "setName") && BSON_ITER_HOLDS_UTF8(&it), "hello has no setName");
    ASSERT_STR_EQ(bson_iter_utf8(&it, NULL), want_copy);
    bson_destroy(&reply);
    bson_destroy(cmd);
    mongoc_client_destroy(c);
    bson_free(want_copy);
    roundtrip(uri_str);
}

/* The script's own life cycle: start prints a URI that serves; stop ends the process and removes
 * the instance's folder, after which nothing answers on that port. */
TEST("/env/ferretdb/start_stop", env_ferretdb_start_stop)
{
    if (tf_server_is_external()) SKIP("MQC_TEST_URI is set: FerretDB is not in use");
    char cmd[4096], line[1024], uri[1024] = "";
    snprintf(cmd, sizeof cmd, "'%s/scripts/ferretdb' start 2>/dev/null", tf_src_dir());
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0]) snprintf(uri, sizeof uri, "%s", line);
    }
    ASSERT_EQ(pclose(p), 0);
    ASSERT_MSG(strncmp(uri, "mongodb://127.0.0.1:", 20) == 0, "last line is not a URI: '%s'", uri);
    int port = atoi(uri + 20);
    ASSERT_GT(port, 0);
    const char *run = getenv("MQC_FERRETDB_RUN") ? getenv("MQC_FERRETDB_RUN") : "/tmp/mqc-ferretdb";
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%d", run, port);
    struct stat st;
    ASSERT_MSG(stat(dir, &st) == 0, "no instance folder %s", dir);

    bson_error_t err;
    mongoc_client_t *c = client_for(uri);
    ASSERT_MSG(ping(c, &err), "fresh instance %s: %s", uri, err.message);
    mongoc_client_destroy(c);

    snprintf(cmd, sizeof cmd, "'%s/scripts/ferretdb' stop '%s'", tf_src_dir(), uri);
    ASSERT_EQ(system(cmd), 0);
    ASSERT_MSG(stat(dir, &st) != 0, "stop left %s behind", dir);
    c = client_for(uri);
    ASSERT_MSG(!ping(c, &err), "%s still answers after stop", uri);
    mongoc_client_destroy(c);
}
