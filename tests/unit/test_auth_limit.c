/*
 * Unit tests of the shared AUTH failure table (src/smtpd/auth_limit.c):
 * counting in a window, the ban and its end, addresses kept apart, eviction
 * of the oldest entry when a bucket is full, and sharing across fork().
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smtpd/auth_limit.h"
#include "unit.h"

static struct sockaddr_in v4(uint32_t a)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(a);
	return sa;
}

#define SA(x) ((const struct sockaddr *)&(x))

TEST(count_ban_and_window)
{
	struct auth_limit *al = auth_limit_create();
	struct sockaddr_in a = v4(0xc0000201), b = v4(0xc0000202);

	CHECK(al != NULL);
	CHECK(!auth_limit_banned(al, SA(a), 100));
	CHECK_INT(auth_limit_failed(al, SA(a), 100, 3, 60), 1);
	CHECK_INT(auth_limit_failed(al, SA(a), 110, 3, 60), 2);
	CHECK(!auth_limit_banned(al, SA(a), 110));
	CHECK(!auth_limit_banned(al, SA(b), 110));
	CHECK_INT(auth_limit_failed(al, SA(a), 120, 3, 60), 3);
	CHECK(auth_limit_banned(al, SA(a), 120));
	CHECK(auth_limit_banned(al, SA(a), 179));
	CHECK(!auth_limit_banned(al, SA(b), 120)); /* another address */
	CHECK(!auth_limit_banned(al, SA(a), 180)); /* the ban lasts the window */
	/* After the ban and the window, counting starts over. */
	CHECK_INT(auth_limit_failed(al, SA(a), 200, 3, 60), 1);
	/* Failures spread wider than the window never add up to a ban. */
	CHECK_INT(auth_limit_failed(al, SA(b), 1000, 3, 60), 1);
	CHECK_INT(auth_limit_failed(al, SA(b), 1059, 3, 60), 2);
	CHECK_INT(auth_limit_failed(al, SA(b), 1061, 3, 60), 1);
	auth_limit_destroy(al);
}

TEST(full_buckets_evict_the_oldest)
{
	struct auth_limit *al = auth_limit_create();
	struct sockaddr_in banned = v4(0x0a000001);

	CHECK_INT(auth_limit_failed(al, SA(banned), 10, 1, 3600), 1);
	CHECK(auth_limit_banned(al, SA(banned), 11));
	/* A flood of other addresses, each newer: the table never grows, something gives way. */
	for (uint32_t i = 0; i < 20000; i++) {
		struct sockaddr_in x = v4(0x0b000000 + i);
		CHECK(auth_limit_failed(al, SA(x), 20 + i, 5, 3600) == 1);
	}
	/* The newest ones are all still there. */
	struct sockaddr_in last = v4(0x0b000000 + 19999);
	CHECK_INT(auth_limit_failed(al, SA(last), 20020, 5, 3600), 2);
	auth_limit_destroy(al);
}

TEST(shared_across_fork)
{
	struct auth_limit *al = auth_limit_create();
	struct sockaddr_in a = v4(0xc0000201);

	pid_t pid = fork();
	if (pid == 0) {
		auth_limit_failed(al, SA(a), 100, 2, 60);
		auth_limit_failed(al, SA(a), 101, 2, 60);
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
	CHECK(auth_limit_banned(al, SA(a), 102));
	auth_limit_destroy(al);
}

UNIT_MAIN()
