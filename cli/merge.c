/* merge: results from JSON, merged exactly (merge.h). */
#include "merge.h"
#include "report_sched.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "frame.h"
#include "histfmt.h"
#include "html.h"
#include "outputs.h"
#include "series.h"
#include "report.h"
#include "threshold.h"

static void copy_str(const bson_iter_t *it, char *dst, size_t n)
{
    if (BSON_ITER_HOLDS_UTF8(it)) snprintf(dst, n, "%s", bson_iter_utf8(it, NULL));
}

static bool read_ops(const bson_iter_t *it, mqload_result_t *r, char *err, size_t esz)
{
    bson_iter_t ops, f;
    if (!BSON_ITER_HOLDS_DOCUMENT(it)) return mqload_json_fail(err, esz, "\"ops\" is not an object", NULL);
    bson_iter_recurse(it, &ops);
    while (bson_iter_next(&ops)) {
        char type[16] = "";
        const char *name = bson_iter_key(&ops);
        if (!BSON_ITER_HOLDS_DOCUMENT(&ops)) return mqload_json_fail(err, esz, "bad op entry", name);
        bson_iter_recurse(&ops, &f);
        while (bson_iter_next(&f))
            if (!strcmp(bson_iter_key(&f), "type")) copy_str(&f, type, sizeof type);
        int i = mqload_result_op(r, name, type[0] ? type : name);
        if (i < 0) return mqload_json_fail(err, esz, "too many ops", NULL);
        bool have_hist = false;
        bson_iter_recurse(&ops, &f);
        while (bson_iter_next(&f)) {
            const char *k = bson_iter_key(&f);
            if (!strcmp(k, "ok")) r->ops[i].ok = mqload_json_u64(&f);
            else if (!strcmp(k, "errors")) r->ops[i].errors = mqload_json_u64(&f);
            else if (!strcmp(k, "histogram")) {
                if (!mqload_hist_from_json(&f, r->ops[i].hist, err, esz)) return false;
                have_hist = true;
            } else if (!strcmp(k, "error_histogram") && !mqload_hist_from_json(&f, r->ops[i].err_hist, err, esz)) {
                return false;
            }
        }
        if (!have_hist) return mqload_json_fail(err, esz, "op without a histogram", name);
    }
    return true;
}

static bool read_timeline(const bson_iter_t *it, mqload_result_t *r, char *err, size_t esz)
{
    bson_iter_t a, f;
    if (!BSON_ITER_HOLDS_ARRAY(it)) return mqload_json_fail(err, esz, "\"timeline\" is not an array", NULL);
    bson_iter_recurse(it, &a);
    while (bson_iter_next(&a)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&a)) return mqload_json_fail(err, esz, "bad timeline entry", NULL);
        uint64_t t = UINT64_MAX;
        bson_iter_recurse(&a, &f);
        while (bson_iter_next(&f))
            if (!strcmp(bson_iter_key(&f), "t")) t = mqload_json_u64(&f);
        if (t > 10u * 24 * 3600) return mqload_json_fail(err, esz, "timeline entry without a valid \"t\"", NULL);
        mqload_second_t *s = mqload_result_second(r, (size_t) t);
        bson_iter_recurse(&a, &f);
        while (bson_iter_next(&f)) {
            const char *k = bson_iter_key(&f);
            if (!strcmp(k, "ops")) s->ops += mqload_json_u64(&f);
            else if (!strcmp(k, "ok")) s->ok += mqload_json_u64(&f);
            else if (!strcmp(k, "errors")) s->errors += mqload_json_u64(&f);
            else if (!strcmp(k, "sent")) s->sent += mqload_json_u64(&f);
            else if (!strcmp(k, "late")) s->late += mqload_json_u64(&f);
            else if (mqload_second_ext_read(r, s, &f, mqload_sparse_from_json, err, esz) < 0) return false;
            else if (!strcmp(k, "histogram")) {
                mqload_sparse_t sp;
                if (!mqload_sparse_from_json(&f, &sp, err, esz)) {
                    mqload_sparse_free(&sp);
                    return false;
                }
                mqload_sparse_merge(&s->hist, &sp);
                mqload_sparse_free(&sp);
            }
        }
    }
    return true;
}

bool mqload_result_from_json(mqload_result_t *r, const char *json, size_t len, char *err, size_t esz)
{
    mqload_result_init(r);
    bson_error_t be;
    bson_t *doc = bson_new_from_json((const uint8_t *) json, (ssize_t) len, &be);
    if (!doc) {
        snprintf(err, esz, "not JSON: %s", be.message);
        mqload_result_free(r);
        return false;
    }
    bson_iter_t it;
    bool ok = true, is_mqload = false, have_hist = false;
    bson_iter_init(&it, doc);
    while (ok && bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!strcmp(k, "tool")) is_mqload = BSON_ITER_HOLDS_UTF8(&it) && !strcmp(bson_iter_utf8(&it, NULL), "mqload");
        else if (!strcmp(k, "version")) copy_str(&it, r->tool_version, sizeof r->tool_version);
        else if (!strcmp(k, "engine")) copy_str(&it, r->engine, sizeof r->engine);
        else if (!strcmp(k, "uri_redacted")) copy_str(&it, r->uri_redacted, sizeof r->uri_redacted);
        else if (!strcmp(k, "workload_id")) copy_str(&it, r->workload_id, sizeof r->workload_id);
        else if (!strcmp(k, "workload")) copy_str(&it, r->workload_name, sizeof r->workload_name);
        else if (!strcmp(k, "notes")) copy_str(&it, r->notes, sizeof r->notes);
        else if (!strcmp(k, "config") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            uint32_t l;
            const uint8_t *d;
            bson_iter_document(&it, &l, &d);
            bson_t tmp;
            bson_init_static(&tmp, d, l);
            bson_reinit(&r->config);
            bson_concat(&r->config, &tmp);
        } else if (!strcmp(k, "start_unix") && BSON_ITER_HOLDS_NUMBER(&it)) r->start_unix = bson_iter_as_double(&it);
        else if (!strcmp(k, "duration_s") && BSON_ITER_HOLDS_NUMBER(&it)) r->duration_s = bson_iter_as_double(&it);
        else if (!strcmp(k, "runs")) r->runs = mqload_json_u64(&it) ? mqload_json_u64(&it) : 1;
        else if (!strcmp(k, "interrupted") && BSON_ITER_HOLDS_BOOL(&it)) r->interrupted = bson_iter_bool(&it);
        else if (!strcmp(k, "submitted")) r->submitted = mqload_json_u64(&it);
        else if (!strcmp(k, "completed")) r->completed = mqload_json_u64(&it);
        else if (!strcmp(k, "ok")) r->ok = mqload_json_u64(&it);
        else if (!strcmp(k, "errors")) r->errors = mqload_json_u64(&it);
        else if (!strcmp(k, "connections_opened")) r->conns_opened = BSON_ITER_HOLDS_NULL(&it) ? UINT64_MAX : mqload_json_u64(&it);
        else if (!strcmp(k, "histogram")) ok = mqload_hist_from_json(&it, r->hist, err, esz), have_hist = true;
        else if (!strcmp(k, "ops")) ok = read_ops(&it, r, err, esz);
        else if (!strcmp(k, "timeline")) ok = read_timeline(&it, r, err, esz);
        else if (!strcmp(k, "errors_by_kind") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            bson_iter_t e;
            bson_iter_recurse(&it, &e);
            while (bson_iter_next(&e)) mqload_result_add_error(r, bson_iter_key(&e), mqload_json_u64(&e));
        } else {
            bool handled;
            ok = mqload_sched_from_json(r, k, &it, &handled, err, esz); /* schedule, stages, error details */
        }
    }
    bson_destroy(doc);
    if (ok && !is_mqload) ok = mqload_json_fail(err, esz, "not an mqload result (no \"tool\": \"mqload\")", NULL);
    if (ok && !have_hist) ok = mqload_json_fail(err, esz, "no \"histogram\": cannot merge exactly", NULL);
    if (ok && !r->workload_id[0]) ok = mqload_json_fail(err, esz, "no \"workload_id\"", NULL);
    if (!ok) mqload_result_free(r);
    return ok;
}

static char *read_all(const char *path, size_t *len, char *err, size_t esz)
{
    FILE *f = !strcmp(path, "-") ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(err, esz, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    if (!buf) abort();
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) abort();
        }
    }
    if (f != stdin) fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* One result to merge and where it came from. */
typedef struct {
    mqload_result_t r;
    char label[600];          /* "a.json" or "pods.log (worker 3)" */
    int64_t worker, workers;  /* from its config; -1 / 1 when not a worker of many */
    int exit_status;          /* from a log frame; -1 unknown */
    double start_at, late_s, tolerance_s;
} input_t;

/* Inputs by pointer: an input_t holds a bson_t (its result's config), which never moves. */
typedef struct {
    input_t **v;
    size_t n, cap;
    char notes[1024];
    uint64_t *failed;         /* workers noted as failed by a log, not to be noted missing again */
    size_t n_failed;
} inputs_t;

static void note(char *notes, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(char *notes, size_t cap, const char *fmt, ...)
{
    size_t l = strlen(notes);
    if (l + 8 >= cap) return;
    if (l) l += (size_t) snprintf(notes + l, cap - l, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(notes + l, cap - l, fmt, ap);
    va_end(ap);
}

static void read_worker_config(input_t *in)
{
    bson_iter_t it;
    in->worker = -1, in->workers = 1, in->start_at = 0, in->late_s = 0, in->tolerance_s = 1;
    if (!bson_iter_init(&it, &in->r.config)) return;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (!BSON_ITER_HOLDS_NUMBER(&it)) continue;
        if (!strcmp(k, "worker_index")) in->worker = bson_iter_as_int64(&it);
        else if (!strcmp(k, "workers")) in->workers = bson_iter_as_int64(&it);
        else if (!strcmp(k, "start_at")) in->start_at = bson_iter_as_double(&it);
        else if (!strcmp(k, "start_late_s")) in->late_s = bson_iter_as_double(&it);
        else if (!strcmp(k, "start_tolerance_s")) in->tolerance_s = bson_iter_as_double(&it);
    }
}

static bool add_input(inputs_t *ins, const char *json, size_t len, const char *label, int exit_status, char *err, size_t esz)
{
    char inner[512];
    if (ins->n == ins->cap) {
        ins->cap = ins->cap ? ins->cap * 2 : 8;
        ins->v = realloc(ins->v, ins->cap * sizeof *ins->v);
        if (!ins->v) abort();
    }
    input_t *in = calloc(1, sizeof *in);
    if (!in) abort();
    if (!mqload_result_from_json(&in->r, json, len, inner, sizeof inner)) {
        snprintf(err, esz, "%s: %s", label, inner);
        free(in);
        return false;
    }
    ins->v[ins->n++] = in;
    snprintf(in->label, sizeof in->label, "%s", label);
    in->exit_status = exit_status;
    read_worker_config(in);
    return true;
}

/* A file is one JSON result, or a log holding any number of framed results (frame.h). */
static bool load_path(inputs_t *ins, const char *path, char *err, size_t esz)
{
    size_t len;
    char *text = read_all(path, &len, err, esz);
    if (!text) return false;
    size_t skip = strspn(text, " \t\r\n");
    bool ok = true;
    if (text[skip] == '{') {
        ok = add_input(ins, text, len, path, -1, err, esz);
        free(text);
        return ok;
    }
    mqload_frame_t *fr;
    size_t nf = mqload_frames_scan(text, len, &fr);
    free(text);
    if (nf == 0) {
        snprintf(err, esz, "%s: neither an mqload JSON result nor a log with MQLOAD-RESULT frames (mqload --json-framed)", path);
        mqload_frames_free(fr, nf);
        return false;
    }
    for (size_t i = 0; i < nf && ok; i++) {
        char label[600];
        snprintf(label, sizeof label, "%s (worker %u)", path, fr[i].worker);
        if (fr[i].kind == MQLOAD_FRAME_RESULT) {
            ok = add_input(ins, fr[i].json, fr[i].len, label, fr[i].exit_status, err, esz);
            continue;
        }
        if (fr[i].kind == MQLOAD_FRAME_FAILED)
            note(ins->notes, sizeof ins->notes, "worker %u failed without a result (exit %d): %s", fr[i].worker,
                 fr[i].exit_status, fr[i].message);
        else note(ins->notes, sizeof ins->notes, "worker %u: %s", fr[i].worker, fr[i].message);
        ins->failed = realloc(ins->failed, (ins->n_failed + 1) * sizeof *ins->failed);
        if (!ins->failed) abort();
        ins->failed[ins->n_failed++] = fr[i].worker;
    }
    mqload_frames_free(fr, nf);
    return ok;
}

/* What a reader of the merged report must know about the workers: failures, absences, late starts. */
static bool check_workers(inputs_t *ins, char *err, size_t esz)
{
    int64_t workers = 1;
    double lo = INFINITY, hi = -INFINITY, tol = 1;
    for (size_t i = 0; i < ins->n; i++) {
        input_t *a = ins->v[i];
        if (a->workers > workers) workers = a->workers;
        if (a->r.start_unix < lo) lo = a->r.start_unix;
        if (a->r.start_unix > hi) hi = a->r.start_unix;
        if (a->tolerance_s > tol) tol = a->tolerance_s;
        for (size_t k = 0; k < i && a->worker >= 0; k++)
            if (ins->v[k]->worker == a->worker && ins->v[k]->workers == a->workers) {
                snprintf(err, esz, "worker %lld appears twice (%s and %s): merging it twice would count its operations twice",
                         (long long) a->worker, ins->v[k]->label, a->label);
                return false;
            }
        if (a->exit_status > 0)
            note(ins->notes, sizeof ins->notes, "worker %lld exited with status %d%s", (long long) a->worker, a->exit_status,
                 a->exit_status == 2 ? " (threshold violated)" : a->exit_status == 3 ? " (target rate not reached)"
                 : a->exit_status == 4 ? " (too many errors)" : a->exit_status == 130 ? " (interrupted)" : "");
        if (a->start_at > 0 && a->late_s > a->tolerance_s)
            note(ins->notes, sizeof ins->notes, "worker %lld started %.3fs after --start-at", (long long) a->worker, a->late_s);
    }
    if (hi - lo > tol)
        note(ins->notes, sizeof ins->notes, "measured windows start %.3fs apart: the workers did not start together "
             "(give them one --start-at)", hi - lo);
    if (workers > 1) {
        char missing[512] = "";
        size_t n_missing = 0;
        for (int64_t w = 0; w < workers; w++) {
            bool seen = false;
            for (size_t i = 0; i < ins->n && !seen; i++) seen = ins->v[i]->worker == w;
            for (size_t i = 0; i < ins->n_failed && !seen; i++) seen = ins->failed[i] == (uint64_t) w;
            if (seen) continue;
            size_t l = strlen(missing);
            if (l + 24 < sizeof missing) snprintf(missing + l, sizeof missing - l, "%s%lld", l ? ", " : "", (long long) w);
            n_missing++;
        }
        if (n_missing)
            note(ins->notes, sizeof ins->notes, "no result from worker%s %s of %lld", n_missing > 1 ? "s" : "", missing,
                 (long long) workers);
    }
    return true;
}

bool mqload_merge_files(mqload_result_t *out, const char *const *paths, size_t n, char *err, size_t esz)
{
    inputs_t ins;
    memset(&ins, 0, sizeof ins);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) ok = load_path(&ins, paths[i], err, esz);
    if (ok && ins.n == 0) {
        snprintf(err, esz, "no result to merge%s%s", ins.notes[0] ? ": " : "", ins.notes);
        ok = false;
    }
    for (size_t i = 1; ok && i < ins.n; i++)
        if (strcmp(ins.v[i]->r.workload_id, ins.v[0]->r.workload_id)) {
            snprintf(err, esz, "%s has workload_id %s but %s has %s: these runs measured different workloads and cannot be merged",
                     ins.v[i]->label, ins.v[i]->r.workload_id, ins.v[0]->label, ins.v[0]->r.workload_id);
            ok = false;
        }
    if (ok) ok = check_workers(&ins, err, esz);
    if (ok) {
        mqload_result_init(out);
        double start = INFINITY, end = 0;
        for (size_t i = 0; i < ins.n; i++) {
            if (ins.v[i]->r.start_unix < start) start = ins.v[i]->r.start_unix;
            if (ins.v[i]->r.start_unix + ins.v[i]->r.duration_s > end) end = ins.v[i]->r.start_unix + ins.v[i]->r.duration_s;
        }
        const mqload_result_t *first = &ins.v[0]->r;
        snprintf(out->tool_version, sizeof out->tool_version, "%s", first->tool_version);
        snprintf(out->engine, sizeof out->engine, "%s", first->engine);
        snprintf(out->uri_redacted, sizeof out->uri_redacted, "%s", first->uri_redacted);
        snprintf(out->workload_id, sizeof out->workload_id, "%s", first->workload_id);
        snprintf(out->workload_name, sizeof out->workload_name, "%s", first->workload_name);
        /* The configuration echoed is the common one: what only the first worker had is left out. */
        if (ins.v[0]->workers > 1)
            bson_copy_to_excluding_noinit(&first->config, &out->config, "worker_index", "start_late_s", "concurrency",
                                          "requests", "rng_seed", NULL);
        else bson_concat(&out->config, &first->config);
        out->runs = 0;
        out->start_unix = start;
        out->duration_s = end - start;
        out->conns_opened = 0;
        snprintf(out->notes, sizeof out->notes, "%s", ins.notes);
        for (size_t i = 0; i < ins.n; i++) {
            const mqload_result_t *r = &ins.v[i]->r;
            /* Seconds line up by wall clock: run i's second 0 is the merged second offset. */
            double off = floor(r->start_unix - start + 0.5);
            if (strcmp(r->engine, out->engine) && !strstr(out->notes, "engines differ"))
                note(out->notes, sizeof out->notes, "engines differ (%s, %s)", out->engine, r->engine);
            /* An unknown count (UINT64_MAX) makes the sum unknown. (No copy of r with its count
             * zeroed: a copied bson_t, r->config, would point into r.) */
            bool unknown = r->conns_opened == UINT64_MAX || out->conns_opened == UINT64_MAX;
            mqload_result_merge(out, r, (size_t) (off > 0 ? off : 0));
            if (unknown) out->conns_opened = UINT64_MAX;
            out->runs += r->runs;
        }
        mqload_result_sort_errors(out);
    }
    for (size_t i = 0; i < ins.n; i++) {
        mqload_result_free(&ins.v[i]->r);
        free(ins.v[i]);
    }
    free(ins.v);
    free(ins.failed);
    return ok;
}

int mqload_merge_main(int argc, char **argv)
{
    const char **paths = calloc((size_t) argc + 1, sizeof *paths);
    const char *json = NULL, *html = NULL, *thr = NULL, *pcts = NULL;
    mqload_xopts_t x; /* --hlog, --csv, --ycsb-summary as in a run (outputs.h) */
    mqload_xopts_init(&x);
    const char *hlog = NULL, *csv = NULL, *ycsb = NULL;
    bool quiet = false;
    size_t n = 0;
    if (!paths) abort();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        size_t nl = 0;
        if (!strncmp(a, "--json", 6) && (a[6] == 0 || a[6] == '=')) dst = &json, nl = 6;
        else if (!strncmp(a, "--html", 6) && (a[6] == 0 || a[6] == '=')) dst = &html, nl = 6;
        else if (!strncmp(a, "--threshold", 11) && (a[11] == 0 || a[11] == '=')) dst = &thr, nl = 11;
        else if (!strncmp(a, "--hlog", 6) && (a[6] == 0 || a[6] == '=')) dst = &hlog, nl = 6;
        else if (!strncmp(a, "--csv", 5) && (a[5] == 0 || a[5] == '=')) dst = &csv, nl = 5;
        else if (!strncmp(a, "--ycsb-summary", 14) && (a[14] == 0 || a[14] == '=')) dst = &ycsb, nl = 14;
        else if (!strncmp(a, "--percentiles", 13) && (a[13] == 0 || a[13] == '=')) dst = &pcts, nl = 13;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
            continue;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: mqload merge FILE... [--json F] [--html F] [--threshold EXPR] [-q]\n"
                   "                    [--hlog F] [--csv F] [--ycsb-summary F] [--percentiles LIST]\n"
                   "  FILE: a result (mqload --json) or a log with framed results (mqload --json-framed)\n"
                   "  exit status as mqload's: 1 bad input or an output not written, 4 more errors than the\n"
                   "  runs' --max-error-rate, 3 the workers together fell short of their target rate,\n"
                   "  2 threshold violated (the first that applies in this order)\n");
            free(paths);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mqload merge: unknown option '%s'\n", a);
            free(paths);
            return 1;
        } else {
            paths[n++] = a;
            continue;
        }
        if (a[nl] == '=') *dst = a + nl + 1;
        else if (i + 1 < argc) *dst = argv[++i];
        else {
            fprintf(stderr, "mqload merge: option %s needs a value\n", a);
            free(paths);
            return 1;
        }
    }
    if (n == 0) {
        fprintf(stderr, "mqload merge: give one or more result files (mqload --json FILE)\n");
        free(paths);
        return 1;
    }
    char err[1024] = "";
    if (pcts && !mqload_parse_percentiles(pcts, x.pcts, MQLOAD_MAX_PERCENTILES, &x.n_pcts)) {
        fprintf(stderr, "mqload merge: --percentiles: expected percentiles in (0, 100) like 50,95,99.9; got '%s'\n", pcts);
        free(paths);
        return 1;
    }
    x.hlog = hlog ? strdup(hlog) : NULL;
    x.csv = csv ? strdup(csv) : NULL;
    x.ycsb_summary = ycsb ? strdup(ycsb) : NULL;
    mqload_threshold_t *th = NULL;
    if (thr && !(th = mqload_threshold_parse(thr, err, sizeof err))) {
        fprintf(stderr, "mqload merge: --threshold: %s\n", err);
        mqload_xopts_free(&x);
        free(paths);
        return 1;
    }
    mqload_result_t r;
    if (!mqload_merge_files(&r, paths, n, err, sizeof err)) {
        fprintf(stderr, "mqload merge: %s\n", err);
        mqload_threshold_free(th);
        mqload_xopts_free(&x);
        free(paths);
        return 1;
    }
    int rc = 0;
    memcpy(r.pcts, x.pcts, sizeof r.pcts);
    r.n_pcts = x.n_pcts;
    mqload_strbuf_t sb;
    mqload_sb_init(&sb);
    /* Failed, missing or late workers are in the text report's notes; say them when it is not shown. */
    if (r.notes[0] && (quiet || (json && !strcmp(json, "-")) || mqload_outputs_on_stdout(&x))) fprintf(stderr, "mqload merge: notes: %s\n", r.notes);
    if (!quiet && !(json && !strcmp(json, "-")) && !mqload_outputs_on_stdout(&x)) {
        mqload_report_text(&r, &sb);
        fputs(sb.s, stdout);
    }
    if (json) {
        sb.len = 0;
        mqload_report_json(&r, &sb);
        if (!mqload_write_file(json, sb.s, sb.len, err, sizeof err)) fprintf(stderr, "mqload merge: %s\n", err), rc = 1;
    }
    if (html) {
        sb.len = 0;
        mqload_report_html(&r, &sb);
        if (!mqload_write_file(html, sb.s, sb.len, err, sizeof err)) fprintf(stderr, "mqload merge: %s\n", err), rc = 1;
    }
    if (!mqload_write_outputs(&x, &r, err, sizeof err)) fprintf(stderr, "mqload merge: %s\n", err), rc = 1;
    mqload_xopts_free(&x);
    bool th_failed = false;
    if (th && rc == 0) {
        sb.len = 0;
        th_failed = !mqload_threshold_check(th, &r, &sb);
        fputs(sb.s, stderr);
    }
    /* The workers' own --max-error-rate (the first input's config), applied to all of them together. */
    bson_iter_t mi;
    double max_err = bson_iter_init_find(&mi, &r.config, "max_error_rate") && BSON_ITER_HOLDS_NUMBER(&mi)
                         ? bson_iter_as_double(&mi) : 1.0;
    if (r.completed && mqload_result_error_rate(&r) > max_err) {
        fprintf(stderr, "mqload merge: %.1f%% of the operations failed, more than the runs' --max-error-rate %g%% (exit 4)\n",
                100 * mqload_result_error_rate(&r), 100 * max_err);
        if (rc == 0) rc = 4;
    }
    if (mqload_result_shortfall(&r)) {
        /* The workers together fell short of their total target: the same verdict as one run's. */
        fprintf(stderr, "mqload merge: the target rate was not reached: %llu of %llu scheduled operations sent (exit 3)\n",
                (unsigned long long) r.submitted, (unsigned long long) r.scheduled);
        if (rc == 0) rc = 3;
    }
    if (rc == 0 && th_failed) rc = 2;
    mqload_sb_free(&sb);
    mqload_threshold_free(th);
    mqload_result_free(&r);
    free(paths);
    return rc;
}
