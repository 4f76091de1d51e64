/*
 * iopool: I/O threads with batch-wide sync steps. See iopool.h.
 *
 * Threads and the loop meet at three lists under one mutex: the two
 * submission queues, ordinary and urgent (loop -> threads, each signalled by
 * a condition variable) and the completion list (threads -> loop, signalled
 * by an eventfd the loop watches). Nothing else is shared: a job belongs to
 * exactly one side at a time.
 */
#include "util/iopool.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"

/* Directories synced per batch are few (one queue directory, a few mailboxes). */
#define BATCH_DIRS_MAX 64

/* A FIFO of jobs. */
struct jobq {
	struct iojob *head, *tail;
	size_t n;
};

struct iopool {
	pthread_mutex_t lock;
	pthread_cond_t wake;        /* ordinary threads: a job is queued (or stopping) */
	pthread_cond_t wake_urgent; /* the urgent thread: an urgent job is queued (or stopping) */
	struct jobq queue, urgent;
	struct iojob *done_head, *done_tail;
	bool stopping;
	size_t pending;
	int efd;
	struct event *ev;
	pthread_t *threads;         /* nthreads ordinary ones, then nurgent urgent ones */
	unsigned nthreads, nurgent;
};

static void jobq_push(struct jobq *q, struct iojob *job)
{
	job->next = NULL;
	if (q->tail)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
	q->n++;
}

/* Unlink the first take (>= 1) jobs of the non-empty q as a list; *lastp is its last job. */
static struct iojob *jobq_take(struct jobq *q, size_t take, struct iojob **lastp)
{
	struct iojob *first = q->head, *last = first;
	size_t n = 1;
	for (; n < take && last->next; n++)
		last = last->next;
	q->head = last->next;
	if (!q->head)
		q->tail = NULL;
	last->next = NULL;
	q->n -= n;
	*lastp = last;
	return first;
}

void iojob_init(struct iojob *job, iojob_step_fn *write, iojob_step_fn *commit,
		iojob_done_fn *done)
{
	job->write = write;
	job->commit = commit;
	job->done = done;
	job->sync_fd = -1;
	job->sync_dir = -1;
	job->result = 0;
	job->next = NULL;
}

static void run_batch(struct iojob *batch)
{
	int dirs[BATCH_DIRS_MAX];
	int dir_err[BATCH_DIRS_MAX];
	size_t ndirs = 0;

	for (struct iojob *j = batch; j; j = j->next)
		if (j->write && j->result == 0)
			j->result = j->write(j);
	for (struct iojob *j = batch; j; j = j->next) {
		if (j->result == 0 && j->sync_fd >= 0 && fdatasync(j->sync_fd) < 0)
			j->result = -errno;
	}
	for (struct iojob *j = batch; j; j = j->next)
		if (j->commit && j->result == 0)
			j->result = j->commit(j);
	for (struct iojob *j = batch; j; j = j->next) {
		if (j->result != 0 || j->sync_dir < 0)
			continue;
		size_t k;
		for (k = 0; k < ndirs && dirs[k] != j->sync_dir; k++)
			;
		if (k == ndirs) {
			if (ndirs == BATCH_DIRS_MAX) {
				/* Unusual: too many distinct directories; sync this one alone. */
				if (fsync(j->sync_dir) < 0)
					j->result = -errno;
				continue;
			}
			dirs[ndirs] = j->sync_dir;
			dir_err[ndirs] = fsync(j->sync_dir) < 0 ? -errno : 0;
			ndirs++;
		}
		if (dir_err[k])
			j->result = dir_err[k];
	}
}

/*
 * A thread's life: take a batch, run it, hand it to the loop. Urgent jobs
 * first, then (unless urgent_only) ordinary ones; of either queue an even
 * share for each thread that may take it, so that a burst of jobs is synced
 * by several threads at once (concurrent fdatasyncs share the disk's cache
 * flushes and journal commits; one thread's are strictly serial).
 */
static void iopool_work(struct iopool *pool, bool urgent_only)
{
	pthread_cond_t *wake = urgent_only ? &pool->wake_urgent : &pool->wake;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->urgent.head && (urgent_only || !pool->queue.head) && !pool->stopping)
			pthread_cond_wait(wake, &pool->lock);
		struct iojob *batch, *last;
		if (pool->urgent.head) {
			unsigned takers = pool->nthreads + pool->nurgent;
			batch = jobq_take(&pool->urgent, (pool->urgent.n + takers - 1) / takers, &last);
			if (pool->urgent.head) {
				pthread_cond_signal(&pool->wake_urgent);
				pthread_cond_signal(&pool->wake);
			}
		} else if (!urgent_only && pool->queue.head) {
			size_t take = (pool->queue.n + pool->nthreads - 1) / pool->nthreads;
			batch = jobq_take(&pool->queue, take, &last);
			if (pool->queue.head)
				pthread_cond_signal(&pool->wake);
		} else {
			break; /* stopping, and nothing left for this thread */
		}
		pthread_mutex_unlock(&pool->lock);

		run_batch(batch);

		pthread_mutex_lock(&pool->lock);
		if (pool->done_tail)
			pool->done_tail->next = batch;
		else
			pool->done_head = batch;
		pool->done_tail = last;
		uint64_t one = 1;
		if (write(pool->efd, &one, sizeof one) < 0 && errno != EAGAIN)
			log_err("event=iopool_notify_failed error=%d", errno);
	}
	pthread_mutex_unlock(&pool->lock);
}

static void *iopool_thread(void *arg)
{
	iopool_work(arg, false);
	return NULL;
}

static void *iopool_urgent_thread(void *arg)
{
	iopool_work(arg, true);
	return NULL;
}

static void iopool_complete(struct iopool *pool)
{
	pthread_mutex_lock(&pool->lock);
	struct iojob *j = pool->done_head;
	pool->done_head = pool->done_tail = NULL;
	pthread_mutex_unlock(&pool->lock);

	while (j) {
		struct iojob *next = j->next;
		j->next = NULL;
		pool->pending--;
		/* done() may free the job or submit it again. */
		j->done(j);
		j = next;
	}
}

static void iopool_event(evutil_socket_t fd, short what, void *arg)
{
	uint64_t v;
	(void)what;
	if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
		log_err("event=iopool_read_failed error=%d", errno);
	iopool_complete(arg);
}

struct iopool *iopool_new(struct event_base *base, unsigned nthreads)
{
	if (nthreads == 0)
		nthreads = 1;
	struct iopool *pool = calloc(1, sizeof *pool);
	if (!pool)
		return NULL;
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pool->threads = calloc(2 * (size_t)nthreads, sizeof *pool->threads);
	if (pool->efd < 0 || !pool->threads)
		goto fail;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pthread_cond_init(&pool->wake_urgent, NULL);
	pool->ev = event_new(base, pool->efd, EV_READ | EV_PERSIST, iopool_event, pool);
	if (!pool->ev || event_add(pool->ev, NULL) < 0)
		goto fail;
	/* Set before the threads start: they divide the queue by it. */
	pool->nthreads = nthreads;
	unsigned started = 0;
	while (started < nthreads &&
	       pthread_create(&pool->threads[started], NULL, iopool_thread, pool) == 0)
		started++;
	if (started == 0)
		goto fail;
	pthread_mutex_lock(&pool->lock);
	pool->nthreads = started;
	pthread_mutex_unlock(&pool->lock);
	/* As many for urgent jobs. Without them, the ordinary threads still take those first. */
	pthread_mutex_lock(&pool->lock);
	while (pool->nurgent < nthreads &&
	       pthread_create(&pool->threads[started + pool->nurgent], NULL, iopool_urgent_thread,
			      pool) == 0)
		pool->nurgent++;
	pthread_mutex_unlock(&pool->lock);
	if (pool->nurgent < nthreads)
		log_warn("event=iopool_threads_missing urgent=%u wanted=%u", pool->nurgent, nthreads);
	return pool;
fail:
	if (pool->ev)
		event_free(pool->ev);
	if (pool->efd >= 0)
		close(pool->efd);
	free(pool->threads);
	free(pool);
	return NULL;
}

void iopool_submit(struct iopool *pool, struct iojob *job)
{
	pthread_mutex_lock(&pool->lock);
	jobq_push(&pool->queue, job);
	pool->pending++;
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
}

void iopool_submit_urgent(struct iopool *pool, struct iojob *job)
{
	pthread_mutex_lock(&pool->lock);
	jobq_push(&pool->urgent, job);
	pool->pending++;
	/* Whichever is idle first: the urgent thread or an ordinary one. */
	pthread_cond_signal(&pool->wake_urgent);
	pthread_cond_signal(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
}

size_t iopool_pending(const struct iopool *pool)
{
	return pool->pending;
}

void iopool_free(struct iopool *pool)
{
	if (!pool)
		return;
	/* Completions may submit follow-up jobs (an abort's unlink): drain until quiet. */
	while (pool->pending > 0) {
		uint64_t v;
		struct timespec ts = { 0, 1000000 };
		if (read(pool->efd, &v, sizeof v) < 0)
			nanosleep(&ts, NULL);
		iopool_complete(pool);
	}
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->wake);
	pthread_cond_broadcast(&pool->wake_urgent);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->nthreads + pool->nurgent; i++)
		pthread_join(pool->threads[i], NULL);
	event_free(pool->ev);
	close(pool->efd);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	pthread_cond_destroy(&pool->wake_urgent);
	free(pool->threads);
	free(pool);
}
