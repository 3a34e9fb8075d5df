/* mqload --server-label: the text that says what the server is reaches every report (text: a line
 * of its own; JSON and HTML: the echoed configuration), so that a server's speed is not taken for
 * mqload's (make demo labels its FerretDB and backend). */
#include <stdlib.h>

#include "../cli/args.h"
#include "../cli/html.h"
#include "../cli/report.h"
#include "tf.h"

#define LABEL "FerretDB v1.24.2 on SQLite <synchronous off>"

TEST("/mqload/label/parsed", mqload_label_parsed)
{
    mqload_config_t cfg;
    char err[256];
    char *argv[] = {(char *) "mqload", (char *) "--server-label", (char *) LABEL};
    mqload_config_init(&cfg);
    ASSERT_EQ(mqload_args_parse(&cfg, 3, argv, stdout, err, sizeof err), MQLOAD_ARGS_RUN);
    ASSERT_STR_EQ(cfg.server_label, LABEL);
    mqload_config_free(&cfg);
    ASSERT_NULL(cfg.server_label);

    char *missing[] = {(char *) "mqload", (char *) "--server-label"};
    mqload_config_init(&cfg);
    ASSERT_EQ(mqload_args_parse(&cfg, 2, missing, stdout, err, sizeof err), MQLOAD_ARGS_ERROR);
    ASSERT_STR_CONTAINS(err, "server-label");
    mqload_config_free(&cfg);
}

TEST("/mqload/label/reports", mqload_label_reports)
{
    mqload_result_t r;
    mqload_result_init(&r);
    snprintf(r.uri_redacted, sizeof r.uri_redacted, "mongodb://127.0.0.1:1/");
    snprintf(r.engine, sizeof r.engine, "mqc");
    snprintf(r.workload_id, sizeof r.workload_id, "0123456789abcdef");
    BSON_APPEND_UTF8(&r.config, "engine", "mqc");
    BSON_APPEND_UTF8(&r.config, "server", LABEL);
    BSON_APPEND_UTF8(&r.config, "db", "mqload");
    int op = mqload_result_op(&r, "find", "find");
    mqload_hist_record(r.hist, 1000);
    mqload_hist_record(r.ops[op].hist, 1000);
    r.ok = r.completed = r.submitted = 1;

    mqload_strbuf_t sb;
    mqload_sb_init(&sb);
    mqload_report_text(&r, &sb);
    ASSERT_STR_CONTAINS(sb.s, "\nserver " LABEL "\n");
    ASSERT_MSG(!strstr(sb.s, "server="), "the label is also in the settings line: %s", sb.s);
    sb.len = 0;
    mqload_report_json(&r, &sb);
    ASSERT_STR_CONTAINS(sb.s, "\"server\" : \"" LABEL "\"");
    sb.len = 0;
    mqload_report_html(&r, &sb);
    ASSERT_STR_CONTAINS(sb.s, "FerretDB v1.24.2 on SQLite &lt;synchronous off&gt;");
    mqload_sb_free(&sb);
    mqload_result_free(&r);
}
