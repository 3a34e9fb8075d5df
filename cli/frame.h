/* frame: a worker's JSON result carried through its log (stdout of a pod), and read back.
 *
 *   MQLOAD-RESULT-BEGIN <worker> <bytes>
 *   MQLOAD-RESULT-DATA <worker> <base64, at most 1000 characters>      (as many as needed)
 *   MQLOAD-RESULT-END <worker> <exit status>
 *   MQLOAD-RESULT-FAILED <worker> <exit status> <message>                (no result at all)
 *
 * Base64 because a log line may be prefixed (kubectl logs --prefix/--timestamps, a container
 * runtime's "2024-... stdout F "), wrapped in a JSON log record, or split when long: each marker
 * is found anywhere in its line and each payload is the run of base64 characters after it. The
 * worker is on every line so that the logs of many pods can be concatenated or interleaved, and
 * the byte count tells a complete result from a cut one. */
#ifndef MQLOAD_FRAME_H
#define MQLOAD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define MQLOAD_FRAME_LINE_B64 1000

/* Appends the frame of a result (exit_status: the worker's exit status). */
void mqload_frame_result(mqload_strbuf_t *out, uint32_t worker, const char *json, size_t len, int exit_status);
/* Appends the line of a worker that failed before it had a result. */
void mqload_frame_failed(mqload_strbuf_t *out, uint32_t worker, int exit_status, const char *message);

typedef enum {
    MQLOAD_FRAME_RESULT = 0,   /* json/len hold the worker's result */
    MQLOAD_FRAME_FAILED,       /* the worker said it failed: message */
    MQLOAD_FRAME_BROKEN,       /* a frame that is cut or corrupt: message says how */
} mqload_frame_kind_t;

typedef struct {
    mqload_frame_kind_t kind;
    uint32_t worker;
    int exit_status;           /* -1 when unknown */
    char *json;                /* RESULT: malloc'd, NUL-terminated */
    size_t len;
    char message[256];
} mqload_frame_t;

/* Every frame in text, in the order they end. *out is malloc'd (free with mqload_frames_free);
 * returns how many. Lines without a marker are ignored. */
size_t mqload_frames_scan(const char *text, size_t len, mqload_frame_t **out);
void mqload_frames_free(mqload_frame_t *frames, size_t n);

/* Base64 (RFC 4648, padded). decode: false on a bad character or length. */
void mqload_b64_encode(mqload_strbuf_t *out, const uint8_t *data, size_t len);
bool mqload_b64_decode(const char *s, size_t len, uint8_t *out, size_t *outlen);

#endif
