/*
 * Unit tests for mail/users: the line parser (table-driven), and the loader
 * on temporary files (line numbers, duplicates, CRLF, unreadable files).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/users.h"
#include "unit.h"

static char *local_domains[] = { "example.test", "other.test" };
static const struct config cfg = {
	.local_domains = local_domains,
	.nlocal_domains = 2,
	.recipient_delimiter = "+",
};

/* What the loader reported, in order. */
struct reports {
	unsigned n;
	unsigned line[32];
	char msg[32][256];
	char file[256];
};

static void collect(void *ctx, const char *file, unsigned line, const char *msg)
{
	struct reports *r = ctx;

	if (r->n < 32) {
		r->line[r->n] = line;
		snprintf(r->msg[r->n], sizeof r->msg[r->n], "%s", msg);
		snprintf(r->file, sizeof r->file, "%s", file);
	}
	r->n++;
}

/* Write text to a new temporary file; returns its malloc'ed path. */
static char *write_temp(const char *text, size_t len)
{
	char path[] = "/tmp/carteiro-test-users-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0) {
		perror("mkstemp");
		exit(2);
	}
	if (write(fd, text, len) != (ssize_t)len) {
		perror("write");
		exit(2);
	}
	close(fd);
	return strdup(path);
}

static int load_text(const char *text, struct reports *rep, struct userdb **db)
{
	char *path = write_temp(text, strlen(text));
	int r = userdb_load(path, &cfg, collect, rep, db);

	if (rep->n)
		CHECK_STR(rep->file, path);
	unlink(path);
	free(path);
	return r;
}

TEST(parse_line_accepts)
{
	static const struct {
		const char *line;
		const char *address, *local, *domain, *hash;
	} rows[] = {
		{ "alice@example.test:$6$salt$hash", "alice@example.test", "alice", "example.test",
		  "$6$salt$hash" },
		{ "  Alice@Example.TEST\t:$y$j9T$x:1000:1000::/home/alice::", "alice@example.test",
		  "alice", "example.test", "$y$j9T$x" },
		{ "bob@example.test:", "bob@example.test", "bob", "example.test", "" },
		{ "carol@other.test:!locked", "carol@other.test", "carol", "other.test",
		  "!locked" },
		{ "dave@example.test:*", "dave@example.test", "dave", "example.test", "*" },
		{ "user+tag@example.test:h", "user+tag@example.test", "user+tag", "example.test",
		  "h" },
		/* Quotes around a Dot-string are no quotes at all (RFC 5321 4.1.2). */
		{ "\"quoted\"@example.test:h", "quoted@example.test", "quoted", "example.test",
		  "h" },
		/* Only ASCII is lower-cased. */
		{ "\xc3\x9cNI@example.test:h", "\xc3\x9cni@example.test", "\xc3\x9cni",
		  "example.test", "h" },
		{ "o'brien@example.test:h", "o'brien@example.test", "o'brien", "example.test",
		  "h" },
		{ "a.b@example.test:h", "a.b@example.test", "a.b", "example.test", "h" },
		/* The hash is kept as written, trailing blanks included. */
		{ "a@example.test:h \t", "a@example.test", "a", "example.test", "h \t" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct user u;
		err[0] = '\0';
		int r = userdb_parse_line(rows[i].line, strlen(rows[i].line), &cfg, &u, err,
					  sizeof err);
		CHECK_MSG(r == 1, "row %zu \"%s\": got %d (%s)", i, rows[i].line, r, err);
		if (r != 1)
			continue;
		CHECK_STR(u.address, rows[i].address);
		CHECK_STR(u.local, rows[i].local);
		CHECK_STR(u.domain, rows[i].domain);
		CHECK_STR(u.hash, rows[i].hash);
		user_free_fields(&u);
		CHECK(u.address == NULL);
	}
}

TEST(parse_line_skips)
{
	static const char *const rows[] = { "", " \t ", "# alice@example.test:x", "   # indented",
					    "#" };
	char err[256];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct user u;
		int r = userdb_parse_line(rows[i], strlen(rows[i]), &cfg, &u, err, sizeof err);
		CHECK_INT(r, 0);
	}
}

TEST(parse_line_rejects)
{
	static const struct {
		const char *line;
		const char *msg; /* part of the message */
	} rows[] = {
		{ "eve@remote.test:x", "domain of 'eve@remote.test' is not a local-domain" },
		{ "eve@example.test.:x", "bad address 'eve@example.test.'" },
		{ "noat:x", "bad address 'noat'" },
		{ "no colon here", "no ':' found" },
		{ ":hash", "missing address" },
		{ "  \t:hash", "missing address" },
		{ "a @example.test:x", "bad address" },
		{ "<a@example.test>:x", "bad address" },
		{ "\"a b\"@example.test:x", "quoted local part cannot be a mailbox" },
		{ "\".hidden\"@example.test:x", "quoted local part" },
		{ "\"..\"@example.test:x", "quoted local part" },
		{ "a/b@example.test:x", "contains '/'" },
		{ "\"a/b\"@example.test:x", "contains '/'" },
		{ "../x@example.test:x", "bad address '../x@example.test'" },
		{ ".hidden@example.test:x", "bad address" },
		{ "a..b@example.test:x", "bad address" },
		{ "a.@example.test:x", "bad address" },
		{ "x@[192.0.2.1]:h", "address literal cannot be a mailbox" },
		{ "x@../example.test:h", "bad address" },
		{ "a\x01"
		  "b@example.test:x",
		  "control character 0x01" },
		{ "a@example.test:ha\rsh", "control character 0x0d" },
		{ "a@example.test:x\x7f", "control character 0x7f" },
		{ "\xff@example.test:x", "bad address" },
		{ "postmaster:x", "bad address 'postmaster'" },
		/* 65 octets of local part. */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "a@example.test:x",
		  "bad address" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct user u;
		err[0] = '\0';
		int r = userdb_parse_line(rows[i].line, strlen(rows[i].line), &cfg, &u, err,
					  sizeof err);
		CHECK_MSG(r == -EINVAL, "row %zu \"%s\": got %d", i, rows[i].line, r);
		if (r == 1)
			user_free_fields(&u);
		else
			CHECK_MSG(strstr(err, rows[i].msg) != NULL,
				  "row %zu: \"%s\" lacks \"%s\"", i, err, rows[i].msg);
	}
}

TEST(parse_line_length_limit)
{
	static char line[8200];
	char err[256];
	struct user u;

	/* A long list of ignored fields is fine up to 8192 bytes, not beyond. */
	memset(line, 'x', sizeof line);
	memcpy(line, "a@example.test:h:", 17);
	CHECK_INT(userdb_parse_line(line, 8192, &cfg, &u, err, sizeof err), 1);
	user_free_fields(&u);
	CHECK_INT(userdb_parse_line(line, 8193, &cfg, &u, err, sizeof err), -EINVAL);
	CHECK(strstr(err, "longer than 8192") != NULL);
}

TEST(parse_line_nul_byte)
{
	static const char line[] = "a@example.test:h\0idden";
	char err[256];
	struct user u;

	CHECK_INT(userdb_parse_line(line, sizeof line - 1, &cfg, &u, err, sizeof err), -EINVAL);
	CHECK(strstr(err, "control character 0x00") != NULL);
}

TEST(load_and_find)
{
	struct reports rep = { 0 };
	struct userdb *db = NULL;

	CHECK_INT(load_text("# accounts\n"
			    "alice@example.test:$6$a\n"
			    "\n"
			    "Bob@Other.Test:$6$b:1000:1000::/home/bob:/bin/false\r\n"
			    "carol@example.test:!\n"
			    "dave@example.test:$6$d", /* no final newline */
			    &rep, &db),
		  0);
	CHECK_INT(rep.n, 0);
	CHECK(db != NULL);
	if (!db)
		return;
	CHECK_INT(userdb_count(db), 4);
	const struct user *u = userdb_find(db, "ALICE@example.TEST");
	CHECK(u != NULL);
	if (u) {
		CHECK_STR(u->address, "alice@example.test");
		CHECK_STR(u->hash, "$6$a");
	}
	u = userdb_find(db, "bob@other.test");
	CHECK(u != NULL);
	if (u)
		CHECK_STR(u->hash, "$6$b"); /* CR stripped with the line end */
	u = userdb_find(db, "dave@example.test");
	CHECK(u != NULL);
	if (u)
		CHECK_STR(u->hash, "$6$d");
	CHECK(userdb_find(db, "carol@example.test") != NULL);
	CHECK(userdb_find(db, "carol@other.test") == NULL);
	CHECK(userdb_find(db, "alice") == NULL);
	CHECK(userdb_find(db, "") == NULL);
	userdb_free(db);
}

TEST(load_reports_every_error_with_its_line)
{
	struct reports rep = { 0 };
	struct userdb *db = (struct userdb *)&rep; /* must stay untouched */

	CHECK_INT(load_text("alice@example.test:x\n"            /* 1 */
			    "# comment\n"                       /* 2 */
			    "eve@remote.test:x\n"               /* 3 */
			    "\n"                                /* 4 */
			    "../etc@example.test:x\n"           /* 5 */
			    "ALICE@EXAMPLE.TEST:y\n"            /* 6: duplicate of 1 */
			    "bob@example.test:x\n"              /* 7 */
			    ".hidden@example.test:x\r\n"        /* 8 */
			    "no-colon\n"                        /* 9 */
			    "\"sp ace\"@example.test:x\n",      /* 10 */
			    &rep, &db),
		  -EINVAL);
	CHECK(db == (struct userdb *)&rep);
	CHECK_INT(rep.n, 6);
	static const struct {
		unsigned line;
		const char *part;
	} want[] = {
		{ 3, "domain of 'eve@remote.test' is not a local-domain" },
		{ 5, "bad address '../etc@example.test'" },
		{ 6, "duplicate address 'alice@example.test' (first on line 1)" },
		{ 8, "bad address '.hidden@example.test'" },
		{ 9, "no ':'" },
		{ 10, "quoted local part" },
	};
	for (size_t i = 0; i < sizeof want / sizeof want[0] && i < rep.n; i++) {
		CHECK_INT(rep.line[i], want[i].line);
		CHECK_MSG(strstr(rep.msg[i], want[i].part) != NULL, "\"%s\" lacks \"%s\"",
			  rep.msg[i], want[i].part);
	}
}

TEST(load_overlong_line_keeps_line_numbers)
{
	static char text[20000];
	struct reports rep = { 0 };
	struct userdb *db = NULL;
	size_t n = 0;

	n += (size_t)sprintf(text + n, "a@example.test:x\n");
	memset(text + n, 'y', 9000);
	n += 9000;
	n += (size_t)sprintf(text + n, "\nb@remote.test:x\n");
	CHECK_INT(load_text(text, &rep, &db), -EINVAL);
	CHECK_INT(rep.n, 2);
	CHECK_INT(rep.line[0], 2);
	CHECK(strstr(rep.msg[0], "longer than 8192") != NULL);
	CHECK_INT(rep.line[1], 3);
}

TEST(load_unreadable)
{
	struct reports rep = { 0 };
	struct userdb *db = NULL;

	CHECK_INT(userdb_load("/nonexistent/carteiro/users", &cfg, collect, &rep, &db), -ENOENT);
	CHECK(db == NULL);
	CHECK_INT(rep.n, 1);
	CHECK_INT(rep.line[0], 0);
	CHECK_STR(rep.file, "/nonexistent/carteiro/users");
	CHECK(strncmp(rep.msg[0], "cannot read: ", 13) == 0);

	rep.n = 0;
	CHECK_INT(userdb_load("/tmp", &cfg, collect, &rep, &db), -EISDIR);
	CHECK_INT(rep.n, 1);
	CHECK_INT(rep.line[0], 0);
	/* A NULL report function is allowed. */
	CHECK_INT(userdb_load("/nonexistent/carteiro/users", &cfg, NULL, NULL, &db), -ENOENT);
}

TEST(load_refuses_huge_file)
{
	char path[] = "/tmp/carteiro-test-users-XXXXXX";
	struct reports rep = { 0 };
	struct userdb *db = NULL;
	int fd = mkstemp(path);

	/* A sparse file one byte past the 64 MiB limit. */
	CHECK(fd >= 0 && ftruncate(fd, ((off_t)64 << 20) + 1) == 0);
	close(fd);
	CHECK_INT(userdb_load(path, &cfg, collect, &rep, &db), -EFBIG);
	CHECK(db == NULL);
	CHECK_INT(rep.n, 1);
	CHECK_INT(rep.line[0], 0);
	CHECK(strstr(rep.msg[0], "cannot read: larger than 64 MiB") != NULL);
	unlink(path);
}

TEST(load_empty_file)
{
	struct reports rep = { 0 };
	struct userdb *db = NULL;

	CHECK_INT(load_text("", &rep, &db), 0);
	CHECK_INT(userdb_count(db), 0);
	userdb_free(db);
}

TEST(empty_table)
{
	struct userdb *db = userdb_empty();

	CHECK(db != NULL);
	CHECK_INT(userdb_count(db), 0);
	CHECK(userdb_find(db, "alice@example.test") == NULL);
	userdb_free(db);
	userdb_free(NULL);
}

TEST(find_overlong_key)
{
	static char key[1000];
	struct userdb *db = userdb_empty();

	memset(key, 'a', sizeof key - 1);
	CHECK(userdb_find(db, key) == NULL);
	userdb_free(db);
}

UNIT_MAIN()
