/* The example programs, built by make, run against the test server. */
#include <stdlib.h>
#include <sys/wait.h>

#include "tf.h"

static void run_example(const char *name, const char *expect)
{
    char cmd[2048], out[4096] = "";
    snprintf(cmd, sizeof cmd, "'%s/examples/%s' '%s' 2>&1", tf_build_dir(), name, tf_server_uri("plain"));
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int rc = pclose(p);
    ASSERT_MSG(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "%s exited %d: %s", name, rc, out);
    ASSERT_STR_CONTAINS(out, expect);
}

TEST("/examples/find", examples_find) { run_example("find", "hello from mqc"); }
TEST("/examples/gather", examples_gather) { run_example("gather", "gathered 1000 queries: 1000 ok"); }
TEST("/examples/cursor", examples_cursor) { run_example("cursor", "walked 1000 documents"); }
TEST("/examples/catalog", examples_catalog) { run_example("catalog", "index: city_1_age_-1"); }
