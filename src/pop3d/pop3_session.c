/*
 * pop3_session: the POP3 server state machine. See pop3_session.h.
 *
 * RFC 1939 (states 3-6, commands 5-7, multi-line responses and
 * byte-stuffing 3, UPDATE 6, the 10-minute idle timer 3), RFC 2449 (CAPA,
 * response codes [IN-USE], [AUTH], [SYS/TEMP]; command lines 4), RFC 2595 4
 * (STLS), RFC 5034 (AUTH: "+ " challenges, "*" cancels, initial response),
 * RFC 3206 (SYS and AUTH response codes).
 *
 * Security notes:
 *  - Lines are bounded by the reader (pop3_command.c) before they are
 *    copied; an overlong line is dropped as it comes and refused once it
 *    ends. Only CRLF ends a command.
 *  - Client text never goes into a reply; into logs only through LOG_ESC.
 *    Passwords and AUTH responses are never logged, and are wiped.
 *  - A login without TLS is refused unless pop3-plaintext-auth allows it
 *    (default: loopback clients only); CAPA then shows neither USER nor SASL.
 *  - STLS: what the client sent behind the command is discarded, the +OK is
 *    flushed, then TLS starts on the socket and the session starts over
 *    (a USER given before is forgotten), CVE-2011-0411.
 *  - Passwords are checked on the I/O pool (auth_check.c); a failure is
 *    answered after auth-failure-delay and counted in the failed-login table
 *    shared with SMTP (auth_limit.c), which bans an address after
 *    auth-max-failures: the banned client is disconnected.
 *  - One session per maildrop across every worker (an OFD lock, see
 *    pop3_mailbox.h): a second login gets -ERR [IN-USE].
 *  - DELE only marks; the files go at QUIT (UPDATE). A connection that ends
 *    any other way (EOF, timeout, error, shutdown) deletes nothing.
 *  - RETR/TOP stream the file in READ_CHUNK pieces, converted straight into
 *    the output buffer, and wait while the client does not read
 *    (OUTPUT_HIGH): memory per session stays bounded. A piece is read on the
 *    event loop when the page cache has it (preadv2 RWF_NOWAIT; the file's
 *    name and inode were looked at when the maildrop was opened), else on
 *    the I/O pool: two thread hand-offs per message were most of a pipelined
 *    download's time.
 */
#include "pop3d/pop3_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "mail/auth_check.h"
#include "mail/sasl.h"
#include "pop3d/pop3_command.h"
#include "pop3d/pop3_mailbox.h"
#include "smtpd/auth_limit.h"
#include "smtpd/conn_limit.h"
#include "smtpd/smtp_server.h"
#include "tls/tls_bev.h"
#include "tls/tls_server.h"
#include "util/iopool.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/str.h"

/* Stop answering (and reading) while this much output waits for the client. */
#define OUTPUT_HIGH (256u * 1024)
/* libevent stops reading a socket once this much input is buffered. */
#define INPUT_HIGH (64u * 1024)
/* RETR/TOP read the message in pieces of this size. */
#define READ_CHUNK (128u * 1024)

enum pop3_state {
	P_AUTHORIZATION, /* RFC 1939 4: waiting for USER/PASS/AUTH */
	P_TRANSACTION,   /* RFC 1939 5: logged in, the maildrop locked */
	P_UPDATE,        /* RFC 1939 6: QUIT: deletions being applied; then closing */
	P_AUTH,          /* AUTH: a challenge was sent, the response line is due */
	P_CHECK,         /* the password check, a failure's delay, or the maildrop's opening */
	P_SENDING,       /* RETR/TOP: the message is being streamed */
	P_TLS_START,     /* STLS: the +OK is being flushed; input waits */
	P_TLS_HANDSHAKE, /* the TLS handshake runs */
	P_CLOSING,       /* a last reply is being flushed; then the connection closes */
	P_COUNT
};

static const char *const state_names[P_COUNT] = {
	"authorization", "transaction", "update",    "auth",    "check",
	"sending",       "tls-start",   "tls-handshake", "closing",
};

#define ST(x) (1u << (x))
#define AUTHZ ST(P_AUTHORIZATION)
#define TRANS ST(P_TRANSACTION)

/* Every reply: one table of {status, text}; a reply may add a detail of our own. */
enum pop3_reply_id {
	PR_OK,
	PR_GREETING,
	PR_BYE,
	PR_LOGGED_IN,
	PR_LOGOUT,
	PR_CAPA,
	PR_DELETED,
	PR_STLS_GO,
	PR_UNKNOWN,
	PR_ARGS,
	PR_NUMBER,
	PR_LINE_TOO_LONG,
	PR_BARE_LF,
	PR_NUL,
	PR_NOT_LOGGED_IN,
	PR_LOGGED_IN_ALREADY,
	PR_NEED_USER,
	PR_PLAINTEXT,
	PR_AUTH_FAILED,
	PR_AUTH_BANNED,
	PR_AUTH_DECODE,
	PR_AUTH_CANCELLED,
	PR_AUTH_MECH,
	PR_IN_USE,
	PR_TEMP,
	PR_NO_SUCH_MSG,
	PR_MSG_DELETED,
	PR_STLS_ACTIVE,
	PR_STLS_UNAVAILABLE,
	PR_TIMEOUT,
	PR_TOO_MANY_ERRORS,
	PR_SHUTDOWN,
	PR_TOO_MANY_CONNECTIONS,
	PR_TOO_MANY_FROM_IP,
	PR_UPDATE_FAILED,
	PR_READ_FAILED,
	PR_COUNT
};

static const struct pop3_reply {
	bool ok;
	const char *text; /* may be "" (STAT, LIST n: the detail is the whole text) */
} replies[PR_COUNT] = {
	[PR_OK] = { true, "" },
	[PR_GREETING] = { true, "carteiro POP3 server ready" },
	[PR_BYE] = { true, "Bye" },
	[PR_LOGGED_IN] = { true, "Logged in," },
	[PR_LOGOUT] = { true, "Logging out," },
	[PR_CAPA] = { true, "Capability list follows" },
	[PR_DELETED] = { true, "Marked to be deleted" },
	[PR_STLS_GO] = { true, "Begin TLS negotiation now" },
	[PR_UNKNOWN] = { false, "Unknown command" },
	[PR_ARGS] = { false, "Wrong arguments (count or spacing)" },
	[PR_NUMBER] = { false, "Argument is not a valid number" },
	[PR_LINE_TOO_LONG] = { false, "Line too long" },
	[PR_BARE_LF] = { false, "Line must end with CRLF" },
	[PR_NUL] = { false, "NUL octet in command" },
	[PR_NOT_LOGGED_IN] = { false, "Not logged in" },
	[PR_LOGGED_IN_ALREADY] = { false, "Not allowed after login" },
	[PR_NEED_USER] = { false, "USER first" },
	[PR_PLAINTEXT] = { false, "[AUTH] Plaintext authentication disallowed without TLS "
				 "(use STLS or the pop3s port)" },
	[PR_AUTH_FAILED] = { false, "[AUTH] Authentication failed" },
	[PR_AUTH_BANNED] = { false, "[AUTH] Too many authentication failures; try again later" },
	[PR_AUTH_DECODE] = { false, "Invalid SASL response" },
	[PR_AUTH_CANCELLED] = { false, "Authentication cancelled" },
	[PR_AUTH_MECH] = { false, "Unsupported authentication mechanism" },
	[PR_IN_USE] = { false, "[IN-USE] Mailbox is in use by another session" },
	[PR_TEMP] = { false, "[SYS/TEMP] Temporary failure; try again later" },
	[PR_NO_SUCH_MSG] = { false, "No such message" },
	[PR_MSG_DELETED] = { false, "Message is deleted" },
	[PR_STLS_ACTIVE] = { false, "TLS is already active" },
	[PR_STLS_UNAVAILABLE] = { false, "STLS is not available" },
	[PR_TIMEOUT] = { false, "Disconnected for inactivity" },
	[PR_TOO_MANY_ERRORS] = { false, "Too many errors; closing" },
	[PR_SHUTDOWN] = { false, "[SYS/TEMP] Server shutting down" },
	[PR_TOO_MANY_CONNECTIONS] = { false, "[SYS/TEMP] Too many connections" },
	[PR_TOO_MANY_FROM_IP] = { false, "[SYS/TEMP] Too many connections from your address" },
	[PR_UPDATE_FAILED] = { false, "[SYS/TEMP] Some deleted messages were not removed" },
	[PR_READ_FAILED] = { false, "[SYS/TEMP] Cannot read the message" },
};

enum io_op { IO_OPEN, IO_READ, IO_UPDATE };

/*
 * The session's disk work, one job at a time on the I/O pool. It owns the
 * maildrop and the message being read: a session that goes away while a job
 * runs leaves both to the job, which frees them when it is done.
 */
struct pop3_io {
	struct iojob job; /* first: the pool hands it back */
	struct pop3_session *s; /* NULL once the session is gone */
	enum io_op op;
	bool busy;
	const char *root;
	char address[SASL_NAME_MAX + 1];
	struct pop3_mailbox mb;
	bool mb_open;
	/* IO_READ */
	size_t msg;       /* 0-based */
	int fd;           /* -1 until the first read opens it */
	uint64_t file_size, offset;
	char *chunk;      /* READ_CHUNK octets */
	size_t got;
	/* IO_UPDATE */
	unsigned deleted;
};

struct pop3_session {
	struct smtpd *d;
	struct pop3_session *prev, *next;
	struct bufferevent *bev;
	const struct listen_cfg *listener;
	struct sockaddr_storage peer;
	char peer_ip[INET6_ADDRSTRLEN];
	char id[QUEUE_ID_LEN + 1];
	enum pop3_state state;
	bool counted;        /* holds a conn_limit count */
	bool stop_requested; /* server shutdown: close after the command in progress */
	bool output_blocked;
	bool peer_eof;
	bool in_process;
	bool tls;
	struct tls_info tls_info;
	enum pop3_reply_id refused; /* the -ERR of a connection limit (when !counted) */
	unsigned errors, commands;
	const char *close_reason;

	struct pop3_reader reader;

	/* login */
	char *user;                    /* USER's name, until PASS */
	char *login;                   /* the account, once logged in */
	const char *mech;              /* "USER", "PLAIN", "LOGIN": of the login in progress */
	struct sasl *sasl;             /* the AUTH exchange in progress */
	struct auth_check *auth_check; /* the password check in flight */
	struct event *auth_delay;      /* the pause before a failure reply */
	bool auth_banned;              /* the failure being delayed banned the client */

	/* the maildrop */
	struct pop3_io *io;
	struct pop3_xfer xfer;  /* RETR/TOP in progress */
	bool xfer_top;
	bool xfer_started;      /* its +OK is out */
	bool xfer_waiting;      /* the next read waits for the client to read */
	unsigned retrieved;     /* RETR commands that completed */
	unsigned deleted;       /* files removed at UPDATE */
};

static void session_process(struct pop3_session *s);
static void session_free(struct pop3_session *s, const char *reason);
static void io_submit(struct pop3_session *s, enum io_op op);

/* --- state and replies ---------------------------------------------------- */

static void session_enter(struct pop3_session *s, enum pop3_state next)
{
	if (s->state != next)
		log_debug("sid=%s event=state from=%s to=%s", s->id, state_names[s->state],
			  state_names[next]);
	s->state = next;
	/* RFC 1939 3: the autologout timer is at least 10 minutes; the same limit for a
	 * client that stops reading. */
	struct timeval tv = { (time_t)s->d->cfg->pop3_idle_timeout, 0 };
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* Send a reply; detail (our own text, never the client's) is appended. */
static void reply(struct pop3_session *s, enum pop3_reply_id id, const char *detail)
{
	const struct pop3_reply *r = &replies[id];
	const char *sp1 = r->text[0] ? " " : "";
	const char *sp2 = detail && detail[0] ? " " : "";
	evbuffer_add_printf(bufferevent_get_output(s->bev), "%s%s%s%s%s\r\n",
			    r->ok ? "+OK" : "-ERR", sp1, r->text, sp2, detail ? detail : "");
}

/* Send a last reply and close once it is flushed. */
static void reply_and_close(struct pop3_session *s, enum pop3_reply_id id, const char *reason)
{
	reply(s, id, NULL);
	s->close_reason = reason;
	session_enter(s, P_CLOSING);
}

/* A refused command: counted; too many end the session. */
static void reply_error(struct pop3_session *s, enum pop3_reply_id id)
{
	reply(s, id, NULL);
	if (++s->errors >= s->d->cfg->pop3_max_errors) {
		log_info("sid=%s event=too_many_errors errors=%u", s->id, s->errors);
		reply_and_close(s, PR_TOO_MANY_ERRORS, "too many errors");
	}
}

/* The state that waits for the next command. */
static enum pop3_state idle_state(const struct pop3_session *s)
{
	return s->login ? P_TRANSACTION : P_AUTHORIZATION;
}

static struct pop3_mailbox *mailbox(struct pop3_session *s)
{
	return &s->io->mb;
}

/* --- login ----------------------------------------------------------------- */

static bool stls_offered(const struct pop3_session *s)
{
	return !s->tls && s->d->tls && (s->listener->flags & LISTEN_STARTTLS);
}

/* RFC 2595 2.1: no password in clear text unless the configuration allows it. */
static bool login_allowed(const struct pop3_session *s)
{
	switch (s->d->cfg->pop3_plaintext_auth) {
	case POP3_PLAINTEXT_ALWAYS:
		return true;
	case POP3_PLAINTEXT_NEVER:
		return s->tls;
	default:
		return s->tls || netaddr_is_loopback((const struct sockaddr *)&s->peer);
	}
}

static void auth_end(struct pop3_session *s)
{
	if (s->sasl) {
		sasl_reset(s->sasl);
		free(s->sasl);
		s->sasl = NULL;
	}
	free(s->user);
	s->user = NULL;
	session_enter(s, idle_state(s));
}

static bool banned(struct pop3_session *s)
{
	if (!auth_limit_banned(s->d->auth_limits, (const struct sockaddr *)&s->peer,
			       auth_limit_now()))
		return false;
	log_info("sid=%s event=login_refused client=%s reason=banned", s->id, s->peer_ip);
	reply_and_close(s, PR_AUTH_BANNED, "auth banned");
	return true;
}

static void failure_reply(struct pop3_session *s)
{
	if (s->state != P_CHECK)
		return; /* closing already (timeout, EOF, shutdown) */
	auth_end(s);
	if (s->auth_banned) {
		s->auth_banned = false;
		reply_and_close(s, PR_AUTH_BANNED, "auth failures");
	} else {
		reply(s, PR_AUTH_FAILED, NULL);
	}
	session_process(s);
}

static void on_auth_delay(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	failure_reply(arg);
}

/* A failed login: the -ERR (or, once banned, the -ERR and a close) after auth-failure-delay. */
static void login_failed(struct pop3_session *s, const char *user)
{
	const struct config *cfg = s->d->cfg;
	unsigned n = auth_limit_failed(s->d->auth_limits, (const struct sockaddr *)&s->peer,
				       auth_limit_now(), cfg->auth_max_failures, cfg->auth_ban_time);

	s->auth_banned = n >= cfg->auth_max_failures;
	log_info("sid=%s event=login_failed client=%s user=%s mechanism=%s failures=%u%s", s->id,
		 s->peer_ip, LOG_ESC(user), s->mech, n, s->auth_banned ? " banned=yes" : "");
	struct timeval tv = { (time_t)cfg->auth_failure_delay, 0 };
	if (!s->auth_delay)
		s->auth_delay = evtimer_new(s->d->base, on_auth_delay, s);
	session_enter(s, P_CHECK);
	if (!s->auth_delay || cfg->auth_failure_delay == 0) {
		failure_reply(s);
		return;
	}
	evtimer_add(s->auth_delay, &tv);
}

static void auth_check_done(void *arg, bool ok, const char *user)
{
	struct pop3_session *s = arg;

	s->auth_check = NULL;
	if (s->state != P_CHECK)
		return;
	if (!ok) {
		login_failed(s, user);
		return;
	}
	/* The password is right: lock and list the maildrop (RFC 1939 4, 8). */
	if (!s->io) {
		s->io = calloc(1, sizeof *s->io);
		if (!s->io || !(s->io->chunk = malloc(READ_CHUNK))) {
			if (s->io)
				free(s->io);
			s->io = NULL;
			auth_end(s);
			reply(s, PR_TEMP, NULL);
			session_process(s);
			return;
		}
		s->io->fd = -1;
		s->io->mb.box = s->io->mb.cur = s->io->mb.lock = -1;
	}
	str_copy(s->io->address, sizeof s->io->address, user);
	io_submit(s, IO_OPEN);
}

/* Check name and password off the loop; the session waits in P_CHECK. */
static void login_verify(struct pop3_session *s, const char *name, const char *password)
{
	s->auth_check = auth_check_start(s->d->pool, s->d->users, name, password,
					 auth_check_done, s);
	if (!s->auth_check) {
		auth_end(s);
		reply(s, PR_TEMP, NULL);
		return;
	}
	session_enter(s, P_CHECK);
}

/* The maildrop is open (or not): the end of a login. */
static void login_opened(struct pop3_session *s, int result)
{
	struct pop3_io *io = s->io;
	const char *user = io->address;

	if (result == -EWOULDBLOCK) {
		log_info("sid=%s event=login_refused client=%s user=%s reason=in_use", s->id,
			 s->peer_ip, LOG_ESC(user));
		auth_end(s);
		reply(s, PR_IN_USE, NULL);
		return;
	}
	if (result < 0 || !(s->login = strdup(user))) {
		log_err("sid=%s event=mailbox_failed user=%s error=\"%s\"", s->id, LOG_ESC(user),
			strerror(result < 0 ? -result : ENOMEM));
		if (result == 0)
			pop3_mailbox_close(&io->mb);
		io->mb_open = false;
		auth_end(s);
		reply(s, PR_TEMP, NULL);
		return;
	}
	io->mb_open = true;
	struct pop3_mailbox *mb = mailbox(s);
	log_info("sid=%s event=login client=%s user=%s mechanism=%s tls=%s messages=%zu "
		 "octets=%" PRIu64 " moved_to_cur=%u",
		 s->id, s->peer_ip, s->login, s->mech, s->tls ? s->tls_info.version : "no", mb->n,
		 mb->total, mb->moved);
	auth_end(s);
	char detail[96];
	snprintf(detail, sizeof detail, "%zu messages (%" PRIu64 " octets)", mb->n, mb->total);
	reply(s, PR_LOGGED_IN, detail);
}

static void cmd_user(struct pop3_session *s, const struct pop3_command *c)
{
	if (!login_allowed(s)) {
		reply_error(s, PR_PLAINTEXT);
		return;
	}
	free(s->user);
	s->user = strndup(c->arg[0].ptr, c->arg[0].len);
	if (!s->user) {
		reply(s, PR_TEMP, NULL);
		return;
	}
	reply(s, PR_OK, NULL);
}

static void cmd_pass(struct pop3_session *s, const struct pop3_command *c)
{
	char password[SASL_PASSWORD_MAX + 1];

	if (!login_allowed(s)) {
		reply_error(s, PR_PLAINTEXT);
		return;
	}
	if (!s->user) {
		reply_error(s, PR_NEED_USER);
		return;
	}
	if (banned(s))
		return;
	s->mech = "USER";
	/* The parser bounds the password by SASL_PASSWORD_MAX; a NUL never reaches here. */
	slice_copy(password, sizeof password, c->arg[0]);
	login_verify(s, s->user, password);
	explicit_bzero(password, sizeof password);
}

/* Where the AUTH exchange stands after a step: a challenge, a check, or an error. */
static void auth_continue(struct pop3_session *s, int r)
{
	if (r == SASL_CONTINUE) {
		/* RFC 5034 4: "+" SP base64 (an empty challenge is "+ "). */
		evbuffer_add_printf(bufferevent_get_output(s->bev), "+ %s\r\n", s->sasl->challenge);
		session_enter(s, P_AUTH);
	} else if (r == SASL_DONE) {
		login_verify(s, s->sasl->authcid, s->sasl->password);
		if (s->sasl)
			sasl_reset(s->sasl);
	} else {
		log_info("sid=%s event=login_failed client=%s reason=%s mechanism=%s", s->id,
			 s->peer_ip, r == SASL_ERR_TOO_LONG ? "too_long" : "bad_response", s->mech);
		auth_end(s);
		reply_error(s, PR_AUTH_DECODE);
	}
}

/* AUTH [mechanism [initial-response]] (RFC 5034 4); without arguments, the mechanisms. */
static void cmd_auth(struct pop3_session *s, const struct pop3_command *c)
{
	enum sasl_mech mech;

	if (!login_allowed(s)) {
		reply_error(s, PR_PLAINTEXT);
		return;
	}
	if (c->nargs == 0) {
		evbuffer_add_printf(bufferevent_get_output(s->bev), "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n");
		return;
	}
	if (sasl_mech_parse(c->arg[0], &mech) < 0) {
		reply_error(s, PR_AUTH_MECH);
		return;
	}
	if (banned(s))
		return;
	s->sasl = calloc(1, sizeof *s->sasl);
	if (!s->sasl) {
		reply(s, PR_TEMP, NULL);
		return;
	}
	free(s->user);
	s->user = NULL;
	s->mech = sasl_mech_name(mech);
	auth_continue(s, sasl_start(s->sasl, mech, c->nargs == 2, c->arg[1]));
}

/* A response line during AUTH (never logged: it carries the credentials). */
static void auth_response(struct pop3_session *s, struct slice line)
{
	if (line.len == 1 && line.ptr[0] == '*') {
		auth_end(s);
		reply_error(s, PR_AUTH_CANCELLED);
		return;
	}
	auth_continue(s, sasl_step(s->sasl, line));
}

/* --- TLS ------------------------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void session_bev_setup(struct pop3_session *s)
{
	bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH);
	if (s->tls || (s->listener->flags & LISTEN_IMPLICIT_TLS) || s->state == P_TLS_START)
		bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
}

/* The +OK to STLS is out: TLS takes over the socket (tls_bev.c). */
static void tls_begin(struct pop3_session *s)
{
	size_t discarded;
	struct bufferevent *tb = tls_bev_starttls(s->d->tls, s->d->base, s->bev, &discarded);

	if (discarded)
		log_info("sid=%s event=starttls_discarded bytes=%zu", s->id, discarded);
	if (!tb) {
		session_free(s, "out of memory for TLS");
		return;
	}
	s->bev = tb;
	session_bev_setup(s);
	session_enter(s, P_TLS_HANDSHAKE);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void cmd_stls(struct pop3_session *s, const struct pop3_command *c)
{
	(void)c;
	if (s->tls) {
		reply_error(s, PR_STLS_ACTIVE);
		return;
	}
	if (!stls_offered(s)) {
		reply_error(s, PR_STLS_UNAVAILABLE);
		return;
	}
	/* RFC 2595 4: the session starts over; what follows the command is not believed. */
	struct evbuffer *in = bufferevent_get_input(s->bev);
	if (evbuffer_get_length(in)) {
		log_info("sid=%s event=starttls_discarded bytes=%zu", s->id, evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	pop3_reader_reset(&s->reader);
	free(s->user);
	s->user = NULL;
	reply(s, PR_STLS_GO, NULL);
	session_enter(s, P_TLS_START);
}

static void greet(struct pop3_session *s)
{
	if (!s->counted) {
		reply_and_close(s, s->refused, "connection limit");
		return;
	}
	reply(s, PR_GREETING, NULL);
}

static void tls_established(struct pop3_session *s)
{
	bool implicit = (s->listener->flags & LISTEN_IMPLICIT_TLS) != 0;

	s->tls = true;
	tls_bev_established(s->bev, &s->tls_info, s->id, s->peer_ip,
			    implicit ? "implicit" : "stls");
	session_enter(s, P_AUTHORIZATION);
	if (implicit)
		greet(s);
	session_process(s);
}

static void tls_failed(struct pop3_session *s, const char *what)
{
	char why[TLS_ERROR_MAX];

	log_info("sid=%s event=tls_failed client=%s error=%s", s->id, s->peer_ip,
		 LOG_ESC(tls_bev_error(s->bev, why, sizeof why, what)));
	session_free(s, "tls handshake failed");
}

/* --- disk work on the I/O pool --------------------------------------------- */

/* Kernels without RWF_NOWAIT for this file system: every read goes to the pool. */
static bool nowait_unsupported;

/*
 * Read the next piece of the message into io->chunk (io->got: 0 at the end),
 * opening the file first. flags RWF_NOWAIT: -EAGAIN if that would wait for
 * the disk. 0 or -errno.
 */
static int io_read(struct pop3_io *io, int flags)
{
	io->got = 0;
	if (io->fd < 0) {
		struct stat st;
		io->fd = pop3_mailbox_open_msg(&io->mb, io->msg);
		if (io->fd < 0)
			return io->fd;
		if (fstat(io->fd, &st) < 0)
			return -errno;
		io->file_size = (uint64_t)st.st_size;
	}
	if (io->offset >= io->file_size)
		return 0;
	struct iovec v = { io->chunk, READ_CHUNK };
	ssize_t n;
	do
		n = preadv2(io->fd, &v, 1, (off_t)io->offset, flags);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (flags && errno == EOPNOTSUPP) {
			nowait_unsupported = true;
			return -EAGAIN;
		}
		return -errno;
	}
	io->got = (size_t)n;
	return 0;
}

static int io_run(struct iojob *job)
{
	struct pop3_io *io = (struct pop3_io *)job;

	switch (io->op) {
	case IO_OPEN:
		return pop3_mailbox_open(&io->mb, io->root, io->address);
	case IO_UPDATE:
		return pop3_mailbox_update(&io->mb, &io->deleted);
	case IO_READ:
		break;
	}
	return io_read(io, 0);
}

static void io_close_msg(struct pop3_io *io)
{
	if (io->fd >= 0)
		close(io->fd);
	io->fd = -1;
}

static void io_free(struct pop3_io *io)
{
	io_close_msg(io);
	if (io->mb_open)
		pop3_mailbox_close(&io->mb); /* releases the lock: nothing was deleted */
	free(io->chunk);
	free(io);
}


static bool xfer_piece(struct pop3_session *s, int result);
static void xfer_next(struct pop3_session *s);

static void io_done(struct iojob *job)
{
	struct pop3_io *io = (struct pop3_io *)job;
	struct pop3_session *s = io->s;
	int result = job->result;

	io->busy = false;
	if (!s) {
		/* The session is gone: an opened maildrop is released untouched. */
		if (io->op == IO_OPEN && result == 0)
			io->mb_open = true;
		io_free(io);
		return;
	}
	switch (io->op) {
	case IO_OPEN:
		if (s->state == P_CHECK)
			login_opened(s, result);
		else if (result == 0)
			pop3_mailbox_close(&io->mb);
		break;
	case IO_READ:
		if (xfer_piece(s, result))
			xfer_next(s);
		break;
	case IO_UPDATE:
		s->deleted = io->deleted;
		log_info("sid=%s event=logout user=%s retrieved=%u deleted=%u kept=%zu%s%s", s->id,
			 s->login, s->retrieved, io->deleted, mailbox(s)->n - io->deleted,
			 result < 0 ? " error=" : "", result < 0 ? LOG_ESC(strerror(-result)) : "");
		io->mb_open = false;
		pop3_mailbox_close(&io->mb);
		if (result < 0) {
			reply_and_close(s, PR_UPDATE_FAILED, "quit");
		} else {
			char detail[64];
			snprintf(detail, sizeof detail, "%u messages deleted", io->deleted);
			reply(s, PR_LOGOUT, detail);
			s->close_reason = "quit";
			session_enter(s, P_CLOSING);
		}
		break;
	}
	session_process(s);
}

static void io_submit(struct pop3_session *s, enum io_op op)
{
	struct pop3_io *io = s->io;
	io->s = s;
	io->op = op;
	io->root = s->d->cfg->maildir_root;
	io->busy = true;
	iojob_init(&io->job, io_run, NULL, io_done);
	iopool_submit(s->d->pool, &io->job);
}

/* --- RETR and TOP ---------------------------------------------------------- */

/*
 * A piece of the message was read (or the read failed): convert it into the
 * output. True when the next piece is to be read now.
 */
static bool xfer_piece(struct pop3_session *s, int result)
{
	struct pop3_io *io = s->io;
	struct evbuffer *out = bufferevent_get_output(s->bev);

	if (s->state != P_SENDING) {
		io_close_msg(io);
		return false;
	}
	if (result < 0) {
		log_err("sid=%s event=read_failed user=%s message=%zu error=\"%s\"", s->id, s->login,
			io->msg + 1, strerror(-result));
		io_close_msg(io);
		if (!s->xfer_started) {
			session_enter(s, P_TRANSACTION);
			reply(s, PR_READ_FAILED, NULL);
		} else {
			/* The +OK is out: only closing tells the client the message is cut. */
			s->close_reason = "read failed";
			session_enter(s, P_CLOSING);
		}
		return false;
	}
	if (!s->xfer_started) {
		if (s->xfer_top) {
			reply(s, PR_OK, NULL);
		} else {
			char detail[48];
			snprintf(detail, sizeof detail, "%" PRIu64 " octets",
				 mailbox(s)->msgs[io->msg].size);
			reply(s, PR_OK, detail);
		}
		s->xfer_started = true;
	}
	size_t used = 0;
	if (io->got) {
		/* Converted straight into the output buffer: at most two octets per octet. */
		struct evbuffer_iovec v;
		if (evbuffer_reserve_space(out, io->got * 2, &v, 1) < 1) {
			io_close_msg(io);
			session_free(s, "out of memory");
			return false;
		}
		v.iov_len = pop3_xfer_convert(&s->xfer, io->chunk, io->got, v.iov_base, &used);
		evbuffer_commit_space(out, &v, 1);
		io->offset += used;
	}
	if (io->got == 0 || s->xfer.done || io->offset >= io->file_size) {
		char end[8];
		evbuffer_add(out, end, pop3_xfer_finish(&s->xfer, end));
		io_close_msg(io);
		if (!s->xfer_top) {
			mailbox(s)->msgs[io->msg].retrieved = true;
			s->retrieved++;
		}
		session_enter(s, P_TRANSACTION);
		return false;
	}
	if (evbuffer_get_length(out) > OUTPUT_HIGH) {
		s->xfer_waiting = true; /* on_write reads on */
		return false;
	}
	return true;
}

/* Read and convert pieces while the page cache has them; the I/O pool reads the rest. */
static void xfer_next(struct pop3_session *s)
{
	for (;;) {
		int r = nowait_unsupported ? -EAGAIN : io_read(s->io, RWF_NOWAIT);
		if (r == -EAGAIN) {
			io_submit(s, IO_READ);
			return;
		}
		if (!xfer_piece(s, r))
			return;
	}
}


/* The message numbered n, or NULL after an -ERR. */
static struct pop3_msg *msg_get(struct pop3_session *s, uint64_t n)
{
	struct pop3_mailbox *mb = mailbox(s);
	if (n < 1 || n > mb->n) {
		reply_error(s, PR_NO_SUCH_MSG);
		return NULL;
	}
	if (mb->msgs[n - 1].deleted) {
		reply_error(s, PR_MSG_DELETED);
		return NULL;
	}
	return &mb->msgs[n - 1];
}

static void xfer_start(struct pop3_session *s, uint64_t n, bool top, uint64_t lines)
{
	if (!msg_get(s, n))
		return;
	s->io->msg = (size_t)(n - 1);
	s->io->offset = 0;
	s->io->file_size = 0;
	s->xfer_top = top;
	s->xfer_started = false;
	s->xfer_waiting = false;
	pop3_xfer_init(&s->xfer, top, lines);
	session_enter(s, P_SENDING);
	xfer_next(s);
}

static void cmd_retr(struct pop3_session *s, const struct pop3_command *c)
{
	xfer_start(s, c->num[0], false, 0);
}

static void cmd_top(struct pop3_session *s, const struct pop3_command *c)
{
	xfer_start(s, c->num[0], true, c->num[1]);
}

/* --- TRANSACTION ------------------------------------------------------------ */

/* Messages and octets not marked deleted. */
static void maildrop_counts(struct pop3_session *s, size_t *n, uint64_t *octets)
{
	struct pop3_mailbox *mb = mailbox(s);
	*n = 0;
	*octets = 0;
	for (size_t i = 0; i < mb->n; i++) {
		if (!mb->msgs[i].deleted) {
			(*n)++;
			*octets += mb->msgs[i].size;
		}
	}
}

static void cmd_stat(struct pop3_session *s, const struct pop3_command *c)
{
	char detail[64];
	size_t n;
	uint64_t octets;

	(void)c;
	maildrop_counts(s, &n, &octets);
	snprintf(detail, sizeof detail, "%zu %" PRIu64, n, octets);
	reply(s, PR_OK, detail);
}

/* LIST and UIDL: one message, or a multi-line listing of every one not deleted. */
static void listing(struct pop3_session *s, const struct pop3_command *c, bool uidl)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	struct pop3_mailbox *mb = mailbox(s);
	char detail[POP3_UIDL_MAX + 32];

	if (c->nargs == 1) {
		struct pop3_msg *m = msg_get(s, c->num[0]);
		if (!m)
			return;
		if (uidl)
			snprintf(detail, sizeof detail, "%" PRIu64 " %s", c->num[0], m->uidl);
		else
			snprintf(detail, sizeof detail, "%" PRIu64 " %" PRIu64, c->num[0], m->size);
		reply(s, PR_OK, detail);
		return;
	}
	size_t n;
	uint64_t octets;
	maildrop_counts(s, &n, &octets);
	snprintf(detail, sizeof detail, "%zu messages (%" PRIu64 " octets)", n, octets);
	reply(s, PR_OK, detail);
	for (size_t i = 0; i < mb->n; i++) {
		const struct pop3_msg *m = &mb->msgs[i];
		if (m->deleted)
			continue;
		if (uidl)
			evbuffer_add_printf(out, "%zu %s\r\n", i + 1, m->uidl);
		else
			evbuffer_add_printf(out, "%zu %" PRIu64 "\r\n", i + 1, m->size);
	}
	evbuffer_add(out, ".\r\n", 3);
}

static void cmd_list(struct pop3_session *s, const struct pop3_command *c)
{
	listing(s, c, false);
}

static void cmd_uidl(struct pop3_session *s, const struct pop3_command *c)
{
	listing(s, c, true);
}

static void cmd_dele(struct pop3_session *s, const struct pop3_command *c)
{
	struct pop3_msg *m = msg_get(s, c->num[0]);
	if (!m)
		return;
	m->deleted = true;
	reply(s, PR_DELETED, NULL);
}

static void cmd_rset(struct pop3_session *s, const struct pop3_command *c)
{
	struct pop3_mailbox *mb = mailbox(s);
	char detail[64];

	(void)c;
	for (size_t i = 0; i < mb->n; i++)
		mb->msgs[i].deleted = false;
	snprintf(detail, sizeof detail, "%zu messages (%" PRIu64 " octets)", mb->n, mb->total);
	reply(s, PR_OK, detail);
}

static void cmd_noop(struct pop3_session *s, const struct pop3_command *c)
{
	(void)c;
	reply(s, PR_OK, NULL);
}

static void cmd_quit(struct pop3_session *s, const struct pop3_command *c)
{
	(void)c;
	if (s->state == P_AUTHORIZATION) {
		reply_and_close(s, PR_BYE, "quit");
		return;
	}
	/* RFC 1939 6: the UPDATE state, then the connection closes. */
	session_enter(s, P_UPDATE);
	io_submit(s, IO_UPDATE);
}

static void cmd_capa(struct pop3_session *s, const struct pop3_command *c)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);

	(void)c;
	reply(s, PR_CAPA, NULL);
	evbuffer_add_printf(out, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
	if (s->state == P_AUTHORIZATION) {
		if (login_allowed(s))
			evbuffer_add_printf(out, "USER\r\nSASL PLAIN LOGIN\r\n");
		if (stls_offered(s))
			evbuffer_add_printf(out, "STLS\r\n");
	}
	evbuffer_add_printf(out, "IMPLEMENTATION carteiro\r\n.\r\n");
}

/* --- commands --------------------------------------------------------------- */

static const struct pop3_command_def {
	enum pop3_verb verb;
	unsigned states;
	void (*handler)(struct pop3_session *s, const struct pop3_command *c);
} commands[] = {
	{ POP3_VERB_USER, AUTHZ, cmd_user },
	{ POP3_VERB_PASS, AUTHZ, cmd_pass },
	{ POP3_VERB_AUTH, AUTHZ, cmd_auth },
	{ POP3_VERB_STLS, AUTHZ, cmd_stls },
	{ POP3_VERB_CAPA, AUTHZ | TRANS, cmd_capa },
	{ POP3_VERB_QUIT, AUTHZ | TRANS, cmd_quit },
	{ POP3_VERB_STAT, TRANS, cmd_stat },
	{ POP3_VERB_LIST, TRANS, cmd_list },
	{ POP3_VERB_RETR, TRANS, cmd_retr },
	{ POP3_VERB_DELE, TRANS, cmd_dele },
	{ POP3_VERB_RSET, TRANS, cmd_rset },
	{ POP3_VERB_NOOP, TRANS, cmd_noop },
	{ POP3_VERB_TOP, TRANS, cmd_top },
	{ POP3_VERB_UIDL, TRANS, cmd_uidl },
};

static void handle_command(struct pop3_session *s, struct slice line)
{
	struct pop3_command cmd;
	int r = pop3_command_parse(line, &cmd);

	log_debug("sid=%s event=command verb=%s", s->id,
		  cmd.verb == POP3_VERB_UNKNOWN ? LOG_ESCN(cmd.name.ptr, cmd.name.len)
						: pop3_verb_name(cmd.verb));
	switch (r) {
	case POP3_CMD_OK:
		break;
	case POP3_CMD_ERR_UNKNOWN:
		reply_error(s, PR_UNKNOWN);
		return;
	case POP3_CMD_ERR_TOO_LONG:
		reply_error(s, PR_LINE_TOO_LONG);
		return;
	case POP3_CMD_ERR_NUMBER:
		reply_error(s, PR_NUMBER);
		return;
	default:
		reply_error(s, PR_ARGS);
		return;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (commands[i].verb != cmd.verb)
			continue;
		if (!(commands[i].states & ST(s->state))) {
			reply_error(s, s->state == P_AUTHORIZATION ? PR_NOT_LOGGED_IN
								   : PR_LOGGED_IN_ALREADY);
			return;
		}
		commands[i].handler(s, &cmd);
		return;
	}
	reply_error(s, PR_UNKNOWN);
}

/* --- input ------------------------------------------------------------------ */

/* A line refused as a whole; one that should have been an AUTH response ends the exchange. */
static void line_refused(struct pop3_session *s, enum pop3_reply_id id)
{
	if (s->state == P_AUTH)
		auth_end(s);
	reply_error(s, id);
}

/* Feed buffered input to the line reader; handle one line if one is complete. Returns
 * whether it made progress. */
static bool command_input(struct pop3_session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
		return false;
	size_t used;
	enum pop3_line_status st = pop3_reader_feed(&s->reader, v.iov_base, v.iov_len, &used);
	evbuffer_drain(in, used);
	if (st == POP3_LINE_MORE)
		return true;
	s->commands++;
	switch (st) {
	case POP3_LINE_TOO_LONG:
		line_refused(s, PR_LINE_TOO_LONG);
		break;
	case POP3_LINE_BARE_LF:
		line_refused(s, PR_BARE_LF);
		break;
	case POP3_LINE_NUL:
		line_refused(s, s->state == P_AUTH ? PR_AUTH_DECODE : PR_NUL);
		break;
	default: {
		struct slice line = { s->reader.line, s->reader.len };
		if (s->state == P_AUTH)
			auth_response(s, line);
		else
			handle_command(s, line);
		pop3_reader_reset(&s->reader); /* wipes an AUTH or PASS line */
		break;
	}
	}
	return true;
}

/* Does the session wait for something else than a command? */
static bool session_waiting(const struct pop3_session *s)
{
	return s->state == P_UPDATE || s->state == P_CHECK || s->state == P_SENDING ||
	       s->state == P_TLS_START || s->state == P_TLS_HANDSHAKE || s->state == P_CLOSING;
}

static void update_reading(struct pop3_session *s)
{
	bool want = s->state == P_TLS_HANDSHAKE ||
		    (!session_waiting(s) && !s->output_blocked && !s->peer_eof);
	if (want)
		bufferevent_enable(s->bev, EV_READ);
	else
		bufferevent_disable(s->bev, EV_READ);
}

/* Handle everything buffered, in order, until input runs out or something must wait. */
static void session_process(struct pop3_session *s)
{
	if (s->in_process)
		return;
	s->in_process = true;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	while (!session_waiting(s)) {
		if (s->stop_requested) {
			reply_and_close(s, PR_SHUTDOWN, "shutdown");
			break;
		}
		if (evbuffer_get_length(out) > OUTPUT_HIGH) {
			s->output_blocked = true;
			break;
		}
		if (!command_input(s, in))
			break;
	}
	update_reading(s);
	s->in_process = false;
	/* A client that closed its side gets its last replies, then we close; the
	 * maildrop is released untouched. */
	if (s->peer_eof && !session_waiting(s)) {
		s->close_reason = "eof";
		s->state = P_CLOSING;
	}
	if (s->state == P_CLOSING && evbuffer_get_length(out) == 0)
		session_free(s, s->close_reason ? s->close_reason : "closed");
}

/* --- libevent callbacks ------------------------------------------------------ */

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct pop3_session *s = arg;
	(void)bev;
	if (s->state == P_TLS_START) {
		tls_begin(s);
		return;
	}
	if (s->state == P_CLOSING) {
		session_free(s, s->close_reason ? s->close_reason : "closed");
		return;
	}
	if (s->xfer_waiting && s->state == P_SENDING) {
		s->xfer_waiting = false;
		xfer_next(s);
		session_process(s); /* the message may be out: the next command */
		return;
	}
	if (s->output_blocked) {
		s->output_blocked = false;
		session_process(s);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pop3_session *s = arg;
	(void)bev;

	if (what & BEV_EVENT_CONNECTED) {
		tls_established(s);
		return;
	}
	if (s->state == P_TLS_HANDSHAKE &&
	    (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT))) {
		tls_failed(s, what & BEV_EVENT_TIMEOUT ? "timeout"
			      : what & BEV_EVENT_EOF ? "eof during the handshake"
						     : "connection error");
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if ((what & BEV_EVENT_WRITING) || s->state == P_CLOSING) {
			session_free(s, "write timeout");
			return;
		}
		log_info("sid=%s event=timeout state=%s", s->id, state_names[s->state]);
		reply_and_close(s, PR_TIMEOUT, "timeout");
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		s->peer_eof = true;
		if (session_waiting(s) && s->state != P_CLOSING)
			return; /* the work in progress finishes first */
		session_process(s);
		return;
	}
	if (what & BEV_EVENT_ERROR)
		session_free(s, "connection error");
}

/* --- life cycle ---------------------------------------------------------------- */

static void session_free(struct pop3_session *s, const char *reason)
{
	struct smtpd *d = s->d;

	log_info("sid=%s event=disconnect client=%s reason=%s user=%s retrieved=%u deleted=%u "
		 "commands=%u errors=%u",
		 s->id, s->peer_ip, LOG_ESC(reason), s->login ? s->login : "-", s->retrieved,
		 s->deleted, s->commands, s->errors);
	if (s->counted)
		conn_limit_release(d->limits, d->worker, (struct sockaddr *)&s->peer);
	if (s->auth_check)
		auth_check_detach(s->auth_check); /* it finishes alone and frees itself */
	if (s->auth_delay)
		event_free(s->auth_delay);
	if (s->sasl) {
		sasl_reset(s->sasl);
		free(s->sasl);
	}
	if (s->io) {
		if (s->io->busy)
			s->io->s = NULL; /* the job frees the maildrop and itself when done */
		else
			io_free(s->io);
	}
	pop3_reader_reset(&s->reader);
	free(s->user);
	free(s->login);
	if (s->tls && s->state == P_CLOSING)
		tls_bev_close_notify(s->bev);
	bufferevent_free(s->bev);
	if (s->prev)
		s->prev->next = s->next;
	else
		d->pop3_sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	d->nsessions--;
	free(s);
	smtpd_session_gone(d);
}

void pop3_session_start(struct smtpd *d, evutil_socket_t fd, const struct sockaddr *peer,
			socklen_t peerlen, const struct listen_cfg *listener)
{
	struct pop3_session *s = calloc(1, sizeof *s);
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
	pop3_reader_init(&s->reader, POP3_LINE_ABS_MAX);
	s->bev = tls_bev_accept(implicit ? d->tls : NULL, d->base, fd);
	if (!s->bev) {
		free(s);
		return;
	}
	/* Linked before anything can free it, so session_free always unlinks. */
	s->next = d->pop3_sessions;
	if (d->pop3_sessions)
		d->pop3_sessions->prev = s;
	d->pop3_sessions = s;
	d->nsessions++;

	session_bev_setup(s);
	s->state = P_AUTHORIZATION;
	session_enter(s, P_AUTHORIZATION);

	unsigned port = netaddr_port(peer);
	int lim = conn_limit_acquire(d->limits, d->worker, peer);
	if (lim != CONN_OK) {
		log_info("sid=%s event=connect client=%s port=%u result=refused reason=%s", s->id,
			 s->peer_ip, port,
			 lim == CONN_TOO_MANY ? "max_connections" : "max_connections_per_ip");
		s->refused = lim == CONN_TOO_MANY ? PR_TOO_MANY_CONNECTIONS : PR_TOO_MANY_FROM_IP;
		if (implicit) {
			session_free(s, "connection limit");
			return;
		}
		greet(s);
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
	s->counted = true;
	log_info("sid=%s event=connect client=%s port=%u listener=%s kind=%s", s->id, s->peer_ip,
		 port, listener->text, listen_kind_name(listener->kind));
	if (implicit)
		session_enter(s, P_TLS_HANDSHAKE);
	else
		greet(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

void pop3_session_stop(struct pop3_session *s)
{
	s->stop_requested = true;
	if (s->state == P_AUTHORIZATION || s->state == P_TRANSACTION || s->state == P_AUTH) {
		reply_and_close(s, PR_SHUTDOWN, "shutdown");
		update_reading(s);
	}
}

void pop3_session_kill(struct pop3_session *s)
{
	session_free(s, "shutdown deadline");
}

struct pop3_session *pop3_session_next(struct pop3_session *s)
{
	return s->next;
}
