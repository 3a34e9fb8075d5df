/* report: the text report and the JSON result (schema in docs/mqload/mqload.md). Both take a finished
 * (merged) result; neither ever sees the raw URI, only result->uri_redacted. */
#ifndef MQLOAD_REPORT_H
#define MQLOAD_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "stats.h"
#include "strbuf.h"

void mqload_report_text(const mqload_result_t *r, mqload_strbuf_t *out);
void mqload_report_json(const mqload_result_t *r, mqload_strbuf_t *out);
/* Writes text to path ("-" for stdout). false with err set. */
bool mqload_write_file(const char *path, const char *text, size_t len, char *err, size_t esz);

#endif
