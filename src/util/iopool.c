/*
 * iopool: I/O threads with batch-wide sync steps. See iopool.h.
 *
 * Threads and the loop meet at two lists under one mutex: the submission
 * queue (loop -> threads, signalled by a condition variable) and the
 * completion list (threads -> loop, signalled by an eventfd the loop
 * watches). Nothing else is shared: a job belongs to exactly one side at a
 * time.
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

struct iopool {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct iojob *queue_head, *queue_tail;
	size_t queued;
	struct iojob *done_head, *done_tail;
	bool stopping;
	size_t pending;
	int efd;
	struct event *ev;
	pthread_t *threads;
	unsigned nthreads;
};

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

static void *iopool_thread(void *arg)
{
	struct iopool *pool = arg;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->queue_head && !pool->stopping)
			pthread_cond_wait(&pool->wake, &pool->lock);
		if (!pool->queue_head && pool->stopping)
			break;
		/* Take an even share of the queue, so that idle threads get work too. */
		size_t take = (pool->queued + pool->nthreads - 1) / pool->nthreads;
		struct iojob *batch = pool->queue_head, *last = batch;
		for (size_t i = 1; i < take && last->next; i++)
			last = last->next;
		pool->queue_head = last->next;
		if (!pool->queue_head)
			pool->queue_tail = NULL;
		else
			pthread_cond_signal(&pool->wake);
		last->next = NULL;
		for (struct iojob *j = batch; j; j = j->next)
			pool->queued--;
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
	pool->threads = calloc(nthreads, sizeof *pool->threads);
	if (pool->efd < 0 || !pool->threads)
		goto fail;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
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
	job->next = NULL;
	pthread_mutex_lock(&pool->lock);
	if (pool->queue_tail)
		pool->queue_tail->next = job;
	else
		pool->queue_head = job;
	pool->queue_tail = job;
	pool->queued++;
	pool->pending++;
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
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	event_free(pool->ev);
	close(pool->efd);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	free(pool->threads);
	free(pool);
}
