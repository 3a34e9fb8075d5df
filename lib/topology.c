/* topology: see topology.h. lib/sdam.c decides; this file carries the decisions out. */
#include "topology.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heartbeat.h"

/* "host:port" / "[v6]:port" (normalised by sdam) into a URI host. */
static void host_from_address(const char *addr, mqc_uri_host_t *h)
{
    memset(h, 0, sizeof *h);
    snprintf(h->host_and_port, sizeof h->host_and_port, "%s", addr);
    const char *colon = strrchr(addr, ':');
    size_t hl = colon ? (size_t) (colon - addr) : strlen(addr);
    const char *start = addr;
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
        start++;
        hl -= 2;
    }
    if (hl >= sizeof h->host) hl = sizeof h->host - 1;
    memcpy(h->host, start, hl);
    h->port = colon ? (uint16_t) atoi(colon + 1) : 27017;
}

static void add_server(mqc_topology_t *t, mqc_server_t *s)
{
    mqc_server_t **v = realloc(*t->env.servers, (*t->env.n_servers + 1) * sizeof *v);
    if (!v) abort();
    *t->env.servers = v;
    v[(*t->env.n_servers)++] = s;
}

static mqc_server_t *server_at(const mqc_topology_t *t, const char *address)
{
    mqc_sdam_server_t *ss = mqc_sdam_find(&t->td, address);
    return ss ? ss->ud : NULL;
}

static void emit(const mqc_topology_t *t, mqc_topology_event_type_t type, const char *server, const char *previous,
                 const char *current)
{
    if (!t->env.monitor->topology) return;
    mqc_topology_event_t ev = {.type = type, .server = server, .previous = previous, .current = current};
    t->env.monitor->topology(&ev, *t->env.monitor_ud);
}

static void apply_changes(mqc_topology_t *t);

/* A monitor's check ended: sd is the outcome (Unknown with an error for a failure). */
static void report_check(void *ud, const mqc_sd_t *sd)
{
    mqc_topology_t *t = ud;
    if (!t->monitored) return;
    mqc_sdam_apply_sd(&t->td, sd, &t->ch);
    apply_changes(t);
}

/* True when the server at address is of a known type now (a monitor's retry rule). */
static bool server_known(void *ud, const char *address)
{
    const mqc_topology_t *t = ud;
    if (!t->monitored) return false;
    const mqc_sdam_server_t *ss = mqc_sdam_find(&t->td, address);
    return ss && ss->sd.type != MQC_SERVER_UNKNOWN;
}

/* Acts on the events of the last update, in order. They are copied first: acting may run
 * callbacks that report errors, which update the topology (and its change list) again. */
static void apply_changes(mqc_topology_t *t)
{
    size_t n = t->ch.n;
    if (n == 0) return;
    mqc_sdam_event_t *evs = malloc(n * sizeof *evs);
    if (!evs) abort();
    memcpy(evs, t->ch.ev, n * sizeof *evs);
    t->ch.n = 0;
    /* The client's destroy waits for the guard: t lives to the end of this. */
    mqc_guard_enter(t->env.guard);
    for (size_t i = 0; i < n; i++) {
        const mqc_sdam_event_t *ev = &evs[i];
        mqc_server_t *s = ev->kind == MQC_SDAM_SERVER_REMOVED ? ev->ud : server_at(t, ev->address);
        switch (ev->kind) {
        case MQC_SDAM_SERVER_ADDED: {
            mqc_uri_host_t h;
            host_from_address(ev->address, &h);
            s = mqc_server_new(t->env.server_env, &h, true);
            snprintf(s->address, sizeof s->address, "%s", ev->address);
            add_server(t, s);
            mqc_sdam_server_t *ss = mqc_sdam_find(&t->td, ev->address);
            if (ss) ss->ud = s;
            mqc_server_monitor(s, report_check, server_known, t);
            break;
        }
        case MQC_SDAM_SERVER_REMOVED:
            /* Ops may still point at it (a cursor's pin, an op on its connection): it stays
             * allocated, out of the topology, until the client goes. */
            if (s) {
                s->retired = true;
                mqc_heartbeat_destroy(s->heartbeat);
                s->heartbeat = NULL;
                mqc_pool_close(s->pool);
            }
            break;
        case MQC_SDAM_SERVER_CHANGED:
            emit(t, MQC_TOPOLOGY_SERVER_CHANGED, ev->address, mqc_server_type_name(ev->old_type),
                 mqc_server_type_name(ev->new_type));
            break;
        case MQC_SDAM_TOPOLOGY_CHANGED:
            emit(t, MQC_TOPOLOGY_CHANGED, "", mqc_sdam_topo_type_name(ev->old_topology),
                 mqc_sdam_topo_type_name(ev->new_topology));
            break;
        case MQC_SDAM_PRIMARY_CHANGED:
            snprintf(t->primary, sizeof t->primary, "%s", ev->address);
            emit(t, MQC_TOPOLOGY_PRIMARY_CHANGED, ev->address, ev->previous, ev->address);
            break;
        case MQC_SDAM_CLEAR_POOL:
            if (s && !s->retired) {
                mqc_error_t err;
                mqc_error_set(&err, MQC_ERROR_NETWORK, 0, "connection pool for %s cleared: the server was marked Unknown",
                              ev->address);
                err.labels |= MQC_LABEL_NETWORK;
                mqc_pool_clear(s->pool, &err);
            }
            break;
        case MQC_SDAM_REQUEST_CHECK:
            if (s) mqc_heartbeat_request_check(s->heartbeat);
            break;
        case MQC_SDAM_CANCEL_CHECK:
            if (s) mqc_heartbeat_cancel_check(s->heartbeat);
            break;
        case MQC_SDAM_POOL_READY:
            if (s && !s->retired) mqc_pool_ready(s->pool);
            break;
        }
    }
    free(evs);
    for (mqc_link_t *l = t->subs.next; l != &t->subs; l = l->next) {
        mqc_topology_sub_t *sub = mqc_container_of(l, mqc_topology_sub_t, link);
        sub->changed(sub->ctx);
    }
    mqc_guard_leave(t->env.guard);
}

mqc_topology_t *mqc_topology_new(const mqc_topology_env_t *env, mqc_error_t *error)
{
    const mqc_uri_t *u = env->uri;
    mqc_topology_t *t = calloc(1, sizeof *t);
    if (!t) abort();
    t->env = *env;
    mqc_sdam_changes_init(&t->ch);
    mqc_rand_seed(&t->rng, env->seed);
    mqc_list_init(&t->subs);
    bool unix_host = false;
    for (size_t i = 0; i < u->n_hosts; i++) unix_host |= u->hosts[i].is_unix;
    bool direct = u->direct_connection_set && u->direct_connection;
    bool lone = u->n_hosts == 1 && !u->replica_set && !u->direct_connection_set && !u->srv_host; /* srv: monitored, per spec */
    if (u->load_balanced || direct || lone || unix_host || u->n_hosts == 0) {
        /* Nothing to discover: the server is used as it is, as a direct connection should. */
        for (size_t i = 0; i < u->n_hosts; i++) {
            mqc_server_t *s = mqc_server_new(t->env.server_env, &u->hosts[i], false);
            if (!mqc_sdam_normalize_address(u->hosts[i].host_and_port, s->address, sizeof s->address))
                snprintf(s->address, sizeof s->address, "%s", u->hosts[i].host_and_port);
            add_server(t, s);
        }
        t->td.type = u->load_balanced ? MQC_TOPOLOGY_LOAD_BALANCED : MQC_TOPOLOGY_SINGLE;
        t->td.session_timeout_minutes = -1;
        return t;
    }
    t->monitored = true;
    mqc_sdam_topo_type_t type;
    const char **seeds = calloc(u->n_hosts, sizeof *seeds);
    if (!seeds) abort();
    for (size_t i = 0; i < u->n_hosts; i++) seeds[i] = u->hosts[i].host_and_port;
    bool ok = mqc_sdam_initial_type(u->n_hosts, u->direct_connection_set, u->direct_connection,
                                        u->replica_set != NULL, u->load_balanced, &type, error) &&
              mqc_sdam_desc_init(&t->td, type, u->replica_set, seeds, u->n_hosts, &t->ch, error);
    free(seeds);
    if (!ok) {
        mqc_sdam_changes_cleanup(&t->ch);
        free(t);
        return NULL;
    }
    t->td.heartbeat_frequency_ms = u->heartbeat_frequency_ms;
    apply_changes(t);
    return t;
}

void mqc_topology_subscribe(mqc_topology_t *t, mqc_topology_sub_t *sub)
{
    if (t) mqc_list_push_back(&t->subs, &sub->link);
}

void mqc_topology_destroy(mqc_topology_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < *t->env.n_servers; i++) {
        mqc_server_t *s = (*t->env.servers)[i];
        mqc_heartbeat_destroy(s->heartbeat);
        s->heartbeat = NULL;
    }
    if (t->monitored) mqc_sdam_desc_cleanup(&t->td);
    mqc_sdam_changes_cleanup(&t->ch);
    free(t);
}

void mqc_topology_op_error(mqc_topology_t *t, mqc_server_t *s, uint32_t generation, mqc_sdam_err_kind_t kind,
                           const bson_t *reply, const char *message)
{
    if (!t || s->retired) return;
    if (!t->monitored) {
        /* No description to mark Unknown. SDAM clears the pool after a state-change error from a
         * server shutting down (or from one before 4.2, which closes every connection on a state
         * change), because its connections are about to die. A lone host without a monitor
         * closes its idle ones and nothing more: a clear would also close every in-use
         * connection on check-in and fail every waiter, while each in-use connection of a
         * server really going away shows that by its own error (retryable, so the op retries
         * once on a new connection, whose failure to connect then clears the pool); and one
         * spurious error (a fault, a proxy) would cost the whole pool (docs/library/reliability.md,
         * fault containment). */
        int32_t code = 0;
        mqc_sdam_state_error_t st = kind == MQC_SDAM_ERR_COMMAND && reply ? mqc_sdam_classify_reply(reply, &code)
                                                                          : MQC_SDAM_STATE_NONE;
        bool old = s->caps_known && s->caps.max_wire_version < 8;
        if (st != MQC_SDAM_STATE_NONE && (st == MQC_SDAM_STATE_SHUTDOWN || old) &&
            generation == mqc_pool_generation(s->pool))
            mqc_pool_close_idle(s->pool);
        return;
    }
    mqc_sdam_app_error_t e = {.address = s->address, .when = MQC_SDAM_WHEN_ESTABLISHED, .kind = kind,
                              .generation = generation, .max_wire_version = s->caps_known ? s->caps.max_wire_version : 0,
                              .reply = reply, .message = message};
    mqc_sdam_error_result_t r;
    mqc_sdam_handle_error(&t->td, &e, &r, &t->ch);
    apply_changes(t);
}

/* ---- selection ----------------------------------------------------------------------------- */

/* The read preference: the command's "$readPreference", else the URI's. */
static void read_pref_of(const mqc_uri_t *uri, const bson_t *command, mqc_read_pref_t *rp, bson_t *tags_out)
{
    bson_iter_t it, f;
    mqc_read_pref_init(rp);
    rp->mode = uri->read_mode;
    if (!bson_empty(&uri->read_tags)) rp->tag_sets = &uri->read_tags;
    rp->max_staleness_seconds = uri->max_staleness_seconds;
    if (!command || !bson_iter_init_find(&it, command, "$readPreference") || !BSON_ITER_HOLDS_DOCUMENT(&it) ||
        !bson_iter_recurse(&it, &f))
        return;
    rp->tag_sets = NULL;
    rp->max_staleness_seconds = -1;
    while (bson_iter_next(&f)) {
        const char *k = bson_iter_key(&f);
        if (!strcmp(k, "mode") && BSON_ITER_HOLDS_UTF8(&f)) {
            mqc_read_mode_t m;
            if (mqc_read_mode_from_name(bson_iter_utf8(&f, NULL), &m)) rp->mode = m;
        } else if (!strcmp(k, "tags") && BSON_ITER_HOLDS_ARRAY(&f)) {
            uint32_t len;
            const uint8_t *data;
            bson_iter_array(&f, &len, &data);
            if (bson_init_static(tags_out, data, len)) rp->tag_sets = tags_out;
        } else if (!strcmp(k, "maxStalenessSeconds") && BSON_ITER_HOLDS_NUMBER(&f)) {
            rp->max_staleness_seconds = bson_iter_as_int64(&f);
        }
    }
}

/* Without monitoring (a Single topology, a load balancer) every listed server is a candidate,
 * the one with the shortest wait queue first, in turn among equals. */
static __attribute__((noinline)) mqc_server_t *select_unmonitored(mqc_topology_t *t, mqc_error_t *error)
{
    size_t n = *t->env.n_servers;
    mqc_server_t **servers = *t->env.servers;
    if (n == 0) {
        mqc_error_set(error, MQC_ERROR_SELECTION, 0, "no servers in the connection string");
        return NULL;
    }
    if (n == 1) return servers[0];
    mqc_server_t *best = NULL;
    size_t best_load = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        mqc_server_t *s = servers[(t->rr + k) % n];
        size_t load = mqc_pool_waiters(s->pool) + (mqc_pool_total(s->pool) - mqc_pool_available(s->pool));
        if (load < best_load) best = s, best_load = load;
    }
    t->rr++;
    return best;
}

/* Apart from the lone host's way (mqc_topology_select): that one, taken by every operation on
 * it, does not pay for this frame (read preference, tags, select options). */
static __attribute__((noinline)) mqc_server_t *select_monitored(mqc_topology_t *t, bool write, const bson_t *command,
                                                                const mqc_server_t *avoid, bool *wait, mqc_error_t *error)
{
    mqc_read_pref_t rp;
    bson_t tags;
    mqc_select_opts_t so;
    mqc_select_opts_init(&so);
    so.write = write;
    if (!write) {
        read_pref_of(t->env.uri, command, &rp, &tags);
        so.read_pref = &rp;
    }
    so.local_threshold_ms = t->env.uri->local_threshold_ms;
    const char *tried[1];
    if (avoid) {
        tried[0] = avoid->address;
        so.deprioritized = tried;
        so.n_deprioritized = 1;
    }
    /* Operations in progress per server, for the "power of two choices": the pool knows. */
    for (size_t i = 0; i < t->td.n_servers; i++) {
        mqc_server_t *s = t->td.servers[i]->ud;
        t->td.servers[i]->operation_count =
            s ? (uint32_t) (mqc_pool_waiters(s->pool) + mqc_pool_total(s->pool) - mqc_pool_available(s->pool)) : 0;
    }
    mqc_error_clear(error);
    mqc_sdam_server_t *ss = mqc_select_server(&t->td, &so, mqc_rand_next, &t->rng, error);
    if (ss) {
        mqc_select_done(ss);
        if (ss->ud) return ss->ud;
    }
    if (mqc_error_is_set(error)) return NULL;
    /* Nothing suitable: look again soon (monitors keep minHeartbeatFrequencyMS between checks). */
    *wait = true;
    for (size_t i = 0; i < t->td.n_servers; i++) {
        mqc_server_t *s = t->td.servers[i]->ud;
        if (s) mqc_heartbeat_request_check(s->heartbeat);
    }
    return NULL;
}

mqc_server_t *mqc_topology_select(mqc_topology_t *t, bool write, const bson_t *command, const mqc_server_t *avoid,
                                  bool *wait, mqc_error_t *error)
{
    *wait = !t;
    if (!t) return NULL;
    if (!t->monitored) return *t->env.n_servers == 1 ? (*t->env.servers)[0] : select_unmonitored(t, error);
    return select_monitored(t, write, command, avoid, wait, error);
}

const char *mqc_topology_describe(const mqc_topology_t *t, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    if (!t) return buf;
    n += (size_t) snprintf(buf, size, "%s", mqc_sdam_topo_type_name(t->td.type));
    for (size_t i = 0; t->monitored && i < t->td.n_servers && n < size; i++) {
        const mqc_sd_t *sd = &t->td.servers[i]->sd;
        n += (size_t) snprintf(buf + n, size - n, "%s %s (%s%s%s)", i ? "," : ":", sd->address,
                               mqc_server_type_name(sd->type), sd->error[0] ? ": " : "", sd->error);
    }
    return buf;
}

mqc_server_type_t mqc_topology_server_type(const mqc_topology_t *t, const mqc_server_t *s)
{
    if (t && t->monitored) {
        const mqc_sdam_server_t *ss = mqc_sdam_find(&t->td, s->address);
        return ss ? ss->sd.type : MQC_SERVER_UNKNOWN;
    }
    if (!s->caps_known) return MQC_SERVER_UNKNOWN;
    if (s->caps.is_mongos) return MQC_SERVER_MONGOS;
    if (s->caps.is_writable_primary) return s->caps.is_rs_member ? MQC_SERVER_RS_PRIMARY : MQC_SERVER_STANDALONE;
    return MQC_SERVER_RS_SECONDARY;
}

bool mqc_topology_supports_sessions(const mqc_topology_t *t, const mqc_server_t *s)
{
    /* Retryable writes need a replica-set primary or a mongos with sessions. Monitored: as SDAM
     * sees the deployment. A lone host without a monitor: as its last handshake said (unknown
     * before the first one: lib/op.c asks again when the op gets its connection). */
    if (!t) return false;
    if (!t->monitored && (!s->caps_known || s->caps.session_timeout_minutes < 0)) return false;
    if (t->monitored && t->td.session_timeout_minutes < 0) return false;
    mqc_server_type_t st = mqc_topology_server_type(t, s);
    return st == MQC_SERVER_RS_PRIMARY || st == MQC_SERVER_MONGOS;
}
