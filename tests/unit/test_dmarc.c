/*
 * Unit tests of policy/dmarc.c: the record parser (RFC 7489 6.3, 6.4, 6.6.3
 * step 6), the From parser (RFC 5322 3.4 and the examples of its appendix A,
 * obsolete forms, groups, folding, known spoofing shapes), alignment tables
 * (strict and relaxed, subdomains, example.co.uk), policy discovery over a
 * fake resolver (the shared fake_dns.h behind a probe: record at the From
 * domain, fallback to the organizational domain, none, several records,
 * TEMPFAIL, sp= against p=, pct sampling, cancellation, out of memory),
 * actions and the Authentication-Results fragment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_dns.h"
#include "policy/dmarc.h"
#include "unit.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static struct psl *test_psl(void)
{
	static struct psl *psl;
	char err[256];

	if (!psl) {
		psl = psl_load(PSL_DEFAULT_PATH, err, sizeof err);
		if (!psl) {
			fprintf(stderr, "cannot load %s: %s\n", PSL_DEFAULT_PATH, err);
			exit(1);
		}
	}
	return psl;
}

/* ==== records ================================================================================= */

TEST(record_parse_table)
{
	static const struct {
		const char *txt;
		int r;
		bool usable;
		enum dmarc_policy p, sp;
		bool adkim_s, aspf_s;
		unsigned pct;
		bool has_problem;
	} cases[] = {
		{ "v=DMARC1; p=reject", 0, true, DMARC_POLICY_REJECT, 0, false, false, 100, false },
		{ "v=DMARC1;p=none;", 0, true, DMARC_POLICY_NONE, 0, false, false, 100, false },
		{ " v = DMARC1 ;\tp = quarantine ; ", 0, true, DMARC_POLICY_QUARANTINE, 0, false,
		  false, 100, false },
		{ "V=DMARC1; P=REJECT; SP=None; ADKIM=S; ASPF=s; PCT=5", 0, true,
		  DMARC_POLICY_REJECT, DMARC_POLICY_NONE, true, true, 5, false },
		/* Not DMARC records: discarded by record selection. */
		{ "", -EINVAL, false, 0, 0, false, false, 0, false },
		{ ";", -EINVAL, false, 0, 0, false, false, 0, false },
		{ "v=spf1 -all", -EINVAL, false, 0, 0, false, false, 0, false },
		{ "p=reject; v=DMARC1", -EINVAL, false, 0, 0, false, false, 0, false },
		{ "v=dmarc1; p=reject", -EINVAL, false, 0, 0, false, false, 0, false },
		{ "v=DMARC10; p=reject", -EINVAL, false, 0, 0, false, false, 0, false },
		{ "v=DMARC1x", -EINVAL, false, 0, 0, false, false, 0, false },
		{ "v DMARC1; p=reject", -EINVAL, false, 0, 0, false, false, 0, false },
		{ "; v=DMARC1; p=reject", -EINVAL, false, 0, 0, false, false, 0, false },
		/* DMARC records that cannot be applied (6.6.3 step 6). */
		{ "v=DMARC1", 0, false, DMARC_POLICY_UNSET, 0, false, false, 100, true },
		{ "v=DMARC1; p=bogus", 0, false, DMARC_POLICY_UNSET, 0, false, false, 100, true },
		{ "v=DMARC1; p=reject; sp=bogus", 0, false, DMARC_POLICY_REJECT, DMARC_POLICY_UNSET,
		  false, false, 100, true },
		{ "v=DMARC1; rua=notauri", 0, false, DMARC_POLICY_UNSET, 0, false, false, 100, true },
		/* ... unless a valid rua makes it p=none. */
		{ "v=DMARC1; rua=mailto:d@example.com", 0, true, DMARC_POLICY_NONE, 0, false, false,
		  100, true },
		{ "v=DMARC1; p=reject; sp=bogus; rua=mailto:d@example.com", 0, true,
		  DMARC_POLICY_NONE, DMARC_POLICY_UNSET, false, false, 100, true },
		/* Invalid values of the other tags: their defaults. */
		{ "v=DMARC1; p=reject; pct=101", 0, true, DMARC_POLICY_REJECT, 0, false, false, 100,
		  true },
		{ "v=DMARC1; p=reject; pct=-1", 0, true, DMARC_POLICY_REJECT, 0, false, false, 100,
		  true },
		{ "v=DMARC1; p=reject; pct=abc", 0, true, DMARC_POLICY_REJECT, 0, false, false, 100,
		  true },
		{ "v=DMARC1; p=reject; pct=0", 0, true, DMARC_POLICY_REJECT, 0, false, false, 0,
		  false },
		{ "v=DMARC1; p=reject; pct=007", 0, true, DMARC_POLICY_REJECT, 0, false, false, 7,
		  false },
		{ "v=DMARC1; p=reject; adkim=x; aspf=strict", 0, true, DMARC_POLICY_REJECT, 0,
		  false, false, 100, true },
		/* A repeated tag keeps its first value. */
		{ "v=DMARC1; p=reject; p=none", 0, true, DMARC_POLICY_REJECT, 0, false, false, 100,
		  true },
		/* Unknown tags and a tag without '=' are ignored. */
		{ "v=DMARC1; p=quarantine; np=reject; t=y; x", 0, true, DMARC_POLICY_QUARANTINE, 0,
		  false, false, 100, true },
		{ "v=DMARC1; p=quarantine; foo=bar", 0, true, DMARC_POLICY_QUARANTINE, 0, false,
		  false, 100, false },
	};
	struct dmarc_record rec;

	for (size_t i = 0; i < LEN(cases); i++) {
		int r = dmarc_record_parse(slice_from_cstr(cases[i].txt), &rec);
		CHECK_MSG(r == cases[i].r, "'%s': %d", cases[i].txt, r);
		if (r < 0 || cases[i].r < 0)
			continue;
		CHECK_MSG(rec.usable == cases[i].usable, "'%s': usable %d", cases[i].txt,
			  rec.usable);
		CHECK_MSG(rec.p == cases[i].p, "'%s': p %d", cases[i].txt, rec.p);
		CHECK_MSG(rec.sp == cases[i].sp, "'%s': sp %d", cases[i].txt, rec.sp);
		CHECK_MSG(rec.adkim_strict == cases[i].adkim_s && rec.aspf_strict == cases[i].aspf_s,
			  "'%s': alignment modes", cases[i].txt);
		CHECK_MSG(rec.pct == cases[i].pct, "'%s': pct %u", cases[i].txt, rec.pct);
		CHECK_MSG((rec.problem[0] != '\0') == cases[i].has_problem, "'%s': problem '%s'",
			  cases[i].txt, rec.problem);
	}
}

TEST(record_all_tags)
{
	static const char txt[] = "v=DMARC1; p=quarantine; sp=reject; adkim=s; aspf=r; pct=25; "
				  "fo=1:d : s; rf=afrf; ri=3600; "
				  "rua=mailto:a@example.com , mailto:b@example.net!10m; "
				  "ruf=mailto:f@example.com!5, https://x.example/%2c";
	struct dmarc_record rec;

	CHECK_INT(dmarc_record_parse(slice_from_cstr(txt), &rec), 0);
	CHECK(rec.usable && !rec.p_from_rua);
	CHECK_INT(rec.p, DMARC_POLICY_QUARANTINE);
	CHECK_INT(rec.sp, DMARC_POLICY_REJECT);
	CHECK(rec.adkim_strict && !rec.aspf_strict);
	CHECK_INT(rec.pct, 25);
	CHECK_INT(rec.fo, DMARC_FO_1 | DMARC_FO_D | DMARC_FO_S);
	CHECK(rec.rf_afrf);
	CHECK_INT(rec.ri, 3600);
	CHECK_INT(rec.nrua, 2);
	CHECK_INT(rec.nruf, 2);
	CHECK_STR(rec.rua, "mailto:a@example.com , mailto:b@example.net!10m");
	CHECK_STR(rec.problem, "");

	/* Defaults. */
	CHECK_INT(dmarc_record_parse(slice_from_cstr("v=DMARC1; p=none"), &rec), 0);
	CHECK_INT(rec.fo, DMARC_FO_0);
	CHECK(rec.rf_afrf);
	CHECK_INT(rec.ri, 86400);
	CHECK_INT(rec.nrua + rec.nruf, 0);
	CHECK_STR(rec.rua, "");

	/* Bad fo, rf, ri keep their defaults; bad URIs are not counted. */
	CHECK_INT(dmarc_record_parse(slice_from_cstr("v=DMARC1; p=none; fo=2; rf=iodef; "
						     "ri=4294967296; rua=mailto:a@x!10x, "
						     "nocolon, :x, mailto:, mailto:a%zz, "
						     "mailto:a,b; ruf=mailto:a@x!"), &rec), 0);
	CHECK_INT(rec.fo, DMARC_FO_0);
	CHECK(!rec.rf_afrf); /* rf=iodef is well-formed: only afrf is missing from it */
	CHECK_INT(rec.ri, 86400);
	CHECK_INT(rec.nrua, 1); /* "b" is not a URI, "mailto:a" is */
	CHECK_INT(rec.nruf, 0);
	CHECK_STR(rec.problem, "invalid fo value, default used");

	/* A NUL inside a value makes it invalid, and is not copied into the text. */
	static const char nul[] = "v=DMARC1; p=reject\0; rua=mailto:a@x\0";
	CHECK_INT(dmarc_record_parse((struct slice){ nul, sizeof nul - 1 }, &rec), 0);
	CHECK_INT(rec.p, DMARC_POLICY_UNSET);
	CHECK(!rec.usable);
	CHECK_INT(rec.nrua, 0);
	CHECK_STR(rec.rua, "mailto:a@x?");
}

/* ==== From ==================================================================================== */

static enum dmarc_from_status from_one(struct slice v, struct dmarc_from *f)
{
	dmarc_from_init(f);
	dmarc_from_add(f, v);
	return dmarc_from_result(f);
}

TEST(from_parse_table)
{
	static const struct {
		const char *value;
		enum dmarc_from_status st;
		const char *domain;
	} cases[] = {
		{ "user@example.com", DMARC_FROM_OK, "example.com" },
		{ "User Name <user@Example.COM>", DMARC_FROM_OK, "example.com" },
		{ "\"Doe, John\" <john@example.com>", DMARC_FROM_OK, "example.com" },
		{ "<user@example.com>", DMARC_FROM_OK, "example.com" },
		{ "\"quoted@at\"@example.com", DMARC_FROM_OK, "example.com" },
		{ "\"a\\\"b\\\\c\" <x@example.com>", DMARC_FROM_OK, "example.com" },
		/* RFC 5322 appendix A. */
		{ "John Doe <jdoe@machine.example>", DMARC_FROM_OK, "machine.example" },
		{ "\"Joe Q. Public\" <john.q.public@example.com>", DMARC_FROM_OK, "example.com" },
		{ "Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
		  DMARC_FROM_MULTIPLE_DOMAINS, "x.test" },
		{ "<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
		  DMARC_FROM_MULTIPLE_DOMAINS, "nil.test" },
		{ "\"Giant; \\\"Big\\\" Box\" <sysservices@example.net>", DMARC_FROM_OK,
		  "example.net" },
		{ "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", DMARC_FROM_OK,
		  "silly.test" },
		{ "A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
		  "         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of "
		  "the group)",
		  DMARC_FROM_MULTIPLE_DOMAINS, "public.example" },
		/* Obsolete forms (RFC 5322 4.1, 4.4, A.6). */
		{ "Joe Q. Public <john.q.public@example.com>", DMARC_FROM_OK, "example.com" },
		{ "John Doe <jdoe@machine(comment).  example>", DMARC_FROM_OK, "machine.example" },
		{ "(c) user (d (nested) e) . (f) x @ (g) example.com (h)", DMARC_FROM_OK,
		  "example.com" },
		{ "<@route.example,@other.example:user@example.com>", DMARC_FROM_OK, "example.com" },
		{ "Name <,@route.example,,@b.example:user@example.com>", DMARC_FROM_OK,
		  "example.com" },
		{ ", , user@example.com, ,", DMARC_FROM_OK, "example.com" },
		/* Groups (RFC 6854). */
		{ "Undisclosed recipients:;", DMARC_FROM_EMPTY, "" },
		{ "friends: a@x.example, B <b@X.example>;", DMARC_FROM_OK, "x.example" },
		{ "friends: a@x.example;, c@y.example", DMARC_FROM_MULTIPLE_DOMAINS, "x.example" },
		{ "g1: a@x.example, g2: b@x.example;;", DMARC_FROM_SYNTAX, NULL },
		{ "friends: a@x.example", DMARC_FROM_SYNTAX, NULL },
		{ ": a@x.example;", DMARC_FROM_SYNTAX, NULL },
		/* Several mailboxes of one domain are that domain. */
		{ "x@example.com, Y <y@EXAMPLE.com>", DMARC_FROM_OK, "example.com" },
		{ "x@example.com, y@sub.example.com", DMARC_FROM_MULTIPLE_DOMAINS, "example.com" },
		/* Folding; a final CRLF. */
		{ "Name\r\n <user@example.com>", DMARC_FROM_OK, "example.com" },
		{ "user@example.com\r\n", DMARC_FROM_OK, "example.com" },
		{ "Name\r\n<user@example.com>", DMARC_FROM_SYNTAX, NULL },
		{ "Name\n <user@example.com>", DMARC_FROM_SYNTAX, NULL },
		{ "Name\r <user@example.com>", DMARC_FROM_SYNTAX, NULL },
		/* UTF-8 (RFC 6532): the domain in A-labels. */
		{ "J\xc3\xbcrgen <j@b\xc3\xbc" "cher.example>", DMARC_FROM_OK,
		  "xn--bcher-kva.example" },
		{ "j@B\xc3\xbc" "cher.Example", DMARC_FROM_OK, "xn--bcher-kva.example" },
		{ "j@b\xc3" "cher.example", DMARC_FROM_NO_DOMAIN, "" },
		/* Domains DMARC cannot look up. */
		{ "user@[192.0.2.1]", DMARC_FROM_NO_DOMAIN, "" },
		{ "user@exa_mple.com", DMARC_FROM_NO_DOMAIN, "" },
		{ "user@-bad.example", DMARC_FROM_NO_DOMAIN, "" },
		{ "a@[192.0.2.1], b@example.com", DMARC_FROM_NO_DOMAIN, "example.com" },
		/* Not addresses. */
		{ "", DMARC_FROM_EMPTY, "" },
		{ " \t ", DMARC_FROM_EMPTY, "" },
		{ "(just a comment)", DMARC_FROM_EMPTY, "" },
		{ "user", DMARC_FROM_SYNTAX, NULL },
		{ "Some Name", DMARC_FROM_SYNTAX, NULL },
		{ "<>", DMARC_FROM_SYNTAX, NULL },
		{ "@example.com", DMARC_FROM_SYNTAX, NULL },
		{ "user@", DMARC_FROM_SYNTAX, NULL },
		{ "user@example.com.", DMARC_FROM_SYNTAX, NULL },
		{ "user@.example.com", DMARC_FROM_SYNTAX, NULL },
		{ "a..b@example.com", DMARC_FROM_SYNTAX, NULL },
		{ ".a@example.com", DMARC_FROM_SYNTAX, NULL },
		{ "a.@example.com", DMARC_FROM_SYNTAX, NULL },
		{ "a b@example.com", DMARC_FROM_SYNTAX, NULL },
		{ ". Name <a@example.com>", DMARC_FROM_SYNTAX, NULL },
		{ "<user@example.com", DMARC_FROM_SYNTAX, NULL },
		{ "user@example.com>", DMARC_FROM_SYNTAX, NULL },
		{ "<<user@example.com>>", DMARC_FROM_SYNTAX, NULL },
		{ "<,user@example.com>", DMARC_FROM_SYNTAX, NULL },
		{ "<@route.example:>", DMARC_FROM_SYNTAX, NULL },
		{ "<@route.example user@example.com>", DMARC_FROM_SYNTAX, NULL },
		{ "\"unterminated@example.com", DMARC_FROM_SYNTAX, NULL },
		{ "(unterminated user@example.com", DMARC_FROM_SYNTAX, NULL },
		{ "user@example.com)", DMARC_FROM_SYNTAX, NULL },
		{ "user@[192.0.2.1", DMARC_FROM_SYNTAX, NULL },
		{ "user@[1[2]", DMARC_FROM_SYNTAX, NULL },
		{ "us\\er@example.com", DMARC_FROM_SYNTAX, NULL },
		{ "user@exa\x01mple.com", DMARC_FROM_SYNTAX, NULL },
		/* Spoofing shapes: the domain is the one after the '@' of the address, or none. */
		{ "\"admin@bank.example\" <x@evil.example>", DMARC_FROM_OK, "evil.example" },
		{ "admin@bank.example <x@evil.example>", DMARC_FROM_SYNTAX, NULL },
		{ "<x@evil.example> admin@bank.example", DMARC_FROM_SYNTAX, NULL },
		{ "<x@evil.example>(, y@bank.example)", DMARC_FROM_OK, "evil.example" },
		{ "=?utf-8?B?YWRtaW5AYmFuay5leGFtcGxl?= <x@evil.example>", DMARC_FROM_OK,
		  "evil.example" },
		{ "admin@bank.example@evil.example", DMARC_FROM_SYNTAX, NULL },
		{ "<@bank.example:x@evil.example>", DMARC_FROM_OK, "evil.example" },
		{ "\"x@bank.example\"@evil.example", DMARC_FROM_OK, "evil.example" },
	};
	struct dmarc_from f;

	for (size_t i = 0; i < LEN(cases); i++) {
		enum dmarc_from_status st = from_one(slice_from_cstr(cases[i].value), &f);
		CHECK_MSG(st == cases[i].st, "'%s': %s, expected %s", cases[i].value,
			  dmarc_from_status_name(st), dmarc_from_status_name(cases[i].st));
		if (cases[i].domain)
			CHECK_MSG(strcmp(f.domain, cases[i].domain) == 0, "'%s': domain '%s'",
				  cases[i].value, f.domain);
		CHECK_INT(f.nfields, 1);
	}
}

TEST(from_nul_and_limits)
{
	static const char nul_domain[] = "user@exa\0mple.com";
	static const char nul_end[] = "user@example.com\0";
	static const char nul_quoted[] = "\"a\0b\"@example.com";
	static const char nul_comment[] = "user@example.com (a\0b)";
	char big[DMARC_FROM_VALUE_MAX + 64];
	struct dmarc_from f;
	size_t n;

	CHECK_INT(from_one((struct slice){ nul_domain, sizeof nul_domain - 1 }, &f),
		  DMARC_FROM_SYNTAX);
	CHECK_INT(from_one((struct slice){ nul_end, sizeof nul_end - 1 }, &f), DMARC_FROM_SYNTAX);
	CHECK_INT(from_one((struct slice){ nul_quoted, sizeof nul_quoted - 1 }, &f),
		  DMARC_FROM_SYNTAX);
	CHECK_INT(from_one((struct slice){ nul_comment, sizeof nul_comment - 1 }, &f),
		  DMARC_FROM_SYNTAX);

	/* Comments nest DMARC_COMMENT_DEPTH_MAX deep, no deeper. */
	for (int depth = DMARC_COMMENT_DEPTH_MAX; depth <= DMARC_COMMENT_DEPTH_MAX + 1; depth++) {
		n = 0;
		for (int i = 0; i < depth; i++)
			big[n++] = '(';
		for (int i = 0; i < depth; i++)
			big[n++] = ')';
		memcpy(big + n, "a@example.com", 13);
		n += 13;
		CHECK_INT(from_one((struct slice){ big, n }, &f),
			  depth <= DMARC_COMMENT_DEPTH_MAX ? DMARC_FROM_OK : DMARC_FROM_SYNTAX);
	}
	/* A huge field of comments: refused past the limit, parsed below it. */
	memset(big, ' ', sizeof big);
	memcpy(big, "a@example.com", 13);
	CHECK_INT(from_one((struct slice){ big, DMARC_FROM_VALUE_MAX }, &f), DMARC_FROM_OK);
	CHECK_INT(from_one((struct slice){ big, DMARC_FROM_VALUE_MAX + 1 }, &f), DMARC_FROM_SYNTAX);
	/* A domain longer than DNS allows. */
	n = 0;
	memcpy(big, "a@", 2);
	n = 2;
	for (int i = 0; i < 5; i++) {
		memset(big + n, 'x', 60);
		n += 60;
		big[n++] = '.';
	}
	memcpy(big + n, "com", 3);
	n += 3;
	CHECK_INT(from_one((struct slice){ big, n }, &f), DMARC_FROM_NO_DOMAIN);
	/* Raw domains that fill the parser's buffer to the byte: a dot then more (a fuzzer
	 * found the buffer overrun this once caused), and the longest one that fits. */
	for (size_t fill = 4 * DMARC_DOMAIN_MAX - 3; fill <= 4 * DMARC_DOMAIN_MAX; fill++) {
		memcpy(big, "a@", 2);
		memset(big + 2, 'x', fill);
		memcpy(big + 2 + fill, ".b.c", 4);
		CHECK_INT(from_one((struct slice){ big, 2 + fill + 4 }, &f), DMARC_FROM_SYNTAX);
	}
	memset(big + 2, 'x', 4 * DMARC_DOMAIN_MAX - 1);
	CHECK_INT(from_one((struct slice){ big, 2 + 4 * DMARC_DOMAIN_MAX - 1 }, &f),
		  DMARC_FROM_NO_DOMAIN);
	/* Very many mailboxes of one domain are still one domain. */
	n = 0;
	while (n + 20 < DMARC_FROM_VALUE_MAX) {
		memcpy(big + n, "a@example.com, ", 15);
		n += 15;
	}
	CHECK_INT(from_one((struct slice){ big, n }, &f), DMARC_FROM_OK);
	CHECK(f.nmailboxes > 1000);
}

TEST(from_several_fields)
{
	struct dmarc_from f;

	dmarc_from_init(&f);
	CHECK_INT(dmarc_from_result(&f), DMARC_FROM_MISSING);
	CHECK_INT(dmarc_from_add(&f, slice_from_cstr("a@example.com")), 0);
	CHECK_INT(dmarc_from_result(&f), DMARC_FROM_OK);
	CHECK_INT(dmarc_from_add(&f, slice_from_cstr("a@example.com")), 0);
	CHECK_INT(dmarc_from_result(&f), DMARC_FROM_MULTIPLE_FIELDS);
	CHECK_INT(f.nfields, 2);

	dmarc_from_init(&f);
	CHECK_INT(dmarc_from_add(&f, slice_from_cstr("a@@example.com")), -EINVAL);
	CHECK_INT(dmarc_from_result(&f), DMARC_FROM_SYNTAX);
}

TEST(from_field_names)
{
	static const struct {
		const char *field;
		bool from;
		const char *value;
	} cases[] = {
		{ "From: a@example.com", true, " a@example.com" },
		{ "from:a@example.com", true, "a@example.com" },
		{ "FROM \t: a@example.com", true, " a@example.com" },
		{ "From:", true, "" },
		{ "Fromage: x", false, NULL },
		{ "Sender: a@example.com", false, NULL },
		{ "From", false, NULL },
		{ "Fro: x", false, NULL },
		{ " From: x", false, NULL },
		{ "From x: y", false, NULL },
		{ "Resent-From: a@example.com", false, NULL },
	};
	struct slice v;

	for (size_t i = 0; i < LEN(cases); i++) {
		bool is = dmarc_from_field(slice_from_cstr(cases[i].field), &v);
		CHECK_MSG(is == cases[i].from, "'%s'", cases[i].field);
		if (is && cases[i].value)
			CHECK_MSG(v.len == strlen(cases[i].value) &&
					  memcmp(v.ptr, cases[i].value, v.len) == 0,
				  "'%s': value", cases[i].field);
	}
}

/* ==== alignment =============================================================================== */

TEST(alignment_table)
{
	static const struct {
		const char *from, *other;
		bool strict, relaxed;
	} cases[] = {
		{ "example.com", "example.com", true, true },
		{ "example.com", "EXAMPLE.COM", true, true },
		{ "mail.example.com", "example.com", false, true },
		{ "example.com", "mail.example.com", false, true },
		{ "a.example.com", "b.example.com", false, true },
		{ "example.com", "example.net", false, false },
		{ "example.com", "notexample.com", false, false },
		{ "example.com", "com", false, false },
		{ "example.co.uk", "mail.example.co.uk", false, true },
		{ "example.co.uk", "other.co.uk", false, false },
		{ "example.co.uk", "co.uk", false, false },
		{ "bank.co.uk", "evil.co.uk", false, false },
		{ "alice.blogspot.com", "mallory.blogspot.com", false, false },
		{ "x.alice.blogspot.com", "alice.blogspot.com", false, true },
		{ "xn--bcher-kva.example", "b\xc3\xbc" "cher.example", true, true },
		{ "example.com", "", false, false },
		{ "example.com", "example.com.", false, false },
		{ "example.com", "exa mple.com", false, false },
	};
	struct psl *psl = test_psl();

	for (size_t i = 0; i < LEN(cases); i++) {
		CHECK_MSG(dmarc_aligned(psl, cases[i].from, cases[i].other, true) == cases[i].strict,
			  "strict %s %s", cases[i].from, cases[i].other);
		CHECK_MSG(dmarc_aligned(psl, cases[i].from, cases[i].other, false) ==
				  cases[i].relaxed,
			  "relaxed %s %s", cases[i].from, cases[i].other);
	}
	CHECK(!dmarc_aligned(psl, "example.com", NULL, false));
	CHECK(!dmarc_aligned(psl, NULL, "example.com", false));
}

/* ==== discovery over a fake resolver ========================================================== */

struct zone {
	const char *name;
	enum dns_status status;
	const char *txt[4];
};

/*
 * The shared fake resolver (fake_dns.h) behind a probe that records the names
 * asked, can fail a lookup as out of memory, and can stop the event loop when
 * the second lookup is asked (to cancel a check in the middle).
 */
struct fake {
	struct event_base *base;
	struct fake_dns dns;
	char asked[4][300];
	size_t nasked;
	int fail_after; /* lookups that succeed before one returns NULL; -1: never */
	bool break_on_second;
};

static struct dns_req *probe_lookup(void *ctx, const char *name, enum dns_type type,
				    dns_result_fn *fn, void *arg)
{
	struct fake *f = ctx;

	CHECK_INT(type, DNS_T_TXT);
	if (f->fail_after == 0)
		return NULL;
	if (f->fail_after > 0)
		f->fail_after--;
	if (f->nasked < LEN(f->asked))
		snprintf(f->asked[f->nasked], sizeof f->asked[0], "%s", name);
	if (++f->nasked == 2 && f->break_on_second)
		event_base_loopbreak(f->base);
	return fake_dns_lookup(&f->dns, name, type, fn, arg);
}

static void probe_cancel(void *ctx, struct dns_req *req)
{
	struct fake *f = ctx;
	fake_dns_cancel(&f->dns, req);
}

/* A fresh fake serving zones: NODATA is a name with an A record only, TEMPFAIL a timeout. */
static void fake_open(struct fake *f, const struct zone *zones, size_t nzones)
{
	memset(f, 0, sizeof *f);
	f->fail_after = -1;
	f->base = event_base_new();
	if (!f->base)
		abort();
	fake_dns_init(&f->dns, f->base);
	for (size_t i = 0; i < nzones; i++) {
		const struct zone *z = &zones[i];
		if (z->status == DNS_NODATA)
			CHECK(fake_dns_addr(&f->dns, z->name, "192.0.2.1"));
		else if (z->status == DNS_TEMPFAIL)
			fake_dns_timeout(&f->dns, z->name, FAKE_T_TIMEOUT);
		for (size_t k = 0; k < LEN(z->txt) && z->txt[k]; k++)
			fake_dns_txt(&f->dns, z->name, DNS_T_TXT, z->txt[k], strlen(z->txt[k]));
	}
}

/* Free the fake's resolver and loop; what it recorded stays readable. */
static void fake_close(struct fake *f)
{
	CHECK_INT(f->dns.pending, 0);
	fake_dns_clear(&f->dns);
	event_base_free(f->base);
	f->base = NULL;
}

static struct dns_resolver fake_resolver(struct fake *f)
{
	return (struct dns_resolver){ probe_lookup, probe_cancel, f };
}

struct done {
	int calls;
	struct dmarc_outcome o;
};

static void on_done(void *arg, const struct dmarc_outcome *o)
{
	struct done *d = arg;
	d->calls++;
	d->o = *o;
}

/* Run one check to its end: the outcome in d (d->calls says how many callbacks ran). */
static void run_check(const struct zone *zones, size_t nzones, const struct dmarc_input *in,
		      struct fake *f, struct done *d)
{
	struct dns_resolver r;
	struct dmarc_check *c;

	fake_open(f, zones, nzones);
	r = fake_resolver(f);
	memset(d, 0, sizeof *d);
	c = dmarc_check_start(&r, test_psl(), in, on_done, d);
	CHECK(c != NULL);
	/* Never inside the call. */
	CHECK_INT(d->calls, 0);
	event_base_dispatch(f->base);
	CHECK_INT(d->calls, 1);
	fake_close(f);
}

static const struct zone zones[] = {
	{ "_dmarc.example.com", DNS_OK, { "v=spf1 -all", "v=DMARC1; p=reject; sp=quarantine" } },
	{ "_dmarc.nosp.example", DNS_OK, { "v=DMARC1; p=reject" } },
	{ "_dmarc.nodata.example.com", DNS_NODATA, { 0 } },
	{ "_dmarc.twice.example", DNS_OK, { "v=DMARC1; p=reject", "v=DMARC1; p=none" } },
	{ "_dmarc.a.twice.example", DNS_NXDOMAIN, { 0 } },
	{ "_dmarc.tempfail.example", DNS_TEMPFAIL, { 0 } },
	{ "_dmarc.sub.orgfail.example", DNS_NXDOMAIN, { 0 } },
	{ "_dmarc.orgfail.example", DNS_TEMPFAIL, { 0 } },
	{ "_dmarc.example.co.uk", DNS_OK, { "v=DMARC1; p=quarantine; adkim=s; aspf=s" } },
	{ "_dmarc.pct0.example", DNS_OK, { "v=DMARC1; p=reject; pct=0" } },
	{ "_dmarc.pct0q.example", DNS_OK, { "v=DMARC1; p=quarantine; pct=0" } },
	{ "_dmarc.pct50.example", DNS_OK, { "v=DMARC1; p=reject; pct=50" } },
	{ "_dmarc.norua.example", DNS_OK, { "v=DMARC1; p=bogus" } },
	{ "_dmarc.rua.example", DNS_OK, { "v=DMARC1; p=bogus; rua=mailto:d@rua.example" } },
	{ "_dmarc.none.example", DNS_OK, { "v=DMARC1; p=none" } },
	{ "_dmarc.onlyother.example", DNS_OK, { "some other text", "v=DMARC1 p=reject" } },
	{ "_dmarc.org.pubsub.example", DNS_OK, { "v=DMARC1; p=none; sp=reject" } },
};

TEST(discovery_record_at_from_domain)
{
	struct dmarc_input in = { .from_domain = "Example.COM" };
	struct fake f;
	struct done d;

	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(f.nasked, 1);
	CHECK_STR(f.asked[0], "_dmarc.example.com");
	CHECK_INT(d.o.result, DMARC_RESULT_FAIL);
	CHECK_INT(d.o.p, DMARC_POLICY_REJECT);
	CHECK_INT(d.o.sp, DMARC_POLICY_QUARANTINE);
	/* The From domain is the record's own: p, not sp. */
	CHECK_INT(d.o.policy, DMARC_POLICY_REJECT);
	CHECK_INT(d.o.disposition, DMARC_POLICY_REJECT);
	CHECK(d.o.sampled);
	CHECK_STR(d.o.from_domain, "example.com");
	CHECK_STR(d.o.org_domain, "example.com");
	CHECK_STR(d.o.record_domain, "example.com");
	CHECK(!d.o.spf_aligned && !d.o.dkim_aligned);
}

TEST(discovery_falls_back_to_org_domain_sp)
{
	struct dmarc_input in = { .from_domain = "nodata.example.com" };
	struct fake f;
	struct done d;

	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(f.nasked, 2);
	CHECK_STR(f.asked[0], "_dmarc.nodata.example.com");
	CHECK_STR(f.asked[1], "_dmarc.example.com");
	CHECK_INT(d.o.result, DMARC_RESULT_FAIL);
	/* A subdomain under the organizational domain's record: sp applies. */
	CHECK_INT(d.o.policy, DMARC_POLICY_QUARANTINE);
	CHECK_INT(d.o.disposition, DMARC_POLICY_QUARANTINE);
	CHECK_STR(d.o.record_domain, "example.com");
	CHECK_STR(d.o.org_domain, "example.com");

	/* NXDOMAIN at a deeper name falls back the same way; without sp, p applies. */
	in.from_domain = "a.b.nosp.example";
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(f.nasked, 2);
	CHECK_STR(f.asked[1], "_dmarc.nosp.example");
	CHECK_INT(d.o.policy, DMARC_POLICY_REJECT);
	CHECK_INT(d.o.sp, DMARC_POLICY_UNSET);
}

TEST(discovery_none)
{
	struct dmarc_input in = { .from_domain = "mail.unknown.example", .spf_pass = true,
				  .spf_domain = "unknown.example" };
	struct fake f;
	struct done d;

	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(f.nasked, 2);
	CHECK_STR(f.asked[1], "_dmarc.unknown.example");
	CHECK_INT(d.o.result, DMARC_RESULT_NONE);
	CHECK_INT(d.o.policy, DMARC_POLICY_UNSET);
	CHECK_INT(d.o.disposition, DMARC_POLICY_UNSET);
	CHECK_STR(d.o.record_domain, "");
	CHECK(d.o.problem[0] != '\0');
	CHECK(d.o.spf_aligned); /* relaxed, informative */

	/* The organizational domain itself: one lookup, no fallback. */
	in.from_domain = "unknown.example";
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(f.nasked, 1);
	CHECK_INT(d.o.result, DMARC_RESULT_NONE);

	/* A public suffix as From domain is its own organizational domain. */
	in.from_domain = "co.uk";
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(f.nasked, 1);
	CHECK_STR(d.o.org_domain, "co.uk");
	CHECK_INT(d.o.result, DMARC_RESULT_NONE);

	/* TXT records that are not DMARC records ("v=DMARC1 p=reject" lacks its ';') are none. */
	in.from_domain = "onlyother.example";
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(d.o.result, DMARC_RESULT_NONE);
}

TEST(discovery_several_records_permerror)
{
	struct dmarc_input in = { .from_domain = "twice.example" };
	struct fake f;
	struct done d;

	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(d.o.result, DMARC_RESULT_PERMERROR);
	CHECK_INT(d.o.disposition, DMARC_POLICY_UNSET);
	CHECK(strstr(d.o.problem, "2 DMARC records") != NULL);
	/* Found through the fallback: the same. */
	in.from_domain = "a.twice.example";
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(f.nasked, 2);
	CHECK_INT(d.o.result, DMARC_RESULT_PERMERROR);
}

TEST(discovery_tempfail_temperror)
{
	struct dmarc_input in = { .from_domain = "tempfail.example" };
	struct fake f;
	struct done d;

	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(f.nasked, 1);
	CHECK_INT(d.o.result, DMARC_RESULT_TEMPERROR);
	CHECK(strstr(d.o.problem, "temporary DNS failure for _dmarc.tempfail.example") != NULL);
	/* At the From domain a temporary failure does not fall back (a record may be there). */
	in.from_domain = "x.tempfail.example";
	const struct zone z[] = { { "_dmarc.x.tempfail.example", DNS_TEMPFAIL, { 0 } },
				  { "_dmarc.tempfail.example", DNS_OK, { "v=DMARC1; p=none" } } };
	run_check(z, LEN(z), &in, &f, &d);
	CHECK_INT(f.nasked, 1);
	CHECK_INT(d.o.result, DMARC_RESULT_TEMPERROR);
	/* At the organizational domain. */
	in.from_domain = "sub.orgfail.example";
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(f.nasked, 2);
	CHECK_INT(d.o.result, DMARC_RESULT_TEMPERROR);
}

TEST(discovery_unusable_records)
{
	struct dmarc_input in = { .from_domain = "norua.example" };
	struct fake f;
	struct done d;

	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(d.o.result, DMARC_RESULT_PERMERROR);
	CHECK_INT(d.o.disposition, DMARC_POLICY_UNSET);
	CHECK_STR(d.o.record_domain, "norua.example");
	CHECK(strstr(d.o.problem, "invalid p value") != NULL);

	in.from_domain = "rua.example";
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(d.o.result, DMARC_RESULT_FAIL);
	CHECK_INT(d.o.policy, DMARC_POLICY_NONE);
	CHECK_INT(d.o.disposition, DMARC_POLICY_NONE);
}

TEST(evaluation_alignment)
{
	static const struct {
		const char *from;
		bool spf_pass;
		const char *spf_domain;
		const char *dkim[2];
		enum dmarc_result result;
		bool spf_aligned, dkim_aligned;
	} cases[] = {
		/* example.com: relaxed. */
		{ "example.com", true, "example.com", { 0 }, DMARC_RESULT_PASS, true, false },
		{ "example.com", true, "bounce.example.com", { 0 }, DMARC_RESULT_PASS, true, false },
		{ "example.com", false, "example.com", { 0 }, DMARC_RESULT_FAIL, false, false },
		{ "example.com", true, "example.net", { 0 }, DMARC_RESULT_FAIL, false, false },
		{ "example.com", false, NULL, { "example.com" }, DMARC_RESULT_PASS, false, true },
		{ "example.com", false, NULL, { "mail.example.com" }, DMARC_RESULT_PASS, false, true },
		{ "example.com", false, NULL, { "evil.example", "s.example.com" }, DMARC_RESULT_PASS,
		  false, true },
		{ "example.com", false, NULL, { "evil.example" }, DMARC_RESULT_FAIL, false, false },
		{ "example.com", true, "example.com", { "example.com" }, DMARC_RESULT_PASS, true,
		  true },
		/* example.co.uk: adkim=s, aspf=s. */
		{ "example.co.uk", true, "example.co.uk", { 0 }, DMARC_RESULT_PASS, true, false },
		{ "example.co.uk", true, "mail.example.co.uk", { 0 }, DMARC_RESULT_FAIL, false,
		  false },
		{ "example.co.uk", false, NULL, { "EXAMPLE.co.uk" }, DMARC_RESULT_PASS, false, true },
		{ "example.co.uk", false, NULL, { "mail.example.co.uk" }, DMARC_RESULT_FAIL, false,
		  false },
		{ "sub.example.co.uk", false, NULL, { "example.co.uk" }, DMARC_RESULT_FAIL, false,
		  false },
		{ "example.co.uk", false, NULL, { "other.co.uk" }, DMARC_RESULT_FAIL, false, false },
	};
	struct fake f;
	struct done d;

	for (size_t i = 0; i < LEN(cases); i++) {
		struct dmarc_input in = { .from_domain = cases[i].from, .spf_pass = cases[i].spf_pass,
					  .spf_domain = cases[i].spf_domain,
					  .dkim_domains = cases[i].dkim,
					  .ndkim = cases[i].dkim[1] ? 2 : cases[i].dkim[0] ? 1 : 0 };
		run_check(zones, LEN(zones), &in, &f, &d);
		CHECK_MSG(d.o.result == cases[i].result && d.o.spf_aligned == cases[i].spf_aligned &&
				  d.o.dkim_aligned == cases[i].dkim_aligned,
			  "case %zu (%s): %s spf=%d dkim=%d", i, cases[i].from,
			  dmarc_result_name(d.o.result), d.o.spf_aligned, d.o.dkim_aligned);
		if (d.o.result == DMARC_RESULT_PASS)
			CHECK_INT(d.o.disposition, DMARC_POLICY_NONE);
	}
}

TEST(evaluation_pct_sampling)
{
	struct dmarc_input in = { .from_domain = "pct0.example", .fixed_draw = true, .draw = 0 };
	struct fake f;
	struct done d;

	/* pct=0: never sampled; reject becomes quarantine, quarantine becomes none (6.6.4). */
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(d.o.result, DMARC_RESULT_FAIL);
	CHECK_INT(d.o.policy, DMARC_POLICY_REJECT);
	CHECK(!d.o.sampled);
	CHECK_INT(d.o.disposition, DMARC_POLICY_QUARANTINE);
	in.from_domain = "pct0q.example";
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(d.o.disposition, DMARC_POLICY_NONE);
	/* pct=50: draws 0..49 are sampled, 50..99 are not. */
	in.from_domain = "pct50.example";
	in.draw = 49;
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK(d.o.sampled);
	CHECK_INT(d.o.disposition, DMARC_POLICY_REJECT);
	CHECK_INT(d.o.pct, 50);
	in.draw = 50;
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK(!d.o.sampled);
	CHECK_INT(d.o.disposition, DMARC_POLICY_QUARANTINE);
	/* pct=100 with the largest draw. */
	in.from_domain = "nosp.example";
	in.draw = 99;
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(d.o.disposition, DMARC_POLICY_REJECT);
	/* A random draw with pct=50 gives both outcomes over many messages. */
	int sampled = 0;
	in.from_domain = "pct50.example";
	in.fixed_draw = false;
	for (int i = 0; i < 400; i++) {
		run_check(zones, LEN(zones), &in, &f, &d);
		sampled += d.o.sampled;
	}
	CHECK_MSG(sampled > 120 && sampled < 280, "sampled %d of 400", sampled);
}

TEST(evaluation_org_record_for_public_suffix_subdomain)
{
	/* org.pubsub.example: "pubsub.example" is not a listed suffix, so its org domain is
	 * pubsub.example and org.pubsub.example is a subdomain... of a name with no record. */
	struct dmarc_input in = { .from_domain = "x.org.pubsub.example" };
	struct fake f;
	struct done d;

	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_STR(d.o.org_domain, "pubsub.example");
	CHECK_INT(f.nasked, 2);
	CHECK_STR(f.asked[1], "_dmarc.pubsub.example");
	CHECK_INT(d.o.result, DMARC_RESULT_NONE);
	/* Its own record: p, not sp. */
	in.from_domain = "org.pubsub.example";
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(f.nasked, 1);
	CHECK_INT(d.o.policy, DMARC_POLICY_NONE);
	CHECK_INT(d.o.sp, DMARC_POLICY_REJECT);
}

TEST(check_cancel_and_errors)
{
	struct fake f;
	struct dns_resolver r;
	struct dmarc_input in = { .from_domain = "nodata.example.com" };
	struct done d = { 0 };
	struct dmarc_check *c;

	fake_open(&f, zones, LEN(zones));
	r = fake_resolver(&f);
	/* Cancelled before the first answer. */
	c = dmarc_check_start(&r, test_psl(), &in, on_done, &d);
	CHECK(c != NULL);
	dmarc_check_cancel(c);
	CHECK_INT(f.dns.cancelled, 1);
	event_base_dispatch(f.base);
	CHECK_INT(d.calls, 0);

	/* Cancelled while the fallback lookup is in flight. */
	f.break_on_second = true;
	f.nasked = 0;
	c = dmarc_check_start(&r, test_psl(), &in, on_done, &d);
	event_base_dispatch(f.base);
	CHECK_INT(f.nasked, 2);
	CHECK_INT(d.calls, 0);
	CHECK_INT(f.dns.pending, 1);
	dmarc_check_cancel(c);
	CHECK_INT(f.dns.cancelled, 2);
	CHECK_INT(f.dns.pending, 0);
	event_base_dispatch(f.base);
	CHECK_INT(d.calls, 0);
	f.break_on_second = false;

	/* The caller's deadline during the fallback: temperror, and no callback later. */
	f.break_on_second = true;
	f.nasked = 0;
	c = dmarc_check_start(&r, test_psl(), &in, on_done, &d);
	event_base_dispatch(f.base);
	struct dmarc_outcome o;
	dmarc_check_timeout(c, &o);
	CHECK_INT(f.dns.cancelled, 3);
	CHECK_INT(o.result, DMARC_RESULT_TEMPERROR);
	CHECK_INT(o.disposition, DMARC_POLICY_UNSET);
	CHECK_STR(o.from_domain, "nodata.example.com");
	CHECK_STR(o.org_domain, "example.com");
	CHECK_STR(o.problem, "no answer in time for _dmarc.example.com");
	char ar[100];
	CHECK_INT(dmarc_auth_results(&o, ar, sizeof ar), 0);
	CHECK_STR(ar, "dmarc=temperror header.from=nodata.example.com");
	event_base_dispatch(f.base);
	CHECK_INT(d.calls, 0);
	f.break_on_second = false;

	/* Out of memory at the first lookup: NULL and no callback. */
	f.fail_after = 0;
	errno = 0;
	CHECK(dmarc_check_start(&r, test_psl(), &in, on_done, &d) == NULL);
	CHECK_INT(errno, ENOMEM);
	/* ... at the fallback: temperror, once. */
	f.fail_after = 1;
	c = dmarc_check_start(&r, test_psl(), &in, on_done, &d);
	CHECK(c != NULL);
	event_base_dispatch(f.base);
	CHECK_INT(d.calls, 1);
	CHECK_INT(d.o.result, DMARC_RESULT_TEMPERROR);
	f.fail_after = -1;

	/* Not a domain: NULL, EINVAL, nothing asked. */
	static const char *const bad[] = { NULL, "", "exa mple.com", "example.com.", ".com",
					   "b\xc3\xbc" "cher.example", "[192.0.2.1]" };
	size_t before = f.nasked;
	for (size_t i = 0; i < LEN(bad); i++) {
		in.from_domain = bad[i];
		errno = 0;
		CHECK(dmarc_check_start(&r, test_psl(), &in, on_done, &d) == NULL);
		CHECK_INT(errno, EINVAL);
	}
	CHECK_INT(f.nasked, before);
	CHECK_INT(d.calls, 1);
	fake_close(&f);
}

/* ==== actions and Authentication-Results ===================================================== */

TEST(actions)
{
	static const struct {
		enum dmarc_result result;
		enum dmarc_policy disposition;
		enum dmarc_action reject, quarantine, tag;
	} cases[] = {
		{ DMARC_RESULT_FAIL, DMARC_POLICY_REJECT, DMARC_ACTION_REJECT,
		  DMARC_ACTION_QUARANTINE, DMARC_ACTION_ACCEPT },
		{ DMARC_RESULT_FAIL, DMARC_POLICY_QUARANTINE, DMARC_ACTION_QUARANTINE,
		  DMARC_ACTION_QUARANTINE, DMARC_ACTION_QUARANTINE },
		{ DMARC_RESULT_FAIL, DMARC_POLICY_NONE, DMARC_ACTION_ACCEPT, DMARC_ACTION_ACCEPT,
		  DMARC_ACTION_ACCEPT },
		{ DMARC_RESULT_PASS, DMARC_POLICY_NONE, DMARC_ACTION_ACCEPT, DMARC_ACTION_ACCEPT,
		  DMARC_ACTION_ACCEPT },
		{ DMARC_RESULT_NONE, DMARC_POLICY_UNSET, DMARC_ACTION_ACCEPT, DMARC_ACTION_ACCEPT,
		  DMARC_ACTION_ACCEPT },
		{ DMARC_RESULT_TEMPERROR, DMARC_POLICY_UNSET, DMARC_ACTION_ACCEPT,
		  DMARC_ACTION_ACCEPT, DMARC_ACTION_ACCEPT },
		/* A disposition is only acted on for fail. */
		{ DMARC_RESULT_PERMERROR, DMARC_POLICY_REJECT, DMARC_ACTION_ACCEPT,
		  DMARC_ACTION_ACCEPT, DMARC_ACTION_ACCEPT },
	};

	for (size_t i = 0; i < LEN(cases); i++) {
		struct dmarc_outcome o = { .result = cases[i].result,
					   .disposition = cases[i].disposition };
		CHECK_INT(dmarc_action(&o, DMARC_REJECT_POLICY_REJECT), cases[i].reject);
		CHECK_INT(dmarc_action(&o, DMARC_REJECT_POLICY_QUARANTINE), cases[i].quarantine);
		CHECK_INT(dmarc_action(&o, DMARC_REJECT_POLICY_TAG), cases[i].tag);
	}
}

TEST(auth_results_fragment)
{
	struct dmarc_input in = { .from_domain = "example.com" };
	struct dmarc_outcome o;
	struct fake f;
	struct done d;
	char out[200];

	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(dmarc_auth_results(&d.o, out, sizeof out), 0);
	CHECK_STR(out, "dmarc=fail (p=reject dis=reject) header.from=example.com");

	in.from_domain = "nodata.example.com";
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(dmarc_auth_results(&d.o, out, sizeof out), 0);
	CHECK_STR(out, "dmarc=fail (p=reject sp=quarantine dis=quarantine) "
		       "header.from=nodata.example.com");

	const char *dkim[] = { "example.com" };
	in = (struct dmarc_input){ .from_domain = "example.com", .dkim_domains = dkim, .ndkim = 1 };
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(dmarc_auth_results(&d.o, out, sizeof out), 0);
	CHECK_STR(out, "dmarc=pass (p=reject dis=none) header.from=example.com");

	in = (struct dmarc_input){ .from_domain = "pct0.example", .fixed_draw = true };
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(dmarc_auth_results(&d.o, out, sizeof out), 0);
	CHECK_STR(out, "dmarc=fail (p=reject dis=quarantine) header.from=pct0.example");

	in = (struct dmarc_input){ .from_domain = "unknown.example" };
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(dmarc_auth_results(&d.o, out, sizeof out), 0);
	CHECK_STR(out, "dmarc=none header.from=unknown.example");

	in = (struct dmarc_input){ .from_domain = "tempfail.example" };
	run_check(zones, LEN(zones), &in, &f, &d);
	CHECK_INT(dmarc_auth_results(&d.o, out, sizeof out), 0);
	CHECK_STR(out, "dmarc=temperror header.from=tempfail.example");

	dmarc_outcome_undetermined(&o, DMARC_FROM_MULTIPLE_DOMAINS);
	CHECK_INT(o.result, DMARC_RESULT_PERMERROR);
	CHECK_STR(o.problem, "From addresses of several domains");
	CHECK_INT(dmarc_action(&o, DMARC_REJECT_POLICY_REJECT), DMARC_ACTION_ACCEPT);
	CHECK_INT(dmarc_auth_results(&o, out, sizeof out), 0);
	CHECK_STR(out, "dmarc=permerror");

	/* Too small: nothing half-written. */
	CHECK_INT(dmarc_auth_results(&d.o, out, 20), -ENOSPC);
	CHECK_STR(out, "");
	CHECK_INT(dmarc_auth_results(&d.o, out, 0), -ENOSPC);
}

UNIT_MAIN()
