/* runner: the mqc engine. Each thread owns a libev loop, an mqc client, its workload instance and
 * its statistics; nothing is shared on the hot path.
 *
 * Closed loop (default): a thread keeps its share of --concurrency operations in flight, each
 * slot submitting the next operation from the previous one's callback; latency runs from submit
 * to callback. Open loop (--rate, --stages): operation k of a thread is due at its intended time
 * (sched.h); a timer submits every operation that is due, and latency runs from the time it was
 * due (not when it could be sent), so a stalled server shows in the tail instead of slowing the
 * generator down (wrk2's answer to coordinated omission). An operation waiting for a free slot
 * under the in-flight cap waits in its latency; one still unsent when the window closes is
 * counted as unsent, never dropped silently. The warmup's unsent backlog is dropped when the
 * window opens: it was never measured and would only delay the window's own operations.
 * --concurrency-stages ramp a closed loop's slots up and down on the tick.
 *
 * At the end (or on Ctrl-C) submission stops, operations in flight get --grace to finish, then
 * the client is destroyed, which ends the rest with an error: every submitted operation is
 * completed exactly once. */
#include <ev.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "mqc.h"
#include "sched.h"
#include "seed.h"

#define TICK_S 0.05

typedef struct mqthread mqthread_t;

/* A read-modify-write between its read and its write: the same key and filter for the write. */
typedef struct {
    int64_t key;
    bson_t *filter;
} rmw_t;

/* One operation in flight: 24 bytes, since a run may keep 100,000 of them (the memory goal is
 * per operation in flight, library included; docs/internals/performance.md). The drawn documents
 * live in the thread's one draw (its buffers, or a template's own bytes) only while the operation
 * is submitted (the library copies what it is given), so a slot keeps only what its completion
 * needs; its thread is found from the block it sits in. */
typedef struct slot {
    int64_t start_ns;       /* submit time (closed) or intended time (open) */
    union {
        rmw_t *rmw;         /* in flight: a read-modify-write's read, else NULL */
        struct slot *next_free; /* resting in the thread's free list */
    } u;
    int32_t stage;          /* the --stages stage it belongs to, -1 for none */
    uint8_t op;             /* index into the workload's ops (MQLOAD_MAX_OPS fits) */
    bool measured;
} slot_t;

/* Slots come in blocks that never move (a slot's address is the callbacks' ud), aligned to their
 * size so that a slot's block, and so its thread, is its address rounded down. */
#define SLOT_BLOCK_BYTES 16384
typedef struct {
    mqthread_t *t;
    slot_t slots[(SLOT_BLOCK_BYTES - sizeof(mqthread_t *)) / sizeof(slot_t)];
} slot_block_t;
#define SLOT_BLOCK (sizeof(((slot_block_t *) 0)->slots) / sizeof(slot_t))
_Static_assert(sizeof(slot_block_t) <= SLOT_BLOCK_BYTES, "a slot block fits its alignment");

static mqthread_t *slot_thread(const slot_t *s)
{
    return ((const slot_block_t *) ((uintptr_t) s & ~(uintptr_t) (SLOT_BLOCK_BYTES - 1)))->t;
}

struct mqthread {
    mqload_run_t *run;
    size_t index;
    pthread_t tid;
    struct ev_loop *loop;
    mqc_client_t *client;
    mqc_collection_t *coll;
    mqload_wl_thread_t wl;
    mqload_opinst_t draw;     /* the operation being submitted: buffers reused by every draw */
    bson_t xopts;             /* aggregate/scan: opts + the drawn options, reused */
    mqload_tstats_t *stats;
    slot_block_t **blocks;    /* n_slots slots in blocks of SLOT_BLOCK */
    size_t n_slots, n_blocks, cap_blocks;
    slot_t *free_slots;
    uint64_t in_flight;
    uint64_t requests_left;   /* -n share; UINT64_MAX without -n */
    /* open loop */
    bool open_loop;
    mqload_sched_t sched;
    bool warm_dropped;        /* the warmup's backlog was dropped when the window opened */
    uint64_t next_k;
    uint64_t cap;
    /* --concurrency-stages */
    bool conc_ramp;
    mqload_sched_t csched;    /* total operations in flight over time */
    uint64_t active, target;  /* slots in use; the ramp's share for this thread now */
    ev_timer due;
    ev_timer tick;
    bool stopping;
    int64_t stopping_since;
    int64_t last_done_ns;     /* latest completion of a measured op */
    int64_t sec, sec_from_ns; /* the window's second of the last measured completion, and its start */
    bool destroyed;
    bson_t find_opts;         /* {limit: 1} etc. are the library's; opts carry timeoutMS */
    bson_t opts;
};

typedef struct {
    mqthread_t *threads;
    size_t n;
} mqc_engine_t;

void mqload_error_kind_mqc(const void *e_, char *out, size_t outsz)
{
    const mqc_error_t *e = e_;
    const char *dom = mqc_error_domain_name(e->domain);
    if (e->domain == MQC_ERROR_SERVER || e->domain == MQC_ERROR_WRITE || e->domain == MQC_ERROR_WRITE_CONCERN) {
        if (e->code_name[0]) snprintf(out, outsz, "%s:%s(%d)", dom, e->code_name, (int) e->code);
        else snprintf(out, outsz, "%s:%d", dom, (int) e->code);
    } else if (e->domain == MQC_ERROR_TIMEOUT) {
        static const char *const sub[] = {"", "operation", "wait_queue", "connect", "socket"};
        snprintf(out, outsz, "timeout:%s", e->code >= 1 && e->code <= 4 ? sub[e->code] : "other");
    } else {
        snprintf(out, outsz, "%s", dom);
    }
}

static void submit_next(mqthread_t *t, slot_t *s, int64_t now);
static void open_pump(mqthread_t *t, int64_t now);

static bool past_end(mqthread_t *t, int64_t when)
{
    mqload_run_t *run = t->run;
    if (atomic_load_explicit(&run->stop, memory_order_relaxed)) return true;
    return when >= run->end_ns || (when >= run->measure_ns && t->requests_left == 0);
}

static void maybe_finish(mqthread_t *t)
{
    if (t->in_flight == 0 && t->stopping) ev_break(t->loop, EVBREAK_ONE);
}

/* The operations due in the window before `limit` that were never sent: counted, per stage too. */
static void count_unsent(mqthread_t *t, int64_t limit)
{
    mqload_run_t *run = t->run;
    if (limit > run->end_ns) limit = run->end_ns;
    uint64_t from = mqload_sched_count_before(&t->sched, run->measure_ns);
    if (from < t->next_k) from = t->next_k;
    uint64_t to = mqload_sched_count_before(&t->sched, limit);
    if (to <= from) return;
    if (t->requests_left != UINT64_MAX && to - from > t->requests_left) to = from + t->requests_left;
    t->stats->r.unsent += to - from;
    int64_t waited = limit - mqload_sched_time(&t->sched, from);
    if (waited > 0 && (uint64_t) waited > t->stats->r.unsent_wait_ns) t->stats->r.unsent_wait_ns = (uint64_t) waited;
    for (size_t i = 0; i < t->sched.n; i++) {
        const mqload_piece_t *p = &t->sched.p[i];
        if (p->stage < 0 || (size_t) p->stage >= t->stats->r.n_stages) continue;
        int64_t a = t->sched.t0_ns + (int64_t) (p->start_s * 1e9), b = t->sched.t0_ns + (int64_t) ((p->start_s + p->dur_s) * 1e9);
        uint64_t lo = mqload_sched_count_before(&t->sched, a), hi = mqload_sched_count_before(&t->sched, b);
        if (lo < from) lo = from;
        if (hi > to) hi = to;
        if (hi > lo) t->stats->r.stages[p->stage].unsent += hi - lo;
    }
}

static void begin_stop(mqthread_t *t, int64_t now)
{
    if (t->stopping) return;
    t->stopping = true;
    t->stopping_since = now;
    ev_timer_stop(t->loop, &t->due);
    if (t->open_loop) {
        int64_t limit = now, s_ns = atomic_load_explicit(&t->run->stop_ns, memory_order_relaxed);
        if (s_ns && s_ns < limit) limit = s_ns;
        count_unsent(t, limit);
        atomic_store_explicit(&t->stats->a_backlog, 0, memory_order_relaxed);
    }
}

/* Records a measured operation that ended at now (or counts a warmup error for the live line). */
static void record(mqthread_t *t, const slot_t *s, const mqc_error_t *error, int64_t now)
{
    mqload_run_t *run = t->run;
    if (s->measured) {
        int64_t lat = now - s->start_ns;
        uint64_t ns = (uint64_t) (lat > 0 ? lat : 0);
        if (now < t->sec_from_ns || now >= t->sec_from_ns + 1000000000) { /* a division once a second, not per op */
            t->sec = (now - run->measure_ns) / 1000000000;
            t->sec_from_ns = run->measure_ns + t->sec * 1000000000;
        }
        if (!error && s->stage < 0) {
            mqload_tstats_record_ok(t->stats, s->op, ns, t->sec);
        } else {
            char kind[96];
            if (error) mqload_error_kind_mqc(error, kind, sizeof kind);
            mqload_tstats_record_full(t->stats, s->op, ns, error ? kind : NULL, error ? error->message : NULL, t->sec,
                                      s->stage);
        }
        t->last_done_ns = now; /* the run's is set once at the end: no shared line on this path */
    } else if (error) {
        mqload_count(&t->stats->a_errors, 1); /* the live line's */
    }
}

/* The end of one operation (every path: reply, error, batch error, last batch). One clock read:
 * the end of this operation is also the submission time of the slot's next one (closed loop)
 * and the now of the open loop's pump; the next is sent before this one is recorded, so its
 * latency starts where this one's ends, as when the clock was read again before sending it. */
static void complete(slot_t *s, const mqc_error_t *error)
{
    mqthread_t *t = slot_thread(s);
    int64_t now = mqload_now_ns();
    slot_t done = *s; /* the next submission reuses the slot */
    mqload_count(&t->stats->a_completed, 1);
    t->in_flight--;
    /* A failure is recorded first: its error lives only as long as this callback's operation. */
    if (error || t->destroyed) {
        record(t, &done, error, now);
        if (t->destroyed) return; /* client being destroyed: no more submissions */
    }
    if (t->open_loop) {
        s->u.next_free = t->free_slots;
        t->free_slots = s;
        open_pump(t, now);
    } else if (t->conc_ramp && t->active > t->target) {
        t->active--; /* ramping down: this slot rests */
        s->u.next_free = t->free_slots;
        t->free_slots = s;
    } else {
        submit_next(t, s, now);
    }
    if (!error) record(t, &done, NULL, now);
    maybe_finish(t);
}

static void reply_cb(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    slot_t *s = ud;
    mqthread_t *t = slot_thread(s);
    (void) op;
    if (s->u.rmw) {
        rmw_t *rmw = s->u.rmw;
        s->u.rmw = NULL;
        bool write = !error && !t->destroyed;
        if (write) {
            /* The read of a read-modify-write came back: now the write of the same key, with the
             * same filter, timed as one operation. The draw buffer is free: the library never
             * calls back from inside a submission. */
            t->draw.op = s->op;
            t->draw.key = rmw->key;
            mqload_wl_rmw_update(&t->wl, &t->draw);
            mqc_collection_update_one(t->coll, rmw->filter, t->draw.update, &t->opts, reply_cb, s);
        }
        bson_destroy(rmw->filter);
        free(rmw);
        if (write) return;
    }
    (void) reply;
    complete(s, error);
}

static void batch_cb(mqc_cursor_t *cursor, const bson_t *docs, size_t n_docs, const mqc_error_t *error, void *ud)
{
    slot_t *s = ud;
    (void) docs, (void) n_docs;
    /* Every batch is fetched: the latency of a scan or aggregate is the time to its last batch. */
    if (!error && mqc_cursor_more(cursor) && !slot_thread(s)->destroyed && mqc_cursor_next(cursor)) return;
    mqc_cursor_destroy(cursor);
    complete(s, error);
}

/* Submits the operation drawn into t->draw for slot s. */
static void dispatch(mqthread_t *t, slot_t *s)
{
    mqload_opinst_t *oi = &t->draw;
    const mqload_opdef_t *def = &t->run->wl->ops[oi->op];
    switch (oi->type) {
    case MQLOAD_OP_FIND:
        mqc_collection_find_one(t->coll, oi->filter, &t->opts, reply_cb, s);
        break;
    case MQLOAD_OP_RMW:
        s->u.rmw = malloc(sizeof *s->u.rmw); /* set marks "read not done yet" */
        if (!s->u.rmw) abort();
        s->u.rmw->key = oi->key;
        s->u.rmw->filter = bson_copy(oi->filter);
        mqc_collection_find_one(t->coll, oi->filter, &t->opts, reply_cb, s);
        break;
    case MQLOAD_OP_INSERT:
        mqc_collection_insert_one(t->coll, oi->document, &t->opts, reply_cb, s);
        break;
    case MQLOAD_OP_UPDATE:
        mqc_collection_update_one(t->coll, oi->filter, oi->update, &t->opts, reply_cb, s);
        break;
    case MQLOAD_OP_DELETE:
        mqc_collection_delete_one(t->coll, oi->filter, &t->opts, reply_cb, s);
        break;
    case MQLOAD_OP_COUNT:
        mqc_collection_count_documents(t->coll, oi->filter, &t->opts, reply_cb, s);
        break;
    case MQLOAD_OP_COMMAND:
        mqc_client_command(t->client, def->cmd_db, oi->command, &t->opts, reply_cb, s);
        break;
    case MQLOAD_OP_AGGREGATE:
        bson_reinit(&t->xopts);
        bson_concat(&t->xopts, &t->opts);
        bson_concat(&t->xopts, oi->options);
        mqc_collection_aggregate(t->coll, oi->pipeline, &t->xopts, batch_cb, s); /* batch_cb has the cursor */
        break;
    case MQLOAD_OP_SCAN:
        bson_reinit(&t->xopts);
        bson_concat(&t->xopts, &t->opts);
        bson_concat(&t->xopts, oi->options);
        mqc_collection_find(t->coll, oi->filter, &t->xopts, batch_cb, s);
        break;
    default:
        abort();
    }
}

static void submit_at(mqthread_t *t, slot_t *s, int64_t start_ns)
{
    mqload_run_t *run = t->run;
    mqload_wl_next(&t->wl, &t->draw);
    s->op = (uint8_t) t->draw.op;
    s->u.rmw = NULL;
    s->start_ns = start_ns;
    s->measured = start_ns >= run->measure_ns;
    s->stage = -1;
    if (s->measured) {
        t->stats->r.submitted++;
        if (t->requests_left != UINT64_MAX) t->requests_left--;
        if (t->open_loop) {
            s->stage = mqload_sched_stage_at(&t->sched, start_ns);
            int64_t now = mqload_now_ns(), lag = now - start_ns;
            mqload_tstats_sent(t->stats, (uint64_t) (lag > 0 ? lag : 0), s->stage, (now - run->measure_ns) / 1000000000);
        } else if (t->conc_ramp) {
            s->stage = mqload_sched_stage_at(&t->csched, start_ns);
            if (s->stage >= 0 && (size_t) s->stage < t->stats->r.n_stages) t->stats->r.stages[s->stage].submitted++;
        }
    }
    t->in_flight++;
    mqload_count(&t->stats->a_submitted, 1);
    dispatch(t, s);
}

/* Submits the slot's next operation at now (the clock read just before). */
static void submit_next(mqthread_t *t, slot_t *s, int64_t now)
{
    if (t->stopping || past_end(t, now)) {
        begin_stop(t, now);
        return;
    }
    submit_at(t, s, now);
}

static slot_t *slot_at(mqthread_t *t, size_t i)
{
    return &t->blocks[i / SLOT_BLOCK]->slots[i % SLOT_BLOCK];
}

static slot_t *slot_new(mqthread_t *t)
{
    if (t->n_slots == t->n_blocks * SLOT_BLOCK) {
        if (t->n_blocks == t->cap_blocks) {
            t->cap_blocks = t->cap_blocks ? t->cap_blocks * 2 : 4;
            t->blocks = realloc(t->blocks, t->cap_blocks * sizeof *t->blocks);
            if (!t->blocks) abort();
        }
        slot_block_t *b = aligned_alloc(SLOT_BLOCK_BYTES, SLOT_BLOCK_BYTES);
        if (!b) abort();
        memset(b, 0, sizeof *b);
        b->t = t;
        t->blocks[t->n_blocks++] = b;
    }
    slot_t *s = slot_at(t, t->n_slots++);
    s->stage = -1;
    return s;
}

static int64_t intended(mqthread_t *t, uint64_t k)
{
    return mqload_sched_time(&t->sched, k);
}

/* Submits every operation that is due (while under the in-flight cap), then sleeps until the next. */
static void open_pump(mqthread_t *t, int64_t now)
{
    if (t->stopping) return;
    mqload_run_t *run = t->run;
    if (!t->warm_dropped && now >= run->measure_ns) {
        t->warm_dropped = true;
        uint64_t first = mqload_sched_count_before(&t->sched, run->measure_ns);
        if (t->next_k < first) t->next_k = first;
    }
    while (t->in_flight < t->cap) {
        int64_t due = intended(t, t->next_k);
        if (past_end(t, due)) {
            begin_stop(t, now);
            return;
        }
        if (due > now) break;
        slot_t *s = t->free_slots;
        if (s) t->free_slots = s->u.next_free;
        else s = slot_new(t);
        t->next_k++;
        /* Latency counts from when the operation was due, even when it is sent late. */
        submit_at(t, s, due);
    }
    ev_timer_stop(t->loop, &t->due);
    if (t->in_flight < t->cap) {
        int64_t next = intended(t, t->next_k);
        double wait = (double) (next - now) / 1e9;
        if (next == INT64_MAX || next >= run->end_ns) wait = (double) (run->end_ns - now) / 1e9; /* the tick ends it */
        ev_timer_set(&t->due, wait > 0 ? wait : 0, 0);
        ev_timer_start(t->loop, &t->due);
        atomic_store_explicit(&t->stats->a_backlog, 0, memory_order_relaxed);
    } else if (now >= run->measure_ns) {
        /* At the cap: what is due and waits for a slot (the next completion calls us again). */
        uint64_t due = mqload_sched_count_before(&t->sched, now + 1);
        uint64_t backlog = due > t->next_k ? due - t->next_k : 0;
        if (backlog > t->stats->r.max_backlog) t->stats->r.max_backlog = backlog;
        atomic_store_explicit(&t->stats->a_backlog, backlog, memory_order_relaxed);
    }
}

/* --concurrency-stages: this thread's share of the ramp now; more slots start at once, fewer
 * retire as their operations complete. */
static void conc_adjust(mqthread_t *t, int64_t now)
{
    mqload_run_t *run = t->run;
    double total = mqload_sched_value_at(&t->csched, now);
    t->target = mqload_share((uint64_t) llround(total), run->lanes, run->lane0 + t->index);
    while (!t->stopping && t->active < t->target) {
        slot_t *s = t->free_slots;
        if (s) t->free_slots = s->u.next_free;
        else s = slot_new(t);
        t->active++;
        submit_next(t, s, mqload_now_ns());
    }
}

static void due_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void) loop, (void) revents;
    open_pump(w->data, mqload_now_ns());
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    mqthread_t *t = w->data;
    mqload_run_t *run = t->run;
    (void) revents;
    int64_t now = mqload_now_ns();
    if (now >= run->measure_ns) mqload_tstats_flush(t->stats, (now - run->measure_ns) / 1000000000);
    if (t->client) /* for the open-connections chart (series.h) */
        atomic_store_explicit(&t->stats->a_conns_open, mqc_client_stat(t->client, MQC_STAT_CONNS_OPEN) + 1, memory_order_relaxed);
    /* Open loop: what is due goes out first (after a stall, late but sent, while slots are free);
     * only then does a closed window count what is left as unsent. This also keeps the live
     * line's backlog fresh. */
    if (t->open_loop && !t->stopping) open_pump(t, now);
    if (!t->stopping && past_end(t, now)) begin_stop(t, now);
    if (t->conc_ramp && !t->stopping) conc_adjust(t, now);
    if (t->stopping) {
        int64_t since = t->stopping_since;
        int64_t s_ns = atomic_load_explicit(&run->stop_ns, memory_order_relaxed);
        if (s_ns && s_ns < since) since = s_ns;
        if (t->in_flight == 0) {
            ev_break(loop, EVBREAK_ONE);
        } else if (now - since > (int64_t) (run->cfg->grace_s * 1e9) && !t->destroyed) {
            /* Out of patience: destroying the client ends every pending operation with an error
             * (MQC_ERROR_SHUTDOWN), each through its callback, so each is still counted once. */
            t->stats->r.conns_opened = mqc_client_stat(t->client, MQC_STAT_CONNS_OPENED);
            t->destroyed = true;
            /* A cursor's pending batch fails with the client too; batch_cb destroys the cursor. */
            mqc_collection_destroy(t->coll);
            t->coll = NULL;
            mqc_client_destroy(t->client);
            t->client = NULL;
            ev_break(loop, EVBREAK_ONE);
        }
    }
}

/* A failover during a run explains a latency spike: say when the primary changes (the first
 * discovery of a primary is no change). */
static void on_topology(const mqc_topology_event_t *ev, void *ud)
{
    static char last[300]; /* the last primary seen ("" before the first); thread 0 only */
    (void) ud;
    if (ev->type != MQC_TOPOLOGY_PRIMARY_CHANGED || !ev->current || !ev->current[0]) return;
    if (last[0] && strcmp(last, ev->current) != 0) fprintf(stderr, "mqload: primary changed: %s -> %s\n", last, ev->current);
    snprintf(last, sizeof last, "%s", ev->current);
}

static void *thread_main(void *arg)
{
    mqthread_t *t = arg;
    mqload_run_t *run = t->run;
    ev_timer_init(&t->tick, tick_cb, TICK_S, TICK_S);
    t->tick.data = t;
    ev_timer_start(t->loop, &t->tick);
    ev_timer_init(&t->due, due_cb, 0, 0);
    t->due.data = t;
    /* Wait for the common start so that all threads' warmup and window line up. */
    int64_t now = mqload_now_ns();
    if (run->t0_ns > now) {
        struct timespec ts = {(run->t0_ns - now) / 1000000000, (run->t0_ns - now) % 1000000000};
        nanosleep(&ts, NULL);
    }
    if (t->open_loop) {
        mqload_sched_init_rate(&t->sched, run->cfg, (double) run->lanes, run->t0_ns);
        open_pump(t, mqload_now_ns());
    } else if (t->conc_ramp) {
        mqload_sched_init_conc(&t->csched, run->cfg, 1, run->t0_ns);
        conc_adjust(t, mqload_now_ns());
    } else {
        size_t n = (size_t) mqload_share(run->cfg->concurrency, run->n_stats, t->index);
        for (size_t i = 0; i < n; i++) slot_new(t);
        for (size_t i = 0; i < n; i++) submit_next(t, slot_at(t, i), mqload_now_ns());
    }
    if (!(t->stopping && t->in_flight == 0)) ev_run(t->loop, 0);
    ev_timer_stop(t->loop, &t->tick);
    ev_timer_stop(t->loop, &t->due);
    mqload_tstats_flush(t->stats, INT64_MAX);
    t->stats->r.open_loop = t->open_loop;
    if (t->open_loop) {
        t->stats->r.scheduled = t->stats->r.submitted + t->stats->r.unsent;
        for (size_t i = 0; i < t->stats->r.n_stages; i++)
            t->stats->r.stages[i].scheduled = t->stats->r.stages[i].submitted + t->stats->r.stages[i].unsent;
    }
    if (t->client) t->stats->r.conns_opened = mqc_client_stat(t->client, MQC_STAT_CONNS_OPENED);
    int64_t prev = atomic_load(&run->last_done_ns);
    while (t->last_done_ns > prev && !atomic_compare_exchange_weak(&run->last_done_ns, &prev, t->last_done_ns)) {}
    atomic_fetch_add(&run->threads_done, 1);
    return NULL;
}

bool mqload_mqc_prepare(mqload_run_t *run, char *err, size_t esz)
{
    const mqload_config_t *cfg = run->cfg;
    mqc_engine_t *e = calloc(1, sizeof *e);
    if (!e) abort();
    run->engine = e;
    e->n = cfg->threads;
    e->threads = calloc(e->n, sizeof *e->threads);
    run->n_stats = e->n;
    run->stats = calloc(e->n, sizeof *run->stats);
    if (!e->threads || !run->stats) abort();
    for (size_t i = 0; i < e->n; i++) {
        mqload_tstats_init(&run->stats[i]);
        for (size_t k = 0; k < run->wl->n_ops; k++)
            mqload_result_op(&run->stats[i].r, run->wl->ops[k].name, mqload_op_type_name(run->wl->ops[k].type));
    }
    for (size_t i = 0; i < e->n; i++) {
        mqthread_t *t = &e->threads[i];
        t->run = run;
        t->index = i;
        t->stats = &run->stats[i];
        t->sec_from_ns = INT64_MIN; /* no second yet: the first measured completion computes it */
        bson_init(&t->opts);
        bson_init(&t->find_opts);
        bson_init(&t->xopts);
        mqload_opinst_init(&t->draw);
        if (cfg->timeout_s > 0) BSON_APPEND_INT64(&t->opts, "timeoutMS", (int64_t) (cfg->timeout_s * 1000 + 0.5));
        t->loop = ev_loop_new(EVFLAG_AUTO);
        if (!t->loop) {
            snprintf(err, esz, "cannot create an event loop");
            return false;
        }
        mqc_error_t me;
        memset(&me, 0, sizeof me);
        t->client = mqc_client_new_from_uri(t->loop, run->uri, &me);
        if (!t->client) {
            /* The library's messages never contain the password (mqc.h). */
            snprintf(err, esz, "bad --uri %s: %s", run->uri_redacted, me.message);
            return false;
        }
        if (i == 0) { /* one client's view is enough for the primary-change line */
            mqc_monitor_t mon = {.topology = on_topology};
            mqc_client_set_monitor(t->client, &mon, NULL);
        }
        t->coll = mqc_client_get_collection(t->client, run->wl->db, run->wl->collection);
        if (!mqload_wl_thread_init(&t->wl, run->wl, run->rng_seed, run->lane0 + i, run->lanes, err, esz)) return false;
        t->requests_left = cfg->requests ? mqload_share(cfg->requests, e->n, i) : UINT64_MAX;
        if (cfg->open_loop) {
            t->open_loop = true;
            t->cap = cfg->concurrency_set ? mqload_share(cfg->concurrency, e->n, i) : MQLOAD_OPEN_LOOP_DEFAULT_CAP;
        }
        t->conc_ramp = cfg->stages_kind == MQLOAD_STAGES_CONCURRENCY;
        if (cfg->stages_kind && !mqload_result_stages(&t->stats->r, t->open_loop ? "rate" : "concurrency", cfg->n_stages)) {
            snprintf(err, esz, "too many stages");
            return false;
        }
    }
    return true;
}

static void ping_cb(mqc_op_t *op, const bson_t *reply, const mqc_error_t *error, void *ud)
{
    (void) op, (void) reply;
    mqc_error_t *out = ud;
    if (error) *out = *error;
    else out->domain = MQC_ERROR_NONE, out->code = 1; /* code 1: answered */
}

bool mqload_mqc_check(mqload_run_t *run, char *err, size_t esz)
{
    mqc_engine_t *e = run->engine;
    mqc_error_t res;
    memset(&res, 0, sizeof res);
    bson_t ping = BSON_INITIALIZER;
    BSON_APPEND_INT32(&ping, "ping", 1);
    mqc_client_command(e->threads[0].client, "admin", &ping, NULL, ping_cb, &res);
    bson_destroy(&ping);
    mqc_client_run_until_idle(e->threads[0].client, 0);
    if (res.domain != MQC_ERROR_NONE || res.code != 1) {
        snprintf(err, esz, "cannot use the server at %s: %s error: %s", run->uri_redacted,
                 res.domain ? mqc_error_domain_name(res.domain) : "no answer", res.message[0] ? res.message : "(no reply)");
        return false;
    }
    return true;
}

bool mqload_mqc_seed(mqload_run_t *run, char *err, size_t esz)
{
    mqc_engine_t *e = run->engine;
    return mqload_seed_mqc(e->threads[0].client, run, err, esz);
}

bool mqload_mqc_start(mqload_run_t *run, char *err, size_t esz)
{
    mqc_engine_t *e = run->engine;
    for (size_t i = 0; i < e->n; i++)
        if (pthread_create(&e->threads[i].tid, NULL, thread_main, &e->threads[i]) != 0) {
            snprintf(err, esz, "cannot start thread %zu", i);
            atomic_store(&run->stop, 1);
            for (size_t k = 0; k < i; k++) pthread_join(e->threads[k].tid, NULL);
            e->n = i;
            return false;
        }
    return true;
}

void mqload_mqc_join(mqload_run_t *run)
{
    mqc_engine_t *e = run->engine;
    run->conns_opened = 0;
    for (size_t i = 0; i < e->n; i++) {
        pthread_join(e->threads[i].tid, NULL);
        run->conns_opened += run->stats[i].r.conns_opened;
    }
}

void mqload_mqc_cleanup(mqload_run_t *run)
{
    mqc_engine_t *e = run->engine;
    if (!e) return;
    for (size_t i = 0; i < e->n; i++) {
        mqthread_t *t = &e->threads[i];
        if (!t->run) continue; /* prepare failed before it: nothing was initialised */
        mqc_collection_destroy(t->coll);
        /* Destroying the client may still run callbacks of operations never finished (a failed
         * start); they touch only this thread's slots, which are freed after. */
        t->destroyed = true;
        mqc_client_destroy(t->client);
        for (size_t k = 0; k < t->n_blocks; k++) free(t->blocks[k]);
        free(t->blocks);
        mqload_opinst_free(&t->draw);
        bson_destroy(&t->xopts);
        if (t->wl.wl) mqload_wl_thread_free(&t->wl);
        bson_destroy(&t->opts);
        bson_destroy(&t->find_opts);
        if (t->loop) ev_loop_destroy(t->loop);
    }
    free(e->threads);
    free(e);
    run->engine = NULL;
}
