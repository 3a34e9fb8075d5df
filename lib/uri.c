/* uri: libmongoc parses the connection string (mongoc_uri_t owns the connection-string spec);
 * mqc reads its own options out of the query first, so libmongoc neither warns about them nor
 * drops them, then resolves every value it uses to its default and validates the whole. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "uri.h"
#include "uri_redact.h"

/* Options libmongoc 1.23 does not know (it would log "Unsupported URI option" and drop them).
 * minPoolSize, maxIdleTimeMS and waitQueueTimeoutMS it keeps: they are read back from it. */
enum { X_MAX_CONNECTING, X_TIMEOUT_MS, X_MAX_PENDING, X__COUNT };
static const char *const extra_names[X__COUNT] = {"maxConnecting", "timeoutMS", "maxPendingOperations"};

typedef struct {
    bool set[X__COUNT];
    int64_t value[X__COUNT];
} extras_t;

static void bstrdup_opt(char **dst, const char *src) { *dst = src ? bson_strdup(src) : NULL; }

static void wipe_free(char *s)
{
    if (!s) return;
    volatile char *v = s;
    while (*v) *v++ = 0;
    bson_free(s);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (size > n). False on a bad escape. */
static bool pct_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n) return false;
            int h = hexval((unsigned char) s[i + 1]), l = hexval((unsigned char) s[i + 2]);
            if (h < 0 || l < 0) return false;
            out[o++] = (char) (h * 16 + l);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = 0;
    return true;
}

static bool parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    if (!*text || isspace((unsigned char) *text)) return false;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

/* ---- secrets kept from libmongoc --------------------------------------------------------
 * libmongoc 1.23 copies the password while parsing (the unescaped userinfo, the URI string it
 * keeps) and frees those copies without wiping them; a memory scan after mqc_client_destroy
 * found them. So libmongoc never sees a secret mqc can read itself: the password and the values
 * of secret options are decoded here and overwritten in place with as many 'x's before
 * libmongoc parses the string. Only values libmongoc would accept are taken (valid UTF-8, every
 * '%' a non-zero escape, decoded UTF-8 valid, none of the characters that would split the
 * field): anything else is left for libmongoc to reject with its own message (scrubbed by
 * uri_fail), so the URI's validity is libmongoc's alone. */
static char *take_value(char *raw, size_t n, const char *forbidden)
{
    if (n == 0 || !bson_utf8_validate(raw, n, false)) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (strchr(forbidden, raw[i])) return NULL;
        if (raw[i] == '%' && (i + 2 >= n || hexval((unsigned char) raw[i + 1]) < 0 ||
                              hexval((unsigned char) raw[i + 2]) < 0 ||
                              (raw[i + 1] == '0' && raw[i + 2] == '0')))
            return NULL;
    }
    char *dec = bson_malloc0(n + 1);
    if (!pct_decode(raw, n, dec) || !bson_utf8_validate(dec, strlen(dec), false)) {
        wipe_free(dec);
        return NULL;
    }
    memset(raw, 'x', n);
    return dec;
}

static void take_secrets(char *s, mqc_uri_t *out)
{
    size_t pw_start, pw_len;
    char *from = strstr(s, "://");
    if (!from) return;
    from += 3;
    if (mqc_uri_find_password(s, &pw_start, &pw_len)) {
        out->password = take_value(s + pw_start, pw_len, "@:/?#[]");
        out->password_taken = out->password != NULL || pw_len == 0;
        from = s + pw_start + pw_len;
    }
    char *q = strchr(from, '?');
    while (q && *q) {
        char *item = q + 1;
        size_t n = strcspn(item, "&");
        char *eq = memchr(item, '=', n);
        if (eq && mqc_uri_is_secret_option(item, (size_t) (eq - item))) {
            char *v = take_value(eq + 1, n - (size_t) (eq + 1 - item), "&");
            size_t klen = (size_t) (eq - item);
            bool tls = !(klen == strlen("proxyPassword") && strncasecmp(item, "proxyPassword", klen) == 0);
            if (v && tls) {
                wipe_free(out->tls_certificate_key_file_password);
                out->tls_certificate_key_file_password = v;
                out->tls_key_password_taken = true;
            } else {
                wipe_free(v);
            }
        }
        q = item[n] ? item + n : NULL;
    }
}

/* Takes mqc's own options out of the query of *s (edited in place). */
static bool take_extras(char *s, extras_t *x, mqc_uri_t *out, mqc_error_t *error)
{
    size_t pw_start, pw_len;
    char *scheme = strstr(s, "://");
    if (!scheme) return true; /* libmongoc reports the bad scheme */
    char *from = scheme + 3;
    if (mqc_uri_find_password(s, &pw_start, &pw_len)) from = s + pw_start + pw_len;
    char *q = strchr(from, '?');
    if (!q) return true;
    if (!memchr(from, '/', (size_t) (q - from))) {
        /* "mongodb://host?opts": the spec allows a missing '/', libmongoc 1.23 does not. s has room
         * for it (see mqc_uri_parse). */
        memmove(q + 1, q, strlen(q) + 1);
        *q++ = '/';
    }
    char *r = q + 1, *w = q + 1;
    while (*r) {
        size_t item = strcspn(r, "&");
        char *eq = memchr(r, '=', item);
        int which = -1;
        if (eq)
            for (int i = 0; i < X__COUNT; i++)
                if (strlen(extra_names[i]) == (size_t) (eq - r) && strncasecmp(extra_names[i], r, (size_t) (eq - r)) == 0)
                    which = i;
        if (which < 0) {
            /* keep it */
            if (w != q + 1) *w++ = '&';
            memmove(w, r, item);
            w += item;
        } else {
            char val[64];
            size_t vlen = item - (size_t) (eq + 1 - r);
            int64_t v = 0;
            int64_t min = which == X_MAX_CONNECTING ? 1 : 0;
            int64_t max = which == X_MAX_CONNECTING ? INT32_MAX : INT64_MAX;
            if (vlen >= sizeof val || !pct_decode(eq + 1, vlen, val) || !parse_int(val, min, max, &v)) {
                mqc_error_set(error, MQC_ERROR_URI, 0,
                              "invalid connection string: %s must be an integer %s %lld (got \"%.*s\")",
                              extra_names[which], which == X_MAX_CONNECTING ? ">=" : ">=", (long long) min,
                              (int) (vlen < 40 ? vlen : 40), eq + 1);
                return false;
            }
            if (x->set[which] && out->n_warnings++ == 0)
                snprintf(out->warning, sizeof out->warning, "option %s given more than once: the last one wins",
                         extra_names[which]);
            x->set[which] = true;
            x->value[which] = v;
        }
        r += item;
        if (*r == '&') r++;
    }
    *w = 0;
    if (w == q + 1) *q = 0; /* nothing left after '?' */
    return true;
}

/* libmongoc 1.23 applies the SRV rule of before 2024: a mongodb+srv name needs three labels or
 * more. The specification now allows one or two ("mongodb+srv://localhost", "mongo.local"),
 * guarding them instead by what their SRV targets may be (lib/seedlist.c). Such a name goes to
 * libmongoc lengthened by this suffix, which mqc_uri_parse takes off again. Returns the new
 * string (wipe it: it may hold the password), or NULL when s needs no change. */
#define SHORT_SRV_SUFFIX ".mqc-srv.invalid"

static char *lengthen_short_srv_host(const char *s)
{
    static const char scheme[] = "mongodb+srv://";
    if (strncmp(s, scheme, sizeof scheme - 1) != 0) return NULL;
    const char *start = s + sizeof scheme - 1;
    const char *end = start + strcspn(start, "/?");
    for (const char *p = start; p < end; p++)
        if (*p == '@') start = p + 1;
    if (start == end) return NULL;
    size_t dots = 0;
    for (const char *p = start; p < end; p++) {
        if (strchr(",:%[]", *p)) return NULL; /* libmongoc's own errors are the right ones */
        dots += *p == '.';
    }
    if (dots >= 2) return NULL;
    size_t n = strlen(s), at = (size_t) (end - s), k = sizeof SHORT_SRV_SUFFIX - 1;
    char *out = bson_malloc(n + k + 1);
    memcpy(out, s, at);
    memcpy(out + at, SHORT_SRV_SUFFIX, k);
    memcpy(out + at + k, s + at, n - at + 1);
    return out;
}

/* libmongoc's messages may quote parts of the URI: never let the password through. */
static void uri_fail(mqc_error_t *error, const char *what, const char *uri)
{
    /* Scrubbed before truncation, so that no prefix of the password survives a cut. */
    char msg[sizeof(bson_error_t) + 64];
    snprintf(msg, sizeof msg, "invalid connection string: %.*s", (int) sizeof(bson_error_t), what);
    size_t start, len;
    if (mqc_uri_find_password(uri, &start, &len) && len > 0) {
        char *raw = bson_strndup(uri + start, len);
        /* zeroed: pct_decode stops without terminating on a bad escape, and wipe_free reads
         * up to the terminator (fuzz_uri found it) */
        char *dec = bson_malloc0(len + 1);
        mqc_uri_scrub_secret(msg, raw);
        if (pct_decode(raw, len, dec)) mqc_uri_scrub_secret(msg, dec);
        wipe_free(raw);
        wipe_free(dec);
    }
    mqc_error_set(error, MQC_ERROR_URI, 0, "%.*s", (int) sizeof error->message - 1, msg);
}

/* The option's value as given: mongoc_uri_get_option_as_int32/64 return the fallback for an
 * explicit 0 (maxPoolSize=0 means "no limit", connectTimeoutMS=0 "none"). */
static int64_t opt_i64(const mongoc_uri_t *mu, const char *key, int64_t dflt)
{
    bson_iter_t it;
    if (bson_iter_init_find_case(&it, mongoc_uri_get_options(mu), key) && BSON_ITER_HOLDS_NUMBER(&it))
        return bson_iter_as_int64(&it);
    return dflt;
}

static bool check_nonneg(const mongoc_uri_t *mu, const char *key, const char *name, mqc_error_t *error)
{
    if (opt_i64(mu, key, 0) < 0) {
        mqc_error_set(error, MQC_ERROR_URI, 0, "invalid connection string: %s must not be negative (got %lld)",
                      name, (long long) opt_i64(mu, key, 0));
        return false;
    }
    return true;
}

static void fill_hosts(mqc_uri_t *out, const mongoc_uri_t *mu)
{
    const mongoc_host_list_t *h;
    size_t n = 0;
    for (h = mongoc_uri_get_hosts(mu); h; h = h->next) n++;
    out->hosts = bson_malloc0((n ? n : 1) * sizeof *out->hosts);
    out->n_hosts = n;
    n = 0;
    for (h = mongoc_uri_get_hosts(mu); h; h = h->next, n++) {
        mqc_uri_host_t *d = &out->hosts[n];
        bson_strncpy(d->host, h->host, sizeof d->host);
        d->port = h->port;
        d->is_unix = h->family == AF_UNIX;
        bson_strncpy(d->host_and_port, h->host_and_port, sizeof d->host_and_port);
    }
}

static void fill_concerns(mqc_uri_t *out, const mongoc_uri_t *mu)
{
    const mongoc_write_concern_t *wc = mongoc_uri_get_write_concern(mu);
    int32_t w = mongoc_write_concern_get_w(wc);
    if (w >= 0) BSON_APPEND_INT32(&out->write_concern, "w", w);
    else if (w == MONGOC_WRITE_CONCERN_W_MAJORITY) BSON_APPEND_UTF8(&out->write_concern, "w", "majority");
    else if (w == MONGOC_WRITE_CONCERN_W_TAG && mongoc_write_concern_get_wtag(wc))
        BSON_APPEND_UTF8(&out->write_concern, "w", mongoc_write_concern_get_wtag(wc));
    if (mongoc_write_concern_journal_is_set(wc))
        BSON_APPEND_BOOL(&out->write_concern, "j", mongoc_write_concern_get_journal(wc));
    if (mongoc_uri_has_option(mu, MONGOC_URI_WTIMEOUTMS))
        BSON_APPEND_INT64(&out->write_concern, "wtimeout", mongoc_write_concern_get_wtimeout_int64(wc));
    out->write_concern_unacknowledged =
        w == 0 && !(mongoc_write_concern_journal_is_set(wc) && mongoc_write_concern_get_journal(wc));

    const char *level = mongoc_read_concern_get_level(mongoc_uri_get_read_concern(mu));
    if (level) BSON_APPEND_UTF8(&out->read_concern, "level", level);

    const mongoc_read_prefs_t *rp = mongoc_uri_get_read_prefs_t(mu);
    switch (mongoc_read_prefs_get_mode(rp)) {
    case MONGOC_READ_PRIMARY_PREFERRED: out->read_mode = MQC_READ_PRIMARY_PREFERRED; break;
    case MONGOC_READ_SECONDARY: out->read_mode = MQC_READ_SECONDARY; break;
    case MONGOC_READ_SECONDARY_PREFERRED: out->read_mode = MQC_READ_SECONDARY_PREFERRED; break;
    case MONGOC_READ_NEAREST: out->read_mode = MQC_READ_NEAREST; break;
    case MONGOC_READ_PRIMARY:
    default: out->read_mode = MQC_READ_PRIMARY; break;
    }
    const bson_t *tags = mongoc_read_prefs_get_tags(rp);
    if (tags && !bson_empty(tags)) bson_copy_to_excluding_noinit(tags, &out->read_tags, "", NULL);
    out->max_staleness_seconds = mongoc_read_prefs_get_max_staleness_seconds(rp);
    if (out->max_staleness_seconds <= 0) out->max_staleness_seconds = -1;
}

/* authSource as written in the URI (libmongoc keeps it with the credentials), or NULL. */
static const char *given_auth_source(const mongoc_uri_t *mu)
{
    bson_iter_t it;
    if (bson_iter_init_find_case(&it, mongoc_uri_get_credentials(mu), MONGOC_URI_AUTHSOURCE) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

static void fill_auth_and_tls(mqc_uri_t *out, const mongoc_uri_t *mu)
{
    bstrdup_opt(&out->username, mongoc_uri_get_username(mu));
    if (!out->password_taken) bstrdup_opt(&out->password, mongoc_uri_get_password(mu));
    else if (!out->password) out->password = bson_strdup(""); /* "user:@host" */
    bstrdup_opt(&out->auth_mechanism, mongoc_uri_get_auth_mechanism(mu));
    bstrdup_opt(&out->database, mongoc_uri_get_database(mu));
    /* The auth spec's source: authSource, else "$external" for mechanisms whose credentials live
     * outside the server (libmongoc 1.23 resolves GSSAPI and X509 itself, not MONGODB-AWS/OIDC),
     * else the database ("$external" for PLAIN without one), else "admin". */
    const char *m = out->auth_mechanism;
    const char *given = given_auth_source(mu);
    bool external = m && (!strcasecmp(m, "GSSAPI") || !strcasecmp(m, "MONGODB-X509") ||
                          !strcasecmp(m, "MONGODB-AWS") || !strcasecmp(m, "MONGODB-OIDC"));
    out->auth_source_given = given != NULL;
    if (given) out->auth_source = bson_strdup(given);
    else if (external) out->auth_source = bson_strdup("$external");
    else if (out->database) out->auth_source = bson_strdup(out->database);
    else out->auth_source = bson_strdup(m && !strcasecmp(m, "PLAIN") ? "$external" : "admin");
    bson_t props;
    if (mongoc_uri_get_mechanism_properties(mu, &props)) {
        bson_copy_to_excluding_noinit(&props, &out->auth_mechanism_properties, "", NULL);
        bson_destroy(&props);
    }

    out->tls = mongoc_uri_get_tls(mu);
    bstrdup_opt(&out->tls_ca_file, mongoc_uri_get_option_as_utf8(mu, MONGOC_URI_TLSCAFILE, NULL));
    bstrdup_opt(&out->tls_certificate_key_file, mongoc_uri_get_option_as_utf8(mu, MONGOC_URI_TLSCERTIFICATEKEYFILE, NULL));
    if (!out->tls_key_password_taken)
        bstrdup_opt(&out->tls_certificate_key_file_password,
                    mongoc_uri_get_option_as_utf8(mu, MONGOC_URI_TLSCERTIFICATEKEYFILEPASSWORD, NULL));
    bool insecure = mongoc_uri_get_option_as_bool(mu, MONGOC_URI_TLSINSECURE, false);
    out->tls_allow_invalid_certificates =
        insecure || mongoc_uri_get_option_as_bool(mu, MONGOC_URI_TLSALLOWINVALIDCERTIFICATES, false);
    out->tls_allow_invalid_hostnames =
        insecure || mongoc_uri_get_option_as_bool(mu, MONGOC_URI_TLSALLOWINVALIDHOSTNAMES, false);
}

/* Checks of values libmongoc lets through (negative numbers, inconsistent pool sizes). */
static bool validate(mqc_uri_t *out, const mongoc_uri_t *mu, mqc_error_t *error)
{
    static const struct {
        const char *key, *name;
    } nonneg[] = {
        {MONGOC_URI_MAXPOOLSIZE, "maxPoolSize"},
        {MONGOC_URI_MINPOOLSIZE, "minPoolSize"},
        {MONGOC_URI_MAXIDLETIMEMS, "maxIdleTimeMS"},
        {MONGOC_URI_WAITQUEUETIMEOUTMS, "waitQueueTimeoutMS"},
        {MONGOC_URI_CONNECTTIMEOUTMS, "connectTimeoutMS"},
        {MONGOC_URI_SOCKETTIMEOUTMS, "socketTimeoutMS"},
        {MONGOC_URI_SERVERSELECTIONTIMEOUTMS, "serverSelectionTimeoutMS"},
        {MONGOC_URI_HEARTBEATFREQUENCYMS, "heartbeatFrequencyMS"},
        {MONGOC_URI_LOCALTHRESHOLDMS, "localThresholdMS"},
        {MONGOC_URI_WTIMEOUTMS, "wTimeoutMS"},
    };
    for (size_t i = 0; i < sizeof nonneg / sizeof nonneg[0]; i++)
        if (!check_nonneg(mu, nonneg[i].key, nonneg[i].name, error)) return false;
    if (out->max_pool_size > 0 && out->min_pool_size > out->max_pool_size) {
        mqc_error_set(error, MQC_ERROR_URI, 0,
                      "invalid connection string: minPoolSize (%d) must not exceed maxPoolSize (%d)",
                      out->min_pool_size, out->max_pool_size);
        return false;
    }
    if (given_auth_source(mu) && !*out->auth_source) {
        mqc_error_set(error, MQC_ERROR_URI, 0, "invalid connection string: authSource must not be empty");
        return false;
    }
    if (out->n_hosts == 0 && !out->srv_host) {
        mqc_error_set(error, MQC_ERROR_URI, 0, "invalid connection string: no host");
        return false;
    }
    return true;
}

bool mqc_uri_parse(mqc_uri_t *out, const char *uri, mqc_error_t *error)
{
    memset(out, 0, sizeof *out);
    bson_init(&out->write_concern);
    bson_init(&out->read_concern);
    bson_init(&out->read_tags);
    bson_init(&out->auth_mechanism_properties);
    if (!uri) {
        mqc_error_set(error, MQC_ERROR_URI, 0, "invalid connection string: none given");
        return false;
    }

    extras_t x = {{false}, {0}};
    char *stripped = bson_malloc(strlen(uri) + 2); /* + a '/' take_extras may insert */
    memcpy(stripped, uri, strlen(uri) + 1);
    take_secrets(stripped, out);
    if (!take_extras(stripped, &x, out, error)) {
        wipe_free(stripped);
        mqc_uri_cleanup(out);
        return false;
    }
    char *longer = lengthen_short_srv_host(stripped);
    if (longer) {
        wipe_free(stripped);
        stripped = longer;
    }
    bson_error_t berr;
    mongoc_uri_t *mu = mongoc_uri_new_with_error(stripped, &berr);
    wipe_free(stripped);
    if (!mu) {
        uri_fail(error, berr.message, uri);
        mqc_uri_cleanup(out);
        return false;
    }
    out->mongoc_uri = mu;
    out->original = bson_strdup(uri);
    out->redacted = mqc_uri_redact_dup(uri);

    fill_hosts(out, mu);
    bstrdup_opt(&out->replica_set, mongoc_uri_get_replica_set(mu));
    out->direct_connection_set = mongoc_uri_has_option(mu, MONGOC_URI_DIRECTCONNECTION);
    out->direct_connection = mongoc_uri_get_option_as_bool(mu, MONGOC_URI_DIRECTCONNECTION, false);
    out->load_balanced = mongoc_uri_get_option_as_bool(mu, MONGOC_URI_LOADBALANCED, false);
    out->load_balanced_set = mongoc_uri_has_option(mu, MONGOC_URI_LOADBALANCED);
    if (mongoc_uri_get_srv_hostname(mu)) {
        /* libmongoc has checked the rest: one name, no port, no directConnection=true,
         * srvMaxHosts >= 0 and not with replicaSet or loadBalanced=true; tls defaults to true. */
        out->srv_host = bson_strdup(mongoc_uri_get_srv_hostname(mu));
        size_t hl = strlen(out->srv_host), k = sizeof SHORT_SRV_SUFFIX - 1;
        if (longer && hl > k && strcmp(out->srv_host + hl - k, SHORT_SRV_SUFFIX) == 0) out->srv_host[hl - k] = 0;
        for (char *c = out->srv_host; *c; c++) *c = (char) tolower((unsigned char) *c); /* DNS ignores case */
        out->srv_service_name = bson_strdup(mongoc_uri_get_srv_service_name(mu));
        out->srv_max_hosts = (int32_t) opt_i64(mu, MONGOC_URI_SRVMAXHOSTS, 0);
    }

    out->max_pool_size = (int32_t) opt_i64(mu, MONGOC_URI_MAXPOOLSIZE, 100);
    out->min_pool_size = (int32_t) opt_i64(mu, MONGOC_URI_MINPOOLSIZE, 0);
    out->max_connecting = x.set[X_MAX_CONNECTING] ? (int32_t) x.value[X_MAX_CONNECTING] : 2;
    out->max_idle_time_ms = opt_i64(mu, MONGOC_URI_MAXIDLETIMEMS, 0);
    out->wait_queue_timeout_ms = opt_i64(mu, MONGOC_URI_WAITQUEUETIMEOUTMS, 0);
    out->connect_timeout_ms = opt_i64(mu, MONGOC_URI_CONNECTTIMEOUTMS, 10000);
    out->socket_timeout_ms = opt_i64(mu, MONGOC_URI_SOCKETTIMEOUTMS, 0);
    out->server_selection_timeout_ms = opt_i64(mu, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 30000);
    out->heartbeat_frequency_ms = opt_i64(mu, MONGOC_URI_HEARTBEATFREQUENCYMS, 10000);
    out->local_threshold_ms = opt_i64(mu, MONGOC_URI_LOCALTHRESHOLDMS, 15);
    out->timeout_ms = x.set[X_TIMEOUT_MS] ? x.value[X_TIMEOUT_MS] : -1;
    out->max_pending = x.set[X_MAX_PENDING] ? x.value[X_MAX_PENDING] : 0;
    out->retry_reads = mongoc_uri_get_option_as_bool(mu, MONGOC_URI_RETRYREADS, true);
    out->retry_writes = mongoc_uri_get_option_as_bool(mu, MONGOC_URI_RETRYWRITES, true);
    bstrdup_opt(&out->appname, mongoc_uri_get_appname(mu));

    fill_concerns(out, mu);
    fill_auth_and_tls(out, mu);

    if (!validate(out, mu, error)) {
        mqc_uri_cleanup(out);
        return false;
    }
    return true;
}

void mqc_uri_cleanup(mqc_uri_t *uri)
{
    if (!uri) return;
    if (uri->mongoc_uri) mongoc_uri_destroy(uri->mongoc_uri);
    wipe_free(uri->original);
    bson_free(uri->redacted);
    bson_free(uri->hosts);
    bson_free(uri->replica_set);
    bson_free(uri->srv_host);
    bson_free(uri->srv_service_name);
    bson_free(uri->appname);
    /* A zeroed mqc_uri_t (never parsed) has len 0 documents: nothing to destroy. */
    if (uri->write_concern.len) bson_destroy(&uri->write_concern);
    if (uri->read_concern.len) bson_destroy(&uri->read_concern);
    if (uri->read_tags.len) bson_destroy(&uri->read_tags);
    if (uri->auth_mechanism_properties.len) bson_destroy(&uri->auth_mechanism_properties);
    bson_free(uri->username);
    wipe_free(uri->password);
    bson_free(uri->auth_source);
    bson_free(uri->auth_mechanism);
    bson_free(uri->tls_ca_file);
    bson_free(uri->tls_certificate_key_file);
    wipe_free(uri->tls_certificate_key_file_password);
    bson_free(uri->database);
    memset(uri, 0, sizeof *uri);
}
