/*
 * Unit tests of delivery status notifications (bounce_build, RFC 3464 /
 * RFC 6522 / RFC 6533) built from real queue files, checked field by field
 * and by an independent parser (Python's email package), and of
 * queue_inject (durable enqueue, clean failure).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "queue/bounce.h"
#include "queue/queue_store.h"
#include "smtpd/smtp_command.h"
#include "unit.h"

#define PYTHON "/usr/bin/python3"
#define NOW INT64_C(1795400000)
#define BOUNCE_ID "0123456789AB"

static const char message[] =
	"Received: from client.example.org ([192.0.2.7])\r\n"
	"\tby mx.example.net (carteiro) with ESMTP id 0000000000A3\r\n"
	"From: Alice <alice@example.org>\r\n"
	"To: bob@remote.test\r\n"
	"Subject: hello\r\n"
	"Message-ID: <m1@example.org>\r\n"
	"\r\n"
	"First body line.\r\n"
	/* The notification's first choice of boundary, as a delimiter line. */
	"--=_carteiro_" BOUNCE_ID "_1795400000_0000\r\n"
	"--=_carteiro_" BOUNCE_ID "_1795400000_0000--\r\n"
	"THE LAST BODY LINE\r\n";

/* --- fixtures -------------------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void)
{
	strcpy(tmpdir, "/tmp/carteiro-bounce-XXXXXX");
	if (!mkdtemp(tmpdir))
		abort();
}

static void remove_tmpdir(void)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "chmod -R u+rwx %s; rm -rf %s", tmpdir, tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", tmpdir);
}

static void sample_envelope(struct envelope *env)
{
	envelope_init(env);
	memcpy(env->id, "0000000000A3", QUEUE_ID_LEN + 1);
	env->arrival_sec = 1795305443;
	env->arrival_usec = 328299;
	envelope_set(&env->client_ip, "192.0.2.7");
	envelope_set(&env->helo, "client.example.org");
	envelope_set(&env->protocol, "ESMTP");
	envelope_set(&env->sender, "alice@example.org");
	/* '+', '=' and a space must come back xtext-encoded. */
	envelope_set(&env->envid, "QQ+314=159 x");
	envelope_add_rcpt(env, RCPT_REMOTE, "bob@remote.test", NULL, SMTP_NOTIFY_FAILURE,
			  "rfc822;Bob+orig@remote.test");
	envelope_add_rcpt(env, RCPT_LOCAL, "demo@example.test", "Demo+x@example.test", 0, NULL);
}

/* Write env + message as a queue file, open it and read the envelope back (msg_offset...). */
static int queue_file_fixture(struct envelope *env, const char *msg, size_t len)
{
	struct buf b;
	size_t len_off;
	char digits[20], path[128];
	int fd;

	buf_init(&b, 1 << 20);
	CHECK_INT(queue_file_write_header(env, &b, &len_off), 0);
	buf_append(&b, msg, len);
	buf_append(&b, QUEUE_FILE_TRAILER, QUEUE_FILE_TRAILER_LEN);
	queue_file_format_length(len, digits);
	memcpy(b.data + len_off, digits, 20);
	snprintf(path, sizeof path, "%s/qf", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len)
		abort();
	buf_free(&b);
	CHECK_INT(queue_file_read_envelope(fd, env), 0);
	return fd;
}

struct dsn {
	struct envelope env;
	struct bounce_rcpt rcpts[2];
	struct bounce_params p;
	struct buf out;
	int fd;
	int result;
};

/* Two failed recipients: one the remote server refused, one with only our reason. */
static void build(struct dsn *d, char ret, bool utf8, uint64_t max_returned,
		  const char *diagnostic, enum bounce_action action)
{
	memset(d, 0, sizeof *d);
	make_tmpdir();
	sample_envelope(&d->env);
	d->env.ret = ret;
	d->env.smtputf8 = utf8;
	d->fd = queue_file_fixture(&d->env, message, sizeof message - 1);
	d->p = (struct bounce_params){ .hostname = "mx.example.net",
				       .bounce_id = BOUNCE_ID,
				       .now = NOW,
				       .retry_until = NOW + 5 * 86400,
				       .max_returned = max_returned };
	d->rcpts[0] = (struct bounce_rcpt){ .rcpt = &d->env.rcpts[0],
					    .action = action,
					    .status = action == BOUNCE_DELAYED ? "4.4.1" : "5.1.1",
					    .remote_mta = "mx.remote.test",
					    .diagnostic = diagnostic,
					    .last_attempt = NOW - 60 };
	d->rcpts[1] = (struct bounce_rcpt){ .rcpt = &d->env.rcpts[1],
					    .action = action,
					    .status = action == BOUNCE_DELAYED ? "4.2.2" : "5.2.2",
					    .reason = "mailbox full" };
	buf_init(&d->out, (size_t)max_returned + (1u << 20));
	d->result = bounce_build(&d->p, &d->env, d->rcpts, 2, d->fd, &d->out);
	CHECK_INT(d->result, 0);
}

static void done(struct dsn *d)
{
	close(d->fd);
	envelope_free(&d->env);
	buf_free(&d->out);
	remove_tmpdir();
}

/* --- helpers on the output ---------------------------------------------------- */

static bool contains(const struct buf *b, const char *s)
{
	return b->len && memmem(b->data, b->len, s, strlen(s)) != NULL;
}

static size_t count(const struct buf *b, const char *s)
{
	size_t n = 0, sl = strlen(s);
	const char *p = b->data, *end = b->data + b->len;
	while (p && (size_t)(end - p) >= sl && (p = memmem(p, (size_t)(end - p), s, sl))) {
		n++;
		p += sl;
	}
	return n;
}

/* A line exactly equal to s (between CRLFs). */
static bool has_line(const struct buf *b, const char *s)
{
	char want[1200];
	snprintf(want, sizeof want, "\r\n%s\r\n", s);
	return contains(b, want);
}

/* The boundary declared in the top-level Content-Type. */
static void get_boundary(const struct buf *b, char *out, size_t outlen)
{
	const char *p = memmem(b->data, b->len, "boundary=\"", 10);
	out[0] = '\0';
	if (!p)
		return;
	p += 10;
	const char *q = strchr(p, '"');
	if (q && (size_t)(q - p) < outlen) {
		memcpy(out, p, (size_t)(q - p));
		out[q - p] = '\0';
	}
}

/* The header section of part i (1-based) of the notification, into hdr; its body into body. */
static bool get_part(const struct buf *b, int i, struct buf *hdr, struct buf *body)
{
	char boundary[128], delim[140];
	get_boundary(b, boundary, sizeof boundary);
	snprintf(delim, sizeof delim, "\r\n--%s", boundary);
	const char *p = b->data, *end = b->data + b->len;
	for (int k = 0; k < i; k++) {
		p = memmem(p, (size_t)(end - p), delim, strlen(delim));
		if (!p)
			return false;
		p += strlen(delim);
	}
	if (end - p < 2 || memcmp(p, "\r\n", 2) != 0)
		return false;
	p += 2;
	const char *next = memmem(p, (size_t)(end - p), delim, strlen(delim));
	const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
	if (!next || !hend || hend > next)
		return false;
	buf_init(hdr, 1 << 20);
	buf_init(body, 1 << 22);
	buf_append(hdr, p, (size_t)(hend - p) + 2);
	buf_append(body, hend + 4, (size_t)(next - hend - 4));
	return true;
}

static void check_part_type(const struct buf *b, int i, const char *type)
{
	struct buf h, body;
	char want[128];
	CHECK_MSG(get_part(b, i, &h, &body), "part %d missing", i);
	snprintf(want, sizeof want, "Content-Type: %s", type);
	CHECK_MSG(contains(&h, want), "part %d: no %s in\n%s", i, want, buf_cstr(&h));
	buf_free(&h);
	buf_free(&body);
}

/* BOUNCE_DUMP=1 build/asan/tests/test_bounce NAME shows a notification. */
static void dump(const struct buf *b)
{
	if (getenv("BOUNCE_DUMP"))
		fwrite(b->data, 1, b->len, stdout);
}

static bool all_lines_crlf(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == '\n' && (i == 0 || b->data[i - 1] != '\r'))
			return false;
		if (b->data[i] == '\r' && (i + 1 == b->len || b->data[i + 1] != '\n'))
			return false;
	}
	return true;
}

static size_t longest_line(const char *p, size_t len)
{
	size_t best = 0, cur = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n') {
			if (cur > best)
				best = cur;
			cur = 0;
			i++;
		} else {
			cur++;
		}
	}
	return cur > best ? cur : best;
}

/*
 * Independent check: Python's email package parses the notification.
 * argv: file, part 2 type, part 3 type, number of recipients, expected Action.
 */
static const char python_check[] =
	"import sys, email, email.policy\n"
	"path, t2, t3, n, action = sys.argv[1:6]\n"
	"m = email.message_from_bytes(open(path, 'rb').read(), policy=email.policy.default)\n"
	"assert m.is_multipart(), 'not multipart'\n"
	"assert m.get_content_type() == 'multipart/report', m.get_content_type()\n"
	"assert m.get_param('report-type') == 'delivery-status', m.get_param('report-type')\n"
	"assert m['Auto-Submitted'] == 'auto-replied'\n"
	"assert m['From'].addresses[0].addr_spec.startswith('MAILER-DAEMON@')\n"
	"assert m['To'].addresses[0].addr_spec == 'alice@example.org', str(m['To'])\n"
	"assert m['Date'].datetime is not None\n"
	"parts = list(m.iter_parts())\n"
	"assert len(parts) == 3, len(parts)\n"
	"assert parts[0].get_content_type() == 'text/plain'\n"
	"assert 'mail system' in parts[0].get_content()\n"
	"assert parts[1].get_content_type() == t2, parts[1].get_content_type()\n"
	"if t2 == 'message/delivery-status':\n"
	"    blocks = parts[1].get_payload()\n"
	"    assert len(blocks) == 1 + int(n), len(blocks)\n"
	"    assert blocks[0]['Reporting-MTA'] == 'dns; mx.example.net', blocks[0]['Reporting-MTA']\n"
	"    assert blocks[0]['Arrival-Date'] is not None\n"
	"    actions = action.split(',')\n"
	"    for i, b in enumerate(blocks[1:]):\n"
	"        assert b['Final-Recipient'].startswith('rfc822;'), b['Final-Recipient']\n"
	"        want = actions[min(i, len(actions) - 1)]\n"
	"        assert b['Action'] == want, b['Action']\n"
	"        ok = '2' if want in ('delivered', 'relayed', 'expanded') else '45'\n"
	"        assert b['Status'][0] in ok, b['Status']\n"
	"    assert blocks[1]['Remote-MTA'] == 'dns; mx.remote.test'\n"
	"    assert blocks[1]['Original-Recipient'] == 'rfc822;Bob+orig@remote.test'\n"
	"assert parts[2].get_content_type() == t3, parts[2].get_content_type()\n"
	"if t3 == 'message/rfc822':\n"
	"    inner = parts[2].get_payload()[0]\n"
	"    assert inner['Subject'] == 'hello', inner['Subject']\n"
	"    assert 'THE LAST BODY LINE' in inner.get_content()\n"
	"for part in m.walk():\n"
	"    assert not part.defects, (part.get_content_type(), part.defects)\n";

static int run_python(const struct buf *b, const char *t2, const char *t3, const char *action)
{
	char path[128], script[128], cmd[512];
	int fd;

	if (access(PYTHON, X_OK) != 0) {
		fprintf(stderr, "  %s missing: independent check skipped\n", PYTHON);
		return 0;
	}
	snprintf(path, sizeof path, "%s/dsn.eml", tmpdir);
	snprintf(script, sizeof script, "%s/check.py", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, b->data, b->len) != (ssize_t)b->len)
		abort();
	close(fd);
	fd = open(script, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, python_check, sizeof python_check - 1) !=
			      (ssize_t)(sizeof python_check - 1))
		abort();
	close(fd);
	/* Every argument is ours and free of shell metacharacters. */
	snprintf(cmd, sizeof cmd, PYTHON " %s %s %s %s 2 %s", script, path, t2, t3, action);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* --- bounce_build ------------------------------------------------------------- */

TEST(structure_and_fields)
{
	struct dsn d;
	char boundary[128];

	build(&d, 0, false, 1 << 20, "550 5.1.1 <bob@remote.test>: no such user", BOUNCE_FAILED);
	const struct buf *b = &d.out;
	dump(b);
	CHECK(all_lines_crlf(b));
	static const char from[] = "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n";
	CHECK(strncmp(b->data, from, sizeof from - 1) == 0);
	CHECK(has_line(b, "To: <alice@example.org>"));
	CHECK(has_line(b, "Subject: Undelivered Mail Returned to Sender"));
	CHECK(has_line(b, "Date: Mon, 23 Nov 2026 02:13:20 +0000"));
	CHECK(has_line(b, "Message-ID: <" BOUNCE_ID ".1795400000@mx.example.net>"));
	CHECK(has_line(b, "Auto-Submitted: auto-replied"));
	CHECK(has_line(b, "MIME-Version: 1.0"));
	CHECK(contains(b, "\r\nContent-Type: multipart/report; report-type=delivery-status;"));

	/* The body holds the first candidate boundary, but only the header section is
	 * returned here, so the first candidate stands. */
	get_boundary(b, boundary, sizeof boundary);
	CHECK_STR(boundary, "=_carteiro_" BOUNCE_ID "_1795400000_0000");
	char delim[160];
	snprintf(delim, sizeof delim, "\r\n--%s\r\n", boundary);
	CHECK_INT(count(b, delim), 3);
	snprintf(delim, sizeof delim, "\r\n--%s--\r\n", boundary);
	CHECK_INT(count(b, delim), 1);
	CHECK(b->len >= strlen(delim) && strcmp(b->data + b->len - strlen(delim), delim) == 0);
	check_part_type(b, 1, "text/plain; charset=us-ascii");
	check_part_type(b, 2, "message/delivery-status");
	check_part_type(b, 3, "text/rfc822-headers");

	/* The human part names both recipients and why. */
	CHECK(contains(b, "This is the mail system at host mx.example.net."));
	CHECK(contains(b, "\r\n<bob@remote.test>: host mx.remote.test said: 550 5.1.1 "
			  "<bob@remote.test>: no\r\n    such user\r\n"));
	CHECK(contains(b, "<demo@example.test> (expanded from <Demo+x@example.test>): mailbox full"));

	/* Per message. */
	CHECK(has_line(b, "Reporting-MTA: dns; mx.example.net"));
	CHECK(has_line(b, "Original-Envelope-Id: QQ+2B314+3D159+20x"));
	CHECK(has_line(b, "Arrival-Date: Sat, 21 Nov 2026 23:57:23 +0000"));
	/* Per recipient, in blocks after blank lines. */
	CHECK(contains(b, "\r\n\r\nOriginal-Recipient: rfc822;Bob+orig@remote.test\r\n"
			  "Final-Recipient: rfc822; bob@remote.test\r\n"
			  "Action: failed\r\n"
			  "Status: 5.1.1\r\n"
			  "Remote-MTA: dns; mx.remote.test\r\n"
			  "Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.test>: no such user\r\n"
			  "Last-Attempt-Date: Mon, 23 Nov 2026 02:12:20 +0000\r\n"));
	CHECK(contains(b, "\r\n\r\nFinal-Recipient: rfc822; demo@example.test\r\n"
			  "Action: failed\r\n"
			  "Status: 5.2.2\r\n"
			  "Diagnostic-Code: X-Carteiro; mailbox full\r\n"));
	CHECK_INT(count(b, "Original-Recipient:"), 1);
	CHECK_INT(count(b, "Will-Retry-Until:"), 0);

	/* Headers only: up to the empty line, not the body. */
	CHECK(contains(b, "Message-ID: <m1@example.org>\r\n\r\n--=_carteiro_"));
	CHECK(!contains(b, "First body line"));
	CHECK_INT(run_python(b, "message/delivery-status", "text/rfc822-headers", "failed"), 0);
	done(&d);
}

TEST(ret_full_returns_whole_message_and_changes_a_clashing_boundary)
{
	struct dsn d;
	char boundary[128];

	build(&d, 'F', false, 1 << 20, "550 5.1.1 no such user", BOUNCE_FAILED);
	const struct buf *b = &d.out;
	check_part_type(b, 3, "message/rfc822");
	CHECK(contains(b, message));
	CHECK(contains(b, "It's attached below."));
	/* The body held the first candidate: the notification uses another one. */
	get_boundary(b, boundary, sizeof boundary);
	CHECK_STR(boundary, "=_carteiro_" BOUNCE_ID "_1795400000_0001");
	char delim[160];
	snprintf(delim, sizeof delim, "--%s", boundary);
	CHECK_INT(count(b, delim), 4);
	CHECK(all_lines_crlf(b));
	CHECK_INT(run_python(b, "message/delivery-status", "message/rfc822", "failed"), 0);
	done(&d);
}

TEST(ret_full_over_max_returned_gives_headers)
{
	struct dsn d;
	build(&d, 'F', false, 100, "550 5.1.1 no such user", BOUNCE_FAILED);
	check_part_type(&d.out, 3, "text/rfc822-headers");
	CHECK(contains(&d.out, "Subject: hello\r\n"));
	CHECK(!contains(&d.out, "THE LAST BODY LINE"));
	CHECK(contains(&d.out, "Its header section is\r\nattached below."));
	done(&d);
}

TEST(ret_hdrs_gives_headers)
{
	struct dsn d;
	build(&d, 'H', false, 1 << 20, NULL, BOUNCE_FAILED);
	check_part_type(&d.out, 3, "text/rfc822-headers");
	CHECK(!contains(&d.out, "THE LAST BODY LINE"));
	CHECK(!contains(&d.out, "Diagnostic-Code: smtp;"));
	done(&d);
}

TEST(smtputf8_uses_global_types)
{
	struct dsn d;
	build(&d, 0, true, 1 << 20, "550 5.1.1 no such user", BOUNCE_FAILED);
	check_part_type(&d.out, 1, "text/plain; charset=utf-8");
	check_part_type(&d.out, 2, "message/global-delivery-status");
	check_part_type(&d.out, 3, "message/global-headers");
	CHECK_INT(run_python(&d.out, "message/global-delivery-status", "message/global-headers",
			     "failed"),
		  0);
	done(&d);

	build(&d, 'F', true, 1 << 20, "550 5.1.1 no such user", BOUNCE_FAILED);
	check_part_type(&d.out, 3, "message/global");
	CHECK(contains(&d.out, "THE LAST BODY LINE"));
	done(&d);
}

TEST(hostile_remote_reply_is_sanitized_and_folded)
{
	struct dsn d;
	char reply[2100];
	size_t n = 0;

	n += (size_t)snprintf(reply, sizeof reply, "550 5.7.1 bad\r\nContent-Type: text/html\r\n\r\n"
						   "--x\x01\x1b[31m\ttab \x7f\xc3\xa9\xff ");
	for (; n < 1000; n++)
		reply[n] = (char)('a' + n % 26); /* one long word */
	while (n < 2000) {
		memcpy(reply + n, "word ", 5);
		n += 5;
	}
	reply[n] = '\0';
	build(&d, 0, false, 1 << 20, reply, BOUNCE_FAILED);
	const struct buf *b = &d.out;
	dump(b);
	CHECK(all_lines_crlf(b));
	CHECK(longest_line(b->data, b->len) <= 998);

	/* Parts 1 and 2: printable ASCII only, lines within 78. */
	for (int i = 1; i <= 2; i++) {
		struct buf h, body;
		CHECK(get_part(b, i, &h, &body));
		for (size_t k = 0; k < body.len; k++) {
			unsigned char c = (unsigned char)body.data[k];
			CHECK_MSG((c >= 32 && c < 127) || c == '\r' || c == '\n', "byte 0x%02x", c);
		}
		CHECK_MSG(longest_line(body.data, body.len) <= 78, "part %d: %zu", i,
			  longest_line(body.data, body.len));
		buf_free(&h);
		buf_free(&body);
	}
	/* Nothing of the reply started a header field or a line. */
	CHECK(!contains(b, "\r\nContent-Type: text/html"));
	CHECK(!contains(b, "\r\n--x"));
	CHECK(contains(b, "Diagnostic-Code: smtp; 550 5.7.1 bad Content-Type: text/html --x"));
	CHECK_INT(run_python(b, "message/delivery-status", "text/rfc822-headers", "failed"), 0);
	done(&d);
}

TEST(delayed)
{
	struct dsn d;
	build(&d, 0, false, 1 << 20, "451 4.4.1 try later", BOUNCE_DELAYED);
	const struct buf *b = &d.out;
	CHECK(has_line(b, "Subject: Delayed Mail (still being retried)"));
	CHECK_INT(count(b, "\r\nAction: delayed\r\n"), 2);
	CHECK_INT(count(b, "\r\nAction: failed\r\n"), 0);
	CHECK_INT(count(b, "\r\nWill-Retry-Until: Sat, 28 Nov 2026 02:13:20 +0000\r\n"), 2);
	CHECK(contains(b, "YOU DO NOT NEED TO RESEND YOUR MESSAGE"));
	CHECK(contains(b, "until Sat, 28 Nov 2026 02:13:20 +0000"));
	CHECK(has_line(b, "Status: 4.4.1"));
	CHECK_INT(run_python(b, "message/delivery-status", "text/rfc822-headers", "delayed"), 0);
	done(&d);
}

/* NOTIFY=SUCCESS (RFC 3461): relayed to a server without DSN, delivered, expanded. */
TEST(success_report)
{
	struct dsn d;
	build(&d, 'F', false, 1 << 20, NULL, BOUNCE_FAILED);
	d.rcpts[0] = (struct bounce_rcpt){ .rcpt = &d.env.rcpts[0],
					   .action = BOUNCE_RELAYED,
					   .status = "2.0.0",
					   .remote_mta = "mx.remote.test",
					   .diagnostic = "250 2.0.0 Ok: queued as 4Xq",
					   .last_attempt = NOW - 5 };
	d.rcpts[1] = (struct bounce_rcpt){ .rcpt = &d.env.rcpts[1],
					   .action = BOUNCE_DELIVERED,
					   .status = "2.0.0",
					   .last_attempt = NOW - 5 };
	buf_free(&d.out);
	buf_init(&d.out, 1 << 20);
	CHECK_INT(bounce_build(&d.p, &d.env, d.rcpts, 2, d.fd, &d.out), 0);
	const struct buf *b = &d.out;
	CHECK(has_line(b, "Subject: Successful Mail Delivery Report"));
	CHECK(has_line(b, "Action: relayed"));
	CHECK(has_line(b, "Action: delivered"));
	CHECK_INT(count(b, "\r\nStatus: 2.0.0\r\n"), 2);
	CHECK(has_line(b, "Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 4Xq"));
	CHECK(has_line(b, "Final-Recipient: rfc822; demo@example.test"));
	CHECK(contains(b, "<demo@example.test> (expanded from <Demo+x@example.test>): delivered"));
	CHECK(!contains(b, "Will-Retry-Until"));
	CHECK(!contains(b, "could not"));
	/* RET=FULL asked, yet only the header section comes back. */
	CHECK(contains(b, "Subject: hello"));
	CHECK(!contains(b, "THE LAST BODY LINE"));
	CHECK_INT(run_python(b, "message/delivery-status", "text/rfc822-headers",
			     "relayed,delivered"),
		  0);
	CHECK(all_lines_crlf(b));

	/* An alias: reported as itself, expanded. */
	d.rcpts[1].action = BOUNCE_EXPANDED;
	buf_free(&d.out);
	buf_init(&d.out, 1 << 20);
	CHECK_INT(bounce_build(&d.p, &d.env, &d.rcpts[1], 1, d.fd, &d.out), 0);
	CHECK(has_line(b, "Action: expanded"));
	CHECK(has_line(b, "Final-Recipient: rfc822; Demo+x@example.test"));
	CHECK(contains(b, "<Demo+x@example.test>: alias expanded"));
	CHECK(!contains(b, "demo@example.test"));
	done(&d);
}

TEST(refusals)
{
	struct dsn d;
	build(&d, 'F', false, 1 << 20, NULL, BOUNCE_FAILED);

	/* Too small a buffer: -ENOSPC, nothing appended. */
	struct buf small;
	buf_init(&small, 1000);
	buf_append_str(&small, "keep");
	CHECK_INT(bounce_build(&d.p, &d.env, d.rcpts, 2, d.fd, &small), -ENOSPC);
	CHECK_INT(small.len, 4);
	CHECK_STR(buf_cstr(&small), "keep");
	buf_free(&small);

	/* No bounce to the null reverse-path; no recipients; a bad action. */
	struct buf out;
	buf_init(&out, 1 << 20);
	CHECK_INT(bounce_build(&d.p, &d.env, d.rcpts, 0, d.fd, &out), -EINVAL);
	d.rcpts[1].action = 'q';
	CHECK_INT(bounce_build(&d.p, &d.env, d.rcpts, 2, d.fd, &out), -EINVAL);
	/* A success report is a notification of its own; expanded needs the alias. */
	d.rcpts[1].action = BOUNCE_DELIVERED;
	CHECK_INT(bounce_build(&d.p, &d.env, d.rcpts, 2, d.fd, &out), -EINVAL);
	d.rcpts[0].action = BOUNCE_EXPANDED; /* rcpts[0] has no orig */
	CHECK_INT(bounce_build(&d.p, &d.env, d.rcpts, 2, d.fd, &out), -EINVAL);
	d.rcpts[0].action = BOUNCE_FAILED;
	envelope_set(&d.env.sender, "");
	CHECK_INT(bounce_build(&d.p, &d.env, d.rcpts, 1, d.fd, &out), -EINVAL);
	CHECK_INT(out.len, 0);
	/* A file shorter than its envelope says: an I/O error, not a short report. */
	d.env.msg_size += 10;
	envelope_set(&d.env.sender, "alice@example.org");
	CHECK_INT(bounce_build(&d.p, &d.env, d.rcpts, 1, d.fd, &out), -EIO);
	buf_free(&out);
	done(&d);
}

/* --- queue_inject ------------------------------------------------------------- */

static int count_files(const char *sub)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", tmpdir, sub);
	DIR *dir = opendir(path);
	int n = 0;
	struct dirent *de;
	while (dir && (de = readdir(dir)))
		if (de->d_name[0] != '.')
			n++;
	if (dir)
		closedir(dir);
	return n;
}

static int open_spool(void)
{
	CHECK_INT(queue_spool_prepare(tmpdir, -1, -1), 0);
	return open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

TEST(inject_round_trip)
{
	struct envelope env, back;
	char path[160], msg[sizeof message];

	make_tmpdir();
	int spool = open_spool();
	sample_envelope(&env);
	env.ret = 'F';
	env.smtputf8 = true;
	env.body_8bit = true;
	CHECK_INT(queue_inject(spool, &env, message, sizeof message - 1), 0);
	CHECK_INT(count_files("incoming"), 0);
	CHECK_INT(count_files("queue"), 1);

	snprintf(path, sizeof path, "%s/queue/%s", tmpdir, env.id);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && (st.st_mode & 0777) == 0600);
	envelope_init(&back);
	CHECK_INT(queue_file_read_envelope(fd, &back), 0);
	CHECK_STR(back.id, env.id);
	CHECK_INT(back.arrival_sec, env.arrival_sec);
	CHECK_INT(back.arrival_usec, env.arrival_usec);
	CHECK_STR(back.sender, "alice@example.org");
	CHECK_STR(back.envid, env.envid);
	CHECK_INT(back.ret, 'F');
	CHECK(back.smtputf8 && back.body_8bit);
	CHECK_INT(back.nrcpts, 2);
	for (size_t i = 0; i < 2 && back.nrcpts == 2; i++) {
		CHECK_STR(back.rcpts[i].address, env.rcpts[i].address);
		CHECK_INT(back.rcpts[i].kind, env.rcpts[i].kind);
		CHECK_INT(back.rcpts[i].status, RCPT_PENDING);
	}
	CHECK_STR(back.rcpts[1].orig, "Demo+x@example.test");
	CHECK_STR(back.rcpts[0].orcpt, "rfc822;Bob+orig@remote.test");
	CHECK_INT(back.rcpts[0].notify, SMTP_NOTIFY_FAILURE);
	CHECK_INT(back.msg_size, sizeof message - 1);
	CHECK_INT(pread(fd, msg, sizeof message - 1, back.msg_offset), sizeof message - 1);
	CHECK(memcmp(msg, message, sizeof message - 1) == 0);
	close(fd);
	envelope_free(&back);

	/* The same id again: refused, the first file intact, nothing left behind. */
	CHECK_INT(queue_inject(spool, &env, "x\r\n", 3), -EEXIST);
	CHECK_INT(count_files("incoming"), 0);
	CHECK_INT(count_files("queue"), 1);
	CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size > sizeof message);

	/* Not a queue id: refused before anything is written. */
	memcpy(env.id, "bad/id", 7);
	CHECK_INT(queue_inject(spool, &env, message, sizeof message - 1), -EINVAL);
	CHECK_INT(count_files("queue"), 1);
	close(spool);
	envelope_free(&env);
	remove_tmpdir();
}

TEST(inject_unwritable_spool)
{
	struct envelope env;
	char path[160];

	make_tmpdir();
	int spool = open_spool();
	sample_envelope(&env);
	if (geteuid() != 0) {
		/* incoming/ read-only: the create fails. */
		snprintf(path, sizeof path, "%s/incoming", tmpdir);
		CHECK(chmod(path, 0500) == 0);
		CHECK_INT(queue_inject(spool, &env, message, sizeof message - 1), -EACCES);
		CHECK_INT(count_files("queue"), 0);
		CHECK(chmod(path, 0700) == 0);
		/* queue/ read-only: written and synced in incoming/, the rename fails,
		 * and the file is removed again. */
		snprintf(path, sizeof path, "%s/queue", tmpdir);
		CHECK(chmod(path, 0500) == 0);
		CHECK_INT(queue_inject(spool, &env, message, sizeof message - 1), -EACCES);
		CHECK(chmod(path, 0700) == 0);
		CHECK_INT(count_files("queue"), 0);
		CHECK_INT(count_files("incoming"), 0);
	}
	/* No incoming/ at all (root ignores modes). */
	snprintf(path, sizeof path, "%s/incoming", tmpdir);
	CHECK(rmdir(path) == 0);
	CHECK_INT(queue_inject(spool, &env, message, sizeof message - 1), -ENOENT);
	CHECK_INT(count_files("queue"), 0);
	close(spool);
	envelope_free(&env);
	remove_tmpdir();
}

UNIT_MAIN()
