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
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
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

/*
 * A self-signed P-256 key and certificate in PEM files, for a listener that
 * offers STARTTLS or STLS (the handshake then gets the fuzzer's bytes and
 * fails; what is tested is the way there: the switch, the plaintext
 * discarded behind the command).
 */
static void fuzz_make_cert(const char *cert_path, const char *key_path)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	ASSERT(pkey && x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	X509_set_pubkey(x, pkey);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
				   -1, -1, 0);
	X509_set_issuer_name(x, name);
	ASSERT(X509_sign(x, pkey, EVP_sha256()));
	FILE *f = fopen(key_path, "w");
	ASSERT(f && PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) && fclose(f) == 0);
	f = fopen(cert_path, "w");
	ASSERT(f && PEM_write_X509(f, x) && fclose(f) == 0);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

#endif
