/* worker: a job thread whose results come back on the loop. See worker.h. */
#include "worker.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct job {
    struct job *next;
    mqc_job_run_fn run;
    mqc_job_done_fn done;
    void *data;
    bool cancelled;
} job_t;

struct mqc_worker {
    struct ev_loop *loop;
    ev_async async;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job_t *todo_head, *todo_tail; /* waiting for the thread */
    job_t *done_head, *done_tail; /* finished, waiting for the loop */
    job_t *busy;                  /* the one the thread is running */
    bool stop;
    bool started;
};

static void *thread_main(void *arg)
{
    mqc_worker_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && !w->todo_head) pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop) break;
        job_t *j = w->todo_head;
        w->todo_head = j->next;
        if (!w->todo_head) w->todo_tail = NULL;
        if (!j->cancelled) {
            w->busy = j;
            pthread_mutex_unlock(&w->mu);
            j->run(j->data);
            pthread_mutex_lock(&w->mu);
            w->busy = NULL;
        }
        j->next = NULL;
        if (w->done_tail) w->done_tail->next = j;
        else w->done_head = j;
        w->done_tail = j;
        ev_async_send(w->loop, &w->async);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Delivers oldest first, one job per lock: a done callback may submit or cancel jobs, and a
 * cancel it makes must reach the jobs delivered after it. */
static void on_async(struct ev_loop *loop, ev_async *a, int revents)
{
    (void) loop;
    (void) revents;
    mqc_worker_t *w = a->data;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        job_t *j = w->done_head;
        if (j) {
            w->done_head = j->next;
            if (!w->done_head) w->done_tail = NULL;
        }
        bool cancelled = j && j->cancelled;
        pthread_mutex_unlock(&w->mu);
        if (!j) return;
        j->done(j->data, cancelled);
        free(j);
    }
}

mqc_worker_t *mqc_worker_new(struct ev_loop *loop)
{
    mqc_worker_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->loop = loop;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    ev_async_init(&w->async, on_async);
    w->async.data = w;
    ev_async_start(loop, &w->async);
    ev_unref(loop); /* an idle worker must not keep ev_run alive */
    return w;
}

void mqc_worker_destroy(mqc_worker_t *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started) pthread_join(w->thread, NULL);
    ev_ref(w->loop);
    ev_async_stop(w->loop, &w->async);
    for (job_t *lists[2] = {w->todo_head, w->done_head}, **l = lists; l < lists + 2; l++)
        while (*l) {
            job_t *j = *l;
            *l = j->next;
            j->done(j->data, true);
            free(j);
        }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

bool mqc_worker_submit(mqc_worker_t *w, mqc_job_run_fn run, mqc_job_done_fn done, void *data)
{
    job_t *j = calloc(1, sizeof *j);
    if (!j) return false;
    j->run = run;
    j->done = done;
    j->data = data;
    pthread_mutex_lock(&w->mu);
    if (!w->started) {
        if (pthread_create(&w->thread, NULL, thread_main, w) != 0) {
            pthread_mutex_unlock(&w->mu);
            free(j);
            return false;
        }
        w->started = true;
    }
    if (w->todo_tail) w->todo_tail->next = j;
    else w->todo_head = j;
    w->todo_tail = j;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return true;
}

void mqc_worker_cancel(mqc_worker_t *w, bool (*match)(void *data, void *arg), void *arg)
{
    pthread_mutex_lock(&w->mu);
    for (job_t *j = w->todo_head; j; j = j->next)
        if (match(j->data, arg)) j->cancelled = true;
    for (job_t *j = w->done_head; j; j = j->next)
        if (match(j->data, arg)) j->cancelled = true;
    if (w->busy && match(w->busy->data, arg)) w->busy->cancelled = true;
    pthread_mutex_unlock(&w->mu);
}
