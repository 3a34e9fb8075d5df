// fuzz-sources: lib/uri.c lib/uri_redact.c lib/common.c
// fuzz-options: -max_len=4096
/* libFuzzer target for the URI layer: mqc_uri_parse (libmongoc's parser plus mqc's own options
 * and defaults on top) and mqc_uri_redact.
 *
 * Input: the connection string itself (NUL bytes cut it short, as a C caller would).
 * Checks: parse never crashes or leaks and, when it fails, leaves the struct empty and says why;
 * when it succeeds every resolved value is in range; the redacted copy the parser keeps equals
 * mqc_uri_redact into a large buffer, is never cut short, and no longer contains the password
 * found in the userinfo; redacting into every smaller buffer gives a NUL-terminated prefix of
 * the full result. Any difference aborts. */
#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "uri.h"
#include "uri_redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz_uri: check failed at line %d: %s\n", __LINE__, #cond);  \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static void quiet_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void) level, (void) domain, (void) message, (void) ud;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc, (void) argv;
    mongoc_init();
    mongoc_log_set_handler(quiet_log, NULL); /* libmongoc warns about every odd option */
    return 0;
}

static void check_redact(const char *uri)
{
    size_t n = strlen(uri);
    /* Each "***" may replace an empty value: the result is at most 3 bytes per separator longer. */
    size_t big = 4 * n + 16;
    char *full = malloc(big);
    CHECK(full);
    mqc_uri_redact(uri, full, big);
    size_t flen = strlen(full);
    CHECK(flen + 1 < big);
    char *dup = mqc_uri_redact_dup(uri);
    CHECK(strcmp(dup, full) == 0); /* never cut short */
    free(dup);
    size_t pw_start, pw_len;
    if (mqc_uri_find_password(uri, &pw_start, &pw_len)) {
        CHECK(pw_start + pw_len <= n);
        CHECK(strncmp(full + pw_start, "***", 3) == 0); /* the password's place holds the mask */
    }
    char small[64];
    for (size_t sz = 1; sz <= sizeof small && sz <= flen + 1; sz += 7) {
        memset(small, 'x', sizeof small);
        mqc_uri_redact(uri, small, sz);
        size_t sl = strnlen(small, sz);
        CHECK(sl < sz);
        CHECK(sl == (flen < sz - 1 ? flen : sz - 1));
        CHECK(memcmp(small, full, sl) == 0);
    }
    CHECK(mqc_uri_redact(uri, small, 0) == small);
    free(full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *uri = malloc(size + 1);
    CHECK(uri);
    memcpy(uri, data, size);
    uri[size] = 0;

    check_redact(uri);

    mqc_uri_t u;
    mqc_error_t err = {0};
    if (mqc_uri_parse(&u, uri, &err)) {
        CHECK(u.original && strcmp(u.original, uri) == 0);
        CHECK(u.redacted);
        char *red = mqc_uri_redact_dup(uri);
        CHECK(strcmp(red, u.redacted) == 0);
        free(red);
        CHECK(u.n_hosts == 0 || u.hosts);
        for (size_t i = 0; i < u.n_hosts; i++) {
            CHECK(memchr(u.hosts[i].host, 0, sizeof u.hosts[i].host));
            CHECK(memchr(u.hosts[i].host_and_port, 0, sizeof u.hosts[i].host_and_port));
        }
        CHECK(u.max_pool_size >= 0 && u.min_pool_size >= 0);
        CHECK(u.connect_timeout_ms >= 0 && u.max_pending >= 0);
        /* A password of a few characters could be a substring of anything; longer ones must
         * not survive into the redacted copy (where a password exists in the userinfo). */
        size_t ps, pl;
        if (u.password && strlen(u.password) >= 8 && mqc_uri_find_password(uri, &ps, &pl) && pl >= 8 &&
            strlen(u.password) == pl && !strstr(uri + ps + pl, u.password) &&
            !memmem(uri, ps, u.password, pl))
            CHECK(!strstr(u.redacted, u.password));
        mqc_uri_cleanup(&u);
    } else {
        CHECK(err.domain == MQC_ERROR_URI);
        CHECK(memchr(err.message, 0, sizeof err.message));
        mqc_uri_cleanup(&u); /* must accept the emptied struct */
    }
    free(uri);
    return 0;
}
