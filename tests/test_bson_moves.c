/* The moved-bson_t class outside the library's write path: each place the audit found (see
 * docs/development.md, "bson_t never moves") gets a test that failed before its fix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
