/*
 * Fuzz target: a whole POP3 session (pop3d/pop3_session.c) fed arbitrary
 * client bytes, with the real line reader and parser, SASL, password checks
 * and maildrop (locking, listing, RETR/TOP streaming, UPDATE) underneath.
 *
 * Users alice@example.test (password "secret", a maildrop of four messages:
 * dot-stuffing, a stored CRLF and no final line end, an empty one, and one
 * larger than the session's read chunk) and bob@example.test (same password,
 * empty maildrop). The maildrops and the failed-login table are made afresh
 * for every input, so an input always does the same. The first input byte
 * picks the client (loopback: logins allowed without TLS; or not), the
 * listener (STLS offered with a generated certificate, no STLS, or pop3s)
 * and how the rest is cut into writes (or whether the client stops reading
 * for a while); the rest is what the client sends before it closes its side. The session runs on a real event loop over a
 * socketpair; files are in /dev/shm.
 *
 * Invariants (abort() when one breaks):
 *   - the session always ends once the client is gone, and its I/O finishes;
 *   - what it writes (until TLS starts) is CRLF lines only, no bare LF; the
 *     first is the greeting or an -ERR;
 *   - every RETR ("+OK n octets") announces the size of one of the messages
 *     and sends exactly that message, dot-stuffed, with CRLF line ends and
 *     the final ".": byte for byte what a model of RFC 1939 3 computes here;
 *   - a login reports its maildrop's message count and octets;
 *   - DELE only marks: the maildrop loses messages only at QUIT's UPDATE, as
 *     many as "+OK Logging out, n messages deleted" says;
 *   - the maildrop lock is released when the session ends.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config.h"
#include "mail/aliases.h"
#include "mail/users.h"
#include "pop3d/pop3_mailbox.h"
#include "pop3d/pop3_session.h"
#include "smtpd/auth_limit.h"
#include "smtpd/conn_limit.h"
#include "smtpd/smtp_server.h"
#include "tls/tls_server.h"
#include "util/iopool.h"
#include "util/log.h"
#include "fuzz_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NMSGS 4
#define BIG_LINES 3000 /* about 150 KB: more than one read chunk (128 KiB) of the session */

/* alice's messages as stored (LF line ends, as Maildir delivery writes them). */
struct stored {
	const char *dir;  /* "new" or "cur" */
	char name[96];
	char *text;
	size_t len;
	char *wire;       /* what RETR must send after its +OK line */
	size_t wire_len;
	uint64_t size;    /* the POP3 size: CRLF line ends, before stuffing */
};

static struct smtpd d;
static struct config cfg;
static char dir[64];
static struct stored msgs[NMSGS];
static uint64_t total_size;

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || close(fd) != 0)
		abort();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_tree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_dir(void)
{
	remove_tree(dir);
}

/* RFC 1939 3, independently of pop3_xfer: LF ends a line (a CR before it is part of the
 * line end), CRLF is sent, a leading '.' doubled, a last line without LF ended, then ".". */
static void model_wire(struct stored *m)
{
	size_t cap = m->len * 2 + 8, o = 0;
	m->wire = malloc(cap);
	m->size = 0;
	if (!m->wire)
		abort();
	size_t i = 0;
	while (i < m->len) {
		size_t end = i;
		while (end < m->len && m->text[end] != '\n')
			end++;
		size_t content = end;
		if (end < m->len && content > i && m->text[content - 1] == '\r')
			content--;
		if (m->text[i] == '.')
			m->wire[o++] = '.';
		memcpy(m->wire + o, m->text + i, content - i);
		o += content - i;
		m->wire[o++] = '\r';
		m->wire[o++] = '\n';
		m->size += content - i + 2;
		i = end < m->len ? end + 1 : end;
	}
	memcpy(m->wire + o, ".\r\n", 3);
	m->wire_len = o + 3;
}

static void make_messages(void)
{
	static const char one[] = "Return-Path: <a@example.org>\nDelivered-To: alice@example.test\n"
				  "Subject: one\n\nfirst line\n.starts with a dot\n..two dots\n.\n"
				  "last\n";
	static const char two[] = "Subject: two\r\n\r\nbody line\r\n.dot\r\nno final line end";
	msgs[0].text = strdup(one);
	msgs[1].text = strdup(two);
	msgs[2].text = strdup("");
	size_t cap = 64 + (size_t)BIG_LINES * 64, o = 0;
	msgs[3].text = malloc(cap);
	if (!msgs[0].text || !msgs[1].text || !msgs[2].text || !msgs[3].text)
		abort();
	o += (size_t)snprintf(msgs[3].text, cap, "Subject: four\n\n");
	for (int i = 0; i < BIG_LINES; i++)
		o += (size_t)snprintf(msgs[3].text + o, cap - o, "%s%05d %s\n", i % 10 ? "" : ".",
				      i, "the quick brown fox jumps over the lazy dog");
	msgs[3].len = o;
	for (int k = 0; k < 3; k++)
		msgs[k].len = strlen(msgs[k].text);
	for (int k = 0; k < NMSGS; k++) {
		model_wire(&msgs[k]);
		total_size += msgs[k].size;
	}
	/* Names in arrival order; the first has the size fields a delivery writes, the third
	 * is in cur/ already (seen), the others plain names in new/. */
	msgs[0].dir = "new";
	snprintf(msgs[0].name, sizeof msgs[0].name, "1700000001.M1Q1R0.fuzz,S=%zu,W=%" PRIu64,
		 msgs[0].len, msgs[0].size);
	msgs[1].dir = "new";
	/* A name longer than a UIDL may be: the UIDL ends with a hash. */
	snprintf(msgs[1].name, sizeof msgs[1].name,
		 "1700000002.M2Q2R0.a-host-name-long-enough-to-need-the-hashed-uidl.example.test");
	msgs[2].dir = "cur";
	snprintf(msgs[2].name, sizeof msgs[2].name, "1700000003.M3Q3R0.fuzz:2,S");
	msgs[3].dir = "new";
	snprintf(msgs[3].name, sizeof msgs[3].name, "1700000004.M4Q4R0.fuzz");
}

/* alice's maildrop with the four messages, bob's gone (made empty at his login). */
static void restore_maildrops(void)
{
	char path[256];
	snprintf(path, sizeof path, "%s/mail/example.test", dir);
	remove_tree(path);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/mail/example.test/alice", dir);
	if (mkdir(path, 0700) < 0)
		abort();
	static const char *const subs[] = { "tmp", "new", "cur" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/mail/example.test/alice/%s", dir, subs[i]);
		if (mkdir(path, 0700) < 0)
			abort();
	}
	for (int k = 0; k < NMSGS; k++) {
		snprintf(path, sizeof path, "%s/mail/example.test/alice/%s/%s", dir, msgs[k].dir,
			 msgs[k].name);
		write_file(path, msgs[k].text, msgs[k].len);
	}
}

static size_t count_messages(void)
{
	static const char *const subs[] = { "new", "cur" };
	size_t n = 0;
	for (int i = 0; i < 2; i++) {
		char path[256];
		snprintf(path, sizeof path, "%s/mail/example.test/alice/%s", dir, subs[i]);
		DIR *dd = opendir(path);
		struct dirent *de;
		while (dd && (de = readdir(dd)))
			n += de->d_name[0] != '.';
		if (dd)
			closedir(dd);
	}
	return n;
}

static void setup(void)
{
	char text[2048], path[256], err[512];

	signal(SIGPIPE, SIG_IGN); /* as the server does: a closed peer is an error, not death */
	strcpy(dir, "/dev/shm/carteiro-fuzz-XXXXXX");
	if (!mkdtemp(dir)) {
		strcpy(dir, "/tmp/carteiro-fuzz-XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	atexit(remove_dir);
	/* SHA-512-crypt of "secret" with the fewest rounds it allows: a login is fast. */
	static const char hash[] = "$6$rounds=1000$saltsalt$LAV5VE5Y7w1d73x1mFNspYWUpazfmwv2So"
				   "epNXNKJ/otop/Zok96Hr8Q13LEv0DRY/x8v0/crpIjl8NJSAqXV/";
	snprintf(text, sizeof text, "alice@example.test:%s\nbob@example.test:%s\n"
		 "demo@example.test:x\n", hash, hash);
	snprintf(path, sizeof path, "%s/users", dir);
	write_file(path, text, strlen(text));
	snprintf(path, sizeof path, "%s/mail", dir);
	if (mkdir(path, 0700) < 0)
		abort();
	char cert[128], key[128];
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	fuzz_make_cert(cert, key); /* STLS is offered; its handshake gets the fuzzer's bytes */
	snprintf(text, sizeof text,
		 "hostname mx.example.test\nspool %s/spool\nmaildir-root %s/mail\n"
		 "listen pop3 127.0.0.1:1110 starttls\nlisten pop3 127.0.0.1:1111\n"
		 "listen pop3s 127.0.0.1:1995\ntls-cert %s\ntls-key %s\n"
		 "local-domain example.test\nusers %s/users\n"
		 "pop3-max-errors 30\nauth-failure-delay 0\nauth-max-failures 3\n",
		 dir, dir, cert, key, dir);
	config_init(&cfg);
	if (config_parse(&cfg, "<fuzz>", text, strlen(text), NULL, NULL) != 0)
		abort();
	log_init("fuzz", false, false, LVL_ERR);

	make_messages();
	d.cfg = &cfg;
	d.base = event_base_new();
	d.pool = iopool_new(d.base, 1);
	d.limits = conn_limit_create(100, 100, 1);
	if (!d.base || !d.pool || !d.limits ||
	    smtpd_load_maps(&cfg, NULL, NULL, &d.users, &d.aliases) != 0 ||
	    tls_server_load(&cfg, &d.tls, err, sizeof err) != 0 || !d.tls)
		abort();
	queue_id_init(&d.session_ids, 1);
}

/* --- what the server writes ----------------------------------------------------------- */

struct out_check {
	enum { O_LINE, O_BODY, O_TLS } mode;
	char line[256];
	size_t len;
	bool prev_cr, first_done;
	const struct stored *body; /* O_BODY: the message RETR is sending */
	size_t pos;
	bool logged_in, logged_out, update_failed;
	unsigned deleted;
};

/* Does line (without CRLF) read fmt with one number, and nothing more? */
static bool match_number(const char *line, const char *fmt, uint64_t *n)
{
	int end = -1;
	return sscanf(line, fmt, n, &end) == 1 && end >= 0 && line[end] == '\0';
}

static void check_line(struct out_check *c)
{
	const char *l = c->line;
	uint64_t n = 0, octets = 0;
	if (!c->first_done) {
		ASSERT(strcmp(l, "+OK carteiro POP3 server ready") == 0 || strncmp(l, "-ERR ", 5) == 0);
		c->first_done = true;
		return;
	}
	if (match_number(l, "+OK %" SCNu64 " octets%n", &n)) {
		c->body = NULL;
		for (int k = 0; k < NMSGS; k++)
			if (msgs[k].size == n)
				c->body = &msgs[k];
		ASSERT(c->body); /* the size of no message */
		c->mode = O_BODY;
		c->pos = 0;
	} else if (match_number(l, "+OK Logging out, %" SCNu64 " messages deleted%n", &n)) {
		c->logged_out = true;
		c->deleted = (unsigned)n;
	} else if (strcmp(l, "-ERR [SYS/TEMP] Some deleted messages were not removed") == 0) {
		c->update_failed = true;
	} else if (strcmp(l, "+OK Begin TLS negotiation now") == 0) {
		c->mode = O_TLS; /* TLS records follow (an alert, as the handshake fails) */
	} else if (strncmp(l, "+OK Logged in, ", 15) == 0) {
		int end = -1;
		ASSERT(sscanf(l + 15, "%" SCNu64 " messages (%" SCNu64 " octets)%n", &n, &octets,
			      &end) == 2 && end >= 0 && l[15 + end] == '\0');
		ASSERT((n == NMSGS && octets == total_size) || (n == 0 && octets == 0));
		c->logged_in = true;
	}
}

static void check_output(void *ctx, const char *p, size_t n)
{
	struct out_check *c = ctx;
	for (size_t i = 0; i < n && c->mode != O_TLS; i++) {
		char ch = p[i];
		if (c->mode == O_BODY) {
			ASSERT(ch == c->body->wire[c->pos]);
			if (++c->pos == c->body->wire_len)
				c->mode = O_LINE;
		} else if (ch == '\n') {
			ASSERT(c->prev_cr); /* no bare LF on the wire */
			c->line[c->len ? c->len - 1 : 0] = '\0';
			check_line(c);
			c->len = 0;
		} else if (c->len < sizeof c->line - 1) {
			c->line[c->len++] = ch;
		}
		c->prev_cr = ch == '\r';
	}
}

/* --- one input ------------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];

	if (!d.base)
		setup();
	if (size == 0 || size > 100000)
		return 0;
	unsigned mode = data[0];
	data++;
	size--;

	static bool maildrop_touched = true;
	if (maildrop_touched)
		restore_maildrops(); /* only a login changes it (new/ -> cur/, seen, deleted) */
	d.auth_limits = auth_limit_create(); /* fresh: an input's failures and bans are its own */
	if (!d.auth_limits || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	struct sockaddr_in peer;
	memset(&peer, 0, sizeof peer);
	peer.sin_family = AF_INET;
	peer.sin_addr.s_addr = htonl(mode & 1 ? 0xc0000201u : 0x7f000001u);
	peer.sin_port = htons(40000);
	/* STLS offered (mostly), no STLS, or implicit TLS (1 in 8). */
	unsigned lsel = (mode >> 1) & 7;
	const struct listen_cfg *listener = &cfg.listens[lsel == 7 ? 2 : (lsel & 1)];
	pop3_session_start(&d, sv[0], (struct sockaddr *)&peer, sizeof peer, listener);

	/* pop3s: TLS records from the first octet. */
	struct out_check oc = { .mode = (listener->flags & LISTEN_IMPLICIT_TLS) ? O_TLS : O_LINE };
	/* How the client cuts its writes; 15: all at once, then it reads nothing for a while. */
	unsigned cut = mode >> 4;
	size_t chunk = cut && cut < 15 ? cut * 7 : size;
	fuzz_session_run(&d, sv[1], data, size, chunk, cut == 15 ? 300 : 0, check_output, &oc);
	if (oc.mode != O_TLS) {
		ASSERT(oc.mode == O_LINE && oc.len == 0); /* nothing cut in the middle */
		/* Deletions happen at QUIT only, as many as it says. */
		if (!oc.update_failed)
			ASSERT(count_messages() == NMSGS - (oc.logged_out ? oc.deleted : 0));
	} else {
		ASSERT(count_messages() == NMSGS); /* no login before STLS: nothing deleted */
	}
	/* The session released the maildrop: its lock can be taken (pop3_mailbox.h). */
	char lock_path[256];
	snprintf(lock_path, sizeof lock_path, "%s/mail/example.test/alice/" POP3_LOCK_FILE, dir);
	int lfd = open(lock_path, O_RDWR | O_CLOEXEC);
	if (lfd >= 0) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		ASSERT(fcntl(lfd, F_OFD_SETLK, &fl) == 0);
		close(lfd);
	}
	maildrop_touched = oc.logged_in || oc.mode == O_TLS || lfd >= 0;
	auth_limit_destroy(d.auth_limits);
	d.auth_limits = NULL;
	return 0;
}
