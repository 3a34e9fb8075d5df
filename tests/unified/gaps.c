/* FerretDB gaps (tests/unified/ferretdb-gaps.txt): the unified tests that fail because the
 * server cannot, each with a command whose answer an independent client (libmongoc) checks. The
 * runner turns such a test's failure into a "server cannot" skip; /unified/ferretdb-gaps/<line>
 * checks the evidence, so a gap FerretDB closes shows up as a failure here. */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unified.h"
#include "../spec/spec.h"
#include "../tf.h"

typedef struct {
    int line;
    char *path, *db, *setup, *command, *expect, *reason;
} gap_t;

static gap_t *g_gaps;
static size_t g_n;

static char *trim(char *s)
{
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

static void load(void)
{
    static bool loaded;
    if (loaded) return;
    loaded = true;
    char path[4096], buf[8192];
    snprintf(path, sizeof path, "%s/tests/unified/ferretdb-gaps.txt", tf_src_dir());
    FILE *f = fopen(path, "r");
    if (!f) return;
    int line = 0;
    while (fgets(buf, sizeof buf, f)) {
        line++;
        if (buf[0] == '#' || buf[0] == '\n') continue;
        char *fields[6], *p = buf;
        int k = 0;
        for (; k < 6 && p; k++) {
            char *sep = k < 5 ? strstr(p, " | ") : NULL;
            if (sep) *sep = 0;
            fields[k] = trim(p);
            p = sep ? sep + 3 : NULL;
        }
        if (k < 6) continue;
        g_gaps = realloc(g_gaps, (g_n + 1) * sizeof *g_gaps);
        if (!g_gaps) abort();
        gap_t *g = &g_gaps[g_n++];
        g->line = line;
        g->path = strdup(fields[0]);
        g->db = strdup(fields[1]);
        g->setup = strdup(fields[2]);
        g->command = strdup(fields[3]);
        g->expect = strdup(fields[4]);
        g->reason = strdup(fields[5]);
    }
    fclose(f);
}

static bool is_ferretdb(void)
{
    static int known = -1;
    if (known < 0) {
        mqc_error_t err;
        bson_t cmd = BSON_INITIALIZER, reply;
        mqc_client_t *c = mqc_client_new_from_uri(NULL, tf_server_uri("plain"), &err);
        BSON_APPEND_INT32(&cmd, "buildInfo", 1);
        known = c && ux_command(c, "admin", &cmd, &reply, &err) && bson_has_field(&reply, "ferretdbVersion");
        if (c) bson_destroy(&reply);
        bson_destroy(&cmd);
        mqc_client_destroy(c);
    }
    return known == 1;
}

bool ux_gap_for(const char *test_path, const char *failure, char *why, size_t size)
{
    load();
    for (size_t i = 0; i < g_n; i++) {
        const gap_t *g = &g_gaps[i];
        size_t n = strlen(g->path);
        bool match;
        if (!strncmp(g->path, "failure: ", 9)) match = failure && strstr(failure, g->path + 9);
        else match = g->path[n - 1] == '/' ? !strncmp(test_path, g->path, n) : !strcmp(test_path, g->path);
        if (match && is_ferretdb()) {
            snprintf(why, size, SKIP_SERVER "%s (evidence: tests/unified/ferretdb-gaps.txt line %d, checked by "
                                            "/unified/ferretdb-gaps/%03d)", g->reason, g->line, g->line);
            return true;
        }
    }
    return false;
}

/* tests/unified/mqc-gaps.txt: "exact test path | feature". */
bool ux_mqc_gap_for(const char *test_path, char *why, size_t size)
{
    char path[4096], buf[8192];
    snprintf(path, sizeof path, "%s/tests/unified/mqc-gaps.txt", tf_src_dir());
    FILE *f = fopen(path, "r");
    bool found = false;
    if (!f) return false;
    while (!found && fgets(buf, sizeof buf, f)) {
        char *sep = strstr(buf, " | ");
        if (buf[0] == '#' || !sep) continue;
        *sep = 0;
        if (!strcmp(trim(buf), test_path)) {
            snprintf(why, size, SKIP_MQC "%s (tests/unified/mqc-gaps.txt)", trim(sep + 3));
            found = true;
        }
    }
    fclose(f);
    return found;
}

static void gap_test(void)
{
    const gap_t *g = tf_data();
    if (!is_ferretdb()) SKIP(SKIP_NA "the test server is not FerretDB");
    bson_error_t err;
    mongoc_client_t *c = mongoc_client_new(tf_server_uri("plain"));
    ASSERT_NOT_NULL(c);
    bson_t *setup = bson_new_from_json((const uint8_t *) g->setup, -1, &err);
    bson_t *cmd = bson_new_from_json((const uint8_t *) g->command, -1, &err);
    ASSERT_MSG(setup && cmd, "line %d: bad JSON: %s", g->line, err.message);
    bson_iter_t it;
    bson_iter_init(&it, setup);
    while (bson_iter_next(&it)) {
        bson_t s, r;
        if (spec_sub_iter(&it, &s)) mongoc_client_command_simple(c, g->db, &s, NULL, &r, &err);
        bson_destroy(&r);
    }
    bson_t reply;
    bool ok = mongoc_client_command_simple(c, g->db, cmd, NULL, &reply, &err);
    char *js = bson_as_relaxed_extended_json(&reply, NULL);
    tf_note("libmongoc: ok %d, error %u.%u %s, reply %.300s", ok, err.domain, err.code, ok ? "" : err.message, js);
    bool still = false;
    if (!strcmp(g->expect, "closes")) still = !ok && err.domain != MONGOC_ERROR_SERVER && err.domain != MONGOC_ERROR_QUERY;
    else if (!strncmp(g->expect, "error:", 6)) still = !ok && err.code == (uint32_t) atoi(g->expect + 6);
    else if (!strcmp(g->expect, "accepts")) still = ok;
    else if (!strncmp(g->expect, "equals:", 7)) {
        /* equals:PATH=INTEGER */
        char p[256];
        snprintf(p, sizeof p, "%s", g->expect + 7);
        char *eq = strchr(p, '=');
        ASSERT_MSG(eq, "line %d: equals:PATH=VALUE", g->line);
        *eq = 0;
        still = ok && bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, p, &it) &&
                bson_iter_as_int64(&it) == atoll(eq + 1);
    }
    else if (!strncmp(g->expect, "writeError:", 11))
        still = ok && bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, "writeErrors.0.code", &it) &&
                bson_iter_as_int64(&it) == atoi(g->expect + 11);
    else if (!strncmp(g->expect, "lacks:", 6)) still = ok && !(bson_iter_init(&it, &reply) && bson_iter_find_descendant(&it, g->expect + 6, &it));
    else FAIL("line %d: unknown expectation %s", g->line, g->expect);
    bson_free(js);
    bson_destroy(&reply);
    bson_destroy(setup);
    bson_destroy(cmd);
    mongoc_client_destroy(c);
    ASSERT_MSG(still, "tests/unified/ferretdb-gaps.txt line %d: FerretDB no longer does this (%s): remove the line so "
               "that %s runs again", g->line, g->reason, g->path);
}

TF_SUITE_INIT(gaps_register)
{
    load();
    for (size_t i = 0; i < g_n; i++) {
        char path[128];
        snprintf(path, sizeof path, "/unified/ferretdb-gaps/%03d", g_gaps[i].line);
        tf_register(path, gap_test, &g_gaps[i], NULL);
    }
}
