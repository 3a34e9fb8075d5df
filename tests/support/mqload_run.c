#include "mqload_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../tf.h"

int tf_sh(const char *cmd, char *out, size_t outsz)
{
    tf_note("%s", cmd);
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int tf_mqload(const char *prefix, const char *args, char *out, size_t outsz)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s'%s/mqload' %s 2>&1", prefix ? prefix : "", tf_build_dir(), args);
    return tf_sh(cmd, out, outsz);
}

void tf_mqload_need(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/mqload", tf_build_dir());
    if (access(path, X_OK) != 0) SKIP("%s is not built", path);
}

void tf_mqload_result(const char *path, mqload_result_t *r)
{
    FILE *f = fopen(path, "r");
    ASSERT_MSG(f != NULL, "no result file %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *buf = malloc(len > 0 ? (size_t) len : 1);
    ASSERT_NOT_NULL(buf);
    size_t n = fread(buf, 1, len > 0 ? (size_t) len : 0, f);
    fclose(f);
    char err[512];
    bool ok = mqload_result_from_json(r, buf, n, err, sizeof err);
    free(buf);
    ASSERT_MSG(ok, "%s: %s", path, err);
}
