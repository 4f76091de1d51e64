/*
 * Unit tests for mail/resolve: one users file and one alias file, written to
 * temporary files and loaded with the real loaders, then a table of
 * recipients with the expected status and results (in order).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/resolve.h"
#include "unit.h"
#include "util/buf.h"

static char *local_domains[] = { "example.test", "other.test", "third.test" };
static struct config cfg = {
	.local_domains = local_domains,
	.nlocal_domains = 3,
	.recipient_delimiter = "+",
};

static const char users_text[] = "alice@example.test:x\n"
				 "bob@example.test:x\n"
				 "carol@example.test:x\n"
				 "user@example.test:x\n"
				 "user+special@example.test:x\n"
				 "ma@example.test:x\n"
				 "j\xc3\xb6rg@example.test:x\n"
				 "dave@other.test:x\n";

static const char aliases_text[] =
	"postmaster@example.test: alice@example.test\n"
	"info@example.test: bob@example.test, Remote.Person@Remote.test\n"
	"team@example.test: alice@example.test, bob@example.test,\n"
	"  info@example.test, BOB@example.test\n"
	"carol@example.test: carol@example.test, bob@example.test\n"
	"self@example.test: self@example.test\n"
	"loopa@example.test: loopb@example.test\n"
	"loopb@example.test: loopa@example.test\n"
	"ma@example.test: mb@example.test\n"
	"mb@example.test: ma@example.test\n"
	"chain1@example.test: chain2@example.test\n"
	"chain2@example.test: chain3@example.test\n"
	"chain3@example.test: alice+fromchain@example.test\n"
	"broken@example.test: ghost@example.test, bob@example.test\n"
	"allghost@example.test: ghost@example.test\n"
	"@other.test: dave@other.test\n"
	"@third.test: nobody@third.test\n"
	"plus+x@example.test: bob@example.test\n"
	"list@example.test: alice@example.test, list+copy@example.test\n"
	"remote-only@example.test: x@remote.test\n"
	"mixed@example.test: loopa@example.test, carol@example.test\n";

static struct userdb *users;
static struct aliasdb *aliases;

static void report_stderr(void *ctx, const char *file, unsigned line, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "%s:%u: %s\n", file, line, msg);
}

static void free_tables(void)
{
	userdb_free(users);
	aliasdb_free(aliases);
}

static char *write_temp(const char *text, size_t len)
{
	char path[] = "/tmp/carteiro-test-resolve-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
		perror("temp file");
		exit(2);
	}
	close(fd);
	return strdup(path);
}

/*
 * The fixed tables, plus generated ones: deep0 -> deep1 -> ... -> deep20 ->
 * alice (21 nested aliases), and fan0..fan2 that each name the next 50 times.
 */
static void load_tables(void)
{
	struct buf b;
	char *path;

	if (users)
		return;
	path = write_temp(users_text, sizeof users_text - 1);
	if (userdb_load(path, &cfg, report_stderr, NULL, &users) < 0)
		exit(2);
	unlink(path);
	free(path);

	buf_init(&b, 1 << 20);
	buf_append_str(&b, aliases_text);
	for (int i = 0; i < RESOLVE_DEPTH_MAX; i++)
		buf_appendf(&b, "deep%d@example.test: deep%d@example.test\n", i, i + 1);
	buf_appendf(&b, "deep%d@example.test: alice@example.test\n", RESOLVE_DEPTH_MAX);
	for (int i = 0; i < 3; i++) {
		buf_appendf(&b, "fan%d@example.test: ", i);
		for (int j = 0; j < 50; j++) {
			if (i < 2)
				buf_appendf(&b, "%sfan%d@example.test", j ? "," : "", i + 1);
			else
				buf_appendf(&b, "%salice@example.test", j ? "," : "");
		}
		buf_putc(&b, '\n');
	}
	path = write_temp(b.data, b.len);
	if (aliasdb_load(path, &cfg, report_stderr, NULL, &aliases) < 0)
		exit(2);
	unlink(path);
	free(path);
	buf_free(&b);
	atexit(free_tables);
}

/* Resolve rcpt (written as in RCPT TO, without the brackets); results as "L:a R:b". */
static int run(const struct config *c, const char *rcpt, size_t max, char *got, size_t gotlen)
{
	struct resolved out[8];
	char path[512];
	struct addr a;
	size_t consumed, n = 99, len = 0;

	load_tables();
	struct resolve_ctx rc = { c, users, aliases };
	snprintf(path, sizeof path, "<%s>", rcpt);
	if (addr_parse_path(slice_from_cstr(path), ADDR_UTF8 | ADDR_ALLOW_POSTMASTER, &a,
			    &consumed) < 0) {
		snprintf(got, gotlen, "(unparsable)");
		return 1;
	}
	if (max > sizeof out / sizeof out[0])
		max = sizeof out / sizeof out[0];
	int r = resolve_recipient(&rc, &a, out, max, &n);
	got[0] = '\0';
	if (r != RESOLVE_OK && n != 0)
		snprintf(got, gotlen, "(n=%zu on error)", n);
	for (size_t i = 0; r == RESOLVE_OK && i < n && len < gotlen; i++)
		len += (size_t)snprintf(got + len, gotlen - len, "%s%c:%s", i ? " " : "",
					out[i].kind == RESOLVE_LOCAL ? 'L' : 'R', out[i].address);
	return r;
}

struct row {
	const char *rcpt;
	size_t max;
	int status;
	const char *results;
};

static void run_rows(const struct config *c, const struct row *rows, size_t nrows)
{
	char got[2048];

	for (size_t i = 0; i < nrows; i++) {
		int r = run(c, rows[i].rcpt, rows[i].max, got, sizeof got);
		CHECK_MSG(r == rows[i].status && strcmp(got, rows[i].results) == 0,
			  "%s: got %d \"%s\", expected %d \"%s\"", rows[i].rcpt, r, got,
			  rows[i].status, rows[i].results);
	}
}

#define ROWS(c, rows) run_rows((c), (rows), sizeof(rows) / sizeof((rows)[0]))

TEST(users_and_case)
{
	static const struct row rows[] = {
		{ "alice@example.test", 8, RESOLVE_OK, "L:alice@example.test" },
		{ "ALICE@Example.TEST", 8, RESOLVE_OK, "L:alice@example.test" },
		{ "\"alice\"@example.test", 8, RESOLVE_OK, "L:alice@example.test" },
		{ "dave@other.test", 8, RESOLVE_OK, "L:dave@other.test" },
		{ "J\xc3\xb6RG@example.test", 8, RESOLVE_OK, "L:j\xc3\xb6rg@example.test" },
		{ "nobody@example.test", 8, RESOLVE_UNKNOWN, "" },
		{ "alice.x@example.test", 8, RESOLVE_UNKNOWN, "" },
		{ "\"x y\"@example.test", 8, RESOLVE_UNKNOWN, "" },
		{ "alice@example.test", 0, RESOLVE_TOO_MANY, "" },
	};
	ROWS(&cfg, rows);
}

TEST(remote_recipients)
{
	static const struct row rows[] = {
		{ "Some.One@Elsewhere.TEST", 8, RESOLVE_OK, "R:Some.One@elsewhere.test" },
		{ "x@[192.0.2.1]", 8, RESOLVE_OK, "R:x@[192.0.2.1]" },
		{ "\"a b\"@elsewhere.test", 8, RESOLVE_OK, "R:\"a b\"@elsewhere.test" },
		{ "alice@example.test.sub", 8, RESOLVE_OK, "R:alice@example.test.sub" },
		{ "x@remote.test", 0, RESOLVE_TOO_MANY, "" },
	};
	ROWS(&cfg, rows);
}

TEST(aliases_and_dedup)
{
	static const struct row rows[] = {
		{ "info@example.test", 8, RESOLVE_OK,
		  "L:bob@example.test R:Remote.Person@remote.test" },
		{ "Info@EXAMPLE.test", 8, RESOLVE_OK,
		  "L:bob@example.test R:Remote.Person@remote.test" },
		/* bob three times (directly, via info, upper-case): once. */
		{ "team@example.test", 8, RESOLVE_OK,
		  "L:alice@example.test L:bob@example.test R:Remote.Person@remote.test" },
		{ "team@example.test", 3, RESOLVE_OK,
		  "L:alice@example.test L:bob@example.test R:Remote.Person@remote.test" },
		{ "team@example.test", 2, RESOLVE_TOO_MANY, "" },
		{ "chain1@example.test", 8, RESOLVE_OK, "L:alice@example.test" },
		{ "remote-only@example.test", 8, RESOLVE_OK, "R:x@remote.test" },
		/* An unknown local target is dropped; nothing left is "unknown". */
		{ "broken@example.test", 8, RESOLVE_OK, "L:bob@example.test" },
		{ "allghost@example.test", 8, RESOLVE_UNKNOWN, "" },
	};
	ROWS(&cfg, rows);
}

TEST(loops)
{
	static const struct row rows[] = {
		/* carol: carol, bob where carol is a user: both mailboxes. */
		{ "carol@example.test", 8, RESOLVE_OK, "L:carol@example.test L:bob@example.test" },
		{ "self@example.test", 8, RESOLVE_LOOP, "" },
		{ "loopa@example.test", 8, RESOLVE_LOOP, "" },
		{ "loopb@example.test", 8, RESOLVE_LOOP, "" },
		/* ma -> mb -> ma: ma is a mailbox; mb -> ma -> mb: mb is not. */
		{ "ma@example.test", 8, RESOLVE_OK, "L:ma@example.test" },
		{ "mb@example.test", 8, RESOLVE_LOOP, "" },
		/* list+copy comes back to list through plus-addressing: no mailbox, dropped. */
		{ "list@example.test", 8, RESOLVE_OK, "L:alice@example.test" },
		/* A loop in one branch does not spoil the others. */
		{ "mixed@example.test", 8, RESOLVE_OK, "L:carol@example.test L:bob@example.test" },
		/* Catch-all whose target falls back into the catch-all. */
		{ "anyone@third.test", 8, RESOLVE_LOOP, "" },
	};
	ROWS(&cfg, rows);
}

TEST(depth_and_work_limits)
{
	static const struct row rows[] = {
		/* deep1..deep20: 20 nested aliases, the limit. */
		{ "deep1@example.test", 8, RESOLVE_OK, "L:alice@example.test" },
		{ "deep0@example.test", 8, RESOLVE_LOOP, "" },
		{ "fan2@example.test", 8, RESOLVE_OK, "L:alice@example.test" },
		/* 1 + 50 + 50 * 50 lookups, de-duplicated into one result. */
		{ "fan1@example.test", 8, RESOLVE_OK, "L:alice@example.test" },
		/* 50 times as many: refused, not walked. */
		{ "fan0@example.test", 8, RESOLVE_TOO_MANY, "" },
	};
	ROWS(&cfg, rows);
}

TEST(plus_addressing)
{
	static const struct row rows[] = {
		{ "user+foo@example.test", 8, RESOLVE_OK, "L:user@example.test" },
		/* The exact address wins over the cut one. */
		{ "user+special@example.test", 8, RESOLVE_OK, "L:user+special@example.test" },
		{ "USER+Special@example.test", 8, RESOLVE_OK, "L:user+special@example.test" },
		{ "user+@example.test", 8, RESOLVE_OK, "L:user@example.test" },
		{ "user+a+b@example.test", 8, RESOLVE_OK, "L:user@example.test" },
		{ "user-foo@example.test", 8, RESOLVE_UNKNOWN, "" },
		/* Nothing before the delimiter: not "@domain". */
		{ "+tag@example.test", 8, RESOLVE_UNKNOWN, "" },
		{ "+tag@other.test", 8, RESOLVE_OK, "L:dave@other.test" },
		/* Alias of the cut address. */
		{ "info+news@example.test", 8, RESOLVE_OK,
		  "L:bob@example.test R:Remote.Person@remote.test" },
		{ "plus+x@example.test", 8, RESOLVE_OK, "L:bob@example.test" },
		{ "plus+y@example.test", 8, RESOLVE_UNKNOWN, "" },
		/* Cut, not found, then the catch-all. */
		{ "ghost+x@other.test", 8, RESOLVE_OK, "L:dave@other.test" },
		/* Not for other domains. */
		{ "user+foo@remote.test", 8, RESOLVE_OK, "R:user+foo@remote.test" },
	};
	ROWS(&cfg, rows);
}

TEST(plus_addressing_delimiter_sets)
{
	struct config c = cfg;
	static const struct row several[] = {
		{ "user-foo@example.test", 8, RESOLVE_OK, "L:user@example.test" },
		{ "user+foo-bar@example.test", 8, RESOLVE_OK, "L:user@example.test" },
		{ "j\xc3\xb6rg+x@example.test", 8, RESOLVE_OK, "L:j\xc3\xb6rg@example.test" },
	};
	static const struct row none[] = {
		{ "user+foo@example.test", 8, RESOLVE_UNKNOWN, "" },
		{ "user+special@example.test", 8, RESOLVE_OK, "L:user+special@example.test" },
	};

	/* A non-ASCII byte in the set is ignored: it would cut a character in two. */
	snprintf(c.recipient_delimiter, sizeof c.recipient_delimiter, "+-\xc3");
	ROWS(&c, several);
	c.recipient_delimiter[0] = '\0';
	ROWS(&c, none);
}

TEST(catch_all)
{
	static const struct row rows[] = {
		{ "random@other.test", 8, RESOLVE_OK, "L:dave@other.test" },
		{ "RANDOM@OTHER.TEST", 8, RESOLVE_OK, "L:dave@other.test" },
		{ "\"x y\"@other.test", 8, RESOLVE_OK, "L:dave@other.test" },
		{ "\"a@b\"@other.test", 8, RESOLVE_OK, "L:dave@other.test" },
	};
	ROWS(&cfg, rows);
}

TEST(postmaster)
{
	static const struct row rows[] = {
		{ "postmaster", 8, RESOLVE_OK, "L:alice@example.test" },
		{ "PostMaster", 8, RESOLVE_OK, "L:alice@example.test" },
		{ "postmaster@example.test", 8, RESOLVE_OK, "L:alice@example.test" },
		{ "postmaster@other.test", 8, RESOLVE_OK, "L:dave@other.test" },
	};
	static const struct row nolocal[] = {
		{ "postmaster", 8, RESOLVE_UNKNOWN, "" },
		{ "alice@example.test", 8, RESOLVE_OK, "R:alice@example.test" },
	};
	struct config c = cfg;

	ROWS(&cfg, rows);
	c.nlocal_domains = 0;
	ROWS(&c, nolocal);
}

TEST(empty_tables)
{
	struct userdb *u = userdb_empty();
	struct aliasdb *a = aliasdb_empty();
	struct resolve_ctx rc = { &cfg, u, a };
	struct resolved out[2];
	struct addr rcpt;
	size_t n = 7;

	CHECK_INT(addr_parse_mailbox(SLICE_LIT("alice@example.test"), 0, &rcpt), 0);
	CHECK_INT(resolve_recipient(&rc, &rcpt, out, 2, &n), RESOLVE_UNKNOWN);
	CHECK_INT(n, 0);
	userdb_free(u);
	aliasdb_free(a);
}

UNIT_MAIN()
