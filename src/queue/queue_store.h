/*
 * queue_store: how a message enters the queue, durably, without blocking the
 * event loop.
 *
 * Spool layout (all owned by the server's user, mode 0700):
 *   <spool>/incoming/<id>   being received; never trusted, removed at start-up
 *   <spool>/queue/<id>      queued: complete, durable, to be delivered
 *   <spool>/queue/.<id>     renamed, its syncs in flight (see queue_store.c)
 *   <spool>/free/<name>     files of delivered messages, for reuse
 *
 * Reuse: creating an inode costs more than anything else a worker does per
 * message on ext4 without a journal (its allocator skips every inode freed
 * in the last minute, reading each one's table block: half of a worker's
 * CPU at 2,000 messages/s by perf). So the queue manager moves a delivered
 * file to free/ instead of unlinking it, up to QUEUE_FREE_MAX files, and a
 * new message takes one from there by renaming it into incoming/ and writes
 * over it. Its blocks are never freed on the way (the queue manager scrubs
 * the content with FALLOC_FL_ZERO_RANGE, which keeps them): on a file system
 * mounted with online discard every block freed is a discard request, which
 * took as much device time as all the writes together (0.5 ms each); only a
 * shorter message frees the blocks past its end. The K record's CRC covers
 * what a power cut could mix of the old and the new content (queue_store.c,
 * crash state 2).
 *
 * A queue_txn is one message being received. The envelope is serialized as
 * the file's header when the transaction starts (which assigns the queue
 * id); the message bytes follow as the client sends them. Bytes collect in
 * memory and go to the file through the I/O pool in chunks, at most one job
 * in flight per transaction, so the writes of a message stay in order and a
 * fast client is slowed to the disk's pace (queue_txn_busy()).
 *
 * queue_txn_commit() finishes the file and makes it durable: the last bytes
 * and the message length are written, the file is fdatasync'd, renamed into
 * queue/ with RENAME_NOREPLACE, and queue/ is fsync'd (once per batch of
 * concurrent commits: group commit). Only then does the callback run, and
 * only then may the session say 250. On any error the callback gets a
 * negative errno, nothing is left in queue/, and the session says 451.
 *
 * queue_txn_abort() (client gone, message refused) removes the partial file.
 * After commit or abort the caller must not touch the transaction again; the
 * store frees it when its I/O is over.
 */
#ifndef CARTEIRO_QUEUE_QUEUE_STORE_H
#define CARTEIRO_QUEUE_QUEUE_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/queue_file.h"

struct iopool;

/* At most this many files wait in free/ (the queue manager unlinks beyond). */
#define QUEUE_FREE_MAX 4096
/* Names of free/ a worker reads at once. */
#define QUEUE_FREE_CACHE 64

struct queue_store {
	int spool_fd;
	int incoming_fd;
	int queue_fd;
	int free_fd; /* -1: no free/ (no reuse) */
	/* Names read from free/ not yet taken; the I/O threads share them. */
	pthread_mutex_t free_lock;
	char free_names[QUEUE_FREE_CACHE][QUEUE_ID_LEN + 1];
	size_t nfree;
	int64_t free_scanned_ms; /* last readdir of free/ that found nothing */
	struct iopool *pool;
	struct queue_id_gen ids;
	size_t open_txns; /* transactions not yet freed */
};

/*
 * Open the spool directories (which must exist: queue_spool_prepare makes
 * them). slot is this process's queue id slot. 0 or -errno.
 */
int queue_store_open(struct queue_store *qs, const char *spool, struct iopool *pool, unsigned slot);
void queue_store_close(struct queue_store *qs);

/*
 * Create the spool tree under path if needed (mode 0700) and, when uid is not
 * (uid_t)-1, give it to uid/gid. Used by the master before it drops root.
 */
int queue_spool_prepare(const char *path, long uid, long gid);
/*
 * Recovery of what dead workers left (at start-up: slot -1, all; before a
 * worker is restarted: its id slot only): remove every file of incoming/, and
 * rename every queue/.<id> to queue/<id> (see the crash states in
 * queue_store.c). The number of files removed, or -errno.
 */
int queue_spool_clean_incoming(const char *spool, int slot);

struct queue_txn;
typedef void queue_txn_done_fn(void *arg, int result, const char *id);
typedef void queue_txn_resume_fn(void *arg);

/* A new queue id (assigned at MAIL, so that every log line of the transaction carries it). */
void queue_store_new_id(struct queue_store *qs, char id[QUEUE_ID_LEN + 1]);

/*
 * Start a message with this envelope (serialized now; env->id is kept if it
 * holds a valid id, else a new one is made; env->arrival_* is set to now). NULL on memory exhaustion.
 * resume is called when a transaction that was busy can take more bytes.
 */
struct queue_txn *queue_txn_begin(struct queue_store *qs, struct envelope *env,
				  queue_txn_resume_fn *resume, void *arg);
const char *queue_txn_id(const struct queue_txn *txn);
/* Append message bytes. 0, or the first error of this transaction's I/O. */
int queue_txn_write(struct queue_txn *txn, const void *p, size_t n);
/* Should the caller stop reading from the client until resume is called? */
bool queue_txn_busy(const struct queue_txn *txn);
/* Bytes of message appended so far. */
uint64_t queue_txn_size(const struct queue_txn *txn);
/*
 * Header lines (CRLF-terminated) to deliver in front of the message, known only
 * after it was read (they go in the file's J record, after the message).
 * Before queue_txn_commit; may be called more than once (appends). 0, -EINVAL
 * (beyond QUEUE_PREPEND_MAX) or -ENOMEM.
 */
int queue_txn_prepend(struct queue_txn *txn, const char *hdrs, size_t len);
/* Finish and make durable; done(arg, 0 or -errno, id) runs on the loop. */
void queue_txn_commit(struct queue_txn *txn, queue_txn_done_fn *done, void *arg);
/* Give up: remove whatever was written. No callback runs afterwards. */
void queue_txn_abort(struct queue_txn *txn);
/* Detach a committing transaction from its caller (the client is gone). */
void queue_txn_detach(struct queue_txn *txn);

#endif
