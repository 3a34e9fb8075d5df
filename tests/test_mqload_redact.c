/* The password of the URI never appears in mqload's text report, JSON, HTML or error output. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../cli/html.h"
#include "../cli/redact.h"
#include "../cli/report.h"
#include "mqc.h"
#include "tf.h"

#define SECRET "s3cr3t-P4ss"
#define URI "mongodb://alice:" SECRET "@127.0.0.1:1/?authSource=admin"

TEST("/mqload/redact/reports", mqload_redact_reports)
{
    mqload_result_t r;
    mqload_result_init(&r);
    mqc_uri_redact(URI, r.uri_redacted, sizeof r.uri_redacted);
    ASSERT(strstr(r.uri_redacted, SECRET) == NULL);
    ASSERT_STR_CONTAINS(r.uri_redacted, "127.0.0.1");
    snprintf(r.engine, sizeof r.engine, "mqc");
    snprintf(r.workload_id, sizeof r.workload_id, "0123456789abcdef");
    BSON_APPEND_UTF8(&r.config, "db", "mqload");
    int op = mqload_result_op(&r, "find", "find");
    mqload_hist_record(r.hist, 1000);
    mqload_hist_record(r.ops[op].hist, 1000);
    r.ok = r.completed = r.submitted = 1;
    char msg[256] = "auth failed for " URI " (" SECRET ")";
    mqload_scrub_secret(URI, msg);
    ASSERT(strstr(msg, SECRET) == NULL);
    mqload_result_add_error(&r, msg, 1);

    mqload_strbuf_t sb;
    mqload_sb_init(&sb);
    mqload_report_text(&r, &sb);
    ASSERT_STR_CONTAINS(sb.s, "127.0.0.1");
    ASSERT(strstr(sb.s, SECRET) == NULL);
    sb.len = 0;
    mqload_report_json(&r, &sb);
    ASSERT_STR_CONTAINS(sb.s, "\"uri_redacted\"");
    ASSERT(strstr(sb.s, SECRET) == NULL);
    sb.len = 0;
    mqload_report_html(&r, &sb);
    ASSERT_STR_CONTAINS(sb.s, "127.0.0.1");
    ASSERT(strstr(sb.s, SECRET) == NULL);
    mqload_sb_free(&sb);
    mqload_result_free(&r);
}

TEST("/mqload/redact/scrub", mqload_redact_scrub)
{
    char a[128] = "x pw y pw";
    mqload_scrub_secret("mongodb://u:pw@h/", a);
    ASSERT_STR_EQ(a, "x ** y **");
    char b[128] = "nothing here";
    mqload_scrub_secret("mongodb://h:1/", b);
    ASSERT_STR_EQ(b, "nothing here");
    char c[128] = "longpassword!";
    mqload_scrub_secret("mongodb://u:longpassword@h1,h2/", c);
    ASSERT_STR_EQ(c, "***!");
}

/* Runs the built mqload with args (shell-quoted by the caller); returns the exit status and
 * captures stdout+stderr. */
static int run_mqload(const char *args, char *out, size_t outsz)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s/mqload' %s 2>&1", tf_build_dir(), args);
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST("/mqload/redact/error_output", mqload_redact_error_output)
{
    char path[1024], out[16384];
    snprintf(path, sizeof path, "%s/mqload", tf_build_dir());
    if (access(path, X_OK) != 0) SKIP("%s is not built", path);
    /* A bad flag after the URI, a bad threshold, an unreachable server: none may echo the secret. */
    static const char *const cases[] = {
        "--uri '" URI "' --bogus",
        "--uri '" URI "' --threshold 'p99<<'",
        "--uri '" URI "&serverSelectionTimeoutMS=300' -d 1 --warmup 0 -q",
        "--uri '" URI "&serverSelectionTimeoutMS=300' -d 1 --warmup 0 -q --engine mongoc",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run_mqload(cases[i], out, sizeof out);
        ASSERT_MSG(rc == 1, "case %zu exited %d: %s", i, rc, out);
        ASSERT_MSG(strstr(out, SECRET) == NULL, "case %zu printed the password: %s", i, out);
        ASSERT_STR_CONTAINS(out, "mqload: ");
    }
}
