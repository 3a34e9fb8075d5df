/* sdam: the topology description and its update rules: what a server description, an
 * application error or closing does to it (see sdam.h). Descriptions themselves are in
 * server_desc.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "sdam.h"

/* ---- names ------------------------------------------------------------------------------ */

static const char *const topology_type_names[] = {
    [MQC_TOPOLOGY_UNKNOWN] = "Unknown",
    [MQC_TOPOLOGY_SINGLE] = "Single",
    [MQC_TOPOLOGY_RS_NO_PRIMARY] = "ReplicaSetNoPrimary",
    [MQC_TOPOLOGY_RS_WITH_PRIMARY] = "ReplicaSetWithPrimary",
    [MQC_TOPOLOGY_SHARDED] = "Sharded",
    [MQC_TOPOLOGY_LOAD_BALANCED] = "LoadBalanced",
};
#define N_TOPOLOGY_TYPES (sizeof topology_type_names / sizeof topology_type_names[0])

const char *mqc_sdam_topo_type_name(mqc_sdam_topo_type_t type)
{
    return (size_t) type < N_TOPOLOGY_TYPES ? topology_type_names[type] : "Invalid";
}

bool mqc_sdam_topo_type_from_name(const char *name, mqc_sdam_topo_type_t *type)
{
    for (size_t i = 0; i < N_TOPOLOGY_TYPES; i++)
        if (name && !strcmp(name, topology_type_names[i])) {
            *type = (mqc_sdam_topo_type_t) i;
            return true;
        }
    return false;
}

static bool str_eq_null(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* ---- change lists ----------------------------------------------------------------------- */

void mqc_sdam_changes_init(mqc_sdam_changes_t *ch) { memset(ch, 0, sizeof *ch); }

void mqc_sdam_changes_cleanup(mqc_sdam_changes_t *ch)
{
    if (!ch) return;
    bson_free(ch->ev);
    memset(ch, 0, sizeof *ch);
}

const mqc_sdam_event_t *mqc_sdam_changes_find(const mqc_sdam_changes_t *ch, mqc_sdam_event_kind_t kind,
                                              const char *address)
{
    for (size_t i = 0; ch && i < ch->n; i++)
        if (ch->ev[i].kind == kind && (!address || !strcmp(ch->ev[i].address, address))) return &ch->ev[i];
    return NULL;
}

static mqc_sdam_event_t *push_event(mqc_sdam_changes_t *ch, mqc_sdam_event_kind_t kind,
                                    const mqc_sdam_server_t *s)
{
    if (!ch) return NULL;
    if (ch->n == ch->cap) {
        ch->cap = ch->cap ? ch->cap * 2 : 8;
        ch->ev = bson_realloc(ch->ev, ch->cap * sizeof *ch->ev);
    }
    mqc_sdam_event_t *e = &ch->ev[ch->n++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    if (s) {
        snprintf(e->address, sizeof e->address, "%s", s->sd.address);
        e->ud = s->ud;
        e->generation = s->generation;
    }
    return e;
}

/* ---- the topology ----------------------------------------------------------------------- */

bool mqc_sdam_initial_type(size_t n_seeds, bool direct_set, bool direct, bool has_set_name,
                               bool load_balanced, mqc_sdam_topo_type_t *type, mqc_error_t *error)
{
    if (load_balanced) {
        if (direct_set && direct) {
            mqc_error_set(error, MQC_ERROR_URI, 0, "loadBalanced=true cannot be used with directConnection=true");
            return false;
        }
        if (has_set_name) {
            mqc_error_set(error, MQC_ERROR_URI, 0, "loadBalanced=true cannot be used with replicaSet");
            return false;
        }
        if (n_seeds != 1) {
            mqc_error_set(error, MQC_ERROR_URI, 0, "loadBalanced=true requires exactly one host");
            return false;
        }
        *type = MQC_TOPOLOGY_LOAD_BALANCED;
        return true;
    }
    if (direct_set && direct) {
        if (n_seeds != 1) {
            mqc_error_set(error, MQC_ERROR_URI, 0, "directConnection=true cannot be used with several hosts");
            return false;
        }
        *type = MQC_TOPOLOGY_SINGLE;
        return true;
    }
    /* directConnection absent behaves as false: a lone standalone seed still becomes Single
     * through updateUnknownWithStandalone. */
    *type = has_set_name ? MQC_TOPOLOGY_RS_NO_PRIMARY : MQC_TOPOLOGY_UNKNOWN;
    return true;
}

mqc_sdam_server_t *mqc_sdam_find(const mqc_sdam_desc_t *td, const char *address)
{
    char buf[MQC_SDAM_ADDR_MAX];
    if (!mqc_sdam_normalize_address(address, buf, sizeof buf)) return NULL;
    for (size_t i = 0; i < td->n_servers; i++)
        if (!strcmp(td->servers[i]->sd.address, buf)) return td->servers[i];
    return NULL;
}

mqc_sdam_server_t *mqc_sdam_primary(const mqc_sdam_desc_t *td)
{
    for (size_t i = 0; i < td->n_servers; i++)
        if (td->servers[i]->sd.type == MQC_SERVER_RS_PRIMARY) return td->servers[i];
    return NULL;
}

static mqc_sdam_server_t *add_server(mqc_sdam_desc_t *td, const char *address, mqc_sdam_changes_t *ch)
{
    mqc_sdam_server_t *s = bson_malloc0(sizeof *s);
    mqc_sd_init_unknown(&s->sd, address, NULL);
    if (td->n_servers == td->cap_servers) {
        td->cap_servers = td->cap_servers ? td->cap_servers * 2 : 8;
        td->servers = bson_realloc(td->servers, td->cap_servers * sizeof *td->servers);
    }
    td->servers[td->n_servers++] = s;
    push_event(ch, MQC_SDAM_SERVER_ADDED, s);
    return s;
}

static void remove_server(mqc_sdam_desc_t *td, mqc_sdam_server_t *s, mqc_sdam_changes_t *ch)
{
    for (size_t i = 0; i < td->n_servers; i++) {
        if (td->servers[i] != s) continue;
        memmove(&td->servers[i], &td->servers[i + 1], (td->n_servers - i - 1) * sizeof *td->servers);
        td->n_servers--;
        push_event(ch, MQC_SDAM_SERVER_REMOVED, s);
        mqc_sd_cleanup(&s->sd);
        bson_free(s);
        return;
    }
}

bool mqc_sdam_desc_init(mqc_sdam_desc_t *td, mqc_sdam_topo_type_t type, const char *set_name,
                            const char *const *seeds, size_t n_seeds, mqc_sdam_changes_t *ch,
                            mqc_error_t *error)
{
    memset(td, 0, sizeof *td);
    td->type = type;
    td->compatible = true;
    td->session_timeout_minutes = -1;
    td->heartbeat_frequency_ms = 10000;
    td->n_seeds = n_seeds;
    if (ch) ch->n = 0;
    if ((type == MQC_TOPOLOGY_SINGLE || type == MQC_TOPOLOGY_LOAD_BALANCED) && n_seeds != 1) {
        mqc_error_set(error, MQC_ERROR_URI, 0, "topology %s needs exactly one host, got %zu",
                      mqc_sdam_topo_type_name(type), n_seeds);
        return false;
    }
    td->set_name = set_name ? bson_strdup(set_name) : NULL;
    for (size_t i = 0; i < n_seeds; i++) {
        char buf[MQC_SDAM_ADDR_MAX];
        if (!mqc_sdam_normalize_address(seeds[i], buf, sizeof buf)) {
            mqc_error_set(error, MQC_ERROR_URI, 0, "invalid host \"%s\"", seeds[i] ? seeds[i] : "");
            mqc_sdam_desc_cleanup(td);
            return false;
        }
        if (mqc_sdam_find(td, buf)) continue;
        mqc_sdam_server_t *s = add_server(td, buf, ch);
        /* A load balancer is never checked: it is LoadBalancer from the start. */
        if (type == MQC_TOPOLOGY_LOAD_BALANCED) s->sd.type = MQC_SERVER_LOAD_BALANCER;
    }
    return true;
}

void mqc_sdam_desc_cleanup(mqc_sdam_desc_t *td)
{
    if (!td) return;
    for (size_t i = 0; i < td->n_servers; i++) {
        mqc_sd_cleanup(&td->servers[i]->sd);
        bson_free(td->servers[i]);
    }
    bson_free(td->servers);
    bson_free(td->set_name);
    memset(td, 0, sizeof *td);
}

/* Replaces s's description with a copy of sd (taking sd's address), reporting a change. */
static void replace_sd(mqc_sdam_server_t *s, const mqc_sd_t *sd, mqc_sdam_changes_t *ch)
{
    mqc_sd_t copy;
    mqc_sd_copy(&copy, sd);
    snprintf(copy.address, sizeof copy.address, "%s", s->sd.address);
    if (!mqc_sd_equal(&s->sd, &copy)) {
        mqc_sdam_event_t *e = push_event(ch, MQC_SDAM_SERVER_CHANGED, s);
        if (e) {
            e->old_type = s->sd.type;
            e->new_type = copy.type;
        }
    }
    /* Never assign a mqc_sd_t by value: a bson_t that outgrew its inline storage points into
     * itself (tags over 120 bytes), so the copy would point into the dead stack copy (fuzz_hello:
     * double free). Copy in place instead. */
    mqc_sd_cleanup(&s->sd);
    mqc_sd_copy(&s->sd, &copy);
    mqc_sd_cleanup(&copy);
}

static void mark_unknown(mqc_sdam_server_t *s, const char *error, mqc_sdam_changes_t *ch)
{
    mqc_sd_t u;
    mqc_sd_init_unknown(&u, s->sd.address, error);
    replace_sd(s, &u, ch);
    mqc_sd_cleanup(&u);
}

static void clear_pool(mqc_sdam_server_t *s, mqc_sdam_changes_t *ch)
{
    s->generation++;
    push_event(ch, MQC_SDAM_CLEAR_POOL, s);
}

static void check_if_has_primary(mqc_sdam_desc_t *td)
{
    td->type = mqc_sdam_primary(td) ? MQC_TOPOLOGY_RS_WITH_PRIMARY : MQC_TOPOLOGY_RS_NO_PRIMARY;
}

static void add_members(mqc_sdam_desc_t *td, const mqc_sd_t *sd, mqc_sdam_changes_t *ch)
{
    const mqc_strset_t *lists[] = {&sd->hosts, &sd->passives, &sd->arbiters};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < lists[l]->n; i++)
            if (!mqc_sdam_find(td, lists[l]->v[i])) add_server(td, lists[l]->v[i], ch);
}

static bool is_member(const mqc_sd_t *sd, const char *address)
{
    return mqc_strset_contains(&sd->hosts, address) || mqc_strset_contains(&sd->passives, address) ||
           mqc_strset_contains(&sd->arbiters, address);
}

/* The server another member names as primary is probably it: worth checking first. */
static void mark_possible_primary(mqc_sdam_desc_t *td, const mqc_sd_t *sd, mqc_sdam_changes_t *ch)
{
    if (!sd->primary) return;
    mqc_sdam_server_t *p = mqc_sdam_find(td, sd->primary);
    if (!p || p->sd.type != MQC_SERVER_UNKNOWN) return;
    mqc_sd_t pp;
    mqc_sd_copy(&pp, &p->sd);
    pp.type = MQC_SERVER_POSSIBLE_PRIMARY;
    replace_sd(p, &pp, ch);
    mqc_sd_cleanup(&pp);
}

/* -1, 0, 1; an absent ObjectId is less than any. */
static int cmp_election_id(bool has_a, const bson_oid_t *a, bool has_b, const bson_oid_t *b)
{
    if (!has_a || !has_b) return has_a == has_b ? 0 : (has_a ? 1 : -1);
    int c = bson_oid_compare(a, b);
    return c < 0 ? -1 : c > 0;
}

static int cmp_set_version(bool has_a, int64_t a, bool has_b, int64_t b)
{
    if (!has_a || !has_b) return has_a == has_b ? 0 : (has_a ? 1 : -1);
    return a < b ? -1 : a > b;
}

/* True when the primary sd is older than one already seen (its (electionId, setVersion) pair,
 * or (setVersion, electionId) before 6.0, is below the maximum); updates the maximum otherwise. */
static bool primary_is_stale(mqc_sdam_desc_t *td, const mqc_sd_t *sd)
{
    if (sd->max_wire_version >= MQC_WIRE_VERSION_60) {
        int c = cmp_election_id(sd->has_election_id, &sd->election_id, td->has_max_election_id,
                                &td->max_election_id);
        if (c < 0) return true;
        if (c == 0 && cmp_set_version(sd->has_set_version, sd->set_version, td->has_max_set_version,
                                      td->max_set_version) < 0)
            return true;
        td->has_max_election_id = sd->has_election_id;
        if (sd->has_election_id) bson_oid_copy(&sd->election_id, &td->max_election_id);
        td->has_max_set_version = sd->has_set_version;
        td->max_set_version = sd->set_version;
        return false;
    }
    if (sd->has_set_version && sd->has_election_id) {
        if (td->has_max_set_version && td->has_max_election_id &&
            (td->max_set_version > sd->set_version ||
             (td->max_set_version == sd->set_version &&
              bson_oid_compare(&td->max_election_id, &sd->election_id) > 0)))
            return true;
        td->has_max_election_id = true;
        bson_oid_copy(&sd->election_id, &td->max_election_id);
    }
    if (sd->has_set_version && (!td->has_max_set_version || sd->set_version > td->max_set_version)) {
        td->has_max_set_version = true;
        td->max_set_version = sd->set_version;
    }
    return false;
}

static void update_rs_from_primary(mqc_sdam_desc_t *td, mqc_sdam_server_t *s, mqc_sdam_changes_t *ch)
{
    if (!td->set_name) td->set_name = bson_strdup(s->sd.set_name);
    else if (!str_eq_null(td->set_name, s->sd.set_name)) {
        remove_server(td, s, ch);
        check_if_has_primary(td);
        return;
    }
    if (primary_is_stale(td, &s->sd)) {
        mark_unknown(s, "primary marked stale due to electionId/setVersion mismatch", ch);
        check_if_has_primary(td);
        return;
    }
    for (size_t i = 0; i < td->n_servers; i++) {
        mqc_sdam_server_t *o = td->servers[i];
        if (o == s || o->sd.type != MQC_SERVER_RS_PRIMARY) continue;
        /* Before 4.2 a stepping-down primary closes every connection: the pool is useless. */
        bool old_server = o->sd.max_wire_version < MQC_WIRE_VERSION_42;
        mark_unknown(o, "primary marked stale due to discovery of newer primary", ch);
        push_event(ch, MQC_SDAM_REQUEST_CHECK, o);
        if (old_server) clear_pool(o, ch);
    }
    /* The primary itself goes when it is not in its own lists (reached by another name), so
     * its lists are read from a copy. */
    mqc_sd_t p;
    mqc_sd_copy(&p, &s->sd);
    add_members(td, &p, ch);
    for (size_t i = 0; i < td->n_servers;) {
        if (!is_member(&p, td->servers[i]->sd.address)) remove_server(td, td->servers[i], ch);
        else i++;
    }
    mqc_sd_cleanup(&p);
    check_if_has_primary(td);
}

static void update_rs_without_primary(mqc_sdam_desc_t *td, mqc_sdam_server_t *s, mqc_sdam_changes_t *ch)
{
    if (!td->set_name) td->set_name = bson_strdup(s->sd.set_name);
    else if (!str_eq_null(td->set_name, s->sd.set_name)) {
        remove_server(td, s, ch);
        return;
    }
    add_members(td, &s->sd, ch);
    mark_possible_primary(td, &s->sd, ch);
    if (s->sd.me && strcmp(s->sd.address, s->sd.me)) remove_server(td, s, ch);
}

static void update_rs_with_primary_from_member(mqc_sdam_desc_t *td, mqc_sdam_server_t *s,
                                               mqc_sdam_changes_t *ch)
{
    if (!str_eq_null(td->set_name, s->sd.set_name) || (s->sd.me && strcmp(s->sd.address, s->sd.me))) {
        remove_server(td, s, ch);
        check_if_has_primary(td);
        return;
    }
    if (!mqc_sdam_primary(td)) {
        td->type = MQC_TOPOLOGY_RS_NO_PRIMARY;
        mark_possible_primary(td, &s->sd, ch);
    }
}

/* The spec's TopologyType table, for s's new description. */
static void run_table(mqc_sdam_desc_t *td, mqc_sdam_server_t *s, mqc_sdam_changes_t *ch)
{
    mqc_server_type_t st = s->sd.type;
    bool member = st == MQC_SERVER_RS_SECONDARY || st == MQC_SERVER_RS_ARBITER || st == MQC_SERVER_RS_OTHER;
    switch (td->type) {
    case MQC_TOPOLOGY_SINGLE:
    case MQC_TOPOLOGY_LOAD_BALANCED:
        return;
    case MQC_TOPOLOGY_UNKNOWN:
        if (st == MQC_SERVER_STANDALONE) {
            if (td->n_seeds == 1) td->type = MQC_TOPOLOGY_SINGLE;
            else remove_server(td, s, ch);
        } else if (st == MQC_SERVER_MONGOS) td->type = MQC_TOPOLOGY_SHARDED;
        else if (st == MQC_SERVER_RS_PRIMARY) {
            td->type = MQC_TOPOLOGY_RS_WITH_PRIMARY;
            update_rs_from_primary(td, s, ch);
        } else if (member) {
            td->type = MQC_TOPOLOGY_RS_NO_PRIMARY;
            update_rs_without_primary(td, s, ch);
        }
        return;
    case MQC_TOPOLOGY_SHARDED:
        if (st != MQC_SERVER_UNKNOWN && st != MQC_SERVER_MONGOS && st != MQC_SERVER_POSSIBLE_PRIMARY)
            remove_server(td, s, ch);
        return;
    case MQC_TOPOLOGY_RS_NO_PRIMARY:
    case MQC_TOPOLOGY_RS_WITH_PRIMARY: {
        bool with = td->type == MQC_TOPOLOGY_RS_WITH_PRIMARY;
        if (st == MQC_SERVER_STANDALONE || st == MQC_SERVER_MONGOS) {
            remove_server(td, s, ch);
            if (with) check_if_has_primary(td);
        } else if (st == MQC_SERVER_RS_PRIMARY) {
            td->type = MQC_TOPOLOGY_RS_WITH_PRIMARY;
            update_rs_from_primary(td, s, ch);
        } else if (member) {
            if (with) update_rs_with_primary_from_member(td, s, ch);
            else update_rs_without_primary(td, s, ch);
        } else if (with) check_if_has_primary(td); /* Unknown, PossiblePrimary, RSGhost */
        return;
    }
    }
}

static void recompute(mqc_sdam_desc_t *td)
{
    td->compatible = true;
    td->compatibility_error[0] = 0;
    bool any_data = false, null_lstm = false;
    int64_t lstm = -1;
    for (size_t i = 0; i < td->n_servers; i++) {
        const mqc_sd_t *sd = &td->servers[i]->sd;
        if (sd->type == MQC_SERVER_UNKNOWN || sd->type == MQC_SERVER_POSSIBLE_PRIMARY ||
            sd->type == MQC_SERVER_LOAD_BALANCER)
            continue;
        if (td->compatible && sd->min_wire_version > MQC_WIRE_VERSION_MAX) {
            td->compatible = false;
            snprintf(td->compatibility_error, sizeof td->compatibility_error,
                     "Server at %s requires wire version %d, but this version of mqc only supports up to %d.",
                     sd->address, sd->min_wire_version, MQC_WIRE_VERSION_MAX);
        } else if (td->compatible && sd->max_wire_version < MQC_WIRE_VERSION_MIN) {
            td->compatible = false;
            snprintf(td->compatibility_error, sizeof td->compatibility_error,
                     "Server at %s reports wire version %d, but this version of mqc requires at least %d "
                     "(MongoDB 3.6).",
                     sd->address, sd->max_wire_version, MQC_WIRE_VERSION_MIN);
        }
        if (!mqc_server_type_is_data_bearing(sd->type)) continue;
        any_data = true;
        if (sd->session_timeout_minutes < 0) null_lstm = true;
        else if (lstm < 0 || sd->session_timeout_minutes < lstm) lstm = sd->session_timeout_minutes;
    }
    td->session_timeout_minutes = any_data && !null_lstm ? lstm : -1;
}

void mqc_sdam_recompute(mqc_sdam_desc_t *td) { recompute(td); }

/* Snapshot of what TOPOLOGY_CHANGED and PRIMARY_CHANGED compare. */
typedef struct {
    mqc_sdam_topo_type_t type;
    char primary[MQC_SDAM_ADDR_MAX];
} snapshot_t;

static void snap(const mqc_sdam_desc_t *td, snapshot_t *sn)
{
    const mqc_sdam_server_t *p = mqc_sdam_primary(td);
    sn->type = td->type;
    snprintf(sn->primary, sizeof sn->primary, "%s", p ? p->sd.address : "");
}

static void finish(mqc_sdam_desc_t *td, const snapshot_t *before, mqc_sdam_changes_t *ch)
{
    snapshot_t after;
    recompute(td);
    snap(td, &after);
    if (after.type != before->type) {
        mqc_sdam_event_t *e = push_event(ch, MQC_SDAM_TOPOLOGY_CHANGED, NULL);
        if (e) {
            e->old_topology = before->type;
            e->new_topology = after.type;
        }
    }
    if (strcmp(after.primary, before->primary)) {
        mqc_sdam_event_t *e = push_event(ch, MQC_SDAM_PRIMARY_CHANGED, mqc_sdam_find(td, after.primary));
        if (e) {
            snprintf(e->address, sizeof e->address, "%s", after.primary);
            snprintf(e->previous, sizeof e->previous, "%s", before->primary);
        }
    }
}

/* Replaces s's description and runs the table, without the staleness check. */
static void apply(mqc_sdam_desc_t *td, mqc_sdam_server_t *s, const mqc_sd_t *sd, mqc_sdam_changes_t *ch)
{
    mqc_sd_t in;
    mqc_sd_copy(&in, sd);
    /* With a set name given for a direct connection, a member of another set (or none) is of
     * no use: it stays Unknown. */
    if (td->type == MQC_TOPOLOGY_SINGLE && td->set_name && in.type != MQC_SERVER_UNKNOWN &&
        !str_eq_null(in.set_name, td->set_name)) {
        char msg[MQC_SDAM_ERROR_MAX];
        snprintf(msg, sizeof msg, "replica set name \"%s\" does not match \"%s\"",
                 in.set_name ? in.set_name : "", td->set_name);
        mqc_sd_cleanup(&in);
        mqc_sd_init_unknown(&in, s->sd.address, msg);
    }
    /* A load balancer stays a LoadBalancer whatever happens to a connection. */
    if (td->type == MQC_TOPOLOGY_LOAD_BALANCED) in.type = MQC_SERVER_LOAD_BALANCER;
    /* in's RTT is one sample: averaged into the server's while it stays known, dropped when it
     * turns Unknown (the spec's roundTripTime rules). */
    if (in.type == MQC_SERVER_UNKNOWN) in.has_rtt = false;
    else if (in.has_rtt && s->sd.has_rtt && s->sd.type != MQC_SERVER_UNKNOWN)
        in.rtt_ms = mqc_rtt_update(true, s->sd.rtt_ms, in.rtt_ms);
    else if (!in.has_rtt && s->sd.has_rtt && s->sd.type != MQC_SERVER_UNKNOWN) {
        in.has_rtt = true;
        in.rtt_ms = s->sd.rtt_ms;
    }
    replace_sd(s, &in, ch);
    if (mqc_server_type_is_data_bearing(s->sd.type) ||
        (s->sd.type != MQC_SERVER_UNKNOWN && td->type == MQC_TOPOLOGY_SINGLE))
        push_event(ch, MQC_SDAM_POOL_READY, s);
    run_table(td, s, ch);
    mqc_sd_cleanup(&in);
}

bool mqc_sdam_apply_sd(mqc_sdam_desc_t *td, const mqc_sd_t *sd, mqc_sdam_changes_t *ch)
{
    if (ch) ch->n = 0;
    mqc_sdam_server_t *s = mqc_sdam_find(td, sd->address);
    /* Removed while its check was in flight, or an answer older than what we know. */
    if (!s || mqc_sdam_topo_version_compare(&s->sd.topology_version, &sd->topology_version) > 0) return false;
    snapshot_t before;
    snap(td, &before);
    apply(td, s, sd, ch);
    finish(td, &before, ch);
    return true;
}

/* ---- application errors ----------------------------------------------------------------- */

static mqc_sdam_state_error_t classify(int32_t code, bool has_code, const char *msg)
{
    if (has_code && code != 0) {
        if (code == 11600 || code == 91) return MQC_SDAM_STATE_SHUTDOWN;
        if (mqc_error_code_is_recovering(code)) return MQC_SDAM_STATE_RECOVERING;
        if (mqc_error_code_is_not_primary(code)) return MQC_SDAM_STATE_NOT_PRIMARY;
        return MQC_SDAM_STATE_NONE;
    }
    /* Only without a code: the messages of servers before 3.6. */
    if (!msg) return MQC_SDAM_STATE_NONE;
    if (strstr(msg, "node is recovering") || strstr(msg, "not master or secondary"))
        return MQC_SDAM_STATE_RECOVERING;
    if (strstr(msg, "not master")) return MQC_SDAM_STATE_NOT_PRIMARY;
    return MQC_SDAM_STATE_NONE;
}

static mqc_sdam_state_error_t classify_doc(const bson_iter_t *doc_it, const bson_t *doc, int32_t *code_out)
{
    bson_iter_t it;
    int32_t code = 0;
    bool has_code = false;
    const char *msg = NULL;
    if (doc_it) {
        if (!bson_iter_recurse(doc_it, &it)) return MQC_SDAM_STATE_NONE;
    } else if (!bson_iter_init(&it, doc))
        return MQC_SDAM_STATE_NONE;
    while (bson_iter_next(&it)) {
        if (!strcmp(bson_iter_key(&it), "code") && BSON_ITER_HOLDS_NUMBER(&it)) {
            code = (int32_t) bson_iter_as_int64(&it);
            has_code = true;
        } else if (!strcmp(bson_iter_key(&it), "errmsg") && BSON_ITER_HOLDS_UTF8(&it))
            msg = bson_iter_utf8(&it, NULL);
    }
    mqc_sdam_state_error_t st = classify(code, has_code, msg);
    if (st != MQC_SDAM_STATE_NONE && code_out) *code_out = code;
    return st;
}

mqc_sdam_state_error_t mqc_sdam_classify_reply(const bson_t *reply, int32_t *code_out)
{
    bson_iter_t it;
    if (code_out) *code_out = 0;
    if (!reply) return MQC_SDAM_STATE_NONE;
    bool ok = bson_iter_init_find(&it, reply, "ok") && bson_iter_as_double(&it) == 1.0;
    if (!ok) return classify_doc(NULL, reply, code_out);
    /* An acknowledged write may still carry a writeConcernError; writeErrors never count. */
    if (bson_iter_init_find(&it, reply, "writeConcernError") && BSON_ITER_HOLDS_DOCUMENT(&it))
        return classify_doc(&it, NULL, code_out);
    return MQC_SDAM_STATE_NONE;
}

static const char *reply_message(const bson_t *reply, char *buf, size_t size)
{
    bson_iter_t it;
    const char *msg = "command failed";
    if (reply && bson_iter_init_find(&it, reply, "errmsg") && BSON_ITER_HOLDS_UTF8(&it))
        msg = bson_iter_utf8(&it, NULL);
    else if (reply && bson_iter_init_find(&it, reply, "writeConcernError") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_iter_t ch;
        if (bson_iter_recurse(&it, &ch) && bson_iter_find(&ch, "errmsg") && BSON_ITER_HOLDS_UTF8(&ch))
            msg = bson_iter_utf8(&ch, NULL);
    }
    snprintf(buf, size, "%s", msg);
    return buf;
}

void mqc_sdam_handle_error(mqc_sdam_desc_t *td, const mqc_sdam_app_error_t *err,
                               mqc_sdam_error_result_t *result, mqc_sdam_changes_t *ch)
{
    mqc_sdam_error_result_t r = {0};
    if (ch) ch->n = 0;
    mqc_sdam_server_t *s = mqc_sdam_find(td, err->address);
    /* An error from a connection older than the last clear says nothing new. */
    if (!s || err->generation < s->generation) {
        r.stale = true;
        goto done;
    }
    bool lb = td->type == MQC_TOPOLOGY_LOAD_BALANCED;
    snapshot_t before;
    snap(td, &before);
    char msg[MQC_SDAM_ERROR_MAX];

    if (err->kind == MQC_SDAM_ERR_COMMAND) {
        mqc_sdam_state_error_t st = mqc_sdam_classify_reply(err->reply, NULL);
        int32_t wire = err->max_wire_version ? err->max_wire_version : s->sd.max_wire_version;
        if (st != MQC_SDAM_STATE_NONE) {
            mqc_sdam_topo_version_t tv;
            mqc_sdam_topo_version_from_doc(err->reply, &tv);
            if (mqc_sdam_topo_version_compare(&s->sd.topology_version, &tv) >= 0) {
                r.stale = true;
                goto done;
            }
            if (!lb) {
                mqc_sd_t u;
                mqc_sd_init_unknown(&u, s->sd.address, reply_message(err->reply, msg, sizeof msg));
                u.topology_version = tv;
                apply(td, s, &u, ch);
                mqc_sd_cleanup(&u);
                r.marked_unknown = true;
            }
            /* From 4.2 on, only a shutting-down server drops its connections. */
            if (st == MQC_SDAM_STATE_SHUTDOWN || wire < MQC_WIRE_VERSION_42) {
                clear_pool(s, ch);
                r.clear_pool = true;
            }
            push_event(ch, MQC_SDAM_REQUEST_CHECK, s);
            r.request_check = true;
            goto finish;
        }
        /* Other command errors matter only while establishing a connection (auth failed, say),
         * and never when the server says it is overloaded. */
        if (err->when == MQC_SDAM_WHEN_ESTABLISHED || err->overloaded) goto finish;
        reply_message(err->reply, msg, sizeof msg);
    } else {
        if (err->overloaded) goto finish;
        /* A failed connect or hello leaves the description to the monitor (the spec's
         * "connection establishment and hello" rule); a timeout on a ready connection may just be
         * a slow operation. Network errors on a ready connection, and any during authentication,
         * mean the server is gone. */
        bool gone = err->when == MQC_SDAM_WHEN_AUTH ||
                    (err->when == MQC_SDAM_WHEN_ESTABLISHED && err->kind == MQC_SDAM_ERR_NETWORK);
        if (!gone) goto finish;
        snprintf(msg, sizeof msg, "%s", err->message ? err->message
                                        : err->kind == MQC_SDAM_ERR_TIMEOUT ? "network timeout"
                                                                             : "network error");
    }
    if (!lb) {
        mqc_sd_t u;
        mqc_sd_init_unknown(&u, s->sd.address, msg);
        apply(td, s, &u, ch);
        mqc_sd_cleanup(&u);
        r.marked_unknown = true;
    }
    clear_pool(s, ch);
    r.clear_pool = true;
    push_event(ch, MQC_SDAM_CANCEL_CHECK, s);
    r.cancel_check = true;
finish:
    finish(td, &before, ch);
done:
    if (result) *result = r;
}

void mqc_sdam_close(mqc_sdam_desc_t *td, mqc_sdam_changes_t *ch)
{
    if (ch) ch->n = 0;
    snapshot_t before;
    snap(td, &before);
    while (td->n_servers) remove_server(td, td->servers[td->n_servers - 1], ch);
    td->type = MQC_TOPOLOGY_UNKNOWN;
    finish(td, &before, ch);
}
