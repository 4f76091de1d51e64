/*
 * queue_manager: schedules and runs local deliveries. See queue_manager.h.
 *
 * A message goes through these states in memory:
 *   LOADING   its envelope is being read (an I/O job)
 *   READY     waiting for a delivery slot (FIFO)
 *   ACTIVE    a delivery job runs
 *   DEFERRED  a local delivery failed temporarily; a timer brings it back
 *   WAITING   only remote recipients are left (outbound delivery's job)
 *
 * Crash states of a delivery (per message, all recipients in one job):
 *   1. Maildir file in tmp/                -> tmp/ leftover, delivered again
 *   2. renamed into new/, new/ fsync'd     -> queue still says pending;
 *                                            recovery finds the file by its
 *                                            deterministic name: no duplicate
 *   3. status bytes 'D' written and synced -> done
 *   4. all done: queue file unlinked, queue/ fsync'd
 * Messages found at start-up are "recovered" and checked as in state 2.
 */
#include "queue/queue_manager.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deliver/maildir.h"
#include "queue/queue_file.h"
#include "util/iopool.h"
#include "util/log.h"
#include "util/strmap.h"

/* A full rescan of queue/ catches anything a lost notification missed. */
#define RESCAN_INTERVAL_S 300
/* Delays between attempts after a temporary local failure. */
static const unsigned retry_delays[] = { 60, 300, 900, 1800, 3600, 7200, 14400 };
/* Deliveries in flight per I/O thread. */
#define ACTIVE_PER_THREAD 4

enum qmsg_state {
	QM_LOADING,
	QM_READY,
	QM_ACTIVE,
	QM_DEFERRED,
	QM_WAITING,
};

struct qmgr;

struct qmsg {
	char id[QUEUE_ID_LEN + 1];
	enum qmsg_state state;
	struct envelope env;
	bool recovered;   /* found at start-up: deliveries may already be on disk */
	bool gone;        /* the file disappeared (removed by hand, or corrupt) */
	unsigned attempts;
	struct event *timer;
	struct qmsg *next_ready;
	struct qmgr *q;
};

struct qjob {
	struct iojob job; /* first */
	struct qmsg *m;
	int fd;
	bool load;       /* reading the envelope, not delivering */
	bool all_done;   /* write step: no recipient left, the commit step removes the file */
	bool unlinked;
	int *results;    /* per recipient: 1 not attempted, 0 delivered, <0 error */
};

struct qmgr {
	struct event_base *base;
	const struct config *cfg;
	struct iopool *pool;
	int queue_fd;
	int inotify_fd;
	struct event *ev_inotify;
	struct event *ev_rescan;
	struct event *ev_term, *ev_int, *ev_hup;
	struct strmap *msgs;
	struct qmsg *ready_head, *ready_tail;
	unsigned active;
	unsigned max_active;
	bool stopping;
	bool scanning_startup;
};

static void qmgr_pump(struct qmgr *q);

static void qmsg_free(void *p)
{
	struct qmsg *m = p;
	if (m->timer)
		event_free(m->timer);
	envelope_free(&m->env);
	free(m);
}

static void qmsg_forget(struct qmgr *q, struct qmsg *m)
{
	strmap_del(q->msgs, m->id, NULL);
	qmsg_free(m);
}

static void make_ready(struct qmgr *q, struct qmsg *m)
{
	m->state = QM_READY;
	m->next_ready = NULL;
	if (q->ready_tail)
		q->ready_tail->next_ready = m;
	else
		q->ready_head = m;
	q->ready_tail = m;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct qmsg *m = arg;
	(void)fd;
	(void)what;
	if (m->state != QM_DEFERRED)
		return;
	make_ready(m->q, m);
	qmgr_pump(m->q);
}

static void defer(struct qmgr *q, struct qmsg *m)
{
	size_t n = sizeof retry_delays / sizeof retry_delays[0];
	unsigned delay = retry_delays[m->attempts - 1 < n ? m->attempts - 1 : n - 1];
	if (!m->timer)
		m->timer = evtimer_new(q->base, on_retry, m);
	m->state = QM_DEFERRED;
	if (m->timer) {
		struct timeval tv = { (time_t)delay, 0 };
		evtimer_add(m->timer, &tv);
	}
	log_info("qid=%s event=deferred attempts=%u retry_in=%us", m->id, m->attempts, delay);
}

/* Decide what a loaded (or just delivered) message needs next. */
static void schedule(struct qmgr *q, struct qmsg *m)
{
	if (envelope_pending(&m->env, RCPT_LOCAL) > 0) {
		make_ready(q, m);
	} else {
		m->state = QM_WAITING;
		log_debug("qid=%s event=waiting remote=%zu", m->id,
			  envelope_pending(&m->env, RCPT_REMOTE));
	}
}

/* --- I/O thread side ------------------------------------------------------ */

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

static int qjob_write(struct iojob *job)
{
	struct qjob *j = (struct qjob *)job;
	struct qmsg *m = j->m;
	struct qmgr *q = m->q;
	const struct config *cfg = q->cfg;

	if (j->load)
		return qjob_load(j, q);

	j->fd = openat(q->queue_fd, m->id, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
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
		.size = m->env.msg_size,
	};
	size_t delivered = 0;
	for (size_t i = 0; i < m->env.nrcpts; i++) {
		const struct envelope_rcpt *r = &m->env.rcpts[i];
		if (r->status != RCPT_PENDING || r->kind != RCPT_LOCAL)
			continue;
		j->results[i] = maildir_deliver(&mm, r->address, (unsigned)i, m->recovered);
		if (j->results[i] == 0)
			delivered++;
	}
	if (delivered == 0)
		return 0;
	/* Everything done: the commit step removes the file. Else record progress. */
	j->all_done = true;
	for (size_t i = 0; i < m->env.nrcpts; i++)
		if (m->env.rcpts[i].status == RCPT_PENDING && j->results[i] != 0)
			j->all_done = false;
	if (j->all_done)
		return 0;
	for (size_t i = 0; i < m->env.nrcpts; i++) {
		if (j->results[i] != 0)
			continue;
		int r = queue_file_set_status(j->fd, &m->env.rcpts[i], RCPT_DELIVERED);
		if (r < 0)
			return r; /* the Maildir copies stay; recovery will not duplicate them */
	}
	job->sync_fd = j->fd;
	return 0;
}

static int qjob_commit(struct iojob *job)
{
	struct qjob *j = (struct qjob *)job;
	struct qmsg *m = j->m;

	if (j->load)
		return 0;
	close(j->fd);
	j->fd = -1;
	if (!j->all_done)
		return 0;
	if (unlinkat(m->q->queue_fd, m->id, 0) < 0)
		return -errno;
	j->unlinked = true;
	job->sync_dir = m->q->queue_fd;
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

static void load_done(struct qjob *j)
{
	struct qmsg *m = j->m;
	struct qmgr *q = m->q;
	int r = j->job.result;

	if (r == -ENOENT) {
		/* Delivered and removed by another path, or deleted by hand. */
		qmsg_forget(q, m);
		return;
	}
	if (r < 0) {
		log_err("qid=%s event=queue_file_unreadable error=\"%s\" action=%s", m->id,
			r == -EINVAL ? "malformed queue file" : strerror(-r),
			r == -EINVAL ? "moved_to_corrupt" : "retry");
		if (r == -EINVAL) {
			move_to_corrupt(q, m->id);
			qmsg_forget(q, m);
		} else {
			m->attempts++;
			defer(q, m);
		}
		return;
	}
	log_debug("qid=%s event=loaded nrcpt=%zu recovered=%s", m->id, m->env.nrcpts,
		  m->recovered ? "yes" : "no");
	schedule(q, m);
}

static void deliver_done(struct qjob *j)
{
	struct qmsg *m = j->m;
	struct qmgr *q = m->q;
	struct timespec now;
	int jr = j->job.result;
	bool failed = false;

	clock_gettime(CLOCK_REALTIME, &now);
	double delay = (double)(now.tv_sec - m->env.arrival_sec) +
		       (double)(now.tv_nsec / 1000 - m->env.arrival_usec) / 1e6;
	if (jr == -ENOENT && !j->unlinked) {
		log_warn("qid=%s event=vanished", m->id);
		qmsg_forget(q, m);
		return;
	}
	for (size_t i = 0; i < m->env.nrcpts; i++) {
		struct envelope_rcpt *r = &m->env.rcpts[i];
		if (j->results[i] == 1)
			continue;
		if (j->results[i] == 0 && jr == 0) {
			r->status = RCPT_DELIVERED;
			const char *at = strrchr(r->address, '@');
			log_info("qid=%s event=delivered to=<%s> mailbox=%s/%s/%.*s delay=%.3fs", m->id,
				 LOG_ESC(r->address), LOG_ESC(q->cfg->maildir_root), LOG_ESC(at + 1),
				 (int)(at - r->address), r->address, delay);
		} else {
			int err = j->results[i] < 0 ? j->results[i] : jr;
			failed = true;
			log_warn("qid=%s event=delivery_failed to=<%s> error=\"%s\"", m->id,
				 LOG_ESC(r->address), strerror(-err));
		}
	}
	if (j->unlinked && jr == 0) {
		log_info("qid=%s event=removed reason=done", m->id);
		qmsg_forget(q, m);
		return;
	}
	m->recovered = m->recovered || jr < 0;
	if (failed || jr < 0) {
		m->attempts++;
		defer(q, m);
	} else {
		schedule(q, m);
	}
}

static void qjob_done(struct iojob *job)
{
	struct qjob *j = (struct qjob *)job;
	struct qmgr *q = j->m->q;

	q->active--;
	if (j->fd >= 0)
		close(j->fd);
	if (j->load)
		load_done(j);
	else
		deliver_done(j);
	free(j->results);
	free(j);
	qmgr_pump(q);
}

static void start_job(struct qmgr *q, struct qmsg *m, bool load)
{
	struct qjob *j = calloc(1, sizeof *j);
	if (j && !load) {
		j->results = malloc(m->env.nrcpts * sizeof *j->results);
		if (!j->results) {
			free(j);
			j = NULL;
		} else {
			for (size_t i = 0; i < m->env.nrcpts; i++)
				j->results[i] = 1;
		}
	}
	if (!j) {
		log_err("qid=%s event=out_of_memory", m->id);
		m->attempts++;
		defer(q, m);
		return;
	}
	j->m = m;
	j->fd = -1;
	j->load = load;
	m->state = load ? QM_LOADING : QM_ACTIVE;
	iojob_init(&j->job, qjob_write, qjob_commit, qjob_done);
	q->active++;
	iopool_submit(q->pool, &j->job);
}

/* Start deliveries while there are slots. */
static void qmgr_pump(struct qmgr *q)
{
	while (!q->stopping && q->ready_head && q->active < q->max_active) {
		struct qmsg *m = q->ready_head;
		q->ready_head = m->next_ready;
		if (!q->ready_head)
			q->ready_tail = NULL;
		m->next_ready = NULL;
		start_job(q, m, false);
	}
}

/* A queue file we do not know yet: read its envelope (off the loop). */
static void discover(struct qmgr *q, const char *id, bool recovered)
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
	envelope_init(&m->env);
	log_debug("qid=%s event=discovered recovered=%s", id, recovered ? "yes" : "no");
	start_job(q, m, true);
}

static void rescan(struct qmgr *q, bool startup)
{
	int fd = dup(q->queue_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		log_err("event=rescan_failed error=\"%s\"", strerror(errno));
		return;
	}
	rewinddir(d);
	struct dirent *de;
	size_t n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		discover(q, de->d_name, startup);
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
				discover(q, ev->name, false);
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
	rescan(q, false);
	qmgr_pump(q);
}

int qmgr_main(const struct config *cfg)
{
	struct qmgr q;
	char path[PATH_MAX];

	memset(&q, 0, sizeof q);
	q.cfg = cfg;
	log_set_role("qmgr");
	q.base = event_base_new();
	q.msgs = strmap_new();
	q.pool = iopool_new(q.base, cfg->io_threads);
	if (!q.base || !q.msgs || !q.pool)
		fatal("event=startup_failed error=\"out of memory\"");
	q.max_active = cfg->io_threads * ACTIVE_PER_THREAD;
	snprintf(path, sizeof path, "%s/queue", cfg->spool);
	q.queue_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q.queue_fd < 0)
		fatal("event=startup_failed dir=%s error=\"%s\"", LOG_ESC(path), strerror(errno));
	/* Watch before scanning, so a file renamed in between is seen by one or the other. */
	q.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (q.inotify_fd < 0 || inotify_add_watch(q.inotify_fd, path, IN_MOVED_TO) < 0)
		fatal("event=startup_failed error=\"inotify: %s\"", strerror(errno));
	q.ev_inotify = event_new(q.base, q.inotify_fd, EV_READ | EV_PERSIST, on_inotify, &q);
	q.ev_rescan = event_new(q.base, -1, EV_PERSIST, on_rescan, &q);
	q.ev_term = evsignal_new(q.base, SIGTERM, on_stop, &q);
	q.ev_int = evsignal_new(q.base, SIGINT, on_stop, &q);
	q.ev_hup = evsignal_new(q.base, SIGHUP, on_hup, &q);
	if (!q.ev_inotify || !q.ev_rescan || !q.ev_term || !q.ev_int || !q.ev_hup)
		fatal("event=startup_failed error=\"out of memory\"");
	struct timeval tv = { RESCAN_INTERVAL_S, 0 };
	event_add(q.ev_inotify, NULL);
	event_add(q.ev_rescan, &tv);
	evsignal_add(q.ev_term, NULL);
	evsignal_add(q.ev_int, NULL);
	evsignal_add(q.ev_hup, NULL);

	log_info("event=started");
	rescan(&q, true);
	qmgr_pump(&q);
	event_base_dispatch(q.base);

	/* Deliveries in flight complete (their done callbacks see stopping). */
	iopool_free(q.pool);
	event_free(q.ev_inotify);
	event_free(q.ev_rescan);
	event_free(q.ev_term);
	event_free(q.ev_int);
	event_free(q.ev_hup);
	close(q.inotify_fd);
	close(q.queue_fd);
	strmap_free(q.msgs, qmsg_free);
	event_base_free(q.base);
	log_info("event=stopped");
	return 0;
}
