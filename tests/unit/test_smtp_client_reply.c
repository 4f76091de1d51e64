/*
 * test_smtp_client_reply: SMTP reply and EHLO extension parsing
 * (src/deliver/smtp_client_reply.c). Table-driven: each case is a sequence
 * of lines ('\n'-separated, fed one at a time) and the expected outcome.
 */
#include "deliver/smtp_client_reply.h"

#include <stdio.h>
#include <string.h>

#include "unit.h"

struct reply_case {
	const char *name;
	const char *lines; /* '\n' between lines */
	int result;        /* of the last feed */
	int code;
	const char *status;
	const char *text;
	bool temporary;
};

static const struct reply_case reply_cases[] = {
	{ "single", "250 OK", SMTPC_REPLY_DONE, 250, "2.0.0", "OK", false },
	{ "no_text", "250", SMTPC_REPLY_DONE, 250, "2.0.0", "", false },
	{ "empty_text", "250 ", SMTPC_REPLY_DONE, 250, "2.0.0", "", false },
	{ "enhanced", "550 5.1.1 No such user", SMTPC_REPLY_DONE, 550, "5.1.1", "No such user",
	  false },
	{ "enhanced_only", "451 4.3.0", SMTPC_REPLY_DONE, 451, "4.3.0", "", true },
	{ "enhanced_3digit", "552 5.123.456 big", SMTPC_REPLY_DONE, 552, "5.123.456", "big",
	  false },
	{ "enhanced_class_mismatch", "250 5.1.1 odd", SMTPC_REPLY_DONE, 250, "2.0.0",
	  "5.1.1 odd", false },
	{ "enhanced_bad_4digit", "550 5.1234.1 x", SMTPC_REPLY_DONE, 550, "5.0.0",
	  "5.1234.1 x", false },
	{ "enhanced_glued", "550 5.1.1x", SMTPC_REPLY_DONE, 550, "5.0.0", "5.1.1x", false },
	{ "multi", "250-first\n250-second\n250 third", SMTPC_REPLY_DONE, 250, "2.0.0",
	  "first second third", false },
	{ "multi_enhanced", "550-5.7.1 Go\n550-5.7.1 away\n550 5.7.1 now", SMTPC_REPLY_DONE, 550,
	  "5.7.1", "Go away now", false },
	{ "multi_empty_lines", "220-\n220-\n220 x", SMTPC_REPLY_DONE, 220, "2.0.0", "x", false },
	{ "multi_unfinished", "250-a\n250-b", SMTPC_REPLY_MORE, 0, NULL, NULL, false },
	{ "multi_code_change", "250-a\n251 b", SMTPC_REPLY_ERR_CODE, 0, NULL, NULL, false },
	{ "code_1xx", "199 x", SMTPC_REPLY_ERR_SYNTAX, 0, NULL, NULL, false },
	{ "code_6xx", "600 x", SMTPC_REPLY_ERR_SYNTAX, 0, NULL, NULL, false },
	{ "code_short", "25", SMTPC_REPLY_ERR_SYNTAX, 0, NULL, NULL, false },
	{ "code_letters", "2x0 ok", SMTPC_REPLY_ERR_SYNTAX, 0, NULL, NULL, false },
	{ "bad_separator", "250_ok", SMTPC_REPLY_ERR_SYNTAX, 0, NULL, NULL, false },
	{ "garbage", "HTTP/1.1 400 Bad", SMTPC_REPLY_ERR_SYNTAX, 0, NULL, NULL, false },
	{ "empty_line", "", SMTPC_REPLY_ERR_SYNTAX, 0, NULL, NULL, false },
	{ "control_chars", "250 a\tb\x01\x7f\xc3\xa9", SMTPC_REPLY_DONE, 250, "2.0.0",
	  "a?b????", false },
	{ "temporary", "421 4.4.2 bye", SMTPC_REPLY_DONE, 421, "4.4.2", "bye", true },
	{ "code_3xx", "354 go ahead", SMTPC_REPLY_DONE, 354, "3.0.0", "go ahead", true },
};

static int feed_lines(struct smtpc_reply_parser *p, const char *lines)
{
	char buf[4096];
	int r = SMTPC_REPLY_ERR_SYNTAX;
	const char *s = lines;

	for (;;) {
		const char *nl = strchr(s, '\n');
		size_t n = nl ? (size_t)(nl - s) : strlen(s);
		memcpy(buf, s, n);
		r = smtpc_reply_feed(p, (struct slice){ buf, n });
		if (!nl || r < 0)
			break;
		s = nl + 1;
	}
	return r;
}

TEST(reply_table)
{
	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
		const struct reply_case *tc = &reply_cases[i];
		struct smtpc_reply_parser p;
		struct smtpc_reply r;

		smtpc_reply_reset(&p);
		int res = feed_lines(&p, tc->lines);
		CHECK_MSG(res == tc->result, "%s: result %d, expected %d", tc->name, res, tc->result);
		if (tc->result != SMTPC_REPLY_DONE || res != SMTPC_REPLY_DONE)
			continue;
		smtpc_reply_get(&p, &r);
		CHECK_MSG(r.code == tc->code, "%s: code %d", tc->name, r.code);
		CHECK_MSG(strcmp(r.status, tc->status) == 0, "%s: status %s", tc->name, r.status);
		CHECK_MSG(strcmp(r.text, tc->text) == 0, "%s: text \"%s\"", tc->name, r.text);
		CHECK_MSG(r.temporary == tc->temporary, "%s: temporary", tc->name);
	}
}

TEST(reply_limits)
{
	struct smtpc_reply_parser p;
	static char line[SMTPC_REPLY_LINE_MAX + 2];
	struct smtpc_reply r;

	/* The longest accepted line, then one more byte. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "250 ", 4);
	smtpc_reply_reset(&p);
	CHECK_INT(smtpc_reply_feed(&p, (struct slice){ line, SMTPC_REPLY_LINE_MAX }),
		  SMTPC_REPLY_DONE);
	smtpc_reply_get(&p, &r);
	CHECK_INT(strlen(r.text), SMTPC_TEXT_MAX - 1);
	CHECK_INT(smtpc_reply_feed(&p, (struct slice){ line, SMTPC_REPLY_LINE_MAX + 1 }),
		  SMTPC_REPLY_ERR_TOO_LONG);

	/* SMTPC_REPLY_LINES_MAX lines are fine; one more is not. */
	smtpc_reply_reset(&p);
	for (unsigned i = 0; i < SMTPC_REPLY_LINES_MAX - 1; i++)
		CHECK_INT(smtpc_reply_feed(&p, SLICE_LIT("250-more text here")), SMTPC_REPLY_MORE);
	CHECK_INT(smtpc_reply_feed(&p, SLICE_LIT("250 end")), SMTPC_REPLY_DONE);
	smtpc_reply_get(&p, &r);
	CHECK(strlen(r.text) <= SMTPC_TEXT_MAX - 1);
	smtpc_reply_reset(&p);
	int res = SMTPC_REPLY_MORE;
	for (unsigned i = 0; i < SMTPC_REPLY_LINES_MAX + 5 && res == SMTPC_REPLY_MORE; i++)
		res = smtpc_reply_feed(&p, SLICE_LIT("250-endless"));
	CHECK_INT(res, SMTPC_REPLY_ERR_TOO_MANY);
	CHECK_INT(p.lines, SMTPC_REPLY_LINES_MAX);

	/* After DONE or an error, the next line starts a new reply. */
	CHECK_INT(smtpc_reply_feed(&p, SLICE_LIT("354 go")), SMTPC_REPLY_DONE);
	CHECK_INT(smtpc_reply_feed(&p, SLICE_LIT("250 ok")), SMTPC_REPLY_DONE);
	smtpc_reply_get(&p, &r);
	CHECK_INT(r.code, 250);
	CHECK_STR(r.text, "ok");
}

struct caps_case {
	const char *name;
	const char *lines; /* '\n' between the lines after the greeting line */
	struct smtpc_caps want;
};

static const struct caps_case caps_cases[] = {
	{ "none", "", { 0 } },
	{ "carteiro",
	  "PIPELINING\nSIZE 10485760\nENHANCEDSTATUSCODES\n8BITMIME\nDSN\nSMTPUTF8\nCHUNKING",
	  { .pipelining = true, .size = true, .size_max = 10485760, .eightbitmime = true,
	    .smtputf8 = true, .dsn = true, .enhancedstatuscodes = true, .chunking = true } },
	{ "lower_case", "pipelining\nsize\nstarttls",
	  { .pipelining = true, .size = true, .starttls = true } },
	{ "size_bad", "SIZE 12x", { .size = true } },
	{ "size_huge", "SIZE 99999999999999999999999", { .size = true } },
	{ "auth", "AUTH LOGIN PLAIN CRAM-MD5",
	  { .auth = true, .auth_mechs = SMTPC_AUTH_PLAIN | SMTPC_AUTH_LOGIN } },
	{ "auth_cram_only", "AUTH CRAM-MD5 XOAUTH2", { .auth = true } },
	{ "auth_old_form", "AUTH=PLAIN LOGIN",
	  { .auth = true, .auth_mechs = SMTPC_AUTH_PLAIN | SMTPC_AUTH_LOGIN } },
	{ "auth_old_form_login", "AUTH=LOGIN", { .auth = true, .auth_mechs = SMTPC_AUTH_LOGIN } },
	{ "unknown_and_prefixes", "PIPELININGX\nXSIZE 5\nSTARTTLSX\nX-EXPS GSSAPI", { 0 } },
};

TEST(caps_table)
{
	for (size_t i = 0; i < sizeof(caps_cases) / sizeof(caps_cases[0]); i++) {
		const struct caps_case *tc = &caps_cases[i];
		struct smtpc_caps c;
		const char *s = tc->lines;

		smtpc_caps_reset(&c);
		while (*s) {
			const char *nl = strchr(s, '\n');
			size_t n = nl ? (size_t)(nl - s) : strlen(s);
			smtpc_caps_line(&c, (struct slice){ s, n });
			s += n + (nl ? 1 : 0);
		}
		CHECK_MSG(memcmp(&c, &tc->want, sizeof(c)) == 0, "%s", tc->name);
	}
}

TEST(status_parse)
{
	static const struct {
		const char *s;
		bool ok;
		size_t len;
	} cases[] = {
		{ "2.0.0", true, 5 },      { "5.1.1 x", true, 5 },   { "4.123.123", true, 9 },
		{ "3.0.0", false, 0 },     { "5.1", false, 0 },      { "5..1", false, 0 },
		{ "5.1.", false, 0 },      { "5.1.1.1", false, 0 },  { "5.1234.1", false, 0 },
		{ "x.1.1", false, 0 },     { "", false, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = 0;
		bool ok = smtpc_status_parse(slice_from_cstr(cases[i].s), &len);
		CHECK_MSG(ok == cases[i].ok, "%s", cases[i].s);
		if (ok)
			CHECK_MSG(len == cases[i].len, "%s: len %zu", cases[i].s, len);
	}
}

UNIT_MAIN()
