/* series: the timeline's extension in the JSON result, written and read back, and the gauges (series.h). */
#include "series.h"

#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "histfmt.h"

void mqload_second_ext_json(const mqload_result_t *r, const mqload_second_t *s, mqload_strbuf_t *out)
{
    if (s->in_flight >= 0) mqload_sb_printf(out, ",\"in_flight\":%lld", (long long) s->in_flight);
    if (s->conns_open >= 0) mqload_sb_printf(out, ",\"conns_open\":%lld", (long long) s->conns_open);
    mqload_sb_puts(out, ",\"by_op\":{");
    bool first = true;
    mqload_hist_t *h = mqload_hist_new();
    for (size_t i = 0; i < s->n_op_hist && i < r->n_ops; i++) {
        const mqload_sparse_t *sp = &s->op_hist[i];
        if (!sp->total) continue;
        mqload_hist_init(h);
        mqload_hist_add_sparse(h, sp);
        if (!first) mqload_sb_puts(out, ",");
        first = false;
        mqload_sb_json_str(out, r->ops[i].name);
        /* Successes only, as the second's histogram; its failures are the second's "errors". */
        mqload_sb_printf(out, ":{\"ok\":%llu,\"p50_us\":", (unsigned long long) sp->total);
        mqload_sb_json_num(out, mqload_hist_quantile(h, 0.5) / 1e3);
        mqload_sb_puts(out, ",\"p99_us\":");
        mqload_sb_json_num(out, mqload_hist_quantile(h, 0.99) / 1e3);
        mqload_sb_puts(out, ",\"histogram\":");
        mqload_sparse_json(sp, out);
        mqload_sb_puts(out, "}");
    }
    mqload_hist_destroy(h);
    mqload_sb_puts(out, "}");
}

int mqload_second_ext_read(mqload_result_t *r, mqload_second_t *s, const bson_iter_t *f,
                           bool (*read_sparse)(const bson_iter_t *, mqload_sparse_t *, char *, size_t), char *err, size_t esz)
{
    const char *k = bson_iter_key(f);
    if (!strcmp(k, "in_flight") || !strcmp(k, "conns_open")) {
        if (!BSON_ITER_HOLDS_NUMBER(f)) {
            snprintf(err, esz, "timeline \"%s\" is not a number", k);
            return -1;
        }
        mqload_gauge_add(!strcmp(k, "in_flight") ? &s->in_flight : &s->conns_open, bson_iter_as_int64(f));
        return 1;
    }
    if (strcmp(k, "by_op")) return 0;
    bson_iter_t ops, fields;
    if (!BSON_ITER_HOLDS_DOCUMENT(f) || !bson_iter_recurse(f, &ops)) {
        snprintf(err, esz, "timeline \"by_op\" is not an object");
        return -1;
    }
    while (bson_iter_next(&ops)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&ops) || !bson_iter_recurse(&ops, &fields)) {
            snprintf(err, esz, "timeline \"by_op\" entry is not an object");
            return -1;
        }
        int j = mqload_result_op(r, bson_iter_key(&ops), NULL);
        while (bson_iter_next(&fields)) {
            if (strcmp(bson_iter_key(&fields), "histogram")) continue;
            mqload_sparse_t sp;
            if (!read_sparse(&fields, &sp, err, esz)) {
                mqload_sparse_free(&sp);
                return -1;
            }
            if (j >= 0) mqload_sparse_merge(mqload_second_op(s, (size_t) j), &sp);
            mqload_sparse_free(&sp);
        }
    }
    return 1;
}

void mqload_gauges_init(mqload_gauges_t *g) { memset(g, 0, sizeof *g); }

void mqload_gauges_free(mqload_gauges_t *g)
{
    free(g->in_flight);
    free(g->conns);
    memset(g, 0, sizeof *g);
}

void mqload_gauges_sample(mqload_gauges_t *g, const struct mqload_run *run, int64_t now)
{
    if (now < run->measure_ns || now >= run->end_ns) return;
    size_t sec = (size_t) ((now - run->measure_ns) / 1000000000);
    if (sec >= g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        while (cap <= sec) cap *= 2;
        g->in_flight = realloc(g->in_flight, cap * sizeof *g->in_flight);
        g->conns = realloc(g->conns, cap * sizeof *g->conns);
        if (!g->in_flight || !g->conns) abort();
        g->cap = cap;
    }
    while (g->n <= sec) g->in_flight[g->n] = g->conns[g->n] = -1, g->n++;
    uint64_t sub = 0, comp = 0, conns = 0;
    bool conns_known = true;
    for (size_t i = 0; i < run->n_stats; i++) {
        mqload_tstats_t *s = &run->stats[i];
        sub += atomic_load_explicit(&s->a_submitted, memory_order_relaxed);
        comp += atomic_load_explicit(&s->a_completed, memory_order_relaxed);
        /* Engine threads publish their pool's open connections + 1; 0: the engine does not say. */
        uint64_t c = atomic_load_explicit(&s->a_conns_open, memory_order_relaxed);
        if (!c) conns_known = false;
        else conns += c - 1;
    }
    int64_t fl = (int64_t) (sub > comp ? sub - comp : 0);
    if (fl > g->in_flight[sec]) g->in_flight[sec] = fl;
    if (conns_known && run->n_stats && (int64_t) conns > g->conns[sec]) g->conns[sec] = (int64_t) conns;
}

void mqload_gauges_apply(const mqload_gauges_t *g, mqload_result_t *r)
{
    for (size_t i = 0; i < g->n; i++) {
        if (g->in_flight[i] < 0 && g->conns[i] < 0) continue;
        mqload_second_t *s = mqload_result_second(r, i);
        s->in_flight = g->in_flight[i];
        s->conns_open = g->conns[i];
    }
}
