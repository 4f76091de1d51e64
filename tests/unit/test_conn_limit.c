/*
 * Unit tests of the shared connection table: limits, release, the rebuild
 * after a worker's death, and the hash table against a simple model.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smtpd/conn_limit.h"
#include "unit.h"

static struct sockaddr_in v4(unsigned n)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x0a000000u + n);
	return sin;
}

#define SA(x) ((struct sockaddr *)&(x))

TEST(per_ip_and_total_limits)
{
	struct conn_limit *cl = conn_limit_create(5, 2, 2);
	struct sockaddr_in a = v4(1), b = v4(2), c = v4(3);

	CHECK_INT(conn_limit_acquire(cl, 0, SA(a)), CONN_OK);
	CHECK_INT(conn_limit_acquire(cl, 1, SA(a)), CONN_OK);
	CHECK_INT(conn_limit_acquire(cl, 0, SA(a)), CONN_TOO_MANY_FROM_IP);
	CHECK_INT(conn_limit_acquire(cl, 0, SA(b)), CONN_OK);
	CHECK_INT(conn_limit_acquire(cl, 1, SA(b)), CONN_OK);
	CHECK_INT(conn_limit_acquire(cl, 0, SA(c)), CONN_OK);
	CHECK_INT(conn_limit_total(cl), 5);
	CHECK_INT(conn_limit_acquire(cl, 0, SA(c)), CONN_TOO_MANY);
	conn_limit_release(cl, 1, SA(a));
	CHECK_INT(conn_limit_acquire(cl, 0, SA(a)), CONN_OK);
	conn_limit_destroy(cl);
}

TEST(ipv4_mapped_counts_as_ipv4)
{
	struct conn_limit *cl = conn_limit_create(10, 1, 1);
	struct sockaddr_in a = v4(7);
	struct sockaddr_in6 m;
	memset(&m, 0, sizeof m);
	m.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.0.0.7", &m.sin6_addr);
	CHECK_INT(conn_limit_acquire(cl, 0, SA(a)), CONN_OK);
	CHECK_INT(conn_limit_acquire(cl, 0, SA(m)), CONN_TOO_MANY_FROM_IP);
	conn_limit_destroy(cl);
}

TEST(reset_worker_releases_only_its_share)
{
	struct conn_limit *cl = conn_limit_create(100, 3, 3);
	struct sockaddr_in a = v4(1);
	CHECK_INT(conn_limit_acquire(cl, 0, SA(a)), CONN_OK);
	CHECK_INT(conn_limit_acquire(cl, 1, SA(a)), CONN_OK);
	CHECK_INT(conn_limit_acquire(cl, 1, SA(a)), CONN_OK);
	CHECK_INT(conn_limit_acquire(cl, 2, SA(a)), CONN_TOO_MANY_FROM_IP);
	conn_limit_reset_worker(cl, 1);
	CHECK_INT(conn_limit_total(cl), 1);
	CHECK_INT(conn_limit_acquire(cl, 2, SA(a)), CONN_OK);
	CHECK_INT(conn_limit_acquire(cl, 2, SA(a)), CONN_OK);
	CHECK_INT(conn_limit_acquire(cl, 2, SA(a)), CONN_TOO_MANY_FROM_IP);
	/* A release by the dead worker after the reset must not go negative. */
	conn_limit_release(cl, 1, SA(a));
	CHECK_INT(conn_limit_total(cl), 3);
	conn_limit_destroy(cl);
}

TEST(random_operations_match_a_model)
{
	enum { IPS = 300, WORKERS = 3, MAX = 1000, PER_IP = 4 };
	static unsigned model[IPS][WORKERS];
	unsigned total = 0;
	struct conn_limit *cl = conn_limit_create(MAX, PER_IP, WORKERS);
	srand(12345);
	memset(model, 0, sizeof model);
	for (int step = 0; step < 200000; step++) {
		unsigned ip = (unsigned)rand() % IPS, w = (unsigned)rand() % WORKERS;
		struct sockaddr_in a = v4(ip * 7919);
		unsigned per = model[ip][0] + model[ip][1] + model[ip][2];
		int op = rand() % 100;
		if (op < 55) {
			int want = total >= MAX ? CONN_TOO_MANY
					: per >= PER_IP ? CONN_TOO_MANY_FROM_IP
							: CONN_OK;
			int got = conn_limit_acquire(cl, w, SA(a));
			CHECK_MSG(got == want, "step %d acquire ip %u: %d, expected %d", step, ip, got,
				  want);
			if (got == CONN_OK) {
				model[ip][w]++;
				total++;
			}
		} else if (op < 99) {
			conn_limit_release(cl, w, SA(a));
			if (model[ip][w]) {
				model[ip][w]--;
				total--;
			}
		} else {
			conn_limit_reset_worker(cl, w);
			for (unsigned i = 0; i < IPS; i++) {
				total -= model[i][w];
				model[i][w] = 0;
			}
		}
		if (unit_failed_checks > 5)
			break;
	}
	CHECK_INT(conn_limit_total(cl), total);
	conn_limit_destroy(cl);
}

TEST(shared_across_fork)
{
	struct conn_limit *cl = conn_limit_create(10, 10, 2);
	struct sockaddr_in a = v4(1);
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 4; i++)
			conn_limit_acquire(cl, 1, SA(a));
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	CHECK_INT(conn_limit_total(cl), 4);
	conn_limit_reset_worker(cl, 1);
	CHECK_INT(conn_limit_total(cl), 0);
	conn_limit_destroy(cl);
}

UNIT_MAIN()
