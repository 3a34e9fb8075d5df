/* seed: --seed N drops the collection and inserts documents with _id 0..N-1 (this worker's
 * slice of them) from the workload's document template, in batches, several in flight. */
#ifndef MQLOAD_SEED_H
#define MQLOAD_SEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "mqc.h"

/* The [lo, hi) slice of keys this worker seeds. */
void mqload_seed_range(const mqload_run_t *run, uint64_t *lo, uint64_t *hi);
/* Seeds through an mqc client (run on its loop until done). */
bool mqload_seed_mqc(mqc_client_t *client, mqload_run_t *run, char *err, size_t esz);
/* Seeds through libmongoc (a mongoc_client_t *, passed untyped to keep mongoc out of this header). */
bool mqload_seed_mongoc(void *mongoc_client, mqload_run_t *run, char *err, size_t esz);

#endif
