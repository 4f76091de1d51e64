/*
 * Fuzz target: a whole SMTP session (smtp_session.c) fed arbitrary client
 * bytes, with the real command parser, DATA/BDAT reader, recipient
 * resolution and spool underneath.
 *
 * The first input byte picks the client address (relay client, loopback with
 * AUTH offered in plaintext, or neither) and how the rest is cut into writes;
 * the rest is what the client sends before it closes its side. STARTTLS is
 * offered (a generated certificate): the handshake gets the fuzzer's bytes
 * and fails, after the switch and the discarding of what came behind the
 * command. The session runs on a real event loop over a socketpair; the
 * spool is in /dev/shm so that fsync costs nothing.
 * Invariants: the session always ends (EOF closes it), every reply line the
 * server writes (until TLS starts) is "ddd" + SP or '-' + text + CRLF with a
 * code in 2xx-5xx, and nothing is left in incoming/ once the session is gone.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/config.h"
#include "mail/aliases.h"
#include "mail/resolve.h"
#include "mail/users.h"
#include "queue/queue_store.h"
#include "smtpd/auth_limit.h"
#include "smtpd/conn_limit.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session.h"
#include "tls/tls_server.h"
#include "util/iopool.h"
#include "util/outflush.h"
#include "util/log.h"
#include "fuzz_session.h"

static struct smtpd d;
static struct config cfg;
static char dir[64];

static void write_file(const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_dir(void)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	char text[2048], err[512];

	signal(SIGPIPE, SIG_IGN); /* as the server does: a closed peer is an error, not death */
	strcpy(dir, "/dev/shm/carteiro-fuzz-XXXXXX");
	if (!mkdtemp(dir)) {
		strcpy(dir, "/tmp/carteiro-fuzz-XXXXXX");
		if (!mkdtemp(dir))
			abort();
	}
	atexit(remove_dir);
	/* alice's hash is SHA-512-crypt of "secret" (a cheap scheme: AUTH succeeds fast). */
	write_file("users", "demo@example.test:x\nalice@example.test:"
			    "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8w"
			    "iOQSpT0Y77vwPZN.Pq.H91p5hVO1\n");
	write_file("aliases", "postmaster@example.test: demo@example.test\n"
			      "team@example.test: demo@example.test, alice@example.test, "
			      "x@remote.test\n"
			      "loop1@example.test: loop2@example.test\n"
			      "loop2@example.test: loop1@example.test\n");
	char cert[128], key[128];
	snprintf(cert, sizeof cert, "%s/cert.pem", dir);
	snprintf(key, sizeof key, "%s/key.pem", dir);
	fuzz_make_cert(cert, key);
	snprintf(text, sizeof text,
		 "hostname mx.example.test\nspool %s/spool\nmaildir-root %s/mail\n"
		 "listen smtp 127.0.0.1:2525 starttls\ntls-cert %s\ntls-key %s\n"
		 "local-domain example.test\nusers %s/users\n"
		 "aliases %s/aliases\nrelay-network 10.0.0.0/8\nmax-message-size 64K\n"
		 "max-recipients 5\nsmtp-max-errors 50\nauth-plaintext-loopback yes\n"
		 "auth-failure-delay 0\nauth-max-failures 1000\n",
		 dir, dir, cert, key, dir, dir);
	config_init(&cfg);
	if (config_parse(&cfg, "<fuzz>", text, strlen(text), NULL, NULL) != 0)
		abort();
	if (queue_spool_prepare(cfg.spool, -1, -1) != 0)
		abort();
	log_init("fuzz", false, false, LVL_ERR);

	d.cfg = &cfg;
	d.base = event_base_new();
	d.pool = iopool_new(d.base, 1);
	d.outflush = outflush_new(d.base); /* the plain sessions' replies, as in a worker */
	d.limits = conn_limit_create(100, 100, 1);
	d.auth_limits = auth_limit_create();
	d.resolve_scratch = calloc(SMTPD_RESOLVE_MAX, sizeof *d.resolve_scratch);
	if (!d.base || !d.pool || !d.outflush || !d.limits || !d.auth_limits || !d.resolve_scratch ||
	    smtpd_load_maps(&cfg, NULL, NULL, &d.users, &d.aliases) != 0 ||
	    tls_server_load(&cfg, &d.tls, err, sizeof err) != 0 || !d.tls ||
	    queue_store_open(&d.store, cfg.spool, d.pool, 1) != 0)
		abort();
	queue_id_init(&d.session_ids, 1);
}

/* Remove the messages the session queued, so the spool does not grow. */
static void clear_dir(const char *sub, bool must_be_empty)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", cfg.spool, sub);
	DIR *dd = opendir(path);
	struct dirent *de;
	while (dd && (de = readdir(dd))) {
		if (de->d_name[0] == '.')
			continue;
		if (must_be_empty)
			abort(); /* a partial message outlived its session */
		unlinkat(dirfd(dd), de->d_name, 0);
	}
	if (dd)
		closedir(dd);
}

/* Every complete reply line must be well-formed: checked as the output comes, until the
 * 220 to STARTTLS (TLS records follow: an alert, as the handshake gets the fuzzer's bytes). */
#define TLS_GO "220 2.0.0 Ready to start TLS"
struct reply_check {
	char head[sizeof TLS_GO]; /* the first octets of the current line */
	size_t len;               /* its length so far */
	bool cr;                  /* a CR came last: an LF must follow */
	bool tls;                 /* TLS started: no more lines */
};

static void check_replies(void *ctx, const char *p, size_t n)
{
	struct reply_check *c = ctx;
	for (size_t i = 0; i < n && !c->tls; i++) {
		char ch = p[i];
		if (c->cr) {
			ASSERT(ch == '\n'); /* no CR inside a line */
			const char *l = c->head;
			ASSERT(c->len >= 4 && l[0] >= '2' && l[0] <= '5' && l[1] >= '0' &&
			       l[1] <= '9' && l[2] >= '0' && l[2] <= '9' && (l[3] == ' ' || l[3] == '-'));
			c->tls = c->len == sizeof TLS_GO - 1 && memcmp(l, TLS_GO, c->len) == 0;
			c->len = 0;
			c->cr = false;
		} else if (ch == '\r') {
			c->cr = true;
		} else {
			ASSERT(ch != '\n' && ch != '\0');
			if (c->len < sizeof c->head)
				c->head[c->len] = ch;
			c->len++;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];

	if (!d.base)
		setup();
	if (size == 0 || size > 200000)
		return 0;
	unsigned mode = data[0];
	data++;
	size--;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	struct sockaddr_in peer;
	memset(&peer, 0, sizeof peer);
	peer.sin_family = AF_INET;
	/* A relay client, or a loopback one (AUTH offered without TLS), or neither. */
	static const uint32_t peers[4] = { 0xc0000201u, 0x0a010203u, 0x7f000001u, 0x7f000001u };
	peer.sin_addr.s_addr = htonl(peers[mode & 3]);
	peer.sin_port = htons(40000);
	smtp_session_start(&d, sv[0], (struct sockaddr *)&peer, sizeof peer, &cfg.listens[0]);

	size_t chunk = (mode >> 2) ? (mode >> 2) * 7 : size; /* how the client cuts its writes */
	struct reply_check rc = { .len = 0 };
	fuzz_session_run(&d, sv[1], data, size, chunk, 0, check_replies, &rc);
	clear_dir("incoming", true);
	clear_dir("queue", false);
	return 0;
}
