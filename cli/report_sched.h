/* report_sched: the parts of the report about keeping a schedule and about failures: the open
 * loop's target, achieved rate, late and unsent operations and backlog; the stages; the first
 * message of each error kind. Text and JSON writers, and the JSON reader `mqload merge` uses. */
#ifndef MQLOAD_REPORT_SCHED_H
#define MQLOAD_REPORT_SCHED_H

#include <bson/bson.h>
#include <stdbool.h>

#include "stats.h"
#include "strbuf.h"

void mqload_report_schedule_text(const mqload_result_t *r, mqload_strbuf_t *out);
void mqload_report_stages_text(const mqload_result_t *r, mqload_strbuf_t *out);
/* ,"schedule":{...},"stages":[...],"error_messages":{...} (only the parts the result has). */
void mqload_report_sched_json(const mqload_result_t *r, mqload_strbuf_t *out);
/* Reads one top-level key of a result written by mqload_report_sched_json. Returns false with
 * err set when the key is one of its own and malformed; *handled tells whether it was. */
bool mqload_sched_from_json(mqload_result_t *r, const char *key, const bson_iter_t *it, bool *handled, char *err,
                            size_t esz);

#endif
