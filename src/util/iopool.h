/*
 * iopool: file I/O off the event loop, with group commit.
 *
 * A job has up to three steps:
 *   write(job)   on an I/O thread: write data; may set job->sync_fd, a file
 *                whose data must be durable before done;
 *   commit(job)  on an I/O thread, right after the writes of its batch and
 *                BEFORE their data is durable: renames, unlinks; may set
 *                job->sync_dir, a directory whose entries must be durable
 *                before done. A crash may therefore leave a renamed file
 *                whose data never reached the disk: readers check that a
 *                file is complete (the queue file's K mark does);
 *   publish(job) optional (set after iojob_init), on an I/O thread once the
 *                job's syncs are done: a step that needs no sync of its own,
 *                such as the rename that shows a durable file to its reader;
 *   done(job)    on the event loop, once the job's data and directory are
 *                durable (or job->result says why not).
 *
 * A thread takes the queued jobs (up to a bound) as one batch and runs the
 * steps batch-wide: all writes, all commits, then every sync of the batch
 * (each job's fdatasync and one fsync per distinct directory) issued at once
 * by the batch thread and a few helper threads, then the completions. Syncs
 * in flight together overlap (with a journal they share one commit), so N
 * messages committed together cost about one sync, and one message's file
 * and directory syncs about one instead of two in a row. While a batch
 * syncs, the next one fills: a job submitted then waits for that thread
 * (group commit) rather than waking another, unless no thread is syncing.
 * Several threads keep a job that syncs nothing but takes long (a password
 * check) from holding the others back.
 *
 * Urgent jobs (iopool_submit_urgent) are short ones whose latency matters,
 * such as the record of a remote server's 250: until it is durable, a crash
 * sends the message again. They have a queue of their own, which every
 * thread serves before it takes ordinary jobs, and threads of their own (as
 * many as the ordinary ones) that take nothing else, so an urgent job never
 * waits for a batch of ordinary ones (local deliveries, thousands of
 * envelope loads after a restart) to finish. Urgent jobs are batched among
 * themselves like ordinary ones.
 *
 * The pool never reorders the steps of one job; two jobs of the same file
 * must not be in flight at once (callers submit the next after done). The
 * sync_fd stays open until done (the job closes it there). job->result is
 * the first error (negative errno) of any step; a job whose write failed is
 * not committed.
 */
#ifndef CARTEIRO_UTIL_IOPOOL_H
#define CARTEIRO_UTIL_IOPOOL_H

#include <stddef.h>

struct event_base;
struct iojob;

typedef int iojob_step_fn(struct iojob *job);
typedef void iojob_done_fn(struct iojob *job);

struct iojob {
	iojob_step_fn *write;  /* may be NULL */
	iojob_step_fn *commit; /* may be NULL */
	iojob_step_fn *publish; /* may be NULL (iojob_init sets it so) */
	iojob_done_fn *done;   /* required */
	int sync_fd;           /* set by write: fdatasync this fd (-1: none) */
	int sync_dir;          /* set by commit: fsync this directory fd (-1: none) */
	int result;
	struct iojob *next;    /* private */
};

struct iopool;

/* Start nthreads threads, and nthreads for urgent jobs, whose completions run on base.
 * NULL on failure. */
struct iopool *iopool_new(struct event_base *base, unsigned nthreads);
/* Prepare a job for submission (sync fds -1, result 0). */
void iojob_init(struct iojob *job, iojob_step_fn *write, iojob_step_fn *commit,
		iojob_done_fn *done);
void iopool_submit(struct iopool *pool, struct iojob *job);
/* Submit ahead of every ordinary job (see above). */
void iopool_submit_urgent(struct iopool *pool, struct iojob *job);
/* Jobs submitted and not yet done. */
size_t iopool_pending(const struct iopool *pool);
/* Threads waiting for a job (a thread just started is not yet one): for tests. */
unsigned iopool_idle_threads(struct iopool *pool);
/* Run every outstanding job to completion (done callbacks included), then stop the threads. */
void iopool_free(struct iopool *pool);

#endif
