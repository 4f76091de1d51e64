/*
 * Unit tests of the I/O pool's urgent queue (util/iopool.c): an urgent job
 * never waits behind ordinary ones, neither for a free thread nor in the
 * queue, and the steps and completions of every job still run as before.
 *
 * Jobs whose write step blocks on a gate stand for long local deliveries;
 * the test opens the gates one at a time and watches the order in which the
 * done callbacks run on the loop.
 */
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/iopool.h"
#include "unit.h"

/* A write step that waits until the test opens its gate. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int started; /* write steps waiting behind it */
	bool open;
};

struct tjob {
	struct iojob job; /* first */
	struct gate *gate; /* NULL: the write step returns at once */
	int result;        /* what the write step returns */
	bool committed;
	int done_seq;      /* 1, 2, ... in the order done() ran; 0: not yet */
};

static int done_counter;

static void gate_init(struct gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->started = 0;
	g->open = false;
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* Wait (at most 10 s) until n write steps wait behind g at once. */
static bool gate_wait_n(struct gate *g, int n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&g->lock);
	while (g->started < n && pthread_cond_timedwait(&g->cond, &g->lock, &until) == 0)
		;
	bool started = g->started >= n;
	pthread_mutex_unlock(&g->lock);
	return started;
}

static bool gate_wait_started(struct gate *g)
{
	return gate_wait_n(g, 1);
}

static int tjob_write(struct iojob *job)
{
	struct tjob *t = (struct tjob *)job;
	if (t->gate) {
		pthread_mutex_lock(&t->gate->lock);
		t->gate->started++;
		pthread_cond_broadcast(&t->gate->cond);
		while (!t->gate->open)
			pthread_cond_wait(&t->gate->cond, &t->gate->lock);
		pthread_mutex_unlock(&t->gate->lock);
	}
	return t->result;
}

static int tjob_commit(struct iojob *job)
{
	((struct tjob *)job)->committed = true;
	return 0;
}

static void tjob_done(struct iojob *job)
{
	((struct tjob *)job)->done_seq = ++done_counter;
}

static void tjob_init(struct tjob *t, struct gate *gate, int result)
{
	t->gate = gate;
	t->result = result;
	t->committed = false;
	t->done_seq = 0;
	iojob_init(&t->job, tjob_write, tjob_commit, tjob_done);
}

/* Run the loop until *seq is set (at most 10 s). */
static bool loop_until_done(struct event_base *base, const int *seq)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (*seq == 0) {
		struct timeval tick = { 0, 10000 };
		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 10)
			return false;
	}
	return true;
}

TEST(urgent_job_does_not_wait_for_a_busy_thread)
{
	struct event_base *base = event_base_new();
	struct iopool *pool = iopool_new(base, 1);
	struct gate g;
	struct tjob slow, queued[4], urgent;
	done_counter = 0;
	gate_init(&g);

	/* The only ordinary thread is busy; four more ordinary jobs wait behind it. */
	tjob_init(&slow, &g, 0);
	iopool_submit(pool, &slow.job);
	CHECK(gate_wait_started(&g));
	for (int i = 0; i < 4; i++) {
		tjob_init(&queued[i], NULL, 0);
		iopool_submit(pool, &queued[i].job);
	}
	tjob_init(&urgent, NULL, 0);
	iopool_submit_urgent(pool, &urgent.job);
	CHECK(loop_until_done(base, &urgent.done_seq));
	CHECK_INT(urgent.done_seq, 1);
	CHECK(urgent.committed);
	CHECK_INT(slow.done_seq, 0);
	CHECK_INT(iopool_pending(pool), 5);

	gate_open(&g);
	CHECK(loop_until_done(base, &queued[3].done_seq));
	CHECK_INT(slow.done_seq, 2);
	for (int i = 0; i < 4; i++)
		CHECK_INT(queued[i].done_seq, 3 + i);
	CHECK_INT(iopool_pending(pool), 0);
	iopool_free(pool);
	event_base_free(base);
}

TEST(urgent_job_goes_before_queued_ordinary_ones)
{
	struct event_base *base = event_base_new();
	struct iopool *pool = iopool_new(base, 1);
	struct gate g_ord, g_urg;
	struct tjob slow, hold_urgent, ordinary, urgent;
	done_counter = 0;
	gate_init(&g_ord);
	gate_init(&g_urg);

	/* Both threads busy: the ordinary one with slow, the urgent one with hold_urgent. */
	tjob_init(&slow, &g_ord, 0);
	iopool_submit(pool, &slow.job);
	CHECK(gate_wait_started(&g_ord));
	tjob_init(&hold_urgent, &g_urg, 0);
	iopool_submit_urgent(pool, &hold_urgent.job);
	CHECK(gate_wait_started(&g_urg));
	/* Queued in this order; the ordinary thread, once free, takes the urgent one first. */
	tjob_init(&ordinary, NULL, 0);
	iopool_submit(pool, &ordinary.job);
	tjob_init(&urgent, NULL, 0);
	iopool_submit_urgent(pool, &urgent.job);

	gate_open(&g_ord);
	CHECK(loop_until_done(base, &ordinary.done_seq));
	CHECK_INT(slow.done_seq, 1);
	CHECK_INT(urgent.done_seq, 2);
	CHECK_INT(ordinary.done_seq, 3);
	CHECK_INT(hold_urgent.done_seq, 0);

	gate_open(&g_urg);
	CHECK(loop_until_done(base, &hold_urgent.done_seq));
	CHECK_INT(hold_urgent.done_seq, 4);
	iopool_free(pool);
	event_base_free(base);
}

TEST(failed_write_skips_commit_in_both_queues)
{
	struct event_base *base = event_base_new();
	struct iopool *pool = iopool_new(base, 2);
	struct tjob a, b, c;
	done_counter = 0;

	tjob_init(&a, NULL, -5);
	tjob_init(&b, NULL, 0);
	tjob_init(&c, NULL, -7);
	iopool_submit(pool, &a.job);
	iopool_submit_urgent(pool, &b.job);
	iopool_submit_urgent(pool, &c.job);
	/* iopool_free runs every outstanding job to completion, done callbacks included. */
	iopool_free(pool);
	CHECK(a.done_seq > 0 && b.done_seq > 0 && c.done_seq > 0);
	CHECK_INT(a.job.result, -5);
	CHECK(!a.committed);
	CHECK_INT(b.job.result, 0);
	CHECK(b.committed);
	CHECK_INT(c.job.result, -7);
	CHECK(!c.committed);
	event_base_free(base);
}

TEST(urgent_jobs_queued_during_an_urgent_batch_go_to_another_thread)
{
	struct event_base *base = event_base_new();
	struct iopool *pool = iopool_new(base, 2);
	struct gate g;
	struct tjob slow, burst[8];
	done_counter = 0;
	gate_init(&g);

	/* A thread takes every queued job as its batch; what comes while that batch runs is
	 * the next idle thread's, not left behind it. */
	tjob_init(&slow, &g, 0);
	iopool_submit_urgent(pool, &slow.job);
	CHECK(gate_wait_started(&g));
	for (int i = 0; i < 8; i++) {
		tjob_init(&burst[i], NULL, 0);
		iopool_submit_urgent(pool, &burst[i].job);
	}
	for (int i = 0; i < 8; i++)
		CHECK(loop_until_done(base, &burst[i].done_seq));
	CHECK_INT(slow.done_seq, 0);
	gate_open(&g);
	CHECK(loop_until_done(base, &slow.done_seq));
	CHECK_INT(slow.done_seq, 9);
	iopool_free(pool);
	event_base_free(base);
}


/*
 * Group commit (iopool_submit): while an ordinary thread is in its batch's
 * syncs, a new job waits for that thread instead of waking another; a thread
 * busy with a job that syncs nothing (a password check) holds nothing back.
 */
struct sjob {
	struct iojob job; /* first */
	int fd;            /* >= 0: the write step asks for its fdatasync */
	struct gate *publish_gate; /* NULL: the publish step returns at once */
	struct gate *write_gate;   /* NULL: the write step returns at once */
	pthread_t thread;  /* the thread of the write step */
	bool wrote;
	int done_seq;
};

static int sjob_write(struct iojob *job)
{
	struct sjob *t = (struct sjob *)job;
	t->thread = pthread_self();
	__atomic_store_n(&t->wrote, true, __ATOMIC_SEQ_CST);
	if (t->write_gate) {
		struct tjob gated = { .gate = t->write_gate };
		tjob_write(&gated.job);
	}
	job->sync_fd = t->fd;
	return 0;
}

static int sjob_publish(struct iojob *job)
{
	struct sjob *t = (struct sjob *)job;
	if (t->publish_gate) {
		struct tjob gated = { .gate = t->publish_gate };
		tjob_write(&gated.job);
	}
	return 0;
}

static void sjob_done(struct iojob *job)
{
	((struct sjob *)job)->done_seq = ++done_counter;
}

static void sjob_init(struct sjob *t, int fd, struct gate *write_gate, struct gate *publish_gate)
{
	memset(t, 0, sizeof *t);
	t->fd = fd;
	t->write_gate = write_gate;
	t->publish_gate = publish_gate;
	iojob_init(&t->job, sjob_write, NULL, sjob_done);
	t->job.publish = sjob_publish;
}

static bool sjob_wrote(struct sjob *t)
{
	return __atomic_load_n(&t->wrote, __ATOMIC_SEQ_CST);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

TEST(a_job_queued_during_a_batchs_syncs_waits_for_that_thread)
{
	struct event_base *base = event_base_new();
	struct iopool *pool = iopool_new(base, 4);
	char path[] = "/tmp/carteiro-iopool-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK_INT(write(fd, "x", 1), 1);
	struct gate g;
	struct sjob first, next;
	done_counter = 0;
	gate_init(&g);
	/* Every thread waiting first (4 ordinary, 4 urgent): one still starting would look at
	 * the queue when it gets there, woken or not, and could find 'next' (seen under load). */
	for (int i = 0; i < 500 && iopool_idle_threads(pool) < 8; i++)
		sleep_ms(10);
	CHECK_INT(iopool_idle_threads(pool), 8);

	/* The first job's batch synced its file and is held in its publish step. */
	sjob_init(&first, fd, NULL, &g);
	iopool_submit(pool, &first.job);
	CHECK(gate_wait_started(&g));
	sjob_init(&next, -1, NULL, NULL);
	iopool_submit(pool, &next.job);
	/* Three threads are idle, but none is woken for it. */
	sleep_ms(100);
	CHECK(!sjob_wrote(&next));
	gate_open(&g);
	CHECK(loop_until_done(base, &next.done_seq));
	CHECK_INT(first.done_seq, 1);
	CHECK_INT(next.done_seq, 2);
	CHECK(pthread_equal(next.thread, first.thread));
	CHECK_INT(iopool_pending(pool), 0);
	iopool_free(pool);
	event_base_free(base);
	close(fd);
	unlink(path);
}

TEST(a_thread_busy_with_a_job_that_syncs_nothing_holds_nothing_back)
{
	struct event_base *base = event_base_new();
	struct iopool *pool = iopool_new(base, 2);
	struct gate g;
	struct sjob check, next;
	done_counter = 0;
	gate_init(&g);

	sjob_init(&check, -1, &g, NULL); /* a password check, say */
	iopool_submit(pool, &check.job);
	CHECK(gate_wait_started(&g));
	sjob_init(&next, -1, NULL, NULL);
	iopool_submit(pool, &next.job);
	CHECK(loop_until_done(base, &next.done_seq));
	CHECK_INT(next.done_seq, 1);
	CHECK(!pthread_equal(next.thread, check.thread));
	gate_open(&g);
	CHECK(loop_until_done(base, &check.done_seq));
	CHECK_INT(iopool_pending(pool), 0);
	iopool_free(pool);
	event_base_free(base);
}

TEST(an_urgent_job_goes_to_an_ordinary_thread_when_the_urgent_one_is_busy)
{
	struct event_base *base = event_base_new();
	struct iopool *pool = iopool_new(base, 1); /* one ordinary thread, one urgent */
	struct gate g;
	struct tjob slow, next;
	done_counter = 0;
	gate_init(&g);

	/* Only an idle urgent thread is woken for an urgent job; with none idle, the
	 * ordinary thread must be. */
	tjob_init(&slow, &g, 0);
	iopool_submit_urgent(pool, &slow.job);
	CHECK(gate_wait_started(&g));
	tjob_init(&next, NULL, 0);
	iopool_submit_urgent(pool, &next.job);
	CHECK(loop_until_done(base, &next.done_seq));
	CHECK_INT(next.done_seq, 1);
	CHECK_INT(slow.done_seq, 0);
	gate_open(&g);
	CHECK(loop_until_done(base, &slow.done_seq));
	CHECK_INT(iopool_pending(pool), 0);
	iopool_free(pool);
	event_base_free(base);
}

UNIT_MAIN()
