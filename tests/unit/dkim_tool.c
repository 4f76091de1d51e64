/*
 * dkim_tool: drive carteiro's DKIM code from the command line, for the
 * interoperability tests against python3-dkim (tests/scenario/test_dkim_interop.py).
 * Not a unit test (no test_ prefix): built with them, run by the scenario test.
 *
 *   dkim_tool sign [-c HDR/BODY] [-t TIME] [-x SECONDS] [-l] DOMAIN SELECTOR KEYFILE
 *                  [SELECTOR KEYFILE...] < MSG
 *       print the DKIM-Signature field(s) for the message with the keys given
 *       (all of DOMAIN); exit 2 (reason on stderr) when nothing was signed
 *   dkim_tool verify [-t NOW] (KEYS | -s SERVER) [MSG]
 *       verify, taking keys from KEYS ("NAME TXT-TEXT" a line, "NAME !TEMPFAIL"
 *       for a failing lookup, '#' comments), or from the DNS server SERVER
 *       (IP:PORT) through carteiro's resolver, and print one line per signature
 *       "RESULT d=.. s=.. a=.. b=.. i=.. reason=..", then "auth: <A-R text>"
 *       and "from: COUNT VALUE". The message is fed whole, then byte by byte,
 *       then in odd chunks: the results must agree (exit 3 otherwise).
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_dns.h"
#include "policy/dkim.h"
#include "util/buf.h"
#include "util/fileio.h"

#define MSG_MAX (64 * 1024 * 1024)

static int usage(void)
{
	fputs("usage: dkim_tool sign [-c HDR/BODY] [-t TIME] [-x SECONDS] [-l] DOMAIN SELECTOR "
	      "KEYFILE [SELECTOR KEYFILE...] < MSG\n"
	      "       dkim_tool verify [-t NOW] (KEYS | -s SERVER) [MSG]\n",
	      stderr);
	return 1;
}

static int read_input(const char *path, struct buf *b)
{
	if (path)
		return file_read_all(path, MSG_MAX, b);
	buf_init(b, MSG_MAX);
	char chunk[65536];
	ssize_t n;
	while ((n = read(STDIN_FILENO, chunk, sizeof chunk)) > 0)
		if (buf_append(b, chunk, (size_t)n) < 0)
			return -EFBIG;
	return n < 0 ? -errno : 0;
}

static int parse_canon(const char *s, enum dkim_canon *h, enum dkim_canon *b)
{
	char hs[16], bs[16];
	if (sscanf(s, "%15[a-z]/%15[a-z]", hs, bs) != 2)
		return -1;
	*h = strcmp(hs, "relaxed") == 0 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
	*b = strcmp(bs, "relaxed") == 0 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
	return 0;
}

static int cmd_sign(int argc, char **argv)
{
	struct dkim_sign_opts opts = { .hcanon = DKIM_CANON_RELAXED, .bcanon = DKIM_CANON_RELAXED };
	int c;

	while ((c = getopt(argc, argv, "c:t:x:l")) != -1) {
		switch (c) {
		case 'c':
			if (parse_canon(optarg, &opts.hcanon, &opts.bcanon) < 0)
				return usage();
			break;
		case 't':
			opts.time = strtoll(optarg, NULL, 10);
			break;
		case 'x':
			opts.expire = strtoull(optarg, NULL, 10);
			break;
		case 'l':
			opts.body_length = true;
			break;
		default:
			return usage();
		}
	}
	if (argc - optind < 3 || (argc - optind) % 2 != 1)
		return usage();
	struct dkim_signer_set *set = dkim_signer_set_new();
	char err[512] = "out of memory";
	bool exposed;
	for (int i = optind + 1; i < argc; i += 2) {
		if (!set || dkim_signer_set_add(set, argv[optind], argv[i], argv[i + 1], &exposed,
						err, sizeof err) < 0) {
			fprintf(stderr, "dkim_tool: %s\n", err);
			dkim_signer_set_free(set);
			return 1;
		}
	}
	struct buf msg;
	int r = read_input(NULL, &msg);
	if (r < 0) {
		fprintf(stderr, "dkim_tool: cannot read the message: %s\n", strerror(-r));
		dkim_signer_set_free(set);
		return 1;
	}
	struct dkim_sign *s = dkim_sign_new_opts(set, &opts);
	/* Odd chunks, so that the streaming path is the one tested. */
	for (size_t off = 0, step = 1; s && off < msg.len; off += step, step = step * 3 % 1021 + 1)
		dkim_sign_update(s, msg.data + off, step < msg.len - off ? step : msg.len - off);
	char out[4 * DKIM_SIGNATURE_TEXT_MAX];
	size_t outlen = 0;
	int status = 1;
	r = s ? dkim_sign_finish(s, out, sizeof out, &outlen) : -ENOMEM;
	if (r < 0) {
		fprintf(stderr, "dkim_tool: sign: %s\n", strerror(-r));
	} else if (outlen == 0) {
		fprintf(stderr, "dkim_tool: nothing signed: %s\n", dkim_sign_skip_reason(s));
		status = 2;
	} else {
		fwrite(out, 1, outlen, stdout);
		status = 0;
	}
	dkim_sign_free(s);
	dkim_signer_set_free(set);
	buf_free(&msg);
	return status;
}

/* The keys file into the fake DNS: "NAME TEXT" a line, "NAME !TEMPFAIL", '#' comments. */
static void load_keys(const struct buf *b, struct fake_dns *d)
{
	const char *line = b->data, *end = b->data + b->len;

	while (line && line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *eol = nl ? nl : end, *sp = memchr(line, ' ', (size_t)(eol - line));
		if (line[0] != '#' && sp) {
			char name[DNS_NAME_MAX + 1];
			snprintf(name, sizeof name, "%.*s", (int)(sp - line), line);
			struct slice text = { sp + 1, (size_t)(eol - sp - 1) };
			if (slice_eq(text, SLICE_LIT("!TEMPFAIL")))
				fake_dns_timeout(d, name, DNS_T_TXT);
			else
				fake_dns_txt(d, name, DNS_T_TXT, text.ptr, text.len);
		}
		line = nl ? nl + 1 : NULL;
	}
}

/* CR, LF and TAB as \r \n \t, so that a folded text stays on one output line. */
static void append_escaped(struct buf *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r')
			buf_append_str(b, "\\r");
		else if (p[i] == '\n')
			buf_append_str(b, "\\n");
		else if (p[i] == '\t')
			buf_append_str(b, "\\t");
		else
			buf_putc(b, p[i]);
	}
}

struct run {
	bool done;
	char text[16384];
};

static void on_done(void *arg, const struct dkim_results *res)
{
	struct run *run = arg;
	struct buf b;

	buf_init(&b, sizeof run->text - 1);
	for (size_t i = 0; i < res->n; i++) {
		const struct dkim_sig_result *s = &res->sig[i];
		buf_appendf(&b, "%s d=%s s=%s a=%s b=%s i=%s reason=\"%s\"%s\n",
			    dkim_result_name(s->result), s->d, s->s, s->a, s->b, s->i, s->reason,
			    s->testing ? " testing" : "");
	}
	if (res->ignored)
		buf_appendf(&b, "ignored: %zu\n", res->ignored);
	char ar[8192];
	if (dkim_auth_results(res, ar, sizeof ar) == 0) {
		buf_append_str(&b, "auth: ");
		append_escaped(&b, ar, strlen(ar));
		buf_putc(&b, '\n');
	}
	memcpy(run->text, buf_cstr(&b), b.len + 1);
	buf_free(&b);
	run->done = true;
}

/* One verification of msg fed in chunks of step bytes (0: whole); the output in run. */
static int verify_once(struct event_base *base, const struct dns_resolver *r,
		       const struct buf *msg, size_t step, bool now_set, int64_t now,
		       struct run *run, char *from, size_t fromlen)
{
	struct dkim_verify *v = dkim_verify_new();
	if (!v)
		return -ENOMEM;
	if (now_set)
		dkim_verify_set_time(v, now);
	for (size_t off = 0; off < msg->len;) {
		size_t n = step && step < msg->len - off ? step : msg->len - off;
		if (dkim_verify_update(v, msg->data + off, n) < 0) {
			dkim_verify_free(v);
			return -ENOMEM;
		}
		off += n;
	}
	run->done = false;
	dkim_verify_finish(v, base, r, on_done, run);
	if (run->done) {
		fprintf(stderr, "dkim_tool: the verifier answered inside finish\n");
		dkim_verify_free(v);
		return -EPROTO;
	}
	while (!run->done)
		if (event_base_loop(base, EVLOOP_ONCE) < 0)
			break;
	size_t count;
	struct slice first;
	int fr = dkim_verify_from(v, &count, &first);
	struct buf fb;
	buf_init(&fb, fromlen - 1);
	buf_appendf(&fb, "from: %s%zu ", fr == -E2BIG ? "unknown " : "", count);
	append_escaped(&fb, first.ptr, first.len);
	buf_putc(&fb, '\n');
	memcpy(from, buf_cstr(&fb), fb.len + 1);
	buf_free(&fb);
	dkim_verify_free(v);
	return run->done ? 0 : -EIO;
}

static int cmd_verify(int argc, char **argv)
{
	bool now_set = false;
	int64_t now = 0;
	const char *server = NULL;
	int c;

	while ((c = getopt(argc, argv, "t:s:")) != -1) {
		if (c == 't') {
			now_set = true;
			now = strtoll(optarg, NULL, 10);
		} else if (c == 's') {
			server = optarg;
		} else {
			return usage();
		}
	}
	int nargs = argc - optind, need = server ? 0 : 1;
	if (nargs < need || nargs > need + 1)
		return usage();
	struct buf keys, msg;
	buf_init(&keys, 1);
	int r = server ? 0 : file_read_all(argv[optind], 1024 * 1024, &keys);
	if (r < 0) {
		fprintf(stderr, "dkim_tool: %s: %s\n", argv[optind], strerror(-r));
		return 1;
	}
	r = read_input(nargs > need ? argv[optind + need] : NULL, &msg);
	if (r < 0) {
		fprintf(stderr, "dkim_tool: cannot read the message: %s\n", strerror(-r));
		buf_free(&keys);
		return 1;
	}
	struct event_base *base = event_base_new();
	struct fake_dns fd;
	struct dns *dns = NULL;
	char err[256];
	fake_dns_init(&fd, base);
	load_keys(&keys, &fd);
	struct dns_resolver res = fake_dns_resolver(&fd);
	if (server && base) {
		dns = dns_new(base, &server, 1, err, sizeof err);
		if (!dns) {
			fprintf(stderr, "dkim_tool: %s\n", err);
			event_base_free(base);
			base = NULL;
		} else {
			res = dns_resolver_of(dns);
		}
	}
	static struct run first, other;
	char from[DKIM_HEADER_MAX / 64], from2[sizeof from];
	static const size_t steps[] = { 1, 7, 4093 };
	int status = 0;

	if (!base || verify_once(base, &res, &msg, 0, now_set, now, &first, from, sizeof from) < 0) {
		status = 1;
		goto out;
	}
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		if (verify_once(base, &res, &msg, steps[i], now_set, now, &other, from2,
				sizeof from2) < 0 ||
		    strcmp(first.text, other.text) != 0 || strcmp(from, from2) != 0) {
			fprintf(stderr, "dkim_tool: chunks of %zu give another result:\n%s%s",
				steps[i], other.text, from2);
			status = 3;
		}
	}
	fputs(first.text, stdout);
	fputs(from, stdout);
out:
	if (dns)
		dns_free(dns);
	fake_dns_clear(&fd);
	if (base)
		event_base_free(base);
	buf_free(&keys);
	buf_free(&msg);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "sign") == 0)
		return cmd_sign(argc - 1, argv + 1);
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	return usage();
}
