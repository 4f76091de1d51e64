/*
 * addr: parse RFC 5321 paths and mailboxes into a canonical struct addr.
 *
 * Implements RFC 5321 4.1.2 (Path, Mailbox, Local-part, Domain), 4.1.3
 * (address literals), 4.5.3.1.1-4.5.3.1.3 (size limits) and the SMTPUTF8
 * extensions of RFC 6531 3.3 (UTF-8 in atext, qtext and sub-domains).
 *
 * Contract: the parsers read only in.ptr[0 .. in.len - 1], never rely on a
 * NUL, allocate nothing, and check every limit before a byte is copied into
 * the fixed arrays of struct addr. On failure *out is zeroed. A successful
 * parse never leaves a NUL, a control character or (without ADDR_UTF8) a byte
 * >= 0x80 in any field.
 *
 * Security notes: the domain is the part after the last unquoted '@' and
 * nothing else; '%', '!' and source routes carry no routing meaning here, so
 * "user%remote@local", "remote!user@local" and "<@remote:user@local>" all
 * stay at "local" (RFC 5321 3.6.1: source routes are ignored). A quoted '@'
 * stays inside the quoted local part in the canonical text, so the text can
 * be handed on without changing where the mail goes.
 *
 * Limits beyond the header: a label longer than 63 octets (RFC 1035 2.3.4)
 * is ADDR_ERR_TOO_LONG, and a bare mailbox may be at most ADDR_PATH_MAX - 2
 * octets, so that every mailbox accepted here also fits in a Path.
 */
#include "mail/addr.h"

#include <arpa/inet.h>
#include <string.h>

#include "util/str.h"

#define LABEL_MAX 63
/* Longest textual IPv6 address ("ffff:...:255.255.255.255" is 45 octets). */
#define IPV6_TEXT_MAX 45
#define POSTMASTER "postmaster"

/* The length of the well-formed UTF-8 sequence at p, or 0. */
static size_t utf8_seq_len(const char *p, size_t avail)
{
	unsigned char c = (unsigned char)p[0];
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (avail < n || !utf8_valid(p, n))
		return 0;
	return n;
}

/*
 * The number of bytes of the non-ASCII character at p[pos], or an error: a
 * byte >= 0x80 is allowed only with ADDR_UTF8, and then only as well-formed
 * UTF-8.
 */
static int utf8_step(const char *p, size_t len, size_t pos, unsigned flags, size_t *n)
{
	if (!(flags & ADDR_UTF8))
		return ADDR_ERR_UTF8;
	*n = utf8_seq_len(p + pos, len - pos);
	return *n ? ADDR_OK : ADDR_ERR_UTF8;
}

/* RFC 5322 atext (the "specials" set of RFC 5321 is its complement). */
static bool is_atext(unsigned char c)
{
	return ascii_isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* qtextSMTP: %d32-33 / %d35-91 / %d93-126. */
static bool is_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/* dcontent of a General-address-literal: %d33-90 / %d94-126. */
static bool is_dcontent(unsigned char c)
{
	return (c >= 33 && c <= 90) || (c >= 94 && c <= 126);
}

/*
 * Scan a Dot-string starting at p[pos]; *end gets the first byte after it.
 * The written length is checked before each byte is taken.
 */
static int scan_dot_string(const char *p, size_t len, size_t pos, unsigned flags, size_t *end)
{
	size_t start = pos, atom = 0;

	while (pos < len) {
		unsigned char c = (unsigned char)p[pos];
		size_t n = 1;

		if (c >= 0x80) {
			int r = utf8_step(p, len, pos, flags, &n);
			if (r < 0)
				return r;
			atom++;
		} else if (is_atext(c)) {
			atom++;
		} else if (c == '.') {
			if (atom == 0)
				return ADDR_ERR_SYNTAX;
			atom = 0;
		} else {
			break;
		}
		if (pos - start + n > ADDR_LOCAL_MAX)
			return ADDR_ERR_TOO_LONG;
		pos += n;
	}
	/* Empty, or ends with a dot. */
	if (atom == 0)
		return ADDR_ERR_SYNTAX;
	*end = pos;
	return ADDR_OK;
}

/* Is the whole of p[0..n-1] a Dot-string (so that it needs no quotes)? */
static bool dot_string_valid(const char *p, size_t n, unsigned flags)
{
	size_t end;

	return scan_dot_string(p, n, 0, flags, &end) == ADDR_OK && end == n;
}

/*
 * Scan a Quoted-string starting at p[pos] (the opening quote) and copy its
 * unescaped content to dst (ADDR_LOCAL_MAX + 1 bytes, NUL-terminated).
 */
static int scan_quoted(const char *p, size_t len, size_t pos, unsigned flags, char *dst,
		       size_t *end)
{
	size_t start = pos, out = 0;

	pos++;
	for (;;) {
		unsigned char c;
		size_t n = 1, skip = 0;

		if (pos >= len)
			return ADDR_ERR_SYNTAX;
		c = (unsigned char)p[pos];
		if (c == '"') {
			if (pos - start + 1 > ADDR_LOCAL_MAX)
				return ADDR_ERR_TOO_LONG;
			pos++;
			break;
		}
		if (c == '\\') {
			/* quoted-pairSMTP: only printable ASCII may be escaped. */
			if (pos + 1 >= len)
				return ADDR_ERR_SYNTAX;
			c = (unsigned char)p[pos + 1];
			if (c < 32 || c > 126)
				return c >= 0x80 && !(flags & ADDR_UTF8) ? ADDR_ERR_UTF8
									: ADDR_ERR_SYNTAX;
			skip = 1;
		} else if (c >= 0x80) {
			int r = utf8_step(p, len, pos, flags, &n);
			if (r < 0)
				return r;
		} else if (!is_qtext(c)) {
			return ADDR_ERR_SYNTAX;
		}
		/* Room must remain for the closing quote. */
		if (pos - start + skip + n + 1 > ADDR_LOCAL_MAX || out + n > ADDR_LOCAL_MAX)
			return ADDR_ERR_TOO_LONG;
		memcpy(dst + out, p + pos + skip, n);
		out += n;
		pos += skip + n;
	}
	dst[out] = '\0';
	*end = pos;
	return ADDR_OK;
}

/*
 * Scan a Domain starting at p[pos]; *end gets the first byte after it.
 * sub-domain = Let-dig [Ldh-str], 1..63 octets; with ADDR_UTF8 a UTF-8
 * character counts as a letter (U-label, RFC 6531 3.3). No trailing dot.
 */
static int scan_domain(const char *p, size_t len, size_t pos, unsigned flags, size_t *end)
{
	size_t start = pos;

	for (;;) {
		size_t label = pos;

		while (pos < len) {
			unsigned char c = (unsigned char)p[pos];
			size_t n = 1;

			if (c >= 0x80) {
				int r = utf8_step(p, len, pos, flags, &n);
				if (r < 0)
					return r;
			} else if (!ascii_isalnum(c) && c != '-') {
				break;
			}
			if (pos - label + n > LABEL_MAX || pos - start + n > ADDR_DOMAIN_MAX)
				return ADDR_ERR_TOO_LONG;
			pos += n;
		}
		if (pos == label)
			return ADDR_ERR_SYNTAX; /* empty label: leading, double or trailing dot */
		if (p[label] == '-' || p[pos - 1] == '-')
			return ADDR_ERR_SYNTAX;
		if (pos < len && p[pos] == '.') {
			if (pos - start + 1 > ADDR_DOMAIN_MAX)
				return ADDR_ERR_TOO_LONG;
			pos++;
			continue;
		}
		break;
	}
	*end = pos;
	return ADDR_OK;
}

/* Snum "." Snum "." Snum "." Snum, each 1-3 digits and at most 255. */
static bool ipv4_literal_valid(const char *p, size_t n)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t digits = 0;

		if (part > 0) {
			if (i >= n || p[i] != '.')
				return false;
			i++;
		}
		while (i < n && ascii_isdigit(p[i]) && digits < 3) {
			v = v * 10 + (unsigned)(p[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || v > 255)
			return false;
	}
	return i == n;
}

/* What inet_pton(AF_INET6) accepts, checked on a NUL-terminated copy. */
static bool ipv6_literal_valid(const char *p, size_t n)
{
	char tmp[IPV6_TEXT_MAX + 1];
	struct in6_addr a;

	if (n < 2 || n > IPV6_TEXT_MAX)
		return false;
	/* Refuse early what inet_pton would read differently, such as a NUL. */
	for (size_t i = 0; i < n; i++)
		if (!ascii_isxdigit(p[i]) && p[i] != ':' && p[i] != '.')
			return false;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, &a) == 1;
}

/* Standardized-tag ":" 1*dcontent, the tag an Ldh-str. */
static bool general_literal_valid(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && (ascii_isalnum(p[i]) || p[i] == '-'))
		i++;
	/* Ldh-str ends with a Let-dig. */
	if (i == 0 || i >= n || p[i] != ':' || p[i - 1] == '-')
		return false;
	if (++i >= n)
		return false;
	for (; i < n; i++)
		if (!is_dcontent((unsigned char)p[i]))
			return false;
	return true;
}

bool addr_literal_valid(struct slice s)
{
	static const char tag6[] = "IPv6:";
	const char *p;
	size_t n;

	if (s.len < 2 || s.len > ADDR_DOMAIN_MAX || s.ptr[0] != '[' || s.ptr[s.len - 1] != ']')
		return false;
	p = s.ptr + 1;
	n = s.len - 2;
	if (n >= sizeof(tag6) - 1 && slice_eq_cstr_nocase((struct slice){ p, sizeof(tag6) - 1 },
							  tag6))
		return ipv6_literal_valid(p + sizeof(tag6) - 1, n - (sizeof(tag6) - 1));
	/* "IPv6:" is registered with its own syntax; nothing else uses the tag. */
	if (memchr(p, ':', n) == NULL)
		return ipv4_literal_valid(p, n);
	return general_literal_valid(p, n);
}

bool addr_domain_valid(struct slice s, bool utf8)
{
	size_t end;

	return scan_domain(s.ptr, s.len, 0, utf8 ? ADDR_UTF8 : 0, &end) == ADDR_OK &&
	       end == s.len;
}

/*
 * Scan an address literal starting at p[pos] ('['): up to the first ']',
 * which dcontent cannot hold, then validated as a whole.
 */
static int scan_literal(const char *p, size_t len, size_t pos, unsigned flags, size_t *end)
{
	size_t start = pos;

	for (pos++; pos < len && p[pos] != ']'; pos++) {
		unsigned char c = (unsigned char)p[pos];

		if (c >= 0x80)
			return flags & ADDR_UTF8 ? ADDR_ERR_SYNTAX : ADDR_ERR_UTF8;
		if (pos - start + 2 > ADDR_DOMAIN_MAX)
			return ADDR_ERR_TOO_LONG;
	}
	if (pos >= len)
		return ADDR_ERR_SYNTAX;
	pos++;
	if (!addr_literal_valid((struct slice){ p + start, pos - start }))
		return ADDR_ERR_SYNTAX;
	*end = pos;
	return ADDR_OK;
}

/* Does anything in s need SMTPUTF8? */
static bool has_non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* Append n bytes to a->text at *at, refusing to overflow it. */
static bool text_put(struct addr *a, size_t *at, const char *s, size_t n)
{
	if (n > sizeof(a->text) - 1 - *at)
		return false;
	memcpy(a->text + *at, s, n);
	*at += n;
	return true;
}

/* Build the canonical text from local, quoted and domain. */
static int build_text(struct addr *a)
{
	size_t at = 0;
	bool ok = true;

	if (a->quoted) {
		ok = text_put(a, &at, "\"", 1);
		for (const char *s = a->local; ok && *s; s++) {
			if (*s == '"' || *s == '\\')
				ok = text_put(a, &at, "\\", 1);
			ok = ok && text_put(a, &at, s, 1);
		}
		ok = ok && text_put(a, &at, "\"", 1);
	} else {
		ok = text_put(a, &at, a->local, strlen(a->local));
	}
	ok = ok && text_put(a, &at, "@", 1) && text_put(a, &at, a->domain, strlen(a->domain));
	a->text[at] = '\0';
	/* Cannot happen: ADDR_TEXT_MAX covers the worst case; kept as a guard. */
	return ok ? ADDR_OK : ADDR_ERR_TOO_LONG;
}

/*
 * Parse Local-part "@" (Domain / address-literal) at p[*pos] into out and
 * advance *pos past it; the caller checks what follows.
 */
static int parse_mailbox_at(const char *p, size_t len, size_t *pos, unsigned flags,
			    struct addr *out)
{
	size_t at = *pos, end;
	int r;

	if (at >= len)
		return ADDR_ERR_SYNTAX;
	if (p[at] == '"') {
		r = scan_quoted(p, len, at, flags, out->local, &end);
		if (r < 0)
			return r;
		/* "demo"@x and demo@x are the same mailbox (RFC 5321 4.1.2). */
		out->quoted = !dot_string_valid(out->local, strlen(out->local), flags);
	} else {
		r = scan_dot_string(p, len, at, flags, &end);
		if (r < 0)
			return r;
		memcpy(out->local, p + at, end - at);
		out->local[end - at] = '\0';
	}
	at = end;
	if (at >= len || p[at] != '@')
		return ADDR_ERR_SYNTAX;
	at++;
	if (at < len && p[at] == '[') {
		r = scan_literal(p, len, at, flags, &end);
		out->literal = true;
	} else {
		r = scan_domain(p, len, at, flags, &end);
	}
	if (r < 0)
		return r;
	memcpy(out->domain, p + at, end - at);
	out->domain[end - at] = '\0';
	if (!out->literal)
		str_lower(out->domain);
	*pos = end;
	out->utf8 = has_non_ascii(out->local) || has_non_ascii(out->domain);
	return build_text(out);
}

/* Skip a source route "@d1,@d2:" at p[*pos]; the domains are checked, then ignored. */
static int skip_source_route(const char *p, size_t len, size_t *pos, unsigned flags)
{
	size_t at = *pos;

	for (;;) {
		size_t end;
		int r;

		if (at >= len || p[at] != '@')
			return ADDR_ERR_SYNTAX;
		r = scan_domain(p, len, at + 1, flags, &end);
		if (r < 0)
			return r;
		at = end;
		/* Each domain is bounded, but their number is not: keep the path limit. */
		if (at + 1 > ADDR_PATH_MAX)
			return ADDR_ERR_TOO_LONG;
		if (at < len && p[at] == ',') {
			at++;
			continue;
		}
		if (at < len && p[at] == ':') {
			*pos = at + 1;
			return ADDR_OK;
		}
		return ADDR_ERR_SYNTAX;
	}
}

int addr_parse_path(struct slice in, unsigned flags, struct addr *out, size_t *consumed)
{
	const char *p = in.ptr;
	size_t len = in.len, pos = 1;
	const size_t pm = sizeof(POSTMASTER) - 1;
	int r;

	memset(out, 0, sizeof(*out));
	*consumed = 0;
	if (len < 2 || p[0] != '<')
		return ADDR_ERR_SYNTAX;
	if (p[1] == '>') {
		if (!(flags & ADDR_ALLOW_NULL))
			return ADDR_ERR_NULL;
		out->null = true;
		*consumed = 2;
		return ADDR_OK;
	}
	if ((flags & ADDR_ALLOW_POSTMASTER) && len >= pm + 2 &&
	    slice_eq_cstr_nocase((struct slice){ p + 1, pm }, POSTMASTER) && p[pm + 1] == '>') {
		memcpy(out->local, POSTMASTER, pm + 1);
		memcpy(out->text, POSTMASTER, pm + 1);
		*consumed = pm + 2;
		return ADDR_OK;
	}
	if (p[pos] == '@') {
		r = skip_source_route(p, len, &pos, flags);
		if (r < 0)
			goto fail;
	}
	r = parse_mailbox_at(p, len, &pos, flags, out);
	if (r < 0)
		goto fail;
	if (pos >= len || p[pos] != '>') {
		r = ADDR_ERR_SYNTAX;
		goto fail;
	}
	pos++;
	if (pos > ADDR_PATH_MAX) {
		r = ADDR_ERR_TOO_LONG;
		goto fail;
	}
	*consumed = pos;
	return ADDR_OK;
fail:
	memset(out, 0, sizeof(*out));
	return r;
}

int addr_parse_mailbox(struct slice in, unsigned flags, struct addr *out)
{
	size_t pos = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if (in.len > ADDR_PATH_MAX - 2)
		return ADDR_ERR_TOO_LONG;
	r = parse_mailbox_at(in.ptr, in.len, &pos, flags, out);
	if (r == ADDR_OK && pos != in.len)
		r = ADDR_ERR_SYNTAX;
	if (r < 0)
		memset(out, 0, sizeof(*out));
	return r;
}

const char *addr_strerror(int err)
{
	switch (err) {
	case ADDR_OK:
		return "address ok";
	case ADDR_ERR_SYNTAX:
		return "syntax error in address";
	case ADDR_ERR_TOO_LONG:
		return "address too long";
	case ADDR_ERR_UTF8:
		return "malformed UTF-8, or UTF-8 without SMTPUTF8, in address";
	case ADDR_ERR_NULL:
		return "null address not allowed here";
	}
	return "invalid address";
}
