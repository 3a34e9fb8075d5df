/* app: `mqload [options]` from start to exit status: parse, load the workload, connect, seed,
 * run, report, check thresholds. main() only dispatches here or to merge. */
#ifndef MQLOAD_APP_H
#define MQLOAD_APP_H

#include <stddef.h>

/* Runs mqload with argv; returns the exit status (0 ok, 1 usage/setup error, 2 threshold
 * violated, 130 interrupted). */
int mqload_run_main(int argc, char **argv);

#endif
