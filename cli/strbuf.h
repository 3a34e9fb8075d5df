/* strbuf: a growing string for building reports. */
#ifndef MQLOAD_STRBUF_H
#define MQLOAD_STRBUF_H

#include <stddef.h>

typedef struct {
    char *s;
    size_t len, cap;
} mqload_strbuf_t;

void mqload_sb_init(mqload_strbuf_t *sb);
void mqload_sb_free(mqload_strbuf_t *sb);
void mqload_sb_printf(mqload_strbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mqload_sb_puts(mqload_strbuf_t *sb, const char *s);
/* Appends s as a JSON string literal (quotes and escapes). */
void mqload_sb_json_str(mqload_strbuf_t *sb, const char *s);
/* Appends s escaped for HTML text and attributes. */
void mqload_sb_html(mqload_strbuf_t *sb, const char *s);
/* Appends a number as JSON (finite; integers without a fraction). */
void mqload_sb_json_num(mqload_strbuf_t *sb, double v);

#endif
