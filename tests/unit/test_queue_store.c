/*
 * Unit tests of the durable intake (queue_store) and the I/O pool under it:
 * commit, abort, large streamed messages, write errors, group commit.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/queue_store.h"
#include "util/iopool.h"
#include "util/fileio.h"
#include "unit.h"

struct fixture {
	char dir[64];
	struct event_base *base;
	struct iopool *pool;
	struct queue_store qs;
};

static void setup(struct fixture *f)
{
	strcpy(f->dir, "/tmp/carteiro-qs-XXXXXX");
	if (!mkdtemp(f->dir))
		abort();
	if (queue_spool_prepare(f->dir, -1, -1) != 0)
		abort();
	f->base = event_base_new();
	f->pool = iopool_new(f->base, 2);
	if (queue_store_open(&f->qs, f->dir, f->pool, 5) != 0)
		abort();
}

static int count_files(const struct fixture *f, const char *sub)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", f->dir, sub);
	DIR *d = opendir(path);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	return n;
}

static void teardown(struct fixture *f)
{
	iopool_free(f->pool);
	queue_store_close(&f->qs);
	event_base_free(f->base);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", f->dir);
}

static void make_env(struct envelope *env)
{
	envelope_init(env);
	envelope_set(&env->sender, "a@example.org");
	envelope_add_rcpt(env, RCPT_LOCAL, "demo@example.test", NULL, 0, NULL);
}

struct result {
	int calls;
	int result;
	char id[QUEUE_ID_LEN + 1];
};

static void on_done(void *arg, int result, const char *id)
{
	struct result *r = arg;
	r->calls++;
	r->result = result;
	snprintf(r->id, sizeof r->id, "%s", id);
}

static void run_until(struct fixture *f, const int *flag, int value)
{
	for (int i = 0; i < 5000 && *flag < value; i++)
		event_base_loop(f->base, EVLOOP_ONCE);
}

TEST(commit_makes_a_complete_queue_file)
{
	struct fixture f;
	struct envelope env, got;
	struct result res = { 0 };

	setup(&f);
	make_env(&env);
	struct queue_txn *txn = queue_txn_begin(&f.qs, &env, NULL, NULL);
	CHECK(txn != NULL);
	CHECK(queue_id_valid(env.id));
	CHECK_INT(queue_id_slot(env.id), 5);
	CHECK_INT(queue_txn_write(txn, "Subject: a\r\n\r\nhi\r\n", 18), 0);
	CHECK_INT(queue_txn_size(txn), 18);
	queue_txn_commit(txn, on_done, &res);
	CHECK_INT(res.calls, 0); /* never before the I/O is done */
	run_until(&f, &res.calls, 1);
	CHECK_INT(res.calls, 1);
	CHECK_INT(res.result, 0);
	CHECK_STR(res.id, env.id);
	CHECK_INT(count_files(&f, "incoming"), 0);
	CHECK_INT(count_files(&f, "queue"), 1);

	char path[128];
	snprintf(path, sizeof path, "%s/queue/%s", f.dir, env.id);
	int fd = open(path, O_RDONLY);
	envelope_init(&got);
	CHECK_INT(queue_file_read_envelope(fd, &got), 0);
	CHECK_INT(got.msg_size, 18);
	CHECK_STR(got.sender, "a@example.org");
	close(fd);
	envelope_free(&got);
	envelope_free(&env);
	CHECK_INT(f.qs.open_txns, 0);
	teardown(&f);
}

/* Header lines added after the message (J record) are read back before it. */
TEST(prepend_headers_read_first)
{
	struct fixture f;
	struct envelope env, got;
	struct result res = { 0 };
	static const char a[] = "Authentication-Results: mx.example.test; spf=pass\r\n";
	static const char b[] = "DKIM-Signature: v=1; d=example.test\r\n";
	static const char body[] = "Subject: a\r\n\r\nhi\r\n";

	setup(&f);
	make_env(&env);
	struct queue_txn *txn = queue_txn_begin(&f.qs, &env, NULL, NULL);
	CHECK(txn != NULL);
	CHECK_INT(queue_txn_write(txn, body, sizeof body - 1), 0);
	CHECK_INT(queue_txn_prepend(txn, a, sizeof a - 1), 0);
	CHECK_INT(queue_txn_prepend(txn, b, sizeof b - 1), 0);
	static char big[QUEUE_PREPEND_MAX];
	CHECK_INT(queue_txn_prepend(txn, big, sizeof big), -EINVAL);
	queue_txn_commit(txn, on_done, &res);
	run_until(&f, &res.calls, 1);
	CHECK_INT(res.result, 0);

	char path[128], all[512];
	snprintf(path, sizeof path, "%s/queue/%s", f.dir, env.id);
	int fd = open(path, O_RDONLY);
	envelope_init(&got);
	CHECK_INT(queue_file_read_envelope(fd, &got), 0);
	CHECK_INT(got.msg_size, sizeof body - 1);
	CHECK_INT(got.pre_size, sizeof a - 1 + sizeof b - 1);
	CHECK_INT(envelope_msg_total(&got), sizeof a + sizeof b + sizeof body - 3);
	size_t n = 0;
	ssize_t r;
	for (uint64_t total = envelope_msg_total(&got); n < total; n += (size_t)r) {
		size_t want = total - n < 7 ? (size_t)(total - n) : 7; /* crosses the boundary */
		r = pread_joined(fd, got.pre_offset, got.pre_size, got.msg_offset, all + n, want, n);
		if (r <= 0)
			break;
	}
	all[n] = '\0';
	CHECK_INT(n, envelope_msg_total(&got));
	char want[512];
	snprintf(want, sizeof want, "%s%s%s", a, b, body);
	CHECK_STR(all, want);
	close(fd);
	envelope_free(&got);
	envelope_free(&env);
	teardown(&f);
}

TEST(abort_leaves_nothing)
{
	struct fixture f;
	struct envelope env;
	char big[200000];

	setup(&f);
	memset(big, 'x', sizeof big);
	/* One transaction never touches the disk, one has streamed chunks already. */
	make_env(&env);
	struct queue_txn *small = queue_txn_begin(&f.qs, &env, NULL, NULL);
	queue_txn_write(small, "abc", 3);
	queue_txn_abort(small);
	envelope_free(&env);
	make_env(&env);
	struct queue_txn *large = queue_txn_begin(&f.qs, &env, NULL, NULL);
	queue_txn_write(large, big, sizeof big);
	queue_txn_abort(large);
	envelope_free(&env);
	for (int i = 0; i < 5000 && f.qs.open_txns > 0; i++)
		event_base_loop(f.base, EVLOOP_ONCE);
	CHECK_INT(f.qs.open_txns, 0);
	CHECK_INT(count_files(&f, "incoming"), 0);
	CHECK_INT(count_files(&f, "queue"), 0);
	teardown(&f);
}

static int resumed;
static void on_resume(void *arg)
{
	(void)arg;
	resumed++;
}

TEST(large_message_streams_with_backpressure)
{
	struct fixture f;
	struct envelope env, got;
	struct result res = { 0 };
	static char chunk[64 * 1024];
	size_t total = 0;

	setup(&f);
	make_env(&env);
	resumed = 0;
	struct queue_txn *txn = queue_txn_begin(&f.qs, &env, on_resume, NULL);
	for (size_t i = 0; i < sizeof chunk; i++)
		chunk[i] = (char)('a' + i % 26);
	bool saw_busy = false;
	for (int i = 0; i < 160; i++) { /* 10 MiB */
		while (queue_txn_busy(txn)) {
			saw_busy = true;
			event_base_loop(f.base, EVLOOP_ONCE);
		}
		CHECK_INT(queue_txn_write(txn, chunk, sizeof chunk), 0);
		total += sizeof chunk;
	}
	queue_txn_commit(txn, on_done, &res);
	run_until(&f, &res.calls, 1);
	CHECK_INT(res.result, 0);
	CHECK(saw_busy);
	CHECK(resumed > 0);

	char path[128];
	snprintf(path, sizeof path, "%s/queue/%s", f.dir, env.id);
	int fd = open(path, O_RDONLY);
	envelope_init(&got);
	CHECK_INT(queue_file_read_envelope(fd, &got), 0);
	CHECK_INT(got.msg_size, total);
	char back[64];
	CHECK_INT(pread(fd, back, sizeof back, got.msg_offset + 65536 * 7 + 100), (long)sizeof back);
	CHECK(memcmp(back, chunk + 100, sizeof back) == 0);
	close(fd);
	envelope_free(&got);
	envelope_free(&env);
	teardown(&f);
}

TEST(write_error_reported_and_cleaned)
{
	struct fixture f;
	struct envelope env;
	struct result res = { 0 };
	static char chunk[64 * 1024];
	struct rlimit old, lim;

	/* A file size limit stands in for a full disk (EFBIG instead of ENOSPC). */
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	/* Only the soft limit: an unprivileged process could not raise a lowered hard limit. */
	lim.rlim_cur = 256 * 1024;
	lim.rlim_max = old.rlim_max;
	setup(&f);
	setrlimit(RLIMIT_FSIZE, &lim);
	make_env(&env);
	struct queue_txn *txn = queue_txn_begin(&f.qs, &env, NULL, NULL);
	int first_err = 0;
	for (int i = 0; i < 16 && first_err == 0; i++) {
		while (queue_txn_busy(txn))
			event_base_loop(f.base, EVLOOP_ONCE);
		first_err = queue_txn_write(txn, chunk, sizeof chunk);
		event_base_loop(f.base, EVLOOP_NONBLOCK);
	}
	queue_txn_commit(txn, on_done, &res);
	run_until(&f, &res.calls, 1);
	for (int i = 0; i < 5000 && f.qs.open_txns > 0; i++)
		event_base_loop(f.base, EVLOOP_ONCE);
	setrlimit(RLIMIT_FSIZE, &old);
	CHECK_INT(res.calls, 1);
	CHECK(res.result < 0);
	CHECK_INT(count_files(&f, "incoming"), 0);
	CHECK_INT(count_files(&f, "queue"), 0);
	CHECK_INT(f.qs.open_txns, 0);
	envelope_free(&env);
	teardown(&f);
}

TEST(concurrent_commits_all_durable)
{
	enum { N = 200 };
	struct fixture f;
	struct envelope env;
	struct result res[N];
	int done = 0;

	setup(&f);
	memset(res, 0, sizeof res);
	for (int i = 0; i < N; i++) {
		make_env(&env);
		struct queue_txn *txn = queue_txn_begin(&f.qs, &env, NULL, NULL);
		queue_txn_write(txn, "x\r\n", 3);
		queue_txn_commit(txn, on_done, &res[i]);
		envelope_free(&env);
	}
	for (int k = 0; k < 10000 && done < N; k++) {
		event_base_loop(f.base, EVLOOP_ONCE);
		done = 0;
		for (int i = 0; i < N; i++)
			done += res[i].calls;
	}
	CHECK_INT(done, N);
	for (int i = 0; i < N; i++)
		CHECK_INT(res[i].result, 0);
	CHECK_INT(count_files(&f, "queue"), N);
	CHECK_INT(count_files(&f, "incoming"), 0);
	teardown(&f);
}

TEST(clean_incoming_by_slot)
{
	struct fixture f;
	char path[128];

	setup(&f);
	/* Slot 5 is this store's; a file of slot 6 must survive a slot-5 clean-up. */
	snprintf(path, sizeof path, "%s/incoming/1K0T8FKD06V5", f.dir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	snprintf(path, sizeof path, "%s/incoming/1K0T8FKD06V6", f.dir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	CHECK_INT(queue_spool_clean_incoming(f.dir, 5), 1);
	CHECK_INT(count_files(&f, "incoming"), 1);
	CHECK_INT(queue_spool_clean_incoming(f.dir, -1), 1);
	CHECK_INT(count_files(&f, "incoming"), 0);
	teardown(&f);
}

/* The message of a committed transaction, with a body of n bytes of c. */
static void commit_one(struct fixture *f, char c, size_t n, char id[QUEUE_ID_LEN + 1])
{
	struct envelope env;
	struct result res = { 0 };
	char *body = malloc(n);
	memset(body, c, n);
	make_env(&env);
	struct queue_txn *txn = queue_txn_begin(&f->qs, &env, NULL, NULL);
	CHECK(txn != NULL);
	CHECK_INT(queue_txn_write(txn, body, n), 0);
	queue_txn_commit(txn, on_done, &res);
	run_until(f, &res.calls, 1);
	CHECK_INT(res.result, 0);
	memcpy(id, env.id, QUEUE_ID_LEN + 1);
	envelope_free(&env);
	free(body);
}

/* Read queue/<name>'s envelope and check its CRC: 0, or what failed. */
static int read_and_verify(const struct fixture *f, const char *name, struct envelope *got,
			   struct stat *st)
{
	char path[128];
	snprintf(path, sizeof path, "%s/queue/%s", f->dir, name);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	envelope_init(got);
	int r = queue_file_read_envelope(fd, got);
	if (r == 0)
		r = queue_file_verify(fd, got);
	fstat(fd, st);
	close(fd);
	return r;
}

TEST(reused_file_is_written_over_in_place_and_cut_to_its_new_length)
{
	struct fixture f;
	char big[QUEUE_ID_LEN + 1], small[QUEUE_ID_LEN + 1], from[160], to[160];
	struct envelope got;
	struct stat st_big, st_small;

	setup(&f);
	commit_one(&f, 'b', 20000, big);
	CHECK_INT(read_and_verify(&f, big, &got, &st_big), 0);
	CHECK(got.has_crc);
	envelope_free(&got);
	/* Delivered: the queue manager moves it to free/, whole. */
	snprintf(from, sizeof from, "%s/queue/%s", f.dir, big);
	snprintf(to, sizeof to, "%s/free/%s", f.dir, big);
	CHECK_INT(rename(from, to), 0);
	usleep(150 * 1000); /* free/ is read again at most every 100 ms */
	commit_one(&f, 's', 18, small);
	CHECK_INT(count_files(&f, "free"), 0);
	CHECK_INT(read_and_verify(&f, small, &got, &st_small), 0);
	CHECK(st_small.st_ino == st_big.st_ino); /* the same file, written over */
	CHECK(got.has_crc);
	CHECK_INT(got.msg_size, 18);
	/* Nothing of the old message is left past the new end. */
	CHECK_INT(st_small.st_size, got.msg_offset + 18 + QUEUE_FILE_TRAILER_CRC_LEN);
	envelope_free(&got);
	teardown(&f);
}

/* A file in free/ named by an id of slot, holding n bytes; its inode number. */
static ino_t plant_free(const struct fixture *f, unsigned slot, size_t n, char id[QUEUE_ID_LEN + 1])
{
	struct queue_id_gen g;
	char path[160];
	queue_id_init(&g, slot);
	queue_id_next(&g, id);
	snprintf(path, sizeof path, "%s/free/%s", f->dir, id);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_INT(ftruncate(fd, (off_t)n), 0);
	struct stat st;
	fstat(fd, &st);
	close(fd);
	return st.st_ino;
}

TEST(reuse_takes_the_files_of_its_own_slot_first_then_any)
{
	struct fixture f;
	char own[QUEUE_ID_LEN + 1], other[QUEUE_ID_LEN + 1], id[QUEUE_ID_LEN + 1];
	struct envelope got;
	struct stat st;

	setup(&f); /* slot 5 */
	/* Another worker's file first in free/ (a new directory lists in creation order). */
	ino_t other_ino = plant_free(&f, 7, 100, other);
	ino_t own_ino = plant_free(&f, 5, 100, own);
	commit_one(&f, 'a', 50, id);
	CHECK_INT(read_and_verify(&f, id, &got, &st), 0);
	envelope_free(&got);
	CHECK(st.st_ino == own_ino);
	/* Only the other slot's file is left: taken when none of its own is there. */
	usleep(150 * 1000); /* free/ is read again at most every 100 ms */
	commit_one(&f, 'b', 50, id);
	CHECK_INT(read_and_verify(&f, id, &got, &st), 0);
	envelope_free(&got);
	CHECK(st.st_ino == other_ino);
	CHECK_INT(count_files(&f, "free"), 0);
	teardown(&f);
}

TEST(recovery_moves_an_unpublished_file_mixed_by_a_power_cut_to_corrupt)
{
	struct fixture f;
	char good[QUEUE_ID_LEN + 1], mixed[QUEUE_ID_LEN + 1], from[160], to[160];
	struct envelope got;
	struct stat st;

	setup(&f);
	commit_one(&f, 'g', 9000, good);
	commit_one(&f, 'm', 9000, mixed);
	/* Both as a power cut before their syncs leaves them: hidden, and the second with
	 * a block still holding the old message's bytes. */
	const char *ids[2] = { good, mixed };
	for (int i = 0; i < 2; i++) {
		snprintf(from, sizeof from, "%s/queue/%s", f.dir, ids[i]);
		snprintf(to, sizeof to, "%s/queue/.%s", f.dir, ids[i]);
		CHECK_INT(rename(from, to), 0);
	}
	int fd = open(to, O_WRONLY);
	CHECK_INT(pwrite(fd, "old message bytes", 17, 4096), 17);
	close(fd);
	queue_spool_clean_incoming(f.dir, 5);
	CHECK_INT(read_and_verify(&f, good, &got, &st), 0);
	envelope_free(&got);
	CHECK_INT(count_files(&f, "queue"), 1);
	snprintf(to, sizeof to, "%s/corrupt/%s", f.dir, mixed);
	CHECK_INT(access(to, F_OK), 0);
	teardown(&f);
}

TEST(recovery_does_not_hang_on_a_fifo_in_place_of_a_queue_file)
{
	struct fixture f;
	char path[160];

	setup(&f);
	snprintf(path, sizeof path, "%s/queue/.1K0T8FKD06V5", f.dir);
	CHECK_INT(mkfifo(path, 0600), 0);
	queue_spool_clean_incoming(f.dir, 5); /* returns: nobody writes to the FIFO */
	snprintf(path, sizeof path, "%s/queue/1K0T8FKD06V5", f.dir);
	CHECK_INT(access(path, F_OK), 0); /* published; the loader refuses it */
	teardown(&f);
}

UNIT_MAIN()
