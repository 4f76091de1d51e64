/*
 * Unit tests for mail/aliases: the logical-line parser (table-driven) and the
 * loader on temporary files (folding, comments, line numbers, duplicates,
 * limits).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/aliases.h"
#include "unit.h"
#include "util/buf.h"

static char *local_domains[] = { "example.test", "other.test" };
static const struct config cfg = {
	.local_domains = local_domains,
	.nlocal_domains = 2,
	.recipient_delimiter = "+",
};

struct reports {
	unsigned n;
	unsigned line[32];
	char msg[32][256];
};

static void collect(void *ctx, const char *file, unsigned line, const char *msg)
{
	struct reports *r = ctx;

	(void)file;
	if (r->n < 32) {
		r->line[r->n] = line;
		snprintf(r->msg[r->n], sizeof r->msg[r->n], "%s", msg);
	}
	r->n++;
}

static int load_text(const char *text, size_t len, struct reports *rep, struct aliasdb **db)
{
	char path[] = "/tmp/carteiro-test-aliases-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
		perror("temp file");
		exit(2);
	}
	close(fd);
	int r = aliasdb_load(path, &cfg, collect, rep, db);
	unlink(path);
	return r;
}

/* The targets of a, joined with "|". */
static const char *targets_of(const struct alias *a)
{
	static char out[4096];
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < a->ntargets && n < sizeof out; i++)
		n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", i ? "|" : "",
				      a->targets[i]);
	return out;
}

TEST(parse_line_accepts)
{
	static const struct {
		const char *line;
		const char *address;
		const char *targets;
	} rows[] = {
		{ "a@example.test: b@example.test", "a@example.test", "b@example.test" },
		{ "A@Example.Test:B@EXAMPLE.test , Remote.User@Remote.TEST,c@other.test",
		  "a@example.test", "b@example.test|Remote.User@remote.test|c@other.test" },
		{ "  team@example.test\t:\ta@example.test,\tb@example.test  ", "team@example.test",
		  "a@example.test|b@example.test" },
		{ "@example.test: catch@example.test", "@example.test", "catch@example.test" },
		{ "@Other.TEST: x@remote.test", "@other.test", "x@remote.test" },
		{ "user+tag@example.test: user@example.test", "user+tag@example.test",
		  "user@example.test" },
		/* A comma inside a quoted local part does not split. */
		{ "a@example.test: \"Doe, John\"@remote.test, c@example.test", "a@example.test",
		  "\"Doe, John\"@remote.test|c@example.test" },
		{ "a@example.test: \"a\\\"b,c\"@remote.test", "a@example.test",
		  "\"a\\\"b,c\"@remote.test" },
		{ "a@example.test: u@[192.0.2.1]", "a@example.test", "u@[192.0.2.1]" },
		{ "a@example.test: \"dot.string\"@Example.Test", "a@example.test",
		  "dot.string@example.test" },
		{ "a@example.test: a@example.test, a@example.test", "a@example.test",
		  "a@example.test|a@example.test" },
		{ "\xc3\x9cNI@example.test: \xc3\x9cNI@remote.test", "\xc3\x9cni@example.test",
		  "\xc3\x9cNI@remote.test" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct alias a;
		err[0] = '\0';
		int r = aliasdb_parse_line(rows[i].line, strlen(rows[i].line), &cfg, &a, err,
					   sizeof err);
		CHECK_MSG(r == 1, "row %zu \"%s\": got %d (%s)", i, rows[i].line, r, err);
		if (r != 1)
			continue;
		CHECK_STR(a.address, rows[i].address);
		CHECK_STR(targets_of(&a), rows[i].targets);
		alias_free_fields(&a);
		CHECK(a.address == NULL && a.ntargets == 0);
	}
}

TEST(parse_line_skips)
{
	static const char *const rows[] = { "", "  \t", "# a@example.test: b@example.test",
					    "\t# indented comment" };
	char err[256];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct alias a;
		CHECK_INT(aliasdb_parse_line(rows[i], strlen(rows[i]), &cfg, &a, err, sizeof err),
			  0);
	}
}

TEST(parse_line_rejects)
{
	static const struct {
		const char *line;
		const char *msg;
	} rows[] = {
		{ "a@remote.test: b@example.test",
		  "domain of 'a@remote.test' is not a local-domain" },
		{ "@remote.test: b@example.test",
		  "domain of '@remote.test' is not a local-domain" },
		{ "@: b@example.test", "bad catch-all domain '@'" },
		{ "@bad..domain: b@example.test", "bad catch-all domain" },
		{ "@example.test.: b@example.test", "bad catch-all domain" },
		{ "@@example.test: b@example.test", "bad catch-all domain" },
		{ "a@example.test:", "no targets" },
		{ "a@example.test:  \t ", "no targets" },
		{ "a@example.test: b@example.test,,c@example.test", "empty target" },
		{ "a@example.test: b@example.test,", "empty target" },
		{ "a@example.test: , b@example.test", "empty target" },
		{ "a@example.test: b@example.test, \t", "empty target" },
		{ "a@example.test b@example.test", "no ':' found" },
		{ ": b@example.test", "missing alias" },
		{ "a@example.test: not-an-address", "bad target 'not-an-address'" },
		{ "a@example.test: b@example.test # a comment", "bad target" },
		{ "a@example.test: <b@example.test>", "bad target" },
		{ "a@example.test: @example.test", "bad target" },
		{ "a@example.test: b@example.test c@example.test", "bad target" },
		{ "a@example.test: \"x y\"@example.test", "quoted local part cannot be a local" },
		{ "\"q r\"@example.test: b@example.test",
		  "quoted local part or an address literal" },
		{ "a@[192.0.2.1]: b@example.test", "quoted local part or an address literal" },
		{ "postmaster: b@example.test", "bad alias 'postmaster'" },
		{ "../a@example.test: b@example.test", "bad alias" },
		{ "a@example.test: b@example\x01.test", "control character 0x01" },
		{ "a@example.test: \"unterminated@remote.test", "bad target" },
		{ "a@example.test: b@\xc3(.test", "bad target" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct alias a;
		err[0] = '\0';
		int r = aliasdb_parse_line(rows[i].line, strlen(rows[i].line), &cfg, &a, err,
					   sizeof err);
		CHECK_MSG(r == -EINVAL, "row %zu \"%s\": got %d", i, rows[i].line, r);
		if (r == 1)
			alias_free_fields(&a);
		else
			CHECK_MSG(strstr(err, rows[i].msg) != NULL,
				  "row %zu: \"%s\" lacks \"%s\"", i, err, rows[i].msg);
	}
}

TEST(parse_line_limits)
{
	struct buf b;
	struct alias a;
	char err[256];

	/* ALIAS_TARGETS_MAX targets pass, one more fails. */
	buf_init(&b, 1 << 20);
	buf_append_str(&b, "big@example.test: ");
	for (int i = 0; i < ALIAS_TARGETS_MAX; i++)
		buf_appendf(&b, "%su%d@example.test", i ? "," : "", i);
	CHECK_INT(aliasdb_parse_line(b.data, b.len, &cfg, &a, err, sizeof err), 1);
	CHECK_INT(a.ntargets, ALIAS_TARGETS_MAX);
	alias_free_fields(&a);
	buf_append_str(&b, ",one@more.test");
	CHECK_INT(aliasdb_parse_line(b.data, b.len, &cfg, &a, err, sizeof err), -EINVAL);
	CHECK(strstr(err, "more than 1000 targets") != NULL);

	/* The logical line limit. */
	buf_reset(&b);
	buf_append_str(&b, "long@example.test: x@example.test");
	while (b.len <= ALIAS_LINE_MAX)
		buf_putc(&b, ' ');
	CHECK_INT(aliasdb_parse_line(b.data, ALIAS_LINE_MAX, &cfg, &a, err, sizeof err), 1);
	alias_free_fields(&a);
	CHECK_INT(aliasdb_parse_line(b.data, b.len, &cfg, &a, err, sizeof err), -EINVAL);
	CHECK(strstr(err, "longer than 65536") != NULL);
	buf_free(&b);
}

TEST(load_folds_continuation_lines)
{
	static const char text[] = "# lists\n"
				   "team@example.test: a@example.test,\n"
				   "  b@example.test,\n"
				   "\tc@remote.test\r\n"
				   "next@example.test: d@example.test\n"
				   "split@example.test: e@example.test\n"
				   "  , f@example.test\n"
				   "@other.test:\n"
				   " all@other.test";
	struct reports rep = { 0 };
	struct aliasdb *db = NULL;

	CHECK_INT(load_text(text, sizeof text - 1, &rep, &db), 0);
	CHECK_INT(rep.n, 0);
	if (!db)
		return;
	CHECK_INT(aliasdb_count(db), 4);
	const struct alias *a = aliasdb_find(db, "Team@Example.TEST");
	CHECK(a != NULL);
	if (a)
		CHECK_STR(targets_of(a), "a@example.test|b@example.test|c@remote.test");
	a = aliasdb_find(db, "split@example.test");
	CHECK(a != NULL);
	if (a)
		CHECK_STR(targets_of(a), "e@example.test|f@example.test");
	a = aliasdb_find(db, "@OTHER.test");
	CHECK(a != NULL);
	if (a)
		CHECK_STR(targets_of(a), "all@other.test");
	CHECK(aliasdb_find(db, "next@example.test") != NULL);
	CHECK(aliasdb_find(db, "a@example.test") == NULL);
	CHECK(aliasdb_find(db, "@example.test") == NULL);
	aliasdb_free(db);
}

TEST(load_reports_errors_at_logical_line_start)
{
	static const char text[] = "  orphan@example.test\n"                   /* 1 */
				   "\t  more orphan\n"                         /* 2 */
				   "ok@example.test: a@example.test\n"         /* 3 */
				   "bad@example.test: a@example.test,\n"       /* 4 */
				   "  not an address\n"                        /* 5 */
				   "# a comment\n"                             /* 6 */
				   "  after@comment.test\n"                    /* 7 */
				   "ok2@example.test: a@example.test\n"        /* 8 */
				   "\n"                                        /* 9 */
				   "  after@blank.test\n"                      /* 10 */
				   "OK@EXAMPLE.TEST: b@example.test\n"         /* 11 */
				   "x@remote.test: a@example.test\n"           /* 12 */
				   "@example.test: a@example.test\n"           /* 13 */
				   "@Example.Test: b@example.test\n"           /* 14 */
				   "last@example.test: a@example.test,\n";     /* 15 */
	struct reports rep = { 0 };
	struct aliasdb *db = (struct aliasdb *)&rep;
	static const struct {
		unsigned line;
		const char *part;
	} want[] = {
		{ 1, "continuation line without a line to continue" },
		{ 4, "bad target 'not an address'" },
		{ 7, "continuation line without a line to continue" },
		{ 10, "continuation line without a line to continue" },
		{ 11, "duplicate alias 'ok@example.test' (first on line 3)" },
		{ 12, "domain of 'x@remote.test' is not a local-domain" },
		{ 14, "duplicate alias '@example.test' (first on line 13)" },
		{ 15, "empty target" },
	};

	CHECK_INT(load_text(text, sizeof text - 1, &rep, &db), -EINVAL);
	CHECK(db == (struct aliasdb *)&rep);
	CHECK_INT(rep.n, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < sizeof want / sizeof want[0] && i < rep.n; i++) {
		CHECK_INT(rep.line[i], want[i].line);
		CHECK_MSG(strstr(rep.msg[i], want[i].part) != NULL, "\"%s\" lacks \"%s\"",
			  rep.msg[i], want[i].part);
	}
}

TEST(load_overlong_logical_line)
{
	struct buf b;
	struct reports rep = { 0 };
	struct aliasdb *db = NULL;

	/* 2000 continuation lines of 43 bytes: past 65536, reported once, at line 2. */
	buf_init(&b, 1 << 22);
	buf_append_str(&b, "ok@example.test: a@example.test\n");
	buf_append_str(&b, "big@example.test: a@example.test");
	for (int i = 0; i < 2000; i++)
		buf_appendf(&b, ",\n  member%04d-with-a-long-name@example.test", i);
	buf_append_str(&b, "\nbad@remote.test: a@example.test\n");
	CHECK_INT(load_text(b.data, b.len, &rep, &db), -EINVAL);
	CHECK_INT(rep.n, 2);
	CHECK_INT(rep.line[0], 2);
	CHECK(strstr(rep.msg[0], "longer than 65536") != NULL);
	CHECK_INT(rep.line[1], 2003);
	buf_free(&b);
}

TEST(load_unreadable_and_empty)
{
	struct reports rep = { 0 };
	struct aliasdb *db = NULL;

	CHECK_INT(aliasdb_load("/nonexistent/carteiro/aliases", &cfg, collect, &rep, &db),
		  -ENOENT);
	CHECK(db == NULL);
	CHECK_INT(rep.n, 1);
	CHECK_INT(rep.line[0], 0);
	CHECK(strncmp(rep.msg[0], "cannot read: ", 13) == 0);

	rep.n = 0;
	CHECK_INT(load_text("", 0, &rep, &db), 0);
	CHECK_INT(aliasdb_count(db), 0);
	aliasdb_free(db);

	db = aliasdb_empty();
	CHECK(db != NULL);
	CHECK_INT(aliasdb_count(db), 0);
	CHECK(aliasdb_find(db, "@example.test") == NULL);
	aliasdb_free(db);
	aliasdb_free(NULL);
}

TEST(load_nul_byte_is_an_error)
{
	static const char text[] = "a@example.test: b@example.test\0x\nc@example.test: d@x.test\n";
	struct reports rep = { 0 };
	struct aliasdb *db = NULL;

	CHECK_INT(load_text(text, sizeof text - 1, &rep, &db), -EINVAL);
	CHECK_INT(rep.n, 1);
	CHECK_INT(rep.line[0], 1);
	CHECK(strstr(rep.msg[0], "control character 0x00") != NULL);
}

UNIT_MAIN()
