/* The moved-bson_t class outside the library's write path: each place the audit found (see
 * docs/internals/development.md, "bson_t never moves") gets a test that failed before its fix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../cli/merge.h"
#include "../cli/report.h"
#include "../cli/stats.h"
#include "../cli/strbuf.h"
#include "tf.h"

/* mqload merge kept each input's result (whose config is a bson_t, always past the inline
 * buffer) by value in an array grown with realloc: the 9th input moved the first eight. */
TEST("/bson_moves/mqload_merge_many_inputs", bson_moves_merge_many)
{
    enum { N = 20 };
    const char *dir = tf_tmpdir();
    char paths[N][700];
    const char *pp[N];
    for (int i = 0; i < N; i++) {
        mqload_result_t r;
        mqload_result_init(&r);
        snprintf(r.tool_version, sizeof r.tool_version, "0.1.0");
        snprintf(r.engine, sizeof r.engine, "mqc");
        snprintf(r.workload_id, sizeof r.workload_id, "0123456789abcdef");
        snprintf(r.workload_name, sizeof r.workload_name, "merge-test");
        BSON_APPEND_UTF8(&r.config, "uri", "mongodb://127.0.0.1:27017/?a_long_option_list_that_takes_room=1");
        BSON_APPEND_UTF8(&r.config, "mix", "insert=50,find=30,update=20 with enough text to pass 120 bytes");
        BSON_APPEND_INT32(&r.config, "concurrency", 8);
        r.start_unix = 1700000000.0;
        r.duration_s = 2;
        r.submitted = r.completed = r.ok = 10;
        for (int k = 0; k < 10; k++) mqload_hist_record(r.hist, 1000 + k);
        mqload_strbuf_t sb;
        mqload_sb_init(&sb);
        mqload_report_json(&r, &sb);
        snprintf(paths[i], sizeof paths[i], "%s/r%d.json", dir, i);
        FILE *f = fopen(paths[i], "wb");
        ASSERT_NOT_NULL(f);
        fputs(sb.s, f);
        fclose(f);
        pp[i] = paths[i];
        mqload_sb_free(&sb);
        mqload_result_free(&r);
    }
    mqload_result_t m;
    char err[1024];
    ASSERT_MSG(mqload_merge_files(&m, pp, N, err, sizeof err), "%s", err);
    ASSERT_EQ(m.completed, 10 * N);
    bson_iter_t it;
    ASSERT(bson_iter_init_find(&it, &m.config, "mix"));
    ASSERT_STR_CONTAINS(bson_iter_utf8(&it, NULL), "enough text");
    mqload_result_free(&m);
}

/* scripts/check-bson keeps the class out (run by .ci/run, and here): it must report every kind of
 * move in tests/check_bson/bad.c.in (the lines marked FIND), nothing in good.c.in, and nothing in
 * the tree. */
static int run_check(const char *args, char *out, size_t outsz)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && python3 scripts/check-bson %s 2>&1", tf_src_dir(), args);
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST("/bson_moves/check_bson_finds_each_kind", bson_moves_check_bson)
{
    static char out[65536];
    char path[1024], line[512];
    ASSERT_EQ(run_check("tests/check_bson/bad.c.in", out, sizeof out), 1);
    snprintf(path, sizeof path, "%s/tests/check_bson/bad.c.in", tf_src_dir());
    FILE *f = fopen(path, "r");
    ASSERT_NOT_NULL(f);
    int lineno = 0, marked = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strstr(line, "FIND:")) continue;
        char want[64];
        snprintf(want, sizeof want, "bad.c.in:%d: ", lineno);
        ASSERT_MSG(strstr(out, want), "line %d (%s) not reported:\n%s", lineno, line, out);
        marked++;
    }
    fclose(f);
    ASSERT_GE(marked, 8);
    ASSERT_STR_CONTAINS(out, "finding(s)");
    ASSERT_EQ(run_check("tests/check_bson/good.c.in", out, sizeof out), 0);
    ASSERT_EQ(run_check("", out, sizeof out), 0);
    ASSERT_STR_CONTAINS(out, "no moves");
}
