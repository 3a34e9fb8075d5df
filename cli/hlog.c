/* hlog: HdrHistogram V2 encoding and interval log (hlog.h).
 *
 * The V2 encoding (HdrHistogram's AbstractHistogram.encodeIntoByteBuffer): a big-endian header
 * (cookie 0x1c849313, payload length, normalizing index offset 0, significant digits, lowest and
 * highest trackable value, int-to-double ratio 1.0), then the counts as ZigZag LEB128, a run of k
 * empty buckets written as -k. The compressed form (cookie 0x1c849314) wraps that in a zlib
 * stream. We write the zlib stream with stored (uncompressed) deflate blocks: every inflater reads
 * them, the zero runs already keep the payload small, and mqload needs no zlib. */
#include "hlog.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define V2_COOKIE 0x1c849313u            /* 0x1c849303 | word size 0x10 */
#define V2_COMPRESSED_COOKIE 0x1c849314u /* 0x1c849304 | 0x10 */

typedef struct {
    uint8_t *b;
    size_t n, cap;
} bytes_t;

static void put(bytes_t *x, const void *p, size_t n)
{
    if (x->n + n > x->cap) {
        size_t cap = x->cap ? x->cap : 256;
        while (cap < x->n + n) cap *= 2;
        x->b = realloc(x->b, cap);
        if (!x->b) abort();
        x->cap = cap;
    }
    memcpy(x->b + x->n, p, n);
    x->n += n;
}

static void put_be32(bytes_t *x, uint32_t v)
{
    uint8_t b[4] = {(uint8_t) (v >> 24), (uint8_t) (v >> 16), (uint8_t) (v >> 8), (uint8_t) v};
    put(x, b, 4);
}

static void put_be64(bytes_t *x, uint64_t v)
{
    put_be32(x, (uint32_t) (v >> 32));
    put_be32(x, (uint32_t) v);
}

/* HdrHistogram's ZigZagEncoding.putLong: LEB128 of the zigzagged value, at most 9 bytes, the 9th
 * carrying 8 bits. */
static void put_zigzag(bytes_t *x, int64_t v)
{
    uint64_t u = ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
    uint8_t b[9];
    size_t n = 0;
    while (n < 8 && u >= 0x80) {
        b[n++] = (uint8_t) (u | 0x80);
        u >>= 7;
    }
    b[n++] = (uint8_t) u;
    put(x, b, n);
}

static uint32_t adler32(const uint8_t *p, size_t n)
{
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < n; i++) {
        a = (a + p[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    return (b << 16) | a;
}

/* A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 BTYPE 00). */
static void put_zlib_stored(bytes_t *x, const uint8_t *p, size_t n)
{
    uint8_t hdr[2] = {0x78, 0x01}; /* deflate, 32K window; (0x78 * 256 + 0x01) % 31 == 0 */
    put(x, hdr, 2);
    size_t off = 0;
    do {
        size_t len = n - off > 65535 ? 65535 : n - off;
        uint8_t bh[5] = {off + len == n ? 1 : 0, (uint8_t) len, (uint8_t) (len >> 8), (uint8_t) ~len,
                         (uint8_t) (~len >> 8)};
        put(x, bh, 5);
        put(x, p + off, len);
        off += len;
    } while (off < n);
    put_be32(x, adler32(p, n));
}

static void base64(const uint8_t *p, size_t n, mqload_strbuf_t *out)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[5] = {0};
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        q[0] = A[v >> 18 & 63], q[1] = A[v >> 12 & 63];
        q[2] = i + 1 < n ? A[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? A[v & 63] : '=';
        mqload_sb_puts(out, q);
    }
}

void mqload_hdr_encode(const mqload_sparse_t *h, mqload_strbuf_t *out)
{
    /* Counts: our bucket index is HdrHistogram's counts index (hlog.h); gaps become zero runs. */
    bytes_t counts = {0}, raw = {0}, full = {0};
    uint32_t next = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (h->idx[i] > next) put_zigzag(&counts, -(int64_t) (h->idx[i] - next));
        put_zigzag(&counts, (int64_t) h->cnt[i]);
        next = h->idx[i] + 1;
    }
    put_be32(&raw, V2_COOKIE);
    put_be32(&raw, (uint32_t) counts.n);
    put_be32(&raw, 0);
    put_be32(&raw, MQLOAD_HDR_SIGFIGS);
    put_be64(&raw, MQLOAD_HDR_LOWEST);
    put_be64(&raw, (uint64_t) MQLOAD_HDR_HIGHEST);
    double ratio = 1.0;
    uint64_t rbits;
    memcpy(&rbits, &ratio, sizeof rbits);
    put_be64(&raw, rbits);
    if (counts.n) put(&raw, counts.b, counts.n);
    bytes_t z = {0};
    put_zlib_stored(&z, raw.b, raw.n);
    put_be32(&full, V2_COMPRESSED_COOKIE);
    put_be32(&full, (uint32_t) z.n);
    put(&full, z.b, z.n);
    base64(full.b, full.n, out);
    free(counts.b);
    free(raw.b);
    free(z.b);
    free(full.b);
}

static void interval(mqload_strbuf_t *out, const char *tag, size_t sec, const mqload_sparse_t *h)
{
    if (tag) {
        /* A tag ends at the comma and may not hold spaces: anything else is kept. */
        mqload_sb_puts(out, "Tag=");
        for (const char *p = tag; *p; p++) mqload_sb_printf(out, "%c", *p == ',' || *p == ' ' || *p == '\t' ? '_' : *p);
        mqload_sb_puts(out, ",");
    }
    /* Interval_Max in milliseconds: HdrHistogram's default maxValueUnitRatio (1e6) for ns. */
    mqload_sb_printf(out, "%.3f,%.3f,%.3f,", (double) sec, 1.0, h->total ? (double) h->max_ns / 1e6 : 0.0);
    mqload_hdr_encode(h, out);
    mqload_sb_puts(out, "\n");
}

void mqload_hlog_write(const mqload_result_t *r, mqload_strbuf_t *out)
{
    char when[64] = "";
    time_t t = (time_t) r->start_unix;
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%a %b %d %H:%M:%S UTC %Y", &tm);
    mqload_sb_printf(out, "#[Logged with mqload %s, workload %s (id %s), engine %s]\n", r->tool_version,
                     r->workload_name, r->workload_id, r->engine);
    mqload_sb_puts(out, "#[Latency of successful operations in nanoseconds (failed ones are not in this log), one interval "
                        "per second of the measured window, by completion time; untagged: all operations, Tag=NAME: one operation]\n");
    mqload_sb_puts(out, "#[Histogram log format version 1.3]\n");
    mqload_sb_printf(out, "#[StartTime: %.3f (seconds since epoch), %s]\n", r->start_unix, when);
    mqload_sb_printf(out, "#[BaseTime: %.3f (seconds since epoch)]\n", r->start_unix);
    mqload_sb_puts(out, "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n");
    for (size_t i = 0; i < r->n_seconds; i++) {
        const mqload_second_t *s = &r->timeline[i];
        interval(out, NULL, i, &s->hist);
        /* Then each operation's, tagged with its name (HistogramLogProcessor -tag NAME reads them;
         * tools reading untagged intervals only see the totals above). */
        for (size_t k = 0; k < s->n_op_hist && k < r->n_ops; k++)
            if (s->op_hist[k].total) interval(out, r->ops[k].name, i, &s->op_hist[k]);
    }
}
