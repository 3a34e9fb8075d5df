/* mqload: concurrent load against a MongoDB server through mqc. main() only dispatches:
 * `mqload merge ...` to merge.c, anything else to app.c. */
#include <string.h>

#include "app.h"
#include "merge.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "merge") == 0) return mqload_merge_main(argc - 1, argv + 1);
    return mqload_run_main(argc, argv);
}
