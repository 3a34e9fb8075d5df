/* Redaction of connection strings: the password of the userinfo, and the values of options that
 * hold secrets, become "***". Works on any text, including URIs libmongoc rejects, because it is
 * what mqc prints when a URI is wrong. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uri_redact.h"

/* Options whose value is a secret (compared case-insensitively). */
static const char *const secret_options[] = {
    "tlscertificatekeyfilepassword", "sslclientcertificatekeypassword", "proxypassword",
};

bool mqc_uri_is_secret_option(const char *key, size_t len)
{
    for (size_t i = 0; i < sizeof secret_options / sizeof secret_options[0]; i++)
        if (strlen(secret_options[i]) == len && strncasecmp(secret_options[i], key, len) == 0) return true;
    return false;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char) s[i])) return false;
    return true;
}

bool mqc_uri_find_password(const char *uri, size_t *start, size_t *len)
{
    const char *scheme = strstr(uri, "://");
    if (!scheme) return false;
    const char *a = scheme + 3;
    size_t auth_len = strcspn(a, "/?");
    const char *at = NULL;
    for (const char *p = a; p < a + auth_len; p++)
        if (*p == '@') at = p;
    if (!at) {
        /* A password with an unescaped '/' or '?' ends the authority early ("u:pa/ss@h"): the
         * URI is invalid, and printing it must still hide the secret. When a ':' is followed by
         * something other than a port and an '@' comes later, take the last '@'. */
        const char *colon = memchr(a, ':', auth_len);
        const char *last_at = strrchr(a, '@');
        if (!colon || !last_at) return false;
        const char *after = colon + 1;
        size_t port_len = (size_t) (a + auth_len - after);
        const char *comma = memchr(after, ',', port_len);
        if (comma) port_len = (size_t) (comma - after);
        if (all_digits(after, port_len) && after + port_len == a + auth_len) return false;
        at = last_at;
    }
    const char *colon = memchr(a, ':', (size_t) (at - a));
    if (!colon) return false; /* a user without a password */
    *start = (size_t) (colon + 1 - uri);
    *len = (size_t) (at - (colon + 1));
    return true;
}

/* Appends to out within its size; returns false once it is full. */
typedef struct {
    char *out;
    size_t size, n;
} sink_t;

static void put(sink_t *s, const char *p, size_t len)
{
    for (size_t i = 0; i < len && s->n + 1 < s->size; i++) s->out[s->n++] = p[i];
    if (s->size) s->out[s->n] = 0;
}

char *mqc_uri_redact(const char *uri, char *out, size_t out_size)
{
    sink_t s = {out, out_size, 0};
    if (!out || out_size == 0) return out;
    out[0] = 0;
    if (!uri) return out;
    size_t pw_start = 0, pw_len = 0, pos = 0, total = strlen(uri);
    if (mqc_uri_find_password(uri, &pw_start, &pw_len)) {
        put(&s, uri, pw_start);
        put(&s, "***", 3);
        pos = pw_start + pw_len;
    }
    /* The query: values of secret options are hidden too. */
    const char *q = strchr(uri + pos, '?');
    size_t qpos = q ? (size_t) (q - uri) : total;
    put(&s, uri + pos, qpos - pos);
    pos = qpos;
    while (pos < total) {
        /* pos is at '?' or '&' (or ';'): copy the separator, then key=value */
        put(&s, uri + pos, 1);
        pos++;
        size_t item = strcspn(uri + pos, "&;");
        const char *eq = memchr(uri + pos, '=', item);
        if (eq && mqc_uri_is_secret_option(uri + pos, (size_t) (eq - (uri + pos)))) {
            put(&s, uri + pos, (size_t) (eq + 1 - (uri + pos)));
            put(&s, "***", 3);
        } else {
            put(&s, uri + pos, item);
        }
        pos += item;
    }
    return out;
}

char *mqc_uri_redact_dup(const char *uri)
{
    /* Each "***" may replace fewer bytes than it takes (an empty or 1-2 byte secret): grow
     * until the result fits, so the copy is never cut short (fuzz_uri found a truncation). */
    size_t n = (uri ? strlen(uri) : 0) + 8;
    for (;;) {
        char *out = malloc(n);
        if (!out) abort();
        mqc_uri_redact(uri, out, n);
        if (strlen(out) + 1 < n) return out;
        free(out);
        n *= 2;
    }
}

void mqc_uri_scrub_secret(char *text, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (!text || n == 0) return;
    char *p = text;
    while ((p = strstr(p, secret))) {
        /* Short secrets could match ordinary words: only whole tokens are replaced then. */
        bool whole = (p == text || !isalnum((unsigned char) p[-1])) && !isalnum((unsigned char) p[n]);
        if (n < 4 && !whole) {
            p++;
            continue;
        }
        size_t rest = strlen(p + n);
        if (n >= 3) {
            memcpy(p, "***", 3);
            memmove(p + 3, p + n, rest + 1);
            p += 3;
        } else {
            memset(p, '*', n);
            p += n;
        }
    }
}
