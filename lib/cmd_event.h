/* Building command monitoring events (see cmd_event.c). */
#ifndef MQC_CMD_EVENT_H
#define MQC_CMD_EVENT_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

#include "mqc.h"

/* The command of an OP_MSG (msg: the whole message, len bytes): its body with each document
 * sequence appended as an array under the sequence's identifier. out is initialised; false when
 * the message is malformed (out then holds what was read). */
bool mqc_command_from_msg(const uint8_t *msg, size_t len, bson_t *out);
/* Calls hook with ev, the command and reply of a security-sensitive command (auth, hello with
 * speculativeAuthenticate) replaced by an empty document. */
void mqc_command_event_deliver(void (*hook)(const mqc_command_event_t *, void *), const mqc_command_event_t *ev,
                               void *ud);

/* The command's name as the server sees it (its first key; an op's name may differ: "count" for
 * countDocuments' aggregate), or dflt. Points into cmd. */
const char *mqc_command_name(const bson_t *cmd, const char *dflt);

#endif
