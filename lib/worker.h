/* worker: one thread that runs jobs off the loop thread, each job's end delivered back on the
 * loop (ev_async). For the two things that can hold a thread for milliseconds or seconds and
 * so must never run on the loop: name resolution (lib/resolve.c) and PBKDF2, the salted
 * password of SCRAM (lib/conn_secure.c). Jobs run one at a time, in the order submitted. The
 * thread is made on first use, so a client that never needs one never pays for it. */
#ifndef MQC_WORKER_H
#define MQC_WORKER_H

#include <ev.h>
#include <stdbool.h>

typedef struct mqc_worker mqc_worker_t;

/* run: on the worker thread; it may touch only data (nothing of the loop's).
 * done: on the loop thread, once per job, always: with cancelled false after run; with
 * cancelled true (run may not have happened) for a job cancelled with mqc_worker_cancel or
 * still undelivered at mqc_worker_destroy (then from the destroying thread). done owns data. */
typedef void (*mqc_job_run_fn)(void *data);
typedef void (*mqc_job_done_fn)(void *data, bool cancelled);

/* Returns a new worker delivering on loop (owned by the caller), or NULL when out of memory.
 * An idle worker does not keep ev_run alive. */
mqc_worker_t *mqc_worker_new(struct ev_loop *loop);
/* Joins the thread (after the job it is running, if any); every job not yet delivered gets
 * done(data, true). Accepts NULL. */
void mqc_worker_destroy(mqc_worker_t *w);
/* Queues a job. Returns false (nothing queued, done not called) when out of memory or when
 * the thread cannot be made. */
bool mqc_worker_submit(mqc_worker_t *w, mqc_job_run_fn run, mqc_job_done_fn done, void *data);
/* Cancels every queued, running or finished-but-undelivered job whose data match(data, arg)
 * accepts: its done gets cancelled true, later on the loop (never from inside this call).
 * match runs under the worker's lock, possibly while run works on the same data: it may read
 * only what run does not write. */
void mqc_worker_cancel(mqc_worker_t *w, bool (*match)(void *data, void *arg), void *arg);

#endif
