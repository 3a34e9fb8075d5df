/* engine_mongoc: the same workload on libmongoc's mongoc_client_pool_t, the way a threaded
 * application uses it: one blocking thread per operation in flight. Closed loop: --concurrency
 * threads, each doing one operation after another. Open loop (--rate): a pool of threads takes
 * operation numbers k from a shared counter, sleeps until t0 + k / rate and times from that
 * intended moment, like the mqc engine; one taken after the window closed is counted as unsent, and
 * the warmup's backlog is dropped when the window opens. Statistics are per thread, as in the mqc
 * engine. */
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "sched.h"
#include "seed.h"

typedef struct mgthread mgthread_t;

typedef struct {
    mongoc_uri_t *uri;
    mongoc_client_pool_t *pool;
    mgthread_t *threads;
    size_t n;
    _Atomic uint64_t next_k;      /* open loop: the next operation number to take */
    mqload_sched_t sched;         /* copied by each thread (lookups keep a cursor) */
    _Atomic uint64_t max_backlog;
} mongoc_engine_t;

struct mgthread {
    mqload_run_t *run;
    mongoc_engine_t *e;
    size_t index;
    pthread_t tid;
    bool started;
    mqload_wl_thread_t wl;
    mqload_opinst_t oi;
    uint64_t requests_left;
    bson_t opts;
};

/* Names of the codes a load test meets most, so that mongoc's errors group like mqc's. */
static const char *code_name(uint32_t code)
{
    switch (code) {
    case 2: return "BadValue";
    case 11: return "UserNotFound";
    case 13: return "Unauthorized";
    case 18: return "AuthenticationFailed";
    case 26: return "NamespaceNotFound";
    case 50: return "MaxTimeMSExpired";
    case 59: return "CommandNotFound";
    case 91: return "ShutdownInProgress";
    case 112: return "WriteConflict";
    case 262: return "ExceededTimeLimit";
    case 10107: return "NotWritablePrimary";
    case 11000: return "DuplicateKey";
    case 13435: return "NotPrimaryNoSecondaryOk";
    default: return NULL;
    }
}

static void error_kind(const bson_error_t *e, char *out, size_t outsz)
{
    const char *name = code_name(e->code);
    if (e->domain == MONGOC_ERROR_SERVER || e->domain == MONGOC_ERROR_QUERY || e->domain == MONGOC_ERROR_COLLECTION ||
        e->domain == MONGOC_ERROR_COMMAND) {
        const char *dom = e->code == 11000 ? "write" : "server";
        if (name) snprintf(out, outsz, "%s:%s(%u)", dom, name, e->code);
        else snprintf(out, outsz, "%s:%u", dom, e->code);
    } else if (e->domain == MONGOC_ERROR_WRITE_CONCERN) {
        snprintf(out, outsz, "write_concern:%u", e->code);
    } else if (e->domain == MONGOC_ERROR_STREAM) {
        snprintf(out, outsz, strstr(e->message, "timed out") || strstr(e->message, "timeout") ? "timeout:socket" : "network");
    } else if (e->domain == MONGOC_ERROR_SERVER_SELECTION) {
        snprintf(out, outsz, "selection");
    } else if (e->domain == MONGOC_ERROR_CLIENT && e->code == MONGOC_ERROR_CLIENT_AUTHENTICATE) {
        snprintf(out, outsz, "auth");
    } else {
        snprintf(out, outsz, "client:%u.%u", e->domain, e->code);
    }
}

static bool drain(mongoc_cursor_t *c, bson_error_t *be)
{
    const bson_t *doc;
    while (mongoc_cursor_next(c, &doc)) {}
    bool ok = !mongoc_cursor_error(c, be);
    mongoc_cursor_destroy(c);
    return ok;
}

/* One operation, blocking. */
static bool execute(mgthread_t *t, mongoc_client_t *client, mongoc_collection_t *coll, bson_error_t *be)
{
    mqload_opinst_t *oi = &t->oi;
    const mqload_opdef_t *def = &t->run->wl->ops[oi->op];
    bson_t o = BSON_INITIALIZER;
    bool ok;
    bson_concat(&o, &t->opts);
    switch (oi->type) {
    case MQLOAD_OP_FIND:
    case MQLOAD_OP_RMW:
        BSON_APPEND_INT32(&o, "limit", 1);
        BSON_APPEND_BOOL(&o, "singleBatch", true);
        ok = drain(mongoc_collection_find_with_opts(coll, oi->filter, &o, NULL), be);
        if (ok && oi->type == MQLOAD_OP_RMW) {
            mqload_wl_rmw_update(&t->wl, oi);
            ok = mongoc_collection_update_one(coll, oi->filter, oi->update, &t->opts, NULL, be);
        }
        break;
    case MQLOAD_OP_INSERT:
        ok = mongoc_collection_insert_one(coll, oi->document, &t->opts, NULL, be);
        break;
    case MQLOAD_OP_UPDATE:
        ok = mongoc_collection_update_one(coll, oi->filter, oi->update, &t->opts, NULL, be);
        break;
    case MQLOAD_OP_DELETE:
        ok = mongoc_collection_delete_one(coll, oi->filter, &t->opts, NULL, be);
        break;
    case MQLOAD_OP_COUNT:
        ok = mongoc_collection_count_documents(coll, oi->filter, &t->opts, NULL, NULL, be) >= 0;
        break;
    case MQLOAD_OP_COMMAND:
        ok = mongoc_client_command_with_opts(client, def->cmd_db, oi->command, NULL, &t->opts, NULL, be);
        break;
    case MQLOAD_OP_AGGREGATE:
        bson_concat(&o, oi->options);
        ok = drain(mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, oi->pipeline, &o, NULL), be);
        break;
    case MQLOAD_OP_SCAN:
        bson_concat(&o, oi->options);
        ok = drain(mongoc_collection_find_with_opts(coll, oi->filter, &o, NULL), be);
        break;
    default:
        abort();
    }
    bson_destroy(&o);
    return ok;
}

static void sleep_until(int64_t when)
{
    for (;;) {
        int64_t d = when - mqload_now_ns();
        if (d <= 0) return;
        struct timespec ts = {d / 1000000000, d % 1000000000};
        nanosleep(&ts, NULL);
    }
}

static void *thread_main(void *arg)
{
    mgthread_t *t = arg;
    mqload_run_t *run = t->run;
    mqload_tstats_t *st = &run->stats[t->index];
    bool open_loop = run->cfg->open_loop;
    mqload_sched_t sched = t->e->sched;
    mongoc_client_t *client = mongoc_client_pool_pop(t->e->pool);
    mongoc_collection_t *coll = mongoc_client_get_collection(client, run->wl->db, run->wl->collection);
    sleep_until(run->t0_ns);
    for (;;) {
        int64_t start;
        int stage = -1;
        if (atomic_load_explicit(&run->stop, memory_order_relaxed)) break;
        if (open_loop) {
            uint64_t k = atomic_fetch_add_explicit(&t->e->next_k, 1, memory_order_relaxed);
            start = mqload_sched_time(&sched, k);
            if (start >= run->end_ns) break;
            sleep_until(start);
            if (atomic_load_explicit(&run->stop, memory_order_relaxed)) break;
            int64_t now = mqload_now_ns();
            if (start < run->measure_ns && now >= run->measure_ns) continue; /* the warmup's backlog */
            stage = start >= run->measure_ns ? mqload_sched_stage_at(&sched, start) : -1;
            if (start >= run->measure_ns && now >= run->end_ns) {
                st->r.unsent++; /* due in the window, never sent: every thread was busy until it closed */
                if ((uint64_t) (run->end_ns - start) > st->r.unsent_wait_ns) st->r.unsent_wait_ns = (uint64_t) (run->end_ns - start);
                if (stage >= 0 && (size_t) stage < st->r.n_stages) st->r.stages[stage].unsent++;
                continue;
            }
            if (now >= run->measure_ns) {
                uint64_t backlog = mqload_sched_count_before(&sched, now + 1) - k - 1, prev = atomic_load(&t->e->max_backlog);
                if ((int64_t) backlog < 0) backlog = 0;
                while (backlog > prev && !atomic_compare_exchange_weak(&t->e->max_backlog, &prev, backlog)) {}
                atomic_store_explicit(&st->a_backlog, backlog, memory_order_relaxed);
            }
        } else {
            start = mqload_now_ns();
            if (start >= run->end_ns) break;
        }
        bool measured = start >= run->measure_ns;
        if (measured && t->requests_left == 0) break;
        mqload_wl_next(&t->wl, &t->oi);
        if (measured) {
            st->r.submitted++;
            if (t->requests_left != UINT64_MAX) t->requests_left--;
            if (open_loop) {
                int64_t now = mqload_now_ns(), lag = now - start;
                mqload_tstats_sent(st, (uint64_t) (lag > 0 ? lag : 0), stage, (now - run->measure_ns) / 1000000000);
            }
        }
        atomic_fetch_add_explicit(&st->a_submitted, 1, memory_order_relaxed);
        bson_error_t be;
        memset(&be, 0, sizeof be);
        bool ok = execute(t, client, coll, &be);
        int64_t now = mqload_now_ns();
        if (measured) {
            char kind[96];
            if (!ok) error_kind(&be, kind, sizeof kind);
            mqload_tstats_record_full(st, t->oi.op, (uint64_t) (now - start), ok ? NULL : kind, ok ? NULL : be.message,
                                      (now - run->measure_ns) / 1000000000, stage);
            int64_t prev = atomic_load_explicit(&run->last_done_ns, memory_order_relaxed);
            while (now > prev && !atomic_compare_exchange_weak_explicit(&run->last_done_ns, &prev, now,
                                                                        memory_order_relaxed, memory_order_relaxed)) {}
        } else if (!ok) {
            atomic_fetch_add_explicit(&st->a_errors, 1, memory_order_relaxed); /* the live line's */
        }
        atomic_fetch_add_explicit(&st->a_completed, 1, memory_order_relaxed);
        if (now >= run->measure_ns) mqload_tstats_flush(st, (now - run->measure_ns) / 1000000000);
    }
    mqload_tstats_flush(st, INT64_MAX);
    mongoc_collection_destroy(coll);
    mongoc_client_pool_push(t->e->pool, client);
    atomic_fetch_add(&run->threads_done, 1);
    return NULL;
}

/* libmongoc logs warnings (e.g. servers without endSessions) to stderr by default: keep only
 * errors, so the report and the progress line stay readable. */
static void quiet_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void) ud;
    if (level <= MONGOC_LOG_LEVEL_ERROR) fprintf(stderr, "mqload: libmongoc %s: %s\n", domain, message);
}

bool mqload_mongoc_prepare(mqload_run_t *run, char *err, size_t esz)
{
    const mqload_config_t *cfg = run->cfg;
    mongoc_init();
    mongoc_log_set_handler(quiet_log, NULL);
    mongoc_engine_t *e = calloc(1, sizeof *e);
    if (!e) abort();
    run->engine = e;
    bson_error_t be;
    e->uri = mongoc_uri_new_with_error(run->uri, &be);
    if (!e->uri) {
        /* libmongoc's message may quote the URI: do not repeat it. */
        snprintf(err, esz, "bad --uri %s: libmongoc rejects it", run->uri_redacted);
        return false;
    }
    e->pool = mongoc_client_pool_new(e->uri);
    if (!e->pool) {
        snprintf(err, esz, "bad --uri %s: libmongoc cannot make a pool from it", run->uri_redacted);
        return false;
    }
    mongoc_client_pool_set_error_api(e->pool, MONGOC_ERROR_API_VERSION_2);
    /* A thread per operation in flight, and per thread a pooled client. */
    e->n = mqload_engine_threads(cfg);
    if (cfg->stages_kind == MQLOAD_STAGES_CONCURRENCY) {
        snprintf(err, esz, "--concurrency-stages need --engine mqc (the mongoc engine has one thread per operation in flight)");
        return false;
    }
    mongoc_client_pool_max_size(e->pool, (uint32_t) e->n + 1);
    e->threads = calloc(e->n, sizeof *e->threads);
    run->n_stats = e->n;
    run->stats = calloc(e->n, sizeof *run->stats);
    if (!e->threads || !run->stats) abort();
    for (size_t i = 0; i < e->n; i++) {
        mqload_tstats_init(&run->stats[i]);
        if (cfg->stages_kind) mqload_result_stages(&run->stats[i].r, "rate", cfg->n_stages);
        for (size_t k = 0; k < run->wl->n_ops; k++)
            mqload_result_op(&run->stats[i].r, run->wl->ops[k].name, mqload_op_type_name(run->wl->ops[k].type));
        mgthread_t *t = &e->threads[i];
        t->run = run;
        t->e = e;
        t->index = i;
        mqload_opinst_init(&t->oi);
        bson_init(&t->opts);
        if (cfg->timeout_s > 0) BSON_APPEND_INT64(&t->opts, "maxTimeMS", (int64_t) (cfg->timeout_s * 1000 + 0.5));
        t->requests_left = cfg->requests ? mqload_share(cfg->requests, e->n, i) : UINT64_MAX;
        if (!mqload_wl_thread_init(&t->wl, run->wl, run->rng_seed, run->lane0 + i, run->lanes, err, esz)) return false;
    }
    run->conns_opened = UINT64_MAX; /* libmongoc does not count them for us */
    return true;
}

bool mqload_mongoc_check(mqload_run_t *run, char *err, size_t esz)
{
    mongoc_engine_t *e = run->engine;
    mongoc_client_t *c = mongoc_client_pool_pop(e->pool);
    bson_t ping = BSON_INITIALIZER;
    bson_error_t be;
    BSON_APPEND_INT32(&ping, "ping", 1);
    bool ok = mongoc_client_command_simple(c, "admin", &ping, NULL, NULL, &be);
    bson_destroy(&ping);
    mongoc_client_pool_push(e->pool, c);
    if (!ok) snprintf(err, esz, "cannot use the server at %s: %s", run->uri_redacted, be.message);
    return ok;
}

bool mqload_mongoc_seed(mqload_run_t *run, char *err, size_t esz)
{
    mongoc_engine_t *e = run->engine;
    mongoc_client_t *c = mongoc_client_pool_pop(e->pool);
    bool ok = mqload_seed_mongoc(c, run, err, esz);
    mongoc_client_pool_push(e->pool, c);
    return ok;
}

bool mqload_mongoc_start(mqload_run_t *run, char *err, size_t esz)
{
    mongoc_engine_t *e = run->engine;
    /* The schedule is one for all threads (they take operation numbers from one counter). */
    mqload_sched_init_rate(&e->sched, run->cfg, (double) run->cfg->workers, run->t0_ns);
    for (size_t i = 0; i < e->n; i++) {
        if (pthread_create(&e->threads[i].tid, NULL, thread_main, &e->threads[i]) != 0) {
            snprintf(err, esz, "cannot start thread %zu of %zu", i, e->n);
            atomic_store(&run->stop, 1);
            return false;
        }
        e->threads[i].started = true;
    }
    return true;
}

void mqload_mongoc_join(mqload_run_t *run)
{
    mongoc_engine_t *e = run->engine;
    for (size_t i = 0; i < e->n; i++)
        if (e->threads[i].started) pthread_join(e->threads[i].tid, NULL), e->threads[i].started = false;
    if (!run->cfg->open_loop || !e->n) return;
    /* Operations due in the window that no thread took (an interruption): unsent as well. */
    mqload_result_t *r0 = &run->stats[0].r;
    int64_t limit = run->end_ns, s_ns = atomic_load(&run->stop_ns);
    if (s_ns && s_ns < limit) limit = s_ns;
    uint64_t from = mqload_sched_count_before(&e->sched, run->measure_ns), taken = atomic_load(&e->next_k);
    uint64_t to = mqload_sched_count_before(&e->sched, limit);
    if (taken > from) from = taken;
    if (to > from && run->cfg->requests == 0) r0->unsent += to - from;
    r0->max_backlog = atomic_load(&e->max_backlog);
    for (size_t i = 0; i < e->n; i++) {
        mqload_result_t *r = &run->stats[i].r;
        r->open_loop = true;
        r->scheduled = r->submitted + r->unsent;
        for (size_t k = 0; k < r->n_stages; k++) r->stages[k].scheduled = r->stages[k].submitted + r->stages[k].unsent;
    }
}

void mqload_mongoc_cleanup(mqload_run_t *run)
{
    mongoc_engine_t *e = run->engine;
    if (!e) return;
    for (size_t i = 0; e->threads && i < e->n; i++) {
        mgthread_t *t = &e->threads[i];
        if (t->wl.wl) mqload_wl_thread_free(&t->wl);
        if (t->run) mqload_opinst_free(&t->oi), bson_destroy(&t->opts);
    }
    free(e->threads);
    mongoc_client_pool_destroy(e->pool);
    mongoc_uri_destroy(e->uri);
    free(e);
    run->engine = NULL;
    mongoc_cleanup();
}
