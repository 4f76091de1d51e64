/*
 * iopool: I/O threads with batch-wide sync steps. See iopool.h.
 *
 * Threads and the loop meet at three lists under one mutex: the two
 * submission queues, ordinary and urgent (loop -> threads, each signalled by
 * a condition variable) and the completion list (threads -> loop, signalled
 * by an eventfd the loop watches). Nothing else is shared: a job belongs to
 * exactly one side at a time.
 *
 * The sync calls of a batch (each job's fdatasync and each directory's
 * fsync) are issued at once: the batch's thread puts them on a sync list
 * that a few helper threads share with it, and waits until all are done.
 * Syncs in flight together overlap in the file system and the device (with a
 * journal they join one commit); one after the other, each waits for its own
 * writes and flush. Measured on this kind of machine (ext4 without a journal
 * on a virtual disk, loaded): a file's fdatasync and its directory's fsync
 * took 6.7 ms in a row and 0.7 ms together.
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
/*
 * Ordinary jobs a thread takes at once: every queued one up to this. One
 * batch's syncs run at once anyway (with the helpers), and its directory is
 * synced once for all its files; splitting the queue among the threads
 * would only sync the same directory once per thread (measured at 20 and
 * 100 SMTP sessions: 5 to 20% more messages a second taking the whole
 * queue). The other threads take what arrives while a batch syncs; a backlog
 * (thousands of envelopes to load after a restart) is spread over them in
 * batches of this size.
 */
#define BATCH_TAKE_MAX 32
/* Helper threads that run sync calls beside the batch threads. */
#define SYNC_HELPERS 4

/* One fsync or fdatasync of a batch, run by whichever thread takes it first. */
struct sync_req {
	int fd;
	bool full;		/* fsync (a directory), not fdatasync */
	int err;		/* 0 or -errno */
	struct iojob *job;	/* whose data sync this is; NULL for a directory */
	size_t *left;		/* the batch's count of requests not yet done */
	struct sync_req *next;
};

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
	/* Ordinary threads between a batch's writes and the end of its syncs (and
	 * publish steps): they come back for the queue soon (see iopool_submit). */
	unsigned syncing;
	unsigned urgent_idle; /* urgent threads waiting for a job */
	unsigned idle;        /* threads of either kind waiting for a job */
	size_t pending;
	int efd;
	struct event *ev;
	pthread_t *threads;         /* nthreads ordinary ones, then nurgent urgent ones */
	unsigned nthreads, nurgent;
	/* The sync list, under its own lock: batch threads and helpers take from it. */
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_wake; /* a request was queued, or stopping */
	pthread_cond_t sync_done; /* a request finished */
	struct sync_req *sync_head;
	bool sync_stopping;
	pthread_t helpers[SYNC_HELPERS];
	unsigned nhelpers;
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
	job->publish = NULL;
	job->done = done;
	job->sync_fd = -1;
	job->sync_dir = -1;
	job->result = 0;
	job->next = NULL;
}

/* Run one sync request (sync_lock not held). */
static void sync_run(struct sync_req *r)
{
	int rc = r->full ? fsync(r->fd) : fdatasync(r->fd);
	r->err = rc < 0 ? -errno : 0;
}

/* Take the first request of the list; sync_lock held. */
static struct sync_req *sync_take(struct iopool *pool)
{
	struct sync_req *r = pool->sync_head;
	if (r)
		pool->sync_head = r->next;
	return r;
}

/* Mark r done and wake its batch's thread; sync_lock held. */
static void sync_finish(struct iopool *pool, struct sync_req *r)
{
	if (--*r->left == 0)
		pthread_cond_broadcast(&pool->sync_done);
}

static void *sync_helper(void *arg)
{
	struct iopool *pool = arg;

	pthread_mutex_lock(&pool->sync_lock);
	for (;;) {
		struct sync_req *r;
		while (!(r = sync_take(pool)) && !pool->sync_stopping)
			pthread_cond_wait(&pool->sync_wake, &pool->sync_lock);
		if (!r)
			break;
		pthread_mutex_unlock(&pool->sync_lock);
		sync_run(r);
		pthread_mutex_lock(&pool->sync_lock);
		sync_finish(pool, r);
	}
	pthread_mutex_unlock(&pool->sync_lock);
	return NULL;
}

/*
 * Run reqs[0..n) at once: queue them for the helpers and take them from the
 * list as well, so that they are done even when every helper is busy.
 */
static void sync_all(struct iopool *pool, struct sync_req *reqs, size_t n)
{
	size_t left = n;

	if (n == 0)
		return;
	pthread_mutex_lock(&pool->sync_lock);
	for (size_t i = n; i-- > 0;) {
		reqs[i].left = &left;
		reqs[i].next = pool->sync_head;
		pool->sync_head = &reqs[i];
	}
	/* This thread runs one itself: wake a helper for each of the others, with the lock
	 * released (a helper woken under it would only block on it again). */
	pthread_mutex_unlock(&pool->sync_lock);
	for (size_t i = 1; i < n && i <= pool->nhelpers; i++)
		pthread_cond_signal(&pool->sync_wake);
	pthread_mutex_lock(&pool->sync_lock);
	while (left > 0) {
		struct sync_req *r = sync_take(pool);
		if (!r) {
			pthread_cond_wait(&pool->sync_done, &pool->sync_lock);
			continue;
		}
		pthread_mutex_unlock(&pool->sync_lock);
		sync_run(r);
		pthread_mutex_lock(&pool->sync_lock);
		sync_finish(pool, r);
	}
	pthread_mutex_unlock(&pool->sync_lock);
}

static void run_commits(struct iojob *batch)
{
	for (struct iojob *j = batch; j; j = j->next)
		if (j->commit && j->result == 0)
			j->result = j->commit(j);
}

/* Queue one request per data sync of the batch into reqs; their count. */
static size_t data_reqs(struct iojob *batch, struct sync_req *reqs)
{
	size_t n = 0;
	for (struct iojob *j = batch; j; j = j->next) {
		if (j->result != 0 || j->sync_fd < 0)
			continue;
		if (reqs)
			reqs[n++] = (struct sync_req){ .fd = j->sync_fd, .job = j };
		else if (fdatasync(j->sync_fd) < 0) /* out of memory: one by one */
			j->result = -errno;
	}
	return n;
}

/* Add one request per distinct directory to sync to reqs[n..]; the new count. */
static size_t dir_reqs(struct iojob *batch, struct sync_req *reqs, size_t n)
{
	size_t first = n;
	for (struct iojob *j = batch; j; j = j->next) {
		if (j->result != 0 || j->sync_dir < 0)
			continue;
		size_t k;
		for (k = first; k < n && reqs[k].fd != j->sync_dir; k++)
			;
		if (k < n)
			continue;
		if (n - first == BATCH_DIRS_MAX || !reqs) {
			/* Unusual: too many distinct directories; sync this one alone. */
			if (fsync(j->sync_dir) < 0)
				j->result = -errno;
			continue;
		}
		reqs[n++] = (struct sync_req){ .fd = j->sync_dir, .full = true };
	}
	return n;
}

/* Hand each job the first error of its own syncs among reqs[0..n). */
static void sync_results(struct iojob *batch, struct sync_req *reqs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (reqs[i].job && reqs[i].job->result == 0)
			reqs[i].job->result = reqs[i].err;
	for (struct iojob *j = batch; j; j = j->next) {
		if (j->result != 0 || j->sync_dir < 0)
			continue;
		for (size_t k = 0; k < n; k++)
			if (reqs[k].full && reqs[k].fd == j->sync_dir)
				j->result = reqs[k].err;
	}
}

static void run_batch(struct iopool *pool, struct iojob *batch, bool ordinary)
{
	size_t njobs = 0, n;

	for (struct iojob *j = batch; j; j = j->next) {
		if (j->write && j->result == 0)
			j->result = j->write(j);
		njobs++;
	}
	run_commits(batch);
	/* Every sync of the batch at once: the files' data and their directories. */
	struct sync_req *reqs = calloc(njobs + BATCH_DIRS_MAX, sizeof *reqs);
	n = data_reqs(batch, reqs);
	n = dir_reqs(batch, reqs, n);
	if (ordinary && n > 0) {
		pthread_mutex_lock(&pool->lock);
		pool->syncing++;
		pthread_mutex_unlock(&pool->lock);
	}
	sync_all(pool, reqs, n);
	sync_results(batch, reqs, n);
	free(reqs);
	for (struct iojob *j = batch; j; j = j->next)
		if (j->publish && j->result == 0)
			j->result = j->publish(j);
	if (ordinary && n > 0) {
		pthread_mutex_lock(&pool->lock);
		pool->syncing--;
		pthread_mutex_unlock(&pool->lock);
	}
}

/*
 * A thread's life: take a batch, run it, hand it to the loop. Urgent jobs
 * first, then (unless urgent_only) ordinary ones; of either queue everything
 * up to BATCH_TAKE_MAX (see there).
 */
static void iopool_work(struct iopool *pool, bool urgent_only)
{
	pthread_cond_t *wake = urgent_only ? &pool->wake_urgent : &pool->wake;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->urgent.head && (urgent_only || !pool->queue.head) && !pool->stopping) {
			pool->urgent_idle += urgent_only;
			pool->idle++;
			pthread_cond_wait(wake, &pool->lock);
			pool->idle--;
			pool->urgent_idle -= urgent_only;
		}
		struct iojob *batch, *last;
		bool more_urgent = false, more = false;
		if (pool->urgent.head) {
			size_t take = pool->urgent.n < BATCH_TAKE_MAX ? pool->urgent.n : BATCH_TAKE_MAX;
			batch = jobq_take(&pool->urgent, take, &last);
			more_urgent = more = pool->urgent.head != NULL;
		} else if (!urgent_only && pool->queue.head) {
			size_t take = pool->queue.n < BATCH_TAKE_MAX ? pool->queue.n : BATCH_TAKE_MAX;
			batch = jobq_take(&pool->queue, take, &last);
			more = pool->queue.head != NULL;
		} else {
			break; /* stopping, and nothing left for this thread */
		}
		pthread_mutex_unlock(&pool->lock);
		/* Jobs are left (above BATCH_TAKE_MAX): another thread takes them. */
		if (more_urgent)
			pthread_cond_signal(&pool->wake_urgent);
		if (more)
			pthread_cond_signal(&pool->wake);

		run_batch(pool, batch, !urgent_only);

		pthread_mutex_lock(&pool->lock);
		if (pool->done_tail)
			pool->done_tail->next = batch;
		else
			pool->done_head = batch;
		pool->done_tail = last;
		pthread_mutex_unlock(&pool->lock);
		uint64_t one = 1;
		if (write(pool->efd, &one, sizeof one) < 0 && errno != EAGAIN)
			log_err("event=iopool_notify_failed error=%d", errno);
		pthread_mutex_lock(&pool->lock);
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

/* Stop and join the sync helpers (every batch thread has stopped). */
static void sync_helpers_stop(struct iopool *pool)
{
	pthread_mutex_lock(&pool->sync_lock);
	pool->sync_stopping = true;
	pthread_cond_broadcast(&pool->sync_wake);
	pthread_mutex_unlock(&pool->sync_lock);
	for (unsigned i = 0; i < pool->nhelpers; i++)
		pthread_join(pool->helpers[i], NULL);
	pool->nhelpers = 0;
}

struct iopool *iopool_new(struct event_base *base, unsigned nthreads)
{
	if (nthreads == 0)
		nthreads = 1;
	struct iopool *pool = calloc(1, sizeof *pool);
	if (!pool)
		return NULL;
	pthread_mutex_init(&pool->sync_lock, NULL);
	pthread_cond_init(&pool->sync_wake, NULL);
	pthread_cond_init(&pool->sync_done, NULL);
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pool->threads = calloc(2 * (size_t)nthreads, sizeof *pool->threads);
	if (pool->efd < 0 || !pool->threads)
		goto fail;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pthread_cond_init(&pool->wake_urgent, NULL);
	/* Without helpers the batch threads still run every sync themselves. */
	while (pool->nhelpers < SYNC_HELPERS &&
	       pthread_create(&pool->helpers[pool->nhelpers], NULL, sync_helper, pool) == 0)
		pool->nhelpers++;
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
	sync_helpers_stop(pool);
	if (pool->ev)
		event_free(pool->ev);
	if (pool->efd >= 0)
		close(pool->efd);
	free(pool->threads);
	free(pool);
	return NULL;
}

/*
 * While an ordinary thread waits for its batch's syncs, a new job waits for
 * it: the thread takes the queue as soon as its syncs are done, and jobs
 * that arrived meanwhile form one batch (one directory sync, their data
 * syncs at once) instead of waking another thread each, which would start a
 * batch of its own and sync the directory again. A thread woken per job cost
 * more than the wait: at 20 SMTP sessions on a 2-core VM, 32 -> 28 context
 * switches and 614 -> 540 us of CPU a message (bench/README.md, item 14).
 * The wait is bounded by the disk: a job with no sync of its own (a password
 * check) running on another thread does not hold new jobs back, but while a
 * sync hangs, new jobs wait with it.
 */
void iopool_submit(struct iopool *pool, struct iojob *job)
{
	pthread_mutex_lock(&pool->lock);
	jobq_push(&pool->queue, job);
	pool->pending++;
	bool wake = pool->syncing == 0;
	pthread_mutex_unlock(&pool->lock);
	/* Signalled after the unlock: a thread woken under the lock would block on it at once. */
	if (wake)
		pthread_cond_signal(&pool->wake);
}

void iopool_submit_urgent(struct iopool *pool, struct iojob *job)
{
	pthread_mutex_lock(&pool->lock);
	jobq_push(&pool->urgent, job);
	pool->pending++;
	bool urgent_idle = pool->urgent_idle > 0;
	pthread_mutex_unlock(&pool->lock);
	/* An idle urgent thread, or else an ordinary one (every thread serves urgent jobs
	 * first): not both, since the one that finds the job gone only sleeps again (a
	 * wasted wake-up for each message the queue manager delivers). */
	pthread_cond_signal(urgent_idle ? &pool->wake_urgent : &pool->wake);
}

unsigned iopool_idle_threads(struct iopool *pool)
{
	pthread_mutex_lock(&pool->lock);
	unsigned n = pool->idle;
	pthread_mutex_unlock(&pool->lock);
	return n;
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
	sync_helpers_stop(pool);
	event_free(pool->ev);
	close(pool->efd);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	pthread_cond_destroy(&pool->wake_urgent);
	pthread_mutex_destroy(&pool->sync_lock);
	pthread_cond_destroy(&pool->sync_wake);
	pthread_cond_destroy(&pool->sync_done);
	free(pool->threads);
	free(pool);
}
