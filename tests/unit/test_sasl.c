/*
 * Unit tests of the SASL decoder (src/mail/sasl.c): base64 (RFC 4648 4),
 * PLAIN (RFC 4616) and LOGIN exchanges, limits and errors, table-driven.
 */
#include <string.h>

#include "mail/sasl.h"
#include "unit.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static struct slice S(const char *s)
{
	return (struct slice){ s, strlen(s) };
}

struct b64_case {
	const char *in;
	int want;
	const char *out; /* decoded (no NUL inside in these rows) */
	size_t outlen;
};

TEST(base64)
{
	static const struct b64_case rows[] = {
		{ "", 0, "", 0 },
		{ "Zg==", 0, "f", 1 },
		{ "Zm8=", 0, "fo", 2 },
		{ "Zm9v", 0, "foo", 3 },
		{ "Zm9vYg==", 0, "foob", 4 },
		{ "Zm9vYmFy", 0, "foobar", 6 },
		{ "AGEAYg==", 0, "\0a\0b", 4 },
		{ "Zg", SASL_ERR_BASE64, NULL, 0 },      /* padding required */
		{ "Zg=", SASL_ERR_BASE64, NULL, 0 },
		{ "Zg==Zg==", SASL_ERR_BASE64, NULL, 0 }, /* padding only at the end */
		{ "Z===", SASL_ERR_BASE64, NULL, 0 },
		{ "Zh==", SASL_ERR_BASE64, NULL, 0 },     /* non-zero padding bits */
		{ "Zm9=", SASL_ERR_BASE64, NULL, 0 },
		{ "Zm 9", SASL_ERR_BASE64, NULL, 0 },     /* no whitespace */
		{ "Zm9v\r\n", SASL_ERR_BASE64, NULL, 0 },
		{ "Zm9-", SASL_ERR_BASE64, NULL, 0 },     /* base64url is not base64 */
		{ "====", SASL_ERR_BASE64, NULL, 0 },
		{ "+/+/", 0, "\xfb\xff\xbf", 3 },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		unsigned char out[64];
		size_t n = 99;
		int r = sasl_base64_decode(S(rows[i].in), out, sizeof out, &n);
		CHECK_MSG(r == rows[i].want, "row %zu: %d", i, r);
		if (r == 0 && rows[i].out)
			CHECK_MSG(n == rows[i].outlen && memcmp(out, rows[i].out, n) == 0, "row %zu", i);
	}
	unsigned char small[2];
	size_t n;
	CHECK_INT(sasl_base64_decode(S("Zm9v"), small, sizeof small, &n), SASL_ERR_TOO_LONG);
}

struct exchange_case {
	const char *mech;
	const char *initial;      /* NULL: none */
	const char *responses[3]; /* lines after the initial response */
	int want[4];              /* status after start, then after each response */
	const char *challenges[3];
	const char *authcid;
	const char *password;
};

TEST(exchanges)
{
	static const struct exchange_case rows[] = {
		/* PLAIN with an initial response: "\0user\0pass". */
		{ "PLAIN", "AHVzZXIAcGFzcw==", { NULL }, { SASL_DONE }, { NULL }, "user", "pass" },
		/* authzid equal to authcid is fine; "user\0user\0pass". */
		{ "plain", "dXNlcgB1c2VyAHBhc3M=", { NULL }, { SASL_DONE }, { NULL }, "user", "pass" },
		/* PLAIN without: an empty challenge first. */
		{ "PLAIN", NULL, { "AHVzZXIAcGFzcw==" }, { SASL_CONTINUE, SASL_DONE }, { "" }, "user",
		  "pass" },
		/* Another authzid: no proxy authorization. "admin\0user\0pass" */
		{ "PLAIN", "YWRtaW4AdXNlcgBwYXNz", { NULL }, { SASL_ERR_SYNTAX }, { NULL }, NULL, NULL },
		/* Missing parts: "user\0pass", "\0\0pass", "" (=). */
		{ "PLAIN", "dXNlcgBwYXNz", { NULL }, { SASL_ERR_SYNTAX }, { NULL }, NULL, NULL },
		{ "PLAIN", "AABwYXNz", { NULL }, { SASL_ERR_SYNTAX }, { NULL }, NULL, NULL },
		{ "PLAIN", "=", { NULL }, { SASL_ERR_SYNTAX }, { NULL }, NULL, NULL },
		/* A NUL inside the password: "\0user\0pa\0ss". */
		{ "PLAIN", "AHVzZXIAcGEAc3M=", { NULL }, { SASL_ERR_SYNTAX }, { NULL }, NULL, NULL },
		/* An empty password decodes (and simply fails the check later). */
		{ "PLAIN", "AHVzZXIA", { NULL }, { SASL_DONE }, { NULL }, "user", "" },
		{ "PLAIN", "AHVzZXIAcGFzcw", { NULL }, { SASL_ERR_BASE64 }, { NULL }, NULL, NULL },
		/* "=" is an empty response only as the initial one. */
		{ "PLAIN", NULL, { "=" }, { SASL_CONTINUE, SASL_ERR_BASE64 }, { "" }, NULL, NULL },
		/* LOGIN: Username:, Password:. */
		{ "LOGIN", NULL, { "dXNlcg==", "cGFzcw==" },
		  { SASL_CONTINUE, SASL_CONTINUE, SASL_DONE }, { "VXNlcm5hbWU6", "UGFzc3dvcmQ6" },
		  "user", "pass" },
		/* LOGIN with the user name as initial response. */
		{ "Login", "dXNlcg==", { "cGFzcw==" }, { SASL_CONTINUE, SASL_DONE },
		  { "UGFzc3dvcmQ6" }, "user", "pass" },
		/* LOGIN: an empty user name is refused, bad base64 too. */
		{ "LOGIN", NULL, { "" }, { SASL_CONTINUE, SASL_ERR_SYNTAX }, { "VXNlcm5hbWU6" }, NULL, NULL },
		{ "LOGIN", NULL, { "dXNlcg==", "cGFzcw" },
		  { SASL_CONTINUE, SASL_CONTINUE, SASL_ERR_BASE64 }, { NULL }, NULL, NULL },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		const struct exchange_case *c = &rows[i];
		struct sasl s;
		enum sasl_mech mech;

		memset(&s, 0x5a, sizeof s);
		CHECK_MSG(sasl_mech_parse(S(c->mech), &mech) == 0, "row %zu", i);
		int r = sasl_start(&s, mech, c->initial != NULL, S(c->initial ? c->initial : ""));
		CHECK_MSG(r == c->want[0], "row %zu start: %d", i, r);
		for (size_t k = 0; r == SASL_CONTINUE && k < 3; k++) {
			if (c->challenges[k])
				CHECK_MSG(s.challenge && strcmp(s.challenge, c->challenges[k]) == 0,
					  "row %zu challenge %zu: %s", i, k, s.challenge);
			if (!c->responses[k])
				break;
			r = sasl_step(&s, S(c->responses[k]));
			CHECK_MSG(r == c->want[k + 1], "row %zu step %zu: %d", i, k, r);
		}
		if (r == SASL_DONE) {
			CHECK_STR(s.authcid, c->authcid);
			CHECK_STR(s.password, c->password);
			/* Done: a further step is out of sequence. */
			CHECK_INT(sasl_step(&s, S("AA==")), SASL_ERR_STATE);
		}
		sasl_reset(&s);
		CHECK(s.password[0] == '\0' && s.authcid[0] == '\0');
	}
}

TEST(mechanisms)
{
	enum sasl_mech m;
	CHECK_INT(sasl_mech_parse(S("PLAIN"), &m), 0);
	CHECK_INT(m, SASL_PLAIN);
	CHECK_INT(sasl_mech_parse(S("login"), &m), 0);
	CHECK_INT(m, SASL_LOGIN);
	CHECK(sasl_mech_parse(S("CRAM-MD5"), &m) < 0);
	CHECK(sasl_mech_parse(S("PLAI"), &m) < 0);
	CHECK(sasl_mech_parse(S(""), &m) < 0);
	CHECK_STR(sasl_mech_name(SASL_LOGIN), "LOGIN");
}

/* Build base64 of n 'a' octets into out (n a multiple of 3). */
static void b64_of_as(char *out, size_t n)
{
	for (size_t i = 0; i < n / 3 * 4; i++)
		out[i] = "YWFh"[i % 4];
	out[n / 3 * 4] = '\0';
}

TEST(limits)
{
	static char line[SASL_LINE_MAX + 8], msg[SASL_LINE_MAX];
	struct sasl s;
	enum sasl_mech m = SASL_LOGIN;

	/* A user name of SASL_NAME_MAX octets is fine (318 + 2 = 320 is not a multiple of 3:
	 * use 318 and then 321). */
	b64_of_as(line, 318);
	CHECK_INT(sasl_start(&s, m, true, S(line)), SASL_CONTINUE);
	b64_of_as(line, 321);
	CHECK_INT(sasl_start(&s, m, true, S(line)), SASL_ERR_TOO_LONG);
	/* Passwords up to SASL_PASSWORD_MAX. */
	CHECK_INT(sasl_start(&s, m, true, S("dXNlcg==")), SASL_CONTINUE);
	b64_of_as(line, 1023);
	CHECK_INT(sasl_step(&s, S(line)), SASL_DONE);
	CHECK_INT(strlen(s.password), 1023);
	CHECK_INT(sasl_start(&s, m, true, S("dXNlcg==")), SASL_CONTINUE);
	b64_of_as(line, 1026);
	CHECK_INT(sasl_step(&s, S(line)), SASL_ERR_TOO_LONG);
	/* A response line longer than RFC 4954's 12288 octets. */
	CHECK_INT(sasl_start(&s, m, true, S("dXNlcg==")), SASL_CONTINUE);
	memset(msg, 'A', sizeof msg);
	memcpy(line, msg, sizeof msg);
	memcpy(line + sizeof msg, "AAAA", 4);
	CHECK_INT(sasl_step(&s, (struct slice){ line, SASL_LINE_MAX + 4 }), SASL_ERR_TOO_LONG);
	/* After an error, the exchange is over. */
	CHECK_INT(sasl_step(&s, S("cGFzcw==")), SASL_ERR_STATE);
	sasl_reset(&s);
}

UNIT_MAIN()
