/* engine: helpers both engines share (engine.h). */
#include "engine.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t mqload_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

size_t mqload_engine_threads(const mqload_config_t *cfg)
{
    if (cfg->engine == MQLOAD_ENGINE_MQC) return cfg->threads;
    /* libmongoc: a thread per operation in flight. */
    return cfg->open_loop && !cfg->concurrency_set ? MQLOAD_MONGOC_OPEN_LOOP_THREADS : cfg->concurrency;
}

uint64_t mqload_share(uint64_t total, uint64_t n, uint64_t i)
{
    if (!n) return total;
    return total / n + (i < total % n ? 1 : 0);
}

/* Case-insensitive search for "name=" as a whole option in the query string. */
static const char *find_opt(const char *query, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        if (!strncasecmp(p, name, nl) && p[nl] == '=') return p;
        p = strpbrk(p, "&;");
        if (p) p++;
    }
    return NULL;
}

char *mqload_uri_with_pool(const char *uri, uint32_t n, bool force)
{
    /* The query starts at the first '?' after the host list (user info cannot contain a raw '?'). */
    const char *q = strchr(uri, '?');
    const char *have = q ? find_opt(q + 1, "maxPoolSize") : NULL;
    size_t len = strlen(uri) + 64;
    char *out = malloc(len);
    if (!out) abort();
    if (have && !force) {
        snprintf(out, len, "%s", uri);
        return out;
    }
    if (have) {
        /* Drop the URI's own maxPoolSize=...: ours replaces it. */
        const char *end = strpbrk(have, "&;");
        snprintf(out, len, "%.*s%s", (int) (have - uri), uri, end ? end + 1 : "");
        size_t l = strlen(out);
        if (l && (out[l - 1] == '&' || out[l - 1] == ';')) out[l - 1] = 0;
    } else {
        snprintf(out, len, "%s", uri);
    }
    size_t l = strlen(out);
    q = strchr(out, '?');
    if (q) {
        snprintf(out + l, len - l, "%smaxPoolSize=%u", q[1] ? "&" : "", n);
    } else {
        /* "mongodb://h:1" needs "/" before "?"; "mongodb://h:1/db" does not. */
        const char *scheme = strstr(out, "://");
        const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
        snprintf(out + l, len - l, "%s?maxPoolSize=%u", slash ? "" : "/", n);
    }
    return out;
}
