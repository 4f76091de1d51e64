/*
 * smtp_steps: where one session's time goes. make bench's "one session" rows.
 *
 *   smtp_steps HOST PORT SESSIONS
 *
 * Runs SESSIONS SMTP sessions one after the other, as smtp-source -s 1 does
 * (connect, HELO, MAIL, RCPT, DATA, 4 KiB of body and the dot, QUIT), and
 * prints the median time of each step in microseconds, one "step value" line
 * each, then "sum" (the sum of the medians). A step is timed from just
 * before its command is written until its whole reply has been read; the
 * first from just before connect() until the 220 has been read.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { STEP_CONNECT, STEP_HELO, STEP_MAIL, STEP_RCPT, STEP_DATA, STEP_BODY, STEP_QUIT, NSTEPS };

static const char *const step_names[NSTEPS] = {
	"connect+banner", "HELO", "MAIL", "RCPT", "DATA", "body+dot", "QUIT",
};

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Read one whole reply (up to its "ddd " line); its code, or -1. */
static int read_reply(int fd)
{
	static char buf[8192];
	size_t n = 0;

	for (;;) {
		ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
		for (char *p = buf;;) {
			char *eol = strstr(p, "\r\n");
			if (!eol)
				break;
			if (eol - p >= 4 && p[3] == ' ')
				return atoi(p);
			p = eol + 2;
		}
		if (n == sizeof buf - 1)
			return -1;
	}
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: smtp_steps HOST PORT SESSIONS\n");
		return 2;
	}
	int sessions = atoi(argv[3]);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
	if (sessions <= 0 || inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "smtp_steps: bad arguments\n");
		return 2;
	}
	double *t[NSTEPS];
	for (int i = 0; i < NSTEPS; i++)
		if (!(t[i] = calloc((size_t)sessions, sizeof **t)))
			return 1;

	/* 4 KiB of 76-character lines, then the dot. */
	static char body[4096 + 8];
	for (size_t i = 0; i < 4096; i++)
		body[i] = i % 78 == 76 ? '\r' : i % 78 == 77 ? '\n' : 'X';
	memcpy(body + 4094, "\r\n.\r\n", 5);
	const size_t body_len = 4099;
	const char *const cmds[NSTEPS] = {
		NULL, "HELO steps.bench.test\r\n", "MAIL FROM:<steps@bench.test>\r\n",
		"RCPT TO:<user@remote.test>\r\n", "DATA\r\n", body, "QUIT\r\n",
	};
	const int expect[NSTEPS] = { 220, 250, 250, 250, 354, 250, 221 };

	for (int k = 0; k < sessions; k++) {
		double a = now_us();
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
			perror("smtp_steps: connect");
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		for (int s = 0; s < NSTEPS; s++) {
			if (s > 0) {
				a = now_us();
				size_t len = s == STEP_BODY ? body_len : strlen(cmds[s]);
				if (write_all(fd, cmds[s], len) < 0) {
					perror("smtp_steps: write");
					return 1;
				}
			}
			int code = read_reply(fd);
			t[s][k] = now_us() - a;
			if (code != expect[s]) {
				fprintf(stderr, "smtp_steps: %s: reply %d, expected %d\n", step_names[s],
					code, expect[s]);
				return 1;
			}
		}
		close(fd);
	}
	double sum = 0;
	for (int s = 0; s < NSTEPS; s++) {
		qsort(t[s], (size_t)sessions, sizeof **t, by_value);
		double median = t[s][sessions / 2];
		printf("%s %.1f\n", step_names[s], median);
		sum += median;
	}
	printf("sum %.1f\n", sum);
	return 0;
}
