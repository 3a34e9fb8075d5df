/* SDAM logic beyond the spec files: the change lists the client acts on, error handling phases
 * the files do not cover, RTT averaging, address normalisation, initial topology rules. */
#include "common.h"
#include "sdam.h"
#include "tf.h"

static bson_t *J(const char *json)
{
    bson_error_t err;
    bson_t *b = bson_new_from_json((const uint8_t *) json, -1, &err);
    if (!b) FAIL("bad JSON in test: %s", err.message);
    return b;
}

/* Applies a hello reply (JSON) from address with an RTT sample. */
static bool hello(mqc_sdam_desc_t *td, const char *address, const char *json, double rtt,
                  mqc_sdam_changes_t *ch)
{
    bson_t *b = J(json);
    mqc_sd_t sd;
    mqc_sd_init_from_hello(&sd, address, b, rtt, 1000);
    bool applied = mqc_sdam_apply_sd(td, &sd, ch);
    mqc_sd_cleanup(&sd);
    bson_destroy(b);
    return applied;
}

#define PRIMARY_A                                                                                  \
    "{\"ok\": 1, \"isWritablePrimary\": true, \"setName\": \"rs\", \"hosts\": [\"a:27017\", "     \
    "\"b:27017\"], \"maxWireVersion\": 21, \"logicalSessionTimeoutMinutes\": 30}"
#define SECONDARY_B                                                                                \
    "{\"ok\": 1, \"isWritablePrimary\": false, \"secondary\": true, \"setName\": \"rs\", \"hosts\": " \
    "[\"a:27017\", \"b:27017\"], \"maxWireVersion\": 21, \"logicalSessionTimeoutMinutes\": 20}"

static void rs_init(mqc_sdam_desc_t *td, mqc_sdam_changes_t *ch)
{
    const char *seeds[] = {"A"};
    mqc_error_t err;
    ASSERT(mqc_sdam_desc_init(td, MQC_TOPOLOGY_RS_NO_PRIMARY, "rs", seeds, 1, ch, &err));
}

TEST("/sdam/address/normalize", sdam_address_normalize)
{
    char out[MQC_SDAM_ADDR_MAX];
    ASSERT(mqc_sdam_normalize_address("Host.Example", out, sizeof out));
    ASSERT_STR_EQ(out, "host.example:27017");
    ASSERT(mqc_sdam_normalize_address("A:1234", out, sizeof out));
    ASSERT_STR_EQ(out, "a:1234");
    ASSERT(mqc_sdam_normalize_address("[::1]", out, sizeof out));
    ASSERT_STR_EQ(out, "[::1]:27017");
    ASSERT(mqc_sdam_normalize_address("[::1]:27018", out, sizeof out));
    ASSERT_STR_EQ(out, "[::1]:27018");
    ASSERT(!mqc_sdam_normalize_address("", out, sizeof out));
    ASSERT(!mqc_sdam_normalize_address("abcdef", out, 8));
}

TEST("/sdam/initial_type", sdam_initial_type)
{
    mqc_sdam_topo_type_t t;
    mqc_error_t err;
    ASSERT(mqc_sdam_initial_type(1, false, false, false, false, &t, &err));
    ASSERT_EQ(t, MQC_TOPOLOGY_UNKNOWN);
    ASSERT(mqc_sdam_initial_type(1, true, true, true, false, &t, &err));
    ASSERT_EQ(t, MQC_TOPOLOGY_SINGLE);
    ASSERT(mqc_sdam_initial_type(3, true, false, true, false, &t, &err));
    ASSERT_EQ(t, MQC_TOPOLOGY_RS_NO_PRIMARY);
    ASSERT(mqc_sdam_initial_type(1, false, false, false, true, &t, &err));
    ASSERT_EQ(t, MQC_TOPOLOGY_LOAD_BALANCED);
    ASSERT(!mqc_sdam_initial_type(2, true, true, false, false, &t, &err));
    ASSERT_STR_CONTAINS(err.message, "several hosts");
    ASSERT(!mqc_sdam_initial_type(1, false, false, true, true, &t, &err));
    ASSERT_STR_CONTAINS(err.message, "replicaSet");
}

TEST("/sdam/hello/parse", sdam_hello_parse)
{
    bson_t *b = J("{\"ok\": 1.0, \"ismaster\": false, \"secondary\": true, \"hidden\": true, \"setName\": \"rs\","
                  " \"me\": \"B:27017\", \"hosts\": [\"C:1\", \"a:27017\", \"a:27017\"], \"tags\": {\"dc\": \"ny\"},"
                  " \"lastWrite\": {\"lastWriteDate\": {\"$date\": 5000}}, \"maxBsonObjectSize\": 1000,"
                  " \"maxMessageSizeBytes\": 2000, \"maxWriteBatchSize\": 10, \"minWireVersion\": 6,"
                  " \"maxWireVersion\": 21}");
    mqc_sd_t sd;
    mqc_sd_init_from_hello(&sd, "B", b, 3.5, 77);
    /* hidden wins over secondary: a hidden member is not usable for reads */
    ASSERT_EQ(sd.type, MQC_SERVER_RS_OTHER);
    ASSERT_STR_EQ(sd.address, "b:27017");
    ASSERT_STR_EQ(sd.me, "b:27017");
    ASSERT_EQ(sd.hosts.n, 2);
    ASSERT_STR_EQ(sd.hosts.v[0], "a:27017");
    ASSERT_STR_EQ(sd.hosts.v[1], "c:1");
    ASSERT(sd.has_last_write);
    ASSERT_EQ(sd.last_write_date_ms, 5000);
    ASSERT_EQ(sd.last_update_ms, 77);
    ASSERT_EQ(sd.max_bson_object_size, 1000);
    ASSERT_EQ(sd.max_message_size_bytes, 2000);
    ASSERT_EQ(sd.max_write_batch_size, 10);
    ASSERT_DBL_NEAR(sd.rtt_ms, 3.5, 1e-9);
    ASSERT_EQ(bson_count_keys(&sd.tags), 1);
    /* equality ignores list order and is by value */
    bson_t *b2 = J("{\"ok\": 1, \"secondary\": true, \"hidden\": true, \"setName\": \"rs\", \"me\": \"b:27017\","
                   " \"hosts\": [\"a:27017\", \"c:1\"], \"tags\": {\"dc\": \"ny\"}, \"minWireVersion\": 6,"
                   " \"maxWireVersion\": 21}");
    mqc_sd_t sd2;
    mqc_sd_init_from_hello(&sd2, "b:27017", b2, -1, 0);
    ASSERT(mqc_sd_equal(&sd, &sd2));
    mqc_sd_cleanup(&sd2);
    bson_destroy(b2);
    mqc_sd_cleanup(&sd);
    bson_destroy(b);

    b = J("{\"ok\": 0, \"errmsg\": \"auth required\"}");
    mqc_sd_init_from_hello(&sd, "b", b, 1, 0);
    ASSERT_EQ(sd.type, MQC_SERVER_UNKNOWN);
    ASSERT_STR_EQ(sd.error, "auth required");
    ASSERT(!sd.has_rtt);
    mqc_sd_cleanup(&sd);
    bson_destroy(b);
}

TEST("/sdam/changes/discovery", sdam_changes_discovery)
{
    mqc_sdam_desc_t td;
    mqc_sdam_changes_t ch;
    mqc_sdam_changes_init(&ch);
    rs_init(&td, &ch);
    ASSERT_EQ(ch.n, 1);
    ASSERT_EQ(ch.ev[0].kind, MQC_SDAM_SERVER_ADDED);
    ASSERT_STR_EQ(ch.ev[0].address, "a:27017");
    mqc_sdam_find(&td, "a:27017")->ud = &td;

    ASSERT(hello(&td, "a:27017", PRIMARY_A, 10, &ch));
    const mqc_sdam_event_t *e = mqc_sdam_changes_find(&ch, MQC_SDAM_SERVER_CHANGED, "a:27017");
    ASSERT_NOT_NULL(e);
    ASSERT_EQ(e->old_type, MQC_SERVER_UNKNOWN);
    ASSERT_EQ(e->new_type, MQC_SERVER_RS_PRIMARY);
    ASSERT_NOT_NULL(mqc_sdam_changes_find(&ch, MQC_SDAM_SERVER_ADDED, "b:27017"));
    ASSERT_NOT_NULL(mqc_sdam_changes_find(&ch, MQC_SDAM_POOL_READY, "a:27017"));
    e = mqc_sdam_changes_find(&ch, MQC_SDAM_TOPOLOGY_CHANGED, NULL);
    ASSERT_NOT_NULL(e);
    ASSERT_EQ(e->old_topology, MQC_TOPOLOGY_RS_NO_PRIMARY);
    ASSERT_EQ(e->new_topology, MQC_TOPOLOGY_RS_WITH_PRIMARY);
    e = mqc_sdam_changes_find(&ch, MQC_SDAM_PRIMARY_CHANGED, NULL);
    ASSERT_NOT_NULL(e);
    ASSERT_STR_EQ(e->address, "a:27017");
    ASSERT_STR_EQ(e->previous, "");
    ASSERT_EQ(td.session_timeout_minutes, 30);

    /* The same reply again: no change reported, the RTT averaged (alpha 0.2). */
    ASSERT(hello(&td, "a:27017", PRIMARY_A, 20, &ch));
    ASSERT_NULL(mqc_sdam_changes_find(&ch, MQC_SDAM_SERVER_CHANGED, NULL));
    ASSERT_NULL(mqc_sdam_changes_find(&ch, MQC_SDAM_TOPOLOGY_CHANGED, NULL));
    ASSERT_DBL_NEAR(mqc_sdam_find(&td, "a")->sd.rtt_ms, 12.0, 1e-9);

    ASSERT(hello(&td, "b:27017", SECONDARY_B, 5, &ch));
    ASSERT_EQ(td.session_timeout_minutes, 20);

    /* The primary drops b from its config: b is removed, its ud comes back. */
    mqc_sdam_find(&td, "b")->ud = &ch;
    ASSERT(hello(&td, "a:27017",
                 "{\"ok\": 1, \"isWritablePrimary\": true, \"setName\": \"rs\", \"hosts\": [\"a:27017\"],"
                 " \"maxWireVersion\": 21, \"logicalSessionTimeoutMinutes\": 30}",
                 10, &ch));
    e = mqc_sdam_changes_find(&ch, MQC_SDAM_SERVER_REMOVED, "b:27017");
    ASSERT_NOT_NULL(e);
    ASSERT(e->ud == &ch);
    ASSERT_EQ(td.n_servers, 1);
    /* A late reply from the removed server is ignored. */
    ASSERT(!hello(&td, "b:27017", SECONDARY_B, 5, &ch));
    ASSERT_EQ(ch.n, 0);

    /* Failed check: Unknown, RTT dropped, no primary. */
    mqc_sd_t u;
    mqc_sd_init_unknown(&u, "a:27017", "connection refused");
    ASSERT(mqc_sdam_apply_sd(&td, &u, &ch));
    mqc_sd_cleanup(&u);
    ASSERT(!mqc_sdam_find(&td, "a")->sd.has_rtt);
    e = mqc_sdam_changes_find(&ch, MQC_SDAM_PRIMARY_CHANGED, NULL);
    ASSERT_NOT_NULL(e);
    ASSERT_STR_EQ(e->address, "");
    ASSERT_STR_EQ(e->previous, "a:27017");
    ASSERT_EQ(td.type, MQC_TOPOLOGY_RS_NO_PRIMARY);

    mqc_sdam_close(&td, &ch);
    ASSERT_NOT_NULL(mqc_sdam_changes_find(&ch, MQC_SDAM_SERVER_REMOVED, "a:27017"));
    ASSERT_EQ(td.type, MQC_TOPOLOGY_UNKNOWN);
    mqc_sdam_desc_cleanup(&td);
    mqc_sdam_changes_cleanup(&ch);
}

TEST("/sdam/changes/old_primary_pre42", sdam_old_primary_pre42)
{
    /* A new primary replaces one running MongoDB 4.0 (wire 7): the old one is checked at once
     * and its pool cleared, since a 4.0 primary closes its connections on stepdown. */
    mqc_sdam_desc_t td;
    mqc_sdam_changes_t ch;
    mqc_sdam_changes_init(&ch);
    rs_init(&td, &ch);
    ASSERT(hello(&td, "a", "{\"ok\": 1, \"ismaster\": true, \"setName\": \"rs\", \"hosts\": [\"a:27017\", \"b:27017\"],"
                          " \"maxWireVersion\": 7, \"setVersion\": 1, \"electionId\": {\"$oid\": \"000000000000000000000001\"}}",
                 1, &ch));
    ASSERT(hello(&td, "b", "{\"ok\": 1, \"ismaster\": true, \"setName\": \"rs\", \"hosts\": [\"a:27017\", \"b:27017\"],"
                          " \"maxWireVersion\": 7, \"setVersion\": 1, \"electionId\": {\"$oid\": \"000000000000000000000002\"}}",
                 1, &ch));
    ASSERT_NOT_NULL(mqc_sdam_changes_find(&ch, MQC_SDAM_REQUEST_CHECK, "a:27017"));
    const mqc_sdam_event_t *e = mqc_sdam_changes_find(&ch, MQC_SDAM_CLEAR_POOL, "a:27017");
    ASSERT_NOT_NULL(e);
    ASSERT_EQ(e->generation, 1);
    ASSERT_STR_CONTAINS(mqc_sdam_find(&td, "a")->sd.error, "newer primary");
    e = mqc_sdam_changes_find(&ch, MQC_SDAM_PRIMARY_CHANGED, NULL);
    ASSERT_NOT_NULL(e);
    ASSERT_STR_EQ(e->previous, "a:27017");
    ASSERT_STR_EQ(e->address, "b:27017");
    mqc_sdam_desc_cleanup(&td);
    mqc_sdam_changes_cleanup(&ch);
}

TEST("/sdam/hello/stale_topology_version", sdam_stale_topology_version)
{
    mqc_sdam_desc_t td;
    rs_init(&td, NULL);
    ASSERT(hello(&td, "a", "{\"ok\": 1, \"isWritablePrimary\": true, \"setName\": \"rs\", \"hosts\": [\"a:27017\"],"
                          " \"maxWireVersion\": 21, \"topologyVersion\": {\"processId\": {\"$oid\": \"000000000000000000000001\"},"
                          " \"counter\": 5}}",
                 1, NULL));
    /* an older counter of the same process: ignored */
    ASSERT(!hello(&td, "a", "{\"ok\": 1, \"secondary\": true, \"setName\": \"rs\", \"hosts\": [\"a:27017\"],"
                           " \"maxWireVersion\": 21, \"topologyVersion\": {\"processId\": {\"$oid\": \"000000000000000000000001\"},"
                           " \"counter\": 4}}",
                  1, NULL));
    ASSERT_EQ(mqc_sdam_find(&td, "a")->sd.type, MQC_SERVER_RS_PRIMARY);
    /* a restarted process (other processId): taken */
    ASSERT(hello(&td, "a", "{\"ok\": 1, \"secondary\": true, \"setName\": \"rs\", \"hosts\": [\"a:27017\"],"
                          " \"maxWireVersion\": 21, \"topologyVersion\": {\"processId\": {\"$oid\": \"000000000000000000000002\"},"
                          " \"counter\": 0}}",
                 1, NULL));
    ASSERT_EQ(mqc_sdam_find(&td, "a")->sd.type, MQC_SERVER_RS_SECONDARY);
    mqc_sdam_desc_cleanup(&td);
}

static void app_error(mqc_sdam_desc_t *td, mqc_sdam_when_t when, mqc_sdam_err_kind_t kind, const char *reply_json,
                      bool overloaded, mqc_sdam_error_result_t *r, mqc_sdam_changes_t *ch)
{
    bson_t *reply = reply_json ? J(reply_json) : NULL;
    mqc_sdam_app_error_t e = {.address = "a:27017", .when = when, .kind = kind, .reply = reply,
                              .overloaded = overloaded, .max_wire_version = 21};
    e.generation = mqc_sdam_find(td, "a")->generation;
    mqc_sdam_handle_error(td, &e, r, ch);
    if (reply) bson_destroy(reply);
}

TEST("/sdam/errors/phases", sdam_errors_phases)
{
    mqc_sdam_desc_t td;
    mqc_sdam_changes_t ch;
    mqc_sdam_error_result_t r;
    mqc_sdam_changes_init(&ch);
    rs_init(&td, NULL);
    ASSERT(hello(&td, "a", PRIMARY_A, 1, NULL));

    /* connect/hello failures leave the description to the monitor */
    app_error(&td, MQC_SDAM_WHEN_HANDSHAKE, MQC_SDAM_ERR_NETWORK, NULL, false, &r, &ch);
    ASSERT(!r.marked_unknown && !r.clear_pool && !r.stale);
    ASSERT_EQ(td.type, MQC_TOPOLOGY_RS_WITH_PRIMARY);
    /* backpressure: never counts */
    app_error(&td, MQC_SDAM_WHEN_AUTH, MQC_SDAM_ERR_NETWORK, NULL, true, &r, &ch);
    ASSERT(!r.marked_unknown && !r.clear_pool);
    /* a timeout on a ready connection may be a slow query */
    app_error(&td, MQC_SDAM_WHEN_ESTABLISHED, MQC_SDAM_ERR_TIMEOUT, NULL, false, &r, &ch);
    ASSERT(!r.marked_unknown && !r.clear_pool);
    /* an ordinary command error on a ready connection: nothing */
    app_error(&td, MQC_SDAM_WHEN_ESTABLISHED, MQC_SDAM_ERR_COMMAND, "{\"ok\": 0, \"code\": 2, \"errmsg\": \"bad\"}",
              false, &r, &ch);
    ASSERT(!r.marked_unknown && !r.clear_pool);
    /* a timeout while authenticating: Unknown, pool cleared, check cancelled, no immediate check */
    app_error(&td, MQC_SDAM_WHEN_AUTH, MQC_SDAM_ERR_TIMEOUT, NULL, false, &r, &ch);
    ASSERT(r.marked_unknown && r.clear_pool && r.cancel_check && !r.request_check);
    ASSERT_EQ(td.type, MQC_TOPOLOGY_RS_NO_PRIMARY);
    ASSERT_EQ(mqc_sdam_find(&td, "a")->generation, 1);
    ASSERT_NOT_NULL(mqc_sdam_changes_find(&ch, MQC_SDAM_CLEAR_POOL, "a:27017"));
    ASSERT_NOT_NULL(mqc_sdam_changes_find(&ch, MQC_SDAM_PRIMARY_CHANGED, NULL));
    ASSERT_STR_CONTAINS(mqc_sdam_find(&td, "a")->sd.error, "timeout");

    /* an error from a connection of the previous generation is stale */
    ASSERT(hello(&td, "a", PRIMARY_A, 1, NULL));
    bson_t *reply = J("{\"ok\": 0, \"code\": 10107, \"errmsg\": \"not primary\"}");
    mqc_sdam_app_error_t e = {.address = "a:27017", .when = MQC_SDAM_WHEN_ESTABLISHED, .kind = MQC_SDAM_ERR_COMMAND,
                              .reply = reply, .generation = 0, .max_wire_version = 21};
    mqc_sdam_handle_error(&td, &e, &r, &ch);
    bson_destroy(reply);
    ASSERT(r.stale);
    ASSERT_EQ(ch.n, 0);
    mqc_sdam_desc_cleanup(&td);
    mqc_sdam_changes_cleanup(&ch);
}

TEST("/sdam/errors/state_change", sdam_errors_state_change)
{
    mqc_sdam_desc_t td;
    mqc_sdam_changes_t ch;
    mqc_sdam_error_result_t r;
    mqc_sdam_changes_init(&ch);
    rs_init(&td, NULL);
    ASSERT(hello(&td, "a", PRIMARY_A, 1, NULL));
    /* a writeConcernError is read like the reply; 4.2+: no pool clear, but an immediate check */
    app_error(&td, MQC_SDAM_WHEN_ESTABLISHED, MQC_SDAM_ERR_COMMAND,
              "{\"ok\": 1, \"n\": 1, \"writeConcernError\": {\"code\": 189, \"errmsg\": \"stepped down\"}}", false,
              &r, &ch);
    ASSERT(r.marked_unknown && r.request_check && !r.clear_pool);
    ASSERT_NOT_NULL(mqc_sdam_changes_find(&ch, MQC_SDAM_REQUEST_CHECK, "a:27017"));
    ASSERT_STR_EQ(mqc_sdam_find(&td, "a")->sd.error, "stepped down");
    /* a shutdown clears the pool even from 4.2 on */
    ASSERT(hello(&td, "a", PRIMARY_A, 1, NULL));
    app_error(&td, MQC_SDAM_WHEN_ESTABLISHED, MQC_SDAM_ERR_COMMAND, "{\"ok\": 0, \"code\": 91}", false, &r, &ch);
    ASSERT(r.marked_unknown && r.request_check && r.clear_pool);
    mqc_sdam_desc_cleanup(&td);
    mqc_sdam_changes_cleanup(&ch);
}

static int classify_json(const char *json)
{
    bson_t *b = J(json);
    int st = (int) mqc_sdam_classify_reply(b, NULL);
    bson_destroy(b);
    return st;
}

TEST("/sdam/errors/classify", sdam_errors_classify)
{
    /* without a code, the legacy messages decide; with one, only the code */
    ASSERT_EQ(classify_json("{\"ok\": 0, \"errmsg\": \"not master\"}"), MQC_SDAM_STATE_NOT_PRIMARY);
    ASSERT_EQ(classify_json("{\"ok\": 0, \"errmsg\": \"not master or secondary\"}"), MQC_SDAM_STATE_RECOVERING);
    ASSERT_EQ(classify_json("{\"ok\": 0, \"errmsg\": \"node is recovering\"}"), MQC_SDAM_STATE_RECOVERING);
    ASSERT_EQ(classify_json("{\"ok\": 0, \"code\": 1, \"errmsg\": \"not master\"}"), MQC_SDAM_STATE_NONE);
    ASSERT_EQ(classify_json("{\"ok\": 0, \"code\": 13435}"), MQC_SDAM_STATE_NOT_PRIMARY);
    ASSERT_EQ(classify_json("{\"ok\": 0, \"code\": 11602}"), MQC_SDAM_STATE_RECOVERING);
    ASSERT_EQ(classify_json("{\"ok\": 0, \"code\": 11600}"), MQC_SDAM_STATE_SHUTDOWN);
    /* writeErrors are never looked at */
    ASSERT_EQ(classify_json("{\"ok\": 1, \"writeErrors\": [{\"code\": 10107}]}"), MQC_SDAM_STATE_NONE);
}

TEST("/sdam/errors/load_balanced", sdam_errors_load_balanced)
{
    /* Behind a load balancer the server stays LoadBalancer; a network error clears the pool. */
    mqc_sdam_desc_t td;
    mqc_error_t err;
    mqc_sdam_error_result_t r;
    const char *seeds[] = {"lb:27017"};
    ASSERT(mqc_sdam_desc_init(&td, MQC_TOPOLOGY_LOAD_BALANCED, NULL, seeds, 1, NULL, &err));
    mqc_sdam_app_error_t e = {.address = "lb:27017", .when = MQC_SDAM_WHEN_ESTABLISHED, .kind = MQC_SDAM_ERR_NETWORK};
    mqc_sdam_handle_error(&td, &e, &r, NULL);
    ASSERT(!r.marked_unknown && r.clear_pool);
    ASSERT_EQ(mqc_sdam_find(&td, "lb")->sd.type, MQC_SERVER_LOAD_BALANCER);
    ASSERT_EQ(mqc_sdam_find(&td, "lb")->generation, 1);
    mqc_sdam_desc_cleanup(&td);
}

TEST("/sdam/single/set_name_mismatch", sdam_single_set_name_mismatch)
{
    /* directConnection with replicaSet: a member of another set stays Unknown. */
    mqc_sdam_desc_t td;
    mqc_error_t err;
    const char *seeds[] = {"a"};
    ASSERT(mqc_sdam_desc_init(&td, MQC_TOPOLOGY_SINGLE, "rs", seeds, 1, NULL, &err));
    ASSERT(hello(&td, "a", "{\"ok\": 1, \"secondary\": true, \"setName\": \"other\", \"hosts\": [\"a:27017\"],"
                          " \"maxWireVersion\": 21}", 1, NULL));
    ASSERT_EQ(mqc_sdam_find(&td, "a")->sd.type, MQC_SERVER_UNKNOWN);
    ASSERT_STR_CONTAINS(mqc_sdam_find(&td, "a")->sd.error, "does not match");
    ASSERT(hello(&td, "a", "{\"ok\": 1, \"secondary\": true, \"setName\": \"rs\", \"hosts\": [\"a:27017\"],"
                          " \"maxWireVersion\": 21}", 1, NULL));
    ASSERT_EQ(mqc_sdam_find(&td, "a")->sd.type, MQC_SERVER_RS_SECONDARY);
    ASSERT_EQ(td.type, MQC_TOPOLOGY_SINGLE);
    mqc_sdam_desc_cleanup(&td);
}

TEST("/sdam/compatibility/message", sdam_compatibility_message)
{
    mqc_sdam_desc_t td;
    mqc_error_t err;
    const char *seeds[] = {"a"};
    ASSERT(mqc_sdam_desc_init(&td, MQC_TOPOLOGY_UNKNOWN, NULL, seeds, 1, NULL, &err));
    /* MongoDB 3.4 (wire 5) is below mqc's floor */
    ASSERT(hello(&td, "a", "{\"ok\": 1, \"isWritablePrimary\": true, \"maxWireVersion\": 5}", 1, NULL));
    ASSERT_EQ(td.type, MQC_TOPOLOGY_SINGLE);
    ASSERT(!td.compatible);
    ASSERT_STR_CONTAINS(td.compatibility_error, "a:27017 reports wire version 5");
    ASSERT(hello(&td, "a", "{\"ok\": 1, \"isWritablePrimary\": true, \"maxWireVersion\": 6}", 1, NULL));
    ASSERT(td.compatible);
    mqc_sdam_desc_cleanup(&td);
}
