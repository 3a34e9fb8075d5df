/* hist: log-linear histogram; see hist.h for the bucket layout. */
#include "hist.h"

#include <stdlib.h>
#include <string.h>

void mqload_hist_init(mqload_hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min_ns = UINT64_MAX;
}

mqload_hist_t *mqload_hist_new(void)
{
    mqload_hist_t *h = malloc(sizeof *h);
    if (!h) abort();
    mqload_hist_init(h);
    return h;
}

void mqload_hist_destroy(mqload_hist_t *h) { free(h); }

uint64_t mqload_hist_bucket_low(uint32_t index)
{
    if (index < MQLOAD_HIST_SUB_COUNT) return index;
    uint32_t shift = index / MQLOAD_HIST_SUB_COUNT - 1, sub = index % MQLOAD_HIST_SUB_COUNT;
    return ((uint64_t) (MQLOAD_HIST_SUB_COUNT + sub)) << shift;
}

uint64_t mqload_hist_bucket_width(uint32_t index)
{
    if (index < MQLOAD_HIST_SUB_COUNT) return 1;
    return (uint64_t) 1 << (index / MQLOAD_HIST_SUB_COUNT - 1);
}

void mqload_hist_merge(mqload_hist_t *dst, const mqload_hist_t *src)
{
    if (!src->total) return;
    for (size_t i = 0; i < MQLOAD_HIST_BUCKETS; i++) dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum_ns += src->sum_ns;
    if (src->min_ns < dst->min_ns) dst->min_ns = src->min_ns;
    if (src->max_ns > dst->max_ns) dst->max_ns = src->max_ns;
}

static double bucket_mid(uint32_t i)
{
    /* Unit-wide buckets hold exactly one integer value: no midpoint rounding there. */
    uint64_t w = mqload_hist_bucket_width(i);
    return (double) mqload_hist_bucket_low(i) + (w > 1 ? (double) (w - 1) / 2.0 : 0.0);
}

double mqload_hist_quantile(const mqload_hist_t *h, double q)
{
    if (!h->total) return 0;
    if (q <= 0) return (double) h->min_ns;
    if (q >= 1) return (double) h->max_ns;
    /* The rank of the value at q, 1-based: the ceil(q * n)-th smallest (nearest-rank method). */
    double r = q * (double) h->total;
    uint64_t rank = (uint64_t) r;
    if ((double) rank < r) rank++;
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < MQLOAD_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            double v = bucket_mid(i);
            if (v < (double) h->min_ns) v = (double) h->min_ns;
            if (v > (double) h->max_ns) v = (double) h->max_ns;
            return v;
        }
    }
    return (double) h->max_ns;
}

double mqload_hist_mean(const mqload_hist_t *h) { return h->total ? h->sum_ns / (double) h->total : 0; }

void mqload_sparse_init(mqload_sparse_t *s)
{
    memset(s, 0, sizeof *s);
    s->min_ns = UINT64_MAX;
}

void mqload_sparse_free(mqload_sparse_t *s)
{
    free(s->idx);
    free(s->cnt);
    mqload_sparse_init(s);
}

static void sparse_reserve(mqload_sparse_t *s, size_t n)
{
    if (n <= s->cap) return;
    size_t cap = s->cap ? s->cap : 16;
    while (cap < n) cap *= 2;
    s->idx = realloc(s->idx, cap * sizeof *s->idx);
    s->cnt = realloc(s->cnt, cap * sizeof *s->cnt);
    if (!s->idx || !s->cnt) abort();
    s->cap = cap;
}

bool mqload_sparse_push(mqload_sparse_t *s, uint32_t index, uint64_t count)
{
    if (index >= MQLOAD_HIST_BUCKETS || (s->n && s->idx[s->n - 1] >= index)) return false;
    if (!count) return true;
    sparse_reserve(s, s->n + 1);
    s->idx[s->n] = index;
    s->cnt[s->n] = count;
    s->n++;
    return true;
}

void mqload_sparse_from_hist(mqload_sparse_t *s, const mqload_hist_t *h)
{
    s->n = 0;
    s->total = h->total;
    s->min_ns = h->min_ns;
    s->max_ns = h->max_ns;
    s->sum_ns = h->sum_ns;
    for (uint32_t i = 0; i < MQLOAD_HIST_BUCKETS; i++)
        if (h->counts[i]) mqload_sparse_push(s, i, h->counts[i]);
}

void mqload_hist_add_sparse(mqload_hist_t *dst, const mqload_sparse_t *src)
{
    for (size_t i = 0; i < src->n; i++) dst->counts[src->idx[i]] += src->cnt[i];
    dst->total += src->total;
    dst->sum_ns += src->sum_ns;
    if (src->total) {
        if (src->min_ns < dst->min_ns) dst->min_ns = src->min_ns;
        if (src->max_ns > dst->max_ns) dst->max_ns = src->max_ns;
    }
}

void mqload_sparse_merge(mqload_sparse_t *dst, const mqload_sparse_t *src)
{
    if (!src->total) return;
    /* Merge two sorted index lists into a fresh pair of arrays. */
    mqload_sparse_t out;
    mqload_sparse_init(&out);
    sparse_reserve(&out, dst->n + src->n);
    size_t a = 0, b = 0;
    while (a < dst->n || b < src->n) {
        if (b >= src->n || (a < dst->n && dst->idx[a] < src->idx[b])) {
            out.idx[out.n] = dst->idx[a], out.cnt[out.n++] = dst->cnt[a++];
        } else if (a >= dst->n || src->idx[b] < dst->idx[a]) {
            out.idx[out.n] = src->idx[b], out.cnt[out.n++] = src->cnt[b++];
        } else {
            out.idx[out.n] = dst->idx[a], out.cnt[out.n++] = dst->cnt[a++] + src->cnt[b++];
        }
    }
    out.total = dst->total + src->total;
    out.sum_ns = dst->sum_ns + src->sum_ns;
    out.min_ns = dst->min_ns < src->min_ns ? dst->min_ns : src->min_ns;
    out.max_ns = dst->max_ns > src->max_ns ? dst->max_ns : src->max_ns;
    free(dst->idx);
    free(dst->cnt);
    *dst = out;
}
