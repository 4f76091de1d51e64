/*
 * Unit tests of SPF (RFC 7208): the record parser (table), the macro expander
 * with the examples of RFC 7208 7.4, target names, the asynchronous check
 * against the fake resolver (never synchronous, cancel, identities, limits),
 * and the Received-SPF / Authentication-Results texts. The whole openspf
 * suite runs in tests/scenario/test_spf_suite.py.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_dns.h"
#include "policy/spf.h"
#include "policy/spf_record.h"
#include "unit.h"
#include "util/str.h"

/* --- parser ----------------------------------------------------------------- */

static const struct {
	const char *record;
	bool ok;
	size_t nterms;
} parse_cases[] = {
	{ "v=spf1", true, 0 },
	{ "V=SpF1 -ALL", true, 1 },
	{ "v=spf1 ", true, 0 },
	{ "v=spf1  a   mx  -all ", true, 3 },
	{ "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all", true, 3 },
	{ "v=spf1 a/24//64 mx:example.com/0 -all", true, 3 },
	{ "v=spf1 a:foo:bar/baz.example.com", true, 1 },
	{ "v=spf1 include:_spf.example.com ?all", true, 2 },
	{ "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", true, 2 },
	{ "v=spf1 ptr ptr:example.com", true, 2 },
	{ "v=spf1 redirect=_spf.example.com", true, 0 },
	{ "v=spf1 -all exp=explain._spf.%{d}", true, 1 },
	{ "v=spf1 moo.cow-far_out=man:dog/cat -all", true, 1 },
	{ "v=spf1 default=+", true, 0 },
	{ "v=spf1 a:foo.example.xn--zckzah", true, 1 },
	{ "v=spf1 a:foo.example.com.", true, 1 },
	{ "v=spf10", false, 0 },
	{ "spf1 -all", false, 0 },
	{ "v=spf1 -all.", false, 0 },
	{ "v=spf1 -all:foo", false, 0 },
	{ "v=spf1 -all/8", false, 0 },
	{ "v=spf1 include", false, 0 },
	{ "v=spf1 include:", false, 0 },
	{ "v=spf1 include:foo.example.com/24", false, 0 },
	{ "v=spf1 exists", false, 0 },
	{ "v=spf1 ptr/0", false, 0 },
	{ "v=spf1 ptr:", false, 0 },
	{ "v=spf1 a:", false, 0 },
	{ "v=spf1 a/33", false, 0 },
	{ "v=spf1 a//129", false, 0 },
	{ "v=spf1 a/24/64", false, 0 },
	{ "v=spf1 a/024", false, 0 },
	{ "v=spf1 a:museum", false, 0 },
	{ "v=spf1 a:museum.", false, 0 },
	{ "v=spf1 a:111.222.33.44", false, 0 },
	{ "v=spf1 a:example.-com", false, 0 },
	{ "v=spf1 a:example.com:8080", false, 0 },
	{ "v=spf1 ip4", false, 0 },
	{ "v=spf1 ip4:1.2.3", false, 0 },
	{ "v=spf1 ip4:1.2.3.4:8080", false, 0 },
	{ "v=spf1 ip4:01.2.3.4", false, 0 },
	{ "v=spf1 ip4:1.2.3.4/33", false, 0 },
	{ "v=spf1 ip4:1.2.3.4/032", false, 0 },
	{ "v=spf1 ip4:1.2.3.4//32", false, 0 },
	{ "v=spf1 ip6::CAFE::BABE", false, 0 },
	{ "v=spf1 ip6:::1/129", false, 0 },
	{ "v=spf1 ip6:::1//64", false, 0 },
	{ "v=spf1 redirect:example.com", false, 0 },
	{ "v=spf1 redirect=", false, 0 },
	{ "v=spf1 redirect=-all", false, 0 },
	{ "v=spf1 redirect=a.example.com redirect=b.example.com", false, 0 },
	{ "v=spf1 exp=a.example.com exp=b.example.com", false, 0 },
	{ "v=spf1 exp=%{r}.example.com", false, 0 },
	{ "v=spf1 a:%{a}.example.com", false, 0 },
	{ "v=spf1 exists:%(ir).example.com", false, 0 },
	{ "v=spf1 exists:foo%.example.com", false, 0 },
	{ "v=spf1 exists:%{d0}.example.com", false, 0 },
	{ "v=spf1 1up=foo", false, 0 },
	{ "v=spf1 =all", false, 0 },
	{ "v=spf1 foo=%abc", false, 0 },
	{ "v=spf1 moo.cow/far_out=man:dog/cat", false, 0 },
	{ "v=spf1 a:ctrl.example.com\rptr -all", false, 0 },
	{ "v=spf1 ip4:192.0.2.5\n include:x.example.com", false, 0 },
	{ "v=spf1 \x80" "a -all", false, 0 },
	{ "v=spf1 a:\xef\xbb\xbfgarbage.example.net", false, 0 },
	{ "v=spf1 -all\tmx", false, 0 },
};

TEST(record_parse_table)
{
	for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
		struct spf_record r;
		int rc = spf_record_parse(slice_from_cstr(parse_cases[i].record), &r);
		CHECK_MSG((rc == 0) == parse_cases[i].ok, "\"%s\": rc %d (%s)",
			  parse_cases[i].record, rc, r.error);
		if (rc == 0) {
			CHECK_MSG(r.nterms == parse_cases[i].nterms, "\"%s\": %zu terms",
				  parse_cases[i].record, r.nterms);
		} else {
			CHECK(r.error[0] != '\0');
			CHECK(r.terms == NULL && r.nterms == 0);
		}
		spf_record_free(&r);
	}
}

TEST(record_parse_nul_is_an_error)
{
	static const char rec[] = "v=spf1 a:foo.example.com\0";
	struct spf_record r;

	CHECK_INT(spf_record_parse((struct slice){ rec, sizeof rec - 1 }, &r), -EINVAL);
	spf_record_free(&r);
}

TEST(record_parse_fields)
{
	static const char rec[] =
		"v=spf1 ~a:%{d}.example.com/24//64 mx ?ip4:192.0.2.129/25 ip6:2001:DB8::1/48 "
		"-include:_spf.example.net redirect=r.example.org exp=e.example.org x-y=%{h}";
	struct spf_record r;

	CHECK_INT(spf_record_parse(slice_from_cstr(rec), &r), 0);
	CHECK_INT(r.nterms, 5);
	if (r.nterms != 5)
		return;
	CHECK_INT(r.terms[0].mech, SPF_MECH_A);
	CHECK_INT(r.terms[0].qualifier, '~');
	CHECK(slice_eq(r.terms[0].domain, SLICE_LIT("%{d}.example.com")));
	CHECK_INT(r.terms[0].cidr4, 24);
	CHECK_INT(r.terms[0].cidr6, 64);
	CHECK(slice_eq(r.terms[0].text, SLICE_LIT("~a:%{d}.example.com/24//64")));
	CHECK_INT(r.terms[1].mech, SPF_MECH_MX);
	CHECK_INT(r.terms[1].qualifier, '+');
	CHECK_INT(r.terms[1].domain.len, 0);
	CHECK_INT(r.terms[1].cidr4, 32);
	CHECK_INT(r.terms[1].cidr6, 128);
	CHECK_INT(r.terms[2].mech, SPF_MECH_IP4);
	CHECK_INT(r.terms[2].net.prefix, 25);
	CHECK_INT(r.terms[2].net.addr[3], 128); /* host bits cleared */
	CHECK_INT(r.terms[3].mech, SPF_MECH_IP6);
	CHECK_INT(r.terms[3].net.prefix, 48);
	CHECK_INT(r.terms[3].net.addr[15], 0);
	CHECK_INT(r.terms[4].mech, SPF_MECH_INCLUDE);
	CHECK_INT(r.terms[4].qualifier, '-');
	CHECK(slice_eq(r.redirect, SLICE_LIT("r.example.org")));
	CHECK(slice_eq(r.exp, SLICE_LIT("e.example.org")));
	spf_record_free(&r);
}

TEST(record_parse_term_limit)
{
	static char rec[8 + 2 * (SPF_TERMS_MAX + 1)];
	struct spf_record r;

	strcpy(rec, "v=spf1");
	for (int i = 0; i < SPF_TERMS_MAX; i++)
		strcat(rec, " a");
	CHECK_INT(spf_record_parse(slice_from_cstr(rec), &r), 0);
	CHECK_INT(r.nterms, SPF_TERMS_MAX);
	spf_record_free(&r);
	strcat(rec, " a");
	CHECK_INT(spf_record_parse(slice_from_cstr(rec), &r), -EINVAL);
	CHECK(strstr(r.error, "terms") != NULL);
}

TEST(record_selection)
{
	CHECK(spf_record_is_spf(SLICE_LIT("v=spf1")));
	CHECK(spf_record_is_spf(SLICE_LIT("V=SPF1 -all")));
	CHECK(!spf_record_is_spf(SLICE_LIT("v=spf10")));
	CHECK(!spf_record_is_spf(SLICE_LIT("v=spf1-all")));
	CHECK(!spf_record_is_spf(SLICE_LIT(" v=spf1")));
	CHECK(!spf_record_is_spf(SLICE_LIT("v=spf")));
}

TEST(domain_spec_grammar)
{
	CHECK(spf_domain_spec_valid(SLICE_LIT("example.com")));
	CHECK(spf_domain_spec_valid(SLICE_LIT("example.com.")));
	CHECK(spf_domain_spec_valid(SLICE_LIT("%{d}")));
	CHECK(spf_domain_spec_valid(SLICE_LIT("foo.%{d2}")));
	CHECK(spf_domain_spec_valid(SLICE_LIT("a.1-2")));
	CHECK(!spf_domain_spec_valid(SLICE_LIT("")));
	CHECK(!spf_domain_spec_valid(SLICE_LIT("com")));
	CHECK(!spf_domain_spec_valid(SLICE_LIT("a.123")));
	CHECK(!spf_domain_spec_valid(SLICE_LIT("a.com-")));
	CHECK(!spf_domain_spec_valid(SLICE_LIT("%{d}com")));
	CHECK(!spf_domain_spec_valid(SLICE_LIT("a.b%{d.}com")));
	CHECK(!spf_domain_spec_valid(SLICE_LIT("%{d}.")));
}

/* --- macros (RFC 7208 7.4) -------------------------------------------------- */

static void ctx_7_4(struct spf_macro_ctx *ctx, const char *ip)
{
	struct sockaddr_storage ss = { 0 };

	memset(ctx, 0, sizeof *ctx);
	ctx->sender = "strong-bad@email.example.com";
	ctx->local = "strong-bad";
	ctx->sender_domain = "email.example.com";
	ctx->domain = "email.example.com";
	ctx->helo = "mx.example.org";
	ctx->validated = "mx.example.org";
	ctx->receiver = "receiver.example";
	ctx->now = 1234567890;
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
	} else {
		ss.ss_family = AF_INET6;
		CHECK(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1);
	}
	CHECK_INT(spf_macro_set_ip(ctx, (struct sockaddr *)&ss), 0);
}

static const char *expand(const struct spf_macro_ctx *ctx, const char *s, unsigned flags,
			  int *rc)
{
	static struct buf b;

	buf_free(&b);
	buf_init(&b, SPF_EXPAND_MAX);
	*rc = spf_macro_expand(slice_from_cstr(s), ctx, flags, &b);
	return buf_cstr(&b);
}

TEST(macro_rfc7208_examples)
{
	static const struct {
		const char *in, *out;
	} v4[] = {
		{ "%{s}", "strong-bad@email.example.com" },
		{ "%{o}", "email.example.com" },
		{ "%{d}", "email.example.com" },
		{ "%{d4}", "email.example.com" },
		{ "%{d3}", "email.example.com" },
		{ "%{d2}", "example.com" },
		{ "%{d1}", "com" },
		{ "%{dr}", "com.example.email" },
		{ "%{d2r}", "example.email" },
		{ "%{l}", "strong-bad" },
		{ "%{l-}", "strong.bad" },
		{ "%{lr}", "strong-bad" },
		{ "%{lr-}", "bad.strong" },
		{ "%{l1r-}", "strong" },
		{ "%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com" },
		{ "%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com" },
		{ "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net" },
	};
	struct spf_macro_ctx ctx;
	int rc;

	ctx_7_4(&ctx, "192.0.2.3");
	for (size_t i = 0; i < sizeof v4 / sizeof v4[0]; i++) {
		const char *got = expand(&ctx, v4[i].in, 0, &rc);
		CHECK_INT(rc, 0);
		CHECK_STR(got, v4[i].out);
	}
	ctx_7_4(&ctx, "2001:db8::cb01");
	CHECK_STR(expand(&ctx, "%{ir}.%{v}._spf.%{d2}", 0, &rc),
		  "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
	CHECK_INT(rc, 0);
}

TEST(macro_escapes_letters_and_errors)
{
	struct spf_macro_ctx ctx;
	int rc;

	ctx_7_4(&ctx, "192.0.2.3");
	ctx.local = "~jack&jill=up-a_b3.c";
	CHECK_STR(expand(&ctx, "%{L}", 0, &rc), "~jack%26jill%3Dup-a_b3.c");
	CHECK_STR(expand(&ctx, "a%%b%_c%-d", 0, &rc), "a%b c%20d");
	CHECK_STR(expand(&ctx, "%{p}.%{h}", 0, &rc), "mx.example.org.mx.example.org");
	CHECK_STR(expand(&ctx, "%{c} %{r} %{t}", SPF_MACRO_EXP, &rc),
		  "192.0.2.3 receiver.example 1234567890");
	CHECK_INT(rc, 0);
	ctx.local = "foo-bar+zip+quux";
	CHECK_STR(expand(&ctx, "%{l2r+-}", 0, &rc), "bar.foo");
	CHECK_STR(expand(&ctx, "%{d100}", 0, &rc), "email.example.com");
	ctx.validated = NULL;
	CHECK_STR(expand(&ctx, "%{p}", 0, &rc), "unknown");

	static const char *const bad[] = { "%", "%{", "%{d", "%{a}", "%{d0}", "%(d)", "%x",
					   "%{dx}", "a b", "%{c}", "%{r}", "%{t}" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		expand(&ctx, bad[i], 0, &rc);
		CHECK_MSG(rc == -EINVAL, "\"%s\": %d", bad[i], rc);
		CHECK_INT(spf_macro_check(slice_from_cstr(bad[i]), 0), -EINVAL);
	}
	CHECK_INT(spf_macro_check(SLICE_LIT("The %{c} host, %{r} at %{t}"), SPF_MACRO_EXP), 0);
	CHECK_INT(spf_macro_check(SLICE_LIT("caf\xc3\xa9"), SPF_MACRO_EXP), -EINVAL);
	CHECK(spf_macro_uses(SLICE_LIT("a.%{P2r}.b"), 'p'));
	CHECK(!spf_macro_uses(SLICE_LIT("a.%%{p}.b"), 'p'));
}

TEST(macro_ip_forms)
{
	struct spf_macro_ctx ctx;
	int rc;

	ctx_7_4(&ctx, "::ffff:192.0.2.3"); /* IPv4-mapped is IPv4 */
	CHECK(!ctx.ipv6);
	CHECK_STR(expand(&ctx, "%{i} %{v} %{c}", SPF_MACRO_EXP, &rc), "192.0.2.3 in-addr 192.0.2.3");
	ctx_7_4(&ctx, "CAFE:BABE::1");
	CHECK_STR(expand(&ctx, "%{c} %{v}", SPF_MACRO_EXP, &rc), "cafe:babe::1 ip6");
	CHECK_STR(expand(&ctx, "%{i}", 0, &rc),
		  "c.a.f.e.b.a.b.e.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1");
}

TEST(macro_output_is_bounded)
{
	struct spf_macro_ctx ctx;
	char spec[2048] = "";
	char big[SPF_VALUE_MAX + 2];
	int rc;

	ctx_7_4(&ctx, "192.0.2.3");
	for (int i = 0; i < 300; i++)
		strcat(spec, "%{s}");
	expand(&ctx, spec, 0, &rc);
	CHECK_INT(rc, -ENOSPC);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ctx.helo = big;
	expand(&ctx, "%{h2}", 0, &rc);
	CHECK_INT(rc, -ENAMETOOLONG);
	CHECK_INT(strlen(expand(&ctx, "%{h}", 0, &rc)), SPF_VALUE_MAX + 1);
	CHECK_INT(rc, 0);
}

TEST(target_names)
{
	char out[SPF_DOMAIN_MAX + 1], in[600];

	CHECK_INT(spf_target_name(SLICE_LIT("o.spf.example.com."), out), 0);
	CHECK_STR(out, "o.spf.example.com");
	CHECK_INT(spf_target_name(SLICE_LIT("mail.example...com"), out), -EINVAL);
	CHECK_INT(spf_target_name(SLICE_LIT(""), out), -EINVAL);
	CHECK_INT(spf_target_name(SLICE_LIT("."), out), -EINVAL);
	CHECK_INT(spf_target_name(SLICE_LIT("a\001b.example.com"), out), -EINVAL);
	memset(in, 'x', 64);
	strcpy(in + 64, ".example.com");
	CHECK_INT(spf_target_name(slice_from_cstr(in), out), -EINVAL);
	/* 7.3: whole labels go from the left until 253 octets remain. */
	in[0] = '\0';
	for (int i = 0; i < 30; i++)
		strcat(in, "label-nr.");
	strcat(in, "example.com");
	CHECK_INT(spf_target_name(slice_from_cstr(in), out), 0);
	CHECK(strlen(out) <= 253 && strlen(out) > 240);
	CHECK(strncmp(out, "label-nr.", 9) == 0);
	CHECK_STR(out + strlen(out) - 12, ".example.com");
}

TEST(identity_domains)
{
	CHECK(spf_identity_domain_ok("example.com"));
	CHECK(spf_identity_domain_ok("mail.example.com."));
	CHECK(spf_identity_domain_ok("a-b_c.example"));
	CHECK(!spf_identity_domain_ok("A2345678"));
	CHECK(!spf_identity_domain_ok("[1.2.3.5]"));
	CHECK(!spf_identity_domain_ok("1.2.3.5"));
	CHECK(!spf_identity_domain_ok("A...example.com"));
	CHECK(!spf_identity_domain_ok(""));
	CHECK(!spf_identity_domain_ok("JUMPIN' JUPITER"));
	CHECK(!spf_identity_domain_ok("caf\xc3\xa9.example"));
}

/* --- the asynchronous check -------------------------------------------------- */

struct done {
	int calls;
	struct spf_outcome o;
};

static void on_done(void *arg, const struct spf_outcome *o)
{
	struct done *d = arg;
	d->calls++;
	d->o = *o;
}

struct env {
	struct event_base *base;
	struct fake_dns dns;
	struct dns_resolver r;
	struct sockaddr_storage client;
};

static void env_init(struct env *e, const char *ip)
{
	memset(e, 0, sizeof *e);
	e->base = event_base_new();
	CHECK(e->base != NULL);
	fake_dns_init(&e->dns, e->base);
	e->r = fake_dns_resolver(&e->dns);
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&e->client)->sin_addr) == 1) {
		e->client.ss_family = AF_INET;
	} else {
		e->client.ss_family = AF_INET6;
		CHECK(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&e->client)->sin6_addr) == 1);
	}
}

static void env_free(struct env *e)
{
	fake_dns_clear(&e->dns);
	event_base_free(e->base);
}

static void txt(struct env *e, const char *name, const char *text)
{
	fake_dns_txt(&e->dns, name, DNS_T_TXT, text, strlen(text));
}

/* Run a check to its end; the callback must not run before the loop does. */
static struct spf_outcome run(struct env *e, const char *sender, const char *helo, bool helo_only)
{
	struct done d = { 0 };
	struct spf_query q = { (struct sockaddr *)&e->client, sender, helo, "mx.receiver.example",
			       helo_only };
	struct spf_check *c = spf_check_start(e->base, &e->r, &q, on_done, &d);

	CHECK(c != NULL);
	CHECK_INT(d.calls, 0);
	for (int i = 0; i < 1000 && d.calls == 0; i++)
		event_base_loop(e->base, EVLOOP_ONCE);
	CHECK_INT(d.calls, 1);
	CHECK_INT(e->dns.pending, 0);
	return d.o;
}

TEST(check_pass_and_fail_with_explanation)
{
	struct env e;
	struct spf_outcome o;

	env_init(&e, "192.0.2.10");
	txt(&e, "example.com", "v=spf1 ip4:192.0.2.0/28 -all exp=why.example.com");
	txt(&e, "why.example.com", "%{i} is not one of %{d}'s hosts");
	o = run(&e, "alice@example.com", "mail.example.net", false);
	CHECK_INT(o.result, SPF_PASS);
	CHECK_STR(o.mechanism, "ip4:192.0.2.0/28");
	CHECK_STR(o.domain, "example.com");
	CHECK(!o.helo_identity);
	CHECK_STR(o.explanation, "");
	env_free(&e);

	env_init(&e, "192.0.2.99");
	txt(&e, "example.com", "v=spf1 ip4:192.0.2.0/28 -all exp=why.example.com");
	txt(&e, "why.example.com", "%{i} is not one of %{d}'s hosts");
	o = run(&e, "alice@example.com", "mail.example.net", false);
	CHECK_INT(o.result, SPF_FAIL);
	CHECK_STR(o.mechanism, "-all");
	CHECK_STR(o.explanation, "192.0.2.99 is not one of example.com's hosts");
	env_free(&e);
}

TEST(check_null_sender_and_helo_only_use_helo)
{
	struct env e;
	struct spf_outcome o;

	env_init(&e, "::ffff:192.0.2.1");
	txt(&e, "mail.example.net", "v=spf1 a -all");
	CHECK(fake_dns_addr(&e.dns, "mail.example.net", "192.0.2.1"));
	txt(&e, "example.com", "v=spf1 -all");
	o = run(&e, "", "mail.example.net", false);
	CHECK_INT(o.result, SPF_PASS);
	CHECK(o.helo_identity);
	CHECK_STR(o.sender, "postmaster@mail.example.net");
	CHECK_STR(o.domain, "mail.example.net");
	o = run(&e, "bob@example.com", "mail.example.net", true);
	CHECK_INT(o.result, SPF_PASS);
	CHECK(o.helo_identity);
	o = run(&e, "bob@example.com", "mail.example.net", false);
	CHECK_INT(o.result, SPF_FAIL);
	CHECK(!o.helo_identity);
	CHECK_STR(o.explanation,
		  "domain of example.com does not designate 192.0.2.1 as permitted sender");
	env_free(&e);
}

TEST(check_none_is_asynchronous_and_asks_nothing)
{
	struct env e;
	struct spf_outcome o;

	env_init(&e, "192.0.2.1");
	o = run(&e, "", "[192.0.2.1]", false);
	CHECK_INT(o.result, SPF_NONE);
	o = run(&e, "x@localhost", "helo.example", false);
	CHECK_INT(o.result, SPF_NONE);
	CHECK_INT(e.dns.queries, 0);
	o = run(&e, "x@nowhere.example", "helo.example", false);
	CHECK_INT(o.result, SPF_NONE);
	CHECK_INT(e.dns.queries, 1);
	env_free(&e);
}

TEST(check_cancel_runs_no_callback)
{
	struct env e;
	struct done d = { 0 };

	env_init(&e, "192.0.2.1");
	txt(&e, "example.com", "v=spf1 -all");
	struct spf_query q = { (struct sockaddr *)&e.client, "a@example.com", "h.example", NULL,
			       false };
	struct spf_check *c = spf_check_start(e.base, &e.r, &q, on_done, &d);
	CHECK(c != NULL);
	CHECK_INT(e.dns.pending, 1);
	spf_check_cancel(c);
	CHECK_INT(e.dns.pending, 0);
	CHECK_INT(e.dns.cancelled, 1);
	/* A check without DNS (deferred "none") cancels as well. */
	q.sender = "a@[192.0.2.1]";
	c = spf_check_start(e.base, &e.r, &q, on_done, &d);
	CHECK(c != NULL);
	spf_check_cancel(c);
	event_base_loop(e.base, EVLOOP_NONBLOCK);
	CHECK_INT(d.calls, 0);
	env_free(&e);
}

/* The caller's time limit: temperror, the identity kept, the lookup cancelled, no callback. */
TEST(check_timeout_gives_temperror_for_the_identity)
{
	struct env e;
	struct done d = { 0 };
	struct spf_outcome o;

	env_init(&e, "192.0.2.1");
	txt(&e, "example.com", "v=spf1 -all");
	struct spf_query q = { (struct sockaddr *)&e.client, "", "mail.example.com", NULL, false };
	struct spf_check *c = spf_check_start(e.base, &e.r, &q, on_done, &d);
	CHECK(c != NULL);
	CHECK_INT(e.dns.pending, 1);
	spf_check_timeout(c, &o);
	CHECK_INT(e.dns.pending, 0);
	CHECK_INT(o.result, SPF_TEMPERROR);
	CHECK(o.helo_identity);
	CHECK_STR(o.domain, "mail.example.com");
	CHECK_STR(o.sender, "postmaster@mail.example.com");
	CHECK_STR(o.problem, "DNS lookups timed out");
	event_base_loop(e.base, EVLOOP_NONBLOCK);
	CHECK_INT(d.calls, 0);
	env_free(&e);
}

TEST(check_total_query_cap)
{
	struct env e;
	struct spf_outcome o;
	char name[64], mx[64];

	env_init(&e, "192.0.2.200");
	txt(&e, "example.com", "v=spf1 mx:a.example.com mx:b.example.com mx:c.example.com "
			       "mx:d.example.com -all");
	for (char z = 'a'; z <= 'd'; z++) {
		snprintf(name, sizeof name, "%c.example.com", z);
		for (int i = 0; i < 10; i++) {
			snprintf(mx, sizeof mx, "mx%d.%c.example.com", i, z);
			fake_dns_target(&e.dns, name, DNS_T_MX, mx, (unsigned)i);
			CHECK(fake_dns_addr(&e.dns, mx, "192.0.2.1"));
		}
	}
	o = run(&e, "a@example.com", "h.example", false);
	CHECK_INT(o.result, SPF_PERMERROR);
	CHECK_INT(o.queries, SPF_QUERIES_MAX);
	CHECK_INT(e.dns.queries, SPF_QUERIES_MAX);
	CHECK(strstr(o.problem, "DNS queries") != NULL);
	env_free(&e);
}

TEST(check_temperror_and_void_limit)
{
	struct env e;
	struct spf_outcome o;

	env_init(&e, "192.0.2.1");
	txt(&e, "example.com", "v=spf1 a:down.example.com -all");
	fake_dns_timeout(&e.dns, "down.example.com", FAKE_T_TIMEOUT);
	txt(&e, "void.example.com", "v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com ?all");
	o = run(&e, "a@example.com", "h.example", false);
	CHECK_INT(o.result, SPF_TEMPERROR);
	CHECK(o.problem[0] != '\0');
	o = run(&e, "a@void.example.com", "h.example", false);
	CHECK_INT(o.result, SPF_PERMERROR);
	CHECK(strstr(o.problem, "void") != NULL);
	env_free(&e);
}

/* --- header texts ------------------------------------------------------------ */

static struct spf_outcome outcome(enum spf_result r, const char *sender, const char *domain)
{
	struct spf_outcome o;

	memset(&o, 0, sizeof o);
	o.result = r;
	str_copy(o.sender, sizeof o.sender, sender);
	str_copy(o.domain, sizeof o.domain, domain);
	return o;
}

TEST(received_spf_header)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct spf_outcome o = outcome(SPF_PASS, "myname@example.com", "example.com");
	struct spf_query q = { (struct sockaddr *)&sin, "myname@example.com", "foo.example.com",
			       "mybox.example.org", false };
	char h[1024];

	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	str_copy(o.mechanism, sizeof o.mechanism, "ip4:192.0.2.0/24");
	CHECK_INT(spf_received_header(&o, &q, h, sizeof h), 0);
	/* RFC 7208 9.1's example, folded at 78 columns. */
	CHECK_STR(h, "Received-SPF: pass (mybox.example.org: domain of myname@example.com designates\r\n"
		     " 192.0.2.1 as permitted sender) client-ip=192.0.2.1;\r\n"
		     " envelope-from=\"myname@example.com\"; helo=foo.example.com;\r\n"
		     " receiver=mybox.example.org; identity=mailfrom; mechanism=\"ip4:192.0.2.0/24\";\r\n");
	CHECK_INT(spf_received_header(&o, &q, h, 60), -ENOSPC);
	CHECK_STR(h, "");
}

TEST(received_spf_header_escapes_untrusted_text)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct spf_outcome o = outcome(SPF_PERMERROR, "\"a(b)\\\"c\"@example.com", "example.com");
	struct spf_query q = { (struct sockaddr *)&sin6, o.sender, "evil\r\nX-Injected: yes",
			       "mx.example", false };
	char h[2048];

	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	str_copy(o.problem, sizeof o.problem, "bad \"record\"\nsecond line");
	CHECK_INT(spf_received_header(&o, &q, h, sizeof h), 0);
	/* Every CRLF but the last is a fold (CRLF SP); no bare CR or LF. */
	size_t n = strlen(h);
	CHECK(n > 2 && strcmp(h + n - 2, "\r\n") == 0);
	for (size_t i = 0; i + 2 < n; i++) {
		if (h[i] == '\r')
			CHECK(h[i + 1] == '\n' && h[i + 2] == ' ');
		if (h[i] == '\n')
			CHECK(i > 0 && h[i - 1] == '\r');
	}
	CHECK(strstr(h, "\nX-Injected") == NULL);
	CHECK(strstr(h, "client-ip=\"2001:db8::1\";") != NULL);
	CHECK(strstr(h, "helo=\"evil??X-Injected: yes\";") != NULL);
	CHECK(strstr(h, " of \"a\\(b\\)\\\\\"c\"@example.com") != NULL);
	CHECK(strstr(h, "envelope-from=\"\\\"a(b)\\\\\\\"c\\\"@example.com\";") != NULL);
	CHECK(strstr(h, "problem=\"bad \\\"record\\\"?second line\";") != NULL);
	/* Lines stay within 78 columns where a space allows a fold. */
	for (const char *line = h; *line;) {
		const char *end = strstr(line, "\r\n");
		CHECK(end && end - line <= 78);
		line = end + 2;
	}
}

TEST(authentication_results_text)
{
	struct spf_outcome o = outcome(SPF_SOFTFAIL, "a@example.com", "example.com");
	char out[128];

	CHECK_INT(spf_auth_results(&o, out, sizeof out), 0);
	CHECK_STR(out, "spf=softfail smtp.mailfrom=example.com");
	o = outcome(SPF_NONE, "postmaster@[192.0.2.1]", "[192.0.2.1]");
	o.helo_identity = true;
	CHECK_INT(spf_auth_results(&o, out, sizeof out), 0);
	CHECK_STR(out, "spf=none smtp.helo=\"[192.0.2.1]\"");
	CHECK_INT(spf_auth_results(&o, out, 10), -ENOSPC);
	CHECK_STR(spf_result_name(SPF_TEMPERROR), "temperror");
	CHECK_STR(spf_result_name(SPF_PERMERROR), "permerror");
	CHECK_STR(spf_result_name(SPF_NEUTRAL), "neutral");
}

UNIT_MAIN()
