/*
 * test_smtp_client: the outbound SMTP client (src/deliver/smtp_client.c)
 * against a scripted fake server.
 *
 * The fake server is a thread with blocking sockets (and a plain OpenSSL SSL
 * object after STARTTLS) listening on 127.0.0.1:0; it runs a script of steps
 * (expect a command prefix, send canned bytes, read the message data, start
 * TLS, sleep, close, accept again) and records every line it receives. The
 * client runs on a libevent loop in the main thread. Timeouts are 1 second.
 * A self-signed certificate for "localhost" is made at test time with the
 * OpenSSL API.
 */
#include "deliver/smtp_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "smtpd/smtp_command.h"
#include "unit.h"
#include "util/log.h"

/* --- the fake server ---------------------------------------------------------- */

enum op {
	OP_END = 0,
	OP_SEND,     /* send arg (n: then close_notify and close, in one TCP segment) */
	OP_EXPECT,   /* read a line; it must start with arg */
	OP_DATA,     /* read message data up to and including ".\r\n" */
	OP_TLS,      /* TLS handshake as the server */
	OP_CLOSE,    /* close the connection */
	OP_ACCEPT,   /* close, then accept the next connection */
	OP_SLEEP,    /* sleep n milliseconds */
	OP_FLOOD,    /* send arg n times (until the client goes away) */
};

struct step {
	enum op op;
	const char *arg;
	int n;
};

#define SEND(s) { OP_SEND, (s), 0 }
#define EXPECT(s) { OP_EXPECT, (s), 0 }
#define DATA() { OP_DATA, NULL, 0 }
#define END() { OP_END, NULL, 0 }

struct server {
	const struct step *script;
	int lfd, fd;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
	unsigned short port;
	pthread_t thread;
	char in[65536];
	size_t inlen;
	char got[65536]; /* every line received, as received */
	size_t gotlen;
	char data[65536]; /* the last message data, with its final ".\r\n" */
	size_t datalen;
	size_t datatotal; /* all of it, also beyond sizeof(data) */
	unsigned datadots; /* lines of it that start with ".." */
	char error[512];
	bool done;
};

static void srv_fail(struct server *s, const char *fmt, const char *a)
{
	if (!s->error[0])
		snprintf(s->error, sizeof(s->error), fmt, a);
}

static ssize_t srv_recv(struct server *s, char *p, size_t n)
{
	if (s->ssl) {
		int r = SSL_read(s->ssl, p, (int)n);
		return r > 0 ? r : 0;
	}
	ssize_t r = recv(s->fd, p, n, 0);
	return r > 0 ? r : 0;
}

static bool srv_send(struct server *s, const char *p, size_t n)
{
	if (s->ssl)
		return SSL_write(s->ssl, p, (int)n) == (int)n;
	return send(s->fd, p, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* One line with its line end into line; false on EOF/timeout. */
static bool srv_line(struct server *s, char *line, size_t max, size_t *len)
{
	for (;;) {
		char *nl = memchr(s->in, '\n', s->inlen);
		if (nl) {
			size_t n = (size_t)(nl - s->in) + 1;
			if (n >= max)
				return false;
			memcpy(line, s->in, n);
			line[n] = '\0';
			memmove(s->in, s->in + n, s->inlen - n);
			s->inlen -= n;
			*len = n;
			if (s->gotlen + n < sizeof(s->got)) {
				memcpy(s->got + s->gotlen, line, n);
				s->gotlen += n;
			}
			return true;
		}
		if (s->inlen == sizeof(s->in))
			return false;
		ssize_t r = srv_recv(s, s->in + s->inlen, sizeof(s->in) - s->inlen);
		if (r <= 0)
			return false;
		s->inlen += (size_t)r;
	}
}

static void srv_close(struct server *s)
{
	if (s->ssl) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->inlen = 0;
}

static bool srv_accept(struct server *s)
{
	struct timeval tv = { 5, 0 };

	s->fd = accept(s->lfd, NULL, NULL);
	if (s->fd < 0)
		return false;
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return true;
}

static void *srv_main(void *arg)
{
	struct server *s = arg;
	char line[8192];
	size_t len;

	if (!srv_accept(s)) {
		srv_fail(s, "%s", "accept failed");
		return NULL;
	}
	for (const struct step *st = s->script; st->op != OP_END && !s->error[0]; st++) {
		switch (st->op) {
		case OP_SEND:
			if (st->n) {
				/* n: arg, a TLS close_notify and the close in one segment */
				int one = 1, zero = 0;
				setsockopt(s->fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one);
				srv_send(s, st->arg, strlen(st->arg));
				if (s->ssl)
					SSL_shutdown(s->ssl);
				setsockopt(s->fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
				srv_close(s);
				break;
			}
			srv_send(s, st->arg, strlen(st->arg));
			break;
		case OP_EXPECT:
			if (!srv_line(s, line, sizeof(line), &len))
				srv_fail(s, "EOF, expected %s", st->arg);
			else if (strncmp(line, st->arg, strlen(st->arg)) != 0)
				srv_fail(s, "unexpected line: %.400s", line);
			break;
		case OP_DATA:
			s->datalen = s->datatotal = 0;
			s->datadots = 0;
			for (;;) {
				if (!srv_line(s, line, sizeof(line), &len)) {
					srv_fail(s, "%s", "EOF in data");
					break;
				}
				s->datatotal += len;
				if (len >= 2 && line[0] == '.' && line[1] == '.')
					s->datadots++;
				if (s->datalen + len < sizeof(s->data)) {
					memcpy(s->data + s->datalen, line, len);
					s->datalen += len;
				}
				if (strcmp(line, ".\r\n") == 0)
					break;
			}
			break;
		case OP_TLS:
			s->ssl = SSL_new(s->ssl_ctx);
			SSL_set_fd(s->ssl, s->fd);
			/* n: the client may drop the connection during the handshake. */
			if (SSL_accept(s->ssl) != 1 && !st->n)
				srv_fail(s, "%s", "TLS handshake failed");
			break;
		case OP_CLOSE:
			srv_close(s);
			break;
		case OP_ACCEPT:
			srv_close(s);
			if (!srv_accept(s))
				srv_fail(s, "%s", "second accept failed");
			break;
		case OP_SLEEP:
			usleep((useconds_t)st->n * 1000);
			break;
		case OP_FLOOD:
			for (int i = 0; i < st->n; i++)
				if (!srv_send(s, st->arg, strlen(st->arg)))
					break;
			break;
		case OP_END:
			break;
		}
	}
	/* Wait for the client to go away, recording what it still says. */
	while (s->fd >= 0 && srv_line(s, line, sizeof(line), &len))
		;
	srv_close(s);
	s->done = true;
	return NULL;
}

static void srv_start(struct server *s, const struct step *script, SSL_CTX *ctx)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->script = script;
	s->ssl_ctx = ctx;
	s->fd = -1;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(s->lfd, 4) < 0)
		abort();
	getsockname(s->lfd, (struct sockaddr *)&sin, &sl);
	s->port = ntohs(sin.sin_port);
	pthread_create(&s->thread, NULL, srv_main, s);
}

static void srv_join(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->lfd);
	CHECK_MSG(s->error[0] == '\0', "fake server: %s", s->error);
}

/* --- the client side ------------------------------------------------------------ */

#define MAX_MSGS 3

struct run {
	struct event_base *base;
	struct smtpc *c;
	struct smtpc_params p;
	struct sockaddr_in sin;
	struct smtpc_msg *msgs[MAX_MSGS];
	size_t nmsgs, next;
	bool ready_called, ready_ok;
	struct smtpc_reply ready_failure;
	unsigned sent_called;
	struct smtpc_reply txn[MAX_MSGS];
	bool usable_after[MAX_MSGS];
	struct smtpc_info info;
	bool use_free; /* smtpc_free instead of smtpc_quit at the end */
};

static void on_sent(void *arg, const struct smtpc_reply *txn);

static void next_or_quit(struct run *r)
{
	if (r->next < r->nmsgs && smtpc_usable(r->c)) {
		smtpc_send(r->c, r->msgs[r->next], on_sent, r);
		return;
	}
	if (r->use_free)
		smtpc_free(r->c);
	else
		smtpc_quit(r->c);
	r->c = NULL;
}

static void on_sent(void *arg, const struct smtpc_reply *txn)
{
	struct run *r = arg;

	CHECK(r->next < r->nmsgs);
	r->txn[r->next] = *txn;
	r->usable_after[r->next] = smtpc_usable(r->c);
	r->next++;
	r->sent_called++;
	next_or_quit(r);
}

static void on_ready(void *arg, const struct smtpc_reply *failure)
{
	struct run *r = arg;

	CHECK(!r->ready_called);
	r->ready_called = true;
	if (failure) {
		r->ready_failure = *failure;
		r->c = NULL; /* gone */
		return;
	}
	r->ready_ok = true;
	r->info = *smtpc_info(r->c);
	next_or_quit(r);
}

static void run_init(struct run *r, const struct server *s)
{
	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	r->sin.sin_family = AF_INET;
	r->sin.sin_port = htons(s->port);
	r->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->p.helo = "client.test";
	r->p.peer_name = "localhost";
	r->p.addr = (struct sockaddr *)&r->sin;
	r->p.addrlen = sizeof(r->sin);
	r->p.tls = SMTPC_TLS_NONE;
	r->p.connect_timeout = 2;
	r->p.command_timeout = 1;
	r->p.data_timeout = 1;
}

static void run_go(struct run *r)
{
	alarm(30); /* a hang is a failure, not a stuck test run */
	r->c = smtpc_connect(r->base, &r->p, on_ready, r);
	CHECK(r->c != NULL);
	CHECK(!r->ready_called); /* never synchronously */
	event_base_dispatch(r->base);
	event_base_free(r->base);
	alarm(0);
	CHECK(r->ready_called);
}

/* A message in a temporary file, after a few bytes of "queue file header". */
struct tmsg {
	struct smtpc_msg m;
	struct smtpc_rcpt rcpts[4];
};

static void tmsg_init(struct tmsg *t, const char *body, const char *const *rcpts)
{
	char path[] = "/tmp/test_smtp_client.XXXXXX";
	int fd = mkstemp(path);
	static const char header[] = "HEADER\n";

	unlink(path);
	memset(t, 0, sizeof(*t));
	if (write(fd, header, sizeof(header) - 1) < 0 || write(fd, body, strlen(body)) < 0)
		abort();
	t->m.fd = fd;
	t->m.offset = sizeof(header) - 1;
	t->m.size = strlen(body);
	t->m.sender = "sender@example.org";
	t->m.rcpts = t->rcpts;
	for (size_t i = 0; rcpts[i]; i++) {
		t->rcpts[i].address = rcpts[i];
		t->m.nrcpts++;
	}
}

static void tmsg_free(struct tmsg *t)
{
	close(t->m.fd);
}

#define GREET SEND("220 fake.test ESMTP\r\n"), EXPECT("EHLO client.test\r\n")
#define EHLO_PLAIN SEND("250-fake.test\r\n250-SIZE 100000\r\n250 8BITMIME\r\n")
#define EHLO_PIPE SEND("250-fake.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
#define QUIT_OK EXPECT("QUIT\r\n"), SEND("221 bye\r\n")
/* After the greeting and EHLO: STARTTLS offered, taken, the handshake, the second EHLO. */
#define STARTTLS_DONE                                                                      \
	SEND("250-fake.test\r\n250 STARTTLS\r\n"), EXPECT("STARTTLS\r\n"), SEND("220 go\r\n"), \
		{ OP_TLS, NULL, 0 }, EXPECT("EHLO client.test\r\n")

static const char *const two_rcpts[] = { "a@example.net", "b@example.net", NULL };
static const char body_dots[] = "Subject: x\r\n\r\n.hidden\r\nline\r\n..two\r\n";

TEST(plain_delivery_two_rcpts)
{
	static const struct step script[] = {
		GREET,
		EHLO_PLAIN,
		EXPECT("MAIL FROM:<sender@example.org> SIZE=36\r\n"), SEND("250 2.1.0 ok\r\n"),
		EXPECT("RCPT TO:<a@example.net>\r\n"), SEND("250 2.1.5 ok\r\n"),
		EXPECT("RCPT TO:<b@example.net>\r\n"), SEND("250 2.1.5 ok\r\n"),
		EXPECT("DATA\r\n"), SEND("354 go\r\n"),
		DATA(), SEND("250 2.0.0 queued as X\r\n"),
		QUIT_OK,
		END(),
	};
	struct server s;
	struct run r;
	struct tmsg m;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	tmsg_init(&m, body_dots, two_rcpts);
	r.msgs[0] = &m.m;
	r.nmsgs = 1;
	run_go(&r);
	srv_join(&s);
	CHECK(r.ready_ok);
	CHECK_INT(r.sent_called, 1);
	CHECK_INT(r.txn[0].code, 250);
	CHECK_STR(r.txn[0].status, "2.0.0");
	CHECK_STR(r.txn[0].text, "queued as X");
	CHECK_INT(m.rcpts[0].reply.code, 250);
	CHECK_INT(m.rcpts[1].reply.code, 250);
	CHECK(r.usable_after[0]);
	CHECK(r.info.esmtp && !r.info.pipelining && r.info.size_max == 100000);
	s.data[s.datalen] = '\0';
	CHECK_STR(s.data, "Subject: x\r\n\r\n..hidden\r\nline\r\n...two\r\n.\r\n");
	s.got[s.gotlen] = '\0';
	CHECK_STR(s.got, "EHLO client.test\r\n"
			 "MAIL FROM:<sender@example.org> SIZE=36\r\n"
			 "RCPT TO:<a@example.net>\r\n"
			 "RCPT TO:<b@example.net>\r\n"
			 "DATA\r\n"
			 "Subject: x\r\n\r\n..hidden\r\nline\r\n...two\r\n.\r\n"
			 "QUIT\r\n");
	tmsg_free(&m);
}

TEST(no_final_crlf_and_empty)
{
	static const struct step script[] = {
		GREET,
		EHLO_PIPE,
		EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"),
		DATA(), SEND("250 ok\r\n"),
		EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"),
		DATA(), SEND("250 ok\r\n"),
		QUIT_OK,
		END(),
	};
	static const char *const one[] = { "a@example.net", NULL };
	struct server s;
	struct run r;
	struct tmsg m1, m2;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	tmsg_init(&m1, "a\r\n.b", one);
	tmsg_init(&m2, "", one);
	r.msgs[0] = &m1.m;
	r.msgs[1] = &m2.m;
	r.nmsgs = 2;
	run_go(&r);
	srv_join(&s);
	CHECK_INT(r.sent_called, 2);
	CHECK_INT(m1.rcpts[0].reply.code, 250);
	CHECK_INT(m2.rcpts[0].reply.code, 250);
	s.data[s.datalen] = '\0';
	CHECK_STR(s.data, ".\r\n"); /* the empty message */
	s.got[s.gotlen] = '\0';
	CHECK(strstr(s.got, "DATA\r\na\r\n..b\r\n.\r\nMAIL") != NULL);
	tmsg_free(&m1);
	tmsg_free(&m2);
}

TEST(pipelining_and_one_rcpt_refused)
{
	/* The replies come only after MAIL, both RCPTs and DATA arrived: a client that
	 * waited for a reply between them would time out. */
	static const struct step script[] = {
		GREET,
		EHLO_PIPE,
		EXPECT("MAIL FROM:<sender@example.org>\r\n"),
		EXPECT("RCPT TO:<a@example.net>\r\n"),
		EXPECT("RCPT TO:<b@example.net>\r\n"),
		EXPECT("DATA\r\n"),
		SEND("250 ok\r\n250 ok\r\n550-5.1.1 no such\r\n550 5.1.1 user\r\n354 go\r\n"),
		DATA(), SEND("250 2.0.0 done\r\n"),
		QUIT_OK,
		END(),
	};
	struct server s;
	struct run r;
	struct tmsg m;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	tmsg_init(&m, "x\r\n", two_rcpts);
	r.msgs[0] = &m.m;
	r.nmsgs = 1;
	run_go(&r);
	srv_join(&s);
	CHECK(r.info.pipelining);
	CHECK_INT(m.rcpts[0].reply.code, 250);
	CHECK_STR(m.rcpts[0].reply.text, "done");
	CHECK_INT(m.rcpts[1].reply.code, 550);
	CHECK(!m.rcpts[1].reply.temporary);
	CHECK_STR(m.rcpts[1].reply.status, "5.1.1");
	CHECK_STR(m.rcpts[1].reply.text, "no such user");
	CHECK_INT(r.txn[0].code, 250);
	tmsg_free(&m);
}

TEST(all_rcpts_refused_then_rset)
{
	/* Without PIPELINING: no DATA after both refusals; RSET before the next MAIL. */
	static const struct step script[] = {
		GREET,
		EHLO_PLAIN,
		EXPECT("MAIL"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<a@"), SEND("550 5.1.1 no\r\n"),
		EXPECT("RCPT TO:<b@"), SEND("450 4.2.0 later\r\n"),
		EXPECT("RSET\r\n"), SEND("250 ok\r\n"),
		EXPECT("MAIL"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"),
		DATA(), SEND("250 ok\r\n"),
		QUIT_OK,
		END(),
	};
	struct server s;
	struct run r;
	struct tmsg m1, m2;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	tmsg_init(&m1, "x\r\n", two_rcpts);
	tmsg_init(&m2, "y\r\n", two_rcpts);
	r.msgs[0] = &m1.m;
	r.msgs[1] = &m2.m;
	r.nmsgs = 2;
	run_go(&r);
	srv_join(&s);
	CHECK_INT(r.sent_called, 2);
	CHECK_INT(m1.rcpts[0].reply.code, 550);
	CHECK(!m1.rcpts[0].reply.temporary);
	CHECK_INT(m1.rcpts[1].reply.code, 450);
	CHECK(m1.rcpts[1].reply.temporary);
	CHECK(r.usable_after[0]);
	CHECK_INT(m2.rcpts[0].reply.code, 250);
	CHECK_INT(m2.rcpts[1].reply.code, 250);
	s.got[s.gotlen] = '\0';
	CHECK(strstr(s.got, "RCPT TO:<b@example.net>\r\nRSET\r\nMAIL") != NULL);
	CHECK(strstr(s.got, "DATA") > strstr(s.got, "RSET"));
	tmsg_free(&m1);
	tmsg_free(&m2);
}

TEST(pipelined_all_refused_data_354_gets_empty_message)
{
	/* RFC 2920 3.1: DATA accepted although every RCPT was refused: send "." only. */
	static const struct step script[] = {
		GREET,
		EHLO_PIPE,
		EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("RCPT"), EXPECT("DATA"),
		SEND("250 ok\r\n550 no\r\n551 no\r\n354 go\r\n"),
		DATA(), SEND("554 5.5.1 no valid recipients\r\n"),
		QUIT_OK,
		END(),
	};
	struct server s;
	struct run r;
	struct tmsg m;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	tmsg_init(&m, "secret\r\n", two_rcpts);
	r.msgs[0] = &m.m;
	r.nmsgs = 1;
	run_go(&r);
	srv_join(&s);
	s.data[s.datalen] = '\0';
	CHECK_STR(s.data, ".\r\n");
	CHECK_INT(m.rcpts[0].reply.code, 550);
	CHECK_INT(m.rcpts[1].reply.code, 551);
	CHECK_INT(r.txn[0].code, 551);
	CHECK(r.usable_after[0]);
	tmsg_free(&m);
}

TEST(mail_refused_451)
{
	static const struct step script[] = {
		GREET,
		EHLO_PLAIN,
		EXPECT("MAIL"), SEND("451 4.3.0 try later\r\n"),
		QUIT_OK,
		END(),
	};
	struct server s;
	struct run r;
	struct tmsg m;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	tmsg_init(&m, "x\r\n", two_rcpts);
	r.msgs[0] = &m.m;
	r.nmsgs = 1;
	run_go(&r);
	srv_join(&s);
	CHECK_INT(r.txn[0].code, 451);
	CHECK(r.txn[0].temporary);
	for (int i = 0; i < 2; i++) {
		CHECK_INT(m.rcpts[i].reply.code, 451);
		CHECK_STR(m.rcpts[i].reply.status, "4.3.0");
		CHECK_STR(m.rcpts[i].reply.text, "try later");
	}
	CHECK(r.usable_after[0]);
	tmsg_free(&m);
}

TEST(ehlo_refused_helo_used)
{
	static const struct step script[] = {
		GREET,
		SEND("502 5.5.1 what\r\n"),
		EXPECT("HELO client.test\r\n"), SEND("250 fake.test\r\n"),
		EXPECT("MAIL FROM:<sender@example.org>\r\n"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<a@example.net>\r\n"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@example.net>\r\n"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"),
		DATA(), SEND("250 ok\r\n"),
		QUIT_OK,
		END(),
	};
	struct server s;
	struct run r;
	struct tmsg m;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	tmsg_init(&m, "x\r\n", two_rcpts);
	m.m.body_8bit = true; /* no 8BITMIME without EHLO: sent as is */
	r.msgs[0] = &m.m;
	r.nmsgs = 1;
	run_go(&r);
	srv_join(&s);
	CHECK(r.ready_ok && !r.info.esmtp);
	CHECK_INT(m.rcpts[0].reply.code, 250);
	tmsg_free(&m);
}

TEST(size_and_smtputf8_refused_locally)
{
	static const struct step script[] = {
		GREET,
		SEND("250-fake.test\r\n250 SIZE 10\r\n"),
		QUIT_OK, /* no MAIL at all */
		END(),
	};
	struct server s;
	struct run r;
	struct tmsg m1, m2;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	tmsg_init(&m1, "more than ten bytes\r\n", two_rcpts);
	tmsg_init(&m2, "small\r\n", two_rcpts);
	m2.m.smtputf8 = true;
	r.msgs[0] = &m1.m;
	r.msgs[1] = &m2.m;
	r.nmsgs = 2;
	run_go(&r);
	srv_join(&s);
	CHECK_INT(r.sent_called, 2);
	for (int i = 0; i < 2; i++) {
		CHECK_INT(m1.rcpts[i].reply.code, 0);
		CHECK(!m1.rcpts[i].reply.temporary);
		CHECK_STR(m1.rcpts[i].reply.status, "5.3.4");
		CHECK_INT(m2.rcpts[i].reply.code, 0);
		CHECK(!m2.rcpts[i].reply.temporary);
		CHECK_STR(m2.rcpts[i].reply.status, "5.6.7");
	}
	CHECK(strstr(m2.rcpts[0].reply.text, "SMTPUTF8 required but not offered") != NULL);
	CHECK(r.usable_after[0] && r.usable_after[1]);
	tmsg_free(&m1);
	tmsg_free(&m2);
}

TEST(dsn_parameters_only_when_offered)
{
	static const struct step script[] = {
		GREET,
		SEND("250-fake.test\r\n250-DSN\r\n250-SMTPUTF8\r\n250 8BITMIME\r\n"),
		EXPECT("MAIL FROM:<sender@example.org> BODY=8BITMIME SMTPUTF8 RET=HDRS "
		       "ENVID=id+2Bx+3Dy\r\n"),
		SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<a@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb+3Dc@x\r\n"),
		SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@example.net> NOTIFY=NEVER\r\n"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"),
		DATA(), SEND("250 ok\r\n"),
		QUIT_OK,
		END(),
	};
	static const struct step script2[] = {
		GREET,
		SEND("250 fake.test\r\n"),
		EXPECT("MAIL FROM:<sender@example.org>\r\n"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<a@example.net>\r\n"), SEND("250 ok\r\n"),
		EXPECT("RCPT TO:<b@example.net>\r\n"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"),
		DATA(), SEND("250 ok\r\n"),
		QUIT_OK,
		END(),
	};
	const struct step *scripts[] = { script, script2 };

	for (int k = 0; k < 2; k++) {
		struct server s;
		struct run r;
		struct tmsg m;

		srv_start(&s, scripts[k], NULL);
		run_init(&r, &s);
		tmsg_init(&m, "x\r\n", two_rcpts);
		m.m.envid = "id+x=y";
		m.m.ret = 'H';
		m.m.body_8bit = true;
		m.m.smtputf8 = k == 0;
		m.rcpts[0].notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE;
		m.rcpts[0].orcpt = "rfc822;a+b=c@x";
		m.rcpts[1].notify = SMTP_NOTIFY_NEVER;
		r.msgs[0] = &m.m;
		r.nmsgs = 1;
		run_go(&r);
		srv_join(&s);
		CHECK_INT(m.rcpts[0].reply.code, 250);
		CHECK_INT(m.rcpts[1].reply.code, 250);
		tmsg_free(&m);
	}
}

TEST(reuse_three_transactions)
{
	static const struct step script[] = {
		GREET,
		EHLO_PIPE,
		EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"), DATA(), SEND("250 one\r\n"),
		EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"), DATA(), SEND("452 4.3.1 full\r\n"),
		EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"), DATA(), SEND("250 three\r\n"),
		QUIT_OK,
		END(),
	};
	static const char *const one[] = { "a@example.net", NULL };
	struct server s;
	struct run r;
	struct tmsg m[3];

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	for (int i = 0; i < 3; i++) {
		tmsg_init(&m[i], "x\r\n", one);
		r.msgs[i] = &m[i].m;
	}
	r.nmsgs = 3;
	run_go(&r);
	srv_join(&s);
	CHECK_INT(r.sent_called, 3);
	CHECK_STR(m[0].rcpts[0].reply.text, "one");
	CHECK_INT(m[1].rcpts[0].reply.code, 452);
	CHECK(m[1].rcpts[0].reply.temporary);
	CHECK_STR(m[2].rcpts[0].reply.text, "three");
	for (int i = 0; i < 3; i++)
		tmsg_free(&m[i]);
}

TEST(large_message_streamed)
{
	/* 2 MiB of lines that all start with '.', across many 64 KiB chunks and
	 * output refills: every line stuffed, nothing lost, one end of data. */
	static const struct step script[] = {
		GREET, EHLO_PIPE,
		EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"), DATA(), SEND("250 ok\r\n"),
		QUIT_OK,
		END(),
	};
	static const char *const one[] = { "a@example.net", NULL };
	enum { LINE = 77, LINES = 2 * 1024 * 1024 / LINE };
	struct server s;
	struct run r;
	struct tmsg m;
	char *body = malloc((size_t)LINE * LINES + 1);

	for (size_t i = 0; i < LINES; i++) {
		memset(body + i * LINE, 'a' + (int)(i % 26), LINE);
		body[i * LINE] = '.';
		body[i * LINE + LINE - 2] = '\r';
		body[i * LINE + LINE - 1] = '\n';
	}
	body[(size_t)LINE * LINES] = '\0';
	srv_start(&s, script, NULL);
	run_init(&r, &s);
	tmsg_init(&m, body, one);
	r.msgs[0] = &m.m;
	r.nmsgs = 1;
	run_go(&r);
	srv_join(&s);
	CHECK_INT(m.rcpts[0].reply.code, 250);
	CHECK_INT(s.datadots, LINES);
	CHECK_INT(s.datatotal, (size_t)LINE * LINES + LINES + 3);
	tmsg_free(&m);
	free(body);
}

TEST(large_message_mostly_unstuffed)
{
	/* 2 MiB of 64-byte lines, so that every 64 KiB chunk starts a line: a few
	 * lines start with '.', among them the first line of a chunk (the stuffing
	 * must carry across reads) and the first of the message; the rest goes
	 * out as read. */
	static const struct step script[] = {
		GREET, EHLO_PIPE,
		EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n354 go\r\n"), DATA(), SEND("250 ok\r\n"),
		QUIT_OK,
		END(),
	};
	static const char *const one[] = { "a@example.net", NULL };
	enum { LINE = 64, LINES = 2 * 1024 * 1024 / LINE };
	struct server s;
	struct run r;
	struct tmsg m;
	char *body = malloc((size_t)LINE * LINES + 1);
	size_t dots = 0;

	for (size_t i = 0; i < LINES; i++) {
		memset(body + i * LINE, 'a' + (int)(i % 26), LINE);
		if (i == 0 || i == 1024 || i == 3 * 1024 || i % 997 == 5) {
			body[i * LINE] = '.';
			dots++;
		}
		body[i * LINE + LINE - 2] = '\r';
		body[i * LINE + LINE - 1] = '\n';
	}
	body[(size_t)LINE * LINES] = '\0';
	srv_start(&s, script, NULL);
	run_init(&r, &s);
	/* 2 MiB through the line-by-line scripted server under ASan on a loaded machine. */
	r.p.command_timeout = 10;
	r.p.data_timeout = 10;
	tmsg_init(&m, body, one);
	r.msgs[0] = &m.m;
	r.nmsgs = 1;
	run_go(&r);
	srv_join(&s);
	CHECK_INT(m.rcpts[0].reply.code, 250);
	CHECK_INT(s.datadots, dots);
	CHECK_INT(s.datatotal, (size_t)LINE * LINES + dots + 3);
	tmsg_free(&m);
	free(body);
}

/* One transaction against a misbehaving server: the outcome must be a temporary
 * failure without a reply code, and the client must not be reusable. */
static void expect_txn_failure(const struct step *script, const char *text_part)
{
	struct server s;
	struct run r;
	struct tmsg m;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	tmsg_init(&m, "x\r\n", two_rcpts);
	r.msgs[0] = &m.m;
	r.nmsgs = 1;
	run_go(&r);
	srv_join(&s);
	CHECK(r.ready_ok);
	CHECK_INT(r.sent_called, 1);
	CHECK_INT(r.txn[0].code, 0);
	CHECK(r.txn[0].temporary);
	CHECK(!r.usable_after[0]);
	CHECK_MSG(strstr(r.txn[0].text, text_part) != NULL, "text \"%s\"", r.txn[0].text);
	for (int i = 0; i < 2; i++) {
		CHECK_INT(m.rcpts[i].reply.code, 0);
		CHECK(m.rcpts[i].reply.temporary);
	}
	tmsg_free(&m);
}

TEST(garbage_reply)
{
	static const struct step script[] = {
		GREET, EHLO_PLAIN, EXPECT("MAIL"), SEND("HTTP/1.0 200 OK\r\n"), END(),
	};
	expect_txn_failure(script, "protocol error");
}

TEST(overlong_reply_line)
{
	static const struct step script[] = {
		GREET, EHLO_PLAIN, EXPECT("MAIL"), SEND("250 "), { OP_FLOOD, "xxxxxxxxxx", 1000 },
		END(),
	};
	expect_txn_failure(script, "reply line too long");
}

TEST(endless_multiline_reply)
{
	static const struct step script[] = {
		GREET, EHLO_PLAIN, EXPECT("MAIL"), { OP_FLOOD, "250-more\r\n", 100000 }, END(),
	};
	expect_txn_failure(script, "too many reply lines");
}

TEST(stall_after_data)
{
	static const struct step script[] = {
		GREET, EHLO_PLAIN,
		EXPECT("MAIL"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"),
		DATA(), { OP_SLEEP, NULL, 2500 },
		END(),
	};
	expect_txn_failure(script, "timed out while waiting for the reply to the end of data");
}

TEST(close_mid_transaction)
{
	static const struct step script[] = {
		GREET, EHLO_PLAIN,
		EXPECT("MAIL"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), { OP_CLOSE, NULL, 0 },
		END(),
	};
	expect_txn_failure(script, "lost connection with localhost[127.0.0.1] while sending RCPT TO");
}

static void expect_setup_failure(const struct step *script, struct run *r, struct server *s,
				 SSL_CTX *sctx)
{
	struct tmsg m;

	tmsg_init(&m, "x\r\n", two_rcpts);
	r->msgs[0] = &m.m;
	r->nmsgs = 1;
	(void)script;
	(void)sctx;
	run_go(r);
	srv_join(s);
	CHECK(r->ready_called && !r->ready_ok);
	CHECK_INT(r->sent_called, 0);
	tmsg_free(&m);
}

TEST(greeting_554)
{
	static const struct step script[] = {
		SEND("554 5.7.1 go away\r\n"), QUIT_OK, END(),
	};
	struct server s;
	struct run r;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	expect_setup_failure(script, &r, &s, NULL);
	CHECK_INT(r.ready_failure.code, 554);
	CHECK(!r.ready_failure.temporary);
	CHECK_STR(r.ready_failure.status, "5.7.1");
}

TEST(connect_refused)
{
	struct server s;
	struct run r;
	static const struct step script[] = { END() };

	/* A listener that is closed at once: the port is then (very likely) refused. */
	srv_start(&s, script, NULL);
	run_init(&r, &s);
	shutdown(s.lfd, SHUT_RDWR);
	pthread_join(s.thread, NULL);
	close(s.lfd);
	r.msgs[0] = NULL;
	run_go(&r);
	CHECK(!r.ready_ok);
	CHECK_INT(r.ready_failure.code, 0);
	CHECK(r.ready_failure.temporary);
	CHECK_STR(r.ready_failure.status, "4.4.1");
}

TEST(starttls_required_not_offered)
{
	static const struct step script[] = {
		GREET, EHLO_PLAIN, QUIT_OK, END(),
	};
	struct server s;
	struct run r;
	char err[256];
	SSL_CTX *ctx = smtpc_tls_ctx_new(NULL, err, sizeof(err));

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	r.p.tls = SMTPC_TLS_STARTTLS;
	r.p.ssl_ctx = ctx;
	expect_setup_failure(script, &r, &s, NULL);
	CHECK_INT(r.ready_failure.code, 0);
	CHECK(r.ready_failure.temporary);
	CHECK_STR(r.ready_failure.status, "4.7.4");
	CHECK(strstr(r.ready_failure.text, "TLS required but not offered by the server") != NULL);
	SSL_CTX_free(ctx);
}

TEST(auth_refused_without_tls)
{
	static const struct step script[] = {
		GREET, SEND("250-fake.test\r\n250 AUTH PLAIN\r\n"), QUIT_OK, END(),
	};
	struct server s;
	struct run r;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	r.p.auth_user = "user";
	r.p.auth_pass = "pass";
	expect_setup_failure(script, &r, &s, NULL);
	CHECK_INT(r.ready_failure.code, 0);
	CHECK(r.ready_failure.temporary);
	CHECK(strstr(r.ready_failure.text, "without TLS") != NULL);
	s.got[s.gotlen] = '\0';
	CHECK(strstr(s.got, "AUTH") == NULL);
}

/* --- TLS ---------------------------------------------------------------------- */

static char cert_path[64];

/* A self-signed certificate for "localhost"; its PEM goes to cert_path. */
static SSL_CTX *server_ctx(void)
{
	static EVP_PKEY *pkey;
	static X509 *x;

	if (!x) {
		pkey = EVP_EC_gen("P-256");
		x = X509_new();
		X509_set_version(x, 2);
		ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
		X509_gmtime_adj(X509_getm_notBefore(x), -3600);
		X509_gmtime_adj(X509_getm_notAfter(x), 86400);
		X509_set_pubkey(x, pkey);
		X509_NAME *n = X509_get_subject_name(x);
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
					   -1, -1, 0);
		X509_set_issuer_name(x, n);
		X509V3_CTX v3;
		X509V3_set_ctx_nodb(&v3);
		X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
							  "DNS:localhost");
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
		X509_sign(x, pkey, EVP_sha256());
		strcpy(cert_path, "/tmp/test_smtp_client_cert.XXXXXX");
		int fd = mkstemp(cert_path);
		FILE *f = fdopen(fd, "w");
		PEM_write_X509(f, x);
		fclose(f);
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_use_certificate(ctx, x);
	SSL_CTX_use_PrivateKey(ctx, pkey);
	return ctx;
}

/* Run script over STARTTLS with AUTH as "user" (password pass), one message to two_rcpts. */
static void run_starttls_auth(const struct step *script, const char *pass, struct run *r,
			      struct tmsg *m)
{
	struct server s;
	char err[256];
	SSL_CTX *sctx = server_ctx();
	SSL_CTX *ctx = smtpc_tls_ctx_new(NULL, err, sizeof(err));

	CHECK(ctx != NULL);
	srv_start(&s, script, sctx);
	run_init(r, &s);
	r->p.tls = SMTPC_TLS_STARTTLS;
	r->p.ssl_ctx = ctx;
	r->p.auth_user = "user";
	r->p.auth_pass = pass;
	tmsg_init(m, "x\r\n", two_rcpts);
	r->msgs[0] = &m->m;
	r->nmsgs = 1;
	run_go(r);
	srv_join(&s);
	SSL_CTX_free(ctx);
	SSL_CTX_free(sctx);
}

TEST(starttls_auth_plain)
{
	/* The plaintext after "220 go" is an injection attempt: it must be discarded. */
	static const struct step script[] = {
		GREET,
		SEND("250-fake.test\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS\r\n"), SEND("220 go\r\n250 injected\r\n"),
		{ OP_TLS, NULL, 0 },
		EXPECT("EHLO client.test\r\n"),
		SEND("250-fake.test\r\n250-PIPELINING\r\n250 AUTH LOGIN PLAIN\r\n"),
		EXPECT("AUTH PLAIN AHVzZXIAcGFzcw==\r\n"), SEND("235 2.7.0 ok\r\n"),
		EXPECT("MAIL"), EXPECT("RCPT"), EXPECT("RCPT"), EXPECT("DATA"),
		SEND("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"), DATA(), SEND("250 ok\r\n"),
		QUIT_OK,
		END(),
	};
	struct run r;
	struct tmsg m;

	run_starttls_auth(script, "pass", &r, &m);
	CHECK(r.ready_ok);
	CHECK(r.info.tls && !r.info.tls_verified && r.info.pipelining);
	CHECK(r.info.tls_version[0] != '\0' && r.info.tls_cipher[0] != '\0');
	CHECK_INT(m.rcpts[0].reply.code, 250);
	CHECK_INT(m.rcpts[1].reply.code, 250);
	tmsg_free(&m);
}

/*
 * Regression (found with a real Postfix): the 535 to AUTH, then "221" to our QUIT and the
 * close in one burst over TLS. Draining the 221 made the TLS layer read on, find the end
 * and report it from inside the reply loop, which then took the 221 for the answer to AUTH
 * and reported the connection ready after the failure (ready() twice: use after free).
 */
TEST(starttls_auth_refused_then_quit_and_close)
{
	static const struct step script[] = {
		GREET,
		STARTTLS_DONE,
		SEND("250-fake.test\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"),
		EXPECT("AUTH PLAIN AHVzZXIAd3Jvbmc=\r\n"),
		SEND("535 5.7.8 Error: authentication failed\r\n"),
		EXPECT("QUIT\r\n"), { OP_SEND, "221 2.0.0 Bye\r\n", 1 },
		END(),
	};
	for (int round = 0; round < 20; round++) {
		struct run r;
		struct tmsg m;

		run_starttls_auth(script, "wrong", &r, &m); /* on_ready() checks it runs once */
		CHECK(!r.ready_ok);
		CHECK_INT(r.ready_failure.code, 535);
		CHECK(r.ready_failure.temporary); /* as Postfix: an AUTH failure defers */
		CHECK(strcmp(r.ready_failure.status, "4.7.8") == 0);
		CHECK_INT(r.sent_called, 0);
		tmsg_free(&m);
	}
}

TEST(starttls_verified_auth_login)
{
	static const struct step script[] = {
		GREET,
		STARTTLS_DONE,
		SEND("250-fake.test\r\n250 AUTH=LOGIN\r\n"),
		EXPECT("AUTH LOGIN\r\n"), SEND("334 VXNlcm5hbWU6\r\n"),
		EXPECT("dXNlcg==\r\n"), SEND("334 UGFzc3dvcmQ6\r\n"),
		EXPECT("cGFzcw==\r\n"), SEND("535 5.7.8 bad credentials\r\n"),
		QUIT_OK,
		END(),
	};
	struct server s;
	struct run r;
	char err[256];
	SSL_CTX *sctx = server_ctx();
	SSL_CTX *ctx = smtpc_tls_ctx_new(cert_path, err, sizeof(err));

	CHECK(ctx != NULL);
	srv_start(&s, script, sctx);
	run_init(&r, &s);
	r.p.tls = SMTPC_TLS_STARTTLS;
	r.p.tls_verify = true;
	r.p.ssl_ctx = ctx;
	r.p.auth_user = "user";
	r.p.auth_pass = "pass";
	expect_setup_failure(script, &r, &s, NULL);
	CHECK_INT(r.ready_failure.code, 535);
	CHECK(r.ready_failure.temporary);
	CHECK_STR(r.ready_failure.status, "4.7.8");
	CHECK_STR(r.ready_failure.text, "bad credentials");
	SSL_CTX_free(ctx);
	SSL_CTX_free(sctx);
}

TEST(tls_verify_fails)
{
	static const struct step script[] = {
		GREET,
		SEND("250-fake.test\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS\r\n"), SEND("220 go\r\n"),
		{ OP_TLS, NULL, 1 },
		END(),
	};
	struct server s;
	struct run r;
	char err[256];
	SSL_CTX *sctx = server_ctx();
	SSL_CTX *ctx = smtpc_tls_ctx_new(NULL, err, sizeof(err)); /* system CAs: not ours */

	srv_start(&s, script, sctx);
	run_init(&r, &s);
	r.p.tls = SMTPC_TLS_OPPORTUNISTIC;
	r.p.tls_verify = true;
	r.p.ssl_ctx = ctx;
	expect_setup_failure(script, &r, &s, NULL);
	CHECK_INT(r.ready_failure.code, 0);
	CHECK(r.ready_failure.temporary);
	CHECK_STR(r.ready_failure.status, "4.7.5");
	CHECK(strstr(r.ready_failure.text, "not verified") != NULL);
	SSL_CTX_free(ctx);
	SSL_CTX_free(sctx);
}

TEST(opportunistic_tls_failure_falls_back_to_plaintext)
{
	static const struct step script[] = {
		GREET,
		SEND("250-fake.test\r\n250 STARTTLS\r\n"),
		EXPECT("STARTTLS\r\n"), SEND("220 go\r\n"),
		SEND("this is not TLS\r\n"),
		{ OP_ACCEPT, NULL, 0 },
		GREET,
		SEND("250-fake.test\r\n250 STARTTLS\r\n"),
		EXPECT("MAIL"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"),
		DATA(), SEND("250 ok\r\n"),
		QUIT_OK,
		END(),
	};
	struct server s;
	struct run r;
	struct tmsg m;
	char err[256];
	SSL_CTX *ctx = smtpc_tls_ctx_new(NULL, err, sizeof(err));

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	r.p.tls = SMTPC_TLS_OPPORTUNISTIC;
	r.p.ssl_ctx = ctx;
	tmsg_init(&m, "x\r\n", two_rcpts);
	r.msgs[0] = &m.m;
	r.nmsgs = 1;
	run_go(&r);
	srv_join(&s);
	CHECK(r.ready_ok && !r.info.tls);
	CHECK_INT(m.rcpts[0].reply.code, 250);
	tmsg_free(&m);
	SSL_CTX_free(ctx);
}

TEST(implicit_tls)
{
	static const struct step script[] = {
		{ OP_TLS, NULL, 0 },
		GREET,
		SEND("250 fake.test\r\n"),
		EXPECT("MAIL"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"),
		DATA(), SEND("250 ok\r\n"),
		QUIT_OK,
		END(),
	};
	struct server s;
	struct run r;
	struct tmsg m;
	char err[256];
	SSL_CTX *sctx = server_ctx();
	SSL_CTX *ctx = smtpc_tls_ctx_new(cert_path, err, sizeof(err));

	srv_start(&s, script, sctx);
	run_init(&r, &s);
	r.p.tls = SMTPC_TLS_IMPLICIT;
	r.p.tls_verify = true;
	r.p.ssl_ctx = ctx;
	tmsg_init(&m, "x\r\n", two_rcpts);
	r.msgs[0] = &m.m;
	r.nmsgs = 1;
	run_go(&r);
	srv_join(&s);
	CHECK(r.ready_ok && r.info.tls && r.info.tls_verified);
	CHECK_INT(m.rcpts[0].reply.code, 250);
	tmsg_free(&m);
	SSL_CTX_free(ctx);
	SSL_CTX_free(sctx);
}

TEST(unsolicited_421_while_idle_and_free_in_callback)
{
	static const struct step script[] = {
		GREET, EHLO_PLAIN,
		EXPECT("MAIL"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), SEND("250 ok\r\n"),
		EXPECT("RCPT"), SEND("250 ok\r\n"),
		EXPECT("DATA"), SEND("354 go\r\n"),
		DATA(), SEND("250 ok\r\n421 4.4.2 idle timeout\r\n"),
		END(),
	};
	struct server s;
	struct run r;
	struct tmsg m1, m2;

	srv_start(&s, script, NULL);
	run_init(&r, &s);
	tmsg_init(&m1, "x\r\n", two_rcpts);
	tmsg_init(&m2, "x\r\n", two_rcpts);
	r.msgs[0] = &m1.m;
	r.msgs[1] = &m2.m;
	r.nmsgs = 2;
	r.use_free = true;
	run_go(&r);
	srv_join(&s);
	CHECK_INT(r.sent_called, 1); /* the 421 made it unusable: no second transaction */
	CHECK(!r.usable_after[0]);
	CHECK_INT(m1.rcpts[0].reply.code, 250);
	tmsg_free(&m1);
	tmsg_free(&m2);
}


/* --- a real, independent server: Python's aiosmtpd ------------------------------ */

static const char aiosmtpd_script[] =
	"import sys\n"
	"from aiosmtpd.controller import Controller\n"
	"class H:\n"
	"    async def handle_DATA(self, server, session, envelope):\n"
	"        with open(sys.argv[2], 'ab') as f:\n"
	"            f.write(b'FROM ' + envelope.mail_from.encode() + b'\\n')\n"
	"            for r in envelope.rcpt_tos:\n"
	"                f.write(b'TO ' + r.encode() + b'\\n')\n"
	"            f.write(envelope.original_content)\n"
	"        return '250 2.0.0 stored'\n"
	"c = Controller(H(), hostname='127.0.0.1', port=int(sys.argv[1]))\n"
	"c.start()\n"
	"sys.stdin.read()\n"
	"c.stop()\n";

TEST(real_server_aiosmtpd)
{
	char dir[] = "/tmp/test_smtp_client_aio.XXXXXX";
	char script[128], out[128], cmd[512], got[4096];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct server fake; /* only for the port */
	struct run r;
	struct tmsg m;

	if (access("/usr/bin/python3", X_OK) != 0 || !mkdtemp(dir))
		return;
	snprintf(script, sizeof(script), "%s/server.py", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	FILE *f = fopen(script, "w");
	fputs(aiosmtpd_script, f);
	fclose(f);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(lfd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(lfd, (struct sockaddr *)&sin, &sl);
	close(lfd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %u %s", script, ntohs(sin.sin_port), out);
	FILE *py = popen(cmd, "w");
	CHECK(py != NULL);
	if (!py)
		return;
	bool up = false;
	for (int i = 0; i < 100 && !up; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		up = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(fd);
		if (!up)
			usleep(100000);
	}
	CHECK(up);
	memset(&fake, 0, sizeof(fake));
	fake.port = ntohs(sin.sin_port);
	run_init(&r, &fake);
	r.p.command_timeout = 5;
	r.p.data_timeout = 5;
	tmsg_init(&m, body_dots, two_rcpts);
	r.msgs[0] = &m.m;
	r.nmsgs = 1;
	if (up)
		run_go(&r);
	pclose(py);
	CHECK(r.ready_ok);
	CHECK_INT(m.rcpts[0].reply.code, 250);
	CHECK_INT(m.rcpts[1].reply.code, 250);
	CHECK_STR(m.rcpts[0].reply.text, "stored");
	f = fopen(out, "rb");
	size_t n = f ? fread(got, 1, sizeof(got) - 1, f) : 0;
	if (f)
		fclose(f);
	got[n] = '\0';
	/* aiosmtpd undoes the dot-stuffing: the message arrives as it was. */
	CHECK_STR(got, "FROM sender@example.org\nTO a@example.net\nTO b@example.net\n"
		       "Subject: x\r\n\r\n.hidden\r\nline\r\n..two\r\n");
	unlink(out);
	unlink(script);
	rmdir(dir);
	tmsg_free(&m);
}

static void ignore_sigpipe(void) __attribute__((constructor));
static void ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test", true, false, getenv("TEST_DEBUG") ? LVL_DEBUG : LVL_WARN);
}

static void cleanup(void) __attribute__((destructor));
static void cleanup(void)
{
	if (cert_path[0])
		unlink(cert_path);
}

UNIT_MAIN()
