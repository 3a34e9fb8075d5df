/* Server Discovery and Monitoring spec tests (server-discovery-and-monitoring/tests/): each JSON
 * file is a series of phases feeding hello replies and application errors to a topology made
 * from the file's URI, then comparing the topology with the phase's outcome.
 *
 * One test per file, "/spec/sdam/<folder>/<file>". Folders of this format: single, rs, sharded,
 * errors, load-balanced. Others (monitoring: SDAM event lists; unified, integration,
 * manual-unified: the unified format against a live server) are registered as one skipped test
 * each, with the reason. */
#include <dirent.h>
#include <mongoc/mongoc.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common.h"
#include "sdam.h"
#include "../tf.h"

typedef struct {
    char *path;
    char *skip;    /* non-NULL: skip with this reason */
} sdam_case_t;

static void case_free(void *p)
{
    sdam_case_t *c = p;
    free(c->path);
    free(c->skip);
    free(c);
}

/* The result of a run: 0 pass, 1 fail, 2 skip, with a message. */
typedef struct {
    int rc;
    char msg[1024];
} outcome_t;

__attribute__((format(printf, 3, 4))) static bool set_rc(outcome_t *o, int rc, const char *fmt, ...)
{
    va_list ap;
    if (o->rc) return false; /* keep the first */
    o->rc = rc;
    va_start(ap, fmt);
    vsnprintf(o->msg, sizeof o->msg, fmt, ap);
    va_end(ap);
    return false;
}

static bool load_json(const char *path, bson_t *doc, outcome_t *o)
{
    bson_error_t err;
    bson_json_reader_t *r = bson_json_reader_new_from_file(path, &err);
    if (!r) return set_rc(o, 1, "%s: %s", path, err.message);
    bson_init(doc);
    int rc = bson_json_reader_read(r, doc, &err);
    bson_json_reader_destroy(r);
    if (rc <= 0) {
        bson_destroy(doc);
        return set_rc(o, 1, "%s: %s", path, rc < 0 ? err.message : "empty file");
    }
    return true;
}

static const char *doc_utf8(const bson_t *d, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, d, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

/* A sub-document or array as a static bson_t; false when absent or not one. */
static bool doc_sub(const bson_iter_t *it, bson_t *out)
{
    uint32_t len;
    const uint8_t *data;
    if (BSON_ITER_HOLDS_DOCUMENT(it)) bson_iter_document(it, &len, &data);
    else if (BSON_ITER_HOLDS_ARRAY(it)) bson_iter_array(it, &len, &data);
    else return false;
    return bson_init_static(out, data, len);
}

static bool find_sub(const bson_t *d, const char *key, bson_t *out)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, d, key) && doc_sub(&it, out);
}

/* ---- building the topology from the URI --------------------------------------------------- */

static bool topology_from_uri(const char *uri_str, mqc_topology_desc_t *td, outcome_t *o)
{
    bson_error_t berr;
    mqc_error_t err;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_str, &berr);
    if (!uri) return set_rc(o, 1, "uri %s: %s", uri_str, berr.message);
    const char *seeds[64];
    size_t n = 0;
    for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(uri); h && n < 64; h = h->next)
        seeds[n++] = h->host_and_port;
    const char *set_name = mongoc_uri_get_replica_set(uri);
    bool direct_set = mongoc_uri_has_option(uri, MONGOC_URI_DIRECTCONNECTION);
    bool direct = mongoc_uri_get_option_as_bool(uri, MONGOC_URI_DIRECTCONNECTION, false);
    bool lb = mongoc_uri_get_option_as_bool(uri, MONGOC_URI_LOADBALANCED, false);
    mqc_topology_type_t type;
    bool ok = mqc_topology_initial_type(n, direct_set, direct, set_name != NULL, lb, &type, &err) &&
              mqc_topology_desc_init(td, type, set_name, seeds, n, NULL, &err);
    int32_t hb = mongoc_uri_get_option_as_int32(uri, MONGOC_URI_HEARTBEATFREQUENCYMS, 10000);
    mongoc_uri_destroy(uri);
    if (!ok) return set_rc(o, 1, "uri %s: %s", uri_str, err.message);
    td->heartbeat_frequency_ms = hb;
    return true;
}

/* ---- feeding a phase ---------------------------------------------------------------------- */

static bool apply_responses(mqc_topology_desc_t *td, const bson_t *responses, int64_t *clock_ms, outcome_t *o)
{
    bson_iter_t it;
    bson_iter_init(&it, responses);
    while (bson_iter_next(&it)) {
        bson_t pair, reply;
        bson_iter_t p;
        if (!doc_sub(&it, &pair) || !bson_iter_init(&p, &pair) || !bson_iter_next(&p) ||
            !BSON_ITER_HOLDS_UTF8(&p))
            return set_rc(o, 1, "malformed response entry");
        const char *address = bson_iter_utf8(&p, NULL);
        if (!bson_iter_next(&p) || !doc_sub(&p, &reply)) return set_rc(o, 1, "response without a reply");
        mqc_sd_t sd;
        *clock_ms += 1;
        /* The empty reply stands for a network error during the check. */
        if (bson_empty(&reply)) mqc_sd_init_unknown(&sd, address, "network error");
        else mqc_sd_init_from_hello(&sd, address, &reply, -1, *clock_ms);
        mqc_topology_apply_sd(td, &sd, NULL);
        mqc_sd_cleanup(&sd);
    }
    return true;
}

static bool apply_errors(mqc_topology_desc_t *td, const bson_t *errors, outcome_t *o)
{
    bson_iter_t it;
    bson_iter_init(&it, errors);
    while (bson_iter_next(&it)) {
        bson_t e, response;
        bson_iter_t f;
        if (!doc_sub(&it, &e)) return set_rc(o, 1, "malformed applicationError");
        mqc_sdam_app_error_t ae = {0};
        ae.address = doc_utf8(&e, "address");
        const char *when = doc_utf8(&e, "when"), *type = doc_utf8(&e, "type");
        if (!ae.address || !when || !type) return set_rc(o, 1, "applicationError lacks address/when/type");
        if (!strcmp(when, "beforeHandshakeCompletes")) ae.when = MQC_SDAM_WHEN_HANDSHAKE;
        else if (!strcmp(when, "afterHandshakeCompletes")) ae.when = MQC_SDAM_WHEN_ESTABLISHED;
        else return set_rc(o, 2, "applicationError when \"%s\" is not a phase mqc models", when);
        if (!strcmp(type, "command")) ae.kind = MQC_SDAM_ERR_COMMAND;
        else if (!strcmp(type, "network")) ae.kind = MQC_SDAM_ERR_NETWORK;
        else if (!strcmp(type, "timeout")) ae.kind = MQC_SDAM_ERR_TIMEOUT;
        else return set_rc(o, 2, "applicationError type \"%s\" is not one mqc models", type);
        const mqc_sdam_server_t *s = mqc_topology_find(td, ae.address);
        ae.generation = s ? s->generation : 0;
        if (bson_iter_init_find(&f, &e, "generation") && BSON_ITER_HOLDS_NUMBER(&f))
            ae.generation = (uint32_t) bson_iter_as_int64(&f);
        if (bson_iter_init_find(&f, &e, "maxWireVersion") && BSON_ITER_HOLDS_NUMBER(&f))
            ae.max_wire_version = (int32_t) bson_iter_as_int64(&f);
        if (ae.kind == MQC_SDAM_ERR_COMMAND) {
            if (!find_sub(&e, "response", &response)) return set_rc(o, 1, "command error without response");
            ae.reply = &response;
            bson_iter_t l, lab;
            if (bson_iter_init_find(&l, &response, "errorLabels") && bson_iter_recurse(&l, &lab))
                while (bson_iter_next(&lab))
                    if (BSON_ITER_HOLDS_UTF8(&lab) && !strcmp(bson_iter_utf8(&lab, NULL), "SystemOverloadedError"))
                        ae.overloaded = true;
        }
        mqc_sdam_error_result_t r;
        mqc_topology_handle_error(td, &ae, &r, NULL);
    }
    return true;
}

/* ---- comparing with the outcome ----------------------------------------------------------- */

static bool check_oid(const char *what, bson_iter_t *it, bool has, const bson_oid_t *oid, outcome_t *o)
{
    char a[25] = "null", b[25] = "null";
    if (has) bson_oid_to_string(oid, b);
    if (BSON_ITER_HOLDS_NULL(it)) {
        if (has) return set_rc(o, 1, "%s: expected null, got %s", what, b);
        return true;
    }
    if (!BSON_ITER_HOLDS_OID(it)) return set_rc(o, 1, "%s: expected value is not an ObjectId", what);
    bson_oid_to_string(bson_iter_oid(it), a);
    if (!has || !bson_oid_equal(bson_iter_oid(it), oid)) return set_rc(o, 1, "%s: expected %s, got %s", what, a, b);
    return true;
}

static bool check_int(const char *what, bson_iter_t *it, bool has, int64_t v, outcome_t *o)
{
    if (BSON_ITER_HOLDS_NULL(it)) {
        if (has) return set_rc(o, 1, "%s: expected null, got %" PRId64, what, v);
        return true;
    }
    if (!BSON_ITER_HOLDS_NUMBER(it)) return set_rc(o, 1, "%s: expected value is not a number", what);
    if (!has || bson_iter_as_int64(it) != v)
        return set_rc(o, 1, "%s: expected %" PRId64 ", got %s%" PRId64, what, bson_iter_as_int64(it),
                      has ? "" : "null/", has ? v : 0);
    return true;
}

static bool check_str(const char *what, bson_iter_t *it, const char *v, outcome_t *o)
{
    if (BSON_ITER_HOLDS_NULL(it)) {
        if (v) return set_rc(o, 1, "%s: expected null, got \"%s\"", what, v);
        return true;
    }
    const char *want = BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, NULL) : NULL;
    if (!want || !v || strcmp(want, v))
        return set_rc(o, 1, "%s: expected \"%s\", got \"%s\"", what, want ? want : "?", v ? v : "null");
    return true;
}

static bool check_server(const mqc_sdam_server_t *s, const bson_t *want, outcome_t *o)
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
            if (!mqc_server_type_from_name(t, &st)) return set_rc(o, 1, "%s: unknown type \"%s\"", what, t);
            if (st != sd->type)
                return set_rc(o, 1, "%s: expected %s, got %s", what, t, mqc_server_type_name(sd->type));
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
            mqc_topology_version_t tv = {0};
            if (!BSON_ITER_HOLDS_NULL(&it)) {
                bson_t sub;
                if (!doc_sub(&it, &sub)) return set_rc(o, 1, "%s: not a document", what);
                BSON_APPEND_DOCUMENT(&tvdoc, "topologyVersion", &sub);
                mqc_topology_version_from_doc(&tvdoc, &tv);
            }
            bson_destroy(&tvdoc);
            if (tv.set != sd->topology_version.set ||
                (tv.set && mqc_topology_version_compare(&tv, &sd->topology_version) != 0))
                return set_rc(o, 1, "%s: differs (expected %s, got %s)", what, tv.set ? "set" : "null",
                              sd->topology_version.set ? "set" : "null");
        } else if (!strcmp(k, "pool")) {
            bson_t pool;
            bson_iter_t g;
            if (doc_sub(&it, &pool) && bson_iter_init_find(&g, &pool, "generation") &&
                !check_int(what, &g, true, s->generation, o))
                return false;
        } else if (!strcmp(k, "error")) {
            const char *sub = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
            if (!strstr(sd->error, sub))
                return set_rc(o, 1, "%s: expected to contain \"%s\", got \"%s\"", what, sub, sd->error);
        }
        /* other fields: not described by mqc, tolerated */
    }
    return true;
}

static bool check_outcome(const mqc_topology_desc_t *td, const bson_t *want, outcome_t *o)
{
    bson_iter_t it;
    bson_iter_init(&it, want);
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "topologyType")) {
            const char *t = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
            mqc_topology_type_t tt;
            if (!mqc_topology_type_from_name(t, &tt)) return set_rc(o, 1, "unknown topologyType \"%s\"", t);
            if (tt != td->type)
                return set_rc(o, 1, "topologyType: expected %s, got %s", t, mqc_topology_type_name(td->type));
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
                return set_rc(o, 1, "compatible: expected %d, got %d", bson_iter_as_bool(&it), td->compatible);
        } else if (!strcmp(k, "servers")) {
            bson_t servers, sdoc;
            bson_iter_t s;
            if (!doc_sub(&it, &servers)) return set_rc(o, 1, "servers is not a document");
            if (bson_count_keys(&servers) != td->n_servers) {
                char have[1024] = "";
                for (size_t i = 0; i < td->n_servers; i++)
                    snprintf(have + strlen(have), sizeof have - strlen(have), " %s(%s)",
                             td->servers[i]->sd.address, mqc_server_type_name(td->servers[i]->sd.type));
                return set_rc(o, 1, "servers: expected %u, got %zu:%s", bson_count_keys(&servers), td->n_servers,
                              have);
            }
            bson_iter_init(&s, &servers);
            while (bson_iter_next(&s)) {
                const mqc_sdam_server_t *srv = mqc_topology_find(td, bson_iter_key(&s));
                if (!srv) return set_rc(o, 1, "server %s missing", bson_iter_key(&s));
                if (!doc_sub(&s, &sdoc) || !check_server(srv, &sdoc, o)) return false;
            }
        } else if (!strcmp(k, "events")) {
            return set_rc(o, 2, "SDAM monitoring events are not compared by this runner (outcome \"events\")");
        }
    }
    return true;
}

static void run_case(const char *path, outcome_t *o)
{
    bson_t doc;
    bson_iter_t it;
    mqc_topology_desc_t td;
    int64_t clock_ms = 0;
    if (!load_json(path, &doc, o)) return;
    const char *uri = doc_utf8(&doc, "uri");
    if (!uri) {
        set_rc(o, 1, "no uri");
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
            if (!doc_sub(&ph, &phase)) {
                set_rc(o, 1, "phase %d is not a document", n);
                break;
            }
            if (find_sub(&phase, "responses", &sub)) apply_responses(&td, &sub, &clock_ms, o);
            if (!o->rc && find_sub(&phase, "applicationErrors", &sub)) apply_errors(&td, &sub, o);
            if (!o->rc && find_sub(&phase, "outcome", &sub)) check_outcome(&td, &sub, o);
            if (o->rc == 1) {
                char m[sizeof o->msg + 600];
                const char *d = doc_utf8(&phase, "description");
                snprintf(m, sizeof m, "phase %d (%.500s): %s", n, d ? d : "", o->msg);
                memcpy(o->msg, m, sizeof o->msg - 1);
                o->msg[sizeof o->msg - 1] = 0;
            }
        }
    }
    mqc_topology_desc_cleanup(&td);
out:
    bson_destroy(&doc);
}

static void sdam_spec_case(void)
{
    const sdam_case_t *c = tf_data();
    if (c->skip) SKIP("%s", c->skip);
    outcome_t o = {0};
    run_case(c->path, &o);
    if (o.rc == 1) FAIL("%s", o.msg);
    if (o.rc == 2) SKIP("%s", o.msg);
}

static void sdam_spec_missing(void) { SKIP("no spec-tests folder (--spec-dir, MQC_SPEC_TESTS)"); }

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *) a, *(char *const *) b); }

/* Entries of dir, sorted; *n set. Caller frees each and the array. */
static char **list_dir(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    char **v = NULL;
    *n = 0;
    if (!d) return NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        v = realloc(v, (*n + 1) * sizeof *v);
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*n) qsort(v, *n, sizeof *v, cmp_names);
    return v;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void add_case(const char *name, const char *path, const char *skip)
{
    sdam_case_t *c = calloc(1, sizeof *c);
    c->path = path ? strdup(path) : NULL;
    c->skip = skip ? strdup(skip) : NULL;
    tf_register(name, sdam_spec_case, c, case_free);
}

TF_SUITE_INIT(sdam_spec_init)
{
    static const char *const runnable[] = {"single", "rs", "sharded", "errors", "load-balanced"};
    const char *spec = tf_spec_dir();
    char base[4096], path[4096 + 512], name[1024];
    snprintf(base, sizeof base, "%s/server-discovery-and-monitoring/tests", spec ? spec : "");
    if (!spec || !is_dir(base)) {
        tf_register("/spec/sdam", sdam_spec_missing, NULL, NULL);
        return;
    }
    size_t nf;
    char **folders = list_dir(base, &nf);
    for (size_t i = 0; i < nf; i++) {
        snprintf(path, sizeof path, "%s/%s", base, folders[i]);
        if (!is_dir(path)) {
            free(folders[i]);
            continue;
        }
        bool run = false;
        for (size_t r = 0; r < sizeof runnable / sizeof runnable[0]; r++) run |= !strcmp(folders[i], runnable[r]);
        snprintf(name, sizeof name, "/spec/sdam/%s", folders[i]);
        if (!run) {
            add_case(name, NULL,
                     !strcmp(folders[i], "monitoring")
                         ? "SDAM monitoring-event tests: this runner compares topology outcomes, not event lists"
                         : "unified test format: needs a live server and the unified runner, not these unit tests");
            free(folders[i]);
            continue;
        }
        size_t nj;
        char **files = list_dir(path, &nj);
        for (size_t j = 0; j < nj; j++) {
            size_t len = strlen(files[j]);
            if (len > 5 && !strcmp(files[j] + len - 5, ".json")) {
                char file[4096 + 1024];
                snprintf(file, sizeof file, "%s/%s", path, files[j]);
                snprintf(name, sizeof name, "/spec/sdam/%s/%.*s", folders[i], (int) (len - 5), files[j]);
                add_case(name, file, NULL);
            }
            free(files[j]);
        }
        free(files);
        free(folders[i]);
    }
    free(folders);
}
