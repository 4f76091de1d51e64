/*
 * queue_store: durable intake of messages into the spool. See queue_store.h.
 *
 * Crash states, in the order a message goes through them:
 *   1. incoming/<id> partly written          -> removed at start-up; client got no 250
 *   2. incoming/<id> complete in the page cache, renamed to queue/.<id>
 *      (hidden: the queue manager ignores it); then the file's fdatasync and
 *      queue/'s fsync run together (iopool)
 *                                            -> after a kill: complete; after a
 *                                               power cut: gone, or complete,
 *                                               or incomplete (K mark missing),
 *                                               or (a reused file is written over
 *                                               in place) some blocks new and some
 *                                               of the message it held before,
 *                                               which the K record's CRC tells
 *                                               (publish_hidden: to corrupt/)
 *   3. both syncs done                        -> durable
 *   4. queue/.<id> renamed to queue/<id> (no sync needed: .<id> is found
 *      again at start-up) -> the queue manager sees it; the 250 is sent
 * Before a worker starts (the master, at start-up and when it restarts a
 * dead one) every queue/.<id> of its id slot whose CRC checks is renamed to
 * queue/<id> (one that does not goes to corrupt/), so states 2 to 4 end as
 * a queued message, which the queue manager's loader checks: an incomplete
 * one (a power cut in state 2; it never got a 250) is refused and moved to
 * corrupt/. So a 250 always names a message that
 * is in queue/ after any crash, and a message that got no 250 may at worst be
 * delivered once anyway, which RFC 5321 6.1 accepts (the client sends it
 * again). The queue manager never delivers a message before its 250 could
 * be sent (state 4), so a kill does not catch deliveries of unanswered mail.
 * Renaming before the syncs lets the two run at once, about one sync's time
 * instead of two in a row (see iopool.c for the figures).
 */
#include "queue/queue_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/bounce.h"
#include "util/clock.h"
#include "util/fileio.h"
#include "util/iopool.h"
#include "util/log.h"

/* Bytes collected before a chunk is handed to the I/O pool. */
#define TXN_CHUNK (128u * 1024)
/* Above this many pending bytes (with a write in flight) the client is paused. */
#define TXN_HIGH_WATER (512u * 1024)
/* Hard bound of the memory one transaction may hold (the session pauses long before). */
#define TXN_PENDING_MAX (8u * 1024 * 1024)

enum txn_phase {
	TXN_RECEIVING,
	TXN_COMMITTING,
	TXN_ABORTED,
	TXN_CLEANUP,
};

enum txn_op {
	OP_CHUNK,
	OP_FINAL,
	OP_CLEANUP,
};

struct queue_txn {
	struct iojob job; /* first: the job pointer is the transaction pointer */
	struct queue_store *qs;
	char id[QUEUE_ID_LEN + 1];
	enum txn_phase phase;
	enum txn_op op;    /* what the job in flight does */
	bool in_flight;
	bool submitted; /* some job ran: there may be a file to remove */
	bool was_busy;
	bool renamed;   /* queue/.<id> exists */
	bool published; /* renamed on to queue/<id> */
	int fd;
	bool reused;       /* fd is a delivered file from free/, overwritten in place */
	uint64_t written;  /* bytes written to fd (thread side) */
	uint32_t crc;      /* of those bytes (queue_file_crc; thread side) */
	int error;
	struct buf pending;  /* loop side */
	struct buf inflight; /* thread side while in flight */
	size_t len_offset;   /* file offset of the M record's 20 length digits */
	uint64_t msg_bytes;
	char len_digits[20];
	char *prepend; /* J record: header lines for the front of the message */
	size_t prepend_len;
	queue_txn_done_fn *done;
	queue_txn_resume_fn *resume;
	void *arg;
};

static int open_dir(int at, const char *name)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int queue_store_open(struct queue_store *qs, const char *spool, struct iopool *pool, unsigned slot)
{
	memset(qs, 0, sizeof *qs);
	qs->spool_fd = qs->incoming_fd = qs->queue_fd = qs->free_fd = -1;
	pthread_mutex_init(&qs->free_lock, NULL);
	qs->spool_fd = open_dir(AT_FDCWD, spool);
	if (qs->spool_fd < 0)
		return qs->spool_fd;
	qs->incoming_fd = open_dir(qs->spool_fd, "incoming");
	qs->queue_fd = open_dir(qs->spool_fd, "queue");
	qs->free_fd = open_dir(qs->spool_fd, "free"); /* optional */
	if (qs->incoming_fd < 0 || qs->queue_fd < 0) {
		int r = qs->incoming_fd < 0 ? qs->incoming_fd : qs->queue_fd;
		queue_store_close(qs);
		return r;
	}
	qs->pool = pool;
	queue_id_init(&qs->ids, slot);
	return 0;
}

void queue_store_close(struct queue_store *qs)
{
	if (qs->free_fd >= 0)
		close(qs->free_fd);
	if (qs->queue_fd >= 0)
		close(qs->queue_fd);
	if (qs->incoming_fd >= 0)
		close(qs->incoming_fd);
	if (qs->spool_fd >= 0)
		close(qs->spool_fd);
	qs->spool_fd = qs->incoming_fd = qs->queue_fd = qs->free_fd = -1;
	pthread_mutex_destroy(&qs->free_lock);
}

static int mkdir_owned(const char *path, long uid, long gid)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (uid >= 0 && (st.st_uid != (uid_t)uid || st.st_gid != (gid_t)gid) &&
	    chown(path, (uid_t)uid, (gid_t)gid) < 0)
		return -errno;
	return 0;
}

int queue_spool_prepare(const char *path, long uid, long gid)
{
	static const char *const subdirs[] = { "incoming", "queue", "corrupt", "hold", "free" };
	char sub[4096];
	int r = mkdir_owned(path, uid, gid);

	for (size_t i = 0; r == 0 && i < sizeof subdirs / sizeof subdirs[0]; i++) {
		if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, subdirs[i]) >= sizeof sub)
			return -ENAMETOOLONG;
		r = mkdir_owned(sub, uid, gid);
	}
	return r;
}

/* Is name (or, with hidden, name without its leading '.') an id of slot (-1: any)? */
static bool slot_file(const char *name, int slot, bool hidden)
{
	if (hidden) {
		if (name[0] != '.')
			return false;
		name++;
	} else if (name[0] == '.') {
		return false;
	}
	if (slot < 0)
		return !hidden || queue_id_valid(name);
	return queue_id_valid(name) && queue_id_slot(name) == (unsigned)slot;
}

/*
 * Does queue/.<name> hold what its writer wrote? A power cut before its
 * syncs may have mixed blocks of the file it reused into it (crash state 2):
 * the CRC says. -EINVAL: malformed or mixed; 0 also when it cannot be read
 * now (the queue manager's loader tries again).
 */
static int hidden_check(int dfd, const char *name)
{
	/* Non-blocking: a FIFO planted there must not hang the master. */
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return 0;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0; /* not a file of ours: the loader refuses it */
	}
	struct envelope env;
	envelope_init(&env);
	int r = queue_file_read_envelope(fd, &env);
	if (r == 0)
		r = queue_file_verify(fd, &env);
	envelope_free(&env);
	close(fd);
	return r == -EINVAL ? r : 0;
}

/* Rename queue/.<id> files of slot to queue/<id>: durable or not, their 250 may have gone. */
static void publish_hidden(const char *spool, int slot)
{
	char path[4096];
	if ((size_t)snprintf(path, sizeof path, "%s/queue", spool) >= sizeof path)
		return;
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!slot_file(de->d_name, slot, true))
			continue;
		if (hidden_check(dfd, de->d_name) < 0) {
			/* Its syncs never finished, so it never got its 250. */
			char dst[64];
			snprintf(dst, sizeof dst, "../corrupt/%s", de->d_name + 1);
			if (renameat(dfd, de->d_name, dfd, dst) < 0)
				log_err("qid=%s event=recover_failed error=\"%s\"", de->d_name + 1,
					strerror(errno));
			else
				log_err("qid=%s event=unpublished_damaged action=moved_to_corrupt "
					"note=\"malformed, or mixed with an older file by a power cut "
					"before its sync: it was never accepted\"",
					de->d_name + 1);
			continue;
		}
		if (renameat2(dfd, de->d_name, dfd, de->d_name + 1, RENAME_NOREPLACE) < 0)
			log_err("qid=%s event=recover_failed error=\"%s\"", de->d_name + 1,
				strerror(errno));
		else
			log_info("qid=%s event=recovered_unpublished", de->d_name + 1);
	}
	closedir(d);
}

int queue_spool_clean_incoming(const char *spool, int slot)
{
	char path[4096];
	publish_hidden(spool, slot);
	if ((size_t)snprintf(path, sizeof path, "%s/incoming", spool) >= sizeof path)
		return -ENAMETOOLONG;
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -errno;
	}
	struct dirent *de;
	int removed = 0;
	while ((de = readdir(d))) {
		if (!slot_file(de->d_name, slot, false))
			continue;
		if (unlinkat(dfd, de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

/* --- I/O thread side ------------------------------------------------------ */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* A new file incoming/<id>: never an existing one, never through a link. fd or -errno. */
static int spool_create(int incoming_fd, const char *id)
{
	int fd = openat(incoming_fd, id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	return fd < 0 ? -errno : fd;
}

/*
 * Refill the cache of free/ names (free_lock held); an empty free/ is read
 * again after 100 ms. A worker takes the files of its own id slot (those of
 * the messages it accepted, so each gets back about as many as it gives)
 * and another slot's only when it finds none of its own: two workers
 * reading the same names raced for them, and half their renames failed.
 */
static void free_refill(struct queue_store *qs)
{
	int64_t now = clock_mono_ms();
	if (qs->free_scanned_ms && now - qs->free_scanned_ms < 100)
		return;
	DIR *d = dir_scan_open(qs->free_fd);
	if (!d)
		return;
	char other[QUEUE_FREE_CACHE][QUEUE_ID_LEN + 1];
	size_t nother = 0;
	struct dirent *de;
	while (qs->nfree < QUEUE_FREE_CACHE && (de = readdir(d))) {
		if (!queue_id_valid(de->d_name))
			continue;
		if (queue_id_slot(de->d_name) == qs->ids.slot)
			memcpy(qs->free_names[qs->nfree++], de->d_name, QUEUE_ID_LEN + 1);
		else if (nother < QUEUE_FREE_CACHE)
			memcpy(other[nother++], de->d_name, QUEUE_ID_LEN + 1);
	}
	closedir(d);
	if (qs->nfree == 0) {
		memcpy(qs->free_names, other, nother * sizeof other[0]);
		qs->nfree = nother;
	}
	qs->free_scanned_ms = qs->nfree ? 0 : now;
}

/*
 * Take a delivered file from free/ as incoming/<id> (see queue_store.h); fd or
 * -errno (-ENOENT: none to take). Another worker may take a name first: its
 * rename then fails and the next name is tried.
 */
static int spool_reuse(struct queue_store *qs, const char *id)
{
	char name[QUEUE_ID_LEN + 1];

	if (qs->free_fd < 0)
		return -ENOENT;
	for (;;) {
		pthread_mutex_lock(&qs->free_lock);
		if (qs->nfree == 0)
			free_refill(qs);
		bool got = qs->nfree > 0;
		if (got)
			memcpy(name, qs->free_names[--qs->nfree], sizeof name);
		pthread_mutex_unlock(&qs->free_lock);
		if (!got)
			return -ENOENT;
		if (renameat2(qs->free_fd, name, qs->incoming_fd, id, RENAME_NOREPLACE) < 0) {
			if (errno == ENOENT)
				continue; /* taken by another worker */
			return -errno;
		}
		/* Overwritten in place and cut to its new length at the end (see crash state 2). */
		int fd = openat(qs->incoming_fd, id, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0)
			return fd;
		int err = -errno;
		unlinkat(qs->incoming_fd, id, 0);
		return err;
	}
}

/* queue/.<id>: where a message waits, hidden from the queue manager, until it is durable. */
static void hidden_name(const char *id, char out[QUEUE_ID_LEN + 2])
{
	out[0] = '.';
	memcpy(out + 1, id, QUEUE_ID_LEN + 1);
}

/* Move a complete file from incoming/<from> to queue/<to>; never replacing a file there. */
static int spool_publish(int incoming_fd, int queue_fd, const char *from, const char *to)
{
	if (renameat2(incoming_fd, from, queue_fd, to, RENAME_NOREPLACE) < 0)
		return -errno;
	return 0;
}

static int txn_step_write(struct iojob *job)
{
	struct queue_txn *txn = (struct queue_txn *)job;
	struct queue_store *qs = txn->qs;
	int r;

	if (txn->op == OP_CLEANUP) {
		if (txn->fd >= 0) {
			close(txn->fd);
			txn->fd = -1;
		}
		if (unlinkat(qs->incoming_fd, txn->id, 0) < 0 && errno != ENOENT)
			log_warn("qid=%s event=cleanup_failed dir=incoming error=\"%s\"", txn->id,
				 strerror(errno));
		char hidden[QUEUE_ID_LEN + 2];
		hidden_name(txn->id, hidden);
		if (txn->renamed &&
		    unlinkat(qs->queue_fd, txn->published ? txn->id : hidden, 0) < 0 &&
		    errno != ENOENT)
			log_warn("qid=%s event=cleanup_failed dir=queue error=\"%s\"", txn->id,
				 strerror(errno));
		return 0;
	}
	if (txn->fd < 0) {
		txn->fd = spool_reuse(qs, txn->id);
		txn->reused = txn->fd >= 0;
		if (txn->fd < 0)
			txn->fd = spool_create(qs->incoming_fd, txn->id);
		if (txn->fd < 0)
			return txn->fd;
	}
	r = write_all(txn->fd, txn->inflight.data, txn->inflight.len);
	if (r < 0)
		return r;
	txn->crc = queue_file_crc(txn->crc, txn->written, txn->inflight.data, txn->inflight.len,
				  txn->len_offset);
	txn->written += txn->inflight.len;
	if (txn->op == OP_FINAL) {
		char trailer[QUEUE_FILE_TRAILER_CRC_LEN + 1];
		queue_file_format_trailer_crc(txn->crc, trailer);
		r = write_all(txn->fd, trailer, QUEUE_FILE_TRAILER_CRC_LEN);
		if (r < 0)
			return r;
		txn->written += QUEUE_FILE_TRAILER_CRC_LEN;
		/* A reused file longer than this message loses its old tail (which frees
		 * blocks, but only those past the new end). */
		struct stat st;
		if (txn->reused && (fstat(txn->fd, &st) < 0 ||
				    ((uint64_t)st.st_size > txn->written &&
				     ftruncate(txn->fd, (off_t)txn->written) < 0)))
			return -errno;
		if (pwrite(txn->fd, txn->len_digits, 20, (off_t)txn->len_offset) != 20)
			return errno ? -errno : -EIO;
		job->sync_fd = txn->fd;
	}
	return 0;
}

static int txn_step_commit(struct iojob *job)
{
	struct queue_txn *txn = (struct queue_txn *)job;
	struct queue_store *qs = txn->qs;

	if (txn->op != OP_FINAL)
		return 0;
	/* The file's fdatasync runs after this, at the same time as queue/'s fsync. */
	char hidden[QUEUE_ID_LEN + 2];
	hidden_name(txn->id, hidden);
	int r = spool_publish(qs->incoming_fd, qs->queue_fd, txn->id, hidden);
	if (r < 0)
		return r;
	txn->renamed = true;
	job->sync_dir = qs->queue_fd;
	return 0;
}

/* After the syncs: show the durable file to the queue manager (crash state 4). */
static int txn_step_publish(struct iojob *job)
{
	struct queue_txn *txn = (struct queue_txn *)job;
	struct queue_store *qs = txn->qs;
	char hidden[QUEUE_ID_LEN + 2];

	if (txn->op != OP_FINAL)
		return 0;
	hidden_name(txn->id, hidden);
	if (renameat2(qs->queue_fd, hidden, qs->queue_fd, txn->id, RENAME_NOREPLACE) < 0)
		return -errno;
	txn->published = true;
	return 0;
}

/* --- loop side ------------------------------------------------------------ */

static void txn_free(struct queue_txn *txn)
{
	txn->qs->open_txns--;
	buf_free(&txn->pending);
	buf_free(&txn->inflight);
	free(txn->prepend);
	free(txn);
}

static void txn_job_done(struct iojob *job);

static void txn_submit(struct queue_txn *txn, enum txn_op op)
{
	struct buf tmp = txn->inflight;
	txn->inflight = txn->pending;
	txn->pending = tmp;
	buf_reset(&txn->pending);
	txn->op = op;
	txn->in_flight = true;
	txn->submitted = true;
	iojob_init(&txn->job, txn_step_write, txn_step_commit, txn_job_done);
	txn->job.publish = txn_step_publish;
	iopool_submit(txn->qs->pool, &txn->job);
}

static void txn_cleanup(struct queue_txn *txn)
{
	txn->phase = TXN_CLEANUP;
	if (!txn->submitted) {
		/* Nothing ever reached the disk. */
		txn_free(txn);
		return;
	}
	buf_reset(&txn->pending);
	txn_submit(txn, OP_CLEANUP);
}

static void txn_submit_final(struct queue_txn *txn)
{
	queue_file_format_length(txn->msg_bytes, txn->len_digits);
	if (txn->prepend_len > 0) {
		int r = queue_file_format_prepend(txn->prepend, txn->prepend_len, &txn->pending);
		if (r < 0) {
			txn->error = r;
			return;
		}
	}
	/* The trailer, with the CRC of what was written, is the I/O thread's (txn_step_write). */
	txn_submit(txn, OP_FINAL);
}

static void txn_finish_commit(struct queue_txn *txn)
{
	int result = txn->error;
	if (txn->done)
		txn->done(txn->arg, result, txn->id);
	if (result < 0)
		txn_cleanup(txn);
	else
		txn_free(txn);
}

static void txn_job_done(struct iojob *job)
{
	struct queue_txn *txn = (struct queue_txn *)job;
	enum txn_op op = txn->op;

	txn->in_flight = false;
	buf_reset(&txn->inflight);
	if (op == OP_FINAL && txn->fd >= 0) {
		/* Synced (or failed) already: the close cannot lose data now. */
		close(txn->fd);
		txn->fd = -1;
	}
	if (job->result < 0 && txn->error == 0 && op != OP_CLEANUP) {
		txn->error = job->result;
		log_err("qid=%s event=spool_write_failed error=\"%s\"", txn->id,
			strerror(-job->result));
	}

	switch (txn->phase) {
	case TXN_RECEIVING:
		if (txn->error == 0 && txn->pending.len >= TXN_CHUNK)
			txn_submit(txn, OP_CHUNK);
		if (txn->was_busy && !queue_txn_busy(txn)) {
			txn->was_busy = false;
			if (txn->resume)
				txn->resume(txn->arg);
		}
		break;
	case TXN_COMMITTING:
		if (op == OP_FINAL || txn->error < 0) {
			txn_finish_commit(txn);
		} else {
			txn_submit_final(txn);
			if (txn->error < 0)
				txn_finish_commit(txn);
		}
		break;
	case TXN_ABORTED:
		txn_cleanup(txn);
		break;
	case TXN_CLEANUP:
		txn_free(txn);
		break;
	}
}

struct queue_txn *queue_txn_begin(struct queue_store *qs, struct envelope *env,
				  queue_txn_resume_fn *resume, void *arg)
{
	struct queue_txn *txn = calloc(1, sizeof *txn);
	struct timespec ts;

	if (!txn)
		return NULL;
	txn->qs = qs;
	txn->fd = -1;
	txn->resume = resume;
	txn->arg = arg;
	buf_init(&txn->pending, TXN_PENDING_MAX);
	buf_init(&txn->inflight, TXN_PENDING_MAX);
	if (!queue_id_valid(env->id))
		queue_id_next(&qs->ids, env->id);
	memcpy(txn->id, env->id, sizeof txn->id);
	clock_gettime(CLOCK_REALTIME, &ts);
	env->arrival_sec = ts.tv_sec;
	env->arrival_usec = ts.tv_nsec / 1000;
	if (queue_file_write_header(env, &txn->pending, &txn->len_offset) < 0) {
		buf_free(&txn->pending);
		free(txn);
		return NULL;
	}
	qs->open_txns++;
	return txn;
}

void queue_store_new_id(struct queue_store *qs, char id[QUEUE_ID_LEN + 1])
{
	queue_id_next(&qs->ids, id);
}

const char *queue_txn_id(const struct queue_txn *txn)
{
	return txn->id;
}

int queue_txn_write(struct queue_txn *txn, const void *p, size_t n)
{
	if (txn->error < 0)
		return txn->error;
	int r = buf_append(&txn->pending, p, n);
	if (r < 0) {
		txn->error = r;
		return r;
	}
	txn->msg_bytes += n;
	if (!txn->in_flight && txn->pending.len >= TXN_CHUNK)
		txn_submit(txn, OP_CHUNK);
	if (queue_txn_busy(txn))
		txn->was_busy = true;
	return 0;
}

bool queue_txn_busy(const struct queue_txn *txn)
{
	return txn->in_flight && txn->pending.len >= TXN_HIGH_WATER;
}

uint64_t queue_txn_size(const struct queue_txn *txn)
{
	return txn->msg_bytes;
}

int queue_txn_prepend(struct queue_txn *txn, const char *hdrs, size_t len)
{
	char *copy;

	if (len > QUEUE_PREPEND_MAX || txn->prepend_len + len > QUEUE_PREPEND_MAX)
		return -EINVAL;
	copy = realloc(txn->prepend, txn->prepend_len + len + 1);
	if (copy == NULL)
		return -ENOMEM;
	memcpy(copy + txn->prepend_len, hdrs, len);
	txn->prepend = copy;
	txn->prepend_len += len;
	return 0;
}

void queue_txn_commit(struct queue_txn *txn, queue_txn_done_fn *done, void *arg)
{
	txn->done = done;
	txn->arg = arg;
	txn->resume = NULL;
	txn->phase = TXN_COMMITTING;
	if (txn->error < 0) {
		if (!txn->in_flight)
			txn_finish_commit(txn);
		return;
	}
	if (!txn->in_flight) {
		txn_submit_final(txn);
		if (txn->error < 0)
			txn_finish_commit(txn);
	}
}

void queue_txn_abort(struct queue_txn *txn)
{
	txn->done = NULL;
	txn->resume = NULL;
	txn->phase = TXN_ABORTED;
	if (!txn->in_flight)
		txn_cleanup(txn);
}

void queue_txn_detach(struct queue_txn *txn)
{
	txn->done = NULL;
	txn->resume = NULL;
}

/* --- synchronous injection (queue_inject, declared in bounce.h) ------------ */

/*
 * The same crash states as a transaction (see the top of this file), taken in
 * one go on the calling thread: the whole file is written, fdatasync'd,
 * renamed and queue/ fsync'd before 0 is returned.
 */
int queue_inject(int spool_fd, struct envelope *env, const void *msg, size_t len)
{
	struct buf head;
	size_t len_offset;
	char digits[20];
	int incoming_fd = -1, queue_fd = -1, fd = -1, r;
	bool created = false, renamed = false;

	if (!queue_id_valid(env->id))
		return -EINVAL;
	buf_init(&head, QUEUE_HEADER_MAX);
	r = queue_file_write_header(env, &head, &len_offset);
	if (r < 0)
		goto out;
	queue_file_format_length(len, digits);
	memcpy(head.data + len_offset, digits, sizeof digits);

	incoming_fd = r = open_dir(spool_fd, "incoming");
	if (r >= 0)
		queue_fd = r = open_dir(spool_fd, "queue");
	if (r >= 0)
		fd = r = spool_create(incoming_fd, env->id);
	if (r < 0)
		goto out;
	created = true;
	r = write_all(fd, head.data, head.len);
	if (r == 0)
		r = write_all(fd, msg, len);
	if (r == 0)
		r = write_all(fd, QUEUE_FILE_TRAILER, QUEUE_FILE_TRAILER_LEN);
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	fd = -1;
	if (r == 0)
		r = spool_publish(incoming_fd, queue_fd, env->id, env->id);
	if (r == 0) {
		renamed = true;
		if (fsync(queue_fd) < 0)
			r = -errno;
	}
out:
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		/* Not durable, so not queued: the caller will be told it failed. */
		if (renamed && unlinkat(queue_fd, env->id, 0) < 0 && errno != ENOENT)
			log_warn("qid=%s event=cleanup_failed dir=queue error=\"%s\"", env->id,
				 strerror(errno));
		if (created && !renamed && unlinkat(incoming_fd, env->id, 0) < 0 && errno != ENOENT)
			log_warn("qid=%s event=cleanup_failed dir=incoming error=\"%s\"", env->id,
				 strerror(errno));
	}
	if (queue_fd >= 0)
		close(queue_fd);
	if (incoming_fd >= 0)
		close(incoming_fd);
	buf_free(&head);
	return r < 0 ? r : 0;
}
