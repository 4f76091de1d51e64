/*
 * Unit tests for pop3d/pop3_command.c: the resumable line reader (limits,
 * line ends, any split of the input) and the command parser (table-driven).
 */
#include "pop3d/pop3_command.h"

#include "unit.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Feed text in pieces of `step` octets; record each status and line as "S:line|". */
static void feed_all(const char *text, size_t len, size_t step, size_t max, char *out,
		     size_t outlen)
{
	struct pop3_reader r;
	size_t o = 0, pos = 0;

	pop3_reader_init(&r, max);
	out[0] = '\0';
	while (pos < len) {
		size_t n = len - pos < step ? len - pos : step, used;
		enum pop3_line_status st = pop3_reader_feed(&r, text + pos, n, &used);
		CHECK(used <= n && (used == n || st != POP3_LINE_MORE));
		pos += used;
		if (st == POP3_LINE_MORE)
			continue;
		o += (size_t)snprintf(out + o, outlen - o, "%d:%.*s|", (int)st,
				      st == POP3_LINE_OK ? (int)r.len : 0, r.line);
	}
}

TEST(reader_lines_any_split)
{
	static const struct {
		const char *in;
		size_t max;
		const char *want;
	} cases[] = {
		{ "USER a\r\nPASS b c\r\n", 512, "1:USER a|1:PASS b c|" },
		{ "\r\n", 512, "1:|" },
		{ "NOOP\n", 512, "3:|" },
		{ "NO\0OP\r\nNOOP\r\n", 512, "4:|1:NOOP|" },
		{ "partial", 512, "" },
		/* max counts the CRLF: 6 octets of text and CRLF fit in 8. */
		{ "123456\r\n1234567\r\nok\r\n", 8, "1:123456|2:|1:ok|" },
		{ "1234567890123\nab\r\n", 8, "2:|1:ab|" },
		{ "a\rb\r\n", 512, "1:a\rb|" },
	};
	char got[256];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		size_t len = strlen(cases[i].in);
		if (i == 3)
			len = 13; /* the NUL case */
		for (size_t step = 1; step <= len; step++) {
			feed_all(cases[i].in, len, step, cases[i].max, got, sizeof got);
			CHECK_MSG(strcmp(got, cases[i].want) == 0, "case %zu step %zu: got '%s'", i,
				  step, got);
		}
	}
}

TEST(reader_reset_forgets_partial_line)
{
	struct pop3_reader r;
	size_t used;

	pop3_reader_init(&r, 512);
	CHECK_INT(pop3_reader_feed(&r, "PASS secr", 9, &used), POP3_LINE_MORE);
	pop3_reader_reset(&r);
	CHECK_INT(r.len, 0);
	CHECK(r.line[0] == '\0');
	CHECK_INT(pop3_reader_feed(&r, "QUIT\r\n", 6, &used), POP3_LINE_OK);
	CHECK_INT(r.len, 4);
	CHECK(memcmp(r.line, "QUIT", 4) == 0);
}

TEST(parse_table)
{
	static const struct {
		const char *line;
		int result;
		enum pop3_verb verb;
		unsigned nargs;
		uint64_t n0, n1;
		const char *a0, *a1;
	} cases[] = {
		{ "QUIT", POP3_CMD_OK, POP3_VERB_QUIT, 0, 0, 0, NULL, NULL },
		{ "quit", POP3_CMD_OK, POP3_VERB_QUIT, 0, 0, 0, NULL, NULL },
		{ "QUIT ", POP3_CMD_ERR_ARGS, POP3_VERB_QUIT, 0, 0, 0, NULL, NULL },
		{ "QUIT x", POP3_CMD_ERR_ARGS, POP3_VERB_QUIT, 0, 0, 0, NULL, NULL },
		{ "STAT", POP3_CMD_OK, POP3_VERB_STAT, 0, 0, 0, NULL, NULL },
		{ "LIST", POP3_CMD_OK, POP3_VERB_LIST, 0, 0, 0, NULL, NULL },
		{ "LIST 12", POP3_CMD_OK, POP3_VERB_LIST, 1, 12, 0, "12", NULL },
		{ "LIST 1 2", POP3_CMD_ERR_ARGS, POP3_VERB_LIST, 0, 0, 0, NULL, NULL },
		{ "LIST  1", POP3_CMD_ERR_ARGS, POP3_VERB_LIST, 0, 0, 0, NULL, NULL },
		{ "LIST x", POP3_CMD_ERR_NUMBER, POP3_VERB_LIST, 0, 0, 0, NULL, NULL },
		{ "RETR", POP3_CMD_ERR_ARGS, POP3_VERB_RETR, 0, 0, 0, NULL, NULL },
		{ "RETR 1", POP3_CMD_OK, POP3_VERB_RETR, 1, 1, 0, "1", NULL },
		{ "RETR +1", POP3_CMD_ERR_NUMBER, POP3_VERB_RETR, 0, 0, 0, NULL, NULL },
		{ "RETR -1", POP3_CMD_ERR_NUMBER, POP3_VERB_RETR, 0, 0, 0, NULL, NULL },
		{ "RETR 4294967295", POP3_CMD_OK, POP3_VERB_RETR, 1, 4294967295u, 0, "4294967295",
		  NULL },
		{ "RETR 4294967296", POP3_CMD_ERR_NUMBER, POP3_VERB_RETR, 0, 0, 0, NULL, NULL },
		{ "DELE 3", POP3_CMD_OK, POP3_VERB_DELE, 1, 3, 0, "3", NULL },
		{ "TOP 1 0", POP3_CMD_OK, POP3_VERB_TOP, 2, 1, 0, "1", "0" },
		{ "TOP 1", POP3_CMD_ERR_ARGS, POP3_VERB_TOP, 0, 0, 0, NULL, NULL },
		{ "TOP 1 a", POP3_CMD_ERR_NUMBER, POP3_VERB_TOP, 0, 0, 0, NULL, NULL },
		{ "UIDL", POP3_CMD_OK, POP3_VERB_UIDL, 0, 0, 0, NULL, NULL },
		{ "Uidl 7", POP3_CMD_OK, POP3_VERB_UIDL, 1, 7, 0, "7", NULL },
		{ "USER demo@example.test", POP3_CMD_OK, POP3_VERB_USER, 1, 0, 0,
		  "demo@example.test", NULL },
		{ "USER", POP3_CMD_ERR_ARGS, POP3_VERB_USER, 0, 0, 0, NULL, NULL },
		{ "USER a b", POP3_CMD_ERR_ARGS, POP3_VERB_USER, 0, 0, 0, NULL, NULL },
		{ "PASS two words ", POP3_CMD_OK, POP3_VERB_PASS, 1, 0, 0, "two words ", NULL },
		{ "PASS  lead", POP3_CMD_OK, POP3_VERB_PASS, 1, 0, 0, " lead", NULL },
		{ "PASS", POP3_CMD_ERR_ARGS, POP3_VERB_PASS, 0, 0, 0, NULL, NULL },
		{ "PASS ", POP3_CMD_ERR_ARGS, POP3_VERB_PASS, 0, 0, 0, NULL, NULL },
		{ "AUTH", POP3_CMD_OK, POP3_VERB_AUTH, 0, 0, 0, NULL, NULL },
		{ "AUTH PLAIN", POP3_CMD_OK, POP3_VERB_AUTH, 1, 0, 0, "PLAIN", NULL },
		{ "AUTH PLAIN AGRlbW8AZGVtbw==", POP3_CMD_OK, POP3_VERB_AUTH, 2, 0, 0, "PLAIN",
		  "AGRlbW8AZGVtbw==" },
		{ "AUTH PLAIN a b", POP3_CMD_ERR_ARGS, POP3_VERB_AUTH, 0, 0, 0, NULL, NULL },
		{ "CAPA", POP3_CMD_OK, POP3_VERB_CAPA, 0, 0, 0, NULL, NULL },
		{ "STLS", POP3_CMD_OK, POP3_VERB_STLS, 0, 0, 0, NULL, NULL },
		{ "RSET", POP3_CMD_OK, POP3_VERB_RSET, 0, 0, 0, NULL, NULL },
		{ "NOOP", POP3_CMD_OK, POP3_VERB_NOOP, 0, 0, 0, NULL, NULL },
		{ "APOP a b", POP3_CMD_ERR_UNKNOWN, POP3_VERB_UNKNOWN, 0, 0, 0, NULL, NULL },
		{ "", POP3_CMD_ERR_UNKNOWN, POP3_VERB_UNKNOWN, 0, 0, 0, NULL, NULL },
		{ " QUIT", POP3_CMD_ERR_UNKNOWN, POP3_VERB_UNKNOWN, 0, 0, 0, NULL, NULL },
		{ "QUITX", POP3_CMD_ERR_UNKNOWN, POP3_VERB_UNKNOWN, 0, 0, 0, NULL, NULL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct pop3_command c;
		int r = pop3_command_parse(slice_from_cstr(cases[i].line), &c);
		CHECK_MSG(r == cases[i].result, "'%s': %d", cases[i].line, r);
		CHECK_MSG(c.verb == cases[i].verb, "'%s': verb %d", cases[i].line, (int)c.verb);
		if (r != POP3_CMD_OK)
			continue;
		CHECK_MSG(c.nargs == cases[i].nargs, "'%s': nargs %u", cases[i].line, c.nargs);
		CHECK(c.num[0] == cases[i].n0 && c.num[1] == cases[i].n1);
		if (cases[i].a0)
			CHECK(slice_eq(c.arg[0], slice_from_cstr(cases[i].a0)));
		if (cases[i].a1)
			CHECK(slice_eq(c.arg[1], slice_from_cstr(cases[i].a1)));
	}
}

TEST(parse_lengths)
{
	char line[POP3_LINE_ABS_MAX];
	struct pop3_command c;

	/* 510 octets and CRLF: the longest ordinary command. */
	memset(line, 'x', sizeof line);
	memcpy(line, "NOOP ", 5);
	CHECK_INT(pop3_command_parse((struct slice){ line, 510 }, &c), POP3_CMD_ERR_ARGS);
	CHECK_INT(pop3_command_parse((struct slice){ line, 511 }, &c), POP3_CMD_ERR_TOO_LONG);
	memcpy(line, "XXXX ", 5);
	CHECK_INT(pop3_command_parse((struct slice){ line, 510 }, &c), POP3_CMD_ERR_UNKNOWN);
	CHECK_INT(pop3_command_parse((struct slice){ line, 511 }, &c), POP3_CMD_ERR_TOO_LONG);
	/* An argument of POP3_ARG_MAX octets, and one more. */
	memcpy(line, "USER ", 5);
	CHECK_INT(pop3_command_parse((struct slice){ line, 5 + POP3_ARG_MAX }, &c), POP3_CMD_OK);
	CHECK_INT(pop3_command_parse((struct slice){ line, 6 + POP3_ARG_MAX }, &c),
		  POP3_CMD_ERR_TOO_LONG);
	/* AUTH's initial response may fill a SASL line. */
	memcpy(line, "AUTH PLAIN ", 11);
	CHECK_INT(pop3_command_parse((struct slice){ line, POP3_LINE_ABS_MAX - 2 }, &c),
		  POP3_CMD_OK);
	CHECK_INT(pop3_command_parse((struct slice){ line, POP3_LINE_ABS_MAX - 1 }, &c),
		  POP3_CMD_ERR_TOO_LONG);
	CHECK(strcmp(pop3_verb_name(POP3_VERB_TOP), "TOP") == 0);
	CHECK(strcmp(pop3_verb_name(POP3_VERB_UNKNOWN), "") == 0);
}

UNIT_MAIN()
