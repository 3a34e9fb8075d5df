/* args: mqload's command line, parsed into one configuration (no globals). */
#ifndef MQLOAD_ARGS_H
#define MQLOAD_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "parse.h"
#include "xopts.h"

#define MQLOAD_DEFAULT_URI "mongodb://127.0.0.1:27017"

typedef enum {
    MQLOAD_ARGS_RUN = 0,       /* run with the configuration */
    MQLOAD_ARGS_EXIT = 1,      /* --help or --version printed: exit 0 */
    MQLOAD_ARGS_ERROR = 2,     /* message in err: exit 1 */
} mqload_args_rc_t;

void mqload_config_init(mqload_config_t *cfg);
void mqload_config_free(mqload_config_t *cfg);

/* Parses argv (argv[0] is the program). Long options take "--name value" or "--name=value";
 * short ones "-c 8" or "-c8". Environment MQLOAD_URI is the default --uri, JOB_COMPLETION_INDEX
 * of --worker-index, MQLOAD_WORKERS of --workers. With several workers, concurrency and requests
 * become this worker's share (the first workers take the remainder); rate stays the total (the
 * engines divide it). out receives --help and --version text. */
mqload_args_rc_t mqload_args_parse(mqload_config_t *cfg, int argc, char **argv, FILE *out, char *err,
                                   size_t errsize);

/* --start-at: RFC 3339 ("2030-01-02T03:04:05.25Z", "...+02:00", 't'/'z'/' ' accepted) or Unix
 * seconds ("1900000000.5"). Seconds since the epoch; false when malformed. */
bool mqload_parse_start_at(const char *s, double *out);
/* "10s:1k,1m:5k,10s:0" into out (at most max stages); false with err set when malformed. */
bool mqload_parse_stages(const char *s, bool integers, mqload_stage_arg_t *out, size_t max, size_t *n, char *err,
                         size_t esz);

void mqload_usage(FILE *out);

#endif
