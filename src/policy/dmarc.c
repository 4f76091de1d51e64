/*
 * dmarc: the From parser, the record parser, policy discovery and
 * evaluation of RFC 7489. See dmarc.h for the contract and the decisions.
 *
 * The From parser is a lexer (CFWS skipped between tokens, comments nested up
 * to DMARC_COMMENT_DEPTH_MAX with a counter, not recursion) under a
 * recursive-descent reader of RFC 5322 3.4 address-list with one token of
 * lookahead; groups cannot nest, so the descent is at most two levels deep.
 * It keeps nothing of a mailbox but its domain: local parts and display
 * names are only checked for syntax, because the domain after the last
 * unquoted '@' is what DMARC evaluates, and a parse that stopped short on an
 * unusual but valid form would let "From: x <a@evil> , b@bank" style
 * ambiguities through. Anything the grammar does not allow is an error.
 */
#include "policy/dmarc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "util/punycode.h"
#include "util/str.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* A domain as written in a header: UTF-8 labels may take 4 bytes a character. */
#define DMARC_RAW_DOMAIN_MAX (4 * DMARC_DOMAIN_MAX)

/* ==== the author domain (From) ================================================================ */

enum from_tok {
	FT_END,
	FT_ATOM,
	FT_QUOTED,
	FT_LITERAL,
	FT_SPECIAL, /* one of < > @ , ; : . */
	FT_ERROR,
};

struct from_lexer {
	const char *p;
	size_t len, pos;
	bool have; /* a token is waiting in type/special/text */
	enum from_tok type;
	char special;
	struct slice text; /* atom, or the inside of a quoted string or literal */
};

static bool from_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 5322 3.2.3 atext; bytes >= 0x80 as RFC 6532 (checked where it matters: the domain). */
static bool from_atext(unsigned char c)
{
	return ascii_isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c)) || c >= 0x80;
}

/* Is there a fold (CRLF followed by WSP) at pos? */
static bool from_fold(const struct from_lexer *lx, size_t pos)
{
	return pos + 2 < lx->len && lx->p[pos] == '\r' && lx->p[pos + 1] == '\n' &&
	       from_wsp(lx->p[pos + 2]);
}

/*
 * Step over a quoted-pair or one character of text inside a quoted string,
 * comment or literal: false for NUL, and for CR or LF not part of a fold.
 */
static bool from_inner_char(struct from_lexer *lx)
{
	unsigned char c = (unsigned char)lx->p[lx->pos];

	if (from_fold(lx, lx->pos)) {
		lx->pos += 3;
		return true;
	}
	if (c == '\0' || c == '\r' || c == '\n')
		return false;
	if (c == '\\') {
		/* quoted-pair: "\" (VCHAR / WSP), and obs-qp's controls but NUL, CR, LF */
		if (lx->pos + 1 >= lx->len)
			return false;
		c = (unsigned char)lx->p[lx->pos + 1];
		if (c == '\0' || c == '\r' || c == '\n')
			return false;
		lx->pos += 2;
		return true;
	}
	lx->pos++;
	return true;
}

/* Skip CFWS (RFC 5322 3.2.2): false on a broken comment or a stray CR/LF. */
static bool from_skip_cfws(struct from_lexer *lx)
{
	while (lx->pos < lx->len) {
		char c = lx->p[lx->pos];

		if (from_wsp(c)) {
			lx->pos++;
		} else if (from_fold(lx, lx->pos)) {
			lx->pos += 3;
		} else if (c == '(') {
			unsigned depth = 1;
			lx->pos++;
			while (depth > 0) {
				if (lx->pos >= lx->len)
					return false;
				c = lx->p[lx->pos];
				if (c == '(') {
					if (++depth > DMARC_COMMENT_DEPTH_MAX)
						return false;
					lx->pos++;
				} else if (c == ')') {
					depth--;
					lx->pos++;
				} else if (!from_inner_char(lx)) {
					return false;
				}
			}
		} else {
			break;
		}
	}
	return true;
}

/* Read a quoted string or literal that starts at pos, up to its closing character. */
static enum from_tok from_delimited(struct from_lexer *lx, char close, enum from_tok type)
{
	size_t start = ++lx->pos;

	while (lx->pos < lx->len) {
		char c = lx->p[lx->pos];
		if (c == close) {
			lx->text = (struct slice){ lx->p + start, lx->pos - start };
			lx->pos++;
			return type;
		}
		if (type == FT_LITERAL && c == '[')
			return FT_ERROR;
		if (!from_inner_char(lx))
			return FT_ERROR;
	}
	return FT_ERROR;
}

static enum from_tok from_lex(struct from_lexer *lx)
{
	unsigned char c;

	if (!from_skip_cfws(lx))
		return FT_ERROR;
	if (lx->pos >= lx->len)
		return FT_END;
	c = (unsigned char)lx->p[lx->pos];
	if (c == '"')
		return from_delimited(lx, '"', FT_QUOTED);
	if (c == '[')
		return from_delimited(lx, ']', FT_LITERAL);
	if (c && strchr("<>@,;:.", c)) {
		lx->special = (char)c;
		lx->pos++;
		return FT_SPECIAL;
	}
	if (from_atext(c)) {
		size_t start = lx->pos;
		while (lx->pos < lx->len && from_atext((unsigned char)lx->p[lx->pos]))
			lx->pos++;
		lx->text = (struct slice){ lx->p + start, lx->pos - start };
		return FT_ATOM;
	}
	return FT_ERROR; /* ')', ']', '\\', a control character */
}

static enum from_tok from_peek(struct from_lexer *lx)
{
	if (!lx->have) {
		lx->type = from_lex(lx);
		lx->have = true;
	}
	return lx->type;
}

static void from_take(struct from_lexer *lx)
{
	lx->have = false;
}

static bool from_peek_special(struct from_lexer *lx, char c)
{
	return from_peek(lx) == FT_SPECIAL && lx->special == c;
}

/* Take the special c if it comes next. */
static bool from_accept(struct from_lexer *lx, char c)
{
	if (!from_peek_special(lx, c))
		return false;
	from_take(lx);
	return true;
}

/* A mailbox's domain has been read: count it. */
static void from_record(struct dmarc_from *f, const char *raw, size_t len, bool literal)
{
	char ascii[DMARC_DOMAIN_MAX + 1];
	struct slice s = { raw, len };

	if (f->nmailboxes < UINT32_MAX)
		f->nmailboxes++;
	if (literal || !addr_domain_valid(s, true) ||
	    punycode_domain_to_ascii(s, ascii, sizeof ascii) < 0 ||
	    !addr_domain_valid(slice_from_cstr(ascii), false)) {
		f->no_domain = true;
		return;
	}
	if (f->domain[0] == '\0')
		memcpy(f->domain, ascii, strlen(ascii) + 1);
	else if (strcmp(f->domain, ascii) != 0)
		f->several_domains = true;
}

/*
 * domain = dot-atom / domain-literal / obs-domain: atoms joined by dots
 * (CFWS between them, obs-domain), or one literal. Counted when record.
 */
static int from_domain(struct from_lexer *lx, struct dmarc_from *f, bool record)
{
	char raw[DMARC_RAW_DOMAIN_MAX];
	size_t n = 0;

	if (from_peek(lx) == FT_LITERAL) {
		from_take(lx);
		if (record)
			from_record(f, "", 0, true);
		return 0;
	}
	/* Invariant: n < sizeof raw, so that the room left is never negative. */
	for (;;) {
		if (from_peek(lx) != FT_ATOM)
			return -EINVAL;
		/* The atom and one more byte (a dot, or the end) must fit. */
		if (lx->text.len >= sizeof raw - n)
			return -EINVAL;
		memcpy(raw + n, lx->text.ptr, lx->text.len);
		n += lx->text.len;
		from_take(lx);
		if (!from_accept(lx, '.'))
			break;
		raw[n++] = '.';
	}
	if (record)
		from_record(f, raw, n, false);
	return 0;
}

/* The words and dots read before we know whether they are a display name or a local part. */
struct from_words {
	size_t ntokens;
	bool local_ok;  /* word *("." word) so far */
	bool last_dot;
	bool first_dot; /* a phrase must start with a word */
};

static void from_words_read(struct from_lexer *lx, struct from_words *w)
{
	*w = (struct from_words){ .local_ok = true };
	for (;;) {
		enum from_tok t = from_peek(lx);
		bool dot = from_peek_special(lx, '.');

		if (t != FT_ATOM && t != FT_QUOTED && !dot)
			return;
		if (w->ntokens == 0)
			w->first_dot = dot;
		/* Words and dots must alternate, starting and ending with a word. */
		if ((w->ntokens == 0 && dot) || (w->ntokens > 0 && dot == w->last_dot))
			w->local_ok = false;
		w->last_dot = dot;
		w->ntokens++;
		from_take(lx);
	}
}

static bool from_local_part(const struct from_words *w)
{
	return w->ntokens > 0 && w->local_ok && !w->last_dot;
}

/* local-part (as words) "@" domain, then the domain is counted. */
static int from_addr_spec(struct from_lexer *lx, struct dmarc_from *f)
{
	struct from_words w;

	from_words_read(lx, &w);
	if (!from_local_part(&w) || !from_accept(lx, '@'))
		return -EINVAL;
	return from_domain(lx, f, true);
}

/*
 * angle-addr after its '<': [obs-route] addr-spec ">".
 * obs-route = obs-domain-list ":" ; obs-domain-list = *(CFWS / ",") "@" domain
 * *("," [CFWS] ["@" domain]). The route's domains are not author domains.
 */
static int from_angle(struct from_lexer *lx, struct dmarc_from *f)
{
	bool commas = false;

	/* Commas may lead a route, never an address. */
	while (from_accept(lx, ','))
		commas = true;
	if (commas && !from_peek_special(lx, '@'))
		return -EINVAL;
	if (from_accept(lx, '@')) {
		if (from_domain(lx, f, false) < 0)
			return -EINVAL;
		for (;;) {
			if (from_accept(lx, ':'))
				break;
			if (!from_accept(lx, ','))
				return -EINVAL;
			if (from_accept(lx, '@') && from_domain(lx, f, false) < 0)
				return -EINVAL;
		}
	}
	if (from_addr_spec(lx, f) < 0 || !from_accept(lx, '>'))
		return -EINVAL;
	return 0;
}

static int from_list(struct from_lexer *lx, struct dmarc_from *f, bool in_group);

/* One address: name-addr, addr-spec, or (outside a group) a group. */
static int from_address(struct from_lexer *lx, struct dmarc_from *f, bool in_group)
{
	struct from_words w;

	from_words_read(lx, &w);
	if (from_accept(lx, '<')) {
		if (w.first_dot)
			return -EINVAL;
		return from_angle(lx, f);
	}
	if (from_accept(lx, '@')) {
		if (!from_local_part(&w))
			return -EINVAL;
		return from_domain(lx, f, true);
	}
	if (!in_group && w.ntokens > 0 && !w.first_dot && from_accept(lx, ':'))
		return from_list(lx, f, true);
	return -EINVAL;
}

/*
 * address-list (RFC 5322 3.4, with obs-addr-list's empty elements), or inside
 * a group its group-list up to and including ';'.
 */
static int from_list(struct from_lexer *lx, struct dmarc_from *f, bool in_group)
{
	for (;;) {
		enum from_tok t = from_peek(lx);

		if (t == FT_ERROR)
			return -EINVAL;
		if (t == FT_END)
			return in_group ? -EINVAL : 0;
		if (in_group && from_accept(lx, ';'))
			return 0;
		if (from_accept(lx, ','))
			continue;
		if (from_address(lx, f, in_group) < 0)
			return -EINVAL;
		/* After an address: a separator, the end, or the group's end. */
		if (from_accept(lx, ','))
			continue;
		t = from_peek(lx);
		if (t == FT_END || (in_group && from_peek_special(lx, ';')))
			continue;
		return -EINVAL;
	}
}

void dmarc_from_init(struct dmarc_from *f)
{
	memset(f, 0, sizeof *f);
}

int dmarc_from_add(struct dmarc_from *f, struct slice value)
{
	struct from_lexer lx = { 0 };

	if (f->nfields < UINT32_MAX)
		f->nfields++;
	if (value.len >= 2 && value.ptr[value.len - 2] == '\r' && value.ptr[value.len - 1] == '\n')
		value.len -= 2;
	if (value.len > DMARC_FROM_VALUE_MAX) {
		f->syntax_error = true;
		return -EINVAL;
	}
	lx.p = value.ptr;
	lx.len = value.len;
	if (from_list(&lx, f, false) < 0) {
		f->syntax_error = true;
		return -EINVAL;
	}
	return 0;
}

enum dmarc_from_status dmarc_from_result(const struct dmarc_from *f)
{
	if (f->nfields == 0)
		return DMARC_FROM_MISSING;
	if (f->nfields > 1)
		return DMARC_FROM_MULTIPLE_FIELDS;
	if (f->syntax_error)
		return DMARC_FROM_SYNTAX;
	if (f->no_domain)
		return DMARC_FROM_NO_DOMAIN;
	if (f->several_domains)
		return DMARC_FROM_MULTIPLE_DOMAINS;
	if (f->nmailboxes == 0)
		return DMARC_FROM_EMPTY;
	return DMARC_FROM_OK;
}

const char *dmarc_from_status_name(enum dmarc_from_status st)
{
	switch (st) {
	case DMARC_FROM_OK: return "ok";
	case DMARC_FROM_MISSING: return "missing";
	case DMARC_FROM_MULTIPLE_FIELDS: return "multiple-fields";
	case DMARC_FROM_SYNTAX: return "syntax";
	case DMARC_FROM_NO_DOMAIN: return "no-domain";
	case DMARC_FROM_MULTIPLE_DOMAINS: return "multiple-domains";
	case DMARC_FROM_EMPTY: return "empty";
	}
	return "?";
}

bool dmarc_from_field(struct slice field, struct slice *value)
{
	size_t i = 4;

	if (field.len < 5 || !slice_eq_cstr_nocase((struct slice){ field.ptr, 4 }, "from"))
		return false;
	while (i < field.len && from_wsp(field.ptr[i]))
		i++;
	if (i >= field.len || field.ptr[i] != ':')
		return false;
	*value = (struct slice){ field.ptr + i + 1, field.len - i - 1 };
	return true;
}

/* ==== the record ============================================================================== */

static bool rec_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static struct slice rec_trim(struct slice s)
{
	while (s.len && rec_space(s.ptr[0])) {
		s.ptr++;
		s.len--;
	}
	while (s.len && rec_space(s.ptr[s.len - 1]))
		s.len--;
	return s;
}

/* Split *rest at the first sep: the part before it (trimmed); false when rest is used up. */
static bool rec_next(struct slice *rest, char sep, struct slice *part, bool *done)
{
	const char *end;

	if (*done)
		return false;
	end = memchr(rest->ptr, sep, rest->len);
	if (!end) {
		*part = rec_trim(*rest);
		*done = true;
		return true;
	}
	*part = rec_trim((struct slice){ rest->ptr, (size_t)(end - rest->ptr) });
	rest->len -= (size_t)(end - rest->ptr) + 1;
	rest->ptr = end + 1;
	return true;
}

static void rec_problem(struct dmarc_record *rec, const char *what)
{
	if (rec->problem[0] == '\0')
		str_copy(rec->problem, sizeof rec->problem, what);
}

static enum dmarc_policy rec_policy(struct slice v)
{
	if (slice_eq_cstr_nocase(v, "none"))
		return DMARC_POLICY_NONE;
	if (slice_eq_cstr_nocase(v, "quarantine"))
		return DMARC_POLICY_QUARANTINE;
	if (slice_eq_cstr_nocase(v, "reject"))
		return DMARC_POLICY_REJECT;
	return DMARC_POLICY_UNSET;
}

/* "r" or "s": 0 with *strict set, or -EINVAL. */
static int rec_alignment(struct slice v, bool *strict)
{
	if (slice_eq_cstr_nocase(v, "r") || slice_eq_cstr_nocase(v, "s")) {
		*strict = slice_eq_cstr_nocase(v, "s");
		return 0;
	}
	return -EINVAL;
}

/* fo: ( "0" / "1" / "d" / "s" ) *( *WSP ":" *WSP ... ) */
static int rec_fo(struct slice v, unsigned *fo)
{
	static const char opts[] = "01ds";
	struct slice part;
	bool done = false;
	unsigned bits = 0;

	while (rec_next(&v, ':', &part, &done)) {
		const char *o;
		if (part.len != 1 || part.ptr[0] == '\0' ||
		    !(o = strchr(opts, ascii_tolower(part.ptr[0]))))
			return -EINVAL;
		bits |= 1u << (o - opts);
	}
	*fo = bits;
	return 0;
}

/* rf: Keyword *( *WSP ":" *WSP Keyword ), Keyword an Ldh-str (RFC 5321). */
static int rec_rf(struct slice v, bool *afrf)
{
	struct slice part;
	bool done = false, found = false;

	while (rec_next(&v, ':', &part, &done)) {
		if (part.len == 0 || !ascii_isalnum(part.ptr[0]) ||
		    !ascii_isalnum(part.ptr[part.len - 1]))
			return -EINVAL;
		for (size_t i = 0; i < part.len; i++)
			if (!ascii_isalnum(part.ptr[i]) && part.ptr[i] != '-')
				return -EINVAL;
		found |= slice_eq_cstr_nocase(part, "afrf");
	}
	*afrf = found;
	return 0;
}

/*
 * dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ] with an absolute
 * URI (RFC 3986 3: scheme ":" and something), its characters those of RFC 3986
 * but ',' and '!' (which a DMARC URI must percent-encode).
 */
static bool rec_uri_valid(struct slice u)
{
	const char *bang = memchr(u.ptr, '!', u.len);
	size_t end = bang ? (size_t)(bang - u.ptr) : u.len, i = 0;

	if (bang) {
		size_t d = end + 1, digits = 0;
		while (d < u.len && ascii_isdigit(u.ptr[d])) {
			d++;
			digits++;
		}
		if (digits == 0 || digits > 20)
			return false;
		if (d < u.len && u.ptr[d] && strchr("kmgtKMGT", u.ptr[d]))
			d++;
		if (d != u.len)
			return false;
	}
	if (end == 0 || !ascii_isalpha(u.ptr[0]))
		return false;
	while (i < end && (ascii_isalnum(u.ptr[i]) || u.ptr[i] == '+' || u.ptr[i] == '-' ||
			   u.ptr[i] == '.'))
		i++;
	if (i >= end || u.ptr[i] != ':' || i + 1 >= end)
		return false;
	for (i++; i < end; i++) {
		unsigned char c = (unsigned char)u.ptr[i];
		if (c == '%') {
			if (i + 2 >= end)
				return false;
			if (!ascii_isxdigit(u.ptr[i + 1]) || !ascii_isxdigit(u.ptr[i + 2]))
				return false;
			i += 2;
			continue;
		}
		if (!(ascii_isalnum(c) || (c && strchr("-._~:/?#[]@$&'()*+;=", c))))
			return false;
	}
	return true;
}

/* rua, ruf: dmarc-uri *( *WSP "," *WSP dmarc-uri ); the number of valid URIs. */
static unsigned rec_uris(struct slice v, char *text, size_t textlen)
{
	struct slice part;
	bool done = false;
	unsigned n = 0;
	size_t keep = v.len < textlen - 1 ? v.len : textlen - 1;

	/* Kept for logs and reports; a NUL or control byte would not survive a log line. */
	for (size_t i = 0; i < keep; i++) {
		unsigned char c = (unsigned char)v.ptr[i];
		text[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
	}
	text[keep] = '\0';
	while (rec_next(&v, ',', &part, &done))
		if (rec_uri_valid(part) && n < UINT32_MAX)
			n++;
	return n;
}

enum rec_tag {
	TAG_P,
	TAG_SP,
	TAG_ADKIM,
	TAG_ASPF,
	TAG_PCT,
	TAG_RI,
	TAG_FO,
	TAG_RF,
	TAG_RUA,
	TAG_RUF,
	TAG_COUNT,
};

static const char *const rec_tag_names[TAG_COUNT] = {
	"p", "sp", "adkim", "aspf", "pct", "ri", "fo", "rf", "rua", "ruf",
};

static void rec_tag(struct dmarc_record *rec, enum rec_tag tag, struct slice v)
{
	char msg[64];
	uint64_t n;

	switch (tag) {
	case TAG_P:
		rec->p = rec_policy(v);
		if (rec->p == DMARC_POLICY_UNSET)
			rec_problem(rec, "invalid p value");
		return;
	case TAG_SP:
		rec->sp = rec_policy(v);
		rec->sp_invalid = rec->sp == DMARC_POLICY_UNSET;
		if (rec->sp_invalid)
			rec_problem(rec, "invalid sp value");
		return;
	case TAG_ADKIM:
		if (rec_alignment(v, &rec->adkim_strict) == 0)
			return;
		break;
	case TAG_ASPF:
		if (rec_alignment(v, &rec->aspf_strict) == 0)
			return;
		break;
	case TAG_PCT:
		if (parse_u64(v, 100, &n) == 0) {
			rec->pct = (unsigned)n;
			return;
		}
		break;
	case TAG_RI:
		if (parse_u64(v, UINT32_MAX, &n) == 0) {
			rec->ri = (uint32_t)n;
			return;
		}
		break;
	case TAG_FO:
		if (rec_fo(v, &rec->fo) == 0)
			return;
		break;
	case TAG_RF:
		if (rec_rf(v, &rec->rf_afrf) == 0)
			return;
		break;
	case TAG_RUA:
		rec->nrua = rec_uris(v, rec->rua, sizeof rec->rua);
		if (rec->nrua == 0)
			rec_problem(rec, "no valid rua URI");
		return;
	case TAG_RUF:
		rec->nruf = rec_uris(v, rec->ruf, sizeof rec->ruf);
		if (rec->nruf == 0)
			rec_problem(rec, "no valid ruf URI");
		return;
	case TAG_COUNT:
		return;
	}
	/* The default stays (6.3). */
	snprintf(msg, sizeof msg, "invalid %s value, default used", rec_tag_names[tag]);
	rec_problem(rec, msg);
}

int dmarc_record_parse(struct slice txt, struct dmarc_record *rec)
{
	struct slice rest = txt, part;
	bool done = false, first = true;
	unsigned seen = 0;

	memset(rec, 0, sizeof *rec);
	if (!rest.ptr)
		rest = SLICE_LIT("");
	rec->pct = 100;
	rec->ri = 86400;
	rec->fo = DMARC_FO_0;
	rec->rf_afrf = true;

	while (rec_next(&rest, ';', &part, &done)) {
		const char *eq = memchr(part.ptr, '=', part.len);
		struct slice name, value;

		if (part.len == 0) {
			if (first)
				return -EINVAL;
			continue;
		}
		if (!eq) {
			if (first)
				return -EINVAL;
			rec_problem(rec, "a tag without '='");
			continue;
		}
		name = rec_trim((struct slice){ part.ptr, (size_t)(eq - part.ptr) });
		value = rec_trim((struct slice){ eq + 1, part.len - (size_t)(eq - part.ptr) - 1 });
		if (first) {
			/* Record selection (6.6.3 step 2): v=DMARC1 first, or not a DMARC record. */
			if (!slice_eq_cstr_nocase(name, "v") || !slice_eq(value, SLICE_LIT("DMARC1")))
				return -EINVAL;
			first = false;
			continue;
		}
		for (size_t t = 0; t < TAG_COUNT; t++) {
			if (!slice_eq_cstr_nocase(name, rec_tag_names[t]))
				continue;
			if (seen & (1u << t)) {
				char msg[64];
				snprintf(msg, sizeof msg, "tag %s given twice, first kept",
					 rec_tag_names[t]);
				rec_problem(rec, msg);
			} else {
				seen |= 1u << t;
				rec_tag(rec, (enum rec_tag)t, value);
			}
			break;
		}
		/* An unknown tag is ignored (6.3). */
	}
	if (first)
		return -EINVAL;
	if (!(seen & (1u << TAG_P)))
		rec_problem(rec, "no p tag");
	if (rec->p != DMARC_POLICY_UNSET && !rec->sp_invalid) {
		rec->usable = true;
	} else if (rec->nrua > 0) {
		/* 6.6.3 step 6: with a valid rua, act as if p=none had been published. */
		rec->p = DMARC_POLICY_NONE;
		rec->sp = DMARC_POLICY_UNSET;
		rec->sp_invalid = false;
		rec->p_from_rua = true;
		rec->usable = true;
	}
	return 0;
}

/* ==== evaluation ============================================================================== */

/* The organizational domain of an ASCII domain: itself when it is a public suffix. */
static int dmarc_org(const struct psl *psl, const char *domain, char *out, size_t outlen)
{
	int r = psl_org_domain(psl, domain, out, outlen);

	if (r == -ENOENT)
		return str_copy(out, outlen, domain) ? 0 : -ENAMETOOLONG;
	return r;
}

/* Lower case, A-labels, a valid domain: 0 or -EINVAL. */
static int dmarc_normalize(const char *domain, char *out, size_t outlen)
{
	if (!domain || punycode_domain_to_ascii(slice_from_cstr(domain), out, outlen) < 0 ||
	    !addr_domain_valid(slice_from_cstr(out), false))
		return -EINVAL;
	return 0;
}

/* Alignment of a normalized domain with the From domain and its organizational domain. */
static void dmarc_align(const struct psl *psl, const char *from, const char *from_org,
			const char *domain, bool *strict, bool *relaxed)
{
	char norm[DMARC_DOMAIN_MAX + 1], org[DMARC_DOMAIN_MAX + 1];

	if (dmarc_normalize(domain, norm, sizeof norm) < 0)
		return;
	if (strcmp(norm, from) == 0)
		*strict = true;
	if (dmarc_org(psl, norm, org, sizeof org) == 0 && strcmp(org, from_org) == 0)
		*relaxed = true;
}

bool dmarc_aligned(const struct psl *psl, const char *a, const char *b, bool strict)
{
	char na[DMARC_DOMAIN_MAX + 1], oa[DMARC_DOMAIN_MAX + 1];
	bool s = false, r = false;

	if (dmarc_normalize(a, na, sizeof na) < 0 || dmarc_org(psl, na, oa, sizeof oa) < 0)
		return false;
	dmarc_align(psl, na, oa, b, &s, &r);
	return strict ? s : r;
}

/* The next policy lower in strictness (6.6.4), for a message pct did not sample. */
static enum dmarc_policy dmarc_lesser(enum dmarc_policy p)
{
	return p == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
}

struct dmarc_check {
	struct dns_resolver r;
	dmarc_done_fn *fn;
	void *arg;
	struct dns_req *req;
	bool at_org; /* the lookup in flight is the organizational domain's */
	bool spf_strict, spf_relaxed, dkim_strict, dkim_relaxed;
	bool fixed_draw;
	unsigned draw;
	struct dmarc_record rec;
	struct dmarc_outcome out;
	char qname[sizeof "_dmarc." + DMARC_DOMAIN_MAX];
};

static void dmarc_finish(struct dmarc_check *c, enum dmarc_result result)
{
	c->out.result = result;
	c->fn(c->arg, &c->out);
	free(c);
}

__attribute__((format(printf, 3, 4))) static void dmarc_fail(struct dmarc_check *c,
							    enum dmarc_result result,
							    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->out.problem, sizeof c->out.problem, fmt, ap);
	va_end(ap);
	dmarc_finish(c, result);
}

/* Apply the one DMARC record found (6.6.2, 6.6.4). */
static void dmarc_apply(struct dmarc_check *c)
{
	const struct dmarc_record *rec = &c->rec;
	struct dmarc_outcome *o = &c->out;

	str_copy(o->record_domain, sizeof o->record_domain, c->at_org ? o->org_domain
								     : o->from_domain);
	if (!rec->usable) {
		dmarc_fail(c, DMARC_RESULT_PERMERROR, "DMARC record at _dmarc.%s not usable: %s",
			   o->record_domain, rec->problem);
		return;
	}
	o->p = rec->p;
	o->sp = rec->sp;
	o->pct = rec->pct;
	/* A record found by the fallback is for a subdomain of its domain (6.6.3 step 3). */
	o->policy = c->at_org && rec->sp != DMARC_POLICY_UNSET ? rec->sp : rec->p;
	o->spf_aligned = rec->aspf_strict ? c->spf_strict : c->spf_relaxed;
	o->dkim_aligned = rec->adkim_strict ? c->dkim_strict : c->dkim_relaxed;
	if (rec->p_from_rua)
		str_copy(o->problem, sizeof o->problem, "p missing or invalid: p=none assumed");
	if (o->spf_aligned || o->dkim_aligned) {
		o->disposition = DMARC_POLICY_NONE;
		dmarc_finish(c, DMARC_RESULT_PASS);
		return;
	}
	unsigned draw = c->fixed_draw ? c->draw : arc4random_uniform(100);
	o->sampled = draw < rec->pct;
	o->disposition = o->sampled ? o->policy : dmarc_lesser(o->policy);
	dmarc_finish(c, DMARC_RESULT_FAIL);
}

static dns_result_fn dmarc_on_answer;

/* Ask for the record at domain: false when out of memory. */
static bool dmarc_lookup(struct dmarc_check *c, const char *domain)
{
	snprintf(c->qname, sizeof c->qname, "_dmarc.%s", domain);
	c->req = c->r.lookup(c->r.ctx, c->qname, DNS_T_TXT, dmarc_on_answer, c);
	return c->req != NULL;
}

static void dmarc_on_answer(void *arg, const struct dns_result *res)
{
	struct dmarc_check *c = arg;
	size_t found = 0;

	c->req = NULL;
	if (res->status == DNS_TEMPFAIL) {
		dmarc_fail(c, DMARC_RESULT_TEMPERROR, "temporary DNS failure for %s: %s", c->qname,
			   res->error);
		return;
	}
	/* Record selection (6.6.3 steps 2, 4, 5). NXDOMAIN, NODATA and a name DNS
	 * cannot hold (BADNAME) are all "no record here". */
	for (size_t i = 0; res->status == DNS_OK && i < res->n; i++) {
		struct dmarc_record rec;
		if (dmarc_record_parse((struct slice){ res->rr[i].text, res->rr[i].len }, &rec) < 0)
			continue;
		if (found++ == 0)
			c->rec = rec;
	}
	if (found > 1) {
		dmarc_fail(c, DMARC_RESULT_PERMERROR, "%zu DMARC records at %s", found, c->qname);
		return;
	}
	if (found == 1) {
		dmarc_apply(c);
		return;
	}
	if (!c->at_org && strcmp(c->out.org_domain, c->out.from_domain) != 0) {
		c->at_org = true;
		if (!dmarc_lookup(c, c->out.org_domain))
			dmarc_fail(c, DMARC_RESULT_TEMPERROR, "out of memory");
		return;
	}
	if (c->at_org)
		dmarc_fail(c, DMARC_RESULT_NONE, "no DMARC record at _dmarc.%s or _dmarc.%s",
			   c->out.from_domain, c->out.org_domain);
	else
		dmarc_fail(c, DMARC_RESULT_NONE, "no DMARC record at %s", c->qname);
}

struct dmarc_check *dmarc_check_start(const struct dns_resolver *r, const struct psl *psl,
				      const struct dmarc_input *in, dmarc_done_fn *fn, void *arg)
{
	struct dmarc_check *c;
	const char *from = in->from_domain;

	if (!from || strlen(from) > DMARC_DOMAIN_MAX ||
	    !addr_domain_valid(slice_from_cstr(from), false)) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	c->r = *r;
	c->fn = fn;
	c->arg = arg;
	c->fixed_draw = in->fixed_draw;
	c->draw = in->draw;
	memcpy(c->out.from_domain, from, strlen(from) + 1);
	str_lower(c->out.from_domain);
	if (dmarc_org(psl, c->out.from_domain, c->out.org_domain, sizeof c->out.org_domain) < 0) {
		free(c);
		errno = EINVAL;
		return NULL;
	}
	/* Both kinds of alignment now, while the borrowed strings are valid. */
	if (in->spf_pass)
		dmarc_align(psl, c->out.from_domain, c->out.org_domain, in->spf_domain,
			    &c->spf_strict, &c->spf_relaxed);
	for (size_t i = 0; i < in->ndkim; i++)
		dmarc_align(psl, c->out.from_domain, c->out.org_domain, in->dkim_domains[i],
			    &c->dkim_strict, &c->dkim_relaxed);
	/* Until a record says otherwise, alignment is reported as relaxed (the default). */
	c->out.spf_aligned = c->spf_relaxed;
	c->out.dkim_aligned = c->dkim_relaxed;
	if (!dmarc_lookup(c, c->out.from_domain)) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

void dmarc_check_cancel(struct dmarc_check *c)
{
	if (!c)
		return;
	if (c->req)
		c->r.cancel(c->r.ctx, c->req);
	free(c);
}

void dmarc_check_timeout(struct dmarc_check *c, struct dmarc_outcome *o)
{
	*o = c->out;
	o->result = DMARC_RESULT_TEMPERROR;
	o->policy = o->disposition = o->p = o->sp = DMARC_POLICY_UNSET;
	o->record_domain[0] = '\0';
	str_format(o->problem, sizeof o->problem, "no answer in time for %s", c->qname);
	dmarc_check_cancel(c);
}

void dmarc_outcome_undetermined(struct dmarc_outcome *o, enum dmarc_from_status st)
{
	static const struct {
		enum dmarc_from_status st;
		const char *text;
	} why[] = {
		{ DMARC_FROM_MISSING, "no From field" },
		{ DMARC_FROM_MULTIPLE_FIELDS, "several From fields" },
		{ DMARC_FROM_SYNTAX, "From field does not parse" },
		{ DMARC_FROM_NO_DOMAIN, "From address without a DNS domain" },
		{ DMARC_FROM_MULTIPLE_DOMAINS, "From addresses of several domains" },
		{ DMARC_FROM_EMPTY, "From field without an address" },
	};

	memset(o, 0, sizeof *o);
	o->result = DMARC_RESULT_PERMERROR;
	o->disposition = DMARC_POLICY_NONE;
	str_copy(o->problem, sizeof o->problem, "author domain not determined");
	for (size_t i = 0; i < ARRAY_LEN(why); i++)
		if (why[i].st == st)
			str_copy(o->problem, sizeof o->problem, why[i].text);
}

enum dmarc_action dmarc_action(const struct dmarc_outcome *o, enum dmarc_reject_policy mode)
{
	if (o->result != DMARC_RESULT_FAIL)
		return DMARC_ACTION_ACCEPT;
	if (o->disposition == DMARC_POLICY_QUARANTINE)
		return DMARC_ACTION_QUARANTINE;
	if (o->disposition != DMARC_POLICY_REJECT)
		return DMARC_ACTION_ACCEPT;
	switch (mode) {
	case DMARC_REJECT_POLICY_REJECT: return DMARC_ACTION_REJECT;
	case DMARC_REJECT_POLICY_QUARANTINE: return DMARC_ACTION_QUARANTINE;
	case DMARC_REJECT_POLICY_TAG: return DMARC_ACTION_ACCEPT;
	}
	return DMARC_ACTION_ACCEPT;
}

int dmarc_auth_results(const struct dmarc_outcome *o, char *out, size_t len)
{
	struct buf b;
	int r;

	if (len == 0)
		return -ENOSPC;
	buf_init(&b, len - 1);
	r = buf_appendf(&b, "dmarc=%s", dmarc_result_name(o->result));
	/* The policy comment only where a record was applied. */
	if (r == 0 && (o->result == DMARC_RESULT_PASS || o->result == DMARC_RESULT_FAIL)) {
		r = buf_appendf(&b, " (p=%s", dmarc_policy_name(o->p));
		if (r == 0 && o->policy != o->p)
			r = buf_appendf(&b, " sp=%s", dmarc_policy_name(o->policy));
		if (r == 0)
			r = buf_appendf(&b, " dis=%s)", dmarc_policy_name(o->disposition));
	}
	if (r == 0 && o->from_domain[0])
		r = buf_appendf(&b, " header.from=%s", o->from_domain);
	str_copy(out, len, r == 0 ? buf_cstr(&b) : "");
	buf_free(&b);
	return r == -ENOMEM ? -ENOMEM : r < 0 ? -ENOSPC : 0;
}

const char *dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_RESULT_NONE: return "none";
	case DMARC_RESULT_PASS: return "pass";
	case DMARC_RESULT_FAIL: return "fail";
	case DMARC_RESULT_TEMPERROR: return "temperror";
	case DMARC_RESULT_PERMERROR: return "permerror";
	}
	return "?";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_UNSET: return "unset";
	case DMARC_POLICY_NONE: return "none";
	case DMARC_POLICY_QUARANTINE: return "quarantine";
	case DMARC_POLICY_REJECT: return "reject";
	}
	return "?";
}
