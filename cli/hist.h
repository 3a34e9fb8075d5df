/* hist: a log-linear latency histogram (HDR-style) with <= 0.4% relative error from 1 ns to
 * about 73 minutes, kept per thread and merged exactly by adding bucket counts.
 *
 * Values are nanoseconds. Below 2^SUB_BITS ns every value has its own bucket; above, each power
 * of two is split into 2^SUB_BITS equal buckets, so a bucket is never wider than 1/128 of its
 * lower bound. A percentile is reported as the bucket's midpoint (half the width: <= 0.39%).
 * The bucket layout is fixed ("log-linear-ns-7") so that histograms from different processes
 * and machines merge exactly. */
#ifndef MQLOAD_HIST_H
#define MQLOAD_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQLOAD_HIST_SUB_BITS 7
#define MQLOAD_HIST_SUB_COUNT (1u << MQLOAD_HIST_SUB_BITS)
#define MQLOAD_HIST_MAX_EXP 42 /* values up to 2^42 ns (~73 min); larger ones land in the top bucket */
#define MQLOAD_HIST_BUCKETS (MQLOAD_HIST_SUB_COUNT * (MQLOAD_HIST_MAX_EXP - MQLOAD_HIST_SUB_BITS + 2))
#define MQLOAD_HIST_SCHEME "log-linear-ns-7"

typedef struct {
    uint64_t total;
    uint64_t min_ns, max_ns;   /* exact; min_ns is UINT64_MAX when empty */
    double sum_ns;             /* for the mean */
    uint64_t counts[MQLOAD_HIST_BUCKETS];
} mqload_hist_t;

/* A compact copy: only the non-empty buckets, in increasing index order. */
typedef struct {
    uint64_t total, min_ns, max_ns;
    double sum_ns;
    size_t n, cap;
    uint32_t *idx;
    uint64_t *cnt;
} mqload_sparse_t;

void mqload_hist_init(mqload_hist_t *h);
/* Heap-allocated, zeroed histogram (they are ~37 KB: keep them off small stacks). */
mqload_hist_t *mqload_hist_new(void);
void mqload_hist_destroy(mqload_hist_t *h);

/* The bucket of ns (inline: every measured completion computes one). */
static inline uint32_t mqload_hist_index(uint64_t ns)
{
    if (ns < MQLOAD_HIST_SUB_COUNT) return (uint32_t) ns;
    unsigned e = 63u - (unsigned) __builtin_clzll(ns); /* floor(log2 ns) >= SUB_BITS */
    if (e > MQLOAD_HIST_MAX_EXP) return MQLOAD_HIST_BUCKETS - 1;
    unsigned shift = e - MQLOAD_HIST_SUB_BITS;
    uint32_t sub = (uint32_t) (ns >> shift) & (MQLOAD_HIST_SUB_COUNT - 1);
    return MQLOAD_HIST_SUB_COUNT * (shift + 1) + sub;
}
/* The bucket's lowest value and its width in ns. */
uint64_t mqload_hist_bucket_low(uint32_t index);
uint64_t mqload_hist_bucket_width(uint32_t index);

static inline void mqload_hist_record(mqload_hist_t *h, uint64_t ns)
{
    h->counts[mqload_hist_index(ns)]++;
    h->total++;
    h->sum_ns += (double) ns;
    if (ns < h->min_ns) h->min_ns = ns;
    if (ns > h->max_ns) h->max_ns = ns;
}

void mqload_hist_merge(mqload_hist_t *dst, const mqload_hist_t *src);
/* The value (ns) at quantile q in [0, 1]: the midpoint of the bucket holding the
 * ceil(q * total)-th smallest value, clamped to [min, max]. 0 when empty. */
double mqload_hist_quantile(const mqload_hist_t *h, double q);
double mqload_hist_mean(const mqload_hist_t *h);

void mqload_sparse_init(mqload_sparse_t *s);
void mqload_sparse_free(mqload_sparse_t *s);
/* s = the non-empty buckets of h (s's previous content is replaced). */
void mqload_sparse_from_hist(mqload_sparse_t *s, const mqload_hist_t *h);
/* Appends one bucket; indexes must come in increasing order. false for a bad index. */
bool mqload_sparse_push(mqload_sparse_t *s, uint32_t index, uint64_t count);
/* dst += src (dst's summary fields too). */
void mqload_hist_add_sparse(mqload_hist_t *dst, const mqload_sparse_t *src);
void mqload_sparse_merge(mqload_sparse_t *dst, const mqload_sparse_t *src);

#endif
