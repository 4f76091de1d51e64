/*
 * Unit tests of src/policy/dkim*.c: the canonicalization example of RFC 6376
 * 3.4.5, body canonicalization under every split of its input, tag-list,
 * signature and key record tables, the RFC 8463 Appendix A message (both of
 * its published signatures verify), the limits (header section, signature
 * count, field count), the asynchronous contract (never an answer inside
 * finish, lookups cancelled by free), From for DMARC, the
 * Authentication-Results text, the signer's key choice, and the dkim-sign key.
 * The interoperability tests against python3-dkim are
 * tests/scenario/test_dkim_interop.py.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"
#include "rfc8463.h"
#include "policy/dkim.h"
#include "unit.h"

/* Key files made by the signing tests; removed at the end (tests run last-defined first). */
static char tmpdir[64];

TEST(cleanup)
{
	if (tmpdir[0]) {
		char path[160];
		snprintf(path, sizeof path, "%s/ed.key", tmpdir);
		unlink(path);
		rmdir(tmpdir);
	}
}

/* ---- canonicalization ---------------------------------------------------------------------- */

static const char *canon_header(enum dkim_canon c, const char *field, bool crlf)
{
	static char out[1024];
	struct buf b;
	buf_init(&b, sizeof out - 1);
	if (dkim_canon_header(c, slice_from_cstr(field), crlf, &b) < 0)
		snprintf(out, sizeof out, "<error>");
	else
		memcpy(out, buf_cstr(&b), b.len + 1);
	buf_free(&b);
	return out;
}

TEST(rfc6376_3_4_5_headers)
{
	/* "A: X" and "B : Y <HTAB><CRLF> <HTAB>Z <SP><SP><CRLF>" */
	CHECK_STR(canon_header(DKIM_CANON_RELAXED, "A: X\r\n", true), "a:X\r\n");
	CHECK_STR(canon_header(DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  \r\n", true), "b:Y Z\r\n");
	CHECK_STR(canon_header(DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  \r\n", true),
		  "B : Y\t\r\n\tZ  \r\n");
	/* The signature field itself: no CRLF. */
	CHECK_STR(canon_header(DKIM_CANON_SIMPLE, "B : Y\r\n", false), "B : Y");
	CHECK_STR(canon_header(DKIM_CANON_RELAXED, "Subject:   a \t b  \r\n", false), "subject:a b");
	CHECK_STR(canon_header(DKIM_CANON_RELAXED, "X-Empty:\r\n", true), "x-empty:\r\n");
	CHECK_STR(canon_header(DKIM_CANON_RELAXED, "X-Empty:  \r\n \r\n", true), "x-empty:\r\n");
}

struct sink {
	char out[4096];
	size_t len;
};

static void sink_emit(void *ctx, const char *p, size_t n)
{
	struct sink *s = ctx;
	if (s->len + n < sizeof s->out) {
		memcpy(s->out + s->len, p, n);
		s->len += n;
	}
	s->out[s->len] = '\0';
}

/* Canonicalize body in two pieces split at every point: all must give want. */
static void check_body(enum dkim_canon c, uint64_t limit, const char *body, const char *want)
{
	size_t n = strlen(body);
	for (size_t split = 0; split <= n; split++) {
		struct dkim_body_canon b;
		struct sink s = { .len = 0 };
		s.out[0] = '\0';
		dkim_body_canon_init(&b, c, limit, sink_emit, &s);
		dkim_body_canon_update(&b, body, split);
		dkim_body_canon_update(&b, body + split, n - split);
		dkim_body_canon_finish(&b);
		CHECK_MSG(strcmp(s.out, want) == 0, "canon %d split %zu of \"%s\": \"%s\"", c, split,
			  body, s.out);
		CHECK(b.hashed == s.len);
	}
}

TEST(rfc6376_3_4_5_body)
{
	const char *body = " C \r\nD \t E\r\n\r\n\r\n";
	check_body(DKIM_CANON_RELAXED, UINT64_MAX, body, " C\r\nD E\r\n");
	check_body(DKIM_CANON_SIMPLE, UINT64_MAX, body, " C \r\nD \t E\r\n");
}

TEST(body_edge_cases)
{
	/* 3.4.3/3.4.4: an empty body is CRLF (simple) or nothing (relaxed). */
	check_body(DKIM_CANON_SIMPLE, UINT64_MAX, "", "\r\n");
	check_body(DKIM_CANON_SIMPLE, UINT64_MAX, "\r\n\r\n", "\r\n");
	check_body(DKIM_CANON_RELAXED, UINT64_MAX, "", "");
	check_body(DKIM_CANON_RELAXED, UINT64_MAX, "\r\n \t\r\n", "");
	/* A last line without CRLF gets one. */
	check_body(DKIM_CANON_SIMPLE, UINT64_MAX, "abc", "abc\r\n");
	check_body(DKIM_CANON_RELAXED, UINT64_MAX, "abc  ", "abc\r\n");
	/* Empty lines inside are kept, whitespace-only lines are empty for relaxed. */
	check_body(DKIM_CANON_RELAXED, UINT64_MAX, "a\r\n  \r\nb\r\n\r\n", "a\r\n\r\nb\r\n");
	check_body(DKIM_CANON_SIMPLE, UINT64_MAX, "a\r\n  \r\nb\r\n\r\n", "a\r\n  \r\nb\r\n");
	/* A bare CR is text; CR CR LF is text and a line end. */
	check_body(DKIM_CANON_SIMPLE, UINT64_MAX, "a\rb\r\r\n", "a\rb\r\r\n");
	check_body(DKIM_CANON_RELAXED, UINT64_MAX, "\r", "\r\r\n");
	/* l=: only the first bytes of the canonical body. */
	check_body(DKIM_CANON_SIMPLE, 3, "abcdef\r\n", "abc");
	check_body(DKIM_CANON_RELAXED, 4, "a\r\n\r\n\r\nb\r\n", "a\r\n\r");
	check_body(DKIM_CANON_RELAXED, 0, "abc\r\n", "");
}

TEST(body_counts_past_the_limit)
{
	struct dkim_body_canon b;
	struct sink s = { .len = 0 };
	dkim_body_canon_init(&b, DKIM_CANON_SIMPLE, 5, sink_emit, &s);
	dkim_body_canon_update(&b, "hello world\r\n\r\n\r\nmore\r\n", 23);
	dkim_body_canon_finish(&b);
	CHECK_INT(b.hashed, 5);
	CHECK_INT(b.total, 23);
}

/* ---- tag lists, signatures, key records ---------------------------------------------------- */

TEST(tag_lists)
{
	static const struct {
		const char *in;
		int ret;
		size_t n;
		const char *first_name, *first_value;
	} cases[] = {
		{ "a=1", 0, 1, "a", "1" },
		{ "a=1;", 0, 1, "a", "1" },
		{ " a = 1 ; b=2 ;", 0, 2, "a", "1" },
		{ "b=ab cd\r\n\tef ; x=", 0, 2, "b", "ab cd\r\n\tef" },
		{ "a_1=x", 0, 1, "a_1", "x" },
		{ "a=", 0, 1, "a", "" },
		{ "", -EINVAL, 0, NULL, NULL },
		{ ";", -EINVAL, 0, NULL, NULL },
		{ "a=1;;b=2", -EINVAL, 0, NULL, NULL },
		{ "a=1; a=2", -EINVAL, 0, NULL, NULL }, /* duplicate */
		{ "1a=1", -EINVAL, 0, NULL, NULL },
		{ "a 1=1", -EINVAL, 0, NULL, NULL },
		{ "a", -EINVAL, 0, NULL, NULL },
		{ "a=x\x01y", -EINVAL, 0, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct dkim_tag_list l;
		int r = dkim_tag_list_parse(slice_from_cstr(cases[i].in), &l);
		CHECK_MSG(r == cases[i].ret, "\"%s\": %d", cases[i].in, r);
		if (r != 0)
			continue;
		CHECK_INT(l.n, cases[i].n);
		CHECK(slice_eq(l.tag[0].name, slice_from_cstr(cases[i].first_name)));
		CHECK_MSG(slice_eq(l.tag[0].value, slice_from_cstr(cases[i].first_value)), "\"%s\"",
			  cases[i].in);
	}
	/* A NUL byte inside a value. */
	struct dkim_tag_list l;
	CHECK(dkim_tag_list_parse((struct slice){ "a=b\0c", 5 }, &l) == -EINVAL);
	/* DKIM_TAGS_MAX tags fit, one more does not. */
	char many[DKIM_TAGS_MAX * 8 + 16];
	size_t o = 0;
	for (int i = 0; i <= DKIM_TAGS_MAX; i++)
		o += (size_t)snprintf(many + o, sizeof many - o, "t%d=1;", i);
	CHECK(dkim_tag_list_parse(slice_from_cstr(many), &l) == -EINVAL);
	many[strlen(many) - strlen("t64=1;")] = '\0';
	CHECK(dkim_tag_list_parse(slice_from_cstr(many), &l) == 0 && l.n == DKIM_TAGS_MAX);
}

#define SIG_OK "v=1; a=rsa-sha256; d=example.org; s=sel; h=From:To; bh=YWJj; b=ZGVm"

TEST(signature_fields)
{
	static const struct {
		const char *in;
		const char *reason; /* NULL: valid */
	} cases[] = {
		{ SIG_OK, NULL },
		{ SIG_OK "; c=relaxed", NULL },
		{ SIG_OK "; c=relaxed/relaxed; q=dns/txt; l=10; t=5; x=6", NULL },
		{ SIG_OK "; i=user@sub.example.org", NULL },
		{ SIG_OK "; i=@EXAMPLE.org", NULL },
		{ SIG_OK "; z=unknown-tags-are-ignored", NULL },
		{ "v=1; a=rsa-sha1; d=example.org; s=sel; h=from; bh=YWJj; b=ZGVm", NULL },
		{ "v=1; a=ed25519-sha256; d=example.org; s=s.e_l-1; h=from; bh=YWJj; b=ZG\r\n Vm",
		  NULL },
		{ "v=2; a=rsa-sha256; d=example.org; s=sel; h=from; bh=YWJj; b=ZGVm",
		  "unknown version" },
		{ "a=rsa-sha256; d=example.org; s=sel; h=from; bh=YWJj; b=ZGVm", "missing v= tag" },
		{ "v=1; a=dsa-sha256; d=example.org; s=sel; h=from; bh=YWJj; b=ZGVm",
		  "unknown algorithm" },
		{ "v=1; a=rsa-sha256; s=sel; h=from; bh=YWJj; b=ZGVm", "missing d= tag" },
		{ "v=1; a=rsa-sha256; d=exa mple.org; s=sel; h=from; bh=YWJj; b=ZGVm",
		  "bad d= domain" },
		{ "v=1; a=rsa-sha256; d=example.org; s=se/l; h=from; bh=YWJj; b=ZGVm",
		  "bad s= selector" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; bh=YWJj", "missing b= tag" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; bh=YWJj; b=ZGV", "bad b= value" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from; b=ZGVm", "missing bh= tag" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; bh=YWJj; b=ZGVm", "missing h= tag" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=to:subject; bh=YWJj; b=ZGVm",
		  "From not signed" },
		{ "v=1; a=rsa-sha256; d=example.org; s=sel; h=from::to; bh=YWJj; b=ZGVm",
		  "bad h= header list" },
		{ SIG_OK "; c=fancy", "unknown canonicalization" },
		{ SIG_OK "; c=relaxed/fancy", "unknown canonicalization" },
		{ SIG_OK "; i=user@example.net", "i= not within d=" },
		{ SIG_OK "; i=user@badexample.org", "i= not within d=" },
		{ SIG_OK "; i=user", "i= not within d=" },
		{ SIG_OK "; l=-1", "bad l= value" },
		{ SIG_OK "; q=dns/other", "unknown query method" },
		{ SIG_OK "; t=abc", "bad t= value" },
		{ SIG_OK "; t=10; x=9", "x= before t=" },
		{ SIG_OK "; v=1", "signature syntax error" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct dkim_signature sig;
		char reason[DKIM_REASON_MAX];
		int r = dkim_signature_parse(slice_from_cstr(cases[i].in), &sig, reason,
					     sizeof reason);
		if (!cases[i].reason)
			CHECK_MSG(r == 0, "\"%s\": %s", cases[i].in, reason);
		else
			CHECK_MSG(r == -EINVAL && strcmp(reason, cases[i].reason) == 0,
				  "\"%s\": %d %s", cases[i].in, r, reason);
	}
}

TEST(signature_values)
{
	struct dkim_signature sig;
	char reason[DKIM_REASON_MAX];
	const char *in = "v=1; a=ed25519-sha256; c=simple/relaxed; d=Example.org; s=sel; "
			 "h=From : to:from; bh=YWJj; l=99999999999999999999999; b= AbC/\r\n\tdE+f ; t=7";
	CHECK(dkim_signature_parse(slice_from_cstr(in), &sig, reason, sizeof reason) == 0);
	CHECK(sig.alg == DKIM_ALG_ED25519_SHA256);
	CHECK(sig.hcanon == DKIM_CANON_SIMPLE && sig.bcanon == DKIM_CANON_RELAXED);
	CHECK_STR(sig.d, "Example.org");
	CHECK_INT(sig.nh, 3);
	CHECK(slice_eq(sig.h[1], SLICE_LIT("to")));
	CHECK(sig.has_l && sig.l == UINT64_MAX); /* saturates: longer than any body */
	CHECK(sig.has_t && sig.t == 7 && !sig.has_x);
	CHECK_STR(sig.b_short, "AbC/dE+f");
	CHECK_INT(sig.blen, 6);
	CHECK_INT(sig.bhlen, 3);
	/* b= spans from just after '=' to the end of its value (what 3.7 empties). */
	CHECK(strncmp(in + sig.b_start, " AbC/\r\n\tdE+f", sig.b_end - sig.b_start) == 0);
	CHECK_INT(sig.b_end - sig.b_start, strlen(" AbC/\r\n\tdE+f"));
}

TEST(key_records)
{
	static const struct {
		const char *in;
		const char *reason; /* NULL: valid */
		enum dkim_key_type k;
		bool revoked, testing, strict;
	} cases[] = {
		{ "v=DKIM1; k=rsa; p=YWJj", NULL, DKIM_KEY_RSA, false, false, false },
		{ "p=YWJj", NULL, DKIM_KEY_RSA, false, false, false },
		{ "v=DKIM1; k=ed25519; p=YWJj", NULL, DKIM_KEY_ED25519, false, false, false },
		{ "v=DKIM1; p=", NULL, DKIM_KEY_RSA, true, false, false },
		{ "v=DKIM1; t=y:s; h=sha1:sha256; s=email; n=notes; p=YWJj", NULL, DKIM_KEY_RSA,
		  false, true, true },
		{ "s=*; t=y; p=YW\r\n Jj", NULL, DKIM_KEY_RSA, false, true, false },
		{ "v=DKIM2; p=YWJj", "key record version not DKIM1", DKIM_KEY_RSA, false, false,
		  false },
		{ "k=dsa; p=YWJj", "unknown key type", DKIM_KEY_RSA, false, false, false },
		{ "h=sha1; p=YWJj", "key not for sha256", DKIM_KEY_RSA, false, false, false },
		{ "s=tlsrpt; p=YWJj", "key not for email", DKIM_KEY_RSA, false, false, false },
		{ "v=DKIM1; k=rsa", "key record without p=", DKIM_KEY_RSA, false, false, false },
		{ "p=YWJ", "bad p= value", DKIM_KEY_RSA, false, false, false },
		{ "p=YWJj; p=YWJj", "key record syntax error", DKIM_KEY_RSA, false, false, false },
		{ "not a record", "key record syntax error", DKIM_KEY_RSA, false, false, false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct dkim_key_record kr;
		char reason[DKIM_REASON_MAX];
		int r = dkim_key_record_parse(slice_from_cstr(cases[i].in), &kr, reason,
					      sizeof reason);
		if (cases[i].reason) {
			CHECK_MSG(r == -EINVAL && strcmp(reason, cases[i].reason) == 0,
				  "\"%s\": %d %s", cases[i].in, r, reason);
			continue;
		}
		CHECK_MSG(r == 0, "\"%s\": %s", cases[i].in, reason);
		CHECK(kr.k == cases[i].k && kr.revoked == cases[i].revoked &&
		      kr.testing == cases[i].testing && kr.strict == cases[i].strict);
		CHECK(kr.revoked || (kr.keylen == 3 && memcmp(kr.key, "abc", 3) == 0));
	}
}

/* ---- verification -------------------------------------------------------------------------- */

struct outcome {
	int calls;
	struct dkim_results res;
};

static void on_results(void *arg, const struct dkim_results *res)
{
	struct outcome *o = arg;
	o->calls++;
	o->res = *res;
}

/* Verify msg (fed in chunks of step, 0: whole) against entries; the outcome. */
static struct outcome verify_msg(const char *msg, size_t len, size_t step,
				 const struct txt_record *entries, size_t n)
{
	struct event_base *base = event_base_new();
	struct fake_dns fd;
	fake_dns_init(&fd, base);
	txt_records_add(&fd, entries, n);
	struct dns_resolver r = fake_dns_resolver(&fd);
	struct outcome o = { 0 };
	struct dkim_verify *v = dkim_verify_new();

	for (size_t off = 0; off < len;) {
		size_t k = step && step < len - off ? step : len - off;
		CHECK(dkim_verify_update(v, msg + off, k) == 0);
		off += k;
	}
	dkim_verify_finish(v, base, &r, on_results, &o);
	CHECK_INT(o.calls, 0); /* never inside finish */
	event_base_dispatch(base);
	CHECK_INT(o.calls, 1);
	CHECK(dkim_verify_update(v, "x", 1) == -EINVAL);
	dkim_verify_free(v);
	fake_dns_clear(&fd);
	event_base_free(base);
	return o;
}

TEST(rfc8463_appendix_a_verifies)
{
	static const size_t steps[] = { 0, 1, 3, 64 };
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		struct outcome o = verify_msg(rfc8463_message, strlen(rfc8463_message), steps[i],
					      rfc8463_keys, 2);
		CHECK_INT(o.res.n, 2);
		CHECK_MSG(o.res.sig[0].result == DKIM_PASS, "ed25519: %s",
			  o.res.sig[0].reason);
		CHECK_MSG(o.res.sig[1].result == DKIM_PASS, "rsa: %s", o.res.sig[1].reason);
		CHECK_STR(o.res.sig[0].a, "ed25519-sha256");
		CHECK_STR(o.res.sig[1].s, "test");
		CHECK_STR(o.res.sig[0].b, "/gCrinpc");
		CHECK_STR(o.res.sig[0].i, "@football.example.com");
	}
}

TEST(rfc8463_tampered)
{
	char msg[sizeof rfc8463_message];
	memcpy(msg, rfc8463_message, sizeof msg);
	*strstr(msg, "hungry") = 'H';
	struct outcome o = verify_msg(msg, strlen(msg), 0, rfc8463_keys, 2);
	CHECK(o.res.sig[0].result == DKIM_FAIL && o.res.sig[1].result == DKIM_FAIL);
	CHECK_STR(o.res.sig[0].reason, "body hash mismatch");

	memcpy(msg, rfc8463_message, sizeof msg);
	*strstr(msg, "dinner") = 'D';
	o = verify_msg(msg, strlen(msg), 0, rfc8463_keys, 2);
	CHECK(o.res.sig[0].result == DKIM_FAIL && o.res.sig[1].result == DKIM_FAIL);
	CHECK_STR(o.res.sig[1].reason, "signature did not verify");

	/* A relaxed signature survives re-folded headers and extra trailing lines. */
	struct buf b;
	buf_init(&b, 1 << 16);
	buf_append_str(&b, rfc8463_message);
	buf_append_str(&b, "\r\n\r\n");
	char *subj = strstr(b.data, "Subject: Is");
	memcpy(subj, "Subject:\tIs", 11);
	o = verify_msg(b.data, b.len, 0, rfc8463_keys, 2);
	CHECK(o.res.sig[0].result == DKIM_PASS && o.res.sig[1].result == DKIM_PASS);
	buf_free(&b);
}

TEST(key_lookup_outcomes)
{
	struct txt_record e[] = {
		{ "brisbane._domainkey.football.example.com", NULL },
		{ "test._domainkey.football.example.com", "v=DKIM1; p=" },
	};
	struct outcome o = verify_msg(rfc8463_message, strlen(rfc8463_message), 0, e, 2);
	CHECK(o.res.sig[0].result == DKIM_TEMPERROR);
	CHECK(o.res.sig[1].result == DKIM_PERMERROR);
	CHECK_STR(o.res.sig[1].reason, "key revoked");

	o = verify_msg(rfc8463_message, strlen(rfc8463_message), 0, e, 0);
	CHECK(o.res.sig[0].result == DKIM_PERMERROR && o.res.sig[1].result == DKIM_PERMERROR);
	CHECK_STR(o.res.sig[0].reason, "no key for signature");

	/* A bad record first, a good one after it: the good one is used (3.6.2.2). */
	struct txt_record two[] = {
		{ "brisbane._domainkey.football.example.com", "garbage" },
		rfc8463_keys[0],
		rfc8463_keys[1],
	};
	o = verify_msg(rfc8463_message, strlen(rfc8463_message), 0, two, 3);
	CHECK(o.res.sig[0].result == DKIM_PASS && o.res.sig[1].result == DKIM_PASS);

	/* Key type and the strict flag (t=s: i= must be exactly d=). */
	struct txt_record swapped[] = {
		{ "brisbane._domainkey.football.example.com", rfc8463_keys[1].text },
		{ "test._domainkey.football.example.com", rfc8463_keys[0].text },
	};
	o = verify_msg(rfc8463_message, strlen(rfc8463_message), 0, swapped, 2);
	CHECK_STR(o.res.sig[0].reason, "key type does not match a=");
	CHECK_STR(o.res.sig[1].reason, "key type does not match a=");
}

TEST(unsigned_message_and_time)
{
	const char *msg = "From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n";
	struct outcome o = verify_msg(msg, strlen(msg), 0, NULL, 0);
	CHECK_INT(o.res.n, 0);
	CHECK(!o.res.unverifiable);
	char ar[256];
	CHECK(dkim_auth_results(&o.res, ar, sizeof ar) == 0);
	CHECK_STR(ar, "dkim=none");
}

TEST(free_cancels_lookups)
{
	struct event_base *base = event_base_new();
	struct fake_dns fd;
	fake_dns_init(&fd, base);
	txt_records_add(&fd, rfc8463_keys, 2);
	struct dns_resolver r = fake_dns_resolver(&fd);
	struct outcome o = { 0 };
	struct dkim_verify *v = dkim_verify_new();

	CHECK(dkim_verify_update(v, rfc8463_message, strlen(rfc8463_message)) == 0);
	dkim_verify_finish(v, base, &r, on_results, &o);
	CHECK_INT(fd.queries, 2);
	dkim_verify_free(v);
	CHECK_INT(fd.cancelled, 2);
	event_base_dispatch(base);
	CHECK_INT(o.calls, 0);
	/* An unsigned message's deferred answer is cancelled too. */
	v = dkim_verify_new();
	dkim_verify_update(v, "From: a@b.example\r\n\r\n", 21);
	dkim_verify_finish(v, base, &r, on_results, &o);
	dkim_verify_free(v);
	event_base_dispatch(base);
	CHECK_INT(o.calls, 0);
	CHECK_INT(fd.pending, 0);
	fake_dns_clear(&fd);
	event_base_free(base);
}

/* A resolver that passes lookups to a fake_dns, except those of held_name: never answered. */
struct holding {
	struct fake_dns *fd;
	const char *held_name;
	char held; /* its address is the held request */
	int held_lookups, held_cancels;
};

static struct dns_req *holding_lookup(void *ctx, const char *name, enum dns_type type,
				      dns_result_fn *fn, void *arg)
{
	struct holding *h = ctx;
	if (strcmp(name, h->held_name) != 0)
		return fake_dns_lookup(h->fd, name, type, fn, arg);
	h->held_lookups++;
	return (struct dns_req *)(void *)&h->held;
}

static void holding_cancel(void *ctx, struct dns_req *req)
{
	struct holding *h = ctx;
	if (req == (struct dns_req *)(void *)&h->held)
		h->held_cancels++;
	else
		fake_dns_cancel(h->fd, req);
}

TEST(timeout_gives_what_is_known)
{
	struct event_base *base = event_base_new();
	struct fake_dns fd;
	fake_dns_init(&fd, base);
	txt_records_add(&fd, rfc8463_keys, 2);
	/* The RSA key's lookup is still pending at the timeout. */
	struct holding h = { &fd, "test._domainkey.football.example.com", 0, 0, 0 };
	struct dns_resolver r = { holding_lookup, holding_cancel, &h };
	struct outcome o = { 0 };
	struct dkim_verify *v = dkim_verify_new();

	CHECK(dkim_verify_update(v, rfc8463_message, strlen(rfc8463_message)) == 0);
	dkim_verify_finish(v, base, &r, on_results, &o);
	CHECK_INT(fd.queries, 1);
	CHECK_INT(h.held_lookups, 1);
	event_base_dispatch(base);
	CHECK_INT(o.calls, 0);
	const struct dkim_results *res = dkim_verify_timeout(v);
	CHECK_INT(h.held_cancels, 1);
	CHECK_INT(res->n, 2);
	CHECK(res->sig[0].result == DKIM_PASS);
	CHECK(res->sig[1].result == DKIM_TEMPERROR);
	CHECK_STR(res->sig[1].reason, "key lookup timed out");
	event_base_dispatch(base);
	CHECK_INT(o.calls, 0);
	dkim_verify_free(v);
	CHECK_INT(h.held_cancels, 1); /* not cancelled twice */

	/* A timeout before the deferred answer of an unsigned message: nothing more runs. */
	v = dkim_verify_new();
	dkim_verify_update(v, "From: a@b.example\r\n\r\n", 21);
	dkim_verify_finish(v, base, &r, on_results, &o);
	CHECK_INT(dkim_verify_timeout(v)->n, 0);
	event_base_dispatch(base);
	CHECK_INT(o.calls, 0);
	dkim_verify_free(v);
	fake_dns_clear(&fd);
	event_base_free(base);
}

TEST(from_for_dmarc)
{
	struct dkim_verify *v = dkim_verify_new();
	size_t count = 9;
	struct slice first;
	const char *head = "Subject: x\r\nFROM:  Joe\r\n <joe@example.org>\r\nfrom: b@example.net\r\n";

	CHECK(dkim_verify_update(v, head, strlen(head)) == 0);
	CHECK(dkim_verify_from(v, &count, &first) == -EAGAIN);
	CHECK(dkim_verify_update(v, "\r", 1) == 0);
	CHECK(dkim_verify_from(v, &count, &first) == -EAGAIN);
	CHECK(dkim_verify_update(v, "\nbody\r\n", 7) == 0);
	CHECK(dkim_verify_from(v, &count, &first) == 0);
	CHECK_INT(count, 2);
	CHECK(slice_eq(first, SLICE_LIT("  Joe\r\n <joe@example.org>")));
	dkim_verify_free(v);

	/* No body, no empty line: all header section. */
	v = dkim_verify_new();
	dkim_verify_update(v, "From: x@example.org", 19);
	struct event_base *base = event_base_new();
	struct fake_dns fd;
	fake_dns_init(&fd, base);
	struct dns_resolver r = fake_dns_resolver(&fd);
	struct outcome o = { 0 };
	dkim_verify_finish(v, base, &r, on_results, &o);
	CHECK(dkim_verify_from(v, &count, &first) == 0 && count == 1);
	CHECK(slice_eq(first, SLICE_LIT(" x@example.org")));
	event_base_dispatch(base);
	dkim_verify_free(v);
	event_base_free(base);
}

TEST(header_section_limit)
{
	struct buf b;
	buf_init(&b, 2 * DKIM_HEADER_MAX);
	buf_append_str(&b, "From: a@example.org\r\n");
	while (b.len <= DKIM_HEADER_MAX)
		buf_append_str(&b, "X-Filler: 0123456789012345678901234567890123456789\r\n");
	buf_append_str(&b, "\r\nbody\r\n");
	struct outcome o = verify_msg(b.data, b.len, 4096, NULL, 0);
	CHECK(o.res.unverifiable && o.res.n == 0);
	char ar[256];
	CHECK(dkim_auth_results(&o.res, ar, sizeof ar) == 0);
	CHECK_STR(ar, "dkim=permerror reason=\"header section too large\"");

	struct dkim_verify *v = dkim_verify_new();
	size_t count;
	struct slice first;
	dkim_verify_update(v, b.data, b.len);
	CHECK(dkim_verify_from(v, &count, &first) == -E2BIG);
	dkim_verify_free(v);

	/* Many tiny fields under the byte limit: the field limit applies. */
	buf_reset(&b);
	for (int i = 0; i <= DKIM_FIELDS_MAX; i++)
		buf_append_str(&b, "A:\r\n");
	buf_append_str(&b, "\r\n");
	o = verify_msg(b.data, b.len, 0, NULL, 0);
	CHECK(o.res.unverifiable);
	buf_free(&b);
}

TEST(signature_count_limit)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	for (int i = 0; i < DKIM_SIGS_MAX + 2; i++)
		buf_appendf(&b, "DKIM-Signature: v=1; a=rsa-sha1; d=example.org; s=s%d; h=from; "
			    "bh=YWJj; b=ZGVm\r\n", i);
	buf_append_str(&b, "DKIM-Signature: broken\r\nFrom: a@example.org\r\n\r\n");
	struct outcome o = verify_msg(b.data, b.len, 0, NULL, 0);
	CHECK_INT(o.res.n, DKIM_SIGS_MAX);
	CHECK_INT(o.res.ignored, 3);
	for (size_t i = 0; i < o.res.n; i++)
		CHECK(o.res.sig[i].result == DKIM_POLICY);
	buf_free(&b);

	const char *neutral = "DKIM-Signature: v=1; a=rsa-sha256; d=ex ample; s=x\r\n\r\n";
	o = verify_msg(neutral, strlen(neutral), 0, NULL, 0);
	CHECK(o.res.n == 1 && o.res.sig[0].result == DKIM_NEUTRAL);
	CHECK_STR(o.res.sig[0].d, "");
	CHECK_STR(o.res.sig[0].s, "x");
}

TEST(auth_results_text)
{
	struct dkim_results res = { .n = 2 };
	res.sig[0] = (struct dkim_sig_result){ .result = DKIM_PASS, .d = "example.org",
					       .s = "sel", .a = "rsa-sha256", .b = "ab/c+d=e" };
	res.sig[1] = (struct dkim_sig_result){ .result = DKIM_FAIL, .d = "example.net",
					       .i = "\"odd \\ user\"@example.net",
					       .reason = "body hash mismatch", .testing = true };
	char out[512];
	CHECK(dkim_auth_results(&res, out, sizeof out) == 0);
	CHECK_STR(out, "dkim=pass header.d=example.org header.s=sel header.a=rsa-sha256 "
		       "header.b=\"ab/c+d=e\";\r\n\tdkim=fail reason=\"body hash mismatch\" "
		       "(test mode) header.d=example.net "
		       "header.i=\"\\\"odd \\\\ user\\\"@example.net\"");
	CHECK(dkim_auth_results(&res, out, 40) == -ENOSPC);
	CHECK_STR(out, "");
}

/* ---- signing ------------------------------------------------------------------------------- */

static const char *new_key(const char *name, enum dkim_key_type type)
{
	static char path[128];
	char err[256];
	struct buf rec;
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof tmpdir, "/tmp/carteiro-test-dkim-XXXXXX");
		CHECK(mkdtemp(tmpdir) != NULL);
	}
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	buf_init(&rec, 4096);
	int r = dkim_keygen(type, 1024, path, &rec, err, sizeof err);
	CHECK_MSG(r == 0, "%s", err);
	buf_free(&rec);
	return path;
}

/* Sign msg with set; the header text (or "" and the skip reason). */
static const char *sign_msg(const struct dkim_signer_set *set, const char *msg, char *out,
			    size_t len)
{
	struct dkim_sign *s = dkim_sign_new(set);
	size_t outlen;
	for (const char *p = msg; *p; p++)
		CHECK(dkim_sign_update(s, p, 1) == 0);
	CHECK(dkim_sign_finish(s, out, len, &outlen) == 0);
	CHECK_INT(outlen, strlen(out));
	static char skip[64];
	snprintf(skip, sizeof skip, "%s", dkim_sign_skip_reason(s));
	dkim_sign_free(s);
	return skip;
}

/* The form in which the master hands re-read keys to the workers (SIGHUP). */
TEST(key_set_export_and_import)
{
	struct dkim_signer_set *set = dkim_signer_set_new(), *got;
	char err[256], out[8192], a[8192];
	bool exposed;
	struct buf b;

	CHECK(dkim_signer_set_add(set, "example.org", "ed", new_key("set-ed.key", DKIM_KEY_ED25519),
				  &exposed, err, sizeof err) == 0);
	CHECK(dkim_signer_set_add(set, "example.net", "rsa", new_key("set-rsa.key", DKIM_KEY_RSA),
				  &exposed, err, sizeof err) == 0);
	buf_init(&b, 1 << 20);
	CHECK(dkim_signer_set_export(set, &b) == 0);
	CHECK(strncmp(b.data, "example.org ed ", 15) == 0);
	CHECK(dkim_signer_set_import(b.data, b.len, &got, err, sizeof err) == 0);
	CHECK_INT(dkim_signer_set_count(got), 2);
	/* The same keys: the same signatures (Ed25519 is deterministic). */
	const char *msg = "From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n";
	CHECK_STR(sign_msg(set, msg, a, sizeof a), "");
	CHECK_STR(sign_msg(got, msg, out, sizeof out), "");
	CHECK(strstr(a, "b=") && strcmp(strstr(a, "b="), strstr(out, "b=")) == 0);
	/* A signer keeps its set alive after the owner lets go (a reload meanwhile). */
	struct dkim_sign *s = dkim_sign_new(got);
	dkim_signer_set_free(got);
	CHECK(dkim_sign_update(s, msg, strlen(msg)) == 0);
	dkim_sign_free(s);
	/* Anything else is refused whole, with a reason. */
	static const char *const bad[] = {
		"example.org ed 10\nshort",              /* shorter than it says */
		"example.org ed\n-----BEGIN",            /* no length */
		"example.org ed 5 x\nxxxxx",             /* more on the line */
		"example.org ed 0\n",                    /* empty key */
		"example.org ed 5\nxxxxx",               /* not a PEM key */
		"no newline at all",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		CHECK_MSG(dkim_signer_set_import(bad[i], strlen(bad[i]), &got, err, sizeof err) < 0,
			  "%s", bad[i]);
		CHECK_MSG(got == NULL && err[0] != '\0', "%s", bad[i]);
	}
	/* Two copies of the same key for the same selector: refused as in the configuration. */
	char *copy = malloc(b.len);
	CHECK(copy != NULL);
	memcpy(copy, b.data, b.len);
	CHECK(buf_append(&b, copy, b.len) == 0);
	free(copy);
	CHECK(dkim_signer_set_import(b.data, b.len, &got, err, sizeof err) == -EINVAL);
	CHECK(strstr(err, "given twice") != NULL);
	buf_free(&b);
	dkim_signer_set_free(set);
}

TEST(signer_picks_the_from_domain)
{
	struct dkim_signer_set *set = dkim_signer_set_new();
	char err[256], out[8192];
	bool exposed = true;
	const char *ed = new_key("ed.key", DKIM_KEY_ED25519);
	CHECK(dkim_signer_set_add(set, "Example.ORG", "ed", ed, &exposed, err, sizeof err) == 0);
	CHECK(!exposed);
	CHECK(dkim_signer_set_add(set, "example.org", "ED", ed, &exposed, err, sizeof err) ==
	      -EINVAL);
	CHECK(dkim_signer_set_add(set, "sub.example.org", "sub", ed, &exposed, err, sizeof err) ==
	      0);
	CHECK(dkim_signer_set_add(set, "x.org", "a", "/nonexistent", &exposed, err, sizeof err) ==
	      -ENOENT);
	CHECK_INT(dkim_signer_set_count(set), 2);

	static const struct {
		const char *from, *domain, *skip;
	} cases[] = {
		{ "From: a@example.org\r\n", "d=example.org;", "" },
		{ "From: \"x@other.net\" <a@EXAMPLE.org>\r\n", "d=example.org;", "" },
		{ "From: a@deep.sub.example.org\r\n", "d=sub.example.org;", "" },
		{ "From: (comment@other.net) a@mail.example.org (c)\r\n", "d=example.org;", "" },
		{ "From: a@example.org, b@other.net\r\n", "d=example.org;", "" },
		{ "From: a@notexample.org\r\n", NULL, "no dkim-sign key for the From domain" },
		{ "From: undisclosed\r\n", NULL, "no domain in From" },
		{ "From: a@example.org\r\nFrom: b@example.org\r\n", NULL, "several From fields" },
		{ "Subject: x\r\n", NULL, "no From field" },
		{ " folded\r\nFrom: a@example.org\r\n", NULL,
		  "header section starts with a continuation line" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char msg[256];
		snprintf(msg, sizeof msg, "%sSubject: s\r\n\r\nbody\r\n", cases[i].from);
		const char *skip = sign_msg(set, msg, out, sizeof out);
		CHECK_MSG(strcmp(skip, cases[i].skip) == 0, "%s: %s", cases[i].from, skip);
		if (cases[i].domain)
			CHECK_MSG(strstr(out, cases[i].domain) != NULL, "%s: %s", cases[i].from, out);
		else
			CHECK_STR(out, "");
	}
	/* Too small an output buffer. */
	struct dkim_sign *s = dkim_sign_new(set);
	size_t outlen;
	dkim_sign_update(s, "From: a@example.org\r\n\r\n", 23);
	CHECK(dkim_sign_finish(s, out, 100, &outlen) == -ENOSPC && outlen == 0);
	dkim_sign_free(s);
	dkim_signer_set_free(set);
}

TEST(sign_then_verify)
{
	struct dkim_signer_set *set = dkim_signer_set_new();
	char err[256], out[16384], pub[512];
	bool exposed;
	struct buf rec, msg;
	const char *path = "/tmp/carteiro-test-dkim-rsa.key";
	unlink(path);
	buf_init(&rec, 4096);
	CHECK(dkim_keygen(DKIM_KEY_RSA, 1024, path, &rec, err, sizeof err) == 0);
	snprintf(pub, sizeof pub, "%s", buf_cstr(&rec));
	/* Never overwritten. */
	buf_reset(&rec);
	CHECK(dkim_keygen(DKIM_KEY_RSA, 1024, path, &rec, err, sizeof err) == -EEXIST);
	CHECK(dkim_signer_set_add(set, "example.org", "s1", path, &exposed, err, sizeof err) == 0);
	unlink(path);
	buf_free(&rec);

	const char *body = "From: Ann <ann@example.org>\r\nTo: b@example.net\r\nSubject: hi\r\n"
			   "\r\n  indented line \t\r\n\r\n\r\n";
	sign_msg(set, body, out, sizeof out);
	CHECK_MSG(strncmp(out, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; "
			       "d=example.org; s=s1;\r\n\tt=", 78) == 0, "%s", out);
	CHECK(strstr(out, "h=From:From:Reply-To:Subject:Subject:") != NULL);
	buf_init(&msg, 1 << 16);
	buf_append_str(&msg, out);
	buf_append_str(&msg, body);
	struct txt_record key = { "s1._domainkey.example.org", pub };
	struct outcome o = verify_msg(msg.data, msg.len, 5, &key, 1);
	CHECK_MSG(o.res.n == 1 && o.res.sig[0].result == DKIM_PASS, "%s", o.res.sig[0].reason);
	/* An added Subject is caught by the over-signing. */
	buf_append_str(&msg, "");
	char *pos = strstr(msg.data, "Subject: hi");
	buf_reset(&rec);
	buf_append(&rec, msg.data, (size_t)(pos - msg.data));
	buf_append_str(&rec, "Subject: added\r\n");
	buf_append_str(&rec, pos);
	o = verify_msg(rec.data, rec.len, 0, &key, 1);
	CHECK(o.res.sig[0].result == DKIM_FAIL);
	buf_free(&rec);
	buf_free(&msg);
	dkim_signer_set_free(set);
}

TEST(config_dkim_sign)
{
	static const struct {
		const char *line;
		unsigned errors;
	} cases[] = {
		{ "dkim-sign Example.org sel /k\n", 0 },
		{ "dkim-sign example.org sel /k\ndkim-sign example.org ed /k2\n", 0 },
		{ "dkim-sign example.org sel /k\ndkim-sign EXAMPLE.org SEL /k2\n", 1 },
		{ "dkim-sign example.org sel\n", 1 },
		{ "dkim-sign bad_domain sel /k\n", 1 },
		{ "dkim-sign example.org se/l /k\n", 1 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config cfg;
		char text[256];
		snprintf(text, sizeof text, "listen smtp 127.0.0.1:2525\n%s", cases[i].line);
		config_init(&cfg);
		unsigned errors = config_parse(&cfg, "t", text, strlen(text), NULL, NULL);
		CHECK_MSG(errors == cases[i].errors, "%s: %u", cases[i].line, errors);
		if (i == 0) {
			CHECK_INT(cfg.ndkim_signs, 1);
			CHECK_STR(cfg.dkim_signs[0].domain, "example.org");
			CHECK_STR(cfg.dkim_signs[0].keyfile, "/k");
			CHECK_INT(cfg.dkim_signs[0].line, 2);
		}
		config_free(&cfg);
	}
}

TEST(zone_strings)
{
	char text[600];
	struct buf out;
	memset(text, 'a', sizeof text);
	text[0] = '"';
	buf_init(&out, 4096);
	CHECK(dkim_zone_strings((struct slice){ text, sizeof text }, &out) == 0);
	/* 255 + 255 + 90 bytes, each in quotes, the first '"' escaped. */
	CHECK(strncmp(out.data, "( \"\\\"aaa", 8) == 0);
	CHECK_INT(out.len, 2 + (2 + 256) + 2 + (2 + 255) + 2 + (2 + 90) + 2);
	buf_free(&out);
}

UNIT_MAIN()
