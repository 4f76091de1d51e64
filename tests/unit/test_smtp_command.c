/*
 * test_smtp_command: table-driven tests of smtpd/smtp_command.c: verb
 * splitting, line limits, MAIL and RCPT arguments with every ESMTP parameter
 * (RFC 1870, 3461, 4954, 6152, 6531), BDAT (RFC 3030), HELO/EHLO arguments,
 * and xtext (RFC 3461 4).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "smtpd/smtp_command.h"
#include "unit.h"

#define CLEN(s) (sizeof(s) - 1)

struct verb_case {
	const char *line;
	size_t len; /* 0: strlen */
	enum smtp_verb verb;
	const char *name, *arg;
};

static const struct verb_case verb_cases[] = {
	{ "MAIL FROM:<>", 0, SMTP_VERB_MAIL, "MAIL", "FROM:<>" },
	{ "mail FROM:<a@b>", 0, SMTP_VERB_MAIL, "mail", "FROM:<a@b>" },
	{ "MAIL  FROM:<>", 0, SMTP_VERB_MAIL, "MAIL", " FROM:<>" },
	{ "RCPT TO:<a@b> NOTIFY=NEVER", 0, SMTP_VERB_RCPT, "RCPT", "TO:<a@b> NOTIFY=NEVER" },
	{ "DATA", 0, SMTP_VERB_DATA, "DATA", "" },
	{ "DATA ", 0, SMTP_VERB_DATA, "DATA", "" },
	{ "data", 0, SMTP_VERB_DATA, "data", "" },
	{ "HELO client.example", 0, SMTP_VERB_HELO, "HELO", "client.example" },
	{ "Ehlo client.example", 0, SMTP_VERB_EHLO, "Ehlo", "client.example" },
	{ "BDAT 100 LAST", 0, SMTP_VERB_BDAT, "BDAT", "100 LAST" },
	{ "RSET", 0, SMTP_VERB_RSET, "RSET", "" },
	{ "NOOP anything at all", 0, SMTP_VERB_NOOP, "NOOP", "anything at all" },
	{ "QUIT", 0, SMTP_VERB_QUIT, "QUIT", "" },
	{ "HELP MAIL", 0, SMTP_VERB_HELP, "HELP", "MAIL" },
	{ "VRFY user", 0, SMTP_VERB_VRFY, "VRFY", "user" },
	{ "EXPN list", 0, SMTP_VERB_EXPN, "EXPN", "list" },
	{ "StartTLS", 0, SMTP_VERB_STARTTLS, "StartTLS", "" },
	{ "AUTH PLAIN AGEAYg==", 0, SMTP_VERB_AUTH, "AUTH", "PLAIN AGEAYg==" },
	{ "", 0, SMTP_VERB_UNKNOWN, "", "" },
	{ " MAIL FROM:<>", 0, SMTP_VERB_UNKNOWN, "", "MAIL FROM:<>" },
	{ "MAIL\tFROM:<>", 0, SMTP_VERB_UNKNOWN, "MAIL\tFROM:<>", "" },
	{ "MAILX FROM:<>", 0, SMTP_VERB_UNKNOWN, "MAILX", "FROM:<>" },
	{ "MAI", 0, SMTP_VERB_UNKNOWN, "MAI", "" },
	{ "GET / HTTP/1.1", 0, SMTP_VERB_UNKNOWN, "GET", "/ HTTP/1.1" },
	{ "STARTTLS\0", 9, SMTP_VERB_UNKNOWN, NULL, "" },
	{ "DA\0A", 4, SMTP_VERB_UNKNOWN, NULL, "" },
};

TEST(command_parse_table)
{
	for (size_t i = 0; i < sizeof(verb_cases) / sizeof(verb_cases[0]); i++) {
		const struct verb_case *c = &verb_cases[i];
		struct slice line = { c->line, c->len ? c->len : strlen(c->line) };
		struct smtp_command cmd;

		smtp_command_parse(line, &cmd);
		CHECK_MSG(cmd.verb == c->verb, "row %zu \"%s\": verb %d", i, c->line, cmd.verb);
		if (c->name)
			CHECK_MSG(slice_eq(cmd.name, slice_from_cstr(c->name)), "row %zu name", i);
		CHECK_MSG(slice_eq(cmd.arg, slice_from_cstr(c->arg)), "row %zu arg \"%.*s\"", i,
			  (int)cmd.arg.len, cmd.arg.ptr);
		/* Name and argument are views into the line. */
		CHECK(cmd.name.ptr == line.ptr);
		CHECK(cmd.arg.ptr >= line.ptr && cmd.arg.ptr + cmd.arg.len == line.ptr + line.len);
	}
	/* An empty slice with no storage at all. */
	struct smtp_command cmd;
	smtp_command_parse((struct slice){ NULL, 0 }, &cmd);
	CHECK(cmd.verb == SMTP_VERB_UNKNOWN && cmd.name.len == 0 && cmd.arg.len == 0);
}

TEST(command_line_max)
{
	CHECK_INT(smtp_command_line_max(SMTP_VERB_MAIL), 512 + 26 + 100 + 500 + 14 + 10);
	CHECK_INT(smtp_command_line_max(SMTP_VERB_RCPT), 512 + 500);
	/* RFC 4954 4: an AUTH line with its initial response may be 12288 octets. */
	CHECK_INT(smtp_command_line_max(SMTP_VERB_AUTH), 12288 + 2);
	for (int v = 0; v < SMTP_VERB_COUNT; v++)
		if (v != SMTP_VERB_MAIL && v != SMTP_VERB_RCPT && v != SMTP_VERB_AUTH)
			CHECK_INT(smtp_command_line_max((enum smtp_verb)v), 512);
}

struct mail_case {
	const char *arg;
	int want;
	int addr_err;
	const char *from; /* canonical text */
	bool null;
	bool size_given;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	const char *envid, *auth;
};

#define A "FROM:<a@b>"

static const struct mail_case mail_cases[] = {
	/* The path. */
	{ .arg = A, .from = "a@b" },
	{ .arg = "from:<a@b>", .from = "a@b" },
	{ .arg = "From:<User@Example.COM>", .from = "User@example.com" },
	{ .arg = "FROM:<>", .from = "", .null = true },
	{ .arg = "FROM: <a@b>", .from = "a@b" },
	{ .arg = "FROM:   <a@b>", .from = "a@b" },
	{ .arg = "FROM:<@route.example:a@b>", .from = "a@b" },
	{ .arg = "FROM:<\"a b\"@c>", .from = "\"a b\"@c" },
	{ .arg = A " ", .from = "a@b" },
	{ .arg = "FROM :<a@b>", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = "FROM<a@b>", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = "<a@b>", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = "TO:<a@b>", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = "", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = "FRO", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = "FROM:", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_SYNTAX },
	{ .arg = "FROM:a@b", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_SYNTAX },
	{ .arg = "FROM:<a@b", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_SYNTAX },
	{ .arg = "FROM:a@b SIZE=1", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_SYNTAX },
	{ .arg = "FROM:<postmaster>", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_SYNTAX },
	{ .arg = "FROM:\t<a@b>", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_SYNTAX },
	{ .arg = A "x", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = A ">", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = A "\tSIZE=1", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = "FROM:<>x", .want = SMTP_CMD_ERR_SYNTAX },

	/* SIZE (RFC 1870). */
	{ .arg = A " SIZE=10", .from = "a@b", .size_given = true, .size = 10 },
	{ .arg = A "  SIZE=10  ", .from = "a@b", .size_given = true, .size = 10 },
	{ .arg = A " size=0", .from = "a@b", .size_given = true, .size = 0 },
	{ .arg = A " SIZE=18446744073709551615", .from = "a@b", .size_given = true,
	  .size = UINT64_MAX },
	{ .arg = A " SIZE=00000000000000000001", .from = "a@b", .size_given = true, .size = 1 },
	{ .arg = A " SIZE=000000000000000000001", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	/* 20 digits are valid (RFC 1870) even past 64 bits: the size saturates. */
	{ .arg = A " SIZE=18446744073709551616", .from = "a@b", .size_given = true,
	  .size = UINT64_MAX },
	{ .arg = A " SIZE=99999999999999999999", .from = "a@b", .size_given = true,
	  .size = UINT64_MAX },
	{ .arg = A " SIZE=", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " SIZE", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " SIZE=-1", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " SIZE=+1", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " SIZE=1k", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " SIZE=1 SIZE=2", .want = SMTP_CMD_ERR_PARAM_DUP },
	{ .arg = A " SIZE=1 size=1", .want = SMTP_CMD_ERR_PARAM_DUP },

	/* BODY (RFC 6152; BINARYMIME of RFC 3030 is not offered). */
	{ .arg = A " BODY=7BIT", .from = "a@b", .body = SMTP_BODY_7BIT },
	{ .arg = A " BODY=8BITMIME", .from = "a@b", .body = SMTP_BODY_8BITMIME },
	{ .arg = A " body=8bitmime", .from = "a@b", .body = SMTP_BODY_8BITMIME },
	{ .arg = A " BODY=BINARYMIME", .want = SMTP_CMD_ERR_BODY },
	{ .arg = A " BODY=9BIT", .want = SMTP_CMD_ERR_BODY },
	{ .arg = A " BODY", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " BODY=", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " BODY=8BITMIME BODY=7BIT", .want = SMTP_CMD_ERR_PARAM_DUP },

	/* SMTPUTF8 (RFC 6531 3.4). */
	{ .arg = A " SMTPUTF8", .from = "a@b", .smtputf8 = true },
	{ .arg = A " smtputf8", .from = "a@b", .smtputf8 = true },
	{ .arg = A " SMTPUTF8=YES", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " SMTPUTF8 SMTPUTF8", .want = SMTP_CMD_ERR_PARAM_DUP },
	{ .arg = "FROM:<j\xc3\xb6rg@b>", .want = SMTP_CMD_ERR_NOT_ENABLED },
	{ .arg = "FROM:<a@b\xc3\xbc" "cher.example> BODY=8BITMIME",
	  .want = SMTP_CMD_ERR_NOT_ENABLED },
	{ .arg = "FROM:<j\xc3\xb6rg@b> SMTPUTF8", .from = "j\xc3\xb6rg@b", .smtputf8 = true },
	{ .arg = "FROM:<j\xc3\xb6rg@b> SMTPUTF8 SIZE=1", .from = "j\xc3\xb6rg@b", .smtputf8 = true,
	  .size_given = true, .size = 1 },
	{ .arg = "FROM:<j\xc3@b> SMTPUTF8", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_UTF8 },
	{ .arg = "FROM:<@b\xc3\xbc" "cher.example:a@b>", .from = "a@b" },

	/* RET (RFC 3461 4.3). */
	{ .arg = A " RET=FULL", .from = "a@b", .ret = SMTP_RET_FULL },
	{ .arg = A " ret=hdrs", .from = "a@b", .ret = SMTP_RET_HDRS },
	{ .arg = A " RET=NONE", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " RET", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " RET=FULL RET=HDRS", .want = SMTP_CMD_ERR_PARAM_DUP },

	/* ENVID (RFC 3461 4.4), xtext decoded. */
	{ .arg = A " ENVID=QQ314159", .from = "a@b", .envid = "QQ314159" },
	{ .arg = A " ENVID=a+2Bb", .from = "a@b", .envid = "a+b" },
	{ .arg = A " ENVID=a+2bb", .from = "a@b", .envid = "a+b" },
	{ .arg = A " ENVID=a+3Db", .from = "a@b", .envid = "a=b" },
	{ .arg = A " ENVID=+20", .from = "a@b", .envid = " " },
	{ .arg = A " ENVID=<id@host>", .from = "a@b", .envid = "<id@host>" },
	{ .arg = A " ENVID=a+00", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " ENVID=a+4", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " ENVID=a+", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " ENVID=a+G0", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " ENVID=a+0D+0Ab", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " ENVID=+7F", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " ENVID=+C3+A4", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " ENVID=\xc3\xa4", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " ENVID", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " ENVID=a ENVID=b", .want = SMTP_CMD_ERR_PARAM_DUP },

	/* AUTH (RFC 4954 5): checked, kept as given. */
	{ .arg = A " AUTH=<>", .from = "a@b", .auth = "<>" },
	{ .arg = A " AUTH=e+3Dmc2@example.com", .from = "a@b", .auth = "e+3Dmc2@example.com" },
	{ .arg = A " AUTH=a+ZZ", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " AUTH=a+00", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " AUTH=", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " AUTH", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " AUTH=<> AUTH=<>", .want = SMTP_CMD_ERR_PARAM_DUP },

	/* Everything at once, in any order and case. */
	{ .arg = A " BODY=8BITMIME SIZE=100 ret=HDRS ENVID=x+2By AUTH=<> SmtpUtf8",
	  .from = "a@b", .size_given = true, .size = 100, .body = SMTP_BODY_8BITMIME,
	  .smtputf8 = true, .ret = SMTP_RET_HDRS, .envid = "x+y", .auth = "<>" },

	/* Parameter syntax and unknown parameters. */
	{ .arg = A " FOO=bar", .want = SMTP_CMD_ERR_PARAM_UNKNOWN },
	{ .arg = A " X-FOO", .want = SMTP_CMD_ERR_PARAM_UNKNOWN },
	{ .arg = A " NOTIFY=NEVER", .want = SMTP_CMD_ERR_PARAM_UNKNOWN },
	{ .arg = A " X=\xc3\xa4", .want = SMTP_CMD_ERR_PARAM_UNKNOWN },
	{ .arg = A " X=\xc3", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " X=\x7f", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " -FOO", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " =1", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " SIZE==1", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " SIZE=1=2", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " SI_ZE=1", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = A " SIZE=1\t", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
};

TEST(mail_table)
{
	for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
		const struct mail_case *c = &mail_cases[i];
		struct smtp_mail_args m;
		int addr_err = 12345;
		int r = smtp_parse_mail(slice_from_cstr(c->arg), &m, &addr_err);

		CHECK_MSG(r == c->want, "row %zu \"%s\": got %d, want %d", i, c->arg, r, c->want);
		if (r == SMTP_CMD_ERR_ADDR)
			CHECK_MSG(addr_err == c->addr_err, "row %zu: addr_err %d", i, addr_err);
		if (r != SMTP_CMD_OK) {
			/* Nothing of a refused line is left behind. */
			CHECK(m.from.text[0] == '\0' && !m.size_given && !m.smtputf8);
			CHECK(m.envid[0] == '\0' && m.auth[0] == '\0');
			CHECK(m.body == SMTP_BODY_UNSPEC && m.ret == SMTP_RET_UNSPEC);
			continue;
		}
		CHECK_INT(addr_err, ADDR_OK);
		CHECK_STR(m.from.text, c->from);
		CHECK_MSG(m.from.null == c->null, "row %zu null", i);
		CHECK_MSG(m.size_given == c->size_given && m.size == c->size, "row %zu size", i);
		CHECK_MSG(m.body == c->body, "row %zu body", i);
		CHECK_MSG(m.smtputf8 == c->smtputf8, "row %zu smtputf8", i);
		CHECK_MSG(m.ret == c->ret, "row %zu ret", i);
		CHECK_STR(m.envid, c->envid ? c->envid : "");
		CHECK_STR(m.auth, c->auth ? c->auth : "");
	}
}

struct rcpt_case {
	const char *arg;
	bool utf8;
	int want;
	int addr_err;
	const char *to;
	unsigned notify;
	const char *orcpt;
};

#define T "TO:<a@b>"

static const struct rcpt_case rcpt_cases[] = {
	/* The path. */
	{ .arg = T, .to = "a@b" },
	{ .arg = "to:<A@B>", .to = "A@b" },
	{ .arg = "To:  <a@b>", .to = "a@b" },
	{ .arg = T " ", .to = "a@b" },
	{ .arg = "TO:<postmaster>", .to = "postmaster" },
	{ .arg = "TO:<PostMaster> NOTIFY=NEVER", .to = "postmaster", .notify = SMTP_NOTIFY_NEVER },
	{ .arg = "TO:<@relay.example:a@b>", .to = "a@b" },
	{ .arg = "TO:<a@[192.0.2.1]>", .to = "a@[192.0.2.1]" },
	{ .arg = "TO:<>", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_NULL },
	{ .arg = "TO:a@b", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_SYNTAX },
	{ .arg = "TO:<a@b@c>", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_SYNTAX },
	{ .arg = "TO:", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_SYNTAX },
	{ .arg = "TO :<a@b>", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = "FROM:<a@b>", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = "", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = T "x", .want = SMTP_CMD_ERR_SYNTAX },
	{ .arg = T ",<c@d>", .want = SMTP_CMD_ERR_SYNTAX },

	/* UTF-8 addresses need an SMTPUTF8 transaction (RFC 6531 3.5). */
	{ .arg = "TO:<j\xc3\xb6rg@b>", .want = SMTP_CMD_ERR_NOT_ENABLED },
	{ .arg = "TO:<j\xc3\xb6rg@b>", .utf8 = true, .to = "j\xc3\xb6rg@b" },
	{ .arg = "TO:<j\xc3@b>", .want = SMTP_CMD_ERR_ADDR, .addr_err = ADDR_ERR_UTF8 },
	{ .arg = "TO:<j\xc3@b>", .utf8 = true, .want = SMTP_CMD_ERR_ADDR,
	  .addr_err = ADDR_ERR_UTF8 },

	/* NOTIFY (RFC 3461 4.1). */
	{ .arg = T " NOTIFY=NEVER", .to = "a@b", .notify = SMTP_NOTIFY_NEVER },
	{ .arg = T " notify=never", .to = "a@b", .notify = SMTP_NOTIFY_NEVER },
	{ .arg = T " NOTIFY=SUCCESS", .to = "a@b", .notify = SMTP_NOTIFY_SUCCESS },
	{ .arg = T " NOTIFY=SUCCESS,FAILURE", .to = "a@b",
	  .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE },
	{ .arg = T " NOTIFY=delay,Success", .to = "a@b",
	  .notify = SMTP_NOTIFY_DELAY | SMTP_NOTIFY_SUCCESS },
	{ .arg = T " NOTIFY=SUCCESS,FAILURE,DELAY", .to = "a@b",
	  .notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY },
	{ .arg = T " NOTIFY=NEVER,SUCCESS", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " NOTIFY=DELAY,NEVER", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " NOTIFY=", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " NOTIFY", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " NOTIFY=SUCCESS,", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " NOTIFY=,SUCCESS", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " NOTIFY=SUCCESS,,DELAY", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " NOTIFY=ALWAYS", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " NOTIFY=SUCCESSX", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " NOTIFY=NEVER NOTIFY=NEVER", .want = SMTP_CMD_ERR_PARAM_DUP },

	/* ORCPT (RFC 3461 4.2). */
	{ .arg = T " ORCPT=rfc822;a@b", .to = "a@b", .orcpt = "rfc822;a@b" },
	{ .arg = T " ORCPT=RFC822;A+40B", .to = "a@b", .orcpt = "rfc822;A@B" },
	{ .arg = T " orcpt=rfc822;a+2Bt@b", .to = "a@b", .orcpt = "rfc822;a+t@b" },
	{ .arg = T " ORCPT=UTF-8;j\\x{00F6}rg@b", .to = "a@b", .orcpt = "utf-8;j\\x{00F6}rg@b" },
	{ .arg = T " ORCPT=rfc822;a+20b@c", .to = "a@b", .orcpt = "rfc822;a b@c" },
	{ .arg = T " ORCPT=rfc822", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " ORCPT=;a@b", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " ORCPT=rfc822;", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " ORCPT=rf(c;a@b", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " ORCPT=rfc822;a+0Ab", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " ORCPT=rfc822;a+00b", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " ORCPT=rfc822;a+2", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " ORCPT=rfc822;a+b", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " ORCPT=rfc822;+C3+B6", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " ORCPT", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
	{ .arg = T " ORCPT=rfc822;a@b ORCPT=rfc822;c@d", .want = SMTP_CMD_ERR_PARAM_DUP },

	/* Both, and parameters that belong to MAIL. */
	{ .arg = T " NOTIFY=SUCCESS ORCPT=rfc822;a@b", .to = "a@b",
	  .notify = SMTP_NOTIFY_SUCCESS, .orcpt = "rfc822;a@b" },
	{ .arg = T "   ORCPT=rfc822;a@b   NOTIFY=FAILURE   ", .to = "a@b",
	  .notify = SMTP_NOTIFY_FAILURE, .orcpt = "rfc822;a@b" },
	{ .arg = T " SIZE=1", .want = SMTP_CMD_ERR_PARAM_UNKNOWN },
	{ .arg = T " SMTPUTF8", .want = SMTP_CMD_ERR_PARAM_UNKNOWN },
	{ .arg = T " NOTIFY=NEVER FOO", .want = SMTP_CMD_ERR_PARAM_UNKNOWN },
	{ .arg = T " NOTIFY=NEVER=", .want = SMTP_CMD_ERR_PARAM_SYNTAX },
};

TEST(rcpt_table)
{
	for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
		const struct rcpt_case *c = &rcpt_cases[i];
		struct smtp_rcpt_args a;
		int addr_err = 12345;
		int r = smtp_parse_rcpt(slice_from_cstr(c->arg), c->utf8, &a, &addr_err);

		CHECK_MSG(r == c->want, "row %zu \"%s\": got %d, want %d", i, c->arg, r, c->want);
		if (r == SMTP_CMD_ERR_ADDR)
			CHECK_MSG(addr_err == c->addr_err, "row %zu: addr_err %d", i, addr_err);
		if (r != SMTP_CMD_OK) {
			CHECK(a.to.text[0] == '\0' && a.notify == 0 && a.orcpt[0] == '\0');
			continue;
		}
		CHECK_STR(a.to.text, c->to);
		CHECK_MSG(a.notify == c->notify, "row %zu notify %u", i, a.notify);
		CHECK_STR(a.orcpt, c->orcpt ? c->orcpt : "");
	}
}

/* A NULL addr_err is tolerated. */
TEST(mail_rcpt_null_addr_err)
{
	struct smtp_mail_args m;
	struct smtp_rcpt_args a;

	CHECK_INT(smtp_parse_mail(SLICE_LIT("FROM:a@b"), &m, NULL), SMTP_CMD_ERR_ADDR);
	CHECK_INT(smtp_parse_rcpt(SLICE_LIT("TO:a@b"), false, &a, NULL), SMTP_CMD_ERR_ADDR);
	CHECK_INT(smtp_parse_rcpt(SLICE_LIT("TO:<\xc3\xa4@b>"), false, &a, NULL),
		  SMTP_CMD_ERR_NOT_ENABLED);
}

/* Value limits: ENVID decoded 100, AUTH 500 as given, ORCPT 500 as given. */
TEST(param_limits)
{
	static char line[2048], val[600];
	struct smtp_mail_args m;
	struct smtp_rcpt_args a;
	int e;

	memset(val, 'e', 100);
	val[100] = '\0';
	snprintf(line, sizeof(line), A " ENVID=%s", val);
	CHECK_INT(smtp_parse_mail(slice_from_cstr(line), &m, &e), SMTP_CMD_OK);
	CHECK_INT(strlen(m.envid), 100);
	snprintf(line, sizeof(line), A " ENVID=%se", val);
	CHECK_INT(smtp_parse_mail(slice_from_cstr(line), &m, &e), SMTP_CMD_ERR_PARAM_SYNTAX);
	/* The limit is on the decoded text: 100 "+2B" are 300 octets sent, 100 kept. */
	for (int i = 0; i < 100; i++)
		memcpy(val + 3 * i, "+2B", 3);
	val[300] = '\0';
	snprintf(line, sizeof(line), A " ENVID=%s", val);
	CHECK_INT(smtp_parse_mail(slice_from_cstr(line), &m, &e), SMTP_CMD_OK);
	CHECK_INT(strlen(m.envid), 100);
	CHECK(m.envid[0] == '+' && m.envid[99] == '+');
	snprintf(line, sizeof(line), A " ENVID=%s+2B", val);
	CHECK_INT(smtp_parse_mail(slice_from_cstr(line), &m, &e), SMTP_CMD_ERR_PARAM_SYNTAX);

	memset(val, 'u', 500);
	val[500] = '\0';
	snprintf(line, sizeof(line), A " AUTH=%s", val);
	CHECK_INT(smtp_parse_mail(slice_from_cstr(line), &m, &e), SMTP_CMD_OK);
	CHECK_INT(strlen(m.auth), 500);
	snprintf(line, sizeof(line), A " AUTH=%su", val);
	CHECK_INT(smtp_parse_mail(slice_from_cstr(line), &m, &e), SMTP_CMD_ERR_PARAM_SYNTAX);

	memcpy(val, "rfc822;", 7);
	memset(val + 7, 'o', 493);
	val[500] = '\0';
	snprintf(line, sizeof(line), T " ORCPT=%s", val);
	CHECK_INT(smtp_parse_rcpt(slice_from_cstr(line), false, &a, &e), SMTP_CMD_OK);
	CHECK_INT(strlen(a.orcpt), 500);
	snprintf(line, sizeof(line), T " ORCPT=%so", val);
	CHECK_INT(smtp_parse_rcpt(slice_from_cstr(line), false, &a, &e),
		  SMTP_CMD_ERR_PARAM_SYNTAX);
	/* A long addr-type leaves room for the address only within the 500. */
	memset(val, 't', 498);
	memcpy(val + 498, ";x", 3);
	snprintf(line, sizeof(line), T " ORCPT=%s", val);
	CHECK_INT(smtp_parse_rcpt(slice_from_cstr(line), false, &a, &e), SMTP_CMD_OK);
	CHECK_INT(strlen(a.orcpt), 500);
}

struct bdat_case {
	const char *arg;
	size_t len; /* 0: strlen */
	int want;
	uint64_t size;
	bool last;
};

static const struct bdat_case bdat_cases[] = {
	{ "0", 0, SMTP_CMD_OK, 0, false },
	{ "100", 0, SMTP_CMD_OK, 100, false },
	{ "100 LAST", 0, SMTP_CMD_OK, 100, true },
	{ "100 last", 0, SMTP_CMD_OK, 100, true },
	{ "100 Last", 0, SMTP_CMD_OK, 100, true },
	{ "0 LAST", 0, SMTP_CMD_OK, 0, true },
	{ "007", 0, SMTP_CMD_OK, 7, false },
	{ "00000000000000000001", 0, SMTP_CMD_OK, 1, false },
	{ "000000000000000000001", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "281474976710655", 0, SMTP_CMD_OK, UINT64_C(0xffffffffffff), false },
	{ "281474976710656", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "18446744073709551615", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "99999999999999999999999", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ " 100", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "100 ", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "100  LAST", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "100 LAST ", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "100 LASTX", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "100 LAS", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "100 LAST 1", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "100\tLAST", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "LAST", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ " LAST", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "-1", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "+1", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "1e3", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "0x10", 0, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "10\0", 3, SMTP_CMD_ERR_SYNTAX, 0, false },
	{ "10 LAST\0", 8, SMTP_CMD_ERR_SYNTAX, 0, false },
};

TEST(bdat_table)
{
	for (size_t i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
		const struct bdat_case *c = &bdat_cases[i];
		struct slice arg = { c->arg, c->len ? c->len : strlen(c->arg) };
		uint64_t size = 12345;
		bool last = true;
		int r = smtp_parse_bdat(arg, &size, &last);

		CHECK_MSG(r == c->want, "row %zu \"%s\": got %d", i, c->arg, r);
		CHECK_MSG(size == c->size && last == c->last, "row %zu \"%s\": size %llu last %d",
			  i, c->arg, (unsigned long long)size, last);
	}
}

struct helo_case {
	const char *arg;
	bool want;
};

static const struct helo_case helo_cases[] = {
	{ "client.example", true },
	{ "CLIENT", true },
	{ "mail-1.example.org", true },
	{ "my_host.local", true },
	{ "WIN_PC_01", true },
	{ "exa_-mple.com", true },
	{ "_host", false },
	{ "host_", false },
	{ "a._b", false },
	{ "a.b_", false },
	{ "_", false },
	{ "[127.0.0.1]", true },
	{ "[IPv6:::1]", true },
	{ "[IPv6:2001:db8::1]", true },
	{ "[x-tag:foo]", true },
	{ "[1.2.3]", false },
	{ "[256.1.1.1]", false },
	{ "[127.0.0.1", false },
	{ "127.0.0.1]", false },
	{ "127.0.0.1", true },
	{ "", false },
	{ "client.example.", false },
	{ ".client.example", false },
	{ "a..b", false },
	{ "-a", false },
	{ "a-", false },
	{ "host name", false },
	{ " client.example", false },
	{ "client.example ", false },
	{ "b\xc3\xbc" "cher.example", false },
	{ "user@client.example", false },
	{ "client.example\r", false },
};

TEST(helo_table)
{
	static char buf[300];

	for (size_t i = 0; i < sizeof(helo_cases) / sizeof(helo_cases[0]); i++)
		CHECK_MSG(smtp_helo_valid(slice_from_cstr(helo_cases[i].arg)) == helo_cases[i].want,
			  "row %zu \"%s\"", i, helo_cases[i].arg);
	CHECK(!smtp_helo_valid((struct slice){ "a\0b", 3 }));
	CHECK(!smtp_helo_valid((struct slice){ NULL, 0 }));

	/* 255 octets: labels of about 50 with some '_' inside; 256 is too long. */
	for (size_t i = 0; i < 255; i++)
		buf[i] = (i % 51 == 50) ? '.' : (i % 7 == 3 ? '_' : 'h');
	buf[254] = 'h';
	buf[255] = '\0';
	CHECK(smtp_helo_valid(slice_from_cstr(buf)));
	buf[255] = 'h';
	buf[256] = '\0';
	CHECK(!smtp_helo_valid(slice_from_cstr(buf)));
}

struct xtext_case {
	const char *in;
	bool ok;
	const char *out;
};

static const struct xtext_case xtext_cases[] = {
	{ "", true, "" },
	{ "abc", true, "abc" },
	{ "a+2Bb", true, "a+b" },
	{ "a+2bb", true, "a+b" },
	{ "+3D", true, "=" },
	{ "+20+7E", true, " ~" },
	{ "+FF", true, "\xff" },
	{ "!\"#$%&'()*,-./0123456789:;<>?@AZ[\\]^_`az{|}~", true,
	  "!\"#$%&'()*,-./0123456789:;<>?@AZ[\\]^_`az{|}~" },
	{ "+00", false, "" },
	{ "+", false, "" },
	{ "+2", false, "" },
	{ "a+2", false, "" },
	{ "+G1", false, "" },
	{ "+1G", false, "" },
	{ "a=b", false, "" },
	{ "a b", false, "" },
	{ "a\tb", false, "" },
	{ "\x7f", false, "" },
	{ "\xc3\xa4", false, "" },
};

TEST(xtext_decode_table)
{
	char out[64];
	size_t n;

	for (size_t i = 0; i < sizeof(xtext_cases) / sizeof(xtext_cases[0]); i++) {
		const struct xtext_case *c = &xtext_cases[i];
		n = 999;
		bool ok = xtext_decode(slice_from_cstr(c->in), out, sizeof(out), &n);
		CHECK_MSG(ok == c->ok, "row %zu \"%s\"", i, c->in);
		CHECK_STR(out, c->out);
		if (ok)
			CHECK_INT(n, strlen(c->out));
	}
	/* Exactly filling dst (with its NUL), then one too many. */
	CHECK(xtext_decode(SLICE_LIT("abc"), out, 4, &n) && n == 3);
	CHECK(!xtext_decode(SLICE_LIT("abcd"), out, 4, &n) && out[0] == '\0');
	CHECK(!xtext_decode(SLICE_LIT("+41"), out, 1, NULL));
	CHECK(!xtext_decode(SLICE_LIT(""), out, 0, NULL));
	CHECK(xtext_decode(SLICE_LIT("+41"), out, 2, NULL) && strcmp(out, "A") == 0);
	CHECK(!xtext_decode((struct slice){ "a\0b", 3 }, out, sizeof(out), NULL));
}

TEST(xtext_encode_roundtrip)
{
	struct buf b;
	char all[255], dec[256];
	size_t n;

	buf_init(&b, 1024);
	CHECK_INT(xtext_encode(SLICE_LIT("a+b=c d"), &b), 0);
	CHECK_STR(buf_cstr(&b), "a+2Bb+3Dc+20d");
	buf_reset(&b);
	CHECK_INT(xtext_encode(SLICE_LIT("\xc3\xa4\x01\x7f"), &b), 0);
	CHECK_STR(buf_cstr(&b), "+C3+A4+01+7F");

	/* Every byte but NUL survives encode + decode. */
	buf_reset(&b);
	for (int i = 0; i < 255; i++)
		all[i] = (char)(i + 1);
	CHECK_INT(xtext_encode((struct slice){ all, sizeof(all) }, &b), 0);
	CHECK(xtext_decode(buf_slice(&b), dec, sizeof(dec), &n));
	CHECK(n == sizeof(all) && memcmp(dec, all, n) == 0);
	buf_free(&b);

	/* Out of room: nothing is appended. */
	buf_init(&b, 8);
	CHECK_INT(xtext_encode(SLICE_LIT("abc"), &b), 0);
	CHECK_INT(xtext_encode(SLICE_LIT("+++"), &b), -ENOSPC);
	CHECK_STR(buf_cstr(&b), "abc");
	CHECK_INT(xtext_encode(SLICE_LIT("d+"), &b), 0);
	CHECK_STR(buf_cstr(&b), "abcd+2B");
	buf_free(&b);
}

UNIT_MAIN()
