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
#include <math.h>
#include <stdlib.h>

#include "../tf.h"
#include "spec.h"
#include "common.h"
#include "sdam.h"
#include "select.h"

/* ---- the topology of a test file ---------------------------------------------------------- */

static bool build_topology(const bson_t *doc, mqc_sdam_desc_t *td, spec_outcome_t *r)
{
    bson_t desc, servers, s;
    bson_iter_t it, f;
    mqc_sdam_topo_type_t type;
    mqc_error_t err;
    const char *seeds[256];
    size_t n = 0;
    if (!spec_sub(doc, "topology_description", &desc) || !spec_sub(&desc, "servers", &servers))
        return spec_set(r, 1, "no topology_description.servers");
    if (!mqc_sdam_topo_type_from_name(spec_str(&desc, "type"), &type))
        return spec_set(r, 1, "unknown topology type %s", spec_str(&desc, "type") ? spec_str(&desc, "type") : "(none)");
    bson_iter_init(&it, &servers);
    while (bson_iter_next(&it) && n < 256)
        if (spec_sub_iter(&it, &s) && spec_str(&s, "address")) seeds[n++] = spec_str(&s, "address");
    /* The Single files hold one server; the others any number: init as Unknown, then set. */
    if (!mqc_sdam_desc_init(td, type == MQC_TOPOLOGY_SINGLE && n == 1 ? type : MQC_TOPOLOGY_UNKNOWN, NULL,
                                seeds, n, NULL, &err))
        return spec_set(r, 1, "topology: %s", err.message);
    td->type = type;
    if (bson_iter_init_find(&f, doc, "heartbeatFrequencyMS") && BSON_ITER_HOLDS_NUMBER(&f))
        td->heartbeat_frequency_ms = bson_iter_as_int64(&f);
    bson_iter_init(&it, &servers);
    while (bson_iter_next(&it)) {
        if (!spec_sub_iter(&it, &s)) continue;
        mqc_sdam_server_t *srv = mqc_sdam_find(td, spec_str(&s, "address"));
        if (!srv) return spec_set(r, 1, "server without address");
        mqc_sd_t *sd = &srv->sd;
        if (!mqc_server_type_from_name(spec_str(&s, "type"), &sd->type))
            return spec_set(r, 1, "unknown server type %s", spec_str(&s, "type") ? spec_str(&s, "type") : "(none)");
        sd->max_wire_version = MQC_WIRE_VERSION_MAX;
        bson_iter_init(&f, &s);
        while (bson_iter_next(&f)) {
            const char *k = bson_iter_key(&f);
            bson_t sub;
            if (!strcmp(k, "avg_rtt_ms") && BSON_ITER_HOLDS_NUMBER(&f)) {
                sd->has_rtt = true;
                sd->rtt_ms = bson_iter_as_double(&f);
            } else if (!strcmp(k, "tags") && spec_sub_iter(&f, &sub)) {
                bson_destroy(&sd->tags);
                bson_copy_to(&sub, &sd->tags);
            } else if (!strcmp(k, "lastUpdateTime") && BSON_ITER_HOLDS_NUMBER(&f))
                sd->last_update_ms = bson_iter_as_int64(&f);
            else if (!strcmp(k, "maxWireVersion") && BSON_ITER_HOLDS_NUMBER(&f))
                sd->max_wire_version = (int32_t) bson_iter_as_int64(&f);
            else if (!strcmp(k, "lastWrite") && spec_sub_iter(&f, &sub)) {
                bson_iter_t w;
                if (bson_iter_init_find(&w, &sub, "lastWriteDate") && BSON_ITER_HOLDS_NUMBER(&w)) {
                    sd->has_last_write = true;
                    sd->last_write_date_ms = bson_iter_as_int64(&w);
                }
            }
        }
    }
    mqc_sdam_recompute(td);
    return true;
}

static bool read_pref_of(const bson_t *doc, mqc_read_pref_t *rp, bson_t *tags, spec_outcome_t *r)
{
    bson_t rpd;
    bson_iter_t it;
    mqc_read_pref_init(rp);
    if (!spec_sub(doc, "read_preference", &rpd)) return true;
    const char *mode = spec_str(&rpd, "mode");
    if (mode && !mqc_read_mode_from_name(mode, &rp->mode)) return spec_set(r, 1, "unknown mode %s", mode);
    if (spec_sub(&rpd, "tag_sets", tags)) rp->tag_sets = tags;
    if (bson_iter_init_find(&it, &rpd, "maxStalenessSeconds") && BSON_ITER_HOLDS_NUMBER(&it))
        rp->max_staleness_seconds = bson_iter_as_int64(&it);
    return true;
}

/* Compares the addresses of got[0..n-1] with the servers listed under key. */
static bool same_set(const bson_t *doc, const char *key, mqc_sdam_server_t **got, size_t n, spec_outcome_t *r)
{
    bson_t want, s;
    bson_iter_t it;
    size_t nw = 0;
    if (!spec_sub(doc, key, &want)) return true; /* not given: nothing to compare */
    char have[1024] = "";
    for (size_t i = 0; i < n; i++) snprintf(have + strlen(have), sizeof have - strlen(have), " %s", got[i]->sd.address);
    bson_iter_init(&it, &want);
    while (bson_iter_next(&it)) {
        if (!spec_sub_iter(&it, &s)) continue;
        const char *a = spec_str(&s, "address");
        char norm[MQC_SDAM_ADDR_MAX];
        nw++;
        bool found = false;
        for (size_t i = 0; a && i < n; i++)
            found |= mqc_sdam_normalize_address(a, norm, sizeof norm) && !strcmp(norm, got[i]->sd.address);
        if (!found) return spec_set(r, 1, "%s: %s expected, got:%s", key, a ? a : "?", have);
    }
    if (nw != n) return spec_set(r, 1, "%s: expected %zu servers, got %zu:%s", key, nw, n, have);
    return true;
}

static void run_selection(const bson_t *file, spec_outcome_t *r)
{
    bson_t doc, tags, depr, s;
    bson_iter_t it;
    mqc_sdam_desc_t td;
    mqc_read_pref_t rp;
    mqc_select_opts_t opts;
    mqc_error_t err;
    const char *depr_addr[64];
    if (!bson_init_static(&doc, bson_get_data(file), file->len)) return;
    if (!build_topology(&doc, &td, r)) goto out_doc;
    if (!read_pref_of(&doc, &rp, &tags, r)) goto out;
    mqc_select_opts_init(&opts);
    const char *op = spec_str(&doc, "operation");
    opts.write = op && !strcmp(op, "write");
    opts.read_pref = &rp;
    if (spec_sub(&doc, "deprioritized_servers", &depr)) {
        bson_iter_init(&it, &depr);
        while (bson_iter_next(&it) && opts.n_deprioritized < 64)
            if (spec_sub_iter(&it, &s) && spec_str(&s, "address")) depr_addr[opts.n_deprioritized++] = spec_str(&s, "address");
        opts.deprioritized = depr_addr;
    }
    mqc_sdam_server_t **suitable = calloc(td.n_servers + 1, sizeof *suitable);
    mqc_sdam_server_t **window = calloc(td.n_servers + 1, sizeof *window);
    size_t ns = 0, nw = 0;
    bool ok = mqc_select_suitable(&td, &opts, suitable, &ns, window, &nw, &err);
    bool want_error = bson_iter_init_find(&it, &doc, "error") && bson_iter_as_bool(&it);
    if (want_error && ok) spec_set(r, 1, "expected an error, selected %zu suitable", ns);
    else if (!want_error && !ok) spec_set(r, 1, "unexpected error: %s", err.message);
    else if (ok && same_set(&doc, "suitable_servers", suitable, ns, r))
        same_set(&doc, "in_latency_window", window, nw, r);
    free(suitable);
    free(window);
out:
    mqc_sdam_desc_cleanup(&td);
out_doc:
    bson_destroy(&doc);
}

static void run_in_window(const bson_t *file, spec_outcome_t *r)
{
    bson_t doc, state, s, outcome, freqs;
    bson_iter_t it, f;
    mqc_sdam_desc_t td;
    mqc_read_pref_t rp;
    mqc_select_opts_t opts;
    mqc_error_t err;
    if (!bson_init_static(&doc, bson_get_data(file), file->len)) return;
    if (!build_topology(&doc, &td, r)) goto out_doc;
    if (spec_sub(&doc, "mocked_topology_state", &state)) {
        bson_iter_init(&it, &state);
        while (bson_iter_next(&it)) {
            if (!spec_sub_iter(&it, &s)) continue;
            mqc_sdam_server_t *srv = mqc_sdam_find(&td, spec_str(&s, "address"));
            if (srv && bson_iter_init_find(&f, &s, "operation_count") && BSON_ITER_HOLDS_NUMBER(&f))
                srv->operation_count = (uint32_t) bson_iter_as_int64(&f);
        }
    }
    int64_t iterations = bson_iter_init_find(&it, &doc, "iterations") ? bson_iter_as_int64(&it) : 0;
    if (iterations <= 0 || !spec_sub(&doc, "outcome", &outcome) ||
        !spec_sub(&outcome, "expected_frequencies", &freqs)) {
        spec_set(r, 1, "missing iterations or outcome.expected_frequencies");
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
            spec_set(r, 1, "iteration %" PRId64 ": nothing selected (%s)", i, err.message);
            break;
        }
        /* Each selection's operation ends at once: the mocked counts stay as given. */
        mqc_select_done(chosen);
        for (size_t k = 0; k < td.n_servers; k++)
            if (td.servers[k] == chosen) hits[k]++;
    }
    bson_iter_init(&it, &freqs);
    while (!r->rc && bson_iter_next(&it)) {
        const mqc_sdam_server_t *srv = mqc_sdam_find(&td, bson_iter_key(&it));
        size_t k = 0;
        while (k < td.n_servers && td.servers[k] != srv) k++;
        if (!srv) {
            spec_set(r, 1, "expected_frequencies names unknown server %s", bson_iter_key(&it));
            break;
        }
        double want = bson_iter_as_double(&it), got = (double) hits[k] / (double) iterations;
        bool exact = want == 0.0 || want == 1.0;
        if (exact ? got != want : fabs(got - want) > tolerance)
            spec_set(r, 1, "%s: frequency %.4f, expected %.4f (tolerance %.3f)", srv->sd.address, got, want,
                exact ? 0.0 : tolerance);
    }
    free(hits);
out:
    mqc_sdam_desc_cleanup(&td);
out_doc:
    bson_destroy(&doc);
}

static void run_rtt(const bson_t *file, spec_outcome_t *r)
{
    bson_t doc;
    bson_iter_t it;
    if (!bson_init_static(&doc, bson_get_data(file), file->len)) return;
    bool has_avg = bson_iter_init_find(&it, &doc, "avg_rtt_ms") && BSON_ITER_HOLDS_NUMBER(&it);
    double avg = has_avg ? bson_iter_as_double(&it) : 0;
    double sample = bson_iter_init_find(&it, &doc, "new_rtt_ms") ? bson_iter_as_double(&it) : -1;
    double want = bson_iter_init_find(&it, &doc, "new_avg_rtt") ? bson_iter_as_double(&it) : -1;
    double got = mqc_rtt_update(has_avg, avg, sample);
    if (fabs(got - want) > 1e-9) spec_set(r, 1, "new average %.6f, expected %.6f", got, want);
    bson_destroy(&doc);
}

/* The file's folder says which kind of test it is: server_selection/..., in_window/..., rtt/...;
 * max-staleness files are selection tests. */
static void selection_spec_case(void)
{
    const char *file = spec_case()->file;
    const bson_t *doc = spec_case()->doc;
    spec_outcome_t r = {0};
    if (strstr(file, "/server-selection/tests/rtt/")) run_rtt(doc, &r);
    else if (strstr(file, "/server-selection/tests/in_window/")) run_in_window(doc, &r);
    else run_selection(doc, &r);
    spec_conclude(&r);
}

TF_SUITE_INIT(selection_spec_init)
{
    static const char tests[] = "server-selection/tests";
    const char *root = spec_root();
    if (!root) return;
    size_t n;
    char **names = spec_subdirs(root, tests, &n);
    if (!names) spec_register_skip("/spec/server-selection", "no server-selection/tests folder");
    for (size_t i = 0; i < n; i++) {
        char rel[1024], area[512];
        snprintf(rel, sizeof rel, "%s/%s", tests, names[i]);
        snprintf(area, sizeof area, "server-selection/%s", names[i]);
        if (!strcmp(names[i], "server_selection") || !strcmp(names[i], "in_window") || !strcmp(names[i], "rtt")) {
            spec_register_folder(root, rel, area, NULL, selection_spec_case);
        } else {
            char name[600];
            snprintf(name, sizeof name, "/spec/%s", area);
            spec_register_skip(name, "unified test format (server selection logging): needs a live server and the "
                                     "unified runner");
        }
        free(names[i]);
    }
    free(names);
    spec_register_folder(root, "max-staleness/tests", "max-staleness", NULL, selection_spec_case);
}
