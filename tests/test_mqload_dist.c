/* mqload across many workers: shares, --start-at, framed results in logs, merge notes, four
 * local workers against FerretDB with exact merge checks and keys read back, the Kubernetes
 * manifest's schema check. */
#include <math.h>
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../cli/args.h"
#include "../cli/frame.h"
#include "../cli/merge.h"
#include "tf.h"

static int sh(const char *cmd, char *out, size_t outsz)
{
    tf_note("%s", cmd);
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ASSERT_MSG(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t) n + 1);
    ASSERT_NOT_NULL(buf);
    *len = fread(buf, 1, (size_t) n, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ASSERT_MSG(f != NULL, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

TEST("/mqload/dist/b64_roundtrip", mqload_dist_b64)
{
    const char *src = "any carnal pleasure.\x00\xff\x80";
    for (size_t len = 0; len <= 23; len++) {
        mqload_strbuf_t sb;
        mqload_sb_init(&sb);
        mqload_b64_encode(&sb, (const uint8_t *) src, len);
        uint8_t back[32];
        size_t n = 99;
        bool ok = mqload_b64_decode(sb.s, sb.len, back, &n);
        size_t enc = sb.len;
        mqload_sb_free(&sb);
        ASSERT(ok);
        ASSERT_EQ(enc, (len + 2) / 3 * 4);
        ASSERT_EQ(n, len);
        ASSERT(memcmp(back, src, len) == 0);
    }
    uint8_t out[8];
    size_t n;
    ASSERT(!mqload_b64_decode("QUJD=", 5, out, &n));  /* length */
    ASSERT(!mqload_b64_decode("Q=JD", 4, out, &n));   /* '=' inside */
    ASSERT(!mqload_b64_decode("QU*D", 4, out, &n));   /* alphabet */
    ASSERT(mqload_b64_decode("TWE=", 4, out, &n) && n == 2 && out[0] == 'M' && out[1] == 'a');
}

TEST("/mqload/dist/frames_in_noisy_logs", mqload_dist_frames)
{
    /* Two workers' frames interleaved line by line, each line prefixed the way kubectl logs
     * --prefix --timestamps does, plus a worker that failed and one cut off mid-frame. */
    char big[5000];
    for (size_t i = 0; i < sizeof big - 1; i++) big[i] = (char) ('a' + i % 26);
    big[sizeof big - 1] = 0;
    mqload_strbuf_t a, b, log;
    mqload_sb_init(&a), mqload_sb_init(&b), mqload_sb_init(&log);
    mqload_frame_result(&a, 1, big, strlen(big), 0);
    mqload_frame_result(&b, 2, "{\"x\": 1}", 8, 2);
    char *pa = a.s, *pb = b.s;
    mqload_sb_puts(&log, "starting...\nmqload 0.1.0 text report\n");
    while (*pa || *pb) {
        char *ea = *pa ? strchr(pa, '\n') : NULL, *eb = *pb ? strchr(pb, '\n') : NULL;
        if (ea) mqload_sb_printf(&log, "[pod/mqload-1-abc/mqload] 2030-01-01T00:00:00.1Z %.*s\n", (int) (ea - pa), pa), pa = ea + 1;
        if (eb) mqload_sb_printf(&log, "[pod/mqload-2-xyz/mqload] %.*s\r\n", (int) (eb - pb), pb), pb = eb + 1;
    }
    mqload_frame_failed(&log, 3, 1, "cannot use the server\nat x");
    mqload_sb_puts(&log, "MQLOAD-RESULT-BEGIN 4 100\nMQLOAD-RESULT-DATA 4 QUJD\n");
    mqload_frame_t *fr;
    size_t n = mqload_frames_scan(log.s, log.len, &fr);
    mqload_sb_free(&a), mqload_sb_free(&b), mqload_sb_free(&log);
    ASSERT_EQ(n, 4);
    ASSERT_EQ(fr[0].kind, MQLOAD_FRAME_RESULT);
    ASSERT_EQ(fr[0].worker, 2);
    ASSERT_EQ(fr[0].exit_status, 2);
    ASSERT_STR_EQ(fr[0].json, "{\"x\": 1}");
    ASSERT_EQ(fr[1].kind, MQLOAD_FRAME_RESULT);
    ASSERT_EQ(fr[1].worker, 1);
    ASSERT_EQ(fr[1].len, strlen(big));
    ASSERT(strcmp(fr[1].json, big) == 0);
    ASSERT_EQ(fr[2].kind, MQLOAD_FRAME_FAILED);
    ASSERT_EQ(fr[2].worker, 3);
    ASSERT_STR_EQ(fr[2].message, "cannot use the server at x");
    ASSERT_EQ(fr[3].kind, MQLOAD_FRAME_BROKEN);
    ASSERT_EQ(fr[3].worker, 4);
    mqload_frames_free(fr, n);
}

TEST("/mqload/dist/start_at_parse", mqload_dist_start_at)
{
    double t;
    ASSERT(mqload_parse_start_at("2030-01-02T03:04:05Z", &t));
    ASSERT_DBL_NEAR(t, 1893553445.0, 0);
    ASSERT(mqload_parse_start_at("2030-01-02t05:04:05.25+02:00", &t));
    ASSERT_DBL_NEAR(t, 1893553445.25, 1e-6);
    ASSERT(mqload_parse_start_at("2030-01-02 02:34:05-00:30", &t));
    ASSERT_DBL_NEAR(t, 1893553445.0, 0);
    ASSERT(mqload_parse_start_at("1893553445.5", &t));
    ASSERT_DBL_NEAR(t, 1893553445.5, 0);
    const char *bad[] = {"", "soon", "2030-01-02", "2030-01-02T03:04:05", "2030-13-02T03:04:05Z", "1e9", "-5",
                         "2030-01-02T03:04:05Zjunk", "0x10", "2030-01-02T03:04:05.Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) ASSERT_MSG(!mqload_parse_start_at(bad[i], &t), "accepted '%s'", bad[i]);
}

static mqload_args_rc_t parse_worker(mqload_config_t *cfg, const char *jci, const char *workers_env, const char *const *args,
                                     char *err, size_t esz)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *) "mqload";
    for (size_t i = 0; args[i]; i++) argv[argc++] = (char *) args[i];
    unsetenv("MQLOAD_URI");
    if (jci) setenv("JOB_COMPLETION_INDEX", jci, 1);
    else unsetenv("JOB_COMPLETION_INDEX");
    if (workers_env) setenv("MQLOAD_WORKERS", workers_env, 1);
    else unsetenv("MQLOAD_WORKERS");
    mqload_config_init(cfg);
    mqload_args_rc_t rc = mqload_args_parse(cfg, argc, argv, stdout, err, esz);
    unsetenv("JOB_COMPLETION_INDEX");
    unsetenv("MQLOAD_WORKERS");
    return rc;
}

TEST("/mqload/dist/worker_shares", mqload_dist_shares)
{
    char err[512];
    mqload_config_t cfg;
    uint64_t conc = 0, reqs = 0;
    const uint32_t want_c[] = {3, 3, 2, 2};
    for (int i = 0; i < 4; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        /* Index from the Job's env, count from MQLOAD_WORKERS: 10 in flight and 7 requests over 4. */
        mqload_args_rc_t rc = parse_worker(&cfg, idx, "4", (const char *const[]) {"-c", "10", "-n", "7", NULL}, err, sizeof err);
        uint32_t c = cfg.concurrency, w = cfg.workers, wi = cfg.worker_index, ct = cfg.concurrency_total;
        uint64_t r = cfg.requests;
        mqload_config_free(&cfg);
        ASSERT_MSG(rc == MQLOAD_ARGS_RUN, "%s", err);
        ASSERT_EQ(w, 4);
        ASSERT_EQ(wi, (uint32_t) i);
        ASSERT_EQ(c, want_c[i]);
        ASSERT_EQ(ct, 10);
        ASSERT_EQ(r, i < 3 ? 2u : 1u);
        conc += c, reqs += r;
    }
    ASSERT_EQ(conc, 10);
    ASSERT_EQ(reqs, 7);
    /* Flags win over the environment. */
    mqload_args_rc_t rc = parse_worker(&cfg, "1", "4", (const char *const[]) {"--workers", "2", "--worker-index", "0",
                                                                               "--start-at", "1893553445", NULL}, err, sizeof err);
    uint32_t w = cfg.workers, wi = cfg.worker_index;
    double sa = cfg.start_at;
    mqload_config_free(&cfg);
    ASSERT_EQ(rc, MQLOAD_ARGS_RUN);
    ASSERT_EQ(w, 2);
    ASSERT_EQ(wi, 0);
    ASSERT_DBL_NEAR(sa, 1893553445, 0);
    /* An index from the Job without a worker count is an error, not a silent overlap of keys. */
    rc = parse_worker(&cfg, "3", NULL, (const char *const[]) {NULL}, err, sizeof err);
    mqload_config_free(&cfg);
    ASSERT_EQ(rc, MQLOAD_ARGS_ERROR);
    ASSERT_STR_CONTAINS(err, "JOB_COMPLETION_INDEX");
    /* 4 in flight over 8 workers: workers 0..3 take one each, worker 5 would have none. */
    rc = parse_worker(&cfg, "5", "8", (const char *const[]) {"-c", "4", NULL}, err, sizeof err);
    mqload_config_free(&cfg);
    ASSERT_EQ(rc, MQLOAD_ARGS_ERROR);
    ASSERT_STR_CONTAINS(err, "below --workers");
    rc = parse_worker(&cfg, NULL, "x", (const char *const[]) {NULL}, err, sizeof err);
    mqload_config_free(&cfg);
    ASSERT_EQ(rc, MQLOAD_ARGS_ERROR);
    ASSERT_STR_CONTAINS(err, "MQLOAD_WORKERS");
}

/* The keys a worker's lanes insert (keys + lane + lanes * i) tell which worker inserted a document. */
static void read_back_keys(const char *uri, const char *db, uint64_t keys, uint64_t lanes, uint64_t *per_worker, uint64_t *total)
{
    mongoc_client_t *c = mongoc_client_new(uri);
    ASSERT_NOT_NULL(c);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, db, "bench");
    bson_t *filter = BCON_NEW("_id", "{", "$gte", BCON_INT64((int64_t) keys), "}");
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    bson_iter_t it;
    *total = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_NUMBER(&it)) continue;
        uint64_t k = (uint64_t) bson_iter_as_int64(&it);
        per_worker[(k - keys) % lanes]++; /* one lane per worker here (-t 1) */
        (*total)++;
    }
    bson_error_t be;
    bool failed = mongoc_cursor_error(cur, &be);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(c);
    ASSERT_MSG(!failed, "reading back: %s", be.message);
}

TEST("/mqload/dist/four_workers_merge_exactly", mqload_dist_four_workers)
{
    char bin[1024];
    snprintf(bin, sizeof bin, "%s/mqload", tf_build_dir());
    if (access(bin, X_OK) != 0) SKIP("%s is not built", bin);
    const char *uri = tf_server_uri("plain");
    const char *dir = tf_tmpdir();
    const char *db = tf_unique("mqdist");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* One start for all, far enough ahead for four processes to connect and seed. */
    double start_at = floor(((double) now.tv_sec + (double) now.tv_nsec / 1e9 + 2.5) * 1000) / 1000;
    char cmd[8192], out[65536];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && for i in 0 1 2 3; do '%s' --uri '%s' --db %s --mix insert=50,find=50 --seed 200 -R 400 -c 8 "
             "-d 2 --warmup 0 --workers 4 --worker-index $i --start-at %.3f --json w$i.json --json-framed --no-progress "
             "> log$i.txt 2> err$i.txt & done; wait; cat err*.txt",
             dir, bin, uri, db, start_at);
    int rc = sh(cmd, out, sizeof out);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    ASSERT_STR_CONTAINS(out, "waiting");

    /* Merge the four JSON files, then compare with the sum of the four, exactly. */
    char paths[4][700], logs[4][700];
    const char *pp[4], *lp[4];
    for (int i = 0; i < 4; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/w%d.json", dir, i);
        snprintf(logs[i], sizeof logs[i], "%s/log%d.txt", dir, i);
        pp[i] = paths[i], lp[i] = logs[i];
    }
    char err[1024];
    mqload_result_t m, w[4];
    ASSERT_MSG(mqload_merge_files(&m, pp, 4, err, sizeof err), "%s", err);
    mqload_hist_t *sum = mqload_hist_new();
    uint64_t completed = 0, ok = 0, errors = 0, inserts_ok[4] = {0}, tl_w = 0, tl_m = 0;
    double thr = 0, late = 0;
    for (int i = 0; i < 4; i++) {
        const char *one[1] = {pp[i]};
        ASSERT_MSG(mqload_merge_files(&w[i], one, 1, err, sizeof err), "%s", err);
        completed += w[i].completed, ok += w[i].ok, errors += w[i].errors;
        thr += mqload_result_throughput(&w[i]);
        mqload_hist_merge(sum, w[i].hist);
        for (size_t k = 0; k < w[i].n_ops; k++)
            if (!strcmp(w[i].ops[k].name, "insert")) inserts_ok[i] = w[i].ops[k].ok;
        for (size_t s = 0; s < w[i].n_seconds; s++) tl_w += w[i].timeline[s].ops;
        if (fabs(w[i].start_unix - start_at) > late) late = fabs(w[i].start_unix - start_at);
    }
    for (size_t s = 0; s < m.n_seconds; s++) tl_m += m.timeline[s].ops;
    bool same = sum->total == m.hist->total && sum->min_ns == m.hist->min_ns && sum->max_ns == m.hist->max_ns;
    for (size_t i = 0; i < MQLOAD_HIST_BUCKETS; i++) same = same && sum->counts[i] == m.hist->counts[i];
    uint64_t mc = m.completed, ms = m.submitted, mok = m.ok, merr = m.errors, ins_total = inserts_ok[0] + inserts_ok[1] +
                                                                                      inserts_ok[2] + inserts_ok[3];
    double mthr = mqload_result_throughput(&m), mdur = m.duration_s;
    char notes[1024];
    snprintf(notes, sizeof notes, "%s", m.notes);
    mqload_hist_destroy(sum);
    mqload_result_free(&m);
    for (int i = 0; i < 4; i++) mqload_result_free(&w[i]);
    ASSERT(same);
    ASSERT_GT(completed, 200); /* 400/s for 2 s asked; FerretDB on a busy machine (ASan, fuzzers) gave 388 */
    ASSERT_EQ(mc, completed);
    ASSERT_EQ(ms, mc);
    ASSERT_EQ(mok, ok);
    ASSERT_EQ(merr, errors);
    ASSERT_EQ(errors, 0);     /* a DuplicateKey would show here */
    ASSERT_EQ(tl_m, tl_w);
    ASSERT_EQ(tl_m, completed);
    ASSERT_DBL_NEAR(late, 0, 1e-5); /* every window starts at --start-at */
    ASSERT_DBL_NEAR(mdur, 2.0, 0.05);
    ASSERT_DBL_NEAR(mthr, thr, thr * 1e-9);
    ASSERT_MSG(notes[0] == 0, "notes: %s", notes);

    /* Keys: every inserted document is there once, and in its worker's lane (no warmup: every
     * insert was measured). */
    uint64_t per_lane[4] = {0}, found = 0;
    read_back_keys(uri, db, 200, 4, per_lane, &found);
    ASSERT_EQ(found, ins_total);
    for (int i = 0; i < 4; i++) ASSERT_EQ(per_lane[i], inserts_ok[i]);

    /* The same results read from the pods' logs, concatenated with noise: the same merge. */
    mqload_result_t ml;
    ASSERT_MSG(mqload_merge_files(&ml, lp, 4, err, sizeof err), "%s", err);
    uint64_t lc = ml.completed, lt = ml.hist->total;
    mqload_result_free(&ml);
    ASSERT_EQ(lc, completed);
    ASSERT_EQ(lt, completed);

    /* Worker 2's log says it failed, worker 3 left nothing: merged, with both in the notes. */
    char failed_log[800];
    snprintf(failed_log, sizeof failed_log, "%s/failed.log", dir);
    spit(failed_log, "MQLOAD-RESULT-FAILED 2 1 cannot use the server at mongodb://h/: network error\n");
    const char *partial[3] = {lp[0], lp[1], failed_log};
    ASSERT_MSG(mqload_merge_files(&ml, partial, 3, err, sizeof err), "%s", err);
    snprintf(notes, sizeof notes, "%s", ml.notes);
    lc = ml.completed;
    mqload_result_free(&ml);
    ASSERT_STR_CONTAINS(notes, "worker 2 failed without a result (exit 1): cannot use the server");
    ASSERT_STR_CONTAINS(notes, "no result from worker 3 of 4");
    ASSERT_LT(lc, completed);

    /* A worker twice would count twice: refused. */
    const char *twice[2] = {pp[1], lp[1]};
    ASSERT(!mqload_merge_files(&ml, twice, 2, err, sizeof err));
    ASSERT_STR_CONTAINS(err, "appears twice");

    /* Another workload: refused with both ids named. */
    size_t len;
    char *text = slurp(pp[3], &len);
    char *id = strstr(text, "\"workload_id\":\"");
    ASSERT_NOT_NULL(id);
    memcpy(id + 15, "0123456789abcdef", 16);
    char other[800];
    snprintf(other, sizeof other, "%s/other.json", dir);
    spit(other, text);
    free(text);
    const char *mixed[4] = {pp[0], pp[1], pp[2], other};
    ASSERT(!mqload_merge_files(&ml, mixed, 4, err, sizeof err));
    ASSERT_STR_CONTAINS(err, "different workloads");
    ASSERT_STR_CONTAINS(err, "0123456789abcdef");

    /* And the command line: a log that is not one. */
    snprintf(cmd, sizeof cmd, "'%s' merge '%s/err0.txt' 2>&1", bin, dir);
    rc = sh(cmd, out, sizeof out);
    ASSERT_EQ(rc, 1);
    ASSERT_STR_CONTAINS(out, "neither an mqload JSON result nor a log");
}

TEST("/mqload/dist/late_worker_noted", mqload_dist_late)
{
    char bin[1024];
    snprintf(bin, sizeof bin, "%s/mqload", tf_build_dir());
    if (access(bin, X_OK) != 0) SKIP("%s is not built", bin);
    const char *uri = tf_server_uri("plain");
    const char *dir = tf_tmpdir();
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char cmd[4096], out[65536], path[700];
    /* A start in the past: the worker runs at once, on the common second grid, and says so. */
    snprintf(path, sizeof path, "%s/late.json", dir);
    snprintf(cmd, sizeof cmd, "'%s' --uri '%s' --op command -c 2 -d 3 --warmup 0 --workers 2 --worker-index 1 "
             "--start-at %lld --start-tolerance 0.5 --json '%s' -q 2>&1", bin, uri, (long long) now.tv_sec - 1, path);
    int rc = sh(cmd, out, sizeof out);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    ASSERT_STR_CONTAINS(out, "after --start-at");
    const char *one[1] = {path};
    char err[512];
    mqload_result_t m;
    ASSERT_MSG(mqload_merge_files(&m, one, 1, err, sizeof err), "%s", err);
    char notes[1024];
    snprintf(notes, sizeof notes, "%s", m.notes);
    double su = m.start_unix;
    uint64_t first = m.n_seconds ? m.timeline[0].ops : 1;
    mqload_result_free(&m);
    ASSERT_STR_CONTAINS(notes, "worker 1 started");
    ASSERT_STR_CONTAINS(notes, "no result from worker 0 of 2");
    ASSERT_DBL_NEAR(su, (double) now.tv_sec - 1, 0);
    ASSERT_EQ(first, 0); /* it was not there in the first second */
}

TEST("/mqload/dist/manifest_validates", mqload_dist_manifest)
{
    char cmd[2048], out[16384];
    snprintf(cmd, sizeof cmd, "'%s/deploy/k8s/validate' 2>&1", tf_src_dir());
    int rc = sh(cmd, out, sizeof out);
    if (rc == 77) SKIP("no schema validator: %s", out);
    ASSERT_MSG(rc == 0, "exit %d: %s", rc, out);
    ASSERT_STR_CONTAINS(out, "Job");
}
