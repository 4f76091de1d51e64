/*
 * smtp_client: the outbound SMTP client (RFC 5321), one connection to one
 * server, reused for several transactions.
 *
 * The caller (the queue manager) picks the address, then:
 *
 *   smtpc_connect()  TCP connect, greeting, EHLO (HELO when EHLO is refused),
 *                    STARTTLS (opportunistic or required) and EHLO again,
 *                    AUTH PLAIN or LOGIN when credentials are given (over TLS
 *                    only). ready(arg, NULL) when the connection can take a
 *                    transaction; ready(arg, failure) when it failed: the
 *                    client is then already gone.
 *   smtpc_send()     one transaction: MAIL, RCPT..., DATA and the message,
 *                    pipelined when the server offers PIPELINING (RFC 2920).
 *                    sent(arg, txn) when it is over; every rcpts[i].reply is
 *                    then that recipient's outcome (2xx: delivered).
 *   smtpc_send() again while smtpc_usable(), or smtpc_quit() / smtpc_free().
 *
 * Every callback runs from the event loop, never inside the call that started
 * the operation. At most one operation is in flight per client.
 *
 * Extensions: SIZE (a message above the server's limit fails at once,
 * 5.3.4), 8BITMIME (BODY=8BITMIME when the message has 8-bit data and the
 * server offers it), SMTPUTF8 (a message that needs it toward a server
 * without it fails permanently, 5.6.7, RFC 6531 3.4), DSN (NOTIFY, ORCPT,
 * RET, ENVID passed on, xtext-encoded, only when offered, RFC 3461).
 *
 * Security: every reply from the server is untrusted. Reply lines are read
 * with a length limit, multi-line replies with a limit on their number,
 * garbage is a protocol error (a temporary failure), and every wait has a
 * timeout (RFC 5321 4.5.3.2), so a hostile server can neither crash nor stall
 * the client. Reply text handed to the caller is printable ASCII only.
 * Credentials are never logged.
 */
#ifndef CARTEIRO_DELIVER_SMTP_CLIENT_H
#define CARTEIRO_DELIVER_SMTP_CLIENT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct event_base;
struct smtpc;

enum smtpc_tls {
	SMTPC_TLS_OPPORTUNISTIC, /* STARTTLS when offered; plaintext otherwise (MX delivery) */
	SMTPC_TLS_STARTTLS,      /* STARTTLS required: fail when not offered */
	SMTPC_TLS_IMPLICIT,      /* TLS from the first byte (port 465, RFC 8314) */
	SMTPC_TLS_NONE,          /* never */
};

struct smtpc_params {
	const char *helo;      /* our name for EHLO */
	const char *peer_name; /* the server's host name: logs, SNI, certificate check */
	const struct sockaddr *addr;
	socklen_t addrlen;
	enum smtpc_tls tls;
	SSL_CTX *ssl_ctx;      /* from smtpc_tls_ctx_new(); needed unless tls is NONE */
	bool tls_verify;       /* fail unless the certificate verifies for peer_name */
	const char *auth_user; /* NULL: no AUTH */
	const char *auth_pass;
	unsigned connect_timeout; /* seconds */
	unsigned command_timeout; /* greeting, EHLO, MAIL, RCPT, ... */
	unsigned data_timeout;    /* each block of the message, and the final reply */
};

#define SMTPC_TEXT_MAX 512

/* The outcome of a step: a server's reply, or what went wrong on our side. */
struct smtpc_reply {
	int code;       /* the server's 3-digit code; 0: no reply (connect, timeout, TLS, local) */
	bool temporary; /* worth retrying later: 4xx, and failures without a reply */
	char status[16];            /* enhanced status code, from the reply or chosen by us */
	char text[SMTPC_TEXT_MAX];  /* the reply's text (lines joined by ' '), or our explanation */
};

struct smtpc_info {
	bool tls;           /* TLS is active */
	bool tls_verified;  /* the certificate verified for peer_name */
	char tls_version[16];
	char tls_cipher[64];
	bool esmtp;         /* EHLO was accepted */
	bool pipelining, dsn, smtputf8, eightbitmime, auth;
	uint64_t size_max;  /* 0: not announced */
};

struct smtpc_rcpt {
	const char *address;
	unsigned notify;    /* SMTP_NOTIFY_* bits (smtpd/smtp_command.h), 0: none given */
	const char *orcpt;  /* "addr-type;address" (decoded), or NULL */
	struct smtpc_reply reply; /* out: this recipient's outcome */
};

struct smtpc_msg {
	const char *sender; /* "" for the null reverse-path */
	struct smtpc_rcpt *rcpts;
	size_t nrcpts;
	const char *envid;  /* DSN ENVID (decoded), or NULL */
	char ret;           /* DSN RET: 0, 'F' or 'H' */
	bool body_8bit;
	bool smtputf8;
	int fd;             /* the message: size bytes, CRLF line ends: */
	off_t pre_offset;   /* pre_size bytes at pre_offset (0: none), */
	uint64_t pre_size;
	off_t offset;       /* then the rest at offset */
	uint64_t size;
};

typedef void smtpc_ready_fn(void *arg, const struct smtpc_reply *failure);
typedef void smtpc_sent_fn(void *arg, const struct smtpc_reply *txn);

/* A client context for outbound TLS (TLS 1.2+, system CAs, or ca_file when not NULL). */
SSL_CTX *smtpc_tls_ctx_new(const char *ca_file, char *err, size_t errlen);

/* Connect and greet (see above); NULL only when out of memory (no callback then). */
struct smtpc *smtpc_connect(struct event_base *base, const struct smtpc_params *p,
			    smtpc_ready_fn *ready, void *arg);
/* Run one transaction; msg and its strings must stay valid until sent() runs.
 * txn is the final reply of the transaction (DATA's, or the failure that ended it). */
void smtpc_send(struct smtpc *c, struct smtpc_msg *msg, smtpc_sent_fn *sent, void *arg);
/* Can the connection take another transaction (idle, not closed by the server)? */
bool smtpc_usable(const struct smtpc *c);
const struct smtpc_info *smtpc_info(const struct smtpc *c);
/* Say QUIT, close when answered (or after a short timeout), free. No callback. */
void smtpc_quit(struct smtpc *c);
/* Close at once and free. No callback runs afterwards. */
void smtpc_free(struct smtpc *c);

#endif
