/* scripts/check-layers keeps lib/'s floors honest (docs/development.md, "Floors of lib/"): here it
 * runs on the two small trees of tests/check_layers, which it must pass (good/) and fail with each
 * kind of violation named (bad/). Whether lib/ itself passes is .ci/run's business. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "tf.h"

/* Copies tests/check_layers/TREE into a scratch lib/ (dropping the .in suffixes), compiles its
 * .c files and runs the check with ARGS on them; returns its exit status (3: the set-up failed). */
static int check_tree(const char *tree, const char *args, char *out, size_t outsz)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && T='%s/layers-%s' && rm -rf \"$T\" && mkdir -p \"$T/lib\" \"$T/obj\" && "
             "for f in tests/check_layers/%s/*; do n=${f##*/}; cp \"$f\" \"$T/lib/${n%%.in}\" || exit 3; done && "
             "for c in \"$T\"/lib/*.c; do n=${c##*/}; "
             "${CC:-cc} -std=c11 -Wall -Wextra -Werror -I\"$T/lib\" -c \"$c\" -o \"$T/obj/${n%%.c}.o\" || exit 3; done && "
             "scripts/check-layers %s --root \"$T\" --obj \"$T/obj\" 2>&1",
             tf_src_dir(), tf_tmpdir(), tree, tree, args);
    FILE *p = popen(cmd, "r");
    ASSERT_NOT_NULL(p);
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST("/layers/check_layers_finds_each_kind", layers_check_layers)
{
    static char out[65536];

    /* Every arrow down, and a callback handed down (a_start) makes none up. */
    ASSERT_EQ(check_tree("good", "--graph", out, sizeof out), 0);
    ASSERT_STR_CONTAINS(out, "check-layers: clean: 5 rooms on 3 floors, 5 arrows, all down");
    ASSERT_STR_CONTAINS(out, "floor 2: mid\n  lib/b.c -> lib/a.c\n  lib/c.c -> lib/b.c\n");
    ASSERT_STR_CONTAINS(out, "  lib/top.c -> lib/a.c lib/c.c\n");

    ASSERT_EQ(check_tree("bad", "", out, sizeof out), 1);
    /* An include and a call that run back up, each with what it uses. */
    ASSERT_STR_CONTAINS(out, "lib/a.c -> lib/b.c: #include \"b.h\"  [low -> mid]\n");
    ASSERT_STR_CONTAINS(out, "lib/a.c -> lib/top.c: top_run  [low -> top]\n");
    /* Two rooms of one floor calling each other. */
    ASSERT_STR_CONTAINS(out, "circle of 2 rooms (each reaches the others): lib/b.c lib/c.c\n");
    ASSERT_STR_CONTAINS(out, "  lib/b.c -> lib/c.c: #include \"c.h\", c_step\n");
    ASSERT_STR_CONTAINS(out, "  lib/c.c -> lib/b.c: b_step\n");
    /* lib/LAYERS out of step with lib/. */
    ASSERT_STR_CONTAINS(out, "lib/stray.h: not listed in lib/LAYERS");
    ASSERT_STR_CONTAINS(out, "lib/ghost.c is listed but does not exist");
    ASSERT_STR_CONTAINS(out, "lib/d.h is on floor low but lib/d.c on mid");
    ASSERT_STR_CONTAINS(out, "check-layers: FAILED: 2 arrow(s) running back up, 1 circle(s), 3 problem(s) with lib/LAYERS");
    /* The downward arrow of the same tree is no violation. */
    ASSERT(!strstr(out, "lib/top.c -> lib/b.c:"));

    /* -v names what each arrow uses, and marks the ones that run up. */
    ASSERT_EQ(check_tree("bad", "-v", out, sizeof out), 1);
    ASSERT_STR_CONTAINS(out, "  lib/top.c -> lib/b.c: #include \"b.h\", b_step\n");
    ASSERT_STR_CONTAINS(out, "  lib/a.c -> lib/top.c (UP: low -> top): top_run\n");
}
