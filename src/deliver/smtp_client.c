/*
 * smtp_client: the outbound SMTP client. See smtp_client.h for the contract.
 *
 * RFC 5321 (3.1 session initiation, 3.2 EHLO/HELO fallback, 3.3 mail
 * transactions, 4.1.1.4 DATA and 4.5.2 transparency (dot-stuffing), 4.2
 * replies, 4.5.3.2 timeouts), RFC 2920 PIPELINING (3.1: MAIL, RCPT... and DATA
 * in one group, replies read in order; DATA accepted although no recipient
 * was: send an empty message), RFC 3207 STARTTLS, RFC 8314 implicit TLS,
 * RFC 4954 AUTH (PLAIN, RFC 4616; LOGIN), RFC 1870 SIZE, RFC 6152 8BITMIME,
 * RFC 6531 SMTPUTF8, RFC 3461 DSN (RET, ENVID, NOTIFY, ORCPT), RFC 2034/3463
 * enhanced status codes, RFC 1047 (a connection lost after the end of data:
 * the message may be delivered twice; accepted, as every MTA does).
 *
 * One connection is one struct smtpc with an explicit state (smtpc_enter()).
 * Replies are read with a line length limit (SMTPC_REPLY_LINE_MAX, checked on
 * the buffered bytes before anything is copied) and parsed by
 * smtp_client_reply.c; every wait has its own deadline (one timer, re-armed
 * for each awaited reply and each block of message data), so that a server
 * that sends nothing, sends slowly, or sends an endless reply ends in a
 * temporary failure within bounded time and memory.
 *
 * Callbacks to the caller never run inside smtpc_connect()/smtpc_send(): they
 * are scheduled on a zero-delay event (the "call" slot) and run from the loop,
 * after the client's state is settled. Every libevent callback is bracketed by
 * enter()/leave(); the struct is freed only in leave() (or in smtpc_free()
 * outside callbacks) once the caller has let go of it (detached), the
 * connection is closed and no call is pending, so smtpc_free()/smtpc_quit()
 * may be used from inside ready()/sent().
 *
 * Security notes: when TLS starts (STARTTLS), whatever plaintext the server
 * sent after its 220 is discarded and the capabilities learned before TLS are
 * forgotten (CVE-2011-0411 and its STARTTLS-injection cousins). Credentials
 * are sent only over TLS and never logged. Addresses with control characters
 * are never put on the wire (they could inject commands). Reply text is kept
 * as printable ASCII by the parser. 8BITMIME not offered but the message is
 * 8-bit: it is sent as is (as Postfix does by default; RFC 6152 would allow
 * conversion, which we do not do).
 */
#include "deliver/smtp_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver/smtp_client_reply.h"
#include "smtpd/smtp_command.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/str.h"
#include "util/fileio.h"

/* libevent stops reading the socket once this much input is buffered. */
#define INPUT_HIGH (64u * 1024)
/* Message data: refill the output below OUTPUT_LOW, up to OUTPUT_HIGH. */
#define OUTPUT_LOW (32u * 1024)
#define OUTPUT_HIGH (128u * 1024)
#define CHUNK_SIZE (64u * 1024)
/* The longest command we build (MAIL with every parameter, RCPT with ORCPT). */
#define COMMAND_MAX 4096
/* How long smtpc_quit() waits for the reply to QUIT. */
#define QUIT_TIMEOUT 5
/* Credentials longer than this are refused (RFC 4954 allows 12288-octet lines). */
#define AUTH_FIELD_MAX 1024

enum smtpc_state {
	C_CONNECTING, /* TCP connect */
	C_TLS,        /* TLS handshake (implicit, or after STARTTLS) */
	C_GREETING,   /* waiting for 220 */
	C_EHLO,
	C_HELO,
	C_STARTTLS,
	C_AUTH,       /* AUTH PLAIN with initial response, or AUTH LOGIN, sent */
	C_AUTH_USER,  /* LOGIN: user name sent */
	C_AUTH_PASS,  /* LOGIN: password sent */
	C_IDLE,       /* ready for a transaction; any input is unsolicited */
	C_TXN,        /* RSET/MAIL/RCPT/DATA sent, replies awaited in order */
	C_CONTENT,    /* message data being sent */
	C_DOT,        /* end of data sent, final reply awaited */
	C_QUIT,       /* QUIT sent (or failing connection closing); no callbacks */
	C_CLOSED,     /* no connection */
	C_COUNT
};

static const char *const state_names[C_COUNT] = {
	"connecting", "tls", "greeting", "ehlo", "helo", "starttls", "auth", "auth-user",
	"auth-pass", "idle", "txn", "content", "dot", "quit", "closed",
};

enum smtpc_call { CALL_NONE, CALL_READY, CALL_SENT };

enum cmd_kind { K_RSET, K_MAIL, K_RCPT, K_DATA };

enum rcpt_state { RS_PENDING = 0, RS_ACCEPTED, RS_REFUSED };

struct smtpc_txn {
	struct smtpc_msg *msg;
	unsigned char *rstate;   /* per recipient: enum rcpt_state */
	size_t *slot;            /* RCPT command k is for recipient slot[k] */
	size_t nslots;
	bool rset;               /* the transaction starts with RSET */
	size_t ncmds, nsent, nreplied;
	bool mail_ok, mail_failed, dot_replied, dot_only;
	size_t accepted;
	struct smtpc_reply mail_fail;
	struct smtpc_reply last_refusal;
	uint64_t done;           /* message bytes read so far */
	bool bol;                /* the next byte starts a line */
	char tail[2];            /* the last two bytes of the message */
};

struct smtpc {
	struct event_base *base;
	struct smtpc_params p;
	struct sockaddr_storage addr;
	char *helo, *peer_name, *auth_user, *auth_pass;
	char ip[INET6_ADDRSTRLEN];
	char host[300];          /* "name[ip]" for failure texts (printable) */
	char peer_log[LOG_ESC_MAX];
	bool peer_is_ip;

	struct bufferevent *bev;
	struct event *timer;
	struct event *defer;
	enum smtpc_state state;
	struct smtpc_reply_parser rp;
	struct smtpc_caps caps;
	struct smtpc_info info;
	unsigned auth_mech;

	smtpc_ready_fn *ready;
	void *ready_arg;
	smtpc_sent_fn *sent;
	void *sent_arg;
	enum smtpc_call call;    /* a callback waiting to run from the loop */
	bool result_ok;          /* CALL_READY without failure */
	struct smtpc_reply result;

	unsigned busy;           /* inside one of our libevent callbacks */
	bool detached;           /* the caller let go (quit, free, or ready failure) */
	bool broken;             /* the connection cannot take another transaction */
	bool no_tls;             /* no (more) STARTTLS on this connection */
	bool need_rset;
	/* In process_input(): an end of the connection that a read of TLS data reports from
	 * inside it (draining the input can make the TLS layer read on and find EOF) waits in
	 * pending_event until the replies already read are handled, in order. */
	bool in_input;
	short pending_event;
	int pending_err;
	struct smtpc_txn t;
	char *chunk;
};

static void smtpc_enter(struct smtpc *c, enum smtpc_state next)
{
	if (c->state != next)
		log_debug("peer=%s addr=%s event=state from=%s to=%s", c->peer_log, c->ip,
			  state_names[c->state], state_names[next]);
	c->state = next;
}

/* --- life cycle helpers ----------------------------------------------------- */

static void really_free(struct smtpc *c)
{
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->timer)
		event_free(c->timer);
	if (c->defer)
		event_free(c->defer);
	free(c->t.rstate);
	free(c->t.slot);
	free(c->chunk);
	free(c->helo);
	free(c->peer_name);
	free(c->auth_user);
	if (c->auth_pass) {
		OPENSSL_cleanse(c->auth_pass, strlen(c->auth_pass));
		free(c->auth_pass);
	}
	free(c);
}

static void try_free(struct smtpc *c)
{
	if (c->busy == 0 && c->detached && !c->bev && c->call == CALL_NONE)
		really_free(c);
}

static void enter(struct smtpc *c)
{
	c->busy++;
}

/* The last thing every libevent callback does: c may be gone afterwards. */
static void leave(struct smtpc *c)
{
	if (--c->busy == 0)
		try_free(c);
}

static void timer_arm(struct smtpc *c, unsigned secs)
{
	struct timeval tv = { (time_t)secs, 0 };
	evtimer_add(c->timer, &tv);
}

static void close_conn(struct smtpc *c)
{
	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	evtimer_del(c->timer);
}

static void schedule(struct smtpc *c, enum smtpc_call call)
{
	c->call = call;
	event_active(c->defer, EV_TIMEOUT, 1);
}

static void reply_local(struct smtpc_reply *r, bool temporary, const char *status,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A failure of ours (no reply from the server): code 0. */
static void reply_local(struct smtpc_reply *r, bool temporary, const char *status,
			const char *fmt, ...)
{
	va_list ap;

	memset(r, 0, sizeof(*r));
	r->temporary = temporary;
	str_copy(r->status, sizeof(r->status), status);
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	/* The text may quote the server or the system: keep it printable. */
	for (char *p = r->text; *p; p++)
		if ((unsigned char)*p < 32 || (unsigned char)*p > 126)
			*p = '?';
}

static bool is_2xx(const struct smtpc_reply *r)
{
	return r->code >= 200 && r->code < 300;
}

/* --- output ----------------------------------------------------------------- */

/* Send one command line (CRLF added); logtext replaces it in the log (AUTH). */
static void send_line(struct smtpc *c, const char *line, size_t len, const char *logtext)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (logtext)
		log_debug("peer=%s addr=%s event=send cmd=%s", c->peer_log, c->ip, logtext);
	else
		log_debug("peer=%s addr=%s event=send cmd=%s", c->peer_log, c->ip,
			  LOG_ESCN(line, len));
	evbuffer_add(out, line, len);
	evbuffer_add(out, "\r\n", 2);
}

static void send_cmd(struct smtpc *c, const char *cmd)
{
	send_line(c, cmd, strlen(cmd), NULL);
}

/* --- callbacks to the caller ------------------------------------------------ */

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;
	struct smtpc_reply r = c->result;
	enum smtpc_call call = c->call;

	(void)fd;
	(void)what;
	enter(c);
	c->call = CALL_NONE;
	if (call == CALL_READY) {
		if (c->result_ok) {
			c->ready(c->ready_arg, NULL);
		} else {
			c->detached = true; /* "the client is then already gone" */
			c->ready(c->ready_arg, &r);
		}
	} else if (call == CALL_SENT) {
		c->sent(c->sent_arg, &r);
	}
	leave(c);
}

/* --- connection set-up failures ----------------------------------------------- */

static void start_quit(struct smtpc *c);

/*
 * The connection could not be made ready: report failure to ready() (from the
 * loop). When the conversation is still in step (the server refused
 * something), say QUIT first; otherwise close at once.
 */
static void setup_fail(struct smtpc *c, const struct smtpc_reply *r, bool polite)
{
	log_debug("peer=%s addr=%s event=setup_failed code=%d status=%s text=%s", c->peer_log,
		  c->ip, r->code, r->status, LOG_ESC(r->text));
	c->result = *r;
	c->result_ok = false;
	c->broken = true;
	if (polite && c->bev) {
		start_quit(c);
	} else {
		close_conn(c);
		smtpc_enter(c, C_CLOSED);
	}
	schedule(c, CALL_READY);
}

static void setup_done(struct smtpc *c)
{
	evtimer_del(c->timer);
	smtpc_enter(c, C_IDLE);
	c->result_ok = true;
	log_debug("peer=%s addr=%s event=ready esmtp=%s tls=%s pipelining=%s size_max=%llu",
		  c->peer_log, c->ip, c->info.esmtp ? "yes" : "no", c->info.tls ? "yes" : "no",
		  c->info.pipelining ? "yes" : "no", (unsigned long long)c->info.size_max);
	schedule(c, CALL_READY);
}

/* --- transactions ------------------------------------------------------------- */

static void txn_release(struct smtpc_txn *t)
{
	free(t->rstate);
	free(t->slot);
	t->rstate = NULL;
	t->slot = NULL;
}

/*
 * The transaction is over: every recipient that was not refused at RCPT gets
 * the final reply; schedule sent(). The client is idle again unless the
 * connection broke.
 */
static void txn_complete(struct smtpc *c, const struct smtpc_reply *final)
{
	struct smtpc_txn *t = &c->t;
	struct smtpc_msg *msg = t->msg;

	for (size_t i = 0; i < msg->nrcpts; i++)
		if (!t->rstate || t->rstate[i] != RS_REFUSED)
			msg->rcpts[i].reply = *final;
	c->result = *final;
	if (t->nsent > 0) /* else the previous state stands */
		c->need_rset = t->mail_ok && !t->dot_replied;
	txn_release(t);
	evtimer_del(c->timer);
	log_debug("peer=%s addr=%s event=txn_done code=%d status=%s", c->peer_log, c->ip,
		  final->code, final->status);
	if (!c->broken && c->bev) {
		smtpc_enter(c, C_IDLE);
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
			/* Replies we did not ask for: out of step, do not reuse. */
			log_debug("peer=%s addr=%s event=unsolicited_input", c->peer_log, c->ip);
			c->broken = true;
			close_conn(c);
		}
	}
	if (c->broken) {
		close_conn(c);
		smtpc_enter(c, C_CLOSED);
	}
	schedule(c, CALL_SENT);
}

/* The human name of what is going on, for failure texts. */
static enum cmd_kind cmd_kind(const struct smtpc_txn *t, size_t i, size_t *slot)
{
	if (t->rset) {
		if (i == 0)
			return K_RSET;
		i--;
	}
	if (i == 0)
		return K_MAIL;
	if (i <= t->nslots) {
		if (slot)
			*slot = t->slot[i - 1];
		return K_RCPT;
	}
	return K_DATA;
}

static const char *phase(const struct smtpc *c)
{
	switch (c->state) {
	case C_CONNECTING:
		return "connecting";
	case C_TLS:
		return "performing the TLS handshake";
	case C_GREETING:
		return "receiving the initial server greeting";
	case C_EHLO:
		return "sending EHLO";
	case C_HELO:
		return "sending HELO";
	case C_STARTTLS:
		return "sending STARTTLS";
	case C_AUTH:
	case C_AUTH_USER:
	case C_AUTH_PASS:
		return "authenticating";
	case C_TXN:
		if (!c->t.msg)
			break;
		switch (cmd_kind(&c->t, c->t.nreplied, NULL)) {
		case K_RSET:
			return "sending RSET";
		case K_MAIL:
			return "sending MAIL FROM";
		case K_RCPT:
			return "sending RCPT TO";
		case K_DATA:
			return "sending DATA";
		}
		break;
	case C_CONTENT:
		return "sending the message";
	case C_DOT:
		return "waiting for the reply to the end of data (the message may be delivered twice)";
	case C_IDLE:
		return "idle";
	default:
		break;
	}
	return "closing";
}

static bool addr_safe(const char *a)
{
	size_t n = 0;

	for (; a[n]; n++)
		if ((unsigned char)a[n] < 32 || (unsigned char)a[n] == 127 || a[n] == '<' ||
		    a[n] == '>')
			return false;
	return n < 1000;
}

static int append_xtext(struct buf *b, const char *s)
{
	return xtext_encode(slice_from_cstr(s), b);
}

static int build_mail(struct smtpc *c, struct buf *b)
{
	const struct smtpc_msg *m = c->t.msg;
	int r = buf_appendf(b, "MAIL FROM:<%s>", m->sender);

	if (r == 0 && c->caps.size)
		r = buf_appendf(b, " SIZE=%llu", (unsigned long long)m->size);
	if (r == 0 && m->body_8bit && c->caps.eightbitmime)
		r = buf_append_str(b, " BODY=8BITMIME");
	if (r == 0 && m->smtputf8)
		r = buf_append_str(b, " SMTPUTF8");
	if (r == 0 && c->caps.dsn && (m->ret == 'F' || m->ret == 'H'))
		r = buf_append_str(b, m->ret == 'F' ? " RET=FULL" : " RET=HDRS");
	if (r == 0 && c->caps.dsn && m->envid && m->envid[0]) {
		r = buf_append_str(b, " ENVID=");
		if (r == 0)
			r = append_xtext(b, m->envid);
	}
	return r;
}

static int build_rcpt(struct smtpc *c, const struct smtpc_rcpt *rc, struct buf *b)
{
	int r = buf_appendf(b, "RCPT TO:<%s>", rc->address);

	if (r == 0 && c->caps.dsn && rc->notify) {
		static const struct {
			unsigned bit;
			const char *name;
		} names[] = {
			{ SMTP_NOTIFY_SUCCESS, "SUCCESS" },
			{ SMTP_NOTIFY_FAILURE, "FAILURE" },
			{ SMTP_NOTIFY_DELAY, "DELAY" },
		};
		if (rc->notify & SMTP_NOTIFY_NEVER) {
			r = buf_append_str(b, " NOTIFY=NEVER");
		} else {
			const char *sep = " NOTIFY=";
			for (size_t i = 0; r == 0 && i < sizeof(names) / sizeof(names[0]); i++) {
				if (!(rc->notify & names[i].bit))
					continue;
				r = buf_appendf(b, "%s%s", sep, names[i].name);
				sep = ",";
			}
		}
	}
	if (r == 0 && c->caps.dsn && rc->orcpt) {
		/* "addr-type;address": the type is an atom, the address goes as xtext. */
		const char *semi = strchr(rc->orcpt, ';');
		bool type_ok = semi && semi > rc->orcpt;
		for (const char *q = rc->orcpt; type_ok && q < semi; q++)
			if (!ascii_isalnum(*q) && *q != '-')
				type_ok = false;
		if (type_ok) {
			r = buf_appendf(b, " ORCPT=%.*s;", (int)(semi - rc->orcpt), rc->orcpt);
			if (r == 0)
				r = append_xtext(b, semi + 1);
		}
	}
	return r;
}

static void conn_fail(struct smtpc *c, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Write transaction command i. */
static void txn_write(struct smtpc *c, size_t i)
{
	struct smtpc_txn *t = &c->t;
	struct buf b;
	size_t slot = 0;
	int r = 0;

	buf_init(&b, COMMAND_MAX);
	switch (cmd_kind(t, i, &slot)) {
	case K_RSET:
		r = buf_append_str(&b, "RSET");
		break;
	case K_MAIL:
		r = build_mail(c, &b);
		break;
	case K_RCPT:
		r = build_rcpt(c, &t->msg->rcpts[slot], &b);
		break;
	case K_DATA:
		r = buf_append_str(&b, "DATA");
		break;
	}
	if (r < 0) {
		buf_free(&b);
		conn_fail(c, "4.3.0", "cannot build a command for %s: %s", c->host, strerror(-r));
		return;
	}
	send_line(c, b.data, b.len, NULL);
	buf_free(&b);
	t->nsent = i + 1;
}

static void content_fill(struct smtpc *c);

static void content_start(struct smtpc *c)
{
	struct smtpc_txn *t = &c->t;

	if (!c->chunk && !(c->chunk = malloc(CHUNK_SIZE))) {
		conn_fail(c, "4.3.0", "out of memory while sending to %s", c->host);
		return;
	}
	t->done = 0;
	t->bol = true;
	t->tail[0] = t->tail[1] = 0;
	smtpc_enter(c, C_CONTENT);
	content_fill(c);
}

/* RFC 5321 4.5.2: a line that starts with '.' gets one more. */
static int stuff(struct evbuffer *out, const char *p, size_t n, bool *bol)
{
	size_t start = 0, i = 0;

	while (i < n) {
		if (*bol && p[i] == '.') {
			if (evbuffer_add(out, p + start, i - start) < 0 || evbuffer_add(out, ".", 1) < 0)
				return -ENOMEM;
			start = i; /* the line's own '.' goes out with the next span */
		}
		const char *nl = memchr(p + i, '\n', n - i);
		if (!nl) {
			*bol = false; /* p[i..n) holds no line end */
			break;
		}
		i = (size_t)(nl - p) + 1;
		*bol = true;
	}
	return evbuffer_add(out, p + start, n - start) < 0 ? -ENOMEM : 0;
}

/* Does a piece that follows a line end (bol) or not need any dot-stuffing? */
static bool needs_stuffing(const char *p, size_t n, bool bol)
{
	if (n == 0)
		return false;
	if (bol && p[0] == '.')
		return true;
	/* memchr per line: glibc's memmem is far slower for a two-byte needle. */
	const char *end = p + n - 1; /* a line end in the last byte: the next piece tells */
	for (const char *q = p; q < end && (q = memchr(q, '\n', (size_t)(end - q))); q++)
		if (q[1] == '.')
			return true;
	return false;
}

/* Put message data into the output until OUTPUT_HIGH; then the end of data. */
static void content_fill(struct smtpc *c)
{
	struct smtpc_txn *t = &c->t;
	const struct smtpc_msg *m = t->msg;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	while (t->done < m->size && evbuffer_get_length(out) < OUTPUT_HIGH) {
		uint64_t left = m->size - t->done;
		size_t want = left < CHUNK_SIZE ? (size_t)left : CHUNK_SIZE;
		/*
		 * Read straight into the output; only a piece with a line that
		 * starts with '.' (rare) is copied out and stuffed.
		 */
		struct evbuffer_iovec v;
		if (evbuffer_reserve_space(out, (ev_ssize_t)want, &v, 1) < 1) {
			conn_fail(c, "4.3.0", "out of memory while sending to %s", c->host);
			return;
		}
		ssize_t n = pread_joined(m->fd, m->pre_offset, m->pre_size, m->offset, v.iov_base, want,
					 t->done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The server gets a truncated stream: close, never end it with a dot. */
			conn_fail(c, "4.3.0", "cannot read the message for %s: %s", c->host,
				  n < 0 ? strerror(errno) : "file too short");
			return;
		}
		const char *p = v.iov_base;
		if (n >= 2) {
			t->tail[0] = p[n - 2];
			t->tail[1] = p[n - 1];
		} else {
			t->tail[0] = t->tail[1];
			t->tail[1] = p[0];
		}
		if (!needs_stuffing(p, (size_t)n, t->bol)) {
			v.iov_len = (size_t)n;
			t->bol = p[n - 1] == '\n';
			evbuffer_commit_space(out, &v, 1);
		} else {
			/* The reserved space is not committed: the copy is what goes out. */
			memcpy(c->chunk, p, (size_t)n);
			if (stuff(out, c->chunk, (size_t)n, &t->bol) < 0) {
				conn_fail(c, "4.3.0", "out of memory while sending to %s", c->host);
				return;
			}
		}
		t->done += (uint64_t)n;
	}
	if (t->done < m->size) {
		timer_arm(c, c->p.data_timeout);
		return;
	}
	/* The queue file's message should end with CRLF; when it does not, end the line. */
	if (m->size > 0 && !(t->tail[0] == '\r' && t->tail[1] == '\n'))
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	log_debug("peer=%s addr=%s event=send cmd=. size=%llu", c->peer_log, c->ip,
		  (unsigned long long)m->size);
	smtpc_enter(c, C_DOT);
	timer_arm(c, c->p.data_timeout);
}

/* One reply of the RSET/MAIL/RCPT.../DATA group, in order (RFC 2920 3.1). */
static void txn_reply(struct smtpc *c, const struct smtpc_reply *r)
{
	struct smtpc_txn *t = &c->t;
	size_t slot = 0;
	size_t i = t->nreplied++;
	bool pipe = c->caps.pipelining;

	switch (cmd_kind(t, i, &slot)) {
	case K_RSET:
		if (!is_2xx(r)) {
			struct smtpc_reply f = *r;
			f.temporary = true; /* a refused RSET says nothing about the message */
			c->broken = true;
			txn_complete(c, &f);
			return;
		}
		break;
	case K_MAIL:
		if (is_2xx(r)) {
			t->mail_ok = true;
		} else {
			t->mail_failed = true;
			t->mail_fail = *r;
			if (!pipe) {
				txn_complete(c, r);
				return;
			}
		}
		break;
	case K_RCPT:
		/* After a refused MAIL, pipelined RCPT replies (503) mean nothing. */
		if (!t->mail_failed) {
			if (is_2xx(r)) {
				t->rstate[slot] = RS_ACCEPTED;
				t->accepted++;
			} else {
				t->rstate[slot] = RS_REFUSED;
				t->msg->rcpts[slot].reply = *r;
				t->last_refusal = *r;
			}
		}
		if (!pipe && i + 1 == t->ncmds - 1 && t->accepted == 0) {
			/* No recipient: DATA is not sent; RSET opens the next transaction. */
			txn_complete(c, &t->last_refusal);
			return;
		}
		break;
	case K_DATA:
		if (r->code >= 300 && r->code < 400) {
			if (t->accepted > 0 && t->mail_ok) {
				content_start(c);
				return;
			}
			/* RFC 2920 3.1: DATA went through although nothing else did: an
			 * empty message, never the real one. */
			t->dot_only = true;
			send_cmd(c, ".");
			smtpc_enter(c, C_DOT);
			timer_arm(c, c->p.data_timeout);
			return;
		}
		if (t->accepted > 0 && t->mail_ok) {
			struct smtpc_reply f = *r;
			if (is_2xx(&f)) /* 2xx to DATA: out of step */
				reply_local(&f, true, "4.5.0", "unexpected reply %d to DATA from %s",
					    r->code, c->host);
			txn_complete(c, &f);
			return;
		}
		txn_complete(c, t->mail_failed ? &t->mail_fail : &t->last_refusal);
		return;
	}
	if (!pipe)
		txn_write(c, i + 1);
	if (c->state == C_TXN)
		timer_arm(c, c->p.command_timeout);
}

/* The final reply to the end of data. */
static void dot_reply(struct smtpc *c, const struct smtpc_reply *r)
{
	struct smtpc_txn *t = &c->t;

	t->dot_replied = true;
	if (t->dot_only) {
		txn_complete(c, t->mail_failed ? &t->mail_fail : &t->last_refusal);
		return;
	}
	struct smtpc_reply f = *r;
	if (r->code >= 300 && r->code < 400) {
		reply_local(&f, true, "4.5.0", "unexpected reply %d to end of data from %s", r->code,
			    c->host);
		c->broken = true;
	}
	txn_complete(c, &f);
}

/* --- connection failures ---------------------------------------------------- */

/*
 * The connection is lost, timed out, out of step or unusable (code 0,
 * temporary): close it and end whatever was in progress.
 */
static void conn_fail(struct smtpc *c, const char *status, const char *fmt, ...)
{
	struct smtpc_reply r;
	va_list ap;

	memset(&r, 0, sizeof(r));
	r.temporary = true;
	str_copy(r.status, sizeof(r.status), status);
	va_start(ap, fmt);
	vsnprintf(r.text, sizeof(r.text), fmt, ap);
	va_end(ap);
	for (char *p = r.text; *p; p++)
		if ((unsigned char)*p < 32 || (unsigned char)*p > 126)
			*p = '?';
	c->broken = true;
	close_conn(c);
	switch (c->state) {
	case C_TXN:
	case C_CONTENT:
	case C_DOT:
		txn_complete(c, &r);
		break;
	case C_IDLE:
	case C_QUIT:
	case C_CLOSED:
		log_debug("peer=%s addr=%s event=closed state=%s reason=%s", c->peer_log, c->ip,
			  state_names[c->state], LOG_ESC(r.text));
		smtpc_enter(c, C_CLOSED);
		break;
	default:
		setup_fail(c, &r, false);
		break;
	}
}

/* --- TLS ---------------------------------------------------------------------- */

static void setup_bev(struct smtpc *c);
static void start_connect(struct smtpc *c);

static SSL *tls_new(struct smtpc *c)
{
	SSL *ssl = SSL_new(c->p.ssl_ctx);

	if (!ssl)
		return NULL;
	if (c->peer_is_ip) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->peer_name);
	} else {
		SSL_set_tlsext_host_name(ssl, c->peer_name);
		SSL_set1_host(ssl, c->peer_name);
	}
	return ssl;
}

/* STARTTLS was accepted: forget the plaintext, wrap the connection. */
static void tls_start_filter(struct smtpc *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t junk = evbuffer_get_length(in);
	SSL *ssl;

	if (junk > 0) {
		log_info("peer=%s addr=%s event=starttls_junk bytes=%zu", c->peer_log, c->ip, junk);
		evbuffer_drain(in, junk);
	}
	ssl = tls_new(c);
	if (!ssl) {
		conn_fail(c, "4.3.0", "cannot start TLS with %s: out of memory", c->host);
		return;
	}
	struct bufferevent *f = bufferevent_openssl_filter_new(
		c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (!f) {
		/* libevent's error path may have released either object: lose them. */
		c->bev = NULL;
		conn_fail(c, "4.3.0", "cannot start TLS with %s: out of memory", c->host);
		return;
	}
	c->bev = f;
	setup_bev(c);
	smtpc_caps_reset(&c->caps);
	smtpc_enter(c, C_TLS);
	timer_arm(c, c->p.command_timeout);
}

static const char *tls_error_text(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long e, last = 0;

	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		last = e;
	if (last == 0) {
		int en = EVUTIL_SOCKET_ERROR();
		str_copy(buf, len, en ? strerror(en) : "connection closed during the handshake");
	} else {
		ERR_error_string_n(last, buf, len);
	}
	return buf;
}

/* The handshake failed. Opportunistic TLS: reconnect once without (as Postfix). */
static void tls_failed(struct smtpc *c, struct bufferevent *bev)
{
	char err[256];

	tls_error_text(bev, err, sizeof(err));
	if (c->p.tls == SMTPC_TLS_OPPORTUNISTIC && !c->no_tls) {
		log_info("peer=%s addr=%s event=tls_failed action=retry_plaintext error=%s",
			 c->peer_log, c->ip, LOG_ESC(err));
		close_conn(c);
		c->no_tls = true;
		smtpc_caps_reset(&c->caps);
		memset(&c->info, 0, sizeof(c->info));
		start_connect(c);
		return;
	}
	log_info("peer=%s addr=%s event=tls_failed error=%s", c->peer_log, c->ip, LOG_ESC(err));
	conn_fail(c, "4.7.5", "TLS handshake with %s failed: %s", c->host, err);
}

static void send_ehlo(struct smtpc *c)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "EHLO %s", c->helo);
	send_cmd(c, cmd);
	smtpc_reply_reset(&c->rp);
	smtpc_caps_reset(&c->caps);
	smtpc_enter(c, C_EHLO);
	timer_arm(c, c->p.command_timeout);
}

static void tls_done(struct smtpc *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_ERR_UNSPECIFIED;

	c->info.tls = true;
	c->info.tls_verified = cert && vr == X509_V_OK;
	str_copy(c->info.tls_version, sizeof(c->info.tls_version), ssl ? SSL_get_version(ssl) : "");
	str_copy(c->info.tls_cipher, sizeof(c->info.tls_cipher),
		 ssl ? SSL_get_cipher_name(ssl) : "");
	log_info("peer=%s addr=%s event=tls version=%s cipher=%s verified=%s%s%s", c->peer_log,
		 c->ip, c->info.tls_version, c->info.tls_cipher, c->info.tls_verified ? "yes" : "no",
		 c->info.tls_verified ? "" : " reason=",
		 c->info.tls_verified ? ""
				      : LOG_ESC(cert ? X509_verify_cert_error_string(vr)
						     : "no certificate"));
	if (c->p.tls_verify && !c->info.tls_verified) {
		conn_fail(c, "4.7.5", "TLS certificate of %s not verified: %s", c->host,
			  cert ? X509_verify_cert_error_string(vr) : "no certificate");
		return;
	}
	smtpc_caps_reset(&c->caps);
	c->info.esmtp = false;
	if (c->p.tls == SMTPC_TLS_IMPLICIT) {
		smtpc_reply_reset(&c->rp);
		smtpc_enter(c, C_GREETING);
		timer_arm(c, c->p.command_timeout);
		return;
	}
	send_ehlo(c);
}

/* --- AUTH --------------------------------------------------------------------- */

/* base64 (OpenSSL's encoder) of p[0..n) into a new string; NULL on failure. */
static char *b64(const void *p, size_t n)
{
	size_t outlen = 4 * ((n + 2) / 3) + 1;
	char *out = malloc(outlen);

	if (out)
		EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

static void send_secret(struct smtpc *c, const char *prefix, const void *p, size_t n,
			const char *logtext)
{
	char *enc = b64(p, n);
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (!enc) {
		conn_fail(c, "4.3.0", "out of memory while authenticating to %s", c->host);
		return;
	}
	log_debug("peer=%s addr=%s event=send cmd=%s", c->peer_log, c->ip, logtext);
	evbuffer_add(out, prefix, strlen(prefix));
	evbuffer_add(out, enc, strlen(enc));
	evbuffer_add(out, "\r\n", 2);
	OPENSSL_cleanse(enc, strlen(enc));
	free(enc);
}

static void auth_start(struct smtpc *c)
{
	struct smtpc_reply r;

	if (!c->info.tls) {
		reply_local(&r, true, "4.7.0", "refusing to send credentials to %s without TLS",
			    c->host);
		setup_fail(c, &r, true);
		return;
	}
	if (!(c->caps.auth_mechs & (SMTPC_AUTH_PLAIN | SMTPC_AUTH_LOGIN))) {
		reply_local(&r, true, "4.7.0",
			    c->caps.auth ? "%s offers no AUTH mechanism we support (PLAIN, LOGIN)"
					 : "authentication required but %s does not offer AUTH",
			    c->host);
		setup_fail(c, &r, true);
		return;
	}
	size_t ul = strlen(c->auth_user), pl = strlen(c->auth_pass);
	if (ul > AUTH_FIELD_MAX || pl > AUTH_FIELD_MAX) {
		reply_local(&r, true, "4.7.0", "credentials for %s too long", c->host);
		setup_fail(c, &r, true);
		return;
	}
	smtpc_reply_reset(&c->rp);
	smtpc_enter(c, C_AUTH);
	timer_arm(c, c->p.command_timeout);
	if (c->caps.auth_mechs & SMTPC_AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL passwd, as the initial response. */
		char buf[2 * AUTH_FIELD_MAX + 2];
		buf[0] = '\0';
		memcpy(buf + 1, c->auth_user, ul);
		buf[1 + ul] = '\0';
		memcpy(buf + 2 + ul, c->auth_pass, pl);
		c->auth_mech = SMTPC_AUTH_PLAIN;
		send_secret(c, "AUTH PLAIN ", buf, ul + pl + 2, "\"AUTH PLAIN (credentials not logged)\"");
		OPENSSL_cleanse(buf, sizeof(buf));
	} else {
		c->auth_mech = SMTPC_AUTH_LOGIN;
		send_cmd(c, "AUTH LOGIN");
	}
}

static void auth_failed(struct smtpc *c, const struct smtpc_reply *r)
{
	/* As Postfix: an authentication failure defers the mail, whatever the code. */
	struct smtpc_reply f = *r;
	f.temporary = true;
	if (f.status[0] == '5')
		f.status[0] = '4';
	log_info("peer=%s addr=%s event=auth_failed code=%d text=%s", c->peer_log, c->ip, r->code,
		 LOG_ESC(r->text));
	setup_fail(c, &f, true);
}

static void auth_reply(struct smtpc *c, const struct smtpc_reply *r)
{
	if (is_2xx(r) && (c->state == C_AUTH_PASS || c->auth_mech == SMTPC_AUTH_PLAIN)) {
		log_debug("peer=%s addr=%s event=auth result=ok", c->peer_log, c->ip);
		setup_done(c);
		return;
	}
	if (r->code == 334 && c->auth_mech == SMTPC_AUTH_LOGIN && c->state != C_AUTH_PASS) {
		bool user = c->state == C_AUTH;
		const char *v = user ? c->auth_user : c->auth_pass;
		smtpc_enter(c, user ? C_AUTH_USER : C_AUTH_PASS);
		timer_arm(c, c->p.command_timeout);
		send_secret(c, "", v, strlen(v), user ? "(user name)" : "(password)");
		return;
	}
	auth_failed(c, r);
}

/* --- the set-up conversation -------------------------------------------------- */

static bool want_starttls(const struct smtpc *c)
{
	if (c->info.tls || c->no_tls || !c->p.ssl_ctx)
		return false;
	return c->p.tls == SMTPC_TLS_STARTTLS || c->p.tls == SMTPC_TLS_OPPORTUNISTIC;
}

/* EHLO or HELO accepted: STARTTLS, AUTH, or ready. */
static void after_hello(struct smtpc *c)
{
	struct smtpc_reply r;

	c->info.pipelining = c->caps.pipelining;
	c->info.dsn = c->caps.dsn;
	c->info.smtputf8 = c->caps.smtputf8;
	c->info.eightbitmime = c->caps.eightbitmime;
	c->info.auth = c->caps.auth;
	c->info.size_max = c->caps.size ? c->caps.size_max : 0;
	if (want_starttls(c)) {
		if (c->caps.starttls) {
			send_cmd(c, "STARTTLS");
			smtpc_reply_reset(&c->rp);
			smtpc_enter(c, C_STARTTLS);
			timer_arm(c, c->p.command_timeout);
			return;
		}
		if (c->p.tls == SMTPC_TLS_STARTTLS) {
			reply_local(&r, true, "4.7.4", "TLS required but not offered by the server %s",
				    c->host);
			setup_fail(c, &r, true);
			return;
		}
	}
	if (c->p.tls == SMTPC_TLS_STARTTLS && !c->info.tls) {
		reply_local(&r, true, "4.7.4", "TLS required but not available with %s", c->host);
		setup_fail(c, &r, true);
		return;
	}
	if (c->auth_user) {
		auth_start(c);
		return;
	}
	setup_done(c);
}

static void setup_reply(struct smtpc *c, const struct smtpc_reply *r)
{
	switch (c->state) {
	case C_GREETING:
		if (!is_2xx(r)) {
			setup_fail(c, r, true);
			return;
		}
		send_ehlo(c);
		return;
	case C_EHLO:
		if (is_2xx(r)) {
			c->info.esmtp = true;
			after_hello(c);
			return;
		}
		if (r->code >= 500) {
			/* RFC 5321 3.2: EHLO not understood: fall back to HELO. */
			char cmd[300];
			smtpc_caps_reset(&c->caps);
			snprintf(cmd, sizeof(cmd), "HELO %s", c->helo);
			send_cmd(c, cmd);
			smtpc_enter(c, C_HELO);
			timer_arm(c, c->p.command_timeout);
			return;
		}
		setup_fail(c, r, true);
		return;
	case C_HELO:
		if (!is_2xx(r)) {
			setup_fail(c, r, true);
			return;
		}
		c->info.esmtp = false;
		after_hello(c);
		return;
	case C_STARTTLS:
		if (is_2xx(r)) {
			tls_start_filter(c);
			return;
		}
		if (c->p.tls == SMTPC_TLS_STARTTLS) {
			struct smtpc_reply f = *r;
			f.temporary = true;
			if (f.status[0] == '5')
				f.status[0] = '4';
			setup_fail(c, &f, true);
			return;
		}
		log_info("peer=%s addr=%s event=starttls_refused code=%d", c->peer_log, c->ip,
			 r->code);
		c->no_tls = true;
		after_hello(c);
		return;
	default:
		auth_reply(c, r);
		return;
	}
}

/* --- input -------------------------------------------------------------------- */

/* 1: a line in line[0..*n) (CRLF removed), 0: not yet, -1: too long. */
static int read_line(struct evbuffer *in, char *line, size_t *n)
{
	size_t avail = evbuffer_get_length(in);

	if (avail == 0)
		return 0;
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
	if (eol.pos < 0)
		return avail > SMTPC_REPLY_LINE_MAX + 1 ? -1 : 0;
	size_t len = (size_t)eol.pos;
	if (len > SMTPC_REPLY_LINE_MAX + 1)
		return -1;
	if (evbuffer_remove(in, line, len + 1) != (int)(len + 1))
		return -1;
	/* A bare LF ends a reply line too (lenient, as Postfix): replies are not relayed. */
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > SMTPC_REPLY_LINE_MAX)
		return -1;
	*n = len;
	return 1;
}

static bool awaiting_reply(enum smtpc_state s);

static void handle_reply(struct smtpc *c, const struct smtpc_reply *r)
{
	log_debug("peer=%s addr=%s event=reply state=%s code=%d status=%s", c->peer_log, c->ip,
		  state_names[c->state], r->code, r->status);
	if (!awaiting_reply(c->state))
		return; /* nothing asked for it any more (the connection is closed) */
	switch (c->state) {
	case C_TXN:
		txn_reply(c, r);
		return;
	case C_CONTENT: {
		/* A reply in the middle of the data: the server gave up on the message.
		 * We cannot end the data cleanly any more: take it as final, then close. */
		struct smtpc_reply f = *r;
		if (is_2xx(&f) || (f.code >= 300 && f.code < 400))
			reply_local(&f, true, "4.5.0", "unexpected reply %d during data from %s",
				    r->code, c->host);
		c->broken = true;
		txn_complete(c, &f);
		return;
	}
	case C_DOT:
		dot_reply(c, r);
		return;
	case C_QUIT:
		close_conn(c);
		smtpc_enter(c, C_CLOSED);
		return;
	default:
		setup_reply(c, r);
		return;
	}
}

static bool awaiting_reply(enum smtpc_state s)
{
	return s != C_CONNECTING && s != C_TLS && s != C_IDLE && s != C_CLOSED;
}

static void connection_ended(struct smtpc *c, struct bufferevent *bev, short what, int err);
static void read_replies(struct smtpc *c);

static void process_input(struct smtpc *c)
{
	if (c->in_input)
		return; /* the outer call goes on with the input */
	c->in_input = true;
	read_replies(c);
	c->in_input = false;
	if (c->pending_event) {
		short what = c->pending_event;
		c->pending_event = 0;
		if (c->bev)
			connection_ended(c, c->bev, what, c->pending_err);
	}
}

static void read_replies(struct smtpc *c)
{
	char line[SMTPC_REPLY_LINE_MAX + 2];

	while (c->bev) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t n = 0;

		if (c->state == C_IDLE) {
			if (evbuffer_get_length(in) > 0) {
				log_debug("peer=%s addr=%s event=unsolicited_input", c->peer_log,
					  c->ip);
				c->broken = true;
				close_conn(c);
				smtpc_enter(c, C_CLOSED);
			}
			return;
		}
		if (!awaiting_reply(c->state))
			return;
		int lr = read_line(in, line, &n);
		if (lr == 0)
			return;
		if (lr < 0) {
			conn_fail(c, "4.5.0", "protocol error with %s while %s: reply line too long",
				  c->host, phase(c));
			return;
		}
		int pr = smtpc_reply_feed(&c->rp, (struct slice){ line, n });
		if (pr < 0) {
			conn_fail(c, "4.5.0", "protocol error with %s while %s: %s", c->host,
				  phase(c), smtpc_reply_strerror(pr));
			return;
		}
		if (c->state == C_EHLO && c->rp.lines > 1)
			smtpc_caps_line(&c->caps, c->rp.line_text);
		if (pr == SMTPC_REPLY_MORE)
			continue;
		struct smtpc_reply r;
		smtpc_reply_get(&c->rp, &r);
		handle_reply(c, &r);
	}
}

/* --- libevent callbacks ------------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	(void)bev;
	enter(c);
	process_input(c);
	leave(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	(void)bev;
	enter(c);
	if (c->state == C_CONTENT)
		content_fill(c);
	else if (c->state == C_DOT)
		timer_arm(c, c->p.data_timeout); /* the data still flows: restart the wait */
	leave(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;
	int err = EVUTIL_SOCKET_ERROR();

	enter(c);
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == C_CONNECTING) {
			log_debug("peer=%s addr=%s event=connected", c->peer_log, c->ip);
			SSL *ssl = c->p.tls == SMTPC_TLS_IMPLICIT && !c->no_tls
					   ? bufferevent_openssl_get_ssl(c->bev)
					   : NULL;
			if (ssl && SSL_is_init_finished(ssl)) {
				tls_done(c);
			} else if (ssl) {
				smtpc_enter(c, C_TLS);
				timer_arm(c, c->p.command_timeout);
			} else {
				smtpc_reply_reset(&c->rp);
				smtpc_enter(c, C_GREETING);
				timer_arm(c, c->p.command_timeout);
			}
		} else if (c->state == C_TLS) {
			tls_done(c);
		}
		leave(c);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))) {
		leave(c);
		return;
	}
	if (c->in_input) {
		/* From inside process_input(): it handles this after the replies it holds. */
		c->pending_event |= what;
		c->pending_err = err;
		leave(c);
		return;
	}
	connection_ended(c, bev, what, err);
	leave(c);
}

/* EOF, error or timeout on bev: the replies that came before it, then the failure. */
static void connection_ended(struct smtpc *c, struct bufferevent *bev, short what, int err)
{
	/* Replies that came with the close are handled first ("421 bye" then EOF). */
	if (what & BEV_EVENT_EOF) {
		c->in_input = true;
		read_replies(c);
		c->in_input = false;
		c->pending_event = 0; /* the same end, seen again while reading: this handles it */
	}
	if (!c->bev || c->bev != bev)
		return;
	if (c->state == C_TLS) {
		tls_failed(c, bev);
	} else if (c->state == C_CONNECTING) {
		/* Implicit TLS: the handshake follows the connect on the same bufferevent. */
		char tlserr[256] = "";
		unsigned long e, last = 0;
		if (bufferevent_openssl_get_ssl(bev))
			while ((e = bufferevent_get_openssl_error(bev)) != 0)
				last = e;
		if (last) {
			ERR_error_string_n(last, tlserr, sizeof(tlserr));
			conn_fail(c, "4.7.5", "TLS handshake with %s failed: %s", c->host, tlserr);
		} else {
			conn_fail(c, "4.4.1", "connect to %s:%u: %s", c->host,
				  netaddr_port((struct sockaddr *)&c->addr),
				  err ? strerror(err) : "connection closed");
		}
	} else if (c->state == C_QUIT || c->state == C_IDLE) {
		conn_fail(c, "4.4.2", "connection with %s closed", c->host);
	} else {
		conn_fail(c, "4.4.2", "lost connection with %s while %s", c->host, phase(c));
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	(void)fd;
	(void)what;
	enter(c);
	if (c->state == C_QUIT) {
		close_conn(c);
		smtpc_enter(c, C_CLOSED);
	} else if (c->state == C_CONNECTING) {
		conn_fail(c, "4.4.1", "connect to %s:%u: timed out", c->host,
			  netaddr_port((struct sockaddr *)&c->addr));
	} else if (c->state != C_IDLE && c->state != C_CLOSED) {
		log_debug("peer=%s addr=%s event=timeout state=%s", c->peer_log, c->ip,
			  state_names[c->state]);
		conn_fail(c, "4.4.2", "conversation with %s timed out while %s", c->host, phase(c));
	}
	leave(c);
}

static void setup_bev(struct smtpc *c)
{
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, INPUT_HIGH);
	bufferevent_setwatermark(c->bev, EV_WRITE, OUTPUT_LOW, 0);
	if (bufferevent_openssl_get_ssl(c->bev))
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void start_connect(struct smtpc *c)
{
	int err;

	smtpc_enter(c, C_CONNECTING);
	if (c->p.tls == SMTPC_TLS_IMPLICIT && !c->no_tls) {
		SSL *ssl = tls_new(c);
		c->bev = ssl ? bufferevent_openssl_socket_new(c->base, -1, ssl,
							      BUFFEREVENT_SSL_CONNECTING,
							      BEV_OPT_CLOSE_ON_FREE)
			     : NULL;
	} else {
		c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!c->bev) {
		conn_fail(c, "4.3.0", "cannot connect to %s: out of memory", c->host);
		return;
	}
	setup_bev(c);
	timer_arm(c, c->p.connect_timeout);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&c->addr, (int)c->p.addrlen) < 0) {
		err = errno;
		conn_fail(c, "4.4.1", "connect to %s:%u: %s", c->host,
			  netaddr_port((struct sockaddr *)&c->addr),
			  err ? strerror(err) : "connection failed");
	}
}

/* --- QUIT ---------------------------------------------------------------------- */

static void start_quit(struct smtpc *c)
{
	send_cmd(c, "QUIT");
	smtpc_reply_reset(&c->rp);
	smtpc_enter(c, C_QUIT);
	unsigned t = c->p.command_timeout < QUIT_TIMEOUT ? c->p.command_timeout : QUIT_TIMEOUT;
	timer_arm(c, t ? t : 1);
}

/* --- public ---------------------------------------------------------------------- */

SSL_CTX *smtpc_tls_ctx_new(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		goto fail;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	if (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
		    : SSL_CTX_set_default_verify_paths(ctx) != 1)
		goto fail;
	/* The handshake always completes; the result is checked and recorded afterwards
	 * (tls_done), and refused there when the caller asked for verification. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
fail:
	if (err && errlen) {
		unsigned long e = ERR_get_error();
		if (e)
			ERR_error_string_n(e, err, errlen);
		else
			str_copy(err, errlen, "cannot create the TLS context");
	}
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

static char *dup_or_null(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

struct smtpc *smtpc_connect(struct event_base *base, const struct smtpc_params *p,
			    smtpc_ready_fn *ready, void *arg)
{
	struct smtpc *c = calloc(1, sizeof(*c));
	bool oom = false;

	if (!c)
		return NULL;
	c->base = base;
	c->p = *p;
	c->ready = ready;
	c->ready_arg = arg;
	c->helo = dup_or_null(p->helo ? p->helo : "localhost", &oom);
	c->peer_name = dup_or_null(p->peer_name ? p->peer_name : "", &oom);
	c->auth_user = dup_or_null(p->auth_user, &oom);
	c->auth_pass = dup_or_null(p->auth_user ? (p->auth_pass ? p->auth_pass : "") : NULL, &oom);
	c->timer = evtimer_new(base, on_timer, c);
	c->defer = event_new(base, -1, 0, defer_cb, c);
	if (oom || !c->timer || !c->defer) {
		c->detached = true;
		really_free(c);
		return NULL;
	}
	c->p.helo = c->helo;
	c->p.peer_name = c->peer_name;
	c->p.auth_user = c->auth_user;
	c->p.auth_pass = c->auth_pass;
	if (c->p.connect_timeout == 0)
		c->p.connect_timeout = 30;
	if (c->p.command_timeout == 0)
		c->p.command_timeout = 300;
	if (c->p.data_timeout == 0)
		c->p.data_timeout = 600;

	unsigned char tmp[16];
	c->peer_is_ip = inet_pton(AF_INET, c->peer_name, tmp) == 1 ||
			inet_pton(AF_INET6, c->peer_name, tmp) == 1;
	log_escape(c->peer_log, sizeof(c->peer_log), c->peer_name, strlen(c->peer_name));

	enter(c);
	if (!p->addr || p->addrlen == 0 || p->addrlen > sizeof(c->addr)) {
		str_copy(c->ip, sizeof(c->ip), "?");
		snprintf(c->host, sizeof(c->host), "%.200s", c->peer_name);
		conn_fail(c, "4.3.5", "no usable address for %s", c->host);
	} else {
		memcpy(&c->addr, p->addr, p->addrlen);
		netaddr_ip_text(p->addr, c->ip, sizeof(c->ip));
		snprintf(c->host, sizeof(c->host), "%.200s[%s]", c->peer_name, c->ip);
		for (char *q = c->host; *q; q++)
			if ((unsigned char)*q < 32 || (unsigned char)*q > 126)
				*q = '?';
		if (!c->p.ssl_ctx && (p->tls == SMTPC_TLS_STARTTLS || p->tls == SMTPC_TLS_IMPLICIT))
			conn_fail(c, "4.3.5", "TLS required for %s but no TLS context", c->host);
		else
			start_connect(c);
	}
	/* Never leave(): nothing may free c before the caller has it. */
	c->busy--;
	return c;
}

void smtpc_send(struct smtpc *c, struct smtpc_msg *msg, smtpc_sent_fn *sent, void *arg)
{
	struct smtpc_txn *t = &c->t;
	struct smtpc_reply r;

	if (c->call != CALL_NONE || (c->state != C_IDLE && c->state != C_CLOSED))
		panic("smtpc_send: an operation is already in progress (state %s)",
		      state_names[c->state]);
	c->sent = sent;
	c->sent_arg = arg;
	memset(t, 0, sizeof(*t));
	t->msg = msg;
	for (size_t i = 0; i < msg->nrcpts; i++)
		memset(&msg->rcpts[i].reply, 0, sizeof(msg->rcpts[i].reply));

	if (!smtpc_usable(c)) {
		reply_local(&r, true, "4.4.2", "connection with %s is not usable", c->host);
		txn_complete(c, &r);
		return;
	}
	if (msg->nrcpts == 0) {
		reply_local(&r, true, "4.3.0", "no recipients");
		txn_complete(c, &r);
		return;
	}
	if (c->caps.size && c->caps.size_max > 0 && msg->size > c->caps.size_max) {
		reply_local(&r, false, "5.3.4", "message size %llu exceeds the limit %llu of %s",
			    (unsigned long long)msg->size, (unsigned long long)c->caps.size_max,
			    c->host);
		txn_complete(c, &r);
		return;
	}
	if (msg->smtputf8 && !c->caps.smtputf8) {
		reply_local(&r, false, "5.6.7", "SMTPUTF8 required but not offered by the server %s",
			    c->host);
		txn_complete(c, &r);
		return;
	}
	if (!addr_safe(msg->sender)) {
		reply_local(&r, false, "5.1.7", "invalid sender address");
		txn_complete(c, &r);
		return;
	}
	t->rstate = calloc(msg->nrcpts, sizeof(*t->rstate));
	t->slot = calloc(msg->nrcpts, sizeof(*t->slot));
	if (!t->rstate || !t->slot) {
		reply_local(&r, true, "4.3.0", "out of memory");
		txn_complete(c, &r);
		return;
	}
	for (size_t i = 0; i < msg->nrcpts; i++) {
		if (addr_safe(msg->rcpts[i].address)) {
			t->slot[t->nslots++] = i;
		} else {
			t->rstate[i] = RS_REFUSED;
			reply_local(&msg->rcpts[i].reply, false, "5.1.3",
				    "invalid recipient address");
			t->last_refusal = msg->rcpts[i].reply;
		}
	}
	if (t->nslots == 0) {
		txn_complete(c, &t->last_refusal);
		return;
	}
	t->rset = c->need_rset;
	t->ncmds = (t->rset ? 1 : 0) + 1 + t->nslots + 1;
	smtpc_reply_reset(&c->rp);
	smtpc_enter(c, C_TXN);
	if (c->caps.pipelining) {
		/* RFC 2920 3.1: RSET, MAIL, RCPT... and DATA (last) in one group. */
		for (size_t i = 0; i < t->ncmds && c->state == C_TXN; i++)
			txn_write(c, i);
	} else {
		txn_write(c, 0);
	}
	if (c->state == C_TXN)
		timer_arm(c, c->p.command_timeout);
}

bool smtpc_usable(const struct smtpc *c)
{
	return c->state == C_IDLE && c->bev && !c->broken;
}

const struct smtpc_info *smtpc_info(const struct smtpc *c)
{
	return &c->info;
}

void smtpc_quit(struct smtpc *c)
{
	if (!smtpc_usable(c)) {
		smtpc_free(c);
		return;
	}
	c->detached = true;
	c->call = CALL_NONE;
	event_del(c->defer);
	start_quit(c);
}

void smtpc_free(struct smtpc *c)
{
	c->detached = true;
	c->call = CALL_NONE;
	event_del(c->defer);
	close_conn(c);
	smtpc_enter(c, C_CLOSED);
	try_free(c);
}
