/* histfmt: how a measurement is written down (histfmt.h). */
#include "histfmt.h"

#include <stdio.h>
#include <string.h>

void mqload_fmt_latency(double ns, char *out, size_t outsz)
{
    if (ns < 1e3) snprintf(out, outsz, "%.0fns", ns);
    else if (ns < 1e6) snprintf(out, outsz, "%.0fus", ns / 1e3);
    else if (ns < 1e9) snprintf(out, outsz, "%.2fms", ns / 1e6);
    else snprintf(out, outsz, "%.2fs", ns / 1e9);
}

void mqload_sparse_json(const mqload_sparse_t *s, mqload_strbuf_t *out)
{
    mqload_sb_printf(out, "{\"scheme\":\"%s\",\"unit\":\"ns\",\"count\":%llu,\"min\":%llu,\"max\":%llu,\"sum\":",
                     MQLOAD_HIST_SCHEME, (unsigned long long) s->total,
                     (unsigned long long) (s->total ? s->min_ns : 0), (unsigned long long) s->max_ns);
    mqload_sb_json_num(out, s->sum_ns);
    mqload_sb_puts(out, ",\"buckets\":[");
    for (size_t i = 0; i < s->n; i++)
        mqload_sb_printf(out, "%s[%u,%llu]", i ? "," : "", s->idx[i], (unsigned long long) s->cnt[i]);
    mqload_sb_puts(out, "]}");
}

void mqload_hist_json(const mqload_hist_t *h, mqload_strbuf_t *out)
{
    mqload_sparse_t s;
    mqload_sparse_init(&s);
    mqload_sparse_from_hist(&s, h);
    mqload_sparse_json(&s, out);
    mqload_sparse_free(&s);
}

bool mqload_json_fail(char *err, size_t esz, const char *msg, const char *key)
{
    snprintf(err, esz, "%s%s%s", msg, key ? ": " : "", key ? key : "");
    return false;
}

uint64_t mqload_json_u64(const bson_iter_t *it)
{
    if (BSON_ITER_HOLDS_DOUBLE(it)) return bson_iter_double(it) > 0 ? (uint64_t) bson_iter_double(it) : 0;
    if (BSON_ITER_HOLDS_INT32(it) || BSON_ITER_HOLDS_INT64(it)) {
        int64_t v = bson_iter_as_int64(it);
        return v > 0 ? (uint64_t) v : 0;
    }
    return 0;
}

bool mqload_sparse_from_json(const bson_iter_t *hist_it, mqload_sparse_t *s, char *err, size_t esz)
{
    bson_iter_t h;
    mqload_sparse_init(s);
    if (!BSON_ITER_HOLDS_DOCUMENT(hist_it) || !bson_iter_recurse(hist_it, &h)) return mqload_json_fail(err, esz, "histogram is not an object", NULL);
    bool have_buckets = false;
    while (bson_iter_next(&h)) {
        const char *k = bson_iter_key(&h);
        if (!strcmp(k, "scheme")) {
            if (!BSON_ITER_HOLDS_UTF8(&h) || strcmp(bson_iter_utf8(&h, NULL), MQLOAD_HIST_SCHEME))
                return mqload_json_fail(err, esz, "histogram scheme is not " MQLOAD_HIST_SCHEME ": cannot merge it exactly", NULL);
        } else if (!strcmp(k, "count")) s->total = mqload_json_u64(&h);
        else if (!strcmp(k, "min")) s->min_ns = mqload_json_u64(&h);
        else if (!strcmp(k, "max")) s->max_ns = mqload_json_u64(&h);
        else if (!strcmp(k, "sum") && BSON_ITER_HOLDS_NUMBER(&h)) s->sum_ns = bson_iter_as_double(&h);
        else if (!strcmp(k, "buckets") && BSON_ITER_HOLDS_ARRAY(&h)) {
            bson_iter_t b, pair;
            have_buckets = true;
            bson_iter_recurse(&h, &b);
            while (bson_iter_next(&b)) {
                uint64_t v[2] = {0, 0};
                int got = 0;
                if (!BSON_ITER_HOLDS_ARRAY(&b) || !bson_iter_recurse(&b, &pair)) return mqload_json_fail(err, esz, "bad histogram bucket", NULL);
                while (bson_iter_next(&pair) && got < 3) {
                    if (got < 2) v[got] = mqload_json_u64(&pair);
                    got++;
                }
                if (got != 2 || !mqload_sparse_push(s, (uint32_t) (v[0] < UINT32_MAX ? v[0] : UINT32_MAX), v[1]))
                    return mqload_json_fail(err, esz, "bad histogram bucket (index out of range or out of order)", NULL);
            }
        }
    }
    if (!have_buckets) return mqload_json_fail(err, esz, "histogram without buckets", NULL);
    uint64_t sum = 0;
    for (size_t i = 0; i < s->n; i++) sum += s->cnt[i];
    if (sum != s->total) return mqload_json_fail(err, esz, "histogram bucket counts do not add up to its count", NULL);
    if (!s->total) s->min_ns = UINT64_MAX;
    return true;
}

bool mqload_hist_from_json(const bson_iter_t *it, mqload_hist_t *h, char *err, size_t esz)
{
    mqload_sparse_t s;
    bool ok = mqload_sparse_from_json(it, &s, err, esz);
    if (ok) mqload_hist_add_sparse(h, &s);
    mqload_sparse_free(&s);
    return ok;
}
