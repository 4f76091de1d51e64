/*
 * spf_record: SPF record parsing and macro expansion (RFC 7208 4.5, 4.6, 5,
 * 6, 7). See spf_record.h for the contract.
 *
 * Grammar notes (RFC 7208 12, with the errata the openspf suite follows):
 *   - terms are separated by one or more SP, trailing SP allowed; any other
 *     byte outside %x21-7E (TAB, CR, LF, NUL, 8-bit) is a syntax error;
 *   - a term is a modifier when it starts with name "=" (name = ALPHA
 *     *(ALPHA / DIGIT / "-" / "_" / ".")); so "=all", "1up=x" and
 *     "redirect:x" are unknown mechanisms, hence errors;
 *   - "redirect" and "exp" need a non-empty domain-spec; an unknown
 *     modifier's value must still be a valid macro-string;
 *   - a/mx take [":" domain-spec] [dual-cidr], stripped from the end, so
 *     "a:foo:bar/baz.example.com" is a domain; ip4/ip6 take one CIDR length
 *     only; a CIDR length has no leading zero;
 *   - names (mechanisms, modifiers, macro letters, "r") are case-insensitive.
 */
#include "policy/spf_record.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/str.h"

#define SPF_LABEL_MAX 63

static const struct {
	const char *name;
	enum spf_mech mech;
} mech_names[] = {
	{ "all", SPF_MECH_ALL }, { "include", SPF_MECH_INCLUDE }, { "a", SPF_MECH_A },
	{ "mx", SPF_MECH_MX },   { "ptr", SPF_MECH_PTR },         { "ip4", SPF_MECH_IP4 },
	{ "ip6", SPF_MECH_IP6 }, { "exists", SPF_MECH_EXISTS },
};

static bool is_delimiter(char c)
{
	return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

static bool is_macro_letter(char c, unsigned flags)
{
	switch (ascii_tolower(c)) {
	case 's': case 'l': case 'o': case 'd': case 'i': case 'p': case 'h': case 'v':
		return true;
	case 'c': case 'r': case 't':
		return (flags & (SPF_MACRO_EXP | SPF_MACRO_ANY)) != 0;
	default:
		return false;
	}
}

/* One token of a macro-string. */
struct macro_tok {
	bool macro;        /* a macro-expand (else one literal byte) */
	char letter;       /* '%', '_', '-' for the escapes, else the letter as written */
	uint64_t digits;   /* 0: none */
	bool reverse;
	struct slice delims;
	size_t len;        /* bytes taken */
};

/* Read the token at s[i]; false on a syntax error. */
static bool macro_token(struct slice s, size_t i, unsigned flags, struct macro_tok *t)
{
	unsigned char c = (unsigned char)s.ptr[i];

	memset(t, 0, sizeof *t);
	if (c != '%') {
		t->len = 1;
		t->letter = (char)c;
		return (c >= 0x21 && c <= 0x7e) || (c == ' ' && (flags & SPF_MACRO_EXP));
	}
	if (i + 1 >= s.len)
		return false;
	t->macro = true;
	char n = s.ptr[i + 1];
	if (n == '%' || n == '_' || n == '-') {
		t->letter = n;
		t->len = 2;
		return true;
	}
	if (n != '{' || i + 2 >= s.len || !is_macro_letter(s.ptr[i + 2], flags))
		return false;
	t->letter = s.ptr[i + 2];
	size_t j = i + 3;
	bool have_digits = false;
	while (j < s.len && ascii_isdigit(s.ptr[j])) {
		have_digits = true;
		/* Saturate: more parts than any value has means "all of them". */
		if (t->digits < 100000)
			t->digits = t->digits * 10 + (uint64_t)(s.ptr[j] - '0');
		j++;
	}
	if (have_digits && t->digits == 0)
		return false; /* 7.3: the number of parts MUST be nonzero */
	if (j < s.len && ascii_tolower(s.ptr[j]) == 'r') {
		t->reverse = true;
		j++;
	}
	size_t d = j;
	while (j < s.len && is_delimiter(s.ptr[j]))
		j++;
	t->delims = (struct slice){ s.ptr + d, j - d };
	if (j >= s.len || s.ptr[j] != '}')
		return false;
	t->len = j + 1 - i;
	return true;
}

int spf_macro_check(struct slice s, unsigned flags)
{
	struct macro_tok t;

	for (size_t i = 0; i < s.len; i += t.len)
		if (!macro_token(s, i, flags, &t))
			return -EINVAL;
	return 0;
}

bool spf_macro_uses(struct slice s, char letter)
{
	struct macro_tok t;

	for (size_t i = 0; i < s.len; i += t.len) {
		if (!macro_token(s, i, SPF_MACRO_EXP, &t))
			return false;
		if (t.macro && t.len > 2 && ascii_tolower(t.letter) == letter)
			return true;
	}
	return false;
}

/*
 * toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
 */
static bool toplabel_ok(struct slice l)
{
	bool alpha = false, dash = false;

	if (l.len == 0)
		return false;
	for (size_t i = 0; i < l.len; i++) {
		char c = l.ptr[i];
		if (c == '-')
			dash = true;
		else if (ascii_isalpha(c))
			alpha = true;
		else if (!ascii_isdigit(c))
			return false;
	}
	if (!dash)
		return alpha;
	return l.ptr[0] != '-' && l.ptr[l.len - 1] != '-';
}

bool spf_domain_spec_valid(struct slice s)
{
	struct macro_tok t;
	bool last_macro = false;

	if (s.len == 0)
		return false;
	for (size_t i = 0; i < s.len; i += t.len) {
		if (!macro_token(s, i, 0, &t))
			return false;
		last_macro = t.macro;
	}
	if (last_macro)
		return true;
	/* domain-end = "." toplabel [ "." ]: the toplabel is literal text. */
	size_t len = s.len;
	if (s.ptr[len - 1] == '.')
		len--;
	const char *dot = memrchr(s.ptr, '.', len);
	if (!dot)
		return false;
	size_t start = (size_t)(dot - s.ptr) + 1;
	return toplabel_ok((struct slice){ s.ptr + start, len - start });
}

/* --- record --------------------------------------------------------------- */

bool spf_record_is_spf(struct slice txt)
{
	return txt.len >= 6 && slice_startswith_nocase(txt, "v=spf1") &&
	       (txt.len == 6 || txt.ptr[6] == ' ');
}

static int rec_error(struct spf_record *r, struct slice term, const char *why)
{
	char text[64];
	size_t n = term.len < sizeof text - 4 ? term.len : sizeof text - 4;

	memcpy(text, term.ptr, n);
	str_copy(text + n, sizeof text - n, term.len > n ? "..." : "");
	/* Terms hold only visible ASCII by now: safe to quote as they are. */
	str_format(r->error, sizeof r->error, "%s in \"%s\"", why, text);
	return -EINVAL;
}

/* A CIDR length as written ("/" already taken): no leading zero, <= max. */
static bool cidr_len(struct slice d, unsigned max, unsigned *out)
{
	uint64_t v;

	if (d.len == 0 || d.len > 3 || (d.len > 1 && d.ptr[0] == '0'))
		return false;
	if (parse_u64(d, max, &v) < 0)
		return false;
	*out = (unsigned)v;
	return true;
}

/* Count trailing digits of s. */
static size_t trailing_digits(struct slice s)
{
	size_t n = 0;
	while (n < s.len && ascii_isdigit(s.ptr[s.len - 1 - n]))
		n++;
	return n;
}

/*
 * Take dual-cidr-length = [ "/" ip4 ] [ "//" ip6 ] off the end of *s.
 * false when a length is malformed or out of range.
 */
static bool strip_dual_cidr(struct slice *s, struct spf_term *t)
{
	size_t n = trailing_digits(*s);

	if (n > 0 && s->len >= n + 2 && s->ptr[s->len - n - 1] == '/' &&
	    s->ptr[s->len - n - 2] == '/') {
		if (!cidr_len((struct slice){ s->ptr + s->len - n, n }, 128, &t->cidr6))
			return false;
		s->len -= n + 2;
		n = trailing_digits(*s);
	}
	if (n > 0 && s->len >= n + 1 && s->ptr[s->len - n - 1] == '/') {
		if (!cidr_len((struct slice){ s->ptr + s->len - n, n }, 32, &t->cidr4))
			return false;
		s->len -= n + 1;
	}
	return true;
}

/* ip4:/ip6: network [ "/" length ]. */
static bool parse_network(struct slice arg, int family, struct cidr *net)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = memchr(arg.ptr, '/', arg.len);
	struct slice hs = arg;
	unsigned max = family == AF_INET ? 32 : 128, prefix = max;

	if (slash) {
		hs.len = (size_t)(slash - arg.ptr);
		struct slice ps = { slash + 1, arg.len - hs.len - 1 };
		if (!cidr_len(ps, max, &prefix))
			return false;
	}
	memset(net, 0, sizeof *net);
	if (hs.len == 0 || !slice_copy(host, sizeof host, hs) ||
	    inet_pton(family, host, net->addr) != 1)
		return false;
	net->family = family;
	net->prefix = prefix;
	for (size_t i = 0; i < (family == AF_INET ? 4u : 16u); i++) {
		unsigned bits = i * 8 >= prefix ? 0 : prefix - (unsigned)i * 8;
		if (bits < 8)
			net->addr[i] &= (uint8_t)(0xff00u >> bits);
	}
	return true;
}

static int parse_modifier(struct spf_record *r, struct slice term, size_t namelen)
{
	struct slice name = { term.ptr, namelen };
	struct slice value = { term.ptr + namelen + 1, term.len - namelen - 1 };
	struct slice *slot = NULL;

	if (slice_eq_cstr_nocase(name, "redirect"))
		slot = &r->redirect;
	else if (slice_eq_cstr_nocase(name, "exp"))
		slot = &r->exp;
	if (!slot) {
		/* Unknown modifiers are ignored (6), once their syntax is checked. */
		if (spf_macro_check(value, SPF_MACRO_ANY) < 0)
			return rec_error(r, term, "bad macro in modifier");
		return 0;
	}
	if (slot->ptr)
		return rec_error(r, term, "repeated modifier");
	if (!spf_domain_spec_valid(value))
		return rec_error(r, term, "bad domain-spec");
	*slot = value;
	return 0;
}

static int parse_mechanism(struct spf_record *r, struct slice term)
{
	struct spf_term *t = &r->terms[r->nterms];
	struct slice rest = term;
	size_t n = 0;
	bool known = false;

	memset(t, 0, sizeof *t);
	t->text = term;
	t->qualifier = '+';
	t->cidr4 = 32;
	t->cidr6 = 128;
	if (strchr("+-~?", rest.ptr[0])) {
		t->qualifier = rest.ptr[0];
		rest.ptr++;
		rest.len--;
	}
	while (n < rest.len && rest.ptr[n] != ':' && rest.ptr[n] != '/')
		n++;
	for (size_t i = 0; i < sizeof mech_names / sizeof mech_names[0]; i++) {
		if (slice_eq_cstr_nocase((struct slice){ rest.ptr, n }, mech_names[i].name)) {
			t->mech = mech_names[i].mech;
			known = true;
			break;
		}
	}
	if (!known)
		return rec_error(r, term, "unknown mechanism");
	rest.ptr += n;
	rest.len -= n;
	bool colon = rest.len > 0 && rest.ptr[0] == ':';
	struct slice arg = colon ? (struct slice){ rest.ptr + 1, rest.len - 1 } : rest;

	switch (t->mech) {
	case SPF_MECH_ALL:
		if (rest.len)
			return rec_error(r, term, "\"all\" takes no argument");
		break;
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
		if (!colon || !spf_domain_spec_valid(arg))
			return rec_error(r, term, "bad domain-spec");
		t->domain = arg;
		break;
	case SPF_MECH_PTR:
		if (rest.len && (!colon || !spf_domain_spec_valid(arg)))
			return rec_error(r, term, "bad domain-spec");
		t->domain = colon ? arg : (struct slice){ rest.ptr, 0 };
		break;
	case SPF_MECH_A:
	case SPF_MECH_MX:
		if (!strip_dual_cidr(colon ? &arg : &rest, t))
			return rec_error(r, term, "bad CIDR length");
		if (colon) {
			if (!spf_domain_spec_valid(arg))
				return rec_error(r, term, "bad domain-spec");
			t->domain = arg;
		} else if (rest.len) {
			return rec_error(r, term, "bad argument");
		}
		break;
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		if (!colon || !parse_network(arg, t->mech == SPF_MECH_IP4 ? AF_INET : AF_INET6,
					     &t->net))
			return rec_error(r, term, "bad network");
		break;
	}
	r->nterms++;
	return 0;
}

static int parse_term(struct spf_record *r, struct slice term)
{
	size_t n = 0;

	if (ascii_isalpha(term.ptr[0])) {
		n = 1;
		while (n < term.len && (ascii_isalnum(term.ptr[n]) || term.ptr[n] == '-' ||
					term.ptr[n] == '_' || term.ptr[n] == '.'))
			n++;
		if (n < term.len && term.ptr[n] == '=')
			return parse_modifier(r, term, n);
	}
	return parse_mechanism(r, term);
}

int spf_record_parse(struct slice txt, struct spf_record *out)
{
	size_t i, nterms = 0;

	memset(out, 0, sizeof *out);
	if (!spf_record_is_spf(txt)) {
		str_copy(out->error, sizeof out->error, "not an SPF record");
		return -EINVAL;
	}
	for (i = 6; i < txt.len; i++) {
		unsigned char c = (unsigned char)txt.ptr[i];
		if (c != ' ' && (c < 0x21 || c > 0x7e)) {
			str_format(out->error, sizeof out->error,
				   "invalid byte 0x%02x at offset %zu", c, i);
			return -EINVAL;
		}
		if (c != ' ' && txt.ptr[i - 1] == ' ')
			nterms++;
	}
	if (nterms > SPF_TERMS_MAX) {
		str_format(out->error, sizeof out->error, "more than %d terms", SPF_TERMS_MAX);
		return -EINVAL;
	}
	if (nterms > 0) {
		out->terms = calloc(nterms, sizeof *out->terms);
		if (!out->terms)
			return -ENOMEM;
	}
	for (i = 6; i < txt.len;) {
		if (txt.ptr[i] == ' ') {
			i++;
			continue;
		}
		const char *sp = memchr(txt.ptr + i, ' ', txt.len - i);
		size_t len = sp ? (size_t)(sp - txt.ptr) - i : txt.len - i;
		int rc = parse_term(out, (struct slice){ txt.ptr + i, len });
		if (rc < 0) {
			free(out->terms);
			out->terms = NULL;
			out->nterms = 0;
			return rc;
		}
		i += len;
	}
	return 0;
}

void spf_record_free(struct spf_record *r)
{
	free(r->terms);
	r->terms = NULL;
	r->nterms = 0;
}

/* --- macro expansion ------------------------------------------------------ */

int spf_macro_set_ip(struct spf_macro_ctx *ctx, const struct sockaddr *sa)
{
	uint8_t key[16];
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const char hex[] = "0123456789abcdef";

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return -EINVAL;
	netaddr_key(sa, key);
	netaddr_ip_text(sa, ctx->ip_text, sizeof ctx->ip_text);
	ctx->ipv6 = memcmp(key, mapped, sizeof mapped) != 0;
	if (!ctx->ipv6) {
		snprintf(ctx->ip_dotted, sizeof ctx->ip_dotted, "%u.%u.%u.%u", key[12], key[13],
			 key[14], key[15]);
		return 0;
	}
	/* 7.3: "i" of IPv6 is dot-separated nibbles, most significant first. */
	for (size_t i = 0; i < 32; i++) {
		ctx->ip_dotted[2 * i] = hex[(key[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
		ctx->ip_dotted[2 * i + 1] = '.';
	}
	ctx->ip_dotted[63] = '\0';
	return 0;
}

static const char *macro_value(const struct spf_macro_ctx *ctx, char letter, char *tbuf,
			       size_t tlen)
{
	const char *v = NULL;

	switch (ascii_tolower(letter)) {
	case 's': v = ctx->sender; break;
	case 'l': v = ctx->local; break;
	case 'o': v = ctx->sender_domain; break;
	case 'd': v = ctx->domain; break;
	case 'i': v = ctx->ip_dotted; break;
	case 'p': v = ctx->validated ? ctx->validated : "unknown"; break;
	case 'v': v = ctx->ipv6 ? "ip6" : "in-addr"; break;
	case 'h': v = ctx->helo; break;
	case 'c': v = ctx->ip_text; break;
	case 'r': v = ctx->receiver ? ctx->receiver : "unknown"; break;
	case 't':
		snprintf(tbuf, tlen, "%lld", ctx->now);
		v = tbuf;
		break;
	}
	return v ? v : "";
}

static bool unreserved(char c)
{
	return ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Append text, URL-escaped when upper (7.3: upper-case macro letters). */
static int put_value(struct buf *out, const char *p, size_t n, bool upper)
{
	if (!upper)
		return buf_append(out, p, n);
	for (size_t i = 0; i < n; i++) {
		int rc = unreserved(p[i]) ? buf_putc(out, p[i])
					  : buf_appendf(out, "%%%02X", (unsigned char)p[i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static bool in_delims(char c, struct slice delims)
{
	if (delims.len == 0)
		return c == '.';
	return memchr(delims.ptr, c, delims.len) != NULL;
}

static int expand_macro(const struct macro_tok *t, const struct spf_macro_ctx *ctx,
			struct buf *out)
{
	char tbuf[24];
	const char *v = macro_value(ctx, t->letter, tbuf, sizeof tbuf);
	size_t vlen = strlen(v);
	bool upper = t->letter >= 'A' && t->letter <= 'Z';
	/* Parts as offsets into v; at most one per byte, plus one. */
	uint16_t start[SPF_VALUE_MAX + 1], len[SPF_VALUE_MAX + 1];
	size_t nparts = 0, keep;
	int rc;

	if (t->digits == 0 && !t->reverse && t->delims.len == 0)
		return put_value(out, v, vlen, upper);
	if (vlen > SPF_VALUE_MAX)
		return -ENAMETOOLONG;
	start[0] = 0;
	for (size_t i = 0; i <= vlen; i++) {
		if (i == vlen || in_delims(v[i], t->delims)) {
			len[nparts] = (uint16_t)(i - start[nparts]);
			nparts++;
			if (i < vlen)
				start[nparts] = (uint16_t)(i + 1);
		}
	}
	keep = t->digits && t->digits < nparts ? (size_t)t->digits : nparts;
	/* The rightmost `keep` parts after optional reversal, joined with '.'. */
	for (size_t k = 0; k < keep; k++) {
		size_t j = t->reverse ? keep - 1 - k : nparts - keep + k;
		if (k > 0 && (rc = buf_putc(out, '.')) < 0)
			return rc;
		if ((rc = put_value(out, v + start[j], len[j], upper)) < 0)
			return rc;
	}
	return 0;
}

int spf_macro_expand(struct slice s, const struct spf_macro_ctx *ctx, unsigned flags,
		     struct buf *out)
{
	struct macro_tok t;
	size_t base = out->len;
	int rc = spf_macro_check(s, flags & ~(unsigned)SPF_MACRO_ANY);

	/* Syntax first, so that a bad macro is -EINVAL wherever it is. */
	for (size_t i = 0; i < s.len && rc == 0; i += t.len) {
		if (!macro_token(s, i, flags & ~(unsigned)SPF_MACRO_ANY, &t))
			return -EINVAL;
		if (!t.macro)
			rc = buf_putc(out, t.letter);
		else if (t.letter == '%')
			rc = buf_putc(out, '%');
		else if (t.letter == '_')
			rc = buf_putc(out, ' ');
		else if (t.letter == '-')
			rc = buf_append_str(out, "%20");
		else
			rc = expand_macro(&t, ctx, out);
		if (rc == 0 && out->len - base > SPF_EXPAND_MAX)
			rc = -ENOSPC;
	}
	return rc;
}

int spf_target_name(struct slice in, char *out)
{
	size_t len = in.len, label = 0;
	const char *p = in.ptr;

	if (len > 0 && p[len - 1] == '.')
		len--;
	/* 7.3: cut whole labels from the left until it fits. */
	while (len > SPF_DOMAIN_MAX) {
		const char *dot = memchr(p, '.', len);
		if (!dot)
			return -EINVAL;
		len -= (size_t)(dot - p) + 1;
		p = dot + 1;
	}
	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || p[i] == '.') {
			if (label == 0 || label > SPF_LABEL_MAX)
				return -EINVAL;
			label = 0;
			continue;
		}
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return -EINVAL;
		label++;
	}
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

bool spf_identity_domain_ok(const char *s)
{
	size_t len = strlen(s), label = 0, labels = 0;
	bool digits = true;

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || len > SPF_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0 || label > SPF_LABEL_MAX)
				return false;
			labels++;
			if (i == len)
				break;
			label = 0;
			digits = true;
			continue;
		}
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '[' || c == ']')
			return false;
		if (!ascii_isdigit(c))
			digits = false;
		label++;
	}
	return labels >= 2 && !digits;
}
