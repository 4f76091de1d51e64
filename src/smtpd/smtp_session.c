/*
 * smtp_session: the SMTP server state machine. See smtp_session.h.
 *
 * RFC 5321 (commands 4.1.1, replies 4.2, sequencing 4.1.4 and 4.3.2,
 * limits 4.5.3.1, Received 4.4), RFC 2920 PIPELINING, RFC 1870 SIZE,
 * RFC 6152 8BITMIME, RFC 2034 ENHANCEDSTATUSCODES, RFC 6531 SMTPUTF8,
 * RFC 3030 CHUNKING/BDAT, RFC 3461 DSN (parameters kept in the envelope),
 * RFC 3207 STARTTLS, RFC 8314 implicit TLS, RFC 4954 AUTH (mechanisms in
 * mail/sasl.c), RFC 6409 submission (8.2 Date, 8.3 Message-ID), RFC 3848
 * (ESMTPS/ESMTPA/ESMTPSA in Received).
 *
 * Security notes:
 *  - Every line is bounded before it is copied (CMD_LINE_ABS_MAX, then the
 *    verb's own limit); an overlong line is drained and refused as a whole.
 *  - Only CRLF ends a command or the data; a bare LF or CR in DATA/BDAT
 *    refuses the message (SMTP smuggling), never ends it.
 *  - Client text never goes into a reply; into logs only through LOG_ESC.
 *  - Relaying: a recipient outside local-domain needs a relay-network client;
 *    addr.c gives no meaning to '%', '!' or source routes, and resolve.c maps
 *    local addresses to mailboxes, so an address trick cannot relay.
 *  - The reply 250 to the end of the data is sent only from the spool's
 *    commit callback, after the message is durable.
 *  - STARTTLS: whatever the client sent behind the command is discarded, the
 *    220 is flushed, and only then does TLS start on the socket; the session
 *    then starts over (no HELO, no transaction), CVE-2011-0411.
 *  - AUTH is offered only over TLS (or to loopback clients when
 *    auth-plaintext-loopback is set); responses are never logged; the
 *    password is checked on an I/O thread while the session waits; a failure
 *    is answered after auth-failure-delay and counted in the table shared by
 *    the workers (auth_limit.c), which bans an address after
 *    auth-max-failures. An authenticated user may relay, and may use as
 *    sender only addresses that resolve to their own mailbox (or <>).
 *  - Anti-abuse checks (rate limits, local and DNS lists, greylisting) are
 *    smtp_policy.c's: the session asks it at connect, MAIL and RCPT, and
 *    waits in S_POLICY while its DNS lookups run (input is only buffered,
 *    so that a client that leaves is let go at once).
 *  - Sender authentication (SPF, DKIM, DMARC) and DKIM signing are
 *    smtp_msgauth.c's: started after MAIL is accepted, fed the data as it
 *    streams, and asked for a verdict and header lines at the end of the
 *    data, before the commit (the session waits in S_POLICY meanwhile).
 */
#include "smtpd/smtp_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mail/auth_check.h"
#include "mail/resolve.h"
#include "mail/sasl.h"
#include "queue/queue_store.h"
#include "smtpd/ar_filter.h"
#include "smtpd/auth_limit.h"
#include "smtpd/conn_limit.h"
#include "smtpd/smtp_command.h"
#include "smtpd/smtp_data.h"
#include "smtpd/smtp_msgauth.h"
#include "smtpd/smtp_policy.h"
#include "smtpd/smtp_reply.h"
#include "smtpd/smtp_server.h"
#include "tls/tls_bev.h"
#include "tls/tls_server.h"
#include "util/iopool.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/outflush.h"
#include "util/str.h"

/* The longest line ever buffered (an AUTH line, RFC 4954 4); each verb then has its own,
 * mostly smaller, limit. */
#define CMD_LINE_ABS_MAX (SASL_LINE_MAX + 2)
/* Stop answering commands while this much output waits for a client that does not read. */
#define OUTPUT_HIGH (64u * 1024)
/* libevent stops reading a socket once this much input is buffered. */
#define INPUT_HIGH (256u * 1024)
/* Input read while a check runs, only to see the client leave (pipelined commands fit). */
#define WATCH_INPUT_MAX (16u * 1024)
/* Queue ids remembered per session for the disconnect log line. */
#define SESSION_QIDS_MAX 8
/* Expanded recipients of one transaction (aliases can fan out). */
#define TXN_RCPTS_MAX 10000
/* Results of resolving one RCPT. */

enum smtp_state {
	S_CONNECTED,  /* greeted; no HELO/EHLO yet */
	S_READY,      /* HELO/EHLO done; no transaction */
	S_MAIL,       /* MAIL accepted */
	S_RCPT,       /* at least one RCPT accepted */
	S_DATA,       /* reading DATA content */
	S_BDAT_CHUNK, /* reading the bytes of a BDAT chunk */
	S_BDAT,       /* between BDAT chunks of a transaction */
	S_COMMIT,     /* the message is being made durable; input waits */
	S_CLOSING,    /* a final reply is being flushed; then the connection closes */
	S_TLS_START,  /* STARTTLS: the 220 is being flushed; input waits */
	S_TLS_HANDSHAKE, /* the TLS handshake runs; no command is read */
	S_AUTH,       /* AUTH: a challenge was sent, the response line is due */
	S_AUTH_CHECK, /* AUTH: the password is being checked (or a failure delayed) */
	S_POLICY,     /* a policy check's lookups run (before the greeting, or at MAIL) */
	S_GREET_PAUSE, /* greet-pause: the greeting waits; a client that speaks first is refused */
	S_COUNT
};

static const char *const state_names[S_COUNT] = {
	"connected", "ready", "mail", "rcpt", "data", "bdat-chunk", "bdat", "commit", "closing",
	"tls-start", "tls-handshake", "auth", "auth-check", "policy", "greet-pause",
};

#define ST(x) (1u << (x))
#define CMD_STATES (ST(S_CONNECTED) | ST(S_READY) | ST(S_MAIL) | ST(S_RCPT) | ST(S_BDAT))

struct smtp_txn {
	struct smtp_mail_args mail;
	struct envelope env;
	unsigned rcpt_cmds; /* accepted RCPT commands: what max-recipients counts */
	unsigned rcpt_refused; /* refused RCPT commands */
	char first_rcpt[ADDR_TEXT_MAX + 1];
	struct smtp_data reader;
	struct ar_filter ar_filter; /* between the reader and the spool: forged A-R fields out */
	struct queue_txn *q; /* from DATA/first BDAT until committed or aborted */
	bool bdat;           /* content comes in BDAT chunks */
	bool bdat_failed;    /* a chunk was refused: refuse the rest until LAST/RSET */
	enum smtp_reply_id bdat_error;
	uint64_t bdat_total; /* declared chunk sizes so far */
	char added_headers[ADDR_DOMAIN_MAX + 128]; /* Date/Message-ID added on submission */
	struct smtp_msgauth *msgauth; /* SPF/DKIM/DMARC or DKIM signing; NULL: none */
	bool msgauth_started;
};

struct auth_check;

struct smtp_session {
	struct smtpd *d;
	struct smtp_session *prev, *next;
	struct bufferevent *bev;
	struct outflush_conn out;  /* plain connections: replies written at the end of the pass */
	const struct listen_cfg *listener;
	struct sockaddr_storage peer;
	char peer_ip[INET6_ADDRSTRLEN];
	char id[QUEUE_ID_LEN + 1];
	enum smtp_state state;
	enum smtp_state bdat_return; /* state to go back to after a refused chunk */
	char *helo;
	bool esmtp;
	bool relay_client;
	bool counted;          /* holds a conn_limit count */
	bool discarding_line;  /* inside an overlong command line */
	bool stop_requested;   /* server shutdown: close after the transaction */
	bool output_blocked;
	bool spool_blocked;
	bool peer_eof;
	bool in_process;
	bool bdat_last;
	bool bdat_discard;
	enum smtp_reply_id bdat_reply;
	uint64_t bdat_remaining;
	unsigned errors;
	unsigned messages;
	unsigned commands;
	struct smtp_txn *txn;
	char qids[SESSION_QIDS_MAX][QUEUE_ID_LEN + 1];
	unsigned nqids;
	const char *close_reason;

	/* TLS and AUTH */
	bool tls;                       /* the connection is encrypted */
	struct tls_info tls_info;       /* valid when tls */
	char *auth_user;                /* the account's address after AUTH, else NULL */
	struct sasl *sasl;              /* the AUTH exchange in progress */
	struct auth_check *auth_check;  /* the password check in flight */
	enum sasl_mech auth_mech;       /* of the check in flight */
	struct event *auth_delay;       /* the pause before a failure reply */
	bool auth_banned;               /* the failure being delayed banned the client */
	enum smtp_reply_id refused;     /* the 421 of a connection limit (when !counted) */
	struct smtp_policy *policy;     /* the anti-abuse checks (smtp_policy.c) */
	struct event *greet_timer;      /* the end of greet-pause */
};

/* An address for a log line: escaped, and "" for the null path. */
#define ESC_ADDR(a) ((a)[0] ? LOG_ESC(a) : "")

struct smtp_command_def {
	enum smtp_verb verb;
	unsigned states;
	void (*handler)(struct smtp_session *s, struct slice arg);
};

static void session_process(struct smtp_session *s);
static void session_greet(struct smtp_session *s);
static void session_free(struct smtp_session *s, const char *reason);

/* --- state and replies ---------------------------------------------------- */

static void session_enter(struct smtp_session *s, enum smtp_state next)
{
	if (s->state != next)
		log_debug("sid=%s event=state from=%s to=%s", s->id, state_names[s->state],
			  state_names[next]);
	s->state = next;

	const struct config *cfg = s->d->cfg;
	unsigned secs = (next == S_DATA || next == S_BDAT_CHUNK) ? cfg->smtp_data_timeout
								 : cfg->smtp_command_timeout;
	struct timeval tv = { (time_t)secs, 0 };
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void reply_write(struct smtp_session *s, const struct smtp_reply *r, const char *detail)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	if (r->enhanced)
		evbuffer_add_printf(out, "%u %s %s%s%s\r\n", r->code, r->enhanced, r->text,
				    detail ? " " : "", detail ? detail : "");
	else
		evbuffer_add_printf(out, "%u %s%s%s\r\n", r->code, r->text, detail ? " " : "",
				    detail ? detail : "");
}

/* Send a reply; detail (our own text, never the client's) is appended. */
static void reply(struct smtp_session *s, enum smtp_reply_id id, const char *detail)
{
	reply_write(s, smtp_reply_get(id), detail);
}

/* Send a final reply and close once it is flushed. */
static void reply_and_close(struct smtp_session *s, enum smtp_reply_id id, const char *reason)
{
	reply(s, id, NULL);
	s->close_reason = reason;
	session_enter(s, S_CLOSING);
}

/* Send an error reply and count it; too many errors end the session (421). */
static void reply_error(struct smtp_session *s, enum smtp_reply_id id, const char *detail)
{
	const struct smtp_reply *r = smtp_reply_get(id);
	reply_write(s, r, detail);
	if (++s->errors >= s->d->cfg->smtp_max_errors) {
		log_info("sid=%s event=too_many_errors errors=%u", s->id, s->errors);
		reply_and_close(s, R_TOO_MANY_ERRORS, "too many errors");
	}
}

/* --- transactions --------------------------------------------------------- */

static void session_remember_qid(struct smtp_session *s, const char *id)
{
	if (s->nqids < SESSION_QIDS_MAX)
		memcpy(s->qids[s->nqids], id, QUEUE_ID_LEN + 1);
	s->nqids++;
}

/* End the current transaction (if any), dropping whatever it received. */
static void txn_reset(struct smtp_session *s)
{
	struct smtp_txn *txn = s->txn;
	if (!txn)
		return;
	if (txn->q) {
		if (s->state == S_COMMIT)
			queue_txn_detach(txn->q);
		else
			queue_txn_abort(txn->q);
	}
	smtp_msgauth_free(txn->msgauth); /* its lookups are cancelled */
	envelope_free(&txn->env);
	free(txn);
	s->txn = NULL;
	s->spool_blocked = false;
}

static enum smtp_state idle_state(const struct smtp_session *s)
{
	return s->helo ? S_READY : S_CONNECTED;
}

/* RFC 3848 and RFC 6531 7: ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP... */
static const char *protocol_name(const struct smtp_session *s)
{
	static const char *const names[2][4] = {
		{ "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" },
		{ "UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA" },
	};
	if (!s->esmtp)
		return "SMTP";
	bool utf8 = s->txn && s->txn->mail.smtputf8;
	return names[utf8][(s->tls ? 1 : 0) + (s->auth_user ? 2 : 0)];
}

/* RFC 5322 3.3 date-time, in UTC. */
static void rfc5322_date(char *dst, size_t len, time_t t)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(dst, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Submission (RFC 6409 8.2, 8.3): a missing Date or Message-ID is added. */
static const char *submission_headers(void *ctx, unsigned seen)
{
	struct smtp_session *s = ctx;
	struct smtp_txn *txn = s->txn;
	char date[64], stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	size_t o = 0;

	txn->added_headers[0] = '\0';
	if (!(seen & SMTP_DATA_HDR_DATE)) {
		rfc5322_date(date, sizeof date, now);
		o += (size_t)snprintf(txn->added_headers, sizeof txn->added_headers,
				      "Date: %s\r\n", date);
	}
	if (!(seen & SMTP_DATA_HDR_MESSAGE_ID) && o < sizeof txn->added_headers) {
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
		snprintf(txn->added_headers + o, sizeof txn->added_headers - o,
			 "Message-ID: <%s.%s@%s>\r\n", stamp, txn->env.id, s->d->cfg->hostname);
	}
	if (txn->added_headers[0])
		log_info("sid=%s qid=%s event=headers_added date=%s message_id=%s", s->id,
			 txn->env.id, seen & SMTP_DATA_HDR_DATE ? "no" : "yes",
			 seen & SMTP_DATA_HDR_MESSAGE_ID ? "no" : "yes");
	return txn->added_headers;
}

/* The content as received goes to the DKIM verifier; without forged A-R fields, to the spool. */
static int data_output(void *ctx, const char *p, size_t n)
{
	struct smtp_session *s = ctx;
	smtp_msgauth_data(s->txn->msgauth, p, n);
	return ar_filter_write(&s->txn->ar_filter, p, n);
}

static int spool_output(void *ctx, const char *p, size_t n)
{
	struct smtp_txn *txn = ctx;
	return queue_txn_write(txn->q, p, n);
}

static void spool_resume(void *arg)
{
	struct smtp_session *s = arg;
	s->spool_blocked = false;
	session_process(s);
}

/*
 * RFC 5321 4.4 trace header; every field here is ours or validated. TLS
 * (version, cipher) and, with received-show-auth, the user go in comments
 * after the from clause, as Postfix writes them.
 */
static int write_received(struct smtp_session *s)
{
	struct smtp_txn *txn = s->txn;
	char date[64], tls[128] = "", auth[SASL_NAME_MAX + 32] = "", buf[2048];
	int n;

	rfc5322_date(date, sizeof date, time(NULL));
	const char *lit_prefix = strchr(s->peer_ip, ':') ? "IPv6:" : "";
	if (s->tls)
		snprintf(tls, sizeof tls, "\t(using %s with cipher %s (%d bits))\r\n",
			 s->tls_info.version, s->tls_info.cipher, s->tls_info.bits);
	if (s->auth_user && s->d->cfg->received_show_auth)
		snprintf(auth, sizeof auth, "\t(authenticated as %s)\r\n", s->auth_user);
	if (txn->rcpt_cmds == 1)
		n = snprintf(buf, sizeof buf,
			     "Received: from %s ([%s%s])\r\n%s%s\tby %s (carteiro) with %s id %s\r\n"
			     "\tfor <%s>; %s\r\n",
			     s->helo, lit_prefix, s->peer_ip, tls, auth, s->d->cfg->hostname,
			     protocol_name(s), txn->env.id, txn->first_rcpt, date);
	else
		n = snprintf(buf, sizeof buf,
			     "Received: from %s ([%s%s])\r\n%s%s\tby %s (carteiro) with %s id %s;\r\n"
			     "\t%s\r\n",
			     s->helo, lit_prefix, s->peer_ip, tls, auth, s->d->cfg->hostname,
			     protocol_name(s), txn->env.id, date);
	if (n < 0 || (size_t)n >= sizeof buf)
		return -ENAMETOOLONG;
	return queue_txn_write(txn->q, buf, (size_t)n);
}

/* Open the spool file for the content (DATA or first BDAT). 0 or -errno. */
static int content_begin(struct smtp_session *s, bool bdat)
{
	struct smtp_txn *txn = s->txn;
	if (envelope_set(&txn->env.protocol, protocol_name(s)) < 0)
		return -ENOMEM;
	txn->q = queue_txn_begin(&s->d->store, &txn->env, spool_resume, s);
	if (!txn->q)
		return -ENOMEM;
	txn->bdat = bdat;
	smtp_data_init(&txn->reader, bdat ? SMTP_DATA_MODE_BDAT : SMTP_DATA_MODE_DATA,
		       s->d->cfg->max_message_size, data_output, s);
	/* Our Authentication-Results carry the hostname as authserv-id (smtp_msgauth.c). */
	ar_filter_init(&txn->ar_filter, s->d->cfg->hostname, spool_output, txn);
	if (s->listener->kind != LISTEN_SMTP || s->auth_user)
		smtp_data_set_header_end(&txn->reader, submission_headers);
	int r = write_received(s);
	if (r < 0) {
		queue_txn_abort(txn->q);
		txn->q = NULL;
	}
	return r;
}

static void committed(void *arg, int result, const char *id)
{
	struct smtp_session *s = arg;
	struct smtp_txn *txn = s->txn;

	txn->q = NULL; /* the store frees it */
	if (result < 0) {
		log_err("sid=%s qid=%s event=queue_failed error=\"%s\"", s->id, id, strerror(-result));
		reply(s, R_LOCAL_ERROR, NULL);
	} else {
		log_info("sid=%s qid=%s event=queued from=<%s> nrcpt=%zu size=%llu", s->id, id,
			 ESC_ADDR(txn->env.sender), txn->env.nrcpts,
			 (unsigned long long)txn->reader.size);
		char detail[QUEUE_ID_LEN + 1];
		memcpy(detail, id, sizeof detail);
		reply(s, R_QUEUED, detail);
		s->messages++;
		session_remember_qid(s, id);
	}
	s->state = S_READY; /* leave S_COMMIT first: txn_reset must not detach */
	txn_reset(s);
	session_enter(s, S_READY);
	if (s->stop_requested)
		reply_and_close(s, R_SHUTDOWN, "shutdown");
	session_process(s);
}

static void content_checked(void *arg, const struct smtp_msgauth_verdict *v);

/* The whole content has been read: refuse it with a reason, or commit it. */
static void content_end(struct smtp_session *s)
{
	struct smtp_txn *txn = s->txn;
	struct smtp_data *rd = &txn->reader;
	enum smtp_reply_id fail = R_COUNT;
	const char *why = NULL;

	if (rd->flags == 0 && ar_filter_end(&txn->ar_filter) < 0)
		rd->flags |= SMTP_DATA_OUTPUT_FAILED;
	if (rd->flags & SMTP_DATA_BARE_LF) {
		fail = R_BARE_LF_DATA;
		why = "bare_lf";
	} else if (rd->flags & SMTP_DATA_BARE_CR) {
		fail = R_BARE_CR_DATA;
		why = "bare_cr";
	} else if (rd->flags & SMTP_DATA_LINE_TOO_LONG) {
		fail = R_DATA_LINE_TOO_LONG;
		why = "line_too_long";
	} else if (rd->flags & SMTP_DATA_TOO_BIG) {
		fail = R_SIZE_EXCEEDED;
		why = "too_big";
	} else if (rd->received_count > s->d->cfg->max_received_headers) {
		fail = R_TOO_MANY_HOPS;
		why = "too_many_hops";
	} else if (rd->flags & SMTP_DATA_OUTPUT_FAILED) {
		fail = R_LOCAL_ERROR;
		why = "spool_error";
	}
	if (fail != R_COUNT) {
		log_info("sid=%s qid=%s event=reject stage=data reason=%s size=%llu", s->id,
			 txn->env.id, why, (unsigned long long)rd->size);
		txn_reset(s);
		session_enter(s, S_READY);
		reply_error(s, fail, NULL);
		return;
	}
	if (txn->ar_filter.removed > 0)
		log_info("sid=%s qid=%s event=auth_results_removed count=%u note=\"claimed our "
			 "authserv-id\"", s->id, txn->env.id, txn->ar_filter.removed);
	if (txn->msgauth) {
		session_enter(s, S_POLICY);
		smtp_msgauth_finish(txn->msgauth, content_checked, s);
		return;
	}
	session_enter(s, S_COMMIT);
	queue_txn_commit(txn->q, committed, s);
}

/* The sender authentication's verdict on the content: refuse, or commit with its headers. */
static void content_checked(void *arg, const struct smtp_msgauth_verdict *v)
{
	struct smtp_session *s = arg;
	struct smtp_txn *txn = s->txn;

	if (v->action == MSGAUTH_REJECT) {
		char domain[256];
		snprintf(domain, sizeof domain, "%s", v->reply); /* v goes with the transaction */
		log_info("sid=%s qid=%s event=reject stage=data reason=dmarc domain=%s size=%llu",
			 s->id, txn->env.id, LOG_ESC(domain), (unsigned long long)txn->reader.size);
		txn_reset(s);
		session_enter(s, S_READY);
		reply(s, R_DMARC_REJECT, domain);
		session_process(s);
		return;
	}
	if (v->headers_len > 0) {
		int r = queue_txn_prepend(txn->q, v->headers, v->headers_len);
		if (r < 0)
			log_warn("sid=%s qid=%s event=headers_dropped error=\"%s\"", s->id, txn->env.id,
				 strerror(-r));
	}
	session_enter(s, S_COMMIT);
	queue_txn_commit(txn->q, committed, s);
}

/* --- command handlers ----------------------------------------------------- */

static bool starttls_offered(const struct smtp_session *s)
{
	return !s->tls && s->d->tls && (s->listener->flags & LISTEN_STARTTLS);
}

/* AUTH only where the password cannot be read on the way (RFC 4954 4, RFC 8314). */
static bool auth_offered(const struct smtp_session *s)
{
	return s->tls || (s->d->cfg->auth_plaintext_loopback &&
			  netaddr_is_loopback((const struct sockaddr *)&s->peer));
}

static void cmd_helo_common(struct smtp_session *s, struct slice arg, bool esmtp)
{
	if (!smtp_helo_valid(arg)) {
		reply_error(s, R_HELO_SYNTAX, NULL);
		return;
	}
	/* RFC 5321 4.1.4: HELO/EHLO in a session resets the transaction. */
	txn_reset(s);
	char *name = strndup(arg.ptr, arg.len);
	if (!name) {
		reply(s, R_LOCAL_ERROR, NULL);
		return;
	}
	free(s->helo);
	s->helo = name;
	s->esmtp = esmtp;
	log_info("sid=%s event=helo name=%s esmtp=%s", s->id, LOG_ESC(name), esmtp ? "yes" : "no");
	session_enter(s, S_READY);

	struct evbuffer *out = bufferevent_get_output(s->bev);
	const struct config *cfg = s->d->cfg;
	if (!esmtp) {
		evbuffer_add_printf(out, "250 %s\r\n", cfg->hostname);
		return;
	}
	char size[32];
	const char *ext[10];
	size_t n = 0;
	snprintf(size, sizeof size, "SIZE %llu", (unsigned long long)cfg->max_message_size);
	ext[n++] = "PIPELINING";
	ext[n++] = size;
	ext[n++] = "ENHANCEDSTATUSCODES";
	ext[n++] = "8BITMIME";
	ext[n++] = "DSN";
	ext[n++] = "SMTPUTF8";
	if (starttls_offered(s))
		ext[n++] = "STARTTLS";
	if (auth_offered(s) && !s->auth_user)
		ext[n++] = "AUTH PLAIN LOGIN";
	ext[n++] = "CHUNKING";
	evbuffer_add_printf(out, "250-%s Hello [%s]\r\n", cfg->hostname, s->peer_ip);
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(out, "250%c%s\r\n", i + 1 < n ? '-' : ' ', ext[i]);
}

static void cmd_helo(struct smtp_session *s, struct slice arg)
{
	cmd_helo_common(s, arg, false);
}

static void cmd_ehlo(struct smtp_session *s, struct slice arg)
{
	cmd_helo_common(s, arg, true);
}

static enum smtp_reply_id cmd_error_reply(int r, bool sender)
{
	switch (r) {
	case SMTP_CMD_ERR_ADDR:
		return sender ? R_SENDER_SYNTAX : R_RCPT_SYNTAX;
	case SMTP_CMD_ERR_PARAM_UNKNOWN:
		return R_PARAM_UNKNOWN;
	case SMTP_CMD_ERR_BODY:
		return R_BODY_UNSUPPORTED;
	case SMTP_CMD_ERR_NOT_ENABLED:
		return R_UTF8_REQUIRED;
	default:
		return R_PARAM_SYNTAX;
	}
}

/* May the authenticated user send as from? Their address, or one that resolves to their
 * mailbox (an alias of theirs, user+tag); <> too, for bounces and receipts. */
static bool sender_owned(struct smtp_session *s, const struct addr *from)
{
	const struct config *cfg = s->d->cfg;
	struct resolve_ctx rc = { cfg, s->d->users, s->d->aliases };
	struct resolved *res = s->d->resolve_scratch;
	size_t n = 0;

	if (from->null || str_casecmp(from->text, s->auth_user) == 0)
		return true;
	if (from->literal || !config_is_local_domain(cfg, from->domain) ||
	    resolve_recipient(&rc, from, res, SMTPD_RESOLVE_MAX, &n) != RESOLVE_OK)
		return false;
	for (size_t i = 0; i < n; i++)
		if (res[i].kind == RESOLVE_LOCAL && strcmp(res[i].address, s->auth_user) == 0)
			return true;
	return false;
}

static void mail_checked(struct smtp_session *s, const struct smtp_policy_verdict *v);
static void policy_mail_done(void *arg);

/* MAIL with spf-policy reject-fail, once SPF is known: 250, or 550 5.7.23. */
static void mail_spf_checked(void *arg, bool fail, const char *explanation)
{
	struct smtp_session *s = arg;

	if (s->state != S_POLICY)
		return; /* closing already */
	if (fail) {
		log_info("sid=%s qid=%s event=reject stage=mail reason=spf_fail from=<%s>", s->id,
			 s->txn->env.id, ESC_ADDR(s->txn->env.sender));
		char detail[256];
		snprintf(detail, sizeof detail, "%s", explanation); /* it goes with the transaction */
		txn_reset(s);
		session_enter(s, S_READY);
		reply(s, R_SPF_FAIL, detail);
	} else {
		mail_checked(s, NULL);
	}
	session_process(s);
}

/*
 * Start the sender authentication of inbound mail (from the internet: an SMTP
 * listener, no AUTH, not exempted by the lists) or the DKIM signing of
 * outgoing mail (an authenticated user or a relay client, with dkim-sign
 * keys). True when the 250 to MAIL waits for SPF (spf-policy reject-fail).
 */
static bool msgauth_begin(struct smtp_session *s)
{
	struct smtpd *d = s->d;
	const struct config *cfg = d->cfg;
	bool inbound = s->listener->kind == LISTEN_SMTP && !s->auth_user &&
		       !smtp_policy_exempt(s->policy) && d->dns &&
		       (cfg->spf_policy != SPF_POLICY_OFF || cfg->dkim_verify);
	bool outgoing = (s->auth_user || s->relay_client) && d->dkim_keys;

	s->txn->msgauth_started = true;
	if (!inbound && !outgoing)
		return false;
	struct smtp_msgauth_params p = {
		.base = d->base,
		.resolver = &d->resolver,
		.cfg = cfg,
		.sid = s->id,
		.qid = s->txn->env.id,
		.client = (const struct sockaddr *)&s->peer,
		.helo = s->helo,
		.sender = s->txn->env.sender,
		.verify = inbound,
		.signers = outgoing ? d->dkim_keys : NULL,
		.psl = &d->psl,
	};
	s->txn->msgauth = smtp_msgauth_new(&p);
	if (s->txn->msgauth == NULL) {
		log_warn("sid=%s qid=%s event=msgauth_skipped error=\"out of memory\"", s->id,
			 s->txn->env.id);
		return false;
	}
	if (!smtp_msgauth_mail_waits(s->txn->msgauth))
		return false;
	session_enter(s, S_POLICY);
	smtp_msgauth_spf_wait(s->txn->msgauth, mail_spf_checked, s);
	return true;
}

static void cmd_mail(struct smtp_session *s, struct slice arg)
{
	struct smtp_txn *txn;
	int aerr = 0;

	if ((s->listener->flags & LISTEN_AUTH_REQUIRED) && !s->auth_user) {
		log_info("sid=%s event=reject stage=mail reason=auth_required client=%s", s->id,
			 s->peer_ip);
		reply_error(s, R_AUTH_REQUIRED, NULL);
		return;
	}
	txn = calloc(1, sizeof *txn);
	if (!txn) {
		reply(s, R_LOCAL_ERROR, NULL);
		return;
	}
	int r = smtp_parse_mail(arg, &txn->mail, &aerr);
	if (r < 0) {
		log_info("sid=%s event=reject stage=mail reason=syntax arg=%s", s->id,
			 LOG_ESCN(arg.ptr, arg.len));
		free(txn);
		reply_error(s, cmd_error_reply(r, true), r == SMTP_CMD_ERR_ADDR ? addr_strerror(aerr)
									     : NULL);
		return;
	}
	if (txn->mail.size_given && txn->mail.size > s->d->cfg->max_message_size) {
		log_info("sid=%s event=reject stage=mail reason=size size=%llu", s->id,
			 (unsigned long long)txn->mail.size);
		free(txn);
		reply_error(s, R_SIZE_EXCEEDED, NULL);
		return;
	}
	if (s->auth_user && !sender_owned(s, &txn->mail.from)) {
		log_info("sid=%s event=reject stage=mail reason=sender_not_owned user=%s from=<%s>",
			 s->id, s->auth_user, ESC_ADDR(txn->mail.from.text));
		free(txn);
		reply_error(s, R_SENDER_NOT_OWNED, NULL);
		return;
	}
	envelope_init(&txn->env);
	struct envelope *env = &txn->env;
	if (envelope_set(&env->sender, txn->mail.from.text) < 0 ||
	    envelope_set(&env->client_ip, s->peer_ip) < 0 || envelope_set(&env->helo, s->helo) < 0 ||
	    (txn->mail.envid[0] && envelope_set(&env->envid, txn->mail.envid) < 0)) {
		envelope_free(env);
		free(txn);
		reply(s, R_LOCAL_ERROR, NULL);
		return;
	}
	env->body_8bit = txn->mail.body == SMTP_BODY_8BITMIME;
	env->smtputf8 = txn->mail.smtputf8;
	env->ret = txn->mail.ret == SMTP_RET_FULL ? 'F' : txn->mail.ret == SMTP_RET_HDRS ? 'H' : 0;
	queue_store_new_id(&s->d->store, env->id);
	s->txn = txn;
	struct smtp_policy_verdict v;
	enum smtp_policy_status ps = smtp_policy_mail(s->policy, &txn->mail.from, s->helo,
						      s->auth_user, policy_mail_done, s, &v);
	if (ps == SMTP_POLICY_WAIT)
		session_enter(s, S_POLICY);
	else
		mail_checked(s, ps == SMTP_POLICY_REFUSE ? &v : NULL);
}

/* MAIL once its policy checks are done: 250, or the refusal v. */
static void mail_checked(struct smtp_session *s, const struct smtp_policy_verdict *v)
{
	struct smtp_txn *txn = s->txn;
	struct envelope *env = &txn->env;

	if (v) {
		log_info("sid=%s qid=%s event=reject stage=mail reason=%s from=<%s>", s->id, env->id,
			 v->reason, ESC_ADDR(env->sender));
		txn_reset(s);
		session_enter(s, S_READY);
		reply(s, v->reply, v->detail);
		return;
	}
	if (!txn->msgauth_started && msgauth_begin(s))
		return; /* the 250 waits for SPF */
	log_info("sid=%s qid=%s event=mail client=%s helo=%s from=<%s> size=%llu%s%s", s->id,
		 env->id, s->peer_ip, LOG_ESC(s->helo), ESC_ADDR(env->sender),
		 (unsigned long long)txn->mail.size, s->auth_user ? " user=" : "",
		 s->auth_user ? s->auth_user : "");
	session_enter(s, S_MAIL);
	reply(s, R_SENDER_OK, NULL);
}

static void policy_mail_done(void *arg)
{
	struct smtp_session *s = arg;
	if (s->state != S_POLICY)
		return; /* closing already */
	mail_checked(s, NULL);
	session_process(s);
}

static bool txn_has_rcpt(const struct envelope *env, const char *address)
{
	for (size_t i = 0; i < env->nrcpts; i++)
		if (strcmp(env->rcpts[i].address, address) == 0)
			return true;
	return false;
}

static void rcpt_reject(struct smtp_session *s, const char *to, const char *reason,
			enum smtp_reply_id id)
{
	s->txn->rcpt_refused++;
	log_info("sid=%s qid=%s event=rcpt to=<%s> result=rejected reason=%s", s->id,
		 s->txn->env.id, LOG_ESC(to), reason);
	if (id == R_TOO_MANY_RCPTS)
		reply(s, id, NULL); /* a normal limit, not a client error */
	else
		reply_error(s, id, NULL);
}

/* A recipient refused by a policy check: a verdict, not a client error (not counted). */
static void rcpt_policy_refused(struct smtp_session *s, const char *to,
				const struct smtp_policy_verdict *v)
{
	s->txn->rcpt_refused++;
	log_info("sid=%s qid=%s event=rcpt to=<%s> result=rejected reason=%s", s->id,
		 s->txn->env.id, LOG_ESC(to), v->reason);
	reply(s, v->reply, v->detail);
}

static void cmd_rcpt(struct smtp_session *s, struct slice arg)
{
	struct smtp_txn *txn = s->txn;
	struct smtp_rcpt_args ra;
	const struct config *cfg = s->d->cfg;
	int aerr = 0;

	int r = smtp_parse_rcpt(arg, txn->mail.smtputf8, &ra, &aerr);
	if (r < 0) {
		txn->rcpt_refused++;
		log_info("sid=%s qid=%s event=rcpt result=rejected reason=syntax arg=%s", s->id,
			 txn->env.id, LOG_ESCN(arg.ptr, arg.len));
		reply_error(s, cmd_error_reply(r, false),
			    r == SMTP_CMD_ERR_ADDR ? addr_strerror(aerr) : NULL);
		return;
	}
	if (txn->rcpt_cmds >= cfg->max_recipients) {
		rcpt_reject(s, ra.to.text, "too_many_recipients", R_TOO_MANY_RCPTS);
		return;
	}
	struct smtp_policy_verdict v;
	if (!smtp_policy_rcpt(s->policy, s->auth_user, &v)) {
		rcpt_policy_refused(s, ra.to.text, &v);
		return;
	}

	struct resolved *res = s->d->resolve_scratch;
	size_t n = 0;
	bool local = !ra.to.literal &&
		     (ra.to.domain[0] == '\0' || config_is_local_domain(cfg, ra.to.domain));
	if (local) {
		struct resolve_ctx rc = { cfg, s->d->users, s->d->aliases };
		r = resolve_recipient(&rc, &ra.to, res, SMTPD_RESOLVE_MAX, &n);
		if (r == RESOLVE_UNKNOWN) {
			rcpt_reject(s, ra.to.text, "unknown_user", R_UNKNOWN_USER);
			return;
		} else if (r == RESOLVE_LOOP) {
			rcpt_reject(s, ra.to.text, "alias_loop", R_ALIAS_LOOP);
			return;
		} else if (r < 0) {
			rcpt_reject(s, ra.to.text, "expansion_too_large", R_TOO_MANY_RCPTS);
			return;
		}
	} else if (!s->relay_client && !s->auth_user) {
		rcpt_reject(s, ra.to.text, "relay_denied", R_RELAY_DENIED);
		return;
	} else {
		res[0].kind = RESOLVE_REMOTE;
		memcpy(res[0].address, ra.to.text, sizeof res[0].address);
		n = 1;
	}

	if (txn->env.nrcpts + n > TXN_RCPTS_MAX) {
		rcpt_reject(s, ra.to.text, "too_many_recipients", R_TOO_MANY_RCPTS);
		return;
	}
	if (!smtp_policy_greylist(s->policy, &txn->mail.from, ra.to.text, s->auth_user, &v)) {
		rcpt_policy_refused(s, ra.to.text, &v);
		return;
	}
	/* RFC 3461 5.2.7, as Postfix: the members of a multi-recipient alias get the NOTIFY
	 * minus SUCCESS; the alias itself gets an "expanded" report, carried by one member. */
	unsigned member_notify = ra.notify;
	bool expanded = n > 1 && (ra.notify & SMTP_NOTIFY_SUCCESS); /* never with NEVER */
	if (expanded && !(member_notify &= ~(unsigned)SMTP_NOTIFY_SUCCESS))
		member_notify = SMTP_NOTIFY_NEVER;
	for (size_t i = 0; i < n; i++) {
		if (txn_has_rcpt(&txn->env, res[i].address))
			continue;
		char kind = res[i].kind == RESOLVE_LOCAL ? RCPT_LOCAL : RCPT_REMOTE;
		unsigned notify = member_notify;
		if (expanded) {
			notify |= SMTP_NOTIFY_EXPANDED;
			expanded = false;
		}
		if (envelope_add_rcpt(&txn->env, kind, res[i].address, ra.to.text, notify,
				      ra.orcpt[0] ? ra.orcpt : NULL) < 0) {
			reply(s, R_LOCAL_ERROR, NULL);
			return;
		}
		log_info("sid=%s qid=%s event=rcpt to=<%s> result=accepted %s=<%s>", s->id,
			 txn->env.id, LOG_ESC(ra.to.text), kind == RCPT_LOCAL ? "mailbox" : "relay",
			 LOG_ESC(res[i].address));
	}
	if (txn->rcpt_cmds++ == 0)
		memcpy(txn->first_rcpt, ra.to.text, sizeof txn->first_rcpt);
	session_enter(s, S_RCPT);
	reply(s, R_RCPT_OK, NULL);
}

static void cmd_data(struct smtp_session *s, struct slice arg)
{
	if (arg.len) {
		reply_error(s, R_PARAM_SYNTAX, NULL);
		return;
	}
	if (content_begin(s, false) < 0) {
		reply(s, R_LOCAL_ERROR, NULL);
		return;
	}
	session_enter(s, S_DATA);
	reply(s, R_DATA_GO, NULL);
}

static void bdat_chunk_end(struct smtp_session *s);

static void cmd_bdat(struct smtp_session *s, struct slice arg)
{
	struct smtp_txn *txn = s->txn;
	uint64_t size;
	bool last;

	if (smtp_parse_bdat(arg, &size, &last) < 0) {
		/* Without a size the chunk cannot be skipped: the stream is lost. */
		reply(s, R_PARAM_SYNTAX, "(Syntax: BDAT size [LAST])");
		s->close_reason = "bad BDAT";
		session_enter(s, S_CLOSING);
		return;
	}
	s->bdat_remaining = size;
	s->bdat_last = last;
	s->bdat_discard = false;
	s->bdat_return = s->state;

	enum smtp_reply_id err = R_COUNT;
	if (s->state == S_CONNECTED)
		err = R_NEED_HELO;
	else if (!txn)
		err = R_NEED_MAIL;
	else if (txn->env.nrcpts == 0)
		err = txn->rcpt_refused ? R_NO_VALID_RCPTS : R_NEED_RCPT;
	else if (txn->bdat_failed)
		err = txn->bdat_error;
	else if (size > s->d->cfg->max_message_size - txn->bdat_total)
		err = R_SIZE_EXCEEDED;
	else if (!txn->q && content_begin(s, true) < 0)
		err = R_LOCAL_ERROR;

	if (err != R_COUNT) {
		s->bdat_discard = true;
		s->bdat_reply = err;
		if (txn && txn->env.nrcpts > 0) {
			if (!txn->bdat_failed)
				log_info("sid=%s qid=%s event=reject stage=bdat reply=%u", s->id,
					 txn->env.id, smtp_reply_get(err)->code);
			txn->bdat_failed = true;
			txn->bdat_error = err;
			txn->bdat = true;
			if (txn->q) {
				queue_txn_abort(txn->q);
				txn->q = NULL;
			}
		}
	} else {
		txn->bdat_total += size;
	}
	session_enter(s, S_BDAT_CHUNK);
	if (size == 0)
		bdat_chunk_end(s);
}

static void bdat_chunk_end(struct smtp_session *s)
{
	struct smtp_txn *txn = s->txn;

	if (s->bdat_discard) {
		if (txn && txn->bdat) {
			if (s->bdat_last) {
				txn_reset(s);
				session_enter(s, S_READY);
			} else {
				session_enter(s, S_BDAT);
			}
		} else {
			session_enter(s, s->bdat_return);
		}
		reply_error(s, s->bdat_reply, NULL);
		return;
	}
	if (s->bdat_last) {
		smtp_data_bdat_end(&txn->reader);
		content_end(s);
		return;
	}
	char detail[64];
	snprintf(detail, sizeof detail, "%llu octets", (unsigned long long)txn->bdat_total);
	session_enter(s, S_BDAT);
	reply(s, R_BDAT_OK, detail);
}

static void cmd_rset(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	txn_reset(s);
	session_enter(s, idle_state(s));
	reply(s, R_RESET, NULL);
}

static void cmd_noop(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	reply(s, R_OK, NULL);
}

static void cmd_quit(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	txn_reset(s);
	reply_and_close(s, R_BYE, "quit");
}

static void cmd_help(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	reply(s, R_HELP, NULL);
}

static void cmd_vrfy(struct smtp_session *s, struct slice arg)
{
	/* RFC 5321 3.5.3: 252 answers without confirming or denying a user. */
	if (arg.len == 0)
		reply_error(s, R_PARAM_SYNTAX, NULL);
	else
		reply(s, R_VRFY, NULL);
}

static void cmd_expn(struct smtp_session *s, struct slice arg)
{
	(void)arg;
	reply_error(s, R_NOT_IMPLEMENTED, NULL);
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

/* Callbacks, back-pressure and dirty shutdown for a (new) bufferevent of the session. */
static void session_bev_setup(struct smtp_session *s)
{
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH);
	if (s->tls || (s->listener->flags & LISTEN_IMPLICIT_TLS) || s->state == S_TLS_START)
		bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
}

/* bufferevent_enable(), except that a plain connection's writing is left to outflush. */
static void session_enable(struct smtp_session *s, short what)
{
	if (outflush_attached(&s->out))
		what &= ~EV_WRITE;
	if (what)
		bufferevent_enable(s->bev, what);
}

/*
 * The 220 to STARTTLS is out: TLS takes over the socket. A TLS bufferevent of
 * its own on the socket (rather than a filter over the plain one) writes
 * straight to the kernel, so a last reply is never left behind at close.
 * Anything the client sent before the handshake is plaintext injection
 * (CVE-2011-0411): discarded.
 */
static void tls_begin(struct smtp_session *s)
{
	size_t discarded;
	outflush_detach(&s->out); /* from now on the output goes through OpenSSL */
	struct bufferevent *tb = tls_bev_starttls(s->d->tls, s->d->base, s->bev, &discarded);

	if (discarded)
		log_info("sid=%s event=starttls_discarded bytes=%zu", s->id, discarded);
	if (!tb) {
		session_free(s, "out of memory for TLS");
		return;
	}
	s->bev = tb;
	session_bev_setup(s);
	session_enter(s, S_TLS_HANDSHAKE);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void cmd_starttls(struct smtp_session *s, struct slice arg)
{
	if (s->tls) {
		reply_error(s, R_TLS_ACTIVE, NULL);
		return;
	}
	if (!starttls_offered(s)) {
		reply_error(s, R_STARTTLS_UNAVAILABLE, NULL);
		return;
	}
	if (arg.len) {
		reply_error(s, R_PARAM_SYNTAX, NULL);
		return;
	}
	/* RFC 3207 4.2: the session starts over; what follows the command is not believed. */
	struct evbuffer *in = bufferevent_get_input(s->bev);
	if (evbuffer_get_length(in)) {
		log_info("sid=%s event=starttls_discarded bytes=%zu", s->id, evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	txn_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	free(s->auth_user); /* a loopback plaintext AUTH does not survive either */
	s->auth_user = NULL;
	reply(s, R_STARTTLS_GO, NULL);
	session_enter(s, S_TLS_START);
}

/* The handshake has finished: log what it agreed on and start the session over. */
static void tls_established(struct smtp_session *s)
{
	bool implicit = (s->listener->flags & LISTEN_IMPLICIT_TLS) != 0;

	s->tls = true;
	tls_bev_established(s->bev, &s->tls_info, s->id, s->peer_ip,
			    implicit ? "implicit" : "starttls");
	session_enter(s, S_CONNECTED);
	if (implicit)
		session_greet(s);
	session_process(s);
}

/* The handshake failed: one line with OpenSSL's reason. */
static void tls_failed(struct smtp_session *s, const char *what)
{
	char why[TLS_ERROR_MAX];

	log_info("sid=%s event=tls_failed client=%s error=%s", s->id, s->peer_ip,
		 LOG_ESC(tls_bev_error(s->bev, why, sizeof why, what)));
	session_free(s, "tls handshake failed");
}

/* --- AUTH (RFC 4954) ---------------------------------------------------------- */

static void auth_end(struct smtp_session *s)
{
	if (s->sasl) {
		sasl_reset(s->sasl);
		free(s->sasl);
		s->sasl = NULL;
	}
	session_enter(s, idle_state(s));
}

/* After the reply to a checked AUTH: a server that began stopping meanwhile says so. */
static void auth_replied(struct smtp_session *s)
{
	if (s->stop_requested && s->state != S_CLOSING)
		reply_and_close(s, R_SHUTDOWN, "shutdown");
	session_process(s);
}

static void auth_checked_reply(struct smtp_session *s);

static void on_auth_delay(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	auth_checked_reply(arg);
}

/* A failed AUTH: the 535 (or, once banned, the 421) comes after auth-failure-delay. */
static void auth_failure(struct smtp_session *s, const char *user, enum sasl_mech mech)
{
	const struct config *cfg = s->d->cfg;
	unsigned n = auth_limit_failed(s->d->auth_limits, (const struct sockaddr *)&s->peer,
				       auth_limit_now(), cfg->auth_max_failures, cfg->auth_ban_time);

	s->auth_banned = n >= cfg->auth_max_failures;
	log_info("sid=%s event=auth_failed client=%s user=%s mechanism=%s failures=%u%s", s->id,
		 s->peer_ip, LOG_ESC(user), sasl_mech_name(mech), n,
		 s->auth_banned ? " banned=yes" : "");
	struct timeval tv = { (time_t)cfg->auth_failure_delay, 0 };
	if (!s->auth_delay)
		s->auth_delay = evtimer_new(s->d->base, on_auth_delay, s);
	if (!s->auth_delay || cfg->auth_failure_delay == 0) {
		auth_checked_reply(s);
		return;
	}
	session_enter(s, S_AUTH_CHECK);
	evtimer_add(s->auth_delay, &tv);
}

static void auth_checked_reply(struct smtp_session *s)
{
	if (s->state != S_AUTH_CHECK)
		return; /* closing already (timeout, EOF, shutdown) */
	auth_end(s);
	if (s->auth_banned) {
		reply_and_close(s, R_AUTH_BANNED, "auth failures");
		s->auth_banned = false;
	} else {
		reply_error(s, R_AUTH_FAILED, NULL);
	}
	auth_replied(s);
}

static void auth_check_done(void *arg, bool ok, const char *user)
{
	struct smtp_session *s = arg;
	enum sasl_mech mech = s->auth_mech;

	s->auth_check = NULL;
	if (s->state != S_AUTH_CHECK)
		return; /* closing already: the result is not wanted */
	if (!ok) {
		auth_failure(s, user, mech);
		return;
	}
	s->auth_user = strdup(user);
	if (!s->auth_user) {
		auth_end(s);
		reply(s, R_AUTH_TEMP, NULL);
	} else {
		log_info("sid=%s event=auth client=%s user=%s mechanism=%s result=ok", s->id,
			 s->peer_ip, s->auth_user, sasl_mech_name(mech));
		auth_end(s);
		reply(s, R_AUTH_OK, NULL);
	}
	auth_replied(s);
}

/* The exchange gave a name and a password: check them off the loop. */
static void auth_verify(struct smtp_session *s)
{
	struct sasl *sa = s->sasl;

	s->auth_mech = sa->mech;
	s->auth_check = auth_check_start(s->d->pool, s->d->users, sa->authcid, sa->password,
					 auth_check_done, s);
	sasl_reset(sa);
	if (!s->auth_check) {
		auth_end(s);
		reply(s, R_AUTH_TEMP, NULL);
		return;
	}
	session_enter(s, S_AUTH_CHECK);
}

/* Where the exchange stands after a step: a challenge, a check, or an error. */
static void auth_continue(struct smtp_session *s, int r)
{
	if (r == SASL_CONTINUE) {
		/* A challenge is protocol data, not a reply text: "334 " base64 (RFC 4954 4). */
		evbuffer_add_printf(bufferevent_get_output(s->bev), "334 %s\r\n", s->sasl->challenge);
		session_enter(s, S_AUTH);
	} else if (r == SASL_DONE) {
		auth_verify(s);
	} else {
		log_info("sid=%s event=auth_failed client=%s reason=%s mechanism=%s", s->id,
			 s->peer_ip, r == SASL_ERR_TOO_LONG ? "too_long" : "bad_response",
			 sasl_mech_name(s->sasl->mech));
		auth_end(s);
		reply_error(s, R_AUTH_DECODE, NULL);
	}
}

/* AUTH mechanism [initial-response] */
static void cmd_auth(struct smtp_session *s, struct slice arg)
{
	enum sasl_mech mech;

	if (!auth_offered(s)) {
		/* RFC 4954 6: 538 where TLS would make it available, else not here at all. */
		reply_error(s, starttls_offered(s) ? R_AUTH_NEED_TLS : R_AUTH_UNAVAILABLE, NULL);
		return;
	}
	if (s->auth_user) {
		reply_error(s, R_AUTH_ALREADY, NULL);
		return;
	}
	if (auth_limit_banned(s->d->auth_limits, (const struct sockaddr *)&s->peer,
			      auth_limit_now())) {
		log_info("sid=%s event=auth_refused client=%s reason=banned", s->id, s->peer_ip);
		reply_and_close(s, R_AUTH_BANNED, "auth banned");
		return;
	}
	const char *sp = memchr(arg.ptr, ' ', arg.len);
	struct slice name = { arg.ptr, sp ? (size_t)(sp - arg.ptr) : arg.len };
	struct slice initial = { sp ? sp + 1 : "", sp ? arg.len - name.len - 1 : 0 };
	if (name.len == 0 || (sp && (initial.len == 0 || memchr(initial.ptr, ' ', initial.len)))) {
		reply_error(s, R_PARAM_SYNTAX, NULL);
		return;
	}
	if (sasl_mech_parse(name, &mech) < 0) {
		reply_error(s, R_AUTH_MECH_UNKNOWN, NULL);
		return;
	}
	s->sasl = calloc(1, sizeof *s->sasl);
	if (!s->sasl) {
		reply(s, R_AUTH_TEMP, NULL);
		return;
	}
	auth_continue(s, sasl_start(s->sasl, mech, sp != NULL, initial));
}

/* A response line during AUTH (never logged: it carries the credentials). */
static void auth_response(struct smtp_session *s, struct slice line)
{
	if (line.len == 1 && line.ptr[0] == '*') {
		auth_end(s);
		reply_error(s, R_AUTH_CANCELLED, NULL);
		return;
	}
	auth_continue(s, sasl_step(s->sasl, line));
}

static const struct smtp_command_def commands[] = {
	{ SMTP_VERB_HELO, CMD_STATES, cmd_helo },
	{ SMTP_VERB_EHLO, CMD_STATES, cmd_ehlo },
	{ SMTP_VERB_MAIL, ST(S_READY), cmd_mail },
	{ SMTP_VERB_RCPT, ST(S_MAIL) | ST(S_RCPT), cmd_rcpt },
	{ SMTP_VERB_DATA, ST(S_RCPT), cmd_data },
	/* BDAT checks the state itself: a refused chunk must still be read. */
	{ SMTP_VERB_BDAT, CMD_STATES, cmd_bdat },
	{ SMTP_VERB_RSET, CMD_STATES, cmd_rset },
	{ SMTP_VERB_NOOP, CMD_STATES, cmd_noop },
	{ SMTP_VERB_QUIT, CMD_STATES, cmd_quit },
	{ SMTP_VERB_HELP, CMD_STATES, cmd_help },
	{ SMTP_VERB_VRFY, CMD_STATES, cmd_vrfy },
	{ SMTP_VERB_EXPN, CMD_STATES, cmd_expn },
	{ SMTP_VERB_STARTTLS, ST(S_CONNECTED) | ST(S_READY), cmd_starttls },
	{ SMTP_VERB_AUTH, ST(S_READY), cmd_auth },
};

static enum smtp_reply_id bad_sequence_reply(const struct smtp_session *s, enum smtp_verb verb)
{
	if (s->state == S_CONNECTED)
		return R_NEED_HELO;
	if (s->state == S_BDAT)
		return verb == SMTP_VERB_DATA ? R_DATA_AFTER_BDAT : R_BDAT_IN_PROGRESS;
	if (verb == SMTP_VERB_STARTTLS || verb == SMTP_VERB_AUTH)
		return R_TXN_IN_PROGRESS;
	if (verb == SMTP_VERB_MAIL)
		return R_NESTED_MAIL;
	if (verb == SMTP_VERB_RCPT || s->state == S_READY)
		return R_NEED_MAIL;
	/* RFC 5321 3.3: DATA after every RCPT was refused: "no valid recipients". */
	return s->txn && s->txn->rcpt_refused ? R_NO_VALID_RCPTS : R_NEED_RCPT;
}

static void handle_command(struct smtp_session *s, struct slice line, size_t wire_len)
{
	struct smtp_command cmd;

	smtp_command_parse(line, &cmd);
	log_debug("sid=%s event=command verb=%s", s->id, LOG_ESCN(cmd.name.ptr, cmd.name.len));
	if (wire_len > smtp_command_line_max(cmd.verb)) {
		reply_error(s, R_LINE_TOO_LONG, NULL);
		return;
	}
	if (cmd.verb == SMTP_VERB_UNKNOWN) {
		reply_error(s, R_SYNTAX, NULL);
		return;
	}
	if (s->stop_requested && (s->state == S_CONNECTED || s->state == S_READY) &&
	    cmd.verb != SMTP_VERB_QUIT) {
		reply_and_close(s, R_SHUTDOWN, "shutdown");
		return;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (commands[i].verb != cmd.verb)
			continue;
		if (!(commands[i].states & ST(s->state))) {
			reply_error(s, bad_sequence_reply(s, cmd.verb), NULL);
			return;
		}
		commands[i].handler(s, cmd.arg);
		return;
	}
	reply_error(s, R_NOT_IMPLEMENTED, NULL);
}

/* --- input ---------------------------------------------------------------- */

/* A line refused as a whole; one that should have been an AUTH response ends the exchange. */
static void line_refused(struct smtp_session *s, enum smtp_reply_id id)
{
	if (s->state == S_AUTH)
		auth_end(s);
	reply_error(s, id, NULL);
}

/* One command line (or AUTH response), if a whole one is buffered. Returns whether it made
 * progress. */
static bool command_input(struct smtp_session *s, struct evbuffer *in)
{
	size_t avail = evbuffer_get_length(in);
	if (avail == 0)
		return false;
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		if (s->discarding_line || avail > CMD_LINE_ABS_MAX) {
			/* Drop the overlong line as it comes; refuse it once it ends. */
			evbuffer_drain(in, avail);
			s->discarding_line = true;
		}
		return false;
	}
	size_t len = (size_t)eol.pos; /* bytes before the LF */
	if (s->discarding_line || len + 1 > CMD_LINE_ABS_MAX) {
		evbuffer_drain(in, len + 1);
		s->discarding_line = false;
		s->commands++;
		line_refused(s, R_LINE_TOO_LONG);
		return true;
	}
	char line[CMD_LINE_ABS_MAX];
	if (evbuffer_remove(in, line, len + 1) != (int)(len + 1))
		return false;
	s->commands++;
	if (len == 0 || line[len - 1] != '\r') {
		explicit_bzero(line, len);
		line_refused(s, R_BARE_LF_COMMAND);
		return true;
	}
	len--;
	if (memchr(line, '\0', len) || memchr(line, '\r', len)) {
		explicit_bzero(line, len);
		line_refused(s, s->state == S_AUTH ? R_AUTH_DECODE : R_SYNTAX);
		return true;
	}
	if (s->state == S_AUTH)
		auth_response(s, (struct slice){ line, len });
	else
		handle_command(s, (struct slice){ line, len }, len + 2);
	explicit_bzero(line, len); /* an AUTH line held credentials */
	return true;
}

static bool data_input(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return false;
	size_t used = smtp_data_feed(&s->txn->reader, v.iov_base, v.iov_len);
	evbuffer_drain(in, used);
	if (s->txn->reader.done)
		content_end(s);
	return true;
}

static bool bdat_input(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	if (s->bdat_remaining > 0) {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return false;
		size_t n = v.iov_len < s->bdat_remaining ? v.iov_len : (size_t)s->bdat_remaining;
		if (!s->bdat_discard)
			smtp_data_feed(&s->txn->reader, v.iov_base, n);
		evbuffer_drain(in, n);
		s->bdat_remaining -= n;
		if (s->bdat_remaining > 0)
			return true;
	}
	bdat_chunk_end(s);
	return true;
}

/* Does the session wait for something else than input (commit, flush, check, TLS)? */
static bool session_waiting(const struct smtp_session *s)
{
	return s->state == S_COMMIT || s->state == S_CLOSING || s->state == S_TLS_START ||
	       s->state == S_TLS_HANDSHAKE || s->state == S_AUTH_CHECK || s->state == S_POLICY ||
	       s->state == S_GREET_PAUSE;
}

/* Before an implicit TLS listener's handshake: nothing may be read (the handshake would start). */
static bool tls_pending(const struct smtp_session *s)
{
	return (s->listener->flags & LISTEN_IMPLICIT_TLS) && s->d->tls && !s->tls;
}

static void update_reading(struct smtp_session *s)
{
	/* The handshake reads through the TLS bufferevent; commands wait until it is done.
	 * While lookups or a password check run, input is only buffered (up to
	 * WATCH_INPUT_MAX: more waits in the kernel), so that a client that leaves is seen at
	 * once, not when the lookups end (up to dnsbl-timeout): its session, and its
	 * connection slot, go then. */
	bool watch = (s->state == S_POLICY || s->state == S_AUTH_CHECK ||
		      s->state == S_GREET_PAUSE) &&
		     !s->peer_eof && !tls_pending(s) &&
		     evbuffer_get_length(bufferevent_get_input(s->bev)) < WATCH_INPUT_MAX;
	bool want = s->state == S_TLS_HANDSHAKE || watch ||
		    (!session_waiting(s) && !s->output_blocked && !s->spool_blocked && !s->peer_eof);
	if (want)
		bufferevent_enable(s->bev, EV_READ);
	else
		bufferevent_disable(s->bev, EV_READ);
}

/* Handle everything buffered, in order, until input runs out or something must wait. */
static void session_process(struct smtp_session *s)
{
	if (s->in_process)
		return;
	s->in_process = true;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	while (!session_waiting(s)) {
		if (evbuffer_get_length(out) > OUTPUT_HIGH) {
			s->output_blocked = true;
			break;
		}
		if (s->txn && s->txn->q && queue_txn_busy(s->txn->q)) {
			s->spool_blocked = true;
			break;
		}
		bool progress;
		if (s->state == S_DATA)
			progress = data_input(s, in);
		else if (s->state == S_BDAT_CHUNK)
			progress = bdat_input(s, in);
		else
			progress = command_input(s, in);
		if (!progress)
			break;
	}
	update_reading(s);
	s->in_process = false;
	/* A client that closed its side gets its last replies, then we close (a password
	 * check in flight is detached). */
	if (s->peer_eof && s->state != S_COMMIT && s->state != S_CLOSING) {
		if (!s->close_reason)
			s->close_reason = s->state == S_DATA || s->state == S_BDAT_CHUNK
						  ? "eof in data"
						  : "eof";
		txn_reset(s);
		s->state = S_CLOSING;
	}
	if (s->state == S_CLOSING && evbuffer_get_length(out) == 0)
		session_free(s, s->close_reason ? s->close_reason : "closed");
}

/* --- libevent callbacks --------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;
	(void)bev;
	outflush_written(&s->out);
	if (s->state == S_TLS_START) {
		tls_begin(s);
		return;
	}
	if (s->state == S_CLOSING) {
		session_free(s, s->close_reason ? s->close_reason : "closed");
		return;
	}
	if (s->output_blocked) {
		s->output_blocked = false;
		session_process(s);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;
	(void)bev;

	if (what & BEV_EVENT_CONNECTED) {
		tls_established(s);
		return;
	}
	if (s->state == S_TLS_HANDSHAKE && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF |
						    BEV_EVENT_TIMEOUT))) {
		tls_failed(s, what & BEV_EVENT_TIMEOUT ? "timeout"
			      : what & BEV_EVENT_EOF ? "eof during the handshake"
						     : "connection error");
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if ((what & BEV_EVENT_WRITING) || s->state == S_CLOSING) {
			session_free(s, "write timeout");
			return;
		}
		log_info("sid=%s event=timeout state=%s", s->id, state_names[s->state]);
		txn_reset(s);
		reply_and_close(s, R_TIMEOUT, "timeout");
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		s->peer_eof = true;
		if (s->state == S_COMMIT)
			return; /* reply and close once the message is durable */
		session_process(s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		session_free(s, "connection error");
		return;
	}
}

/* --- life cycle ------------------------------------------------------------ */

static void session_free(struct smtp_session *s, const char *reason)
{
	struct smtpd *d = s->d;
	char qids[SESSION_QIDS_MAX * (QUEUE_ID_LEN + 1) + 16] = "";
	size_t o = 0;

	for (unsigned i = 0; i < s->nqids && i < SESSION_QIDS_MAX; i++)
		o += (size_t)snprintf(qids + o, sizeof qids - o, "%s%s", i ? "," : "", s->qids[i]);
	if (s->nqids > SESSION_QIDS_MAX)
		snprintf(qids + o, sizeof qids - o, ",+%u", s->nqids - SESSION_QIDS_MAX);
	log_info("sid=%s event=disconnect client=%s reason=%s messages=%u commands=%u errors=%u%s%s",
		 s->id, s->peer_ip, LOG_ESC(reason), s->messages, s->commands, s->errors,
		 s->nqids ? " qids=" : "", qids);
	txn_reset(s);
	if (s->counted)
		conn_limit_release(d->limits, d->worker, (struct sockaddr *)&s->peer);
	smtp_policy_free(s->policy); /* a lookup in flight is cancelled */
	if (s->auth_check)
		auth_check_detach(s->auth_check); /* it finishes alone and frees itself */
	if (s->auth_delay)
		event_free(s->auth_delay);
	if (s->greet_timer)
		event_free(s->greet_timer);
	if (s->sasl) {
		sasl_reset(s->sasl);
		free(s->sasl);
	}
	free(s->auth_user);
	if (s->tls && s->state == S_CLOSING)
		tls_bev_close_notify(s->bev);
	outflush_detach(&s->out);
	bufferevent_free(s->bev);
	free(s->helo);
	if (s->prev)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	d->nsessions--;
	free(s);
	smtpd_session_gone(d);
}

/* The greeting (or the 421 of a connection limit); for implicit TLS, once the handshake is
 * done. */
static void session_greet(struct smtp_session *s)
{
	struct smtpd *d = s->d;
	struct evbuffer *out = bufferevent_get_output(s->bev);

	if (!s->counted) {
		reply_and_close(s, s->refused, "connection limit");
		return;
	}
	if (d->cfg->demo)
		/* RFC 5321 4.2: a multi-line greeting; the last line is the usual one. */
		evbuffer_add_printf(out,
				    "220-%s ESMTP carteiro demo server\r\n"
				    "220-Local domain example.test; try: MAIL FROM:<you@example.org>, "
				    "RCPT TO:<demo@example.test>\r\n"
				    "220-Delivered mail lands in run/mail/example.test/demo/new/\r\n",
				    d->cfg->hostname);
	evbuffer_add_printf(out, "220 %s ESMTP carteiro\r\n", d->cfg->hostname);
}

static void policy_connect_done(void *arg);

/* Did the client speak before our greeting (RFC 5321 3.1: it must wait for it)? Refuse it. */
static bool pregreet_refused(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t n = evbuffer_get_length(in);

	if (n == 0)
		return false;
	log_info("sid=%s event=pregreet client=%s bytes=%zu action=reject", s->id, s->peer_ip, n);
	evbuffer_drain(in, n);
	reply_and_close(s, R_PREGREET, "pregreet");
	session_enable(s, EV_WRITE);
	update_reading(s);
	return true;
}

static void greet_pause_over(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (s->state != S_GREET_PAUSE)
		return;
	if (pregreet_refused(s))
		return;
	session_enable(s, EV_WRITE);
	if (s->stop_requested) {
		reply_and_close(s, R_SHUTDOWN, "shutdown");
	} else {
		session_enter(s, S_CONNECTED);
		session_greet(s);
	}
	session_process(s);
}

/*
 * Greet a plain connection, unless greet-pause holds the greeting of an smtp listener's
 * client first (not relay networks, allow-networks or dnswl clients): one that speaks
 * meanwhile, or spoke while the DNS lists were asked, is refused (a bot that does not wait
 * for the server, as postscreen's pregreet test and sendmail's greet_pause find them).
 */
static void greet_or_pause(struct smtp_session *s)
{
	unsigned pause = s->d->cfg->greet_pause;

	if (pause && s->counted && s->listener->kind == LISTEN_SMTP && !s->relay_client &&
	    !smtp_policy_exempt(s->policy)) {
		if (pregreet_refused(s))
			return;
		if (!s->greet_timer)
			s->greet_timer = evtimer_new(s->d->base, greet_pause_over, s);
		struct timeval tv = { (time_t)pause, 0 };
		if (s->greet_timer && evtimer_add(s->greet_timer, &tv) == 0) {
			session_enter(s, S_GREET_PAUSE);
			update_reading(s);
			return;
		}
	}
	session_enter(s, S_CONNECTED);
	session_greet(s);
}

void smtp_session_start(struct smtpd *d, evutil_socket_t fd, const struct sockaddr *peer,
			socklen_t peerlen, const struct listen_cfg *listener)
{
	struct smtp_session *s = calloc(1, sizeof *s);
	bool implicit = (listener->flags & LISTEN_IMPLICIT_TLS) && d->tls;

	if (!s) {
		evutil_closesocket(fd);
		return;
	}
	s->d = d;
	s->listener = listener;
	memcpy(&s->peer, peer, peerlen < sizeof s->peer ? peerlen : sizeof s->peer);
	netaddr_ip_text(peer, s->peer_ip, sizeof s->peer_ip);
	queue_id_next(&d->session_ids, s->id);
	s->bev = tls_bev_accept(implicit ? d->tls : NULL, d->base, fd);
	if (!s->bev) {
		free(s);
		return;
	}
	/* Without it (out of memory) the bufferevent writes, as for TLS. */
	if (!implicit && d->outflush)
		outflush_attach(d->outflush, &s->out, s->bev, on_write, on_event, s);
	/* Linked before anything can free it, so session_free always unlinks. */
	s->next = d->sessions;
	if (d->sessions)
		d->sessions->prev = s;
	d->sessions = s;
	d->nsessions++;

	session_bev_setup(s);
	s->state = S_CONNECTED;
	session_enter(s, S_CONNECTED);

	char port[8];
	snprintf(port, sizeof port, "%u", netaddr_port(peer));
	int lim = conn_limit_acquire(d->limits, d->worker, peer);
	if (lim != CONN_OK) {
		log_info("sid=%s event=connect client=%s port=%s result=refused reason=%s", s->id,
			 s->peer_ip, port,
			 lim == CONN_TOO_MANY ? "max_connections" : "max_connections_per_ip");
		s->refused = lim == CONN_TOO_MANY ? R_TOO_MANY_CONNECTIONS : R_TOO_MANY_FROM_IP;
		if (implicit) {
			/* Not worth a handshake: the client sees the connection close. */
			session_free(s, "connection limit");
			return;
		}
		session_greet(s);
		session_enable(s, EV_WRITE);
		return;
	}
	s->counted = true;
	s->relay_client = config_is_relay_client(d->cfg, peer);
	log_info("sid=%s event=connect client=%s port=%s listener=%s relay=%s kind=%s", s->id,
		 s->peer_ip, port, listener->text, s->relay_client ? "yes" : "no",
		 listen_kind_name(listener->kind));
	s->policy = smtp_policy_new(d, s->id, peer, s->peer_ip, s->relay_client, listener);
	if (!s->policy) {
		session_free(s, "out of memory");
		return;
	}
	struct smtp_policy_verdict v;
	enum smtp_policy_status ps = smtp_policy_connect(s->policy, policy_connect_done, s, &v);
	if (ps == SMTP_POLICY_REFUSE && implicit) {
		session_free(s, "rate limit"); /* not worth a handshake, as for connection limits */
		return;
	}
	if (ps == SMTP_POLICY_REFUSE) {
		reply_and_close(s, v.reply, "rate limit");
		session_enable(s, EV_WRITE);
		return;
	}
	if (ps == SMTP_POLICY_WAIT) {
		/* The greeting waits for the DNS lists: nothing is written meanwhile, and only an
		 * end of the connection is watched for (an implicit TLS bufferevent would start its
		 * handshake: it reads nothing either). */
		session_enter(s, S_POLICY);
		bufferevent_disable(s->bev, EV_WRITE);
		update_reading(s);
		return;
	}
	if (implicit)
		session_enter(s, S_TLS_HANDSHAKE);
	else
		greet_or_pause(s);
	session_enable(s, EV_READ | EV_WRITE);
}

/* The connect-time checks are done: greet (or start the implicit TLS handshake). */
static void policy_connect_done(void *arg)
{
	struct smtp_session *s = arg;
	bool implicit = (s->listener->flags & LISTEN_IMPLICIT_TLS) && s->d->tls;

	if (s->state != S_POLICY)
		return; /* closing already */
	session_enable(s, EV_WRITE); /* reading follows the state (update_reading) */
	if (s->stop_requested && !implicit) {
		reply_and_close(s, R_SHUTDOWN, "shutdown");
	} else if (implicit) {
		session_enter(s, S_TLS_HANDSHAKE);
	} else {
		greet_or_pause(s);
	}
	session_process(s);
}

void smtp_session_stop(struct smtp_session *s)
{
	s->stop_requested = true;
	if (s->state == S_CONNECTED || s->state == S_READY) {
		reply_and_close(s, R_SHUTDOWN, "shutdown");
		update_reading(s);
	}
}

void smtp_session_kill(struct smtp_session *s)
{
	session_free(s, "shutdown deadline");
}

struct smtp_session *smtp_session_next(struct smtp_session *s)
{
	return s->next;
}

