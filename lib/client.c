/* client: the client's own life. Creation from a URI (filling each floor's per-client state:
 * connections, servers, operations), the mongodb+srv seed list, destroy (with endSessions),
 * the loop helpers and monitoring. Selection is op's, through the topology. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "client.h"
#include "cmd.h"
#include "cmd_event.h"
#include "conn_secure.h"
#include "cursor.h"
#include "handles.h"
#include "op.h"
#include "scram.h"
#include "seedlist.h"
#include "tls.h"
#include "topology.h"

static void build_metadata(mqc_client_t *client)
{
    struct utsname u;
    bson_t drv, os, app;
    bson_init(&client->metadata);
    if (client->uri.appname) {
        BSON_APPEND_DOCUMENT_BEGIN(&client->metadata, "application", &app);
        BSON_APPEND_UTF8(&app, "name", client->uri.appname);
        bson_append_document_end(&client->metadata, &app);
    }
    BSON_APPEND_DOCUMENT_BEGIN(&client->metadata, "driver", &drv);
    BSON_APPEND_UTF8(&drv, "name", "mqc");
    BSON_APPEND_UTF8(&drv, "version", MQC_VERSION);
    bson_append_document_end(&client->metadata, &drv);
    BSON_APPEND_DOCUMENT_BEGIN(&client->metadata, "os", &os);
    BSON_APPEND_UTF8(&os, "type", "Linux");
    if (uname(&u) == 0) {
        BSON_APPEND_UTF8(&os, "name", u.sysname);
        BSON_APPEND_UTF8(&os, "architecture", u.machine);
        BSON_APPEND_UTF8(&os, "version", u.release);
    }
    bson_append_document_end(&client->metadata, &os);
    char platform[96];
    snprintf(platform, sizeof platform, "libev %d.%d, libbson %s", ev_version_major(), ev_version_minor(),
             bson_get_version());
    BSON_APPEND_UTF8(&client->metadata, "platform", platform);
}

/* The topology of client->uri (its hosts, for a seed list, once they are known). */
static bool start_topology(mqc_client_t *client, mqc_error_t *error)
{
    mqc_topology_env_t env = {.uri = &client->uri, .server_env = &client->server_env, .servers = &client->servers,
                              .n_servers = &client->n_servers, .monitor = &client->monitor,
                              .monitor_ud = &client->monitor_ud, .guard = &client->guard,
                              .seed = (uint64_t) mqc_now_us() ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) client};
    client->topo = mqc_topology_new(&env, error);
    return client->topo != NULL;
}

/* ---- the seed list of a mongodb+srv URI ---------------------------------------------------- */

/* The lookup runs on a worker of its own; until it ends, operations wait in selection. */
struct mqc_seedlist_state {
    mqc_worker_t *worker;
    mqc_seedlist_lookup_t *lookup;  /* NULL once it ended */
    bool failed;
    mqc_error_t error;
};

/* The hosts arrived: the URI gets them and the topology starts; waiting operations select
 * again, now with servers or to fail with st->error. */
static void on_seedlist(void *ctx, mqc_seedlist_records_t *rec, const mqc_error_t *error)
{
    mqc_client_t *client = ctx;
    struct mqc_seedlist_state *st = client->seedlist;
    st->lookup = NULL;
    if (!rec) {
        st->failed = true;
        st->error = *error;
    } else {
        mqc_rand_t rng;
        mqc_rand_seed(&rng, (uint64_t) mqc_now_us() ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) client);
        st->failed = !mqc_seedlist_apply(&client->uri, rec, mqc_rand_next, &rng, &st->error) ||
                     !start_topology(client, &st->error);
        if (!st->failed) mqc_ops_watch_topology(client);
    }
    if (st->failed) {
        client->ops.seed_failed = true;
        client->ops.seed_error = st->error;
    }
    mqc_client_enter(client);
    mqc_op_wake_selecting(client);
    mqc_client_leave(client);
}

static bool seedlist_start(mqc_client_t *client, mqc_error_t *error)
{
    struct mqc_seedlist_state *st = calloc(1, sizeof *st);
    if (!st) abort();
    client->seedlist = st;
    st->worker = mqc_worker_new(client->loop);
    st->lookup = mqc_seedlist_lookup_start(st->worker, client->uri.srv_host, client->uri.srv_service_name,
                                           on_seedlist, client);
    if (!st->lookup) {
        mqc_error_set(error, MQC_ERROR_CLIENT, 0, "cannot start a thread for the SRV lookup of %s", client->uri.srv_host);
        return false;
    }
    return true;
}

/* Destroy: the lookup's end is dropped; the worker lets go once DNS has answered. */
static void seedlist_stop(mqc_client_t *client)
{
    struct mqc_seedlist_state *st = client->seedlist;
    if (!st) return;
    mqc_seedlist_lookup_cancel(st->worker, st->lookup);
    mqc_worker_destroy(st->worker);
    free(st);
    client->seedlist = NULL;
}

_Static_assert(offsetof(struct mqc_client, ops) == 0, "mqc_ops_of: the op layer's state comes first");

static void client_free(mqc_client_t *client);
static void client_free_guarded(void *client) { client_free(client); }

mqc_client_t *mqc_client_new_from_uri(struct ev_loop *loop, const char *uri, mqc_error_t *error)
{
    mqc_client_t *client = calloc(1, sizeof *client);
    if (!client) abort();
    if (!uri || !mqc_uri_parse(&client->uri, uri, error)) {
        if (!uri) mqc_error_set(error, MQC_ERROR_URI, 0, "no connection string given");
        free(client);
        return NULL;
    }
    if (!loop) {
        loop = ev_loop_new(EVFLAG_AUTO);
        if (!loop) {
            mqc_error_set(error, MQC_ERROR_CLIENT, 0, "cannot create an event loop");
            mqc_uri_cleanup(&client->uri);
            free(client);
            return NULL;
        }
        client->own_loop = true;
    }
    client->loop = loop;
    client->resolver = mqc_resolver_new(loop);
    mqc_ops_t *q = &client->ops;
    q->loop = loop;
    q->uri = &client->uri;
    q->stats = client->stats;
    q->sessions = &client->sessions;
    q->guard = &client->guard;
    q->topo = &client->topo;
    q->monitor = &client->monitor;
    q->monitor_ud = &client->monitor_ud;
    mqc_ops_init(client);
    mqc_guard_init(&client->guard, client_free_guarded, client);
    client->next_request_id = 1;
    build_metadata(client);
    mqc_conn_ctx_t *cx = &client->conns;
    cx->loop = loop;
    cx->uri = &client->uri;
    cx->metadata = &client->metadata;
    cx->request_ids = &client->next_request_id;
    cx->stats = client->stats;
    cx->guard = &client->guard;
    mqc_conn_secure_init(cx);
    client->server_env = (mqc_server_env_t){.conns = cx, .resolver = client->resolver,
                                            .pool_monitor = &client->monitor,
                                            .pool_monitor_ud = &client->monitor_ud};
    if (client->uri.username && (client->scram_cache = mqc_scram_cache_new()))
        mqc_scram_cache_set_deferred(client->scram_cache, true);
    cx->scram_cache = client->scram_cache;
    if (client->uri.tls) {
        mqc_tls_options_t to = {.ca_file = client->uri.tls_ca_file,
                                .cert_key_file = client->uri.tls_certificate_key_file,
                                .cert_key_password = client->uri.tls_certificate_key_file_password,
                                .allow_invalid_certs = client->uri.tls_allow_invalid_certificates,
                                .allow_invalid_hostnames = client->uri.tls_allow_invalid_hostnames};
        client->tls_ctx = mqc_tls_ctx_new(&to, error);
        if (!client->tls_ctx) {
            bson_destroy(&client->metadata);
            mqc_scram_cache_destroy(client->scram_cache);
            mqc_resolver_destroy(client->resolver);
            if (client->own_loop) ev_loop_destroy(client->loop);
            mqc_uri_cleanup(&client->uri);
            free(client);
            return NULL;
        }
        cx->tls_ctx = client->tls_ctx;
    }
    mqc_session_pool_init(&client->sessions);
    /* mongodb+srv: the topology starts once the SRV lookup has found the hosts (lib/seedlist.c). */
    if (client->uri.srv_host ? !seedlist_start(client, error) : !start_topology(client, error)) {
        client->ops.closing = true;
        client_free(client);
        return NULL;
    }
    if (!client->uri.srv_host) mqc_ops_watch_topology(client);
    return client;
}

static void client_free(mqc_client_t *client)
{
    client->ops.closing = true;
    mqc_op_fail_all(client);
    mqc_cursor_detach_all(client); /* their sessions go back to the pool, to be ended */
    mqc_client_end_sessions(client);
    seedlist_stop(client);
    mqc_topology_destroy(client->topo);
    client->topo = NULL;
    for (size_t i = 0; i < client->n_servers; i++) mqc_server_destroy(client->servers[i]);
    /* Callbacks of pool waiters already ran through mqc_op_fail_all; nothing else is pending. */
    mqc_op_flush_completions(client);
    mqc_ops_cleanup(client);
    mqc_conn_secure_cleanup(&client->conns);
    mqc_conn_ctx_cleanup(&client->conns);
    mqc_resolver_destroy(client->resolver);
    free(client->servers);
    mqc_session_pool_cleanup(&client->sessions);
    bson_destroy(&client->metadata);
    mqc_scram_cache_destroy(client->scram_cache);
    mqc_tls_ctx_destroy(client->tls_ctx);
    mqc_uri_cleanup(&client->uri);
    if (client->own_loop) ev_loop_destroy(client->loop);
    mqc_bulk_free_list_drain(client);
    mqc_cmd_free_list_drain(client);
    mqc_op_free_list_drain(client);
    free(client);
}

void mqc_client_destroy(mqc_client_t *client)
{
    if (!client) return;
    /* Inside a callback the client is freed on the way out (callbacks nest); the guard stays
     * entered through the teardown, so that callbacks run by it cannot re-enter destroy. */
    client->ops.closing = true;
    if (mqc_guard_request(&client->guard)) client_free(client);
}

void mqc_client_enter(mqc_client_t *client) { mqc_guard_enter(&client->guard); }

void mqc_client_leave(mqc_client_t *client) { mqc_guard_leave(&client->guard); }

struct ev_loop *mqc_client_get_loop(const mqc_client_t *client) { return client->loop; }

static void on_idle_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) revents;
    mqc_client_t *client = w->data;
    if (client->stats[MQC_STAT_OPS_PENDING] == 0) ev_break(loop, EVBREAK_ONE);
}

bool mqc_client_run_until_idle(mqc_client_t *client, double timeout_s)
{
    if (client->stats[MQC_STAT_OPS_PENDING] == 0) return true;
    ev_timer check, limit;
    ev_timer_init(&check, on_idle_check, 0.001, 0.001);
    check.data = client;
    ev_timer_start(client->loop, &check);
    bool timed = timeout_s > 0;
    if (timed) {
        ev_timer_init(&limit, on_idle_check, timeout_s, 0.);
        limit.data = client;
        ev_timer_start(client->loop, &limit);
    }
    int64_t until = mqc_loop_us(client->loop) + (int64_t) (timeout_s * 1e6);
    while (client->stats[MQC_STAT_OPS_PENDING] > 0) {
        ev_run(client->loop, EVRUN_ONCE);
        if (timed && mqc_loop_us(client->loop) >= until) break;
    }
    ev_timer_stop(client->loop, &check);
    if (timed) ev_timer_stop(client->loop, &limit);
    return client->stats[MQC_STAT_OPS_PENDING] == 0;
}

void mqc_client_set_max_pending(mqc_client_t *client, size_t max_pending) { client->ops.max_pending = max_pending; }

uint64_t mqc_client_stat(const mqc_client_t *client, mqc_stat_t which)
{
    /* The pool keeps its own counters: nothing is counted twice on the hot path. */
    switch (which) {
    case MQC_STAT_SESSIONS_CREATED: return client->sessions.created;
    case MQC_STAT_SESSIONS_IN_USE: return client->sessions.in_use;
    case MQC_STAT_SESSIONS_PEAK: return client->sessions.peak_in_use;
    case MQC_STAT_SESSIONS_DISCARDED: return client->sessions.discarded;
    case MQC_STAT_SESSIONS_ENDED: return client->sessions.ended;
    default: break;
    }
    return (unsigned) which < MQC_STAT__COUNT ? client->stats[which] : 0;
}

void mqc_client_set_monitor(mqc_client_t *client, const mqc_monitor_t *monitor, void *ud)
{
    if (monitor) client->monitor = *monitor;
    else memset(&client->monitor, 0, sizeof client->monitor);
    client->monitor_ud = ud;
}

/* ---- endSessions at destroy --------------------------------------------------------------- */

static void on_end_sessions(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op;
    (void) reply;
    (void) error; /* best effort: the server times them out anyway */
    (*(size_t *) ud)--;
}

/* The specification: a driver should end its pooled sessions when the client is closed, with
 * endSessions in batches of at most 10,000 ids, ignoring errors. Best effort and bounded: only
 * when a server can be picked now and has an idle connection, every batch submitted at once with
 * a deadline of END_SESSIONS_MS, so a dead server delays destroy by that at most.
 * The application's operations have all had their callbacks by now; these have none of its. */
#define END_SESSIONS_MS 1000
void mqc_client_end_sessions(mqc_client_t *client)
{
    mqc_session_pool_t *p = &client->sessions;
    if (p->n_idle == 0 || !client->topo) return;
    /* primaryPreferred, as the specification says, among servers with an idle connection */
    mqc_server_t *s = NULL;
    for (size_t i = 0; i < client->n_servers; i++) {
        mqc_server_t *c = client->servers[i];
        if (c->retired || mqc_pool_available(c->pool) == 0) continue;
        mqc_server_type_t t = mqc_topology_server_type(client->topo, c);
        bool writable = t == MQC_SERVER_RS_PRIMARY || t == MQC_SERVER_MONGOS || t == MQC_SERVER_STANDALONE;
        if (writable || (!s && t == MQC_SERVER_RS_SECONDARY)) s = c;
        if (writable) break;
    }
    if (!s) return;
    uint8_t (*ids)[16] = malloc(MQC_SESSION_END_BATCH * sizeof *ids);
    if (!ids) abort();
    size_t left = 0, n;
    while ((n = mqc_session_pool_drain(p, ids, MQC_SESSION_END_BATCH)) > 0) {
        mqc_cmd_impl_t *impl = mqc_cmd_impl_new();
        bson_t arr, one;
        char key[16];
        BSON_APPEND_ARRAY_BEGIN(&impl->cmd, "endSessions", &arr);
        for (size_t i = 0; i < n; i++) {
            const char *k;
            bson_uint32_to_string((uint32_t) i, &k, key, sizeof key);
            bson_append_document_begin(&arr, k, -1, &one);
            bson_append_binary(&one, "id", 2, BSON_SUBTYPE_UUID, ids[i], 16);
            bson_append_document_end(&arr, &one);
        }
        bson_append_array_end(&impl->cmd, &arr);
        BSON_APPEND_UTF8(&impl->cmd, "$db", "admin");
        mqc_op_t *op = mqc_cmd_op_adopt(client, "admin", impl, on_end_sessions, &left);
        op->internal = true;
        op->no_session = true;
        op->pin = s;
        op->deadline_us = op->start_us + END_SESSIONS_MS * 1000;
        left++;
        mqc_op_submit(op);
    }
    free(ids);
    while (left > 0) ev_run(client->loop, EVRUN_ONCE);
}
