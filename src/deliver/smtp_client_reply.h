/*
 * smtp_client_reply: the parser of SMTP replies as a client reads them, and
 * of the EHLO reply's service extensions.
 *
 * RFC 5321 4.2 (reply lines: three digits, then SP or '-' and text; every
 * line of a multi-line reply carries the same code), 4.2.1 (first digit 2-5),
 * 4.5.3.1.5 (512-octet reply lines: longer lines up to SMTPC_REPLY_LINE_MAX
 * are accepted, as real servers send them), RFC 2034 and RFC 3463 (enhanced
 * status codes "class.subject.detail" at the start of each line's text),
 * RFC 5321 4.1.1.1 and the EHLO keywords of RFC 2920 (PIPELINING), 1870
 * (SIZE), 6152 (8BITMIME), 6531 (SMTPUTF8), 3461 (DSN), 3207 (STARTTLS),
 * 4954 (AUTH, and the pre-standard "AUTH=" form), 2034, 3030 (CHUNKING).
 *
 * Contract: resumable; feed one line at a time (CRLF removed) with
 * smtpc_reply_feed() until it returns SMTPC_REPLY_DONE or an error; the
 * parser resets itself when fed again after DONE or an error. The line reader
 * (smtp_client.c) enforces the line length before it copies a line; the
 * parser checks it again.
 *
 * Security notes: the reply is untrusted. The number of lines and the text
 * kept are bounded (SMTPC_REPLY_LINES_MAX, SMTPC_TEXT_MAX - 1); every byte of
 * text outside printable ASCII becomes '?', so the text can go into logs and
 * bounces. A malformed line (bad code, code outside 2xx-5xx, a continuation
 * line with another code, a byte other than SP or '-' after the code) is a
 * protocol error, never guessed at.
 */
#ifndef CARTEIRO_DELIVER_SMTP_CLIENT_REPLY_H
#define CARTEIRO_DELIVER_SMTP_CLIENT_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/smtp_client.h"
#include "util/buf.h"

/* The longest reply line accepted, CRLF excluded. */
#define SMTPC_REPLY_LINE_MAX 2048
/* The most lines in one reply. */
#define SMTPC_REPLY_LINES_MAX 100

enum smtpc_reply_result {
	SMTPC_REPLY_MORE = 0,     /* a continuation line was read; feed the next */
	SMTPC_REPLY_DONE = 1,     /* the last line was read: the reply is complete */
	SMTPC_REPLY_ERR_SYNTAX = -1,    /* not a reply line */
	SMTPC_REPLY_ERR_CODE = -2,      /* a continuation line with another code */
	SMTPC_REPLY_ERR_TOO_LONG = -3,  /* line longer than SMTPC_REPLY_LINE_MAX */
	SMTPC_REPLY_ERR_TOO_MANY = -4,  /* more than SMTPC_REPLY_LINES_MAX lines */
};

struct smtpc_reply_parser {
	unsigned lines;         /* lines of the current reply so far */
	int code;               /* from the first line */
	bool done;              /* the last call returned DONE or an error */
	char status[16];        /* enhanced status code of the first line that had one */
	size_t text_len;
	char text[SMTPC_TEXT_MAX];
	struct slice line_text; /* the raw text of the line just fed (a view into it) */
};

/* Forget everything: ready for the first line of a new reply. */
void smtpc_reply_reset(struct smtpc_reply_parser *p);
/* Feed one line without its CRLF: an enum smtpc_reply_result. */
int smtpc_reply_feed(struct smtpc_reply_parser *p, struct slice line);
/* Fill out from a complete reply: code, text, status (the reply's, or "C.0.0"
 * with C the code's first digit), temporary (true unless 2xx or 5xx). */
void smtpc_reply_get(const struct smtpc_reply_parser *p, struct smtpc_reply *out);
/* A short name for a parser error, for logs and failure texts. */
const char *smtpc_reply_strerror(int err);

/* Is s (at its start) an enhanced status code "c.sss.ddd" followed by SP or its end?
 * *len receives its length. */
bool smtpc_status_parse(struct slice s, size_t *len);

enum {
	SMTPC_AUTH_PLAIN = 1 << 0,
	SMTPC_AUTH_LOGIN = 1 << 1,
};

/* The service extensions of an EHLO reply. */
struct smtpc_caps {
	bool pipelining;
	bool size;          /* SIZE was announced */
	uint64_t size_max;  /* its limit; 0: none given */
	bool eightbitmime;
	bool smtputf8;
	bool dsn;
	bool starttls;
	bool auth;          /* AUTH was announced (with any mechanisms) */
	unsigned auth_mechs; /* SMTPC_AUTH_* that we can use */
	bool enhancedstatuscodes;
	bool chunking;
};

void smtpc_caps_reset(struct smtpc_caps *c);
/* Read one line of text of an EHLO reply (not the first: that is the greeting). */
void smtpc_caps_line(struct smtpc_caps *c, struct slice text);

#endif
