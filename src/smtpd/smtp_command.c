/*
 * smtp_command: split SMTP command lines and parse the arguments of MAIL,
 * RCPT, BDAT and HELO/EHLO.
 *
 * Implements RFC 5321 4.1.1 and 4.1.2 (command syntax, esmtp-param), 4.5.3.1.4
 * (command line length); RFC 1870 (SIZE), RFC 6152 (BODY=8BITMIME), RFC 6531
 * (SMTPUTF8, UTF-8 in esmtp-value), RFC 3461 4 and 5 (RET, ENVID, NOTIFY,
 * ORCPT, xtext), RFC 4954 5 (AUTH= of MAIL), RFC 3030 2 (BDAT).
 *
 * Contract: everything works on borrowed (ptr, len) slices, reads nothing past
 * len and allocates nothing; every value is length-checked before it is
 * copied into the fixed arrays of the result. On any error the result holds
 * nothing from the failed line. The session decides what is allowed when
 * (e.g. whether SMTPUTF8 or 8BITMIME were announced); this module only says
 * what the line means.
 *
 * Security notes: a parameter may appear only once, so a second SIZE or
 * ENVID cannot override a checked first one. Decoded xtext never holds NUL,
 * and ENVID/ORCPT never hold control or non-ASCII bytes (RFC 3461 4.2, 4.4
 * ask for printable US-ASCII), so they can go into spool records and DSNs
 * as they are. AUTH= is validated but kept encoded.
 *
 * Leniency, on purpose: spaces after "FROM:"/"TO:" and trailing spaces after
 * the last parameter are accepted (some clients send them); lower-case hex in
 * xtext is decoded; HELO accepts '_' wherever a Domain accepts '-'.
 */
#include "smtpd/smtp_command.h"

#include "mail/sasl.h"

#include <errno.h>
#include <string.h>

#include "util/str.h"

/*
 * Command line limits, CRLF included. RFC 5321 4.5.3.1.4 sets 512; each
 * extension that puts parameters on MAIL or RCPT adds its own allowance.
 */
#define LINE_BASE 512
#define LINE_SIZE_EXTRA 26      /* RFC 1870: " SIZE=" and 20 digits */
#define LINE_DSN_MAIL_EXTRA 100 /* RFC 3461 5: RET= and ENVID= */
#define LINE_AUTH_EXTRA 500     /* RFC 4954 5: AUTH= */
#define LINE_BODY_EXTRA 14      /* RFC 6152: " BODY=8BITMIME" */
#define LINE_SMTPUTF8_EXTRA 10  /* RFC 6531: " SMTPUTF8" */
#define LINE_DSN_RCPT_EXTRA 500 /* RFC 3461 5: NOTIFY= and ORCPT= */

#define LINE_MAIL_MAX                                                                 \
	(LINE_BASE + LINE_SIZE_EXTRA + LINE_DSN_MAIL_EXTRA + LINE_AUTH_EXTRA +        \
	 LINE_BODY_EXTRA + LINE_SMTPUTF8_EXTRA)
#define LINE_RCPT_MAX (LINE_BASE + LINE_DSN_RCPT_EXTRA)

/* RFC 1870: SIZE is at most 20 digits. */
#define SIZE_DIGITS_MAX 20

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", SMTP_VERB_HELO }, { "EHLO", SMTP_VERB_EHLO },
	{ "MAIL", SMTP_VERB_MAIL }, { "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA }, { "BDAT", SMTP_VERB_BDAT },
	{ "RSET", SMTP_VERB_RSET }, { "NOOP", SMTP_VERB_NOOP },
	{ "QUIT", SMTP_VERB_QUIT }, { "HELP", SMTP_VERB_HELP },
	{ "VRFY", SMTP_VERB_VRFY }, { "EXPN", SMTP_VERB_EXPN },
	{ "STARTTLS", SMTP_VERB_STARTTLS }, { "AUTH", SMTP_VERB_AUTH },
};

void smtp_command_parse(struct slice line, struct smtp_command *out)
{
	const char *sp = line.len ? memchr(line.ptr, ' ', line.len) : NULL;

	out->verb = SMTP_VERB_UNKNOWN;
	if (sp) {
		out->name = (struct slice){ line.ptr, (size_t)(sp - line.ptr) };
		out->arg = (struct slice){ sp + 1, line.len - out->name.len - 1 };
	} else {
		out->name = line;
		out->arg = (struct slice){ line.ptr ? line.ptr + line.len : "", 0 };
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (slice_eq_cstr_nocase(out->name, verbs[i].name)) {
			out->verb = verbs[i].verb;
			break;
		}
	}
}

size_t smtp_command_line_max(enum smtp_verb verb)
{
	switch (verb) {
	case SMTP_VERB_MAIL:
		return LINE_MAIL_MAX;
	case SMTP_VERB_RCPT:
		return LINE_RCPT_MAX;
	case SMTP_VERB_AUTH:
		return SASL_LINE_MAX + 2; /* RFC 4954 4: the initial response makes it long */
	default:
		return LINE_BASE;
	}
}

/* RFC 3461 4 xchar: %d33-42 / %d44-60 / %d62-126 (not SP, '+', '='). */
static bool is_xchar(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

bool xtext_decode(struct slice in, char *dst, size_t dstlen, size_t *outlen)
{
	size_t n = 0, i = 0;

	if (dstlen == 0)
		return false;
	while (i < in.len) {
		unsigned char c = (unsigned char)in.ptr[i];

		if (c == '+') {
			/* RFC 3461 asks for upper-case hex; lower case is read too. */
			int hi = in.len - i >= 3 ? ascii_xdigit_value(in.ptr[i + 1]) : -1;
			int lo = in.len - i >= 3 ? ascii_xdigit_value(in.ptr[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto fail;
			c = (unsigned char)(hi * 16 + lo);
			i += 3;
		} else if (is_xchar(c)) {
			i++;
		} else {
			goto fail;
		}
		if (n + 1 >= dstlen)
			goto fail;
		dst[n++] = (char)c;
	}
	dst[n] = '\0';
	if (outlen)
		*outlen = n;
	return true;
fail:
	dst[0] = '\0';
	return false;
}

int xtext_encode(struct slice in, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t need = 0;
	int r;

	for (size_t i = 0; i < in.len; i++)
		if (!size_add(need, is_xchar((unsigned char)in.ptr[i]) ? 1 : 3, &need))
			return -ENOSPC;
	/* Reserve everything first, so that a failure leaves out as it was. */
	r = buf_reserve(out, need);
	if (r < 0)
		return r;
	for (size_t i = 0; i < in.len; i++) {
		unsigned char c = (unsigned char)in.ptr[i];

		if (is_xchar(c)) {
			r = buf_putc(out, (char)c);
		} else {
			char enc[3] = { '+', hex[c >> 4], hex[c & 15] };
			r = buf_append(out, enc, sizeof(enc));
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* ENVID and ORCPT must decode to printable US-ASCII (RFC 3461 4.2, 4.4). */
static bool printable_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 32 || (unsigned char)s[i] > 126)
			return false;
	return true;
}

/* One esmtp-param: keyword ["=" value]. */
struct param {
	struct slice keyword;
	struct slice value;
	bool has_value;
};

/*
 * Split one token (no SP in it) into keyword and value, checking the syntax
 * of RFC 5321 4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"),
 * esmtp-value = 1*(%d33-60 / %d62-126), plus well-formed UTF-8 (RFC 6531 3.3;
 * the known parameters refuse it later).
 */
static int param_split(struct slice tok, struct param *p)
{
	size_t i = 0;

	while (i < tok.len && (ascii_isalnum(tok.ptr[i]) || (i > 0 && tok.ptr[i] == '-')))
		i++;
	if (i == 0)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	p->keyword = (struct slice){ tok.ptr, i };
	p->value = (struct slice){ tok.ptr + i, 0 };
	p->has_value = false;
	if (i == tok.len)
		return SMTP_CMD_OK;
	if (tok.ptr[i] != '=' || i + 1 == tok.len)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	p->value = (struct slice){ tok.ptr + i + 1, tok.len - i - 1 };
	p->has_value = true;
	for (size_t k = 0; k < p->value.len; k++) {
		unsigned char c = (unsigned char)p->value.ptr[k];
		if (c < 33 || c == '=' || c == 127)
			return SMTP_CMD_ERR_PARAM_SYNTAX;
	}
	if (!utf8_valid(p->value.ptr, p->value.len))
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	return SMTP_CMD_OK;
}

/* A known parameter: its keyword and the function that checks and stores its value. */
struct param_def {
	const char *keyword;
	int (*parse)(void *out, const struct param *p);
};

/*
 * Walk the parameters after the path, each preceded by one or more SP, and
 * hand each to its parse function. A keyword not in defs is PARAM_UNKNOWN, a
 * keyword seen twice is PARAM_DUP. Anything but SP right after the path is a
 * plain syntax error (e.g. "<a@b>x").
 */

static int params_parse(struct slice rest, const struct param_def *defs, size_t ndefs,
			void *out)
{
	unsigned seen = 0;
	size_t pos = 0;

	while (pos < rest.len) {
		struct param p;
		size_t start, k;
		int r;

		if (rest.ptr[pos] != ' ')
			return SMTP_CMD_ERR_SYNTAX;
		while (pos < rest.len && rest.ptr[pos] == ' ')
			pos++;
		if (pos == rest.len)
			break;
		start = pos;
		while (pos < rest.len && rest.ptr[pos] != ' ')
			pos++;
		r = param_split((struct slice){ rest.ptr + start, pos - start }, &p);
		if (r < 0)
			return r;
		for (k = 0; k < ndefs; k++)
			if (slice_eq_cstr_nocase(p.keyword, defs[k].keyword))
				break;
		if (k == ndefs)
			return SMTP_CMD_ERR_PARAM_UNKNOWN;
		if (seen & (1u << k))
			return SMTP_CMD_ERR_PARAM_DUP;
		seen |= 1u << k;
		r = defs[k].parse(out, &p);
		if (r < 0)
			return r;
	}
	return SMTP_CMD_OK;
}

static int mail_size(void *arg, const struct param *p)
{
	struct smtp_mail_args *out = arg;

	if (!p->has_value || p->value.len > SIZE_DIGITS_MAX)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	int r = parse_u64(p->value, UINT64_MAX, &out->size);
	/* RFC 1870 allows 20 digits, more than 64 bits hold: too big, not bad syntax. */
	if (r == -ERANGE)
		out->size = UINT64_MAX;
	else if (r < 0)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	out->size_given = true;
	return SMTP_CMD_OK;
}

static int mail_body(void *arg, const struct param *p)
{
	struct smtp_mail_args *out = arg;

	if (!p->has_value)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	if (slice_eq_cstr_nocase(p->value, "7BIT"))
		out->body = SMTP_BODY_7BIT;
	else if (slice_eq_cstr_nocase(p->value, "8BITMIME"))
		out->body = SMTP_BODY_8BITMIME;
	else
		return SMTP_CMD_ERR_BODY; /* BINARYMIME (RFC 3030) and unknown types */
	return SMTP_CMD_OK;
}

static int mail_smtputf8(void *arg, const struct param *p)
{
	struct smtp_mail_args *out = arg;

	if (p->has_value)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	out->smtputf8 = true;
	return SMTP_CMD_OK;
}

static int mail_ret(void *arg, const struct param *p)
{
	struct smtp_mail_args *out = arg;

	if (!p->has_value)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	if (slice_eq_cstr_nocase(p->value, "FULL"))
		out->ret = SMTP_RET_FULL;
	else if (slice_eq_cstr_nocase(p->value, "HDRS"))
		out->ret = SMTP_RET_HDRS;
	else
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	return SMTP_CMD_OK;
}

static int mail_envid(void *arg, const struct param *p)
{
	struct smtp_mail_args *out = arg;
	size_t n;

	if (!p->has_value || !xtext_decode(p->value, out->envid, sizeof(out->envid), &n) ||
	    !printable_ascii(out->envid, n)) {
		out->envid[0] = '\0';
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	}
	return SMTP_CMD_OK;
}

static int mail_auth(void *arg, const struct param *p)
{
	struct smtp_mail_args *out = arg;
	char scratch[SMTP_AUTH_PARAM_MAX + 1];

	if (!p->has_value || p->value.len > SMTP_AUTH_PARAM_MAX)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	if (!slice_eq(p->value, SLICE_LIT("<>")) &&
	    !xtext_decode(p->value, scratch, sizeof(scratch), NULL))
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	/* Kept encoded: it is only ever passed on, never interpreted here. */
	if (!slice_copy(out->auth, sizeof(out->auth), p->value))
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	return SMTP_CMD_OK;
}

static const struct param_def mail_params[] = {
	{ "SIZE", mail_size },   { "BODY", mail_body },   { "SMTPUTF8", mail_smtputf8 },
	{ "RET", mail_ret },     { "ENVID", mail_envid }, { "AUTH", mail_auth },
};

/* NOTIFY=NEVER, or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1). */
static int rcpt_notify(void *arg, const struct param *p)
{
	static const struct {
		const char *name;
		unsigned bit;
	} words[] = {
		{ "NEVER", SMTP_NOTIFY_NEVER },
		{ "SUCCESS", SMTP_NOTIFY_SUCCESS },
		{ "FAILURE", SMTP_NOTIFY_FAILURE },
		{ "DELAY", SMTP_NOTIFY_DELAY },
	};
	struct smtp_rcpt_args *out = arg;
	unsigned notify = 0;
	size_t pos = 0;

	if (!p->has_value)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	for (;;) {
		const char *comma = memchr(p->value.ptr + pos, ',', p->value.len - pos);
		size_t end = comma ? (size_t)(comma - p->value.ptr) : p->value.len;
		struct slice word = { p->value.ptr + pos, end - pos };
		size_t k;

		for (k = 0; k < sizeof(words) / sizeof(words[0]); k++)
			if (slice_eq_cstr_nocase(word, words[k].name))
				break;
		if (k == sizeof(words) / sizeof(words[0]))
			return SMTP_CMD_ERR_PARAM_SYNTAX;
		notify |= words[k].bit;
		if (!comma)
			break;
		pos = end + 1;
	}
	if ((notify & SMTP_NOTIFY_NEVER) && notify != SMTP_NOTIFY_NEVER)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	out->notify = notify;
	return SMTP_CMD_OK;
}

/* RFC 5322 atext, for the addr-type atom of ORCPT. */
static bool is_atext(unsigned char c)
{
	return ascii_isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* ORCPT=addr-type ";" xtext (RFC 3461 4.2), stored as "type;decoded". */
static int rcpt_orcpt(void *arg, const struct param *p)
{
	struct smtp_rcpt_args *out = arg;
	struct slice xtext;
	const char *semi;
	char *decoded;
	size_t tlen, n;

	if (!p->has_value || p->value.len > SMTP_ORCPT_MAX)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	semi = memchr(p->value.ptr, ';', p->value.len);
	if (semi == NULL || semi == p->value.ptr)
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	tlen = (size_t)(semi - p->value.ptr);
	for (size_t i = 0; i < tlen; i++)
		if (!is_atext((unsigned char)p->value.ptr[i]))
			return SMTP_CMD_ERR_PARAM_SYNTAX;
	/* tlen + 1 <= value.len <= SMTP_ORCPT_MAX: the type and ';' fit. */
	for (size_t i = 0; i < tlen; i++)
		out->orcpt[i] = ascii_tolower(p->value.ptr[i]);
	out->orcpt[tlen] = ';';
	xtext = (struct slice){ semi + 1, p->value.len - tlen - 1 };
	decoded = out->orcpt + tlen + 1;
	if (!xtext_decode(xtext, decoded, sizeof(out->orcpt) - tlen - 1, &n) || n == 0 ||
	    !printable_ascii(decoded, n)) {
		out->orcpt[0] = '\0';
		return SMTP_CMD_ERR_PARAM_SYNTAX;
	}
	return SMTP_CMD_OK;
}

static const struct param_def rcpt_params[] = {
	{ "NOTIFY", rcpt_notify },
	{ "ORCPT", rcpt_orcpt },
};

/*
 * Match "FROM:" / "TO:" (any case) at the start of arg and skip the SPs after
 * the colon; *rest is what is left.
 */
static bool prefix_skip(struct slice arg, const char *prefix, struct slice *rest)
{
	size_t n = strlen(prefix);

	if (!slice_startswith_nocase(arg, prefix))
		return false;
	while (n < arg.len && arg.ptr[n] == ' ')
		n++;
	*rest = (struct slice){ arg.ptr + n, arg.len - n };
	return true;
}

int smtp_parse_mail(struct slice arg, struct smtp_mail_args *out, int *addr_err)
{
	struct slice rest;
	size_t consumed;
	int r;

	memset(out, 0, sizeof(*out));
	if (addr_err)
		*addr_err = ADDR_OK;
	if (!prefix_skip(arg, "FROM:", &rest))
		return SMTP_CMD_ERR_SYNTAX;
	/* UTF-8 is accepted here and refused below unless SMTPUTF8 follows. */
	r = addr_parse_path(rest, ADDR_ALLOW_NULL | ADDR_UTF8, &out->from, &consumed);
	if (r < 0) {
		if (addr_err)
			*addr_err = r;
		r = SMTP_CMD_ERR_ADDR;
		goto fail;
	}
	r = params_parse((struct slice){ rest.ptr + consumed, rest.len - consumed }, mail_params,
			 sizeof(mail_params) / sizeof(mail_params[0]), out);
	if (r < 0)
		goto fail;
	if (out->from.utf8 && !out->smtputf8) {
		r = SMTP_CMD_ERR_NOT_ENABLED;
		goto fail;
	}
	return SMTP_CMD_OK;
fail:
	memset(out, 0, sizeof(*out));
	return r;
}

int smtp_parse_rcpt(struct slice arg, bool utf8, struct smtp_rcpt_args *out, int *addr_err)
{
	struct slice rest;
	size_t consumed;
	int r;

	memset(out, 0, sizeof(*out));
	if (addr_err)
		*addr_err = ADDR_OK;
	if (!prefix_skip(arg, "TO:", &rest))
		return SMTP_CMD_ERR_SYNTAX;
	r = addr_parse_path(rest, ADDR_ALLOW_POSTMASTER | (utf8 ? ADDR_UTF8 : 0), &out->to,
			    &consumed);
	if (r < 0) {
		if (addr_err)
			*addr_err = r;
		/* Well-formed UTF-8 outside an SMTPUTF8 transaction: 553 5.6.7, not 501. */
		if (r == ADDR_ERR_UTF8 && !utf8 &&
		    addr_parse_path(rest, ADDR_ALLOW_POSTMASTER | ADDR_UTF8, &out->to,
				    &consumed) == ADDR_OK)
			r = SMTP_CMD_ERR_NOT_ENABLED;
		else
			r = SMTP_CMD_ERR_ADDR;
		goto fail;
	}
	r = params_parse((struct slice){ rest.ptr + consumed, rest.len - consumed }, rcpt_params,
			 sizeof(rcpt_params) / sizeof(rcpt_params[0]), out);
	if (r < 0)
		goto fail;
	return SMTP_CMD_OK;
fail:
	memset(out, 0, sizeof(*out));
	return r;
}

int smtp_parse_bdat(struct slice arg, uint64_t *size, bool *last)
{
	const char *sp = arg.len ? memchr(arg.ptr, ' ', arg.len) : NULL;
	struct slice num = arg;

	*size = 0;
	*last = false;
	if (sp) {
		num.len = (size_t)(sp - arg.ptr);
		if (!slice_eq_cstr_nocase((struct slice){ sp + 1, arg.len - num.len - 1 }, "LAST"))
			return SMTP_CMD_ERR_SYNTAX;
	}
	/* chunk-size = 1*DIGIT (RFC 3030 2); 20 digits hold any uint64_t. */
	if (num.len == 0 || num.len > SIZE_DIGITS_MAX ||
	    parse_u64(num, SMTP_BDAT_SIZE_MAX, size) < 0) {
		*size = 0;
		return SMTP_CMD_ERR_SYNTAX;
	}
	*last = sp != NULL;
	return SMTP_CMD_OK;
}

bool smtp_helo_valid(struct slice arg)
{
	char tmp[ADDR_DOMAIN_MAX];

	if (arg.len > 0 && arg.ptr[0] == '[')
		return addr_literal_valid(arg);
	if (arg.len == 0 || arg.len > sizeof(tmp))
		return false;
	/* '_' (Windows host names) is allowed exactly where '-' is: inside a label. */
	for (size_t i = 0; i < arg.len; i++)
		tmp[i] = arg.ptr[i] == '_' ? '-' : arg.ptr[i];
	return addr_domain_valid((struct slice){ tmp, arg.len }, false);
}
