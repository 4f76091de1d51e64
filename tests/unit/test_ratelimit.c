/*
 * Unit tests of the rate limit table (src/policy/ratelimit.c): the rate
 * syntax, the sliding window (bursts, the weighted previous window, quiet
 * periods), separate keys and kinds, unlimited rates, and sharing between
 * processes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/ratelimit.h"
#include "unit.h"
#include "util/shm.h"

TEST(rate_syntax)
{
	struct ratelimit_rate r;
	CHECK(ratelimit_rate_parse(slice_from_cstr("30/1m"), &r) == 0);
	CHECK_INT(r.count, 30);
	CHECK_INT(r.window, 60);
	CHECK(ratelimit_rate_parse(slice_from_cstr("500/1h"), &r) == 0);
	CHECK_INT(r.window, 3600);
	CHECK(ratelimit_rate_parse(slice_from_cstr("1/10"), &r) == 0);
	CHECK_INT(r.window, 10);
	CHECK(ratelimit_rate_parse(slice_from_cstr("off"), &r) == 0);
	CHECK_INT(r.count, 0);
	CHECK(ratelimit_rate_parse(slice_from_cstr("0"), &r) == 0);
	CHECK_INT(r.count, 0);
	static const char *const bad[] = { "", "30", "/1m", "30/", "0/1m", "30/0", "30/8d",
					   "-1/1m", "30/1m/2", "1000000001/1h", "x/1m", "30/1y" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_MSG(ratelimit_rate_parse(slice_from_cstr(bad[i]), &r) < 0, "accepted %s",
			  bad[i]);
}

static void key_of(const char *ip, uint8_t key[16])
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &a.sin_addr);
	ratelimit_key_addr((struct sockaddr *)&a, key);
}

/* Allowed events among n at time t (ms). */
static int burst(struct ratelimit *rl, enum ratelimit_kind kind, const uint8_t key[16],
		 const struct ratelimit_rate *rate, int64_t t, int n)
{
	int ok = 0;
	for (int i = 0; i < n; i++)
		ok += ratelimit_hit(rl, kind, key, rate, t, NULL);
	return ok;
}

TEST(sliding_window)
{
	struct ratelimit *rl = ratelimit_create();
	struct ratelimit_rate rate = { 10, 60 };
	uint8_t key[16];
	key_of("192.0.2.1", key);
	int64_t base = 1000LL * 60 * 1000; /* the start of a window */

	CHECK_INT(burst(rl, RATELIMIT_CONNECTIONS, key, &rate, base, 15), 10);
	/* Refused attempts count too: 15 in that window. Halfway through the next one, its
	 * weight is a half: 7 (rounded down), so three more pass (at 7, 8 and 9). */
	CHECK_INT(burst(rl, RATELIMIT_CONNECTIONS, key, &rate, base + 90 * 1000, 5), 3);
	/* Two quiet windows later, a full burst again. */
	CHECK_INT(burst(rl, RATELIMIT_CONNECTIONS, key, &rate, base + 181 * 1000, 12), 10);
	unsigned count = 0;
	CHECK(!ratelimit_hit(rl, RATELIMIT_CONNECTIONS, key, &rate, base + 181 * 1000, &count));
	CHECK_INT(count, 12);
	ratelimit_destroy(rl);
}

TEST(below_the_rate_passes_above_it_must_slow_down)
{
	struct ratelimit *rl = ratelimit_create();
	struct ratelimit_rate rate = { 60, 60 }; /* one a second */
	uint8_t key[16];
	key_of("192.0.2.1", key);
	int refused = 0;
	for (int i = 0; i < 600; i++)
		refused += !ratelimit_hit(rl, RATELIMIT_MESSAGES, key, &rate, 5000000 + i * 1050LL,
					  NULL);
	CHECK_INT(refused, 0);
	/* Twice the rate, refused attempts counted: once the window is full, nothing passes
	 * until the client slows down. */
	refused = 0;
	for (int i = 0; i < 600; i++)
		refused += !ratelimit_hit(rl, RATELIMIT_MESSAGES, key, &rate, 6000000 + i * 500LL,
					  NULL);
	CHECK_MSG(refused >= 530, "refused %d", refused);
	/* Then at half the rate, it gets through again within two windows. */
	int ok_late = 0;
	for (int i = 0; i < 120; i++)
		ok_late += ratelimit_hit(rl, RATELIMIT_MESSAGES, key, &rate, 6300000 + i * 2000LL,
					 NULL) && i >= 60;
	CHECK_INT(ok_late, 60);
	ratelimit_destroy(rl);
}

TEST(keys_and_kinds_are_separate)
{
	struct ratelimit *rl = ratelimit_create();
	struct ratelimit_rate rate = { 2, 60 };
	uint8_t a[16], b[16], u[16], U[16];
	key_of("192.0.2.1", a);
	key_of("192.0.2.2", b);
	ratelimit_key_name("alice@example.test", u);
	ratelimit_key_name("ALICE@Example.TEST", U);
	CHECK(memcmp(u, U, 16) == 0);
	CHECK_INT(burst(rl, RATELIMIT_CONNECTIONS, a, &rate, 1000, 3), 2);
	CHECK_INT(burst(rl, RATELIMIT_CONNECTIONS, b, &rate, 1000, 3), 2);
	CHECK_INT(burst(rl, RATELIMIT_MESSAGES, a, &rate, 1000, 3), 2);
	CHECK_INT(burst(rl, RATELIMIT_USER_MESSAGES, u, &rate, 1000, 3), 2);
	CHECK_INT(burst(rl, RATELIMIT_USER_RCPTS, U, &rate, 1000, 3), 2);
	/* Unlimited: always passes, counts nothing. */
	struct ratelimit_rate off = { 0, 0 };
	CHECK_INT(burst(rl, RATELIMIT_CONNECTIONS, a, &off, 1000, 100), 100);
	CHECK(ratelimit_hit(NULL, RATELIMIT_CONNECTIONS, a, &rate, 1000, NULL));
	ratelimit_destroy(rl);
}

TEST(a_flood_of_addresses_stays_bounded)
{
	struct ratelimit *rl = ratelimit_create();
	struct ratelimit_rate rate = { 1, 3600 };
	uint8_t key[16];
	char ip[32];
	for (int i = 0; i < 100000; i++) {
		snprintf(ip, sizeof ip, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		key_of(ip, key);
		ratelimit_hit(rl, RATELIMIT_CONNECTIONS, key, &rate, 1000 + i, NULL);
	}
	/* The latest ones are still counted. */
	key_of("10.1.134.159", key); /* i = 99999 */
	CHECK(!ratelimit_hit(rl, RATELIMIT_CONNECTIONS, key, &rate, 200000, NULL));
	ratelimit_destroy(rl);
}

TEST(shared_between_processes)
{
	struct ratelimit *rl = ratelimit_create();
	struct ratelimit_rate rate = { 1000, 3600 };
	uint8_t key[16];
	int *allowed = shm_map(2 * sizeof *allowed);
	key_of("192.0.2.1", key);
	pid_t pid[2];
	for (int p = 0; p < 2; p++) {
		pid[p] = fork();
		if (pid[p] == 0) {
			allowed[p] = burst(rl, RATELIMIT_MESSAGES, key, &rate, 1000, 700);
			_exit(0);
		}
	}
	for (int p = 0; p < 2; p++) {
		int status;
		waitpid(pid[p], &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* 1,400 attempts from two processes: exactly 1,000 allowed in all, all counted. */
	CHECK_INT(allowed[0] + allowed[1], 1000);
	unsigned count = 0;
	CHECK(!ratelimit_hit(rl, RATELIMIT_MESSAGES, key, &rate, 1000, &count));
	CHECK_INT(count, 1400);
	shm_unmap(allowed, 2 * sizeof *allowed);
	ratelimit_destroy(rl);
}

UNIT_MAIN()
