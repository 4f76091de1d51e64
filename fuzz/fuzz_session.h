/*
 * fuzz_session.h: the client side of the whole-session targets (SMTP and
 * POP3): the fuzzer's bytes go to a session of the worker d over a
 * socketpair, on d's real event loop and I/O pool.
 *
 * Header-only: each target is built from its one .c file (Makefile).
 */
#ifndef CARTEIRO_FUZZ_FUZZ_SESSION_H
#define CARTEIRO_FUZZ_FUZZ_SESSION_H

#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtpd/smtp_server.h"
#include "util/iopool.h"
#include "fuzz.h"

/* What the server wrote, in the order it came. */
typedef void fuzz_output_fn(void *ctx, const char *p, size_t n);

/*
 * Play the client of the session started on the other end of fd: write data
 * in pieces of chunk octets, then shut the writing side (EOF); run d's loop
 * all along and hand everything the server writes to out, reading nothing
 * for the first read_delay turns of the loop (a client that does not read:
 * the server's output backs up). Then close fd and wait for every session to
 * end and the I/O pool to be idle: ASSERT that they do.
 */
static void fuzz_session_run(struct smtpd *d, int fd, const uint8_t *data, size_t size,
			     size_t chunk, unsigned read_delay, fuzz_output_fn *out, void *ctx)
{
	static char buf[65536];
	size_t sent = 0;
	bool closed_write = false;
	ssize_t r;

	for (unsigned iter = 0; iter < 200000; iter++) {
		if (sent < size) {
			size_t n = size - sent < chunk ? size - sent : chunk;
			ssize_t w = write(fd, data + sent, n);
			if (w > 0)
				sent += (size_t)w;
		} else if (!closed_write) {
			shutdown(fd, SHUT_WR);
			closed_write = true;
		}
		event_base_loop(d->base, EVLOOP_NONBLOCK);
		r = iter >= read_delay ? read(fd, buf, sizeof buf) : 0;
		if (r > 0)
			out(ctx, buf, (size_t)r);
		else if (r < 0 && errno != EAGAIN)
			break;
		if (closed_write && d->nsessions == 0 && iopool_pending(d->pool) == 0 && r <= 0)
			break;
		if (r <= 0)
			event_base_loop(d->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		if (r <= 0 && iopool_pending(d->pool) > 0)
			event_base_loop(d->base, EVLOOP_ONCE); /* a job on the pool: wait for it */
	}
	while ((r = read(fd, buf, sizeof buf)) > 0)
		out(ctx, buf, (size_t)r);
	/* The client is gone: the session must end and its I/O finish. */
	close(fd);
	for (int iter = 0; iter < 100000 && (d->nsessions > 0 || iopool_pending(d->pool) > 0);
	     iter++)
		event_base_loop(d->base, EVLOOP_ONCE);
	ASSERT(d->nsessions == 0 && iopool_pending(d->pool) == 0);
}

#endif
