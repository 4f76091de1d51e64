/*
 * fuzz_spf_record: libFuzzer target for policy/spf_record.c (SPF records and
 * macros) and the header writers of policy/spf.c.
 *
 * The input is parsed as a record as it is and behind "v=spf1 ", expanded as
 * a macro-string (domain-spec and explanation flavours), and used as sender
 * and HELO in Received-SPF. Invariants (abort on violation):
 *   - a parsed record's terms are non-empty slices of the input made of
 *     visible ASCII, with a known qualifier, CIDR lengths in range, a valid or
 *     empty domain-spec; redirect/exp are valid domain-specs; the record
 *     rebuilt from its terms and modifiers parses to the same terms;
 *   - a failed parse leaves no terms and says why;
 *   - spf_macro_check() and spf_macro_expand() agree on syntax; the
 *     expansion is bounded; an upper-case-only expansion holds only
 *     unreserved characters and %XX; a target name from it is <= 253 octets
 *     with labels of 1-63;
 *   - the header is one field: CRLF at the end, every other CRLF a fold,
 *     no bare CR or LF, no line over 998 octets.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "policy/spf.h"
#include "policy/spf_record.h"
#include "util/buf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(struct slice s, struct slice in)
{
	return s.ptr >= in.ptr && s.ptr + s.len <= in.ptr + in.len;
}

static void check_record(struct slice in)
{
	struct spf_record r, again;
	struct buf b;
	int rc = spf_record_parse(in, &r);

	ASSERT(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc != 0) {
		ASSERT(r.terms == NULL && r.nterms == 0);
		ASSERT(rc == -ENOMEM || r.error[0] != '\0');
		return;
	}
	ASSERT(spf_record_is_spf(in));
	buf_init(&b, in.len + 16);
	ASSERT(buf_append_str(&b, "v=spf1") == 0);
	for (size_t i = 0; i < r.nterms; i++) {
		const struct spf_term *t = &r.terms[i];
		ASSERT(t->text.len > 0 && inside(t->text, in));
		for (size_t j = 0; j < t->text.len; j++)
			ASSERT(t->text.ptr[j] > 0x20 && t->text.ptr[j] < 0x7f);
		ASSERT(t->qualifier && strchr("+-~?", t->qualifier));
		ASSERT(t->cidr4 <= 32 && t->cidr6 <= 128);
		ASSERT(t->domain.len == 0 || (inside(t->domain, t->text) &&
					      spf_domain_spec_valid(t->domain)));
		if (t->mech == SPF_MECH_IP4)
			ASSERT(t->net.family == AF_INET && t->net.prefix <= 32);
		if (t->mech == SPF_MECH_IP6)
			ASSERT(t->net.family == AF_INET6 && t->net.prefix <= 128);
		if (t->mech == SPF_MECH_INCLUDE || t->mech == SPF_MECH_EXISTS)
			ASSERT(t->domain.len > 0);
		ASSERT(buf_putc(&b, ' ') == 0 && buf_append(&b, t->text.ptr, t->text.len) == 0);
	}
	if (r.redirect.ptr) {
		ASSERT(spf_domain_spec_valid(r.redirect) && inside(r.redirect, in));
		ASSERT(buf_appendf(&b, " redirect=%.*s", (int)r.redirect.len, r.redirect.ptr) == 0);
	}
	if (r.exp.ptr) {
		ASSERT(spf_domain_spec_valid(r.exp) && inside(r.exp, in));
		ASSERT(buf_appendf(&b, " exp=%.*s", (int)r.exp.len, r.exp.ptr) == 0);
	}
	/* The rebuilt record (unknown modifiers dropped) means the same. */
	rc = spf_record_parse(buf_slice(&b), &again);
	ASSERT(rc == 0 || rc == -ENOMEM);
	if (rc == 0) {
		ASSERT(again.nterms == r.nterms);
		for (size_t i = 0; i < r.nterms; i++) {
			ASSERT(again.terms[i].mech == r.terms[i].mech);
			ASSERT(again.terms[i].qualifier == r.terms[i].qualifier);
			ASSERT(again.terms[i].cidr4 == r.terms[i].cidr4);
			ASSERT(again.terms[i].cidr6 == r.terms[i].cidr6);
			ASSERT(slice_eq(again.terms[i].domain, r.terms[i].domain));
			ASSERT(memcmp(&again.terms[i].net, &r.terms[i].net, sizeof r.terms[i].net) == 0);
		}
		ASSERT(!again.redirect.ptr == !r.redirect.ptr && !again.exp.ptr == !r.exp.ptr);
		spf_record_free(&again);
	}
	buf_free(&b);
	spf_record_free(&r);
}

static void check_macros(struct slice in, const char *value)
{
	static const unsigned flags[] = { 0, SPF_MACRO_EXP };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct spf_macro_ctx ctx;
	char name[SPF_DOMAIN_MAX + 1];

	memset(&ctx, 0, sizeof ctx);
	sin6.sin6_addr.s6_addr[0] = 0x20;
	sin6.sin6_addr.s6_addr[15] = 1;
	ASSERT(spf_macro_set_ip(&ctx, (struct sockaddr *)&sin6) == 0);
	ctx.sender = value;
	ctx.local = value;
	ctx.sender_domain = "example.com";
	ctx.domain = "sub.example.com";
	ctx.helo = value;
	ctx.now = 1;
	for (size_t f = 0; f < 2; f++) {
		struct buf b;
		int syntax = spf_macro_check(in, flags[f]);
		ASSERT(syntax == 0 || syntax == -EINVAL);
		buf_init(&b, SPF_EXPAND_MAX); /* as policy/spf.c does */
		int rc = spf_macro_expand(in, &ctx, flags[f], &b);
		ASSERT((rc == -EINVAL) == (syntax == -EINVAL));
		ASSERT(rc == 0 || rc == -EINVAL || rc == -ENOSPC || rc == -ENAMETOOLONG ||
		       rc == -ENOMEM);
		ASSERT(b.len <= SPF_EXPAND_MAX);
		if (rc == 0) {
			if (spf_target_name(buf_slice(&b), name) == 0) {
				size_t n = strlen(name), label = 0;
				ASSERT(n > 0 && n <= SPF_DOMAIN_MAX);
				for (size_t i = 0; i <= n; i++) {
					if (i == n || name[i] == '.') {
						ASSERT(label >= 1 && label <= 63);
						label = 0;
					} else {
						label++;
					}
				}
			}
		}
		buf_free(&b);
	}
	/* Every letter upper case: the output is URL-escaped (7.3). */
	if (in.len == 1) {
		char spec[] = "%{X}";
		struct buf b;
		spec[2] = (char)(in.ptr[0] & ~0x20);
		buf_init(&b, SPF_EXPAND_MAX);
		if (spf_macro_expand(slice_from_cstr(spec), &ctx, SPF_MACRO_EXP, &b) == 0) {
			for (size_t i = 0; i < b.len; i++) {
				char c = b.data[i];
				ASSERT((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				       (c >= '0' && c <= '9') || strchr("-._~%", c));
				if (c == '%')
					ASSERT(i + 2 < b.len);
			}
		}
		buf_free(&b);
	}
}

static void check_header(const char *value)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct spf_outcome o;
	struct spf_query q = { (struct sockaddr *)&sin, value, value, "mx.example", false };
	char h[4096], ar[1024];

	memset(&o, 0, sizeof o);
	o.result = (enum spf_result)(strlen(value) % 7);
	snprintf(o.sender, sizeof o.sender, "%s", value);
	snprintf(o.domain, sizeof o.domain, "%s", value);
	snprintf(o.mechanism, sizeof o.mechanism, "%s", value);
	snprintf(o.problem, sizeof o.problem, "%s", value);
	if (spf_received_header(&o, &q, h, sizeof h) == 0) {
		size_t n = strlen(h), line = 0;
		ASSERT(n >= 2 && h[n - 2] == '\r' && h[n - 1] == '\n');
		for (size_t i = 0; i + 2 < n; i++) {
			if (h[i] == '\r') {
				ASSERT(h[i + 1] == '\n' && h[i + 2] == ' ');
				line = 0;
			} else if (h[i] != '\n') {
				ASSERT(++line <= 998);
			}
			ASSERT(h[i] != '\n' || (i > 0 && h[i - 1] == '\r'));
		}
	}
	if (spf_auth_results(&o, ar, sizeof ar) == 0)
		for (const char *p = ar; *p; p++)
			ASSERT(*p != '\r' && *p != '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exact-size copies, so that ASan sees any read past the end. */
	char *copy = malloc(size ? size : 1);
	char *spf = malloc(size + 7);
	char *value = malloc(size + 1);

	if (!copy || !spf || !value)
		goto out;
	memcpy(copy, data, size);
	memcpy(spf, "v=spf1 ", 7);
	memcpy(spf + 7, data, size);
	memcpy(value, data, size);
	value[size] = '\0';
	check_record((struct slice){ copy, size });
	check_record((struct slice){ spf, size + 7 });
	check_macros((struct slice){ copy, size }, value);
	check_header(value);
	(void)spf_identity_domain_ok(value);
out:
	free(copy);
	free(spf);
	free(value);
	return 0;
}
