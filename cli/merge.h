/* merge: reading results back from their JSON, and `mqload merge A.json B.json ...`: histograms
 * added bucket by bucket (exact), timelines summed per second aligned on each run's wall-clock
 * start, errors summed. Inputs of different workloads (workload_id) are refused. */
#ifndef MQLOAD_MERGE_H
#define MQLOAD_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include <bson/bson.h>

#include "stats.h"

/* Parses a result written by mqload_report_json (r initialised by the call). */
bool mqload_result_from_json(mqload_result_t *r, const char *json, size_t len, char *err, size_t esz);
/* Merges the files' results into out (initialised by the call). */
bool mqload_merge_files(mqload_result_t *out, const char *const *paths, size_t n, char *err, size_t esz);
/* The `mqload merge` command: returns the exit status. */
int mqload_merge_main(int argc, char **argv);

#endif
