/* Unit tests of lib/uri.c and lib/uri_redact.c: redaction, mqc's own options, defaults, and
 * errors that never show the password. */
#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <string.h>

#include "tf.h"
#include "uri.h"
#include "uri_redact.h"

static const char *redact(const char *uri)
{
    static char buf[512];
    return mqc_uri_redact(uri, buf, sizeof buf);
}

TEST("/uri/redact/basic", uri_redact_basic)
{
    ASSERT_STR_EQ(redact("mongodb://alice:secret@h:27017/db?w=1"), "mongodb://alice:***@h:27017/db?w=1");
    ASSERT_STR_EQ(redact("mongodb+srv://alice:secret@cluster.example.com/"), "mongodb+srv://alice:***@cluster.example.com/");
    ASSERT_STR_EQ(redact("mongodb://alice@h/"), "mongodb://alice@h/");
    ASSERT_STR_EQ(redact("mongodb://h:27017/?appname=a@b"), "mongodb://h:27017/?appname=a@b");
    ASSERT_STR_EQ(redact("mongodb://alice:@h"), "mongodb://alice:***@h");
    ASSERT_STR_EQ(redact(""), "");
}

TEST("/uri/redact/special_chars", uri_redact_special_chars)
{
    /* escaped and unescaped specials, including ones that make the URI invalid */
    ASSERT_STR_EQ(redact("mongodb://u:p%40ss%3Aw%2Frd@h/"), "mongodb://u:***@h/");
    ASSERT_STR_EQ(redact("mongodb://u:p@ss@h/db"), "mongodb://u:***@h/db");
    ASSERT_STR_EQ(redact("mongodb://u:pa/ss@h/db"), "mongodb://u:***@h/db");
    ASSERT_STR_EQ(redact("mongodb://u:pa?ss@h/db"), "mongodb://u:***@h/db");
    ASSERT_STR_EQ(redact("mongodb://u:p:a:ss@h1,h2:27018/"), "mongodb://u:***@h1,h2:27018/");
    ASSERT_STR_EQ(redact("mongodb://u:!$&'()*+,;=@127.0.0.1/admin"), "mongodb://u:***@127.0.0.1/admin");
    ASSERT_STR_EQ(redact("mongodb://h/?tls=true&tlsCertificateKeyFilePassword=hunter2&w=1"),
                  "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***&w=1");
}

TEST("/uri/redact/truncation", uri_redact_truncation)
{
    char small[12];
    mqc_uri_redact("mongodb://u:secretpassword@host/", small, sizeof small);
    ASSERT_EQ(strlen(small), sizeof small - 1);
    ASSERT(strstr(small, "secret") == NULL);
    char none[1] = {'x'};
    mqc_uri_redact("mongodb://u:p@h", none, 1);
    ASSERT_EQ(none[0], 0);
}

TEST("/uri/parse/defaults", uri_parse_defaults)
{
    mqc_uri_t u;
    mqc_error_t e;
    ASSERT_MSG(mqc_uri_parse(&u, "mongodb://localhost", &e), "%s", e.message);
    ASSERT_EQ(u.n_hosts, 1);
    ASSERT_STR_EQ(u.hosts[0].host, "localhost");
    ASSERT_EQ(u.hosts[0].port, 27017);
    ASSERT_STR_EQ(u.hosts[0].host_and_port, "localhost:27017");
    ASSERT_EQ(u.max_pool_size, 100);
    ASSERT_EQ(u.min_pool_size, 0);
    ASSERT_EQ(u.max_connecting, 2);
    ASSERT_EQ(u.max_idle_time_ms, 0);
    ASSERT_EQ(u.wait_queue_timeout_ms, 0);
    ASSERT_EQ(u.connect_timeout_ms, 10000);
    ASSERT_EQ(u.socket_timeout_ms, 0);
    ASSERT_EQ(u.server_selection_timeout_ms, 30000);
    ASSERT_EQ(u.heartbeat_frequency_ms, 10000);
    ASSERT_EQ(u.local_threshold_ms, 15);
    ASSERT_EQ(u.timeout_ms, -1);
    ASSERT_EQ(u.max_pending, 0);
    ASSERT(u.retry_reads && u.retry_writes);
    ASSERT(!u.tls && !u.load_balanced && !u.direct_connection_set);
    ASSERT_NULL(u.username);
    ASSERT_NULL(u.replica_set);
    ASSERT_STR_EQ(u.auth_source, "admin");
    ASSERT(bson_empty(&u.write_concern) && bson_empty(&u.read_concern));
    ASSERT_EQ(u.read_mode, MQC_READ_PRIMARY);
    ASSERT_EQ(u.max_staleness_seconds, -1);
    ASSERT_EQ(u.n_warnings, 0);
    mqc_uri_cleanup(&u);
    mqc_uri_cleanup(&u); /* twice: empty is fine */
}

TEST("/uri/parse/extra_options", uri_parse_extra_options)
{
    mqc_uri_t u;
    mqc_error_t e;
    ASSERT_MSG(mqc_uri_parse(&u,
                             "mongodb://u:p%40ss@h1:1234,[::1]:27018/app?minPoolSize=3&MAXCONNECTING=4&maxIdleTimeMS=5"
                             "&waitQueueTimeoutMS=6&timeoutMS=7&maxPendingOperations=8&maxPoolSize=9&w=majority"
                             "&readPreference=secondary&readPreferenceTags=dc:ny&appname=x",
                             &e),
               "%s", e.message);
    ASSERT_EQ(u.min_pool_size, 3);
    ASSERT_EQ(u.max_connecting, 4);
    ASSERT_EQ(u.max_idle_time_ms, 5);
    ASSERT_EQ(u.wait_queue_timeout_ms, 6);
    ASSERT_EQ(u.timeout_ms, 7);
    ASSERT_EQ(u.max_pending, 8);
    ASSERT_EQ(u.max_pool_size, 9);
    ASSERT_EQ(u.n_hosts, 2);
    ASSERT_STR_EQ(u.hosts[1].host, "::1");
    ASSERT_STR_EQ(u.hosts[1].host_and_port, "[::1]:27018");
    ASSERT_STR_EQ(u.username, "u");
    ASSERT_STR_EQ(u.password, "p@ss");
    ASSERT_STR_EQ(u.database, "app");
    ASSERT_STR_EQ(u.auth_source, "app");
    ASSERT_STR_EQ(u.appname, "x");
    ASSERT_EQ(u.read_mode, MQC_READ_SECONDARY);
    ASSERT(!bson_empty(&u.read_tags));
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, &u.write_concern, "w") && BSON_ITER_HOLDS_UTF8(&it));
    ASSERT_STR_EQ(bson_iter_utf8(&it, NULL), "majority");
    ASSERT(strstr(u.redacted, "p%40ss") == NULL);
    ASSERT_STR_CONTAINS(u.redacted, "u:***@h1:1234");
    mqc_uri_cleanup(&u);

    ASSERT_MSG(mqc_uri_parse(&u, "mongodb://h/?timeoutMS=0&timeoutMS=5&w=0", &e), "%s", e.message);
    ASSERT_EQ(u.timeout_ms, 5);
    ASSERT_EQ(u.n_warnings, 1);
    ASSERT_STR_CONTAINS(u.warning, "timeoutMS");
    ASSERT(u.write_concern_unacknowledged);
    mqc_uri_cleanup(&u);

    ASSERT_MSG(mqc_uri_parse(&u, "mongodb://%2Ftmp%2Fm.sock/?maxPoolSize=0", &e), "%s", e.message);
    ASSERT(u.hosts[0].is_unix);
    ASSERT_STR_EQ(u.hosts[0].host, "/tmp/m.sock");
    ASSERT_EQ(u.max_pool_size, 0);
    mqc_uri_cleanup(&u);
}

static void expect_error(const char *uri, const char *needle, const char *secret)
{
    mqc_uri_t u;
    mqc_error_t e;
    memset(&e, 0, sizeof e);
    ASSERT_MSG(!mqc_uri_parse(&u, uri, &e), "accepted: %s", uri);
    ASSERT_EQ(e.domain, MQC_ERROR_URI);
    tf_note("%s -> %s", redact(uri), e.message);
    if (needle) ASSERT_STR_CONTAINS(e.message, needle);
    if (secret) ASSERT_MSG(strstr(e.message, secret) == NULL, "password in \"%s\"", e.message);
    ASSERT_EQ(u.n_hosts, 0);
    ASSERT_NULL(u.password);
    mqc_uri_cleanup(&u);
}

TEST("/uri/parse/errors", uri_parse_errors)
{
    expect_error("mongodb://u:Sekr3tPw@h/?maxPoolSize=-1", "maxPoolSize", "Sekr3tPw");
    expect_error("mongodb://u:Sekr3tPw@h/?minPoolSize=5&maxPoolSize=2", "minPoolSize", "Sekr3tPw");
    expect_error("mongodb://u:Sekr3tPw@h/?maxConnecting=0", "maxConnecting", "Sekr3tPw");
    expect_error("mongodb://u:Sekr3tPw@h/?maxConnecting=abc", "maxConnecting", "Sekr3tPw");
    expect_error("mongodb://u:Sekr3tPw@h/?timeoutMS=-2", "timeoutMS", "Sekr3tPw");
    expect_error("mongodb://u:Sekr3tPw@h/?maxPendingOperations=1x", "maxPendingOperations", "Sekr3tPw");
    expect_error("mongodb://u:Sekr3tPw@h/?connectTimeoutMS=-5", "connectTimeoutMS", "Sekr3tPw");
    expect_error("mongodb://u:Sekr3tPw@h:99999/", NULL, "Sekr3tPw");
    expect_error("mongodb://u:Sekr3t:Pw@h/", NULL, "Sekr3t");
    expect_error("mongodb://u:Sekr3tPw@/", NULL, "Sekr3tPw");
    expect_error("mongodb+srv://u:Sekr3tPw@cluster.example.com:27017/", "SRV", "Sekr3tPw");
    expect_error("mongo://u:Sekr3tPw@h/", NULL, "Sekr3tPw");
    expect_error("", NULL, NULL);
    expect_error(NULL, NULL, NULL);
}

/* Secrets are decoded by mqc and reach libmongoc only as 'x's (lib/uri.c take_secrets). */
TEST("/uri/parse/secrets_kept_from_libmongoc", uri_parse_secrets_kept)
{
    mqc_uri_t u;
    mqc_error_t e;
    ASSERT_MSG(mqc_uri_parse(&u, "mongodb://u:p%40s%3As%C3%A9@h/?tlsCertificateKeyFilePassword=k%26y&tls=true", &e),
               "%s", e.message);
    ASSERT_STR_EQ(u.password, "p@s:s\xc3\xa9");
    ASSERT(u.password_taken);
    ASSERT_STR_EQ(u.tls_certificate_key_file_password, "k&y");
    const mongoc_uri_t *mu = u.mongoc_uri;
    ASSERT_STR_EQ(mongoc_uri_get_password(mu), "xxxxxxxxxxxxxxx");
    ASSERT_STR_EQ(mongoc_uri_get_option_as_utf8(mu, MONGOC_URI_TLSCERTIFICATEKEYFILEPASSWORD, ""), "xxxxx");
    ASSERT(strstr(mongoc_uri_get_string(mu), "p%40") == NULL);
    mqc_uri_cleanup(&u);

    /* An empty password stays one; the ssl alias is taken too. */
    ASSERT_MSG(mqc_uri_parse(&u, "mongodb://u:@h/?sslClientCertificateKeyPassword=abc&tls=true", &e), "%s", e.message);
    ASSERT_STR_EQ(u.password, "");
    ASSERT_STR_EQ(u.tls_certificate_key_file_password, "abc");
    mqc_uri_cleanup(&u);

    /* What libmongoc would reject is left for it to reject, with the secret scrubbed. */
    expect_error("mongodb://u:Sekr%zz3t@h/", NULL, "Sekr");
    expect_error("mongodb://u:Sekr3t%00@h/", NULL, "Sekr3t");
    expect_error("mongodb://u:Sek/r3t@h/", NULL, "r3t@");
}

TEST("/uri/scrub", uri_scrub)
{
    char msg[128];
    strcpy(msg, "bad value hunter2 for hunter2x");
    mqc_uri_scrub_secret(msg, "hunter2");
    ASSERT_STR_EQ(msg, "bad value *** for ***x");
    strcpy(msg, "an ab in cab");
    mqc_uri_scrub_secret(msg, "ab"); /* short: whole words only */
    ASSERT_STR_EQ(msg, "an ** in cab");
}
