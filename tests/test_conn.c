/* Unit tests of a connection's life (lib/conn.c) through the public API, against the scripted
 * server (tests/fakesrv): the handshake it sends, a handshake the server hangs up on, and one
 * connection reused by operations that follow each other. */
#include <ev.h>

#include "server/fakesrv.h"
#include "mqc.h"
#include "support/result.h"
#include "tf.h"

static const char *str_at(const bson_t *doc, const char *dotted, char *buf, size_t size)
{
    bson_iter_t it, sub;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, dotted, &sub) || !BSON_ITER_HOLDS_UTF8(&sub))
        return NULL;
    snprintf(buf, size, "%s", bson_iter_utf8(&sub, NULL));
    return buf;
}

TEST("/conn/handshake/metadata_names_driver_version_and_app", conn_handshake_metadata)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "appname=conn-test"));
    tf_res_t r = tf_ping(c, NULL, 10);
    ASSERT_MSG(!r.failed, "%s", r.error.message);
    bson_t hello;
    ASSERT(fakesrv_last_command(s, true, &hello));
    char buf[256];
    ASSERT_STR_EQ(str_at(&hello, "client.driver.name", buf, sizeof buf), "mqc");
    /* The version the handshake names is the one the header defines, which the library reports. */
    ASSERT_STR_EQ(str_at(&hello, "client.driver.version", buf, sizeof buf), MQC_VERSION);
    ASSERT_STR_EQ(mqc_version(), MQC_VERSION);
    ASSERT_STR_EQ(str_at(&hello, "client.application.name", buf, sizeof buf), "conn-test");
    ASSERT_NOT_NULL(str_at(&hello, "client.os.type", buf, sizeof buf));
    bson_destroy(&hello);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/conn/handshake/hangup_fails_once_then_recovers", conn_handshake_hangup)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    fakesrv_hangup_hellos(s, 1);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, "connectTimeoutMS=2000&serverSelectionTimeoutMS=2000"));
    tf_res_t r = tf_ping(c, NULL, 10);          /* exactly one callback, whatever it says */
    tf_note("after a hang-up in the handshake: %s", r.failed ? r.error.message : "ok (retried)");
    if (r.failed) ASSERT_EQ(r.error.domain, MQC_ERROR_NETWORK);
    ASSERT_GE(mqc_client_stat(c, MQC_STAT_CONNS_FAILED), 1);
    r = tf_ping(c, NULL, 10);
    ASSERT_MSG(!r.failed, "the next connection should work: %s", r.error.message);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}

TEST("/conn/reuse/sequential_ops_share_one_connection", conn_reuse)
{
    fakesrv_t *s = fakesrv_start(FAKE_OK, 0);
    mqc_client_t *c = tf_client_new(fakesrv_uri(s, NULL));
    for (int i = 0; i < 50; i++) {
        tf_res_t r = i % 2 ? tf_ping(c, NULL, 10) : tf_find_one(c, NULL, 10);
        ASSERT_MSG(!r.failed, "op %d: %s", i, r.error.message);
    }
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_CONNS_OPENED), 1);
    ASSERT_EQ(mqc_client_stat(c, MQC_STAT_CONNS_OPEN), 1);
    ASSERT_EQ(fakesrv_connections(s), 1);
    ASSERT_EQ(fakesrv_commands(s), 50);
    mqc_client_destroy(c);
    fakesrv_stop(s);
}
