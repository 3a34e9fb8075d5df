/* precheck: checks before any traffic (precheck.h). */
#include "precheck.h"

#include <ctype.h>
#include <errno.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool port_ok(const char *p, size_t n)
{
    if (n == 0 || n > 5) return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char) p[i])) return false;
        v = v * 10 + (p[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

static bool host_ok(const char *h, size_t n, bool srv, char *err, size_t esz)
{
    char shown[300];
    snprintf(shown, sizeof shown, "%.*s", (int) (n < 256 ? n : 256), h);
    if (n == 0) return snprintf(err, esz, "--uri: an empty host in the host list"), false;
    if (h[0] == '[') {
        const char *close = memchr(h, ']', n);
        if (!close) return snprintf(err, esz, "--uri: host '%s': an IPv6 address opened with '[' is not closed with ']'", shown), false;
        for (const char *c = h + 1; c < close; c++)
            if (!isalnum((unsigned char) *c) && *c != ':' && *c != '.' && *c != '%') /* a zone: %25eth0 */
                return snprintf(err, esz, "--uri: host '%s': not an IPv6 address inside [ ]", shown), false;
        if (close == h + 1) return snprintf(err, esz, "--uri: host '%s': empty [ ]", shown), false;
        size_t rest = n - (size_t) (close + 1 - h);
        if (rest == 0) return true;
        if (srv) return snprintf(err, esz, "--uri: mongodb+srv:// takes a host name without a port"), false;
        if (close[1] != ':' || !port_ok(close + 2, rest - 1))
            return snprintf(err, esz, "--uri: host '%s': after ']' only ':PORT' (1..65535) may follow", shown), false;
        return true;
    }
    /* A socket path is percent-encoded (%2Ftmp%2Fmongodb-27017.sock): no ':' in it. */
    const char *colon = memchr(h, ':', n);
    if (!colon) return true;
    if (srv) return snprintf(err, esz, "--uri: mongodb+srv:// takes a host name without a port"), false;
    const char *port = colon + 1;
    size_t pn = n - (size_t) (port - h);
    if (memchr(port, ':', pn))
        return snprintf(err, esz, "--uri: host '%s' has more than one ':PORT' (an IPv6 address goes in [ ])", shown), false;
    if (colon == h) return snprintf(err, esz, "--uri: host '%s' has a port but no name", shown), false;
    if (!port_ok(port, pn)) return snprintf(err, esz, "--uri: host '%s': the port must be a number in 1..65535", shown), false;
    return true;
}

bool mqload_uri_check(const char *uri, char *err, size_t esz)
{
    bool srv = !strncmp(uri, "mongodb+srv://", 14);
    const char *hosts = uri + (srv ? 14 : 10);
    if (!srv && strncmp(uri, "mongodb://", 10)) return snprintf(err, esz, "--uri: expected a mongodb:// or mongodb+srv:// connection string"), false;
    /* user:password@ ends at the last '@' before the options, even when a password holds a '/'
     * it should have percent-encoded: no part of it may reach a message. */
    const char *at = NULL;
    for (const char *c = hosts; *c && *c != '?'; c++)
        if (*c == '@') at = c;
    if (at) hosts = at + 1;
    size_t len = strcspn(hosts, "/?");
    if (len == 0) return snprintf(err, esz, "--uri: no host"), false;
    size_t count = 0;
    for (const char *h = hosts; h <= hosts + len;) {
        size_t n = 0;
        if (*h == '[') { /* a bracketed address may hold ','? no, but ':' — find its end first */
            const char *close = memchr(h, ']', (size_t) (hosts + len - h));
            n = close ? (size_t) (close - h) : 0;
        }
        const char *comma = memchr(h + n, ',', (size_t) (hosts + len - (h + n)));
        n = comma ? (size_t) (comma - h) : (size_t) (hosts + len - h);
        if (!host_ok(h, n, srv, err, esz)) return false;
        count++;
        h += n + 1;
    }
    if (srv && count > 1) return snprintf(err, esz, "--uri: mongodb+srv:// takes exactly one host name"), false;
    return true;
}

bool mqload_output_check(const char *opt, const char *path, char *err, size_t esz)
{
    if (!path || !strcmp(path, "-")) return true;
    if (!*path) return snprintf(err, esz, "%s: an empty file name", opt), false;
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return snprintf(err, esz, "%s %s: is a directory", opt, path), false;
        if (access(path, W_OK) != 0) return snprintf(err, esz, "%s %s: cannot write it: %s", opt, path, strerror(errno)), false;
        return true;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return snprintf(err, esz, "%s %s: the directory %s does not exist", opt, path, dir), false;
    if (access(dir, W_OK) != 0)
        return snprintf(err, esz, "%s %s: cannot create files in %s: %s", opt, path, dir, strerror(errno)), false;
    return true;
}

static void log_handler(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void) ud;
    if (level <= MONGOC_LOG_LEVEL_ERROR) fprintf(stderr, "mqload: libmongoc %s: %s\n", domain, message);
}

void mqload_mongoc_log_quiet(void)
{
    mongoc_log_set_handler(log_handler, NULL);
}
