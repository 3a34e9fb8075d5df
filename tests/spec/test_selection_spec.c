/* Server Selection and Max Staleness spec tests:
 *   server-selection/tests/server_selection/<Topology>/<read|write>/<file>.json  suitable + latency window
 *   server-selection/tests/in_window/<file>.json   frequencies of the power-of-two choice
 *   server-selection/tests/rtt/<file>.json         the RTT moving average
 *   max-staleness/tests/<Topology>/<file>.json     staleness filtering and read preference validation
 * One test per file: "/spec/server-selection/<folder>/.../<file>", "/spec/max-staleness/...".
 * Other folders (logging: unified format against a live server) are one skipped test each.
 *
 * The selection files predate wire versions: a server without maxWireVersion is taken as one
 * speaking mqc's newest, so compatibility does not get in the way of what they test. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../tf.h"
#include "common.h"
#include "sdam.h"
#include "select.h"

typedef enum { K_SELECTION = 1, K_IN_WINDOW, K_RTT, K_SKIP } sel_kind_t;

typedef struct {
    sel_kind_t kind;
    char *path;
    char *skip;
} sel_case_t;

static void sel_case_free(void *p)
{
    sel_case_t *c = p;
    free(c->path);
    free(c->skip);
    free(c);
}

typedef struct {
    int rc; /* 0 pass, 1 fail, 2 skip */
    char msg[1024];
} result_t;

__attribute__((format(printf, 3, 4))) static bool bad(result_t *r, int rc, const char *fmt, ...)
{
    va_list ap;
    if (r->rc) return false;
    r->rc = rc;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    return false;
}

static bool load_json(const char *path, bson_t *doc, result_t *r)
{
    bson_error_t err;
    bson_json_reader_t *rd = bson_json_reader_new_from_file(path, &err);
    if (!rd) return bad(r, 1, "%s: %s", path, err.message);
    bson_init(doc);
    int rc = bson_json_reader_read(rd, doc, &err);
    bson_json_reader_destroy(rd);
    if (rc <= 0) {
        bson_destroy(doc);
        return bad(r, 1, "%s: %s", path, rc < 0 ? err.message : "empty file");
    }
    return true;
}

static bool sub_of(const bson_iter_t *it, bson_t *out)
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
    return bson_iter_init_find(&it, d, key) && sub_of(&it, out);
}

static const char *utf8_of(const bson_t *d, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, d, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

/* ---- the topology of a test file ---------------------------------------------------------- */

static bool build_topology(const bson_t *doc, mqc_topology_desc_t *td, result_t *r)
{
    bson_t desc, servers, s;
    bson_iter_t it, f;
    mqc_topology_type_t type;
    mqc_error_t err;
    const char *seeds[256];
    size_t n = 0;
    if (!find_sub(doc, "topology_description", &desc) || !find_sub(&desc, "servers", &servers))
        return bad(r, 1, "no topology_description.servers");
    if (!mqc_topology_type_from_name(utf8_of(&desc, "type"), &type))
        return bad(r, 1, "unknown topology type %s", utf8_of(&desc, "type") ? utf8_of(&desc, "type") : "(none)");
    bson_iter_init(&it, &servers);
    while (bson_iter_next(&it) && n < 256)
        if (sub_of(&it, &s) && utf8_of(&s, "address")) seeds[n++] = utf8_of(&s, "address");
    /* The Single files hold one server; the others any number: init as Unknown, then set. */
    if (!mqc_topology_desc_init(td, type == MQC_TOPOLOGY_SINGLE && n == 1 ? type : MQC_TOPOLOGY_UNKNOWN, NULL,
                                seeds, n, NULL, &err))
        return bad(r, 1, "topology: %s", err.message);
    td->type = type;
    if (bson_iter_init_find(&f, doc, "heartbeatFrequencyMS") && BSON_ITER_HOLDS_NUMBER(&f))
        td->heartbeat_frequency_ms = bson_iter_as_int64(&f);
    bson_iter_init(&it, &servers);
    while (bson_iter_next(&it)) {
        if (!sub_of(&it, &s)) continue;
        mqc_sdam_server_t *srv = mqc_topology_find(td, utf8_of(&s, "address"));
        if (!srv) return bad(r, 1, "server without address");
        mqc_sd_t *sd = &srv->sd;
        if (!mqc_server_type_from_name(utf8_of(&s, "type"), &sd->type))
            return bad(r, 1, "unknown server type %s", utf8_of(&s, "type") ? utf8_of(&s, "type") : "(none)");
        sd->max_wire_version = MQC_WIRE_VERSION_MAX;
        bson_iter_init(&f, &s);
        while (bson_iter_next(&f)) {
            const char *k = bson_iter_key(&f);
            bson_t sub;
            if (!strcmp(k, "avg_rtt_ms") && BSON_ITER_HOLDS_NUMBER(&f)) {
                sd->has_rtt = true;
                sd->rtt_ms = bson_iter_as_double(&f);
            } else if (!strcmp(k, "tags") && sub_of(&f, &sub)) {
                bson_destroy(&sd->tags);
                bson_copy_to(&sub, &sd->tags);
            } else if (!strcmp(k, "lastUpdateTime") && BSON_ITER_HOLDS_NUMBER(&f))
                sd->last_update_ms = bson_iter_as_int64(&f);
            else if (!strcmp(k, "maxWireVersion") && BSON_ITER_HOLDS_NUMBER(&f))
                sd->max_wire_version = (int32_t) bson_iter_as_int64(&f);
            else if (!strcmp(k, "lastWrite") && sub_of(&f, &sub)) {
                bson_iter_t w;
                if (bson_iter_init_find(&w, &sub, "lastWriteDate") && BSON_ITER_HOLDS_NUMBER(&w)) {
                    sd->has_last_write = true;
                    sd->last_write_date_ms = bson_iter_as_int64(&w);
                }
            }
        }
    }
    mqc_topology_recompute(td);
    return true;
}

static bool read_pref_of(const bson_t *doc, mqc_read_pref_t *rp, bson_t *tags, result_t *r)
{
    bson_t rpd;
    bson_iter_t it;
    mqc_read_pref_init(rp);
    if (!find_sub(doc, "read_preference", &rpd)) return true;
    const char *mode = utf8_of(&rpd, "mode");
    if (mode && !mqc_read_mode_from_name(mode, &rp->mode)) return bad(r, 1, "unknown mode %s", mode);
    if (find_sub(&rpd, "tag_sets", tags)) rp->tag_sets = tags;
    if (bson_iter_init_find(&it, &rpd, "maxStalenessSeconds") && BSON_ITER_HOLDS_NUMBER(&it))
        rp->max_staleness_seconds = bson_iter_as_int64(&it);
    return true;
}

/* Compares the addresses of got[0..n-1] with the servers listed under key. */
static bool same_set(const bson_t *doc, const char *key, mqc_sdam_server_t **got, size_t n, result_t *r)
{
    bson_t want, s;
    bson_iter_t it;
    size_t nw = 0;
    if (!find_sub(doc, key, &want)) return true; /* not given: nothing to compare */
    char have[1024] = "";
    for (size_t i = 0; i < n; i++) snprintf(have + strlen(have), sizeof have - strlen(have), " %s", got[i]->sd.address);
    bson_iter_init(&it, &want);
    while (bson_iter_next(&it)) {
        if (!sub_of(&it, &s)) continue;
        const char *a = utf8_of(&s, "address");
        char norm[MQC_SDAM_ADDR_MAX];
        nw++;
        bool found = false;
        for (size_t i = 0; a && i < n; i++)
            found |= mqc_sdam_normalize_address(a, norm, sizeof norm) && !strcmp(norm, got[i]->sd.address);
        if (!found) return bad(r, 1, "%s: %s expected, got:%s", key, a ? a : "?", have);
    }
    if (nw != n) return bad(r, 1, "%s: expected %zu servers, got %zu:%s", key, nw, n, have);
    return true;
}

static void run_selection(const char *path, result_t *r)
{
    bson_t doc, tags, depr, s;
    bson_iter_t it;
    mqc_topology_desc_t td;
    mqc_read_pref_t rp;
    mqc_select_opts_t opts;
    mqc_error_t err;
    const char *depr_addr[64];
    if (!load_json(path, &doc, r)) return;
    if (!build_topology(&doc, &td, r)) goto out_doc;
    if (!read_pref_of(&doc, &rp, &tags, r)) goto out;
    mqc_select_opts_init(&opts);
    const char *op = utf8_of(&doc, "operation");
    opts.write = op && !strcmp(op, "write");
    opts.read_pref = &rp;
    if (find_sub(&doc, "deprioritized_servers", &depr)) {
        bson_iter_init(&it, &depr);
        while (bson_iter_next(&it) && opts.n_deprioritized < 64)
            if (sub_of(&it, &s) && utf8_of(&s, "address")) depr_addr[opts.n_deprioritized++] = utf8_of(&s, "address");
        opts.deprioritized = depr_addr;
    }
    mqc_sdam_server_t **suitable = calloc(td.n_servers + 1, sizeof *suitable);
    mqc_sdam_server_t **window = calloc(td.n_servers + 1, sizeof *window);
    size_t ns = 0, nw = 0;
    bool ok = mqc_select_suitable(&td, &opts, suitable, &ns, window, &nw, &err);
    bool want_error = bson_iter_init_find(&it, &doc, "error") && bson_iter_as_bool(&it);
    if (want_error && ok) bad(r, 1, "expected an error, selected %zu suitable", ns);
    else if (!want_error && !ok) bad(r, 1, "unexpected error: %s", err.message);
    else if (ok && same_set(&doc, "suitable_servers", suitable, ns, r))
        same_set(&doc, "in_latency_window", window, nw, r);
    free(suitable);
    free(window);
out:
    mqc_topology_desc_cleanup(&td);
out_doc:
    bson_destroy(&doc);
}

static void run_in_window(const char *path, result_t *r)
{
    bson_t doc, state, s, outcome, freqs;
    bson_iter_t it, f;
    mqc_topology_desc_t td;
    mqc_read_pref_t rp;
    mqc_select_opts_t opts;
    mqc_error_t err;
    if (!load_json(path, &doc, r)) return;
    if (!build_topology(&doc, &td, r)) goto out_doc;
    if (find_sub(&doc, "mocked_topology_state", &state)) {
        bson_iter_init(&it, &state);
        while (bson_iter_next(&it)) {
            if (!sub_of(&it, &s)) continue;
            mqc_sdam_server_t *srv = mqc_topology_find(&td, utf8_of(&s, "address"));
            if (srv && bson_iter_init_find(&f, &s, "operation_count") && BSON_ITER_HOLDS_NUMBER(&f))
                srv->operation_count = (uint32_t) bson_iter_as_int64(&f);
        }
    }
    int64_t iterations = bson_iter_init_find(&it, &doc, "iterations") ? bson_iter_as_int64(&it) : 0;
    if (iterations <= 0 || !find_sub(&doc, "outcome", &outcome) ||
        !find_sub(&outcome, "expected_frequencies", &freqs)) {
        bad(r, 1, "missing iterations or outcome.expected_frequencies");
        goto out;
    }
    double tolerance = bson_iter_init_find(&it, &outcome, "tolerance") ? bson_iter_as_double(&it) : 0;
    mqc_read_pref_init(&rp);
    rp.mode = MQC_READ_NEAREST;
    mqc_select_opts_init(&opts);
    opts.read_pref = &rp;
    mqc_rand_t rng;
    mqc_rand_seed(&rng, 20240601);
    uint64_t *hits = calloc(td.n_servers + 1, sizeof *hits);
    for (int64_t i = 0; i < iterations && !r->rc; i++) {
        mqc_sdam_server_t *chosen = mqc_select_server(&td, &opts, mqc_rand_next, &rng, &err);
        if (!chosen) {
            bad(r, 1, "iteration %" PRId64 ": nothing selected (%s)", i, err.message);
            break;
        }
        /* Each selection's operation ends at once: the mocked counts stay as given. */
        mqc_select_done(chosen);
        for (size_t k = 0; k < td.n_servers; k++)
            if (td.servers[k] == chosen) hits[k]++;
    }
    bson_iter_init(&it, &freqs);
    while (!r->rc && bson_iter_next(&it)) {
        const mqc_sdam_server_t *srv = mqc_topology_find(&td, bson_iter_key(&it));
        size_t k = 0;
        while (k < td.n_servers && td.servers[k] != srv) k++;
        if (!srv) {
            bad(r, 1, "expected_frequencies names unknown server %s", bson_iter_key(&it));
            break;
        }
        double want = bson_iter_as_double(&it), got = (double) hits[k] / (double) iterations;
        bool exact = want == 0.0 || want == 1.0;
        if (exact ? got != want : fabs(got - want) > tolerance)
            bad(r, 1, "%s: frequency %.4f, expected %.4f (tolerance %.3f)", srv->sd.address, got, want,
                exact ? 0.0 : tolerance);
    }
    free(hits);
out:
    mqc_topology_desc_cleanup(&td);
out_doc:
    bson_destroy(&doc);
}

static void run_rtt(const char *path, result_t *r)
{
    bson_t doc;
    bson_iter_t it;
    if (!load_json(path, &doc, r)) return;
    bool has_avg = bson_iter_init_find(&it, &doc, "avg_rtt_ms") && BSON_ITER_HOLDS_NUMBER(&it);
    double avg = has_avg ? bson_iter_as_double(&it) : 0;
    double sample = bson_iter_init_find(&it, &doc, "new_rtt_ms") ? bson_iter_as_double(&it) : -1;
    double want = bson_iter_init_find(&it, &doc, "new_avg_rtt") ? bson_iter_as_double(&it) : -1;
    double got = mqc_rtt_update(has_avg, avg, sample);
    if (fabs(got - want) > 1e-9) bad(r, 1, "new average %.6f, expected %.6f", got, want);
    bson_destroy(&doc);
}

static void selection_spec_case(void)
{
    const sel_case_t *c = tf_data();
    result_t r = {0};
    if (c->kind == K_SKIP) SKIP("%s", c->skip);
    if (c->kind == K_RTT) run_rtt(c->path, &r);
    else if (c->kind == K_IN_WINDOW) run_in_window(c->path, &r);
    else run_selection(c->path, &r);
    if (r.rc == 1) FAIL("%s", r.msg);
    if (r.rc == 2) SKIP("%s", r.msg);
}

static void selection_spec_missing(void) { SKIP("no spec-tests folder (--spec-dir, MQC_SPEC_TESTS)"); }

/* ---- registration ------------------------------------------------------------------------- */

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *) a, *(char *const *) b); }

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

static void add(const char *name, sel_kind_t kind, const char *path, const char *skip)
{
    sel_case_t *c = calloc(1, sizeof *c);
    c->kind = kind;
    c->path = path ? strdup(path) : NULL;
    c->skip = skip ? strdup(skip) : NULL;
    tf_register(name, selection_spec_case, c, sel_case_free);
}

/* Registers every .json under dir (recursively) as kind, named prefix/<relative path>. */
static void add_tree(const char *dir, const char *prefix, sel_kind_t kind)
{
    size_t n;
    char **names = list_dir(dir, &n);
    for (size_t i = 0; i < n; i++) {
        char path[4096], name[4096];
        size_t len = strlen(names[i]);
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (is_dir(path)) {
            snprintf(name, sizeof name, "%s/%s", prefix, names[i]);
            add_tree(path, name, kind);
        } else if (len > 5 && !strcmp(names[i] + len - 5, ".json")) {
            snprintf(name, sizeof name, "%s/%.*s", prefix, (int) (len - 5), names[i]);
            add(name, kind, path, NULL);
        }
        free(names[i]);
    }
    free(names);
}

TF_SUITE_INIT(selection_spec_init)
{
    const char *spec = tf_spec_dir();
    char dir[2048], path[4096], name[4096];
    snprintf(dir, sizeof dir, "%s/server-selection/tests", spec ? spec : "");
    if (!spec || !is_dir(dir)) tf_register("/spec/server-selection", selection_spec_missing, NULL, NULL);
    else {
        size_t n;
        char **names = list_dir(dir, &n);
        for (size_t i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            snprintf(name, sizeof name, "/spec/server-selection/%s", names[i]);
            if (!is_dir(path)) {
                free(names[i]);
                continue;
            }
            if (!strcmp(names[i], "server_selection")) add_tree(path, name, K_SELECTION);
            else if (!strcmp(names[i], "in_window")) add_tree(path, name, K_IN_WINDOW);
            else if (!strcmp(names[i], "rtt")) add_tree(path, name, K_RTT);
            else
                add(name, K_SKIP, NULL,
                    "unified test format (server selection logging): needs a live server and the unified runner");
            free(names[i]);
        }
        free(names);
    }
    snprintf(dir, sizeof dir, "%s/max-staleness/tests", spec ? spec : "");
    if (!spec || !is_dir(dir)) tf_register("/spec/max-staleness", selection_spec_missing, NULL, NULL);
    else add_tree(dir, "/spec/max-staleness", K_SELECTION);
}
