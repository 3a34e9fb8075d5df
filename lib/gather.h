/* gather: one callback for a group of operations (lib/gather.c). */
#ifndef MQC_GATHER_H
#define MQC_GATHER_H

#include "op.h"

/* Used by gather: deliver to the gather after the op's own callback. */
void mqc_gather_on_member_done(mqc_op_t *member, const bson_t *reply, const mqc_error_t *error);

#endif
