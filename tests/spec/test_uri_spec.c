/* Spec tests of connection strings against mqc_uri_parse: connection-string/tests,
 * uri-options/tests and auth/tests/legacy (format: source/connection-string/tests/README).
 *
 * A warning is what libmongoc logs at WARNING level (or above) while parsing, or one of mqc's
 * own (mqc_uri_t.n_warnings); a log handler catches them for the duration of the parse. mqc
 * rejects some values the spec only warns about (libmongoc does the same for integers it cannot
 * parse, and mqc for negative ones): for a case expecting a warning, a rejection passes. */
#include <mongoc/mongoc.h>
#include <string.h>
#include <strings.h>

#include "spec.h"
#include "../tf.h"
#include "uri.h"

/* Options of the URI options spec that mqc does not implement (case-insensitive). */
static const char *const unsupported[] = {
    "compressors", "zlibCompressionLevel", "proxyHost", "proxyPort",
    "proxyUsername", "proxyPassword", "maxAdaptiveRetries", "enableOverloadRetargeting",
    "serverMonitoringMode", "serverSelectionTryOnce", "tlsDisableCertificateRevocationCheck",
    "tlsDisableOCSPEndpointCheck", "tlsAllowInvalidHostnames_unused", "gssapiServiceName",
    "canonicalizeHostname", "socketCheckIntervalMS", "uuidRepresentation", "waitQueueMultiple",
    "waitQueueSize", "safe", "slaveOk", "sslCertificateAuthorityFile",
};

static bool is_unsupported(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (strlen(unsupported[i]) == len && strncasecmp(unsupported[i], name, len) == 0) return true;
    return false;
}

/* Options mqc_uri_t exposes (actual_option below knows them all). */
static const char *const implemented[] = {
    "connectTimeoutMS", "heartbeatFrequencyMS", "localThresholdMS", "maxIdleTimeMS", "maxPoolSize", "minPoolSize",
    "maxConnecting", "serverSelectionTimeoutMS", "socketTimeoutMS", "waitQueueTimeoutMS", "maxPendingOperations",
    "timeoutMS", "maxStalenessSeconds", "directConnection", "loadBalanced", "retryReads", "retryWrites", "tls", "ssl",
    "tlsAllowInvalidCertificates", "tlsAllowInvalidHostnames", "tlsInsecure", "appname", "replicaSet",
    "authMechanism", "authSource", "tlsCAFile", "tlsCertificateKeyFile", "tlsCertificateKeyFilePassword",
    "readPreference", "authMechanismProperties", "readPreferenceTags", "readConcernLevel", "w", "journal",
    "wTimeoutMS", "srvServiceName", "srvMaxHosts",
};

static bool is_implemented(const char *name)
{
    for (size_t i = 0; i < sizeof implemented / sizeof implemented[0]; i++)
        if (!strcasecmp(implemented[i], name)) return true;
    return false;
}

/* mqc authenticates with SCRAM only: cases about other mechanisms are skipped (libmongoc 1.23
 * would parse most of them, but does not validate MONGODB-AWS nor know MONGODB-OIDC). */
static bool unknown_mechanism(const char *m)
{
    return m && strcasecmp(m, "SCRAM-SHA-1") != 0 && strcasecmp(m, "SCRAM-SHA-256") != 0 && strcasecmp(m, "DEFAULT") != 0;
}

/* Known divergences of libmongoc 1.23, the parser mqc must use: skipped with the reason. */
static const struct {
    const char *file, *description, *reason;
} divergences[] = {
    {"valid-db-with-dotted-name", "Multiple Unix domain sockets",
     "libmongoc 1.23 (mqc's URI parser) rejects a database name with a dot after Unix socket hosts "
     "(\"Invalid database name in URI\")"},
};

static int g_warnings;

static void count_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void) domain;
    (void) message;
    (void) ud;
    if (level <= MONGOC_LOG_LEVEL_WARNING) g_warnings++;
}

/* ---- actual option values --------------------------------------------------------------- */

static const char *mode_name(mqc_read_mode_t m)
{
    switch (m) {
    case MQC_READ_PRIMARY_PREFERRED: return "primaryPreferred";
    case MQC_READ_SECONDARY: return "secondary";
    case MQC_READ_SECONDARY_PREFERRED: return "secondaryPreferred";
    case MQC_READ_NEAREST: return "nearest";
    default: return "primary";
    }
}

static bool copy_field(bson_t *out, const char *name, const bson_t *from, const char *key)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, from, key)) return false;
    return bson_append_iter(out, name, -1, &it);
}

/* Appends mqc's value of option name (lowercase spec name) to out; false when mqc has none. */
static bool actual_option(const mqc_uri_t *u, const char *name, bson_t *out)
{
#define I64(n, v) if (!strcasecmp(name, n)) return BSON_APPEND_INT64(out, name, v)
#define BOOL(n, v) if (!strcasecmp(name, n)) return BSON_APPEND_BOOL(out, name, v)
#define STR(n, v) if (!strcasecmp(name, n)) return (v) ? BSON_APPEND_UTF8(out, name, v) : false
    I64("connectTimeoutMS", u->connect_timeout_ms);
    I64("heartbeatFrequencyMS", u->heartbeat_frequency_ms);
    I64("localThresholdMS", u->local_threshold_ms);
    I64("maxIdleTimeMS", u->max_idle_time_ms);
    I64("maxPoolSize", u->max_pool_size);
    I64("minPoolSize", u->min_pool_size);
    I64("maxConnecting", u->max_connecting);
    I64("serverSelectionTimeoutMS", u->server_selection_timeout_ms);
    I64("socketTimeoutMS", u->socket_timeout_ms);
    I64("waitQueueTimeoutMS", u->wait_queue_timeout_ms);
    I64("maxPendingOperations", u->max_pending);
    STR("srvServiceName", u->srv_service_name);
    I64("srvMaxHosts", u->srv_max_hosts);
    if (!strcasecmp(name, "timeoutMS")) return u->timeout_ms >= 0 && BSON_APPEND_INT64(out, name, u->timeout_ms);
    if (!strcasecmp(name, "maxStalenessSeconds"))
        return u->max_staleness_seconds >= 0 && BSON_APPEND_INT64(out, name, u->max_staleness_seconds);
    BOOL("directConnection", u->direct_connection);
    BOOL("loadBalanced", u->load_balanced);
    BOOL("retryReads", u->retry_reads);
    BOOL("retryWrites", u->retry_writes);
    BOOL("tls", u->tls);
    BOOL("ssl", u->tls);
    BOOL("tlsAllowInvalidCertificates", u->tls_allow_invalid_certificates);
    BOOL("tlsAllowInvalidHostnames", u->tls_allow_invalid_hostnames);
    BOOL("tlsInsecure", u->tls_allow_invalid_certificates && u->tls_allow_invalid_hostnames);
    STR("appname", u->appname);
    STR("replicaSet", u->replica_set);
    STR("authMechanism", u->auth_mechanism);
    STR("authSource", u->auth_source);
    STR("tlsCAFile", u->tls_ca_file);
    STR("tlsCertificateKeyFile", u->tls_certificate_key_file);
    STR("tlsCertificateKeyFilePassword", u->tls_certificate_key_file_password);
    STR("readPreference", mode_name(u->read_mode));
    if (!strcasecmp(name, "authMechanismProperties"))
        return BSON_APPEND_DOCUMENT(out, name, &u->auth_mechanism_properties);
    if (!strcasecmp(name, "readPreferenceTags")) return BSON_APPEND_ARRAY(out, name, &u->read_tags);
    if (!strcasecmp(name, "readConcernLevel")) return copy_field(out, name, &u->read_concern, "level");
    if (!strcasecmp(name, "w")) return copy_field(out, name, &u->write_concern, "w");
    if (!strcasecmp(name, "journal")) return copy_field(out, name, &u->write_concern, "j");
    if (!strcasecmp(name, "wTimeoutMS")) return copy_field(out, name, &u->write_concern, "wtimeout");
#undef I64
#undef BOOL
#undef STR
    return false;
}

/* ---- checks ------------------------------------------------------------------------------- */

/* The checks run while the parsed URI is alive: they report through g_why and return false
 * instead of failing the test (which would leave the URI unfreed). */
static char g_why[1024];
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            snprintf(g_why, sizeof g_why, __VA_ARGS__);                       \
            return false;                                                     \
        }                                                                     \
    } while (0)

static void skip_unsupported(const bson_t *c, const char *uri)
{
    /* mongodb+srv URIs parse here (hosts stay empty: the SRV lookup fills them, tested with
     * canned DNS records in tests/test_srv.c). No case of these folders needs real DNS. */
    const char *q = strchr(uri, '?');
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        size_t item = strcspn(p, "&"), key = strcspn(p, "=&");
        if (is_unsupported(p, key)) SKIP("option %.*s is not implemented by mqc", (int) key, p);
        p += item + (p[item] == '&');
    }
    bson_t sub;
    bson_iter_t it;
    if (spec_sub(c, "options", &sub) && bson_iter_init(&it, &sub))
        while (bson_iter_next(&it)) {
            const char *k = bson_iter_key(&it);
            /* an expected option mqc has no field for, listed or not, cannot be checked */
            if (!is_implemented(k) || is_unsupported(k, strlen(k))) SKIP("option %s is not implemented by mqc", k);
        }
    const char *m = q ? strcasestr(q, "authMechanism=") : NULL;
    if (m) {
        char mech[64];
        size_t n = strcspn(m + 14, "&");
        snprintf(mech, sizeof mech, "%.*s", (int) (n < 63 ? n : 63), m + 14);
        if (unknown_mechanism(mech)) SKIP("authMechanism %s is not implemented by mqc (SCRAM-SHA-1/256 only)", mech);
    }
    const char *file = strrchr(spec_case()->file, '/');
    const char *desc = spec_str(c, "description");
    for (size_t i = 0; file && desc && i < sizeof divergences / sizeof divergences[0]; i++)
        if (!strncmp(file + 1, divergences[i].file, strlen(divergences[i].file)) && strstr(desc, divergences[i].description))
            SKIP("%s", divergences[i].reason);
}

static bool check_hosts(const bson_t *c, const mqc_uri_t *u)
{
    bson_t hosts;
    bson_iter_t it;
    if (!spec_sub(c, "hosts", &hosts)) return true;
    CHECK(u->n_hosts == bson_count_keys(&hosts), "hosts: expected %u, got %zu", bson_count_keys(&hosts), u->n_hosts);
    size_t i = 0;
    bson_iter_init(&it, &hosts);
    while (bson_iter_next(&it) && i < u->n_hosts) {
        bson_t h;
        uint32_t len;
        const uint8_t *data;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it)) continue;
        bson_iter_document(&it, &len, &data);
        bson_init_static(&h, data, len);
        const char *host = spec_str(&h, "host");
        if (host) CHECK(!strcmp(u->hosts[i].host, host), "host %zu: expected \"%s\", got \"%s\"", i, host, u->hosts[i].host);
        if (spec_has(&h, "port"))
            CHECK(u->hosts[i].port == spec_int(&h, "port", 0), "host %zu: expected port %lld, got %u", i,
                  (long long) spec_int(&h, "port", 0), u->hosts[i].port);
        const char *type = spec_str(&h, "type");
        if (type) CHECK(u->hosts[i].is_unix == (strcmp(type, "unix") == 0), "host %zu: type %s", i, type);
        i++;
    }
    return true;
}

static bool check_str(const char *what, const bson_t *expected, const char *key, const char *actual)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, expected, key)) return true;
    if (BSON_ITER_HOLDS_NULL(&it)) {
        CHECK(actual == NULL, "%s: expected none, got \"%s\"", what, actual);
        return true;
    }
    if (BSON_ITER_HOLDS_UTF8(&it)) {
        CHECK(actual != NULL, "%s: expected \"%s\", got none", what, bson_iter_utf8(&it, NULL));
        CHECK(strcmp(actual, bson_iter_utf8(&it, NULL)) == 0, "%s: expected \"%s\", got \"%s\"", what,
              bson_iter_utf8(&it, NULL), actual);
    }
    return true;
}

static bool check_auth(const bson_t *c, const mqc_uri_t *u)
{
    bson_t a;
    if (spec_sub(c, "auth", &a) &&
        !(check_str("username", &a, "username", u->username) && check_str("password", &a, "password", u->password) &&
          check_str("db", &a, "db", u->database)))
        return false;
    bson_iter_t it;
    if (!bson_iter_init_find(&it, c, "credential")) return true;
    if (BSON_ITER_HOLDS_NULL(&it)) {
        CHECK(u->username == NULL && u->auth_mechanism == NULL, "expected no credential, got user %s mechanism %s",
              u->username ? u->username : "(none)", u->auth_mechanism ? u->auth_mechanism : "(none)");
        return true;
    }
    if (!spec_sub(c, "credential", &a)) return true;
    if (!check_str("username", &a, "username", u->username) || !check_str("password", &a, "password", u->password) ||
        !check_str("source", &a, "source", u->auth_source))
        return false;
    if (spec_str(&a, "mechanism") && !check_str("mechanism", &a, "mechanism", u->auth_mechanism)) return false;
    bson_t props;
    char why[512];
    if (spec_sub(&a, "mechanism_properties", &props))
        CHECK(spec_doc_equal(&props, &u->auth_mechanism_properties, false, true, why, sizeof why),
              "mechanism_properties: %s", why);
    return true;
}

static bool check_options(const bson_t *c, const mqc_uri_t *u)
{
    bson_t opts;
    bson_iter_t it;
    if (!spec_sub(c, "options", &opts) || !bson_iter_init(&it, &opts)) return true;
    while (bson_iter_next(&it)) {
        const char *name = bson_iter_key(&it);
        bson_t actual = BSON_INITIALIZER;
        bson_iter_t a;
        char why[512];
        bool have = actual_option(u, name, &actual) && bson_iter_init_find(&a, &actual, name);
        if (!have) {
            bson_destroy(&actual);
            CHECK(false, "option %s: mqc has no value for it", name);
        }
        bool readpref = !strcasecmp(name, "readPreference") && BSON_ITER_HOLDS_UTF8(&it);
        bool same = readpref ? !strcasecmp(bson_iter_utf8(&it, NULL), bson_iter_utf8(&a, NULL))
                             : spec_value_equal(&it, &a, false, why, sizeof why);
        if (readpref && !same) snprintf(why, sizeof why, "expected %s", bson_iter_utf8(&it, NULL));
        bson_destroy(&actual);
        CHECK(same, "option %s: %s", name, why);
    }
    return true;
}

static void run_uri_case(void)
{
    const bson_t *c = spec_case()->doc;
    const char *uri = spec_str(c, "uri");
    if (!uri) SKIP("case without a \"uri\" string: not of this format");
    skip_unsupported(c, uri);
    bool valid = spec_bool(c, "valid", true), warning = spec_bool(c, "warning", false);

    mqc_uri_t u;
    mqc_error_t err;
    g_warnings = 0;
    mongoc_log_set_handler(count_log, NULL);
    bool ok = mqc_uri_parse(&u, uri, &err);
    mongoc_log_set_handler(mongoc_log_default_handler, NULL);
    int warnings = g_warnings + (ok ? (int) u.n_warnings : 0);
    if (!ok) tf_note("rejected: %s", err.message);

    if (!valid) {
        if (ok) mqc_uri_cleanup(&u);
        ASSERT_MSG(!ok, "accepted an invalid connection string");
        return;
    }
    if (!ok) {
        ASSERT_MSG(warning, "rejected a valid connection string: %s", err.message);
        return; /* mqc rejects what the spec only warns about */
    }
    if (warning && warnings == 0) {
        mqc_uri_cleanup(&u);
        FAIL("expected a warning, none was emitted");
    }
    if (!warning && warnings > 0) {
        mqc_uri_cleanup(&u);
        FAIL("unexpected warning (%d)", warnings);
    }
    bool good = check_hosts(c, &u) && check_auth(c, &u) && check_options(c, &u);
    mqc_uri_cleanup(&u);
    if (!good) FAIL("%s", g_why);
}

TF_SUITE_INIT(uri_spec_init)
{
    const char *root = spec_root();
    if (!root) return;
    spec_register_folder(root, "connection-string/tests", "connection-string", "tests", run_uri_case);
    spec_register_folder(root, "uri-options/tests", "uri-options", "tests", run_uri_case);
    spec_register_folder(root, "auth/tests/legacy", "auth", "tests", run_uri_case);
}
