/* worker: the job thread behind name resolution and PBKDF2 (lib/worker.c). Every job's done runs
 * exactly once: on the loop after its run, or cancelled (cancel, destroy), never both. */
#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "tf.h"
#include "worker.h"

typedef struct {
    int index;
    int tag;                  /* what cancel matches on */
    atomic_int runs;
    int dones, cancelled;
    pthread_t ran_on;
    int *order, *n_order;     /* done order, for FIFO */
    bool submit_from_done;    /* the done submits another job */
    mqc_worker_t *w;
} job_t;

static void job_run(void *data)
{
    job_t *j = data;
    j->ran_on = pthread_self();
    atomic_fetch_add(&j->runs, 1);
    usleep(1000);
}

static void job_done(void *data, bool cancelled)
{
    job_t *j = data;
    j->dones++;
    if (cancelled) j->cancelled++;
    if (j->order) j->order[(*j->n_order)++] = j->index;
}

static bool match_tag(void *data, void *arg) { return ((job_t *) data)->tag == *(int *) arg; }

static void run_until(struct ev_loop *loop, job_t *jobs, int n)
{
    for (int spins = 0; spins < 20000; spins++) {
        int done = 0;
        for (int i = 0; i < n; i++) done += jobs[i].dones;
        if (done == n) return;
        ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT);
        usleep(200);
    }
    ASSERT_MSG(false, "jobs did not finish");
}

TEST("/worker/runs_off_the_loop_in_order", worker_order)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    mqc_worker_t *w = mqc_worker_new(loop);
    ASSERT_NOT_NULL(w);
    static job_t jobs[50];
    int order[50], n_order = 0;
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 50; i++) {
        jobs[i].index = i;
        jobs[i].order = order;
        jobs[i].n_order = &n_order;
        ASSERT(mqc_worker_submit(w, job_run, job_done, &jobs[i]));
    }
    run_until(loop, jobs, 50);
    for (int i = 0; i < 50; i++) {
        ASSERT_EQ(atomic_load(&jobs[i].runs), 1);
        ASSERT_EQ(jobs[i].dones, 1);
        ASSERT_EQ(jobs[i].cancelled, 0);
        ASSERT(!pthread_equal(jobs[i].ran_on, pthread_self()));
        ASSERT_EQ(order[i], i); /* delivered in submission order */
    }
    /* An idle worker does not keep the loop running. */
    ev_run(loop, 0);
    mqc_worker_destroy(w);
    mqc_worker_destroy(NULL);
    ev_loop_destroy(loop);
}

TEST("/worker/cancel_and_destroy_call_done_once", worker_cancel)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    mqc_worker_t *w = mqc_worker_new(loop);
    static job_t jobs[40];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 40; i++) {
        jobs[i].index = i;
        jobs[i].tag = i % 2;
        ASSERT(mqc_worker_submit(w, job_run, job_done, &jobs[i]));
    }
    int odd = 1;
    mqc_worker_cancel(w, match_tag, &odd);
    for (int i = 0; i < 40; i++) ASSERT_EQ(jobs[i].dones, 0); /* never from inside cancel */
    run_until(loop, jobs, 40);
    for (int i = 0; i < 40; i++) {
        ASSERT_EQ(jobs[i].dones, 1);
        ASSERT_EQ(jobs[i].cancelled, i % 2);
        ASSERT_LE(atomic_load(&jobs[i].runs), 1);
        if (i % 2 == 0) ASSERT_EQ(atomic_load(&jobs[i].runs), 1);
    }
    /* Destroy with jobs queued: each gets done(cancelled) exactly once, from destroy. */
    static job_t late[30];
    memset(late, 0, sizeof late);
    for (int i = 0; i < 30; i++) ASSERT(mqc_worker_submit(w, job_run, job_done, &late[i]));
    mqc_worker_destroy(w);
    for (int i = 0; i < 30; i++) {
        ASSERT_EQ(late[i].dones, 1);
        if (late[i].cancelled == 0) ASSERT_EQ(atomic_load(&late[i].runs), 1);
    }
    ev_loop_destroy(loop);
}

static void done_then_submit(void *data, bool cancelled)
{
    job_t *j = data;
    job_done(data, cancelled);
    if (j->submit_from_done) {
        int zero = 0;
        mqc_worker_cancel(j->w, match_tag, &zero); /* reaches jobs not yet delivered */
        ASSERT(mqc_worker_submit(j->w, job_run, job_done, j + 1));
    }
}

TEST("/worker/done_may_submit_and_cancel", worker_reentrant)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    mqc_worker_t *w = mqc_worker_new(loop);
    static job_t jobs[3];
    memset(jobs, 0, sizeof jobs);
    jobs[0].submit_from_done = true;
    jobs[0].w = w;
    jobs[0].tag = 1;
    jobs[1].tag = 0; /* submitted by 0's done, after 0's cancel: runs normally */
    jobs[2].tag = 0; /* queued behind 0: cancelled by 0's done even if already finished */
    ASSERT(mqc_worker_submit(w, job_run, done_then_submit, &jobs[0]));
    ASSERT(mqc_worker_submit(w, job_run, job_done, &jobs[2]));
    usleep(20000); /* let both finish on the thread before the loop delivers either */
    run_until(loop, jobs, 3);
    ASSERT_EQ(jobs[0].cancelled, 0);
    ASSERT_EQ(jobs[2].cancelled, 1);
    ASSERT_EQ(jobs[1].cancelled, 0);
    ASSERT_EQ(atomic_load(&jobs[1].runs), 1);
    mqc_worker_destroy(w);
    ev_loop_destroy(loop);
}
