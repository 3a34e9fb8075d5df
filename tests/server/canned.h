/* canned: the benchmark's mode of the scripted server (srv.h). It keeps no data: every
 * collection holds `docs` canned documents ({_id: i, n: 7i, s, x: i/2}), find and aggregate
 * answer from them with real cursors (getMore, killCursors, batch sizes and limits as MongoDB
 * treats them), writes count their statements, and the hello says what `role` says. A request
 * allocates nothing: the benchmark measures the client, not this. */
#ifndef MQC_TESTS_CANNED_H
#define MQC_TESTS_CANNED_H

#include "srv.h"

typedef struct {
    int64_t docs;          /* documents in every collection's cursor */
    bool mongos;           /* hello says msg: isdbgrid */
    const char *set_name;  /* hello says it is this replica set's primary (NULL: a standalone) */
    char me[80];           /* host:port, for a replica set's hello */
    uint64_t cursors_opened, cursors_open;
    /* open cursors: slots found by id in O(1) (canned.c) */
    struct canned_cursor *cursors;
    size_t cursors_len, cursors_cap;
    size_t *cursor_free;
    size_t cursor_free_len;
    uint32_t cursor_gen;
} canned_t;

/* The srv_command_fn of this mode; ud is a canned_t (zeroed but for the options). */
void canned_command(void *ud, srv_t *s, srv_req_t *rq, bson_t *reply);
void canned_free(canned_t *m);

#endif
