/* sched: intended times of an open-loop schedule, and the concurrency ramp (sched.h). */
#include "sched.h"

#include <math.h>
#include <string.h>

/* Builds warmup + stages (or one endless piece for a plain rate) of one share. */
static void build(mqload_sched_t *s, const mqload_config_t *cfg, double shares, int64_t t0_ns, bool stages, double start)
{
    memset(s, 0, sizeof *s);
    s->t0_ns = t0_ns;
    double t = 0, n = 0;
    if (!stages) {
        s->p[s->n++] = (mqload_piece_t){0, INFINITY, start / shares, start / shares, 0, -1};
        return;
    }
    double prev = start / shares;
    if (cfg->warmup_s > 0) {
        s->p[s->n++] = (mqload_piece_t){0, cfg->warmup_s, prev, prev, 0, -1};
        t += cfg->warmup_s, n += prev * cfg->warmup_s;
    }
    for (size_t i = 0; i < cfg->n_stages; i++) {
        double to = cfg->stages[i].target / shares, d = cfg->stages[i].dur_s;
        s->p[s->n++] = (mqload_piece_t){t, d, prev, to, n, (int) i};
        t += d, n += (prev + to) / 2 * d;
        prev = to;
    }
}

void mqload_sched_init_rate(mqload_sched_t *s, const mqload_config_t *cfg, double shares, int64_t t0_ns)
{
    build(s, cfg, shares, t0_ns, cfg->stages_kind == MQLOAD_STAGES_RATE, cfg->rate);
}

void mqload_sched_init_conc(mqload_sched_t *s, const mqload_config_t *cfg, double shares, int64_t t0_ns)
{
    build(s, cfg, shares, t0_ns, cfg->stages_kind == MQLOAD_STAGES_CONCURRENCY,
          cfg->concurrency_set ? (double) cfg->concurrency_total : 0);
}

static double piece_count(const mqload_piece_t *p)
{
    return isinf(p->dur_s) ? INFINITY : (p->r0 + p->r1) / 2 * p->dur_s;
}

int64_t mqload_sched_time(mqload_sched_t *s, uint64_t k)
{
    double kk = (double) k;
    if (s->cursor >= s->n || kk < s->p[s->cursor].n0) s->cursor = 0;
    while (s->cursor < s->n && kk >= s->p[s->cursor].n0 + piece_count(&s->p[s->cursor])) s->cursor++;
    if (s->cursor >= s->n) return INT64_MAX;
    const mqload_piece_t *p = &s->p[s->cursor];
    /* Due when the ops so far, N(tau) = r0 tau + a tau^2 / 2, reach m. The root in the form
     * 2m / (r0 + sqrt(r0^2 + 2am)) holds for ramps up, down and flat alike. */
    double m = kk - p->n0, a = isinf(p->dur_s) ? 0 : (p->r1 - p->r0) / p->dur_s;
    double disc = p->r0 * p->r0 + 2 * a * m;
    double den = p->r0 + sqrt(disc > 0 ? disc : 0);
    double tau = den > 0 ? 2 * m / den : 0;
    if (!isinf(p->dur_s) && tau > p->dur_s) tau = p->dur_s;
    return s->t0_ns + (int64_t) ((p->start_s + tau) * 1e9);
}

uint64_t mqload_sched_count_before(mqload_sched_t *s, int64_t t_ns)
{
    double t = (double) (t_ns - s->t0_ns) / 1e9, n = 0;
    if (t <= 0) return 0;
    for (size_t i = 0; i < s->n; i++) {
        const mqload_piece_t *p = &s->p[i];
        if (t < p->start_s + p->dur_s) {
            double tau = t - p->start_s, a = isinf(p->dur_s) ? 0 : (p->r1 - p->r0) / p->dur_s;
            n = p->n0 + p->r0 * tau + a * tau * tau / 2;
            break;
        }
        n = p->n0 + piece_count(p);
    }
    /* Operations k < N are due before t: ceil(N), then corrected for rounding both ways. */
    uint64_t c = n > 0 ? (uint64_t) ceil(n - 1e-9) : 0;
    while (c > 0 && mqload_sched_time(s, c - 1) >= t_ns) c--;
    while (mqload_sched_time(s, c) < t_ns) c++;
    return c;
}

int mqload_sched_stage_at(const mqload_sched_t *s, int64_t t_ns)
{
    double t = (double) (t_ns - s->t0_ns) / 1e9;
    for (size_t i = 0; i < s->n; i++)
        if (t >= s->p[i].start_s && t < s->p[i].start_s + s->p[i].dur_s) return s->p[i].stage;
    return -1;
}

double mqload_sched_value_at(const mqload_sched_t *s, int64_t t_ns)
{
    double t = (double) (t_ns - s->t0_ns) / 1e9;
    for (size_t i = 0; i < s->n; i++) {
        const mqload_piece_t *p = &s->p[i];
        if (t < p->start_s + p->dur_s) {
            if (isinf(p->dur_s) || t < p->start_s) return p->r0;
            return p->r0 + (p->r1 - p->r0) * (t - p->start_s) / p->dur_s;
        }
    }
    return s->n ? s->p[s->n - 1].r1 : 0;
}
