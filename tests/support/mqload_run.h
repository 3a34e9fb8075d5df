/* tests/support: running the built mqload from a test and reading its JSON result, for the test
 * files that drive mqload end to end (instead of one copy of these helpers per file).
 *
 *   tf_mqload_need();                                   (skips when build/mqload is not built)
 *   int rc = tf_mqload(NULL, "--uri ... -d 1s --json r.json", out, sizeof out);
 *   mqload_result_t r;
 *   tf_mqload_result("r.json", &r); */
#ifndef MQC_TESTS_SUPPORT_MQLOAD_RUN_H
#define MQC_TESTS_SUPPORT_MQLOAD_RUN_H

#include <stddef.h>

#include "../../cli/merge.h"

/* Runs cmd with sh, stderr joined to stdout; out gets what fits of the output, NUL-terminated.
 * Returns the exit status, or 128 + the signal that ended it. */
int tf_sh(const char *cmd, char *out, size_t outsz);
/* tf_sh of "<prefix>'<build>/mqload' <args>": prefix (may be NULL) for environment settings. */
int tf_mqload(const char *prefix, const char *args, char *out, size_t outsz);
/* Skips the running test when the build has no mqload. */
void tf_mqload_need(void);
/* Reads mqload's JSON result at path into r; fails the test when it is missing or does not parse. */
void tf_mqload_result(const char *path, mqload_result_t *r);

#endif
