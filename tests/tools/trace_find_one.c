/* trace_find_one: records which functions of lib/ one mqc_collection_find_one passes through, for
 * scripts/trace-find-one (which builds lib/ with -finstrument-functions, links this file, not
 * instrumented, and maps the addresses to rooms).
 *
 *   trace_find_one URI OUT     (URI: a server answering find, e.g. build/tests/stubd)
 *
 * A first find_one warms up (connection, handshake, session pool); the loop then idles a few
 * turns; the second find_one is recorded from the call until the loop turn that ran its callback
 * returns to the loop. Only the loop's thread is recorded (worker threads call lib/ too). OUT gets
 * one line per event: "E fn site" (a call of fn from return address site), "X fn" (its return),
 * "M what" (down: the API call; app: it returned; cb / cb_end: the user callback). */
#include <bson/bson.h>
#include <ev.h>
#include <mqc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NOINST __attribute__((no_instrument_function))
#define MAX_EVENTS (1u << 20)

typedef struct {
    char kind;
    const char *what;
    void *fn, *site;
} event_t;

static event_t *g_ev;
static unsigned g_n, g_lost;
static bool g_on;
static int g_depth;
static bool g_cb_done;
static __thread bool t_loop_thread;

static NOINST void record(char kind, const char *what, void *fn, void *site)
{
    if (g_n < MAX_EVENTS)
        g_ev[g_n++] = (event_t){kind, what, fn, site};
    else
        g_lost++;
}

NOINST void __cyg_profile_func_enter(void *fn, void *site);
NOINST void __cyg_profile_func_exit(void *fn, void *site);

void __cyg_profile_func_enter(void *fn, void *site)
{
    if (!g_on || !t_loop_thread) return;
    g_depth++;
    record('E', NULL, fn, site);
}

void __cyg_profile_func_exit(void *fn, void *site)
{
    if (!g_on || !t_loop_thread) return;
    record('X', NULL, fn, site);
    /* The loop turn that ran the callback is back in the loop: the find_one is over. */
    if (--g_depth == 0 && g_cb_done) g_on = false;
}

typedef struct {
    bool done, found;
    char error[512];
} result_t;

static void on_found(mqc_op_t *op, const bson_t *doc, const mqc_error_t *error, void *ud)
{
    (void) op;
    result_t *r = ud;
    if (g_on) record('M', "cb", NULL, NULL);
    r->done = true;
    r->found = doc != NULL;
    if (error) snprintf(r->error, sizeof r->error, "%s", error->message);
    if (g_on) {
        record('M', "cb_end", NULL, NULL);
        g_cb_done = true;
    }
}

static bool find_one(struct ev_loop *loop, mqc_collection_t *coll, const bson_t *filter, bool traced)
{
    result_t r = {0};
    if (traced) {
        g_on = true;
        record('M', "down", NULL, NULL);
    }
    mqc_op_t *op = mqc_collection_find_one(coll, filter, NULL, on_found, &r);
    if (traced) record('M', "app", NULL, NULL);
    if (!op) {
        fprintf(stderr, "trace_find_one: find_one returned no op\n");
        return false;
    }
    ev_tstamp until = ev_now(loop) + 10;
    while (!r.done && ev_now(loop) < until) ev_run(loop, EVRUN_ONCE);
    g_on = false;
    if (!r.done || r.error[0]) {
        fprintf(stderr, "trace_find_one: find_one %s%s\n", r.done ? "failed: " : "timed out", r.error);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: trace_find_one URI OUT\n");
        return 2;
    }
    t_loop_thread = true;
    g_ev = calloc(MAX_EVENTS, sizeof *g_ev);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    mqc_error_t error;
    mqc_client_t *client = mqc_client_new_from_uri(loop, argv[1], &error);
    if (!g_ev || !loop || !client) {
        fprintf(stderr, "trace_find_one: no client: %s\n", client ? "out of memory" : error.message);
        return 1;
    }
    mqc_collection_t *coll = mqc_client_get_collection(client, "trace", "docs");
    bson_t *filter = BCON_NEW("_id", BCON_INT32(1));
    bool ok = find_one(loop, coll, filter, false);
    for (int i = 0; ok && i < 20; i++) ev_run(loop, EVRUN_NOWAIT);
    ok = ok && find_one(loop, coll, filter, true);

    FILE *out = fopen(argv[2], "w");
    if (!out) {
        perror(argv[2]);
        return 1;
    }
    for (unsigned i = 0; i < g_n; i++) {
        const event_t *e = &g_ev[i];
        if (e->kind == 'M')
            fprintf(out, "M %s\n", e->what);
        else
            fprintf(out, "%c %#jx %#jx\n", e->kind, (uintmax_t) (uintptr_t) e->fn, (uintmax_t) (uintptr_t) e->site);
    }
    if (g_lost) fprintf(out, "L %u\n", g_lost);
    fclose(out);

    bson_destroy(filter);
    mqc_collection_destroy(coll);
    mqc_client_destroy(client);
    ev_loop_destroy(loop);
    free(g_ev);
    return ok ? 0 : 1;
}
