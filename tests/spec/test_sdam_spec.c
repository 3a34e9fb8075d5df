/* Server Discovery and Monitoring spec tests (server-discovery-and-monitoring/tests/): each JSON
 * file is a series of phases feeding hello replies and application errors to a topology made
 * from the file's URI, then comparing the topology with the phase's outcome.
 *
 * One test per file, "/spec/sdam/<folder>/<file>". Folders of this format: single, rs, sharded,
 * errors, load-balanced. Others (monitoring: SDAM event lists; unified, integration,
 * manual-unified: the unified format against a live server) are registered as one skipped test
 * each, with the reason. */
#include <mongoc/mongoc.h>
#include <stdlib.h>

#include "common.h"
#include "sdam.h"
#include "../tf.h"
#include "spec.h"

/* ---- building the topology from the URI --------------------------------------------------- */

static bool topology_from_uri(const char *uri_str, mqc_sdam_desc_t *td, spec_outcome_t *o)
{
    bson_error_t berr;
    mqc_error_t err;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_str, &berr);
    if (!uri) return spec_set(o, 1, "uri %s: %s", uri_str, berr.message);
    const char *seeds[64];
    size_t n = 0;
    for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(uri); h && n < 64; h = h->next)
        seeds[n++] = h->host_and_port;
    const char *set_name = mongoc_uri_get_replica_set(uri);
    bool direct_set = mongoc_uri_has_option(uri, MONGOC_URI_DIRECTCONNECTION);
    bool direct = mongoc_uri_get_option_as_bool(uri, MONGOC_URI_DIRECTCONNECTION, false);
    bool lb = mongoc_uri_get_option_as_bool(uri, MONGOC_URI_LOADBALANCED, false);
    mqc_sdam_topo_type_t type;
    bool ok = mqc_sdam_initial_type(n, direct_set, direct, set_name != NULL, lb, &type, &err) &&
              mqc_sdam_desc_init(td, type, set_name, seeds, n, NULL, &err);
    int32_t hb = mongoc_uri_get_option_as_int32(uri, MONGOC_URI_HEARTBEATFREQUENCYMS, 10000);
    mongoc_uri_destroy(uri);
    if (!ok) return spec_set(o, 1, "uri %s: %s", uri_str, err.message);
    td->heartbeat_frequency_ms = hb;
    return true;
}

/* ---- feeding a phase ---------------------------------------------------------------------- */

static bool apply_responses(mqc_sdam_desc_t *td, const bson_t *responses, int64_t *clock_ms, spec_outcome_t *o)
{
    bson_iter_t it;
    bson_iter_init(&it, responses);
    while (bson_iter_next(&it)) {
        bson_t pair, reply;
        bson_iter_t p;
        if (!spec_sub_iter(&it, &pair) || !bson_iter_init(&p, &pair) || !bson_iter_next(&p) ||
            !BSON_ITER_HOLDS_UTF8(&p))
            return spec_set(o, 1, "malformed response entry");
        const char *address = bson_iter_utf8(&p, NULL);
        if (!bson_iter_next(&p) || !spec_sub_iter(&p, &reply)) return spec_set(o, 1, "response without a reply");
        mqc_sd_t sd;
        *clock_ms += 1;
        /* The empty reply stands for a network error during the check. */
        if (bson_empty(&reply)) mqc_sd_init_unknown(&sd, address, "network error");
        else mqc_sd_init_from_hello(&sd, address, &reply, -1, *clock_ms);
        mqc_sdam_apply_sd(td, &sd, NULL);
        mqc_sd_cleanup(&sd);
    }
    return true;
}

static bool apply_errors(mqc_sdam_desc_t *td, const bson_t *errors, spec_outcome_t *o)
{
    bson_iter_t it;
    bson_iter_init(&it, errors);
    while (bson_iter_next(&it)) {
        bson_t e, response;
        bson_iter_t f;
        if (!spec_sub_iter(&it, &e)) return spec_set(o, 1, "malformed applicationError");
        mqc_sdam_app_error_t ae = {0};
        ae.address = spec_str(&e, "address");
        const char *when = spec_str(&e, "when"), *type = spec_str(&e, "type");
        if (!ae.address || !when || !type) return spec_set(o, 1, "applicationError lacks address/when/type");
        if (!strcmp(when, "beforeHandshakeCompletes")) ae.when = MQC_SDAM_WHEN_HANDSHAKE;
        else if (!strcmp(when, "afterHandshakeCompletes")) ae.when = MQC_SDAM_WHEN_ESTABLISHED;
        else return spec_set(o, 2, "applicationError when \"%s\" is not a phase mqc models", when);
        if (!strcmp(type, "command")) ae.kind = MQC_SDAM_ERR_COMMAND;
        else if (!strcmp(type, "network")) ae.kind = MQC_SDAM_ERR_NETWORK;
        else if (!strcmp(type, "timeout")) ae.kind = MQC_SDAM_ERR_TIMEOUT;
        else return spec_set(o, 2, "applicationError type \"%s\" is not one mqc models", type);
        const mqc_sdam_server_t *s = mqc_sdam_find(td, ae.address);
        ae.generation = s ? s->generation : 0;
        if (bson_iter_init_find(&f, &e, "generation") && BSON_ITER_HOLDS_NUMBER(&f))
            ae.generation = (uint32_t) bson_iter_as_int64(&f);
        if (bson_iter_init_find(&f, &e, "maxWireVersion") && BSON_ITER_HOLDS_NUMBER(&f))
            ae.max_wire_version = (int32_t) bson_iter_as_int64(&f);
        if (ae.kind == MQC_SDAM_ERR_COMMAND) {
            if (!spec_sub(&e, "response", &response)) return spec_set(o, 1, "command error without response");
            ae.reply = &response;
            bson_iter_t l, lab;
            if (bson_iter_init_find(&l, &response, "errorLabels") && bson_iter_recurse(&l, &lab))
                while (bson_iter_next(&lab))
                    if (BSON_ITER_HOLDS_UTF8(&lab) && !strcmp(bson_iter_utf8(&lab, NULL), "SystemOverloadedError"))
                        ae.overloaded = true;
        }
        mqc_sdam_error_result_t r;
        mqc_sdam_handle_error(td, &ae, &r, NULL);
    }
    return true;
}

/* ---- comparing with the outcome ----------------------------------------------------------- */

static bool check_oid(const char *what, bson_iter_t *it, bool has, const bson_oid_t *oid, spec_outcome_t *o)
{
    char a[25] = "null", b[25] = "null";
    if (has) bson_oid_to_string(oid, b);
    if (BSON_ITER_HOLDS_NULL(it)) {
        if (has) return spec_set(o, 1, "%s: expected null, got %s", what, b);
        return true;
    }
    if (!BSON_ITER_HOLDS_OID(it)) return spec_set(o, 1, "%s: expected value is not an ObjectId", what);
    bson_oid_to_string(bson_iter_oid(it), a);
    if (!has || !bson_oid_equal(bson_iter_oid(it), oid)) return spec_set(o, 1, "%s: expected %s, got %s", what, a, b);
    return true;
}

static bool check_int(const char *what, bson_iter_t *it, bool has, int64_t v, spec_outcome_t *o)
{
    if (BSON_ITER_HOLDS_NULL(it)) {
        if (has) return spec_set(o, 1, "%s: expected null, got %" PRId64, what, v);
        return true;
    }
    if (!BSON_ITER_HOLDS_NUMBER(it)) return spec_set(o, 1, "%s: expected value is not a number", what);
    if (!has || bson_iter_as_int64(it) != v)
        return spec_set(o, 1, "%s: expected %" PRId64 ", got %s%" PRId64, what, bson_iter_as_int64(it),
                      has ? "" : "null/", has ? v : 0);
    return true;
}

static bool check_str(const char *what, bson_iter_t *it, const char *v, spec_outcome_t *o)
{
    if (BSON_ITER_HOLDS_NULL(it)) {
        if (v) return spec_set(o, 1, "%s: expected null, got \"%s\"", what, v);
        return true;
    }
    const char *want = BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, NULL) : NULL;
    if (!want || !v || strcmp(want, v))
        return spec_set(o, 1, "%s: expected \"%s\", got \"%s\"", what, want ? want : "?", v ? v : "null");
    return true;
}

static bool check_server(const mqc_sdam_server_t *s, const bson_t *want, spec_outcome_t *o)
{
    bson_iter_t it;
    char what[MQC_SDAM_ADDR_MAX + 40];
    const mqc_sd_t *sd = &s->sd;
    bson_iter_init(&it, want);
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        snprintf(what, sizeof what, "%s %s", sd->address, k);
        if (!strcmp(k, "type")) {
            const char *t = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
            mqc_server_type_t st;
            if (!mqc_server_type_from_name(t, &st)) return spec_set(o, 1, "%s: unknown type \"%s\"", what, t);
            if (st != sd->type)
                return spec_set(o, 1, "%s: expected %s, got %s", what, t, mqc_server_type_name(sd->type));
        } else if (!strcmp(k, "setName")) {
            if (!check_str(what, &it, sd->set_name, o)) return false;
        } else if (!strcmp(k, "setVersion")) {
            if (!check_int(what, &it, sd->has_set_version, sd->set_version, o)) return false;
        } else if (!strcmp(k, "electionId")) {
            if (!check_oid(what, &it, sd->has_election_id, &sd->election_id, o)) return false;
        } else if (!strcmp(k, "logicalSessionTimeoutMinutes")) {
            if (!check_int(what, &it, sd->session_timeout_minutes >= 0, sd->session_timeout_minutes, o))
                return false;
        } else if (!strcmp(k, "minWireVersion")) {
            if (!check_int(what, &it, true, sd->min_wire_version, o)) return false;
        } else if (!strcmp(k, "maxWireVersion")) {
            if (!check_int(what, &it, true, sd->max_wire_version, o)) return false;
        } else if (!strcmp(k, "topologyVersion")) {
            bson_t tvdoc = BSON_INITIALIZER;
            mqc_sdam_topo_version_t tv = {0};
            if (!BSON_ITER_HOLDS_NULL(&it)) {
                bson_t sub;
                if (!spec_sub_iter(&it, &sub)) return spec_set(o, 1, "%s: not a document", what);
                BSON_APPEND_DOCUMENT(&tvdoc, "topologyVersion", &sub);
                mqc_sdam_topo_version_from_doc(&tvdoc, &tv);
            }
            bson_destroy(&tvdoc);
            if (tv.set != sd->topology_version.set ||
                (tv.set && mqc_sdam_topo_version_compare(&tv, &sd->topology_version) != 0))
                return spec_set(o, 1, "%s: differs (expected %s, got %s)", what, tv.set ? "set" : "null",
                              sd->topology_version.set ? "set" : "null");
        } else if (!strcmp(k, "pool")) {
            bson_t pool;
            bson_iter_t g;
            if (spec_sub_iter(&it, &pool) && bson_iter_init_find(&g, &pool, "generation") &&
                !check_int(what, &g, true, s->generation, o))
                return false;
        } else if (!strcmp(k, "error")) {
            const char *sub = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
            if (!strstr(sd->error, sub))
                return spec_set(o, 1, "%s: expected to contain \"%s\", got \"%s\"", what, sub, sd->error);
        }
        /* other fields: not described by mqc, tolerated */
    }
    return true;
}

static bool check_outcome(const mqc_sdam_desc_t *td, const bson_t *want, spec_outcome_t *o)
{
    bson_iter_t it;
    bson_iter_init(&it, want);
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "topologyType")) {
            const char *t = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
            mqc_sdam_topo_type_t tt;
            if (!mqc_sdam_topo_type_from_name(t, &tt)) return spec_set(o, 1, "unknown topologyType \"%s\"", t);
            if (tt != td->type)
                return spec_set(o, 1, "topologyType: expected %s, got %s", t, mqc_sdam_topo_type_name(td->type));
        } else if (!strcmp(k, "setName")) {
            if (!check_str("setName", &it, td->set_name, o)) return false;
        } else if (!strcmp(k, "logicalSessionTimeoutMinutes")) {
            if (!check_int(k, &it, td->session_timeout_minutes >= 0, td->session_timeout_minutes, o)) return false;
        } else if (!strcmp(k, "maxSetVersion")) {
            if (!check_int(k, &it, td->has_max_set_version, td->max_set_version, o)) return false;
        } else if (!strcmp(k, "maxElectionId")) {
            if (!check_oid(k, &it, td->has_max_election_id, &td->max_election_id, o)) return false;
        } else if (!strcmp(k, "compatible")) {
            if (bson_iter_as_bool(&it) != td->compatible)
                return spec_set(o, 1, "compatible: expected %d, got %d", bson_iter_as_bool(&it), td->compatible);
        } else if (!strcmp(k, "servers")) {
            bson_t servers, sdoc;
            bson_iter_t s;
            if (!spec_sub_iter(&it, &servers)) return spec_set(o, 1, "servers is not a document");
            if (bson_count_keys(&servers) != td->n_servers) {
                char have[1024] = "";
                for (size_t i = 0; i < td->n_servers; i++)
                    snprintf(have + strlen(have), sizeof have - strlen(have), " %s(%s)",
                             td->servers[i]->sd.address, mqc_server_type_name(td->servers[i]->sd.type));
                return spec_set(o, 1, "servers: expected %u, got %zu:%s", bson_count_keys(&servers), td->n_servers,
                              have);
            }
            bson_iter_init(&s, &servers);
            while (bson_iter_next(&s)) {
                const mqc_sdam_server_t *srv = mqc_sdam_find(td, bson_iter_key(&s));
                if (!srv) return spec_set(o, 1, "server %s missing", bson_iter_key(&s));
                if (!spec_sub_iter(&s, &sdoc) || !check_server(srv, &sdoc, o)) return false;
            }
        } else if (!strcmp(k, "events")) {
            return spec_set(o, 2, "SDAM monitoring events are not compared by this runner (outcome \"events\")");
        }
    }
    return true;
}

static void run_case(const bson_t *file, spec_outcome_t *o)
{
    bson_t doc;
    bson_iter_t it;
    mqc_sdam_desc_t td;
    int64_t clock_ms = 0;
    if (!bson_init_static(&doc, bson_get_data(file), file->len)) return;
    const char *uri = spec_str(&doc, "uri");
    if (!uri) {
        spec_set(o, 1, "no uri");
        goto out;
    }
    if (!topology_from_uri(uri, &td, o)) goto out;
    if (bson_iter_init_find(&it, &doc, "phases")) {
        bson_iter_t ph;
        int n = 0;
        bson_iter_recurse(&it, &ph);
        while (bson_iter_next(&ph) && !o->rc) {
            bson_t phase, sub;
            n++;
            if (!spec_sub_iter(&ph, &phase)) {
                spec_set(o, 1, "phase %d is not a document", n);
                break;
            }
            if (spec_sub(&phase, "responses", &sub)) apply_responses(&td, &sub, &clock_ms, o);
            if (!o->rc && spec_sub(&phase, "applicationErrors", &sub)) apply_errors(&td, &sub, o);
            if (!o->rc && spec_sub(&phase, "outcome", &sub)) check_outcome(&td, &sub, o);
            if (o->rc == 1) {
                char m[sizeof o->msg + 600];
                const char *d = spec_str(&phase, "description");
                snprintf(m, sizeof m, "phase %d (%.500s): %s", n, d ? d : "", o->msg);
                memcpy(o->msg, m, sizeof o->msg - 1);
                o->msg[sizeof o->msg - 1] = 0;
            }
        }
    }
    mqc_sdam_desc_cleanup(&td);
out:
    bson_destroy(&doc);
}

static void sdam_spec_case(void)
{
    spec_outcome_t o = {0};
    run_case(spec_case()->doc, &o);
    spec_conclude(&o);
}

TF_SUITE_INIT(sdam_spec_init)
{
    static const char *const runnable[] = {"single", "rs", "sharded", "errors", "load-balanced"};
    static const char tests[] = "server-discovery-and-monitoring/tests";
    const char *root = spec_root();
    if (!root) return;
    size_t n;
    char **folders = spec_subdirs(root, tests, &n);
    if (!folders) spec_register_skip("/spec/sdam", "no server-discovery-and-monitoring/tests folder");
    for (size_t i = 0; i < n; i++) {
        char rel[1024], area[512];
        bool run = false;
        for (size_t r = 0; r < sizeof runnable / sizeof runnable[0]; r++) run |= !strcmp(folders[i], runnable[r]);
        snprintf(rel, sizeof rel, "%s/%s", tests, folders[i]);
        snprintf(area, sizeof area, "sdam/%s", folders[i]);
        if (run) {
            spec_register_folder(root, rel, area, NULL, sdam_spec_case);
        } else {
            char name[600];
            snprintf(name, sizeof name, "/spec/%s", area);
            spec_register_skip(name, !strcmp(folders[i], "monitoring")
                                         ? "SDAM monitoring-event tests: this runner compares topology outcomes, not event lists"
                                         : "unified test format: needs a live server and the unified runner, not these unit tests");
        }
        free(folders[i]);
    }
    free(folders);
}
