/* threshold: parse and check --threshold conditions (threshold.h). */
#include "threshold.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "histfmt.h"

typedef enum { M_LATENCY, M_ERRORS, M_ERROR_RATE, M_OK, M_OPS, M_THROUGHPUT } metric_t;
typedef enum { C_LT, C_LE, C_GT, C_GE, C_EQ } cmp_t;

typedef struct {
    char text[96];
    char op[64];        /* "" for the total */
    metric_t metric;
    double q;           /* latency: quantile; -1 min, -2 mean, 2 max */
    cmp_t cmp;
    double value;       /* latency in ns; rate in fraction */
} cond_t;

struct mqload_threshold {
    cond_t *c;
    size_t n;
};

static bool fail(char *err, size_t esz, const char *what, const char *cond)
{
    snprintf(err, esz, "%s in '%s' (e.g. p99<5ms, errors<0.1%%, ops>10000, throughput>=5000)", what, cond);
    return false;
}

static bool parse_latency_name(const char *m, double *q)
{
    static const struct { const char *name; double q; } L[] = {
        {"min", -1}, {"mean", -2}, {"avg", -2}, {"max", 2}, {"p50", 0.5}, {"median", 0.5}, {"p90", 0.9},
        {"p95", 0.95}, {"p99", 0.99}, {"p99.9", 0.999}, {"p99_9", 0.999}, {"p99.99", 0.9999}, {"p99_99", 0.9999},
    };
    for (size_t i = 0; i < sizeof L / sizeof L[0]; i++)
        if (!strcmp(m, L[i].name)) return *q = L[i].q, true;
    /* Any other pNN(.N): p75, p999 is not accepted (ambiguous). */
    if (m[0] == 'p' && m[1] >= '0' && m[1] <= '9') {
        char *end;
        double v = strtod(m + 1, &end);
        if (!*end && v > 0 && v < 100) return *q = v / 100, true;
    }
    return false;
}

static bool parse_cond(const char *s, cond_t *c, char *err, size_t esz)
{
    memset(c, 0, sizeof *c);
    snprintf(c->text, sizeof c->text, "%s", s);
    const char *p = strpbrk(s, "<>=");
    if (!p || p == s) return fail(err, esz, "expected METRIC<VALUE", s);
    char name[64];
    size_t nl = (size_t) (p - s);
    while (nl && s[nl - 1] == ' ') nl--;
    if (nl >= sizeof name) return fail(err, esz, "metric name too long", s);
    memcpy(name, s, nl);
    name[nl] = 0;
    if (p[0] == '<' && p[1] == '=') c->cmp = C_LE, p += 2;
    else if (p[0] == '>' && p[1] == '=') c->cmp = C_GE, p += 2;
    else if (p[0] == '=' && p[1] == '=') c->cmp = C_EQ, p += 2;
    else if (p[0] == '<') c->cmp = C_LT, p++;
    else if (p[0] == '>') c->cmp = C_GT, p++;
    else return fail(err, esz, "expected one of < <= > >= ==", s);
    while (*p == ' ') p++;
    char *metric = name, *dot = NULL;
    /* "find.p99": the part before the last '.' that is not inside a pNN.N is an op name. */
    for (char *d = strchr(name, '.'); d; d = strchr(d + 1, '.'))
        if (!(d > name && d[-1] >= '0' && d[-1] <= '9' && d[1] >= '0' && d[1] <= '9')) dot = d;
    if (dot) {
        *dot = 0;
        snprintf(c->op, sizeof c->op, "%s", name);
        metric = dot + 1;
    }
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (errno || end == p || !isfinite(v)) return fail(err, esz, "expected a number", s);
    while (*end == ' ') end++;
    if (parse_latency_name(metric, &c->q)) {
        c->metric = M_LATENCY;
        double mul;
        if (!*end || !strcmp(end, "ms")) mul = 1e6;
        else if (!strcmp(end, "us") || !strcmp(end, "\xc2\xb5s")) mul = 1e3;
        else if (!strcmp(end, "ns")) mul = 1;
        else if (!strcmp(end, "s")) mul = 1e9;
        else return fail(err, esz, "latency unit must be ns, us, ms or s", s);
        c->value = v * mul;
    } else if (!strcmp(metric, "errors") || !strcmp(metric, "error_rate")) {
        if (!strcmp(end, "%")) c->metric = M_ERROR_RATE, c->value = v / 100;
        else if (!*end && !strcmp(metric, "errors")) c->metric = M_ERRORS, c->value = v;
        else if (!*end) c->metric = M_ERROR_RATE, c->value = v;
        else return fail(err, esz, "errors take a count or a percentage", s);
    } else if (!strcmp(metric, "ops") || !strcmp(metric, "ok") || !strcmp(metric, "throughput") || !strcmp(metric, "rps")) {
        if (*end) {
            double m = !strcmp(end, "k") ? 1e3 : !strcmp(end, "M") ? 1e6 : 0;
            if (!m) return fail(err, esz, "unexpected unit", s);
            v *= m;
        }
        c->metric = !strcmp(metric, "ops") ? M_OPS : !strcmp(metric, "ok") ? M_OK : M_THROUGHPUT;
        c->value = v;
    } else {
        return fail(err, esz, "unknown metric (min mean p50 p90 p99 p99.9 p99.99 max errors ok ops throughput)", s);
    }
    return true;
}

mqload_threshold_t *mqload_threshold_parse(const char *expr, char *err, size_t esz)
{
    mqload_threshold_t *t = calloc(1, sizeof *t);
    char *copy = strdup(expr), *save = NULL;
    if (!t || !copy) abort();
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        size_t l = strlen(tok);
        while (l && tok[l - 1] == ' ') tok[--l] = 0;
        if (!*tok) continue;
        t->c = realloc(t->c, (t->n + 1) * sizeof *t->c);
        if (!t->c) abort();
        if (!parse_cond(tok, &t->c[t->n], err, esz)) {
            free(copy);
            mqload_threshold_free(t);
            return NULL;
        }
        t->n++;
    }
    free(copy);
    if (!t->n) {
        snprintf(err, esz, "empty threshold expression");
        mqload_threshold_free(t);
        return NULL;
    }
    return t;
}

void mqload_threshold_free(mqload_threshold_t *t)
{
    if (!t) return;
    free(t->c);
    free(t);
}

static bool compare(double a, cmp_t c, double b)
{
    switch (c) {
    case C_LT: return a < b;
    case C_LE: return a <= b;
    case C_GT: return a > b;
    case C_GE: return a >= b;
    default: return a == b;
    }
}

bool mqload_threshold_check_ops(const mqload_threshold_t *t, const char *const *names, size_t n, char *err, size_t esz)
{
    for (size_t i = 0; i < t->n; i++) {
        const cond_t *c = &t->c[i];
        bool found = !c->op[0];
        for (size_t k = 0; k < n && !found; k++) found = !strcmp(names[k], c->op);
        if (found) continue;
        char list[512] = "";
        size_t len = 0;
        for (size_t k = 0; k < n && len < sizeof list - 40; k++)
            len += (size_t) snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", names[k]);
        snprintf(err, esz, "--threshold %s: no operation named '%s' (the workload has: %s)", c->text, c->op, list);
        return false;
    }
    return true;
}

bool mqload_threshold_check(const mqload_threshold_t *t, const mqload_result_t *r, mqload_strbuf_t *out)
{
    bool all = true;
    for (size_t i = 0; i < t->n; i++) {
        const cond_t *c = &t->c[i];
        const mqload_hist_t *h = r->hist;
        uint64_t ok = r->ok, errors = r->errors;
        if (c->op[0]) {
            const mqload_opstats_t *o = NULL;
            for (size_t k = 0; k < r->n_ops; k++)
                if (!strcmp(r->ops[k].name, c->op)) o = &r->ops[k];
            if (!o) {
                mqload_sb_printf(out, "threshold %s violated: no operation named '%s' in this run\n", c->text, c->op);
                all = false;
                continue;
            }
            h = o->hist, ok = o->ok, errors = o->errors;
        }
        double v = 0;
        char shown[64];
        switch (c->metric) {
        case M_LATENCY:
            v = c->q == -1 ? (h->total ? (double) h->min_ns : 0)
              : c->q == -2 ? mqload_hist_mean(h)
              : c->q == 2 ? (double) h->max_ns
                          : mqload_hist_quantile(h, c->q);
            mqload_fmt_latency(v, shown, sizeof shown);
            break;
        case M_ERRORS: v = (double) errors; snprintf(shown, sizeof shown, "%.0f", v); break;
        case M_ERROR_RATE:
            v = ok + errors ? (double) errors / (double) (ok + errors) : 0;
            snprintf(shown, sizeof shown, "%.4f%%", v * 100);
            break;
        case M_OK: v = (double) ok; snprintf(shown, sizeof shown, "%.0f", v); break;
        case M_OPS: v = (double) (ok + errors); snprintf(shown, sizeof shown, "%.0f", v); break;
        case M_THROUGHPUT:
            v = r->duration_s > 0 ? (double) (ok + errors) / r->duration_s : 0;
            snprintf(shown, sizeof shown, "%.1f ops/s", v);
            break;
        }
        /* A latency condition on an empty run cannot pass: nothing was measured. */
        bool pass = compare(v, c->cmp, c->value) && !(c->metric == M_LATENCY && h->total == 0);
        if (!pass) {
            mqload_sb_printf(out, "threshold %s violated: measured %s\n", c->text, shown);
            all = false;
        }
    }
    return all;
}
