/*
 * queue_manager: schedules deliveries, records their outcome, bounces and
 * retries. See queue_manager.h.
 *
 * A message in memory is
 *   LOADING   its envelope is being read (an I/O job), or waits to be read
 *             again after a failure (EMFILE, EIO...): nothing else may touch
 *             it until it is loaded, not even an administrator's request
 *   ACTIVE    an attempt runs: "parts" are in flight (one local delivery job
 *             for all its local recipients, one outbound delivery per remote
 *             destination), and/or a record job writes outcomes
 *   WAITING   between attempts: a timer brings it back (retry-schedule)
 *   HELD      moved to hold/ by `queue hold`; forgotten until released
 *
 * Every outcome goes to disk through one record job at a time per message:
 *   1. bounces (and delay notices) for recipients that failed for good are
 *      written as new queue files, durably (queue_inject);
 *   2. the recipients' status bytes ('D' delivered, 'F' failed) are written
 *      in place and the file is fdatasync'd;
 *   3. when no recipient is left, the file is unlinked. queue/ is not
 *      fsync'd for that: the next sync of queue/ (the next message's, or the
 *      file system's own within seconds) carries the unlink, and a sync per
 *      delivered message doubled the commits that incoming mail waits on.
 * A part's outcome is recorded as soon as that part is over, not at the end
 * of the attempt, so a remote 250 is on disk within one fsync: record jobs
 * go to the I/O pool's urgent queue, ahead of local deliveries and envelope
 * loads (thousands of them after a restart with a backlog), unless they
 * carry a notice (building one reads the whole message).
 *
 * Every deferral names its reason: each recipient an attempt leaves pending
 * has a note (the remote reply, or our own reason for not trying).
 *
 * Crash states: killed before 1: the recipient is delivered or bounced
 * again (at most once more: a Maildir copy is found again by its
 * deterministic name, a remote server may get a duplicate, RFC 5321 6.1).
 * Killed between 1 and 2: the bounce exists and may be sent twice. Between 2
 * and 3: the file is loaded again, has nothing pending, and is removed.
 * After 3 but before the unlink reached the disk (a power cut, not a kill:
 * the unlink is in the kernel already), as before 1 when the last recipient
 * was delivered without a status write: delivered again, at most once more.
 */
#include "queue/queue_manager.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "deliver/maildir.h"
#include "deliver/outbound.h"
#include "deliver/relay_auth.h"
#include "mail/addr.h"
#include "mail/aliases.h"
#include "mail/resolve.h"
#include "mail/users.h"
#include "queue/bounce.h"
#include "queue/queue_control.h"
#include "queue/queue_file.h"
#include "queue/queue_list.h"
#include "smtpd/smtp_command.h"
#include "smtpd/smtp_server.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/fileio.h"
#include "util/iopool.h"
#include "util/log.h"
#include "util/str.h"
#include "util/strmap.h"

/* A full rescan of queue/ catches anything a lost notification missed. */
#define RESCAN_INTERVAL_S 300
/* Local delivery jobs in flight per I/O thread. */
#define ACTIVE_PER_THREAD 4
/* RET=FULL returns the whole message up to this size, else its headers. */
#define BOUNCE_RETURN_MAX (10u * 1024 * 1024)
#define BOUNCE_BUF_MAX (BOUNCE_RETURN_MAX + 1024 * 1024)

enum qmsg_state {
	QM_LOADING,
	QM_ACTIVE,
	QM_WAITING,
};

/* What we know about one recipient beyond its on-disk status. */
struct rcpt_note {
	char status[16];               /* enhanced status of the last outcome */
	char remote_mta[DNS_NAME_MAX + 1];
	char text[SMTPC_TEXT_MAX];     /* the remote reply, or our reason */
	bool remote;                   /* text is a remote server's reply */
	int64_t when;
};

struct qmgr;

/* The last failed attempts of a message, for `queue show` (memory only, and small: a
 * backlog may hold many messages; the log has every attempt). */
#define HISTORY_MAX 5
struct history_entry {
	int64_t when;
	char text[200];
};

struct qmsg {
	char id[QUEUE_ID_LEN + 1];
	enum qmsg_state state;
	struct envelope env;
	bool recovered;      /* found at start-up: Maildir copies may already exist */
	unsigned attempts;
	int64_t next_attempt;
	struct event *timer;
	unsigned inflight;   /* parts of the attempt still running */
	bool recording;      /* a record job runs */
	bool warned;         /* the delay notice went out (memory only) */
	bool want_warning;   /* the next record job sends the delay notice */
	bool delete_req, hold_req, bounce_req; /* administrator's requests, done when idle */
	char *want;          /* per recipient: status to record (0: none) */
	bool *busy;          /* per recipient: in a part now */
	bool *bounce;        /* per recipient: a failure to report to the sender */
	char *report;        /* per recipient: the success report owed (enum bounce_action), 0 */
	struct rcpt_note **notes;
	char last_error[SMTPC_TEXT_MAX];
	struct history_entry *history; /* ring of HISTORY_MAX, allocated on first use */
	unsigned nhistory;             /* entries ever added */
	struct qmsg *next_ready;
	struct qmgr *q;
};

struct qjob {
	struct iojob job; /* first */
	struct qmsg *m;
	int fd;
	enum { JOB_LOAD, JOB_LOCAL, JOB_RECORD } kind;
	int *results;    /* JOB_LOCAL, per recipient: 1 not attempted, 0 delivered, <0 error */
	/* JOB_RECORD */
	char *statuses;  /* per recipient: the status to write, 0: none */
	bool all_done;
	bool unlinked;
	struct envelope notice_env[3]; /* [0] bounce, [1] delay notice, [2] success report */
	struct bounce_rcpt *notice_rcpts[3];
	size_t notice_n[3];
	bool notice[3];
	int64_t now;
};

struct outbound_part {
	struct outbound_delivery d; /* first */
	struct qmsg *m;
	struct outbound_part *prev, *next; /* the manager's parts in flight */
	size_t *index;  /* envelope index of each msg.rcpts[i] */
	struct smtpc_rcpt *rcpts;
};

struct qmgr {
	struct event_base *base;
	const struct config *cfg;
	struct iopool *pool;
	struct outbound *out;
	char out_error[200]; /* why out is NULL */
	struct userdb *users;
	struct aliasdb *aliases;
	struct queue_id_gen ids;
	struct queue_control *ctl;
	int spool_fd;
	int queue_fd;
	int free_fd; /* spool/free: delivered files (scrubbed) for the workers to write over (queue_store.h) */
	/* free/ as last counted plus files moved there since (I/O threads). */
	atomic_size_t free_count;
	atomic_int_least64_t free_counted_ms; /* when free/ was last counted */
	int inotify_fd;
	struct event *ev_inotify;
	struct event *ev_rescan;
	struct event *ev_free; /* free/ recounted each second */
	struct event *ev_term, *ev_int, *ev_hup;
	struct strmap *msgs;
	struct qmsg *ready_head, *ready_tail;
	struct outbound_part *parts;
	unsigned active;
	unsigned max_active;
	bool stopping;
};

static void qmgr_pump(struct qmgr *q);
static void start_attempt(struct qmgr *q, struct qmsg *m);
static void after_part(struct qmgr *q, struct qmsg *m);
static void record_kick(struct qmgr *q, struct qmsg *m);
static void load_submit(struct qmgr *q, struct qmsg *m);
static void load_done(struct qmgr *q, struct qmsg *m, int r);
static bool load_cached(struct qmgr *q, struct qmsg *m);

static int64_t now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static double delay_since_arrival(const struct qmsg *m)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (double)(now.tv_sec - m->env.arrival_sec) +
	       (double)(now.tv_nsec / 1000 - m->env.arrival_usec) / 1e6;
}

static void qmsg_free(void *p)
{
	struct qmsg *m = p;
	if (m->timer)
		event_free(m->timer);
	if (m->notes)
		for (size_t i = 0; i < m->env.nrcpts; i++)
			free(m->notes[i]);
	free(m->notes);
	free(m->history);
	free(m->want);
	free(m->busy);
	free(m->bounce);
	free(m->report);
	envelope_free(&m->env);
	free(m);
}

static void qmsg_forget(struct qmgr *q, struct qmsg *m)
{
	strmap_del(q->msgs, m->id, NULL);
	qmsg_free(m);
}

static bool rcpt_pending(const struct qmsg *m, size_t i)
{
	return rcpt_status_pending(m->env.rcpts[i].status) && !m->want[i];
}

static size_t pending_count(const struct qmsg *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->env.nrcpts; i++)
		n += rcpt_pending(m, i);
	return n;
}

static struct rcpt_note *note_for(struct qmsg *m, size_t i)
{
	if (!m->notes[i])
		m->notes[i] = calloc(1, sizeof *m->notes[i]);
	return m->notes[i];
}

/* Remember an outcome; text is sanitized by whoever produced it. */
static void note_outcome(struct qmsg *m, size_t i, const char *status, const char *remote_mta,
			 const char *text, bool remote)
{
	struct rcpt_note *n = note_for(m, i);
	if (!n)
		return;
	str_copy(n->status, sizeof n->status, status && status[0] ? status : "4.0.0");
	str_copy(n->remote_mta, sizeof n->remote_mta, remote_mta ? remote_mta : "");
	str_copy(n->text, sizeof n->text, text);
	n->remote = remote;
	n->when = now_sec();
}

/* Remember a failure (the message's last error too, for `queue show`). */
static void note_set(struct qmsg *m, size_t i, const char *status, const char *remote_mta,
		     const char *text, bool remote)
{
	str_copy(m->last_error, sizeof m->last_error, text);
	note_outcome(m, i, status, remote_mta, text, remote);
}

static void history_add(struct qmsg *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void history_add(struct qmsg *m, const char *fmt, ...)
{
	if (!m->history && !(m->history = calloc(HISTORY_MAX, sizeof *m->history)))
		return;
	struct history_entry *h = &m->history[m->nhistory++ % HISTORY_MAX];
	va_list ap;
	h->when = now_sec();
	va_start(ap, fmt);
	vsnprintf(h->text, sizeof h->text, fmt, ap);
	va_end(ap);
}

/* Does the sender want to hear about this recipient (RFC 3461 NOTIFY)? */
static bool notify_wants(const struct envelope_rcpt *r, unsigned what)
{
	if (r->notify == 0)
		return true; /* not given: failures and delays are reported */
	if (r->notify & SMTP_NOTIFY_NEVER)
		return false;
	return (r->notify & what) != 0;
}

/*
 * The success report owed for recipient i, whose delivery is over (RFC 3461): the alias's
 * "expanded" one if i carries it, else action when the sender asked NOTIFY=SUCCESS (0: the
 * next hop offered DSN and reports itself), else none.
 */
static void owe_report(struct qmsg *m, size_t i, enum bounce_action action)
{
	unsigned notify = m->env.rcpts[i].notify;
	if (notify & SMTP_NOTIFY_EXPANDED)
		m->report[i] = BOUNCE_EXPANDED;
	else if ((notify & SMTP_NOTIFY_SUCCESS) && !(notify & SMTP_NOTIFY_NEVER))
		m->report[i] = (char)action;
}

/* Recipient i failed for good: record 'F' and maybe a bounce. */
static void fail_rcpt(struct qmsg *m, size_t i)
{
	m->want[i] = RCPT_FAILED;
	m->bounce[i] = notify_wants(&m->env.rcpts[i], SMTP_NOTIFY_FAILURE);
	owe_report(m, i, 0);
}

/* The pending recipients of kind (0: any) that no part took: why they wait. */
static void note_not_attempted(struct qmsg *m, char kind, const char *why)
{
	char text[SMTPC_TEXT_MAX];
	str_format(text, sizeof text, "not attempted: %s", why);
	for (size_t i = 0; i < m->env.nrcpts; i++)
		if (rcpt_pending(m, i) && !m->busy[i] && (!kind || m->env.rcpts[i].kind == kind))
			note_set(m, i, "4.3.0", NULL, text, false);
}

/* --- scheduling ---------------------------------------------------------------------------- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct qmsg *m = arg;
	(void)fd;
	(void)what;
	if (m->q->stopping)
		return;
	if (m->state == QM_LOADING)
		load_submit(m->q, m);
	else if (m->state == QM_WAITING)
		start_attempt(m->q, m);
}

/* Run on_timer in delay seconds (a message in QM_LOADING is read again, else attempted). */
static void timer_in(struct qmgr *q, struct qmsg *m, unsigned delay)
{
	if (!m->timer)
		m->timer = evtimer_new(q->base, on_timer, m);
	m->next_attempt = now_sec() + delay;
	if (m->timer) {
		struct timeval tv = { (time_t)delay, 0 };
		evtimer_add(m->timer, &tv);
	} else {
		log_err("qid=%s event=out_of_memory what=retry_timer", m->id);
	}
}

static void wait_for(struct qmgr *q, struct qmsg *m, unsigned delay)
{
	m->state = QM_WAITING;
	timer_in(q, m, delay);
}

/* The delay before attempt number attempts+1: the schedule, with +-10% jitter. */
static unsigned retry_delay(const struct config *cfg, unsigned attempts)
{
	size_t n = cfg->nretry_schedule;
	unsigned base = n ? cfg->retry_schedule[attempts - 1 < n ? attempts - 1 : n - 1] : 300;
	unsigned jitter = base / 10;
	uint32_t r = 0;
	if (jitter > 0 && getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
		return base - jitter + r % (2 * jitter + 1);
	return base;
}

/* Nothing in flight: decide what the message needs next. */
static void after_attempt(struct qmgr *q, struct qmsg *m)
{
	const struct config *cfg = q->cfg;
	int64_t now = now_sec();

	if (m->inflight > 0 || m->recording || q->stopping)
		return;
	if (m->delete_req || m->hold_req) {
		const char *what = m->delete_req ? "deleted" : "held";
		int r = 0;
		if (m->delete_req) {
			if (unlinkat(q->queue_fd, m->id, 0) < 0)
				r = -errno;
		} else {
			char dst[64];
			snprintf(dst, sizeof dst, "../hold/%s", m->id);
			if (renameat(q->queue_fd, m->id, q->queue_fd, dst) < 0)
				r = -errno;
		}
		if (r == 0) {
			fsync(q->queue_fd);
			log_info("qid=%s event=%s by=administrator", m->id, what);
			qmsg_forget(q, m);
			return;
		}
		log_err("qid=%s event=%s_failed error=\"%s\"", m->id, what, strerror(-r));
		m->delete_req = m->hold_req = false;
	}
	if (m->bounce_req) {
		m->bounce_req = false;
		for (size_t i = 0; i < m->env.nrcpts; i++) {
			if (!rcpt_pending(m, i))
				continue;
			note_set(m, i, "5.0.0", NULL, "message returned by the postmaster", false);
			fail_rcpt(m, i);
		}
		record_kick(q, m);
		return;
	}
	size_t pending = pending_count(m);
	bool dirty = false;
	for (size_t i = 0; i < m->env.nrcpts; i++)
		dirty = dirty || m->want[i];
	if (pending == 0 || dirty) {
		/* Outcomes not on disk yet (a record job failed), or the file just needs removing. */
		if (dirty && m->attempts > 0) {
			wait_for(q, m, retry_delay(cfg, m->attempts));
			return;
		}
		record_kick(q, m);
		return;
	}
	if (now - m->env.arrival_sec >= (int64_t)cfg->queue_lifetime) {
		for (size_t i = 0; i < m->env.nrcpts; i++) {
			if (!rcpt_pending(m, i))
				continue;
			struct rcpt_note *n = note_for(m, i);
			char text[SMTPC_TEXT_MAX];
			str_format(text, sizeof text, "delivery time expired (queue-lifetime %us)%s%s",
				 cfg->queue_lifetime, n && n->text[0] ? "; last error: " : "",
				 n && n->text[0] ? n->text : "");
			if (n && n->remote) {
				/* Keep the remote reply as the diagnostic, with the expiry status. */
				str_copy(n->status, sizeof n->status, "4.4.7");
			} else {
				note_set(m, i, "4.4.7", NULL, text, false);
			}
			fail_rcpt(m, i);
		}
		log_info("qid=%s event=expired attempts=%u", m->id, m->attempts);
		record_kick(q, m);
		return;
	}
	if (cfg->delay_warning && !m->warned && m->env.sender[0] &&
	    now - m->env.arrival_sec >= (int64_t)cfg->delay_warning) {
		m->warned = true;
		m->want_warning = true;
		record_kick(q, m);
		return;
	}
	unsigned delay = retry_delay(cfg, m->attempts ? m->attempts : 1);
	int64_t expires = m->env.arrival_sec + cfg->queue_lifetime;
	if (now + delay > expires)
		delay = expires > now ? (unsigned)(expires - now) : 1;
	/* Every path that leaves a recipient pending notes why; this is the safety net. */
	if (!m->last_error[0])
		note_not_attempted(m, 0, "no reason recorded");
	wait_for(q, m, delay);
	log_info("qid=%s event=deferred attempts=%u pending=%zu retry_in=%us error=%s", m->id,
		 m->attempts, pending, delay, LOG_ESC(m->last_error));
}

/* --- local deliveries (I/O thread side) ----------------------------------------------------- */

static int qjob_load(struct qjob *j, struct qmgr *q)
{
	j->fd = openat(q->queue_fd, j->m->id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (j->fd < 0)
		return -errno;
	int r = queue_file_read_envelope(j->fd, &j->m->env);
	close(j->fd);
	j->fd = -1;
	return r;
}

static int qjob_local(struct qjob *j, struct qmgr *q)
{
	struct qmsg *m = j->m;
	const struct config *cfg = q->cfg;

	j->fd = openat(q->queue_fd, m->id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (j->fd < 0)
		return -errno;
	struct maildir_msg mm = {
		.root = cfg->maildir_root,
		.hostname = cfg->hostname,
		.queue_id = m->id,
		.arrival_sec = m->env.arrival_sec,
		.arrival_usec = m->env.arrival_usec,
		.return_path = m->env.sender,
		.fd = j->fd,
		.offset = m->env.msg_offset,
		.size = envelope_msg_total(&m->env),
		.pre_offset = m->env.pre_offset,
		.pre_size = m->env.pre_size,
	};
	for (size_t i = 0; i < m->env.nrcpts; i++) {
		if (j->results[i] != 0)
			continue; /* 0 marks the recipients of this job before it runs */
		j->results[i] = maildir_deliver(&mm, m->env.rcpts[i].address, (unsigned)i,
						m->recovered);
	}
	return 0;
}

/* Write the notices, then the statuses; the commit step removes a finished file. */
static int qjob_record(struct qjob *j, struct qmgr *q)
{
	struct qmsg *m = j->m;
	struct buf b;

	if (j->all_done && !j->notice[0] && !j->notice[1] && !j->notice[2])
		return 0; /* nothing to write: the commit step recycles the file by its name */
	j->fd = openat(q->queue_fd, m->id, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (j->fd < 0)
		return -errno;
	for (int k = 0; k < 3; k++) {
		if (!j->notice[k])
			continue;
		struct bounce_params bp = {
			.hostname = q->cfg->hostname,
			.bounce_id = j->notice_env[k].id,
			.now = j->now,
			.retry_until = m->env.arrival_sec + q->cfg->queue_lifetime,
			.max_returned = BOUNCE_RETURN_MAX,
		};
		/* A notice about a message from <> goes to the postmaster, who is its To:. */
		struct envelope about = m->env;
		if (!about.sender[0])
			about.sender = j->notice_env[k].rcpts[0].address;
		buf_init(&b, BOUNCE_BUF_MAX);
		int r = bounce_build(&bp, &about, j->notice_rcpts[k], j->notice_n[k], j->fd, &b);
		if (r == 0)
			r = queue_inject(q->spool_fd, &j->notice_env[k], b.data, b.len);
		buf_free(&b);
		if (r < 0)
			return r;
	}
	if (j->all_done)
		return 0; /* the unlink makes every status moot */
	bool wrote = false;
	for (size_t i = 0; i < m->env.nrcpts; i++) {
		if (!j->statuses[i])
			continue;
		int r = queue_file_set_status(j->fd, &m->env.rcpts[i], j->statuses[i]);
		if (r < 0)
			return r;
		wrote = true;
	}
	if (wrote)
		j->job.sync_fd = j->fd;
	return 0;
}

static int qjob_write(struct iojob *job)
{
	struct qjob *j = (struct qjob *)job;
	struct qmgr *q = j->m->q;

	switch (j->kind) {
	case JOB_LOAD:
		return qjob_load(j, q);
	case JOB_LOCAL:
		return qjob_local(j, q);
	case JOB_RECORD:
		return qjob_record(j, q);
	}
	return -EINVAL;
}

/*
 * Move a delivered queue file to free/ for a worker to write over in place
 * (queue_store.h says why); false when free/ is full or missing (then it is
 * unlinked). Its content is made unreadable (no delivered mail lingers in
 * the spool) without freeing its blocks: FALLOC_FL_ZERO_RANGE only marks
 * them unwritten, where truncating would free them, which costs a discard
 * per block on a file system mounted with online discard (0.5 ms of device
 * time each, measured; as much as all the writes of a message together).
 * Where ZERO_RANGE is not supported the file is truncated. Scrubbed before
 * the rename (a worker may take and fill a file as soon as it is in free/):
 * a crash in between leaves a zeroed file in queue/, which the loader moves
 * to corrupt/; its message was delivered.
 */
static void free_recount(struct qmgr *q);

static bool recycle(struct qmgr *q, const char *id)
{
	if (q->free_fd < 0)
		return false;
	/* The count only grows between countings, while the workers take files all the time:
	 * at thousands of messages a second it reaches the bound within the second, and every
	 * file after that would be unlinked (a discard per block) and another created. So the
	 * bound counts again first, at most every 100 ms. */
	if (atomic_fetch_add(&q->free_count, 1) >= QUEUE_FREE_MAX) {
		int64_t now = clock_mono_ms(), last = atomic_load(&q->free_counted_ms);
		if (now - last < 100 ||
		    !atomic_compare_exchange_strong(&q->free_counted_ms, &last, now))
			return false;
		free_recount(q);
		if (atomic_fetch_add(&q->free_count, 1) >= QUEUE_FREE_MAX)
			return false;
	}
	/* Scrubbed while still in queue/: once in free/ a worker may take it at once and write
	 * a new message into it, which a scrub then would wipe. */
	int fd = openat(q->queue_fd, id, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	struct stat st;
	bool scrubbed = fstat(fd, &st) == 0 &&
			(fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, st.st_size) == 0 ||
			 ftruncate(fd, 0) == 0);
	close(fd);
	if (!scrubbed || renameat2(q->queue_fd, id, q->free_fd, id, RENAME_NOREPLACE) < 0)
		return false;
	return true;
}

/* Count free/ again (the workers take files from it): on the loop each second, and on an I/O
 * thread when the count reaches its bound. Each reads through a descriptor of its own. */
static void free_recount(struct qmgr *q)
{
	size_t n = 0;
	if (q->free_fd < 0)
		return;
	int fd = openat(q->free_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	atomic_store(&q->free_count, n);
}

static int qjob_commit(struct iojob *job)
{
	struct qjob *j = (struct qjob *)job;
	struct qmsg *m = j->m;

	/*
	 * Close before the unlink, here on the I/O thread: the last close of an
	 * unlinked file frees it and may wait for the journal, which must not
	 * happen on the loop. A file whose fdatasync is still to run (after this
	 * step) stays open until qjob_done; it is never the unlinked one.
	 */
	if (j->fd >= 0 && job->sync_fd != j->fd) {
		close(j->fd);
		j->fd = -1;
	}
	if (j->kind != JOB_RECORD || !j->all_done)
		return 0;
	/* no sync_dir either way: see crash state 3 at the top */
	if (recycle(m->q, m->id)) {
		j->unlinked = true;
		return 0;
	}
	if (unlinkat(m->q->queue_fd, m->id, 0) < 0)
		return -errno;
	j->unlinked = true;
	return 0;
}

/* --- loop side ------------------------------------------------------------ */

static void move_to_corrupt(struct qmgr *q, const char *id)
{
	char dst[64];
	snprintf(dst, sizeof dst, "../corrupt/%s", id);
	if (renameat(q->queue_fd, id, q->queue_fd, dst) < 0)
		log_err("qid=%s event=corrupt_move_failed error=\"%s\"", id, strerror(errno));
}

static void load_done(struct qmgr *q, struct qmsg *m, int r)
{
	if (r == -ENOENT) {
		/* Delivered and removed by another path, held, or deleted by hand. */
		qmsg_forget(q, m);
		return;
	}
	if (r == -EINVAL) {
		log_err("qid=%s event=queue_file_unreadable error=\"malformed queue file\" "
			"action=moved_to_corrupt", m->id);
		move_to_corrupt(q, m->id);
		qmsg_forget(q, m);
		return;
	}
	if (r < 0) {
		/* A passing trouble (descriptors, memory, I/O): read it again later. Until then
		 * the message is not known (no envelope): nothing may attempt or record it. */
		envelope_free(&m->env);
		m->attempts++;
		unsigned delay = retry_delay(q->cfg, m->attempts);
		log_err("qid=%s event=queue_file_unreadable error=\"%s\" action=retry retry_in=%us",
			m->id, strerror(-r), delay);
		timer_in(q, m, delay);
		return;
	}
	size_t n = m->env.nrcpts ? m->env.nrcpts : 1;
	m->want = calloc(n, 1);
	m->busy = calloc(n, sizeof *m->busy);
	m->bounce = calloc(n, sizeof *m->bounce);
	m->report = calloc(n, 1);
	m->notes = calloc(n, sizeof *m->notes);
	if (!m->want || !m->busy || !m->bounce || !m->report || !m->notes) {
		log_err("qid=%s event=out_of_memory", m->id);
		qmsg_forget(q, m);
		return;
	}
	for (size_t i = 0; i < m->env.nrcpts; i++)
		m->warned = m->warned || m->env.rcpts[i].status == RCPT_WARNED;
	log_debug("qid=%s event=loaded nrcpt=%zu recovered=%s", m->id, m->env.nrcpts,
		  m->recovered ? "yes" : "no");
	start_attempt(q, m);
}

static void local_done(struct qmgr *q, struct qjob *j)
{
	struct qmsg *m = j->m;
	int jr = j->job.result;
	double delay = delay_since_arrival(m);

	for (size_t i = 0; i < m->env.nrcpts; i++) {
		if (j->results[i] == 1)
			continue;
		m->busy[i] = false;
		struct envelope_rcpt *r = &m->env.rcpts[i];
		if (j->results[i] == 0 && jr == 0) {
			m->want[i] = RCPT_DELIVERED;
			owe_report(m, i, BOUNCE_DELIVERED);
			const char *at = strrchr(r->address, '@');
			log_info("qid=%s event=delivered to=<%s> mailbox=%s/%s/%.*s delay=%.3fs", m->id,
				 LOG_ESC(r->address), LOG_ESC(q->cfg->maildir_root), LOG_ESC(at + 1),
				 (int)(at - r->address), r->address, delay);
		} else {
			int err = j->results[i] < 0 ? j->results[i] : jr;
			char text[SMTPC_TEXT_MAX];
			snprintf(text, sizeof text, "local delivery to %s failed: %s", r->address,
				 strerror(-err));
			note_set(m, i, "4.3.0", NULL, text, false);
			history_add(m, "to=<%s> status=deferred reason=%s", r->address, text);
			log_warn("qid=%s event=delivery_failed to=<%s> error=\"%s\"", m->id,
				 LOG_ESC(r->address), strerror(-err));
		}
	}
	/* A failed job may have left Maildir copies: the next one checks for them. */
	m->recovered = m->recovered || jr < 0;
	after_part(q, m);
}

static const char *const notice_names[3] = { "bounce", "delay_notice", "success_report" };

static void notices_free(struct qjob *j)
{
	for (int k = 0; k < 3; k++) {
		if (j->notice[k])
			envelope_free(&j->notice_env[k]);
		free(j->notice_rcpts[k]);
	}
}

static void record_done(struct qmgr *q, struct qjob *j)
{
	struct qmsg *m = j->m;
	int r = j->job.result;

	m->recording = false;
	if (r == -ENOENT && !j->unlinked) {
		log_warn("qid=%s event=vanished", m->id);
		qmsg_forget(q, m);
		return;
	}
	if (r < 0) {
		log_err("qid=%s event=record_failed error=\"%s\"", m->id, strerror(-r));
		if (!m->attempts)
			m->attempts = 1;
		if (j->notice[1])
			m->warned = false;
		after_attempt(q, m);
		return;
	}
	for (int k = 0; k < 3; k++) {
		if (j->notice[k])
			log_info("qid=%s event=%s dsn_id=%s to=<%s> recipients=%zu", m->id,
				 k == 0 ? "bounced" : notice_names[k], j->notice_env[k].id,
				 LOG_ESC(j->notice_env[k].rcpts[0].address), j->notice_n[k]);
	}
	for (size_t i = 0; i < m->env.nrcpts; i++) {
		if (!j->statuses[i])
			continue;
		m->env.rcpts[i].status = j->statuses[i];
		if (m->want[i] == j->statuses[i])
			m->want[i] = 0;
		m->bounce[i] = false;
		if (!rcpt_status_pending(j->statuses[i]))
			m->report[i] = 0;
	}
	if (j->unlinked) {
		log_info("qid=%s event=removed reason=done", m->id);
		qmsg_forget(q, m);
		return;
	}
	record_kick(q, m);
	if (!m->recording && m->inflight == 0)
		after_attempt(q, m);
}

static void qjob_done(struct iojob *job)
{
	struct qjob *j = (struct qjob *)job;
	struct qmgr *q = j->m->q;

	if (j->fd >= 0)
		close(j->fd);
	switch (j->kind) {
	case JOB_LOAD:
		load_done(q, j->m, j->job.result);
		break;
	case JOB_LOCAL:
		q->active--;
		local_done(q, j);
		break;
	case JOB_RECORD:
		record_done(q, j);
		notices_free(j);
		break;
	}
	free(j->results);
	free(j->statuses);
	free(j);
	qmgr_pump(q);
}

static struct qjob *qjob_new(struct qmsg *m, int kind)
{
	struct qjob *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->m = m;
	j->fd = -1;
	j->kind = kind;
	iojob_init(&j->job, qjob_write, qjob_commit, qjob_done);
	return j;
}

/* The mailbox a notice for address goes to: a local user (through aliases) or a remote address. */
static bool notice_recipient(struct qmgr *q, const char *address, char *kind, char *out,
			     size_t outlen)
{
	struct addr a;
	if (addr_parse_mailbox(slice_from_cstr(address), ADDR_UTF8, &a) < 0)
		return false;
	if (a.literal || !config_is_local_domain(q->cfg, a.domain)) {
		*kind = RCPT_REMOTE;
		return str_copy(out, outlen, a.text);
	}
	struct resolve_ctx rc = { q->cfg, q->users, q->aliases };
	struct resolved res[1];
	size_t n = 0;
	if (resolve_recipient(&rc, &a, res, 1, &n) != RESOLVE_OK || n == 0)
		return false;
	*kind = res[0].kind == RESOLVE_LOCAL ? RCPT_LOCAL : RCPT_REMOTE;
	return str_copy(out, outlen, res[0].address);
}

/* Prepare notice k (0 bounce, 1 delay, 2 success report) of j for the recipients in sel. */
static void notice_prepare(struct qmgr *q, struct qjob *j, int k, const bool *sel)
{
	struct qmsg *m = j->m;
	const struct config *cfg = q->cfg;
	size_t n = 0;

	for (size_t i = 0; i < m->env.nrcpts; i++)
		n += sel[i];
	if (n == 0 || (k == 2 && !m->env.sender[0]))
		return; /* nothing to say; nor to a message from <> (a notice: no one to tell) */
	char kind = 0, to[ADDR_TEXT_MAX + 1];
	bool ok;
	if (m->env.sender[0]) {
		ok = notice_recipient(q, m->env.sender, &kind, to, sizeof to);
	} else {
		/* A failed notice never bounces: the postmaster hears of it, once. */
		char pm[ADDR_TEXT_MAX + 1];
		ok = cfg->nlocal_domains > 0 && k == 0;
		for (size_t i = 0; ok && i < m->env.nrcpts; i++)
			if (sel[i] && strncasecmp(m->env.rcpts[i].address, "postmaster@", 11) == 0)
				ok = false;
		if (ok) {
			snprintf(pm, sizeof pm, "postmaster@%s", cfg->local_domains[0]);
			ok = notice_recipient(q, pm, &kind, to, sizeof to);
		}
	}
	if (!ok) {
		log_warn("qid=%s event=%s_dropped sender=<%s> reason=\"no one to tell\"", m->id,
			 notice_names[k], LOG_ESC(m->env.sender));
		return;
	}
	struct envelope *e = &j->notice_env[k];
	envelope_init(e);
	struct bounce_rcpt *br = calloc(n, sizeof *br);
	if (!br || envelope_set(&e->sender, "") < 0 || envelope_set(&e->protocol, "LOCAL") < 0 ||
	    envelope_set(&e->client_ip, "127.0.0.1") < 0 || envelope_set(&e->helo, cfg->hostname) < 0 ||
	    envelope_add_rcpt(e, kind, to, NULL, SMTP_NOTIFY_NEVER, NULL) < 0) {
		free(br);
		envelope_free(e);
		log_err("qid=%s event=out_of_memory", m->id);
		return;
	}
	queue_id_next(&q->ids, e->id);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	e->arrival_sec = ts.tv_sec;
	e->arrival_usec = ts.tv_nsec / 1000;
	e->body_8bit = m->env.body_8bit;
	e->smtputf8 = m->env.smtputf8;
	size_t o = 0;
	for (size_t i = 0; i < m->env.nrcpts; i++) {
		if (!sel[i])
			continue;
		const struct rcpt_note *nt = m->notes[i];
		if (k == 2) {
			/* Only a relay's reply says more than "delivered" or "expanded". */
			bool relayed = m->report[i] == BOUNCE_RELAYED;
			br[o++] = (struct bounce_rcpt){
				.rcpt = &m->env.rcpts[i],
				.action = (enum bounce_action)m->report[i],
				.status = relayed && nt && nt->status[0] ? nt->status : "2.0.0",
				.remote_mta = relayed && nt && nt->remote_mta[0] ? nt->remote_mta : NULL,
				.diagnostic = relayed && nt && nt->remote ? nt->text : NULL,
				.last_attempt = j->now,
			};
			continue;
		}
		br[o] = (struct bounce_rcpt){
			.rcpt = &m->env.rcpts[i],
			.action = k == 0 ? BOUNCE_FAILED : BOUNCE_DELAYED,
			.status = nt && nt->status[0] ? nt->status : (k == 0 ? "5.0.0" : "4.0.0"),
			.remote_mta = nt && nt->remote_mta[0] ? nt->remote_mta : NULL,
			.diagnostic = nt && nt->remote ? nt->text : NULL,
			.reason = nt && !nt->remote && nt->text[0] ? nt->text : NULL,
			.last_attempt = nt ? nt->when : 0,
		};
		o++;
	}
	j->notice_rcpts[k] = br;
	j->notice_n[k] = n;
	j->notice[k] = true;
}

/* Is recipient i's outcome ready to go to disk? */
static bool recordable(const struct qmsg *m, size_t i)
{
	return m->want[i] == RCPT_DELIVERED || (m->want[i] == RCPT_FAILED && m->inflight == 0);
}

/* Start a record job for outcomes not yet on disk (one at a time per message). */
static void record_kick(struct qmgr *q, struct qmsg *m)
{
	if (m->recording || q->stopping)
		return;
	/* Failures wait for the end of the attempt, so that one bounce lists them all (and a
	 * recipient is marked failed only together with its bounce). */
	bool dirty = m->want_warning;
	for (size_t i = 0; i < m->env.nrcpts; i++)
		dirty = dirty || recordable(m, i);
	bool all_done = m->inflight == 0 && pending_count(m) == 0;
	if (!dirty && !all_done)
		return;
	struct qjob *j = qjob_new(m, JOB_RECORD);
	size_t n = m->env.nrcpts ? m->env.nrcpts : 1;
	bool *sel = calloc(n, sizeof *sel);
	if (j)
		j->statuses = calloc(n, 1);
	if (!j || !j->statuses || !sel) {
		if (j)
			free(j->statuses);
		free(j);
		free(sel);
		log_err("qid=%s event=out_of_memory", m->id);
		return;
	}
	j->now = now_sec();
	j->all_done = all_done;
	for (size_t i = 0; i < m->env.nrcpts; i++) {
		j->statuses[i] = recordable(m, i) ? m->want[i] : 0;
		sel[i] = j->statuses[i] == RCPT_FAILED && m->bounce[i];
	}
	notice_prepare(q, j, 0, sel);
	if (m->want_warning) {
		m->want_warning = false;
		for (size_t i = 0; i < m->env.nrcpts; i++)
			sel[i] = rcpt_pending(m, i) &&
				 notify_wants(&m->env.rcpts[i], SMTP_NOTIFY_DELAY);
		notice_prepare(q, j, 1, sel);
		/* 'W' on disk: a restart does not tell the sender again. */
		for (size_t i = 0; i < m->env.nrcpts; i++)
			if (rcpt_pending(m, i) && m->env.rcpts[i].status == RCPT_PENDING)
				j->statuses[i] = RCPT_WARNED;
	}
	/* Success reports go with the statuses that end their recipients. */
	for (size_t i = 0; i < m->env.nrcpts; i++)
		sel[i] = (j->statuses[i] == RCPT_DELIVERED || j->statuses[i] == RCPT_FAILED) &&
			 m->report[i];
	notice_prepare(q, j, 2, sel);
	free(sel);
	m->recording = true;
	m->state = QM_ACTIVE;
	/* Status bytes and an fdatasync: ahead of the local deliveries and loads, so that a
	 * remote 250 is durable at once (a crash before would send the message again). A
	 * notice reads the whole message: it waits its turn. */
	if (j->notice[0] || j->notice[1] || j->notice[2])
		iopool_submit(q->pool, &j->job);
	else
		iopool_submit_urgent(q->pool, &j->job);
}

/* A part of the attempt is over. */
static void after_part(struct qmgr *q, struct qmsg *m)
{
	m->inflight--;
	record_kick(q, m);
	if (m->inflight == 0 && !m->recording)
		after_attempt(q, m);
}

/* --- remote parts --------------------------------------------------------------------------- */

static void outbound_part_free(struct outbound_part *p)
{
	struct qmgr *q = p->m ? p->m->q : NULL;
	if (q) {
		if (p->prev)
			p->prev->next = p->next;
		else
			q->parts = p->next;
		if (p->next)
			p->next->prev = p->prev;
	}
	if (p->d.msg.fd >= 0)
		close(p->d.msg.fd);
	free(p->index);
	free(p->rcpts);
	free(p);
}

/* A reply for logs and notices: "451 4.3.0 text" as the server said it, or our own text. */
static const char *reply_text(const struct smtpc_reply *r, char *out, size_t outlen)
{
	if (r->code)
		str_format(out, outlen, "%d %s%s%s", r->code, r->status, r->status[0] ? " " : "",
			   r->text);
	else
		str_copy(out, outlen, r->text[0] ? r->text : "delivery ended without a reason");
	return out;
}

static void outbound_done(struct outbound_delivery *d)
{
	struct outbound_part *p = (struct outbound_part *)d;
	struct qmsg *m = p->m;
	struct qmgr *q = m->q;
	double delay = delay_since_arrival(m);

	for (size_t k = 0; k < d->msg.nrcpts; k++) {
		size_t i = p->index[k];
		const struct smtpc_reply *r = &d->msg.rcpts[k].reply;
		const char *result;
		char reply[SMTPC_TEXT_MAX];
		m->busy[i] = false;
		if (r->code >= 200 && r->code < 300) {
			m->want[i] = RCPT_DELIVERED;
			result = "sent";
			/* A server that offered DSN took our NOTIFY and reports the delivery. */
			owe_report(m, i, d->dsn ? 0 : BOUNCE_RELAYED);
			if (m->report[i] == BOUNCE_RELAYED)
				note_outcome(m, i, r->status[0] ? r->status : "2.0.0", d->relay_host,
					     reply_text(r, reply, sizeof reply), true);
		} else {
			bool remote = r->code != 0;
			const char *status = r->status[0] ? r->status : (r->temporary ? "4.0.0" : "5.0.0");
			/* The remote reply as the server wrote it, code first (the DSN's Diagnostic-Code). */
			note_set(m, i, status, remote ? d->relay_host : NULL,
				 reply_text(r, reply, sizeof reply), remote);
			if (r->temporary) {
				result = "deferred";
			} else {
				fail_rcpt(m, i);
				result = "bounced";
			}
		}
		if (strcmp(result, "sent") != 0)
			history_add(m, "to=<%s> relay=%s status=%s reply=%s",
				    m->env.rcpts[i].address, d->relay[0] ? d->relay : "none", result,
				    reply_text(r, reply, sizeof reply));
		log_info("qid=%s event=attempt to=<%s> relay=%s delay=%.3fs tls=%s status=%s "
			 "dsn=%s reply=%s",
			 m->id, LOG_ESC(m->env.rcpts[i].address), d->relay[0] ? LOG_ESC(d->relay) : "none",
			 delay, d->tls ? (d->tls_verified ? "verified" : "unverified") : "no", result,
			 r->status[0] ? r->status : "-", LOG_ESC(reply_text(r, reply, sizeof reply)));
	}
	outbound_part_free(p);
	after_part(q, m);
}

/* Open the queue file when a connection takes the delivery (not while it waits in line). */
static int outbound_open_message(struct outbound_delivery *d)
{
	struct outbound_part *p = (struct outbound_part *)d;
	d->msg.fd = openat(p->m->q->queue_fd, p->m->id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return d->msg.fd < 0 ? -errno : 0;
}

/* One delivery per destination for the remote recipients that are pending and idle. */
static void start_remote(struct qmgr *q, struct qmsg *m)
{
	size_t n = m->env.nrcpts;
	bool *taken = calloc(n ? n : 1, sizeof *taken);
	if (!taken) {
		note_not_attempted(m, RCPT_REMOTE, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct envelope_rcpt *r = &m->env.rcpts[i];
		if (taken[i] || r->kind != RCPT_REMOTE || !rcpt_pending(m, i) || m->busy[i])
			continue;
		char dest[DNS_NAME_MAX + 3], other[DNS_NAME_MAX + 3];
		if (!outbound_destination(r->address, dest, sizeof dest)) {
			note_set(m, i, "5.1.3", NULL, "bad destination address", false);
			fail_rcpt(m, i);
			continue;
		}
		struct outbound_part *p = calloc(1, sizeof *p);
		size_t cnt = 0;
		for (size_t k = i; k < n; k++) {
			const struct envelope_rcpt *rk = &m->env.rcpts[k];
			if (!taken[k] && rk->kind == RCPT_REMOTE && rcpt_pending(m, k) && !m->busy[k] &&
			    (q->cfg->relayhost ||
			     (outbound_destination(rk->address, other, sizeof other) &&
			      strcmp(other, dest) == 0)))
				cnt++;
		}
		if (p) {
			p->d.msg.fd = -1;
			p->index = calloc(cnt, sizeof *p->index);
			p->rcpts = calloc(cnt, sizeof *p->rcpts);
		}
		if (!p || !p->index || !p->rcpts) {
			log_err("qid=%s event=outbound_start_failed error=\"out of memory\"", m->id);
			if (p)
				outbound_part_free(p);
			note_not_attempted(m, RCPT_REMOTE, "out of memory");
			break;
		}
		size_t o = 0;
		for (size_t k = i; k < n && o < cnt; k++) {
			const struct envelope_rcpt *rk = &m->env.rcpts[k];
			if (taken[k] || rk->kind != RCPT_REMOTE || !rcpt_pending(m, k) || m->busy[k])
				continue;
			if (!q->cfg->relayhost &&
			    !(outbound_destination(rk->address, other, sizeof other) &&
			      strcmp(other, dest) == 0))
				continue;
			taken[k] = true;
			m->busy[k] = true;
			p->index[o] = k;
			p->rcpts[o] = (struct smtpc_rcpt){ .address = rk->address,
							   .notify = rk->notify,
							   .orcpt = rk->orcpt };
			o++;
		}
		p->m = m;
		p->next = q->parts;
		if (q->parts)
			q->parts->prev = p;
		q->parts = p;
		str_copy(p->d.dest, sizeof p->d.dest, dest);
		p->d.queue_id = m->id;
		p->d.msg.sender = m->env.sender;
		p->d.msg.rcpts = p->rcpts;
		p->d.msg.nrcpts = o;
		p->d.msg.envid = m->env.envid;
		p->d.msg.ret = m->env.ret;
		p->d.msg.body_8bit = m->env.body_8bit;
		p->d.msg.smtputf8 = m->env.smtputf8;
		p->d.msg.offset = m->env.msg_offset;
		p->d.msg.size = envelope_msg_total(&m->env);
		p->d.msg.pre_offset = m->env.pre_offset;
		p->d.msg.pre_size = m->env.pre_size;
		p->d.done = outbound_done;
		p->d.open_message = outbound_open_message;
		m->inflight++;
		outbound_submit(q->out, &p->d);
	}
	free(taken);
}

/* --- attempts ------------------------------------------------------------------------------- */

static void make_ready(struct qmgr *q, struct qmsg *m)
{
	m->next_ready = NULL;
	if (q->ready_tail)
		q->ready_tail->next_ready = m;
	else
		q->ready_head = m;
	q->ready_tail = m;
}

static void start_attempt(struct qmgr *q, struct qmsg *m)
{
	if (m->timer)
		evtimer_del(m->timer);
	m->state = QM_ACTIVE;
	m->attempts++;
	m->inflight++; /* held while the parts start, so that none finishes the attempt early */
	bool local = false;
	for (size_t i = 0; i < m->env.nrcpts; i++)
		local = local || (m->env.rcpts[i].kind == RCPT_LOCAL && rcpt_pending(m, i) &&
				  !m->busy[i]);
	if (local) {
		m->inflight++;
		make_ready(q, m);
	}
	if (q->out)
		start_remote(q, m);
	else
		note_not_attempted(m, RCPT_REMOTE, q->out_error);
	after_part(q, m);
	qmgr_pump(q);
}

static void start_local_job(struct qmgr *q, struct qmsg *m)
{
	struct qjob *j = qjob_new(m, JOB_LOCAL);
	if (j)
		j->results = malloc((m->env.nrcpts ? m->env.nrcpts : 1) * sizeof *j->results);
	if (!j || !j->results) {
		if (j)
			free(j);
		log_err("qid=%s event=out_of_memory", m->id);
		note_not_attempted(m, RCPT_LOCAL, "out of memory");
		after_part(q, m);
		return;
	}
	for (size_t i = 0; i < m->env.nrcpts; i++) {
		bool mine = m->env.rcpts[i].kind == RCPT_LOCAL && rcpt_pending(m, i) && !m->busy[i];
		j->results[i] = mine ? 0 : 1;
		if (mine)
			m->busy[i] = true;
	}
	q->active++;
	iopool_submit(q->pool, &j->job);
}

/* Start local deliveries while there are slots. */
static void qmgr_pump(struct qmgr *q)
{
	while (!q->stopping && q->ready_head && q->active < q->max_active) {
		struct qmsg *m = q->ready_head;
		q->ready_head = m->next_ready;
		if (!q->ready_head)
			q->ready_tail = NULL;
		m->next_ready = NULL;
		start_local_job(q, m);
	}
}

/* A queue file we do not know yet: read its envelope (off the loop). */
/* just_written: named by inotify, so most likely in the page cache (load_cached). */
static void discover(struct qmgr *q, const char *id, bool recovered, bool just_written)
{
	if (!queue_id_valid(id) || strmap_has(q->msgs, id))
		return;
	struct qmsg *m = calloc(1, sizeof *m);
	if (!m || strmap_put(q->msgs, id, m) < 0) {
		free(m);
		log_err("qid=%s event=out_of_memory", id);
		return;
	}
	memcpy(m->id, id, sizeof m->id);
	m->q = q;
	m->recovered = recovered;
	m->state = QM_LOADING;
	envelope_init(&m->env);
	log_debug("qid=%s event=discovered recovered=%s", id, recovered ? "yes" : "no");
	/* Found by a scan (start-up, rescans): perhaps thousands, and not in the cache. */
	if (!just_written || !load_cached(q, m))
		load_submit(q, m);
}

/*
 * A message a worker has just written is in the page cache, its directory
 * entry in the dentry cache: its envelope is read here, on the loop, when
 * neither the open (RESOLVE_CACHED) nor a read (RWF_NOWAIT) has to wait for
 * the disk, which saves a round trip through an I/O thread per message.
 * false: it would wait (or the kernel cannot tell), and the pool reads it.
 */
static bool load_cached(struct qmgr *q, struct qmsg *m)
{
	static bool unsupported;
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW,
		.resolve = RESOLVE_CACHED | RESOLVE_NO_SYMLINKS,
	};

	if (unsupported)
		return false;
	int fd = (int)syscall(SYS_openat2, q->queue_fd, m->id, &how, sizeof how);
	if (fd < 0) {
		if (errno == ENOSYS || errno == EINVAL || errno == E2BIG)
			unsupported = true; /* kernels before 5.12 */
		return false;           /* EAGAIN (not cached) or a real error: the pool's */
	}
	int r = queue_file_read_envelope_flags(fd, &m->env, RWF_NOWAIT);
	close(fd);
	if (r == -EWOULDBLOCK || r == -EOPNOTSUPP) {
		if (r == -EOPNOTSUPP)
			unsupported = true;
		envelope_free(&m->env);
		envelope_init(&m->env);
		return false;
	}
	load_done(q, m, r);
	return true;
}

/* Read m's envelope (again) on an I/O thread; load_done goes on. */
static void load_submit(struct qmgr *q, struct qmsg *m)
{
	struct qjob *j = qjob_new(m, JOB_LOAD);
	if (!j) {
		log_err("qid=%s event=out_of_memory action=retry retry_in=%us", m->id,
			RESCAN_INTERVAL_S);
		timer_in(q, m, RESCAN_INTERVAL_S);
		return;
	}
	iopool_submit(q->pool, &j->job);
}

static void rescan(struct qmgr *q, bool startup)
{
	DIR *d = dir_scan_open(q->queue_fd);
	if (!d) {
		log_err("event=rescan_failed error=\"%s\"", strerror(errno));
		return;
	}
	struct dirent *de;
	size_t n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue; /* queue/.<id>: not yet durable (queue_store.c) */
		discover(q, de->d_name, startup, false);
		n++;
	}
	closedir(d);
	if (startup)
		log_info("event=queue_scanned messages=%zu", n);
}

static void on_rescan(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rescan(arg, false);
}

static void on_free_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	free_recount(arg);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	(void)what;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)(void *)p;
			if (ev->mask & IN_Q_OVERFLOW) {
				log_warn("event=inotify_overflow action=rescan");
				rescan(q, false);
			} else if (ev->len > 0) {
				discover(q, ev->name, false, true);
			}
			p += sizeof *ev + ev->len;
		}
	}
	qmgr_pump(q);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct qmgr *q = arg;
	(void)what;
	if (q->stopping)
		return;
	q->stopping = true;
	log_info("event=stopping signal=%d active=%u", (int)sig, q->active);
	event_base_loopexit(q->base, NULL);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct qmgr *q = arg;
	(void)sig;
	(void)what;
	log_info("event=reload queued=%zu", strmap_count(q->msgs));
	smtpd_reload_maps(q->cfg, &q->users, &q->aliases);
	rescan(q, false);
	qmgr_pump(q);
}

/* --- queue control ------------------------------------------------------------------------- */

static int cmp_qmsg_id(const void *a, const void *b)
{
	return strcmp((*(struct qmsg *const *)a)->id, (*(struct qmsg *const *)b)->id);
}

/* Append m as `queue list` shows it; detail (`queue show`) adds its recent attempts. */
static void describe(const struct qmsg *m, struct buf *out, bool detail)
{
	size_t n = m->env.nrcpts;
	const char **errors = calloc(n ? n : 1, sizeof *errors);
	if (errors && m->notes)
		for (size_t i = 0; i < n; i++)
			errors[i] = m->notes[i] ? m->notes[i]->text : NULL;
	struct queue_list_extra x = {
		.errors = errors,
		.active = m->busy,
		.next_attempt = m->state == QM_WAITING ? m->next_attempt : 0,
		.attempts = m->attempts,
	};
	queue_list_format_message(out, &m->env, time(NULL), &x);
	free(errors);
	if (!detail || !m->history)
		return;
	unsigned shown = m->nhistory < HISTORY_MAX ? m->nhistory : HISTORY_MAX;
	buf_appendf(out, "history (last %u attempt%s):\n", shown, shown == 1 ? "" : "s");
	for (unsigned k = m->nhistory - shown; k < m->nhistory; k++) {
		const struct history_entry *h = &m->history[k % HISTORY_MAX];
		char when[32], text[sizeof h->text * 4];
		time_t t = (time_t)h->when;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
		buf_appendf(out, "  %s %s\n", when, str_display(text, sizeof text, h->text,
								 strlen(h->text)));
	}
}

static int ctl_handle(void *arg, const char *verb, const char *id, struct buf *out)
{
	struct qmgr *q = arg;
	struct qmsg *m = NULL;

	if (id && id[0]) {
		m = strmap_get(q->msgs, id);
		if (!m && strcmp(verb, "release") != 0) {
			buf_appendf(out, "no message %s in the queue\n", id);
			return -ENOENT;
		}
	}
	if (strcmp(verb, "list") == 0 || strcmp(verb, "show") == 0) {
		struct strmap_iter it;
		const char *key;
		void *val;
		size_t count = 0;
		uint64_t total = 0;
		struct qmsg **v = calloc(strmap_count(q->msgs) + 1, sizeof *v);
		if (!v)
			return -ENOMEM;
		strmap_iter_init(&it, q->msgs);
		while (strmap_iter_next(&it, &key, &val)) {
			struct qmsg *x = val;
			if (x->state != QM_LOADING && (!m || x == m))
				v[count++] = x;
		}
		/* Ids begin with their time: id order is arrival order. */
		qsort(v, count, sizeof *v, cmp_qmsg_id);
		queue_list_format_header(out);
		for (size_t i = 0; i < count; i++) {
			describe(v[i], out, m != NULL);
			total += envelope_msg_total(&v[i]->env);
		}
		queue_list_format_footer(out, count, total);
		free(v);
		return 0;
	}
	if (strcmp(verb, "flush") == 0) {
		struct strmap_iter it;
		const char *key;
		void *val;
		size_t n = 0;
		struct qmsg *batch[1024];
		strmap_iter_init(&it, q->msgs);
		while (strmap_iter_next(&it, &key, &val)) {
			struct qmsg *x = val;
			if ((!m || x == m) && x->state == QM_WAITING && n < 1024)
				batch[n++] = x;
		}
		for (size_t i = 0; i < n; i++)
			start_attempt(q, batch[i]);
		buf_appendf(out, "flushed %zu message%s\n", n, n == 1 ? "" : "s");
		log_info("event=flush messages=%zu by=administrator", n);
		return 0;
	}
	if (strcmp(verb, "release") == 0) {
		char src[64];
		snprintf(src, sizeof src, "../hold/%s", id);
		if (!queue_id_valid(id) || renameat(q->queue_fd, src, q->queue_fd, id) < 0) {
			buf_appendf(out, "no held message %s\n", id);
			return -ENOENT;
		}
		fsync(q->queue_fd);
		log_info("qid=%s event=released by=administrator", id);
		buf_appendf(out, "released %s\n", id);
		return 0;
	}
	if (!m) {
		buf_appendf(out, "a queue id is needed\n");
		return -EINVAL;
	}
	if (strcmp(verb, "delete") == 0)
		m->delete_req = true;
	else if (strcmp(verb, "hold") == 0)
		m->hold_req = true;
	else if (strcmp(verb, "bounce") == 0)
		m->bounce_req = true;
	else {
		buf_appendf(out, "unknown command\n");
		return -EINVAL;
	}
	buf_appendf(out, "%s %s%s\n", verb, id,
		    m->state == QM_ACTIVE ? " (when the delivery in progress ends)" : "");
	if (m->state == QM_WAITING)
		after_attempt(q, m);
	return 0;
}

/* --- start-up ------------------------------------------------------------------------------ */

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

int qmgr_main(const struct config *cfg, struct userdb *users, struct aliasdb *aliases,
	      const struct relay_auth *auth)
{
	struct qmgr q;
	char path[PATH_MAX], err[256];

	memset(&q, 0, sizeof q);
	q.cfg = cfg;
	q.users = users;
	q.aliases = aliases;
	log_set_role("qmgr");
	queue_id_init(&q.ids, 0);
	q.base = event_base_new();
	q.msgs = strmap_new();
	q.pool = iopool_new(q.base, cfg->io_threads);
	if (!q.base || !q.msgs || !q.pool)
		fatal("event=startup_failed error=\"out of memory\"");
	q.max_active = cfg->io_threads * ACTIVE_PER_THREAD;
	q.spool_fd = open(cfg->spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof path, "%s/queue", cfg->spool);
	q.queue_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q.queue_fd < 0 || q.spool_fd < 0)
		fatal("event=startup_failed dir=%s error=\"%s\"", LOG_ESC(path), strerror(errno));
	snprintf(path, sizeof path, "%s/free", cfg->spool);
	q.free_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* optional: no reuse */
	free_recount(&q);
	snprintf(path, sizeof path, "%s/queue", cfg->spool);

	q.out = outbound_new(q.base, cfg, auth ? auth->user : NULL, auth ? auth->pass : NULL, err,
			     sizeof err);
	if (!q.out) {
		log_err("event=outbound_unavailable error=%s", LOG_ESC(err));
		str_format(q.out_error, sizeof q.out_error, "remote delivery unavailable: %s", err);
	}

	/* Watch before scanning, so a file renamed in between is seen by one or the other. */
	q.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (q.inotify_fd < 0 || inotify_add_watch(q.inotify_fd, path, IN_MOVED_TO) < 0)
		fatal("event=startup_failed error=\"inotify: %s\"", strerror(errno));
	q.ev_inotify = event_new(q.base, q.inotify_fd, EV_READ | EV_PERSIST, on_inotify, &q);
	q.ev_rescan = event_new(q.base, -1, EV_PERSIST, on_rescan, &q);
	q.ev_free = event_new(q.base, -1, EV_PERSIST, on_free_timer, &q);
	q.ev_term = evsignal_new(q.base, SIGTERM, on_stop, &q);
	q.ev_int = evsignal_new(q.base, SIGINT, on_stop, &q);
	q.ev_hup = evsignal_new(q.base, SIGHUP, on_hup, &q);
	if (!q.ev_inotify || !q.ev_rescan || !q.ev_free || !q.ev_term || !q.ev_int || !q.ev_hup)
		fatal("event=startup_failed error=\"out of memory\"");
	struct timeval tv = { RESCAN_INTERVAL_S, 0 };
	event_add(q.ev_inotify, NULL);
	event_add(q.ev_rescan, &tv);
	struct timeval second = { 1, 0 };
	event_add(q.ev_free, &second);
	evsignal_add(q.ev_term, NULL);
	evsignal_add(q.ev_int, NULL);
	evsignal_add(q.ev_hup, NULL);
	q.ctl = queue_control_new(q.base, cfg->spool, ctl_handle, &q);
	if (!q.ctl)
		log_err("event=control_socket_failed error=\"%s\"", strerror(errno));

	log_info("event=started");
	rescan(&q, true);
	qmgr_pump(&q);
	event_base_dispatch(q.base);

	/* Deliveries in flight complete (their done callbacks see stopping). */
	queue_control_free(q.ctl);
	outbound_free(q.out);
	q.out = NULL;
	while (q.parts)
		outbound_part_free(q.parts);
	iopool_free(q.pool);
	event_free(q.ev_inotify);
	event_free(q.ev_rescan);
	event_free(q.ev_free);
	event_free(q.ev_term);
	event_free(q.ev_int);
	event_free(q.ev_hup);
	close(q.inotify_fd);
	close(q.queue_fd);
	if (q.free_fd >= 0)
		close(q.free_fd);
	close(q.spool_fd);
	strmap_free(q.msgs, qmsg_free);
	userdb_free(q.users);
	aliasdb_free(q.aliases);
	/* Connections still saying QUIT finish (their own timeouts bound it; so does ours),
	 * so that nothing is left allocated. Our deadline timer is the one event that stays. */
	bool expired = false;
	struct event *deadline = evtimer_new(q.base, on_drain_deadline, &expired);
	struct timeval drain = { 6, 0 };
	if (deadline && evtimer_add(deadline, &drain) == 0)
		while (!expired && event_base_get_num_events(q.base, EVENT_BASE_COUNT_ADDED) > 1)
			event_base_loop(q.base, EVLOOP_ONCE);
	if (deadline)
		event_free(deadline);
	event_base_free(q.base);
	log_info("event=stopped");
	return 0;
}
