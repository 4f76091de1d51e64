/*
 * dkim_parse: the pure parts of DKIM (see dkim.h): tag-lists, DKIM-Signature
 * values, key records, and header and body canonicalization.
 *
 * RFC 6376 3.2 (tag-list), 3.4 (canonicalization), 3.5 (DKIM-Signature),
 * 3.6.1 (key records), RFC 8463 (ed25519-sha256, raw 32-byte keys), RFC 8301
 * (rsa-sha1 is parsed only to be refused by the verifier).
 *
 * Contract: no allocation but the caller's struct buf, no I/O; every input is
 * untrusted and bounded (DKIM_TAGS_MAX, DKIM_H_MAX, the byte limits of
 * dkim.h). Parsed views point into the caller's text.
 */
#include "policy/dkim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mail/sasl.h"
#include "util/str.h"

/* Longest decimal number accepted for l= (RFC 6376 3.5: 76 digits), t= and x=. */
#define DKIM_DIGITS_MAX 76
/* Base64 text of the largest b= or p= we decode. */
#define DKIM_B64_TEXT_MAX (((DKIM_KEY_BYTES_MAX + 2) / 3) * 4)

const char *dkim_result_name(enum dkim_result r)
{
	switch (r) {
	case DKIM_NONE:
		return "none";
	case DKIM_PASS:
		return "pass";
	case DKIM_FAIL:
		return "fail";
	case DKIM_NEUTRAL:
		return "neutral";
	case DKIM_POLICY:
		return "policy";
	case DKIM_TEMPERROR:
		return "temperror";
	case DKIM_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

const char *dkim_alg_name(enum dkim_alg a)
{
	switch (a) {
	case DKIM_ALG_RSA_SHA256:
		return "rsa-sha256";
	case DKIM_ALG_ED25519_SHA256:
		return "ed25519-sha256";
	case DKIM_ALG_RSA_SHA1:
		return "rsa-sha1";
	}
	return "?";
}

__attribute__((format(printf, 3, 4))) static int fail(char *reason, size_t len, const char *fmt,
						     ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- tag-list ------------------------------------------------------------------------------ */

/* FWS and the line ends inside a folded field (a bare CR or LF counts too: no harm). */
static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static size_t skip_fws(struct slice in, size_t i)
{
	while (i < in.len && is_fws(in.ptr[i]))
		i++;
	return i;
}

int dkim_tag_list_parse(struct slice in, struct dkim_tag_list *out)
{
	size_t i = 0;

	out->n = 0;
	for (;;) {
		struct dkim_tag t;
		size_t start;

		i = skip_fws(in, i);
		if (i == in.len)
			/* Only "" (no tag-spec at all) is wrong; a final ';' is allowed. */
			return out->n ? 0 : -EINVAL;
		/* tag-name = ALPHA *(ALPHA / DIGIT / "_") */
		start = i;
		if (!ascii_isalpha(in.ptr[i]))
			return -EINVAL;
		while (i < in.len && (ascii_isalnum(in.ptr[i]) || in.ptr[i] == '_'))
			i++;
		t.name = (struct slice){ in.ptr + start, i - start };
		i = skip_fws(in, i);
		if (i == in.len || in.ptr[i] != '=')
			return -EINVAL;
		i++;
		t.raw_start = i;
		i = skip_fws(in, i);
		start = i;
		size_t end = i; /* just past the last VALCHAR */
		while (i < in.len && in.ptr[i] != ';') {
			unsigned char c = (unsigned char)in.ptr[i];
			if (!is_fws((char)c)) {
				/* VALCHAR = %x21-3A / %x3C-7E; 8-bit text is let through (RFC 8616). */
				if (c < 0x21 || c == 0x7f)
					return -EINVAL;
				end = i + 1;
			}
			i++;
		}
		t.value = (struct slice){ in.ptr + start, end - start };
		for (size_t k = 0; k < out->n; k++)
			if (slice_eq(out->tag[k].name, t.name))
				return -EINVAL; /* 3.2: a duplicate tag is an error */
		if (out->n == DKIM_TAGS_MAX)
			return -EINVAL;
		out->tag[out->n++] = t;
		if (i == in.len)
			return 0;
		i++; /* ';' */
	}
}

const struct dkim_tag *dkim_tag_find(const struct dkim_tag_list *l, const char *name)
{
	struct slice want = slice_from_cstr(name);
	for (size_t i = 0; i < l->n; i++)
		if (slice_eq(l->tag[i].name, want))
			return &l->tag[i];
	return NULL;
}

/* ---- values -------------------------------------------------------------------------------- */

/* Decode base64 with FWS anywhere in it (b=, bh=, p=). 0 or -EINVAL. */
static int b64_decode_fws(struct slice v, unsigned char *out, size_t max, size_t *outlen)
{
	char text[DKIM_B64_TEXT_MAX + 4];
	size_t n = 0;

	for (size_t i = 0; i < v.len; i++) {
		if (is_fws(v.ptr[i]))
			continue;
		if (n == sizeof text)
			return -EINVAL;
		text[n++] = v.ptr[i];
	}
	if (n == 0)
		return -EINVAL;
	if (sasl_base64_decode((struct slice){ text, n }, out, max, outlen) < 0)
		return -EINVAL;
	return 0;
}

/* A DNS name as DKIM uses it (d=, s=): labels of letters, digits, '-' and '_' (which real
 * selectors use), 1-63 each, at most DKIM_DOMAIN_MAX in all, no trailing dot. */
static bool dkim_name_valid(struct slice s)
{
	size_t label = 0;

	if (s.len == 0 || s.len > DKIM_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.ptr[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!ascii_isalnum(c) && c != '-' && c != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

bool dkim_selector_valid(struct slice s)
{
	return s.len <= 63 && dkim_name_valid(s);
}

/* A whole slice of digits, saturating at UINT64_MAX; false for none, or more than max digits. */
static bool parse_digits(struct slice s, size_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s.len == 0 || s.len > max)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		if (!ascii_isdigit(s.ptr[i]))
			return false;
		unsigned d = (unsigned)(s.ptr[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			v = UINT64_MAX;
		else
			v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* Split a colon-separated list with FWS around the items (h=, q=, key h=, s=, t=): the next
 * item after *pos, false at the end. */
static bool next_item(struct slice list, size_t *pos, struct slice *item)
{
	size_t i = *pos;

	if (i > list.len)
		return false;
	size_t end = i;
	while (end < list.len && list.ptr[end] != ':')
		end++;
	struct slice it = { list.ptr + i, end - i };
	while (it.len && is_fws(it.ptr[0])) {
		it.ptr++;
		it.len--;
	}
	while (it.len && is_fws(it.ptr[it.len - 1]))
		it.len--;
	*item = it;
	*pos = end + 1;
	return true;
}

static bool list_has(struct slice list, const char *word)
{
	size_t pos = 0;
	struct slice it;
	while (next_item(list, &pos, &it))
		if (slice_eq_cstr_nocase(it, word))
			return true;
	return false;
}

/* A field name as RFC 5322 3.6.8 allows: printable ASCII but ':'. */
static bool field_name_valid(struct slice s)
{
	if (s.len == 0 || s.len > 998)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!ascii_isgraph(s.ptr[i]) || s.ptr[i] == ':')
			return false;
	return true;
}

/* Is the domain of i= (after its last '@') d, or a subdomain of d? */
static bool identity_within(struct slice i, const char *d, bool exact)
{
	const char *at = NULL;
	for (size_t k = 0; k < i.len; k++)
		if (i.ptr[k] == '@')
			at = i.ptr + k;
	if (!at)
		return false;
	struct slice dom = { at + 1, (size_t)(i.ptr + i.len - at - 1) };
	size_t dlen = strlen(d);
	if (dom.len == dlen)
		return slice_eq_nocase(dom, (struct slice){ d, dlen });
	if (exact || dom.len < dlen + 1)
		return false;
	return dom.ptr[dom.len - dlen - 1] == '.' &&
	       slice_eq_nocase((struct slice){ dom.ptr + dom.len - dlen, dlen },
			       (struct slice){ d, dlen });
}

static int parse_canon(struct slice v, struct dkim_signature *sig)
{
	struct slice h = v, b = { "simple", 6 };
	const char *slash = memchr(v.ptr, '/', v.len);
	if (slash) {
		h.len = (size_t)(slash - v.ptr);
		b = (struct slice){ slash + 1, (size_t)(v.ptr + v.len - slash - 1) };
	}
	struct slice both[2] = { h, b };
	enum dkim_canon *out[2] = { &sig->hcanon, &sig->bcanon };
	for (int k = 0; k < 2; k++) {
		if (slice_eq_cstr_nocase(both[k], "simple"))
			*out[k] = DKIM_CANON_SIMPLE;
		else if (slice_eq_cstr_nocase(both[k], "relaxed"))
			*out[k] = DKIM_CANON_RELAXED;
		else
			return -EINVAL;
	}
	return 0;
}

int dkim_signature_parse(struct slice value, struct dkim_signature *sig, char *reason,
			 size_t reasonlen)
{
	struct dkim_tag_list tags;
	const struct dkim_tag *t;

	memset(sig, 0, sizeof *sig);
	reason[0] = '\0';
	if (dkim_tag_list_parse(value, &tags) < 0)
		return fail(reason, reasonlen, "signature syntax error");

	/* What the result reports comes first, so that it is filled even for a bad signature. */
	if ((t = dkim_tag_find(&tags, "d")) && dkim_name_valid(t->value))
		slice_copy(sig->d, sizeof sig->d, t->value);
	if ((t = dkim_tag_find(&tags, "s")) && dkim_name_valid(t->value))
		slice_copy(sig->s, sizeof sig->s, t->value);
	if ((t = dkim_tag_find(&tags, "b"))) {
		size_t n = 0;
		for (size_t k = 0; k < t->value.len && n < DKIM_B_SHORT; k++) {
			char c = t->value.ptr[k];
			if (ascii_isalnum(c) || c == '+' || c == '/' || c == '=')
				sig->b_short[n++] = c;
		}
		sig->b_short[n] = '\0';
	}
	if (!(t = dkim_tag_find(&tags, "a")))
		return fail(reason, reasonlen, "missing a= tag");
	if (slice_eq_cstr_nocase(t->value, "rsa-sha256"))
		sig->alg = DKIM_ALG_RSA_SHA256;
	else if (slice_eq_cstr_nocase(t->value, "ed25519-sha256"))
		sig->alg = DKIM_ALG_ED25519_SHA256;
	else if (slice_eq_cstr_nocase(t->value, "rsa-sha1"))
		sig->alg = DKIM_ALG_RSA_SHA1;
	else
		return fail(reason, reasonlen, "unknown algorithm");

	if (!(t = dkim_tag_find(&tags, "v")) || !slice_eq(t->value, SLICE_LIT("1")))
		return fail(reason, reasonlen, t ? "unknown version" : "missing v= tag");
	if (!(t = dkim_tag_find(&tags, "d")))
		return fail(reason, reasonlen, "missing d= tag");
	if (!sig->d[0])
		return fail(reason, reasonlen, "bad d= domain");
	if (!(t = dkim_tag_find(&tags, "s")))
		return fail(reason, reasonlen, "missing s= tag");
	/* The key's name "s._domainkey.d" must be a DNS name. */
	if (!sig->s[0] || strlen(sig->s) + strlen("._domainkey.") + strlen(sig->d) > DKIM_DOMAIN_MAX)
		return fail(reason, reasonlen, "bad s= selector");

	if (!(t = dkim_tag_find(&tags, "b")))
		return fail(reason, reasonlen, "missing b= tag");
	if (b64_decode_fws(t->value, sig->b, sizeof sig->b, &sig->blen) < 0)
		return fail(reason, reasonlen, "bad b= value");
	sig->b_start = t->raw_start;
	sig->b_end = (size_t)(t->value.ptr + t->value.len - value.ptr);
	if (!(t = dkim_tag_find(&tags, "bh")))
		return fail(reason, reasonlen, "missing bh= tag");
	if (b64_decode_fws(t->value, sig->bh, sizeof sig->bh, &sig->bhlen) < 0)
		return fail(reason, reasonlen, "bad bh= value");

	sig->hcanon = sig->bcanon = DKIM_CANON_SIMPLE;
	if ((t = dkim_tag_find(&tags, "c")) && parse_canon(t->value, sig) < 0)
		return fail(reason, reasonlen, "unknown canonicalization");

	if (!(t = dkim_tag_find(&tags, "h")))
		return fail(reason, reasonlen, "missing h= tag");
	size_t pos = 0;
	struct slice name;
	bool from = false;
	while (next_item(t->value, &pos, &name)) {
		if (!field_name_valid(name))
			return fail(reason, reasonlen, "bad h= header list");
		if (sig->nh == DKIM_H_MAX)
			return fail(reason, reasonlen, "too many names in h=");
		sig->h[sig->nh++] = name;
		from = from || slice_eq_cstr_nocase(name, "from");
	}
	if (!from)
		return fail(reason, reasonlen, "From not signed");

	if ((t = dkim_tag_find(&tags, "i"))) {
		if (!identity_within(t->value, sig->d, false))
			return fail(reason, reasonlen, "i= not within d=");
		for (size_t k = 0; k < t->value.len; k++)
			if (!ascii_isgraph(t->value.ptr[k]) && (unsigned char)t->value.ptr[k] < 0x80)
				return fail(reason, reasonlen, "bad i= value");
		if (!slice_copy(sig->i, sizeof sig->i, t->value))
			return fail(reason, reasonlen, "i= too long");
	}
	if ((t = dkim_tag_find(&tags, "l"))) {
		if (!parse_digits(t->value, DKIM_DIGITS_MAX, &sig->l))
			return fail(reason, reasonlen, "bad l= value");
		sig->has_l = true;
	}
	if ((t = dkim_tag_find(&tags, "q")) && !list_has(t->value, "dns/txt"))
		return fail(reason, reasonlen, "unknown query method");
	if ((t = dkim_tag_find(&tags, "t"))) {
		if (!parse_digits(t->value, DKIM_DIGITS_MAX, &sig->t))
			return fail(reason, reasonlen, "bad t= value");
		sig->has_t = true;
	}
	if ((t = dkim_tag_find(&tags, "x"))) {
		if (!parse_digits(t->value, DKIM_DIGITS_MAX, &sig->x))
			return fail(reason, reasonlen, "bad x= value");
		sig->has_x = true;
	}
	if (sig->has_t && sig->has_x && sig->x < sig->t)
		return fail(reason, reasonlen, "x= before t=");
	return 0;
}

int dkim_key_record_parse(struct slice txt, struct dkim_key_record *out, char *reason,
			  size_t reasonlen)
{
	struct dkim_tag_list tags;
	const struct dkim_tag *t;

	memset(out, 0, sizeof *out);
	reason[0] = '\0';
	if (dkim_tag_list_parse(txt, &tags) < 0)
		return fail(reason, reasonlen, "key record syntax error");
	/* v= is optional, but when present it must be DKIM1 (3.6.1). */
	if ((t = dkim_tag_find(&tags, "v")) && !slice_eq(t->value, SLICE_LIT("DKIM1")))
		return fail(reason, reasonlen, "key record version not DKIM1");
	if ((t = dkim_tag_find(&tags, "h")) && !list_has(t->value, "sha256"))
		return fail(reason, reasonlen, "key not for sha256");
	out->k = DKIM_KEY_RSA;
	if ((t = dkim_tag_find(&tags, "k"))) {
		if (slice_eq_cstr_nocase(t->value, "rsa"))
			out->k = DKIM_KEY_RSA;
		else if (slice_eq_cstr_nocase(t->value, "ed25519"))
			out->k = DKIM_KEY_ED25519;
		else
			return fail(reason, reasonlen, "unknown key type");
	}
	if ((t = dkim_tag_find(&tags, "s")) && !list_has(t->value, "*") &&
	    !list_has(t->value, "email"))
		return fail(reason, reasonlen, "key not for email");
	if ((t = dkim_tag_find(&tags, "t"))) {
		out->testing = list_has(t->value, "y");
		out->strict = list_has(t->value, "s");
	}
	if (!(t = dkim_tag_find(&tags, "p")))
		return fail(reason, reasonlen, "key record without p=");
	if (t->value.len == 0) {
		out->revoked = true;
		return 0;
	}
	if (b64_decode_fws(t->value, out->key, sizeof out->key, &out->keylen) < 0)
		return fail(reason, reasonlen, "bad p= value");
	return 0;
}

/* ---- canonicalization ---------------------------------------------------------------------- */

int dkim_canon_header(enum dkim_canon c, struct slice field, bool crlf, struct buf *out)
{
	int r;

	if (c == DKIM_CANON_SIMPLE) {
		if (!crlf && field.len >= 2 && field.ptr[field.len - 2] == '\r' &&
		    field.ptr[field.len - 1] == '\n')
			field.len -= 2;
		return buf_append(out, field.ptr, field.len);
	}
	/* 3.4.2: name lower-cased, WSP before the colon dropped; the value unfolded, WSP runs
	 * made one SP, WSP at its ends dropped. */
	const char *colon = memchr(field.ptr, ':', field.len);
	size_t name_len = colon ? (size_t)(colon - field.ptr) : field.len;
	size_t nl = name_len;
	while (nl > 0 && is_fws(field.ptr[nl - 1]))
		nl--;
	if ((r = buf_reserve(out, field.len + 2)) < 0)
		return r;
	for (size_t i = 0; i < nl; i++)
		out->data[out->len++] = ascii_tolower(field.ptr[i]);
	if (colon) {
		bool started = false, wsp = false;
		out->data[out->len++] = ':';
		for (size_t i = name_len + 1; i < field.len; i++) {
			char ch = field.ptr[i];
			if (ch == '\r' && i + 1 < field.len && field.ptr[i + 1] == '\n') {
				i++;
				continue;
			}
			if (is_wsp(ch)) {
				wsp = started;
				continue;
			}
			if (wsp)
				out->data[out->len++] = ' ';
			wsp = false;
			started = true;
			out->data[out->len++] = ch;
		}
	}
	if (crlf) {
		out->data[out->len++] = '\r';
		out->data[out->len++] = '\n';
	}
	out->data[out->len] = '\0';
	return 0;
}

void dkim_body_canon_init(struct dkim_body_canon *b, enum dkim_canon canon, uint64_t limit,
			  dkim_emit_fn *emit, void *ctx)
{
	memset(b, 0, sizeof *b);
	b->canon = canon;
	b->limit = limit;
	b->emit = emit;
	b->ctx = ctx;
}

static void body_flush(struct dkim_body_canon *b)
{
	if (b->nstage) {
		b->emit(b->ctx, b->stage, b->nstage);
		b->nstage = 0;
	}
}

/* One canonical byte: counted always, handed on up to the limit. */
static inline void body_put(struct dkim_body_canon *b, char c)
{
	b->total++;
	if (b->hashed >= b->limit)
		return;
	b->hashed++;
	if (b->nstage == sizeof b->stage)
		body_flush(b);
	b->stage[b->nstage++] = c;
}

/* A byte that is part of a line's text (not its CRLF). */
static void body_text(struct dkim_body_canon *b, char c)
{
	if (b->canon == DKIM_CANON_RELAXED && is_wsp(c)) {
		b->wsp = true; /* written as one SP if text follows on this line */
		return;
	}
	if (!b->content) {
		/* Empty lines are kept only when text follows them. */
		for (; b->empty_lines > 0; b->empty_lines--) {
			if (b->hashed >= b->limit) {
				b->total += 2 * b->empty_lines;
				b->empty_lines = 0;
				break;
			}
			body_put(b, '\r');
			body_put(b, '\n');
		}
		b->content = true;
	}
	if (b->wsp)
		body_put(b, ' ');
	b->wsp = false;
	body_put(b, c);
}

static void body_line_end(struct dkim_body_canon *b)
{
	if (b->content) {
		body_put(b, '\r');
		body_put(b, '\n');
	} else {
		b->empty_lines++;
	}
	b->content = false;
	b->wsp = false;
}

void dkim_body_canon_update(struct dkim_body_canon *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (b->cr) {
			b->cr = false;
			if (c == '\n') {
				body_line_end(b);
				continue;
			}
			body_text(b, '\r');
		}
		if (c == '\r')
			b->cr = true;
		else
			body_text(b, c);
	}
	body_flush(b);
}

void dkim_body_canon_finish(struct dkim_body_canon *b)
{
	if (b->cr) {
		b->cr = false;
		body_text(b, '\r');
	}
	/* A last line without CRLF gets one; trailing empty lines are dropped. */
	if (b->content)
		body_line_end(b);
	if (b->total == 0 && b->canon == DKIM_CANON_SIMPLE) {
		body_put(b, '\r');
		body_put(b, '\n');
	}
	body_flush(b);
}
