/* frame: results framed in logs (frame.h). */
#include "frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
#define MARK "MQLOAD-RESULT-"

void mqload_b64_encode(mqload_strbuf_t *out, const uint8_t *d, size_t len)
{
    char q[5] = {0};
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t) d[i] << 16 | (i + 1 < len ? (uint32_t) d[i + 1] << 8 : 0) | (i + 2 < len ? d[i + 2] : 0);
        q[0] = B64[v >> 18 & 63];
        q[1] = B64[v >> 12 & 63];
        q[2] = i + 1 < len ? B64[v >> 6 & 63] : '=';
        q[3] = i + 2 < len ? B64[v & 63] : '=';
        mqload_sb_puts(out, q);
    }
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool mqload_b64_decode(const char *s, size_t len, uint8_t *out, size_t *outlen)
{
    size_t n = 0;
    if (len % 4) return false;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        size_t pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == len && k >= 2) {
                v[k] = 0, pad++;
                continue;
            }
            if (pad || (v[k] = b64_val(s[i + k])) < 0) return false; /* '=' only at the very end */
        }
        uint32_t x = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 | (uint32_t) v[3];
        out[n++] = (uint8_t) (x >> 16);
        if (pad < 2) out[n++] = (uint8_t) (x >> 8);
        if (pad < 1) out[n++] = (uint8_t) x;
    }
    *outlen = n;
    return true;
}

void mqload_frame_result(mqload_strbuf_t *out, uint32_t worker, const char *json, size_t len, int exit_status)
{
    mqload_strbuf_t b64;
    mqload_sb_init(&b64);
    mqload_b64_encode(&b64, (const uint8_t *) json, len);
    mqload_sb_printf(out, MARK "BEGIN %u %zu\n", worker, len);
    for (size_t off = 0; off < b64.len; off += MQLOAD_FRAME_LINE_B64) {
        size_t n = b64.len - off < MQLOAD_FRAME_LINE_B64 ? b64.len - off : MQLOAD_FRAME_LINE_B64;
        mqload_sb_printf(out, MARK "DATA %u %.*s\n", worker, (int) n, b64.s + off);
    }
    mqload_sb_printf(out, MARK "END %u %d\n", worker, exit_status);
    mqload_sb_free(&b64);
}

void mqload_frame_failed(mqload_strbuf_t *out, uint32_t worker, int exit_status, const char *message)
{
    mqload_sb_printf(out, MARK "FAILED %u %d ", worker, exit_status);
    /* One line: a message with newlines would spill out of its frame. */
    for (const char *p = message; *p; p++) {
        char c[2] = {*p == '\n' || *p == '\r' ? ' ' : *p, 0};
        mqload_sb_puts(out, c);
    }
    mqload_sb_puts(out, "\n");
}

typedef struct {
    bool open;
    uint32_t worker;
    size_t bytes;
    mqload_strbuf_t b64;
} open_frame_t;

typedef struct {
    mqload_frame_t *v;
    size_t n, cap;
    open_frame_t *open;
    size_t n_open, cap_open;
} scan_t;

static mqload_frame_t *push(scan_t *s, mqload_frame_kind_t kind, uint32_t worker, int exit_status)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) abort();
    }
    mqload_frame_t *f = &s->v[s->n++];
    memset(f, 0, sizeof *f);
    f->kind = kind, f->worker = worker, f->exit_status = exit_status;
    return f;
}

static open_frame_t *find_open(scan_t *s, uint32_t worker, bool create)
{
    for (size_t i = 0; i < s->n_open; i++)
        if (s->open[i].worker == worker) return &s->open[i];
    if (!create) return NULL;
    if (s->n_open == s->cap_open) {
        s->cap_open = s->cap_open ? s->cap_open * 2 : 8;
        s->open = realloc(s->open, s->cap_open * sizeof *s->open);
        if (!s->open) abort();
    }
    open_frame_t *o = &s->open[s->n_open++];
    memset(o, 0, sizeof *o);
    o->worker = worker;
    mqload_sb_init(&o->b64);
    return o;
}

static void broken(scan_t *s, open_frame_t *o, const char *why)
{
    mqload_frame_t *f = push(s, MQLOAD_FRAME_BROKEN, o->worker, -1);
    snprintf(f->message, sizeof f->message, "%s", why);
    o->open = false;
}

static void finish(scan_t *s, open_frame_t *o, int exit_status)
{
    uint8_t *buf = malloc(o->b64.len / 4 * 3 + 1);
    size_t n = 0;
    if (!buf) abort();
    if (!mqload_b64_decode(o->b64.s ? o->b64.s : "", o->b64.len, buf, &n) || n != o->bytes) {
        free(buf);
        char why[128];
        snprintf(why, sizeof why, "result frame corrupt or incomplete (%zu bytes announced)", o->bytes);
        broken(s, o, why);
        return;
    }
    buf[n] = 0;
    mqload_frame_t *f = push(s, MQLOAD_FRAME_RESULT, o->worker, exit_status);
    f->json = (char *) buf;
    f->len = n;
    o->open = false;
}

static void scan_line(scan_t *s, const char *line, size_t len)
{
    /* The line as a string: markers and numbers are parsed with the C library. */
    char *l = strndup(line, len);
    if (!l) abort();
    const char *m = strstr(l, MARK);
    unsigned w;
    int n = 0, ex;
    size_t bytes;
    if (!m) goto out;
    m += strlen(MARK);
    if (sscanf(m, "BEGIN %u %zu%n", &w, &bytes, &n) == 2 && n) {
        open_frame_t *o = find_open(s, w, true);
        if (o->open) broken(s, o, "result frame restarted before its end");
        o->open = true, o->bytes = bytes, o->b64.len = 0;
    } else if (sscanf(m, "DATA %u %n", &w, &n) == 1 && n) {
        open_frame_t *o = find_open(s, w, false);
        if (o && o->open) {
            size_t k = strspn(m + n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");
            mqload_sb_printf(&o->b64, "%.*s", (int) k, m + n);
        }
    } else if (sscanf(m, "END %u %d", &w, &ex) == 2) {
        open_frame_t *o = find_open(s, w, false);
        if (o && o->open) finish(s, o, ex);
    } else if (sscanf(m, "FAILED %u %d %n", &w, &ex, &n) == 2) {
        mqload_frame_t *f = push(s, MQLOAD_FRAME_FAILED, w, ex);
        size_t ml = strcspn(m + n, "\"\r\n"); /* stop at a JSON log record's closing quote */
        snprintf(f->message, sizeof f->message, "%.*s", (int) ml, n ? m + n : "");
    }
out:
    free(l);
}

size_t mqload_frames_scan(const char *text, size_t len, mqload_frame_t **out)
{
    scan_t s;
    memset(&s, 0, sizeof s);
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t ll = nl ? (size_t) (nl - (text + i)) : len - i;
        if (memmem(text + i, ll, MARK, strlen(MARK))) scan_line(&s, text + i, ll);
        i += ll + 1;
    }
    for (size_t i = 0; i < s.n_open; i++) {
        if (s.open[i].open) broken(&s, &s.open[i], "result frame without its end (the worker stopped while writing it)");
        mqload_sb_free(&s.open[i].b64);
    }
    free(s.open);
    *out = s.v;
    return s.n;
}

void mqload_frames_free(mqload_frame_t *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) free(frames[i].json);
    free(frames);
}
