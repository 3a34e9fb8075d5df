/* strbuf: a growing string; aborts on out-of-memory like the rest of mqload's reporting. */
#include "strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mqload_sb_init(mqload_strbuf_t *sb)
{
    sb->len = 0;
    sb->cap = 256;
    sb->s = malloc(sb->cap);
    if (!sb->s) abort();
    sb->s[0] = 0;
}

void mqload_sb_free(mqload_strbuf_t *sb)
{
    free(sb->s);
    sb->s = NULL;
    sb->len = sb->cap = 0;
}

static void reserve(mqload_strbuf_t *sb, size_t extra)
{
    if (sb->len + extra + 1 <= sb->cap) return;
    while (sb->len + extra + 1 > sb->cap) sb->cap *= 2;
    sb->s = realloc(sb->s, sb->cap);
    if (!sb->s) abort();
}

void mqload_sb_printf(mqload_strbuf_t *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sb->s + sb->len, sb->cap - sb->len, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t) n >= sb->cap - sb->len) {
        reserve(sb, (size_t) n);
        va_start(ap, fmt);
        vsnprintf(sb->s + sb->len, sb->cap - sb->len, fmt, ap);
        va_end(ap);
    }
    sb->len += (size_t) n;
}

void mqload_sb_puts(mqload_strbuf_t *sb, const char *s)
{
    size_t n = strlen(s);
    reserve(sb, n);
    memcpy(sb->s + sb->len, s, n + 1);
    sb->len += n;
}

void mqload_sb_json_str(mqload_strbuf_t *sb, const char *s)
{
    mqload_sb_puts(sb, "\"");
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (*p == '"' || *p == '\\') mqload_sb_printf(sb, "\\%c", *p);
        else if (*p == '\n') mqload_sb_puts(sb, "\\n");
        else if (*p == '\t') mqload_sb_puts(sb, "\\t");
        else if (*p < 0x20) mqload_sb_printf(sb, "\\u%04x", *p);
        else {
            reserve(sb, 1);
            sb->s[sb->len++] = (char) *p;
            sb->s[sb->len] = 0;
        }
    }
    mqload_sb_puts(sb, "\"");
}

void mqload_sb_html(mqload_strbuf_t *sb, const char *s)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '<': mqload_sb_puts(sb, "&lt;"); break;
        case '>': mqload_sb_puts(sb, "&gt;"); break;
        case '&': mqload_sb_puts(sb, "&amp;"); break;
        case '"': mqload_sb_puts(sb, "&quot;"); break;
        case '\'': mqload_sb_puts(sb, "&#39;"); break;
        default: {
            char c[2] = {*p, 0};
            mqload_sb_puts(sb, c);
        }
        }
    }
}

void mqload_sb_json_num(mqload_strbuf_t *sb, double v)
{
    if (!isfinite(v)) v = 0;
    if (v == floor(v) && fabs(v) < 9e15) mqload_sb_printf(sb, "%.0f", v);
    else mqload_sb_printf(sb, "%.6g", v);
}
