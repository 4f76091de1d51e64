/*
 * pop3_command: POP3 line reader and command parser. See pop3_command.h.
 *
 * RFC 1939 3 (commands: keyword, arguments separated by a single SP,
 * CRLF), 5-7 (the verbs and their arguments), RFC 2449 4 (line lengths),
 * RFC 2595 4 (STLS), RFC 5034 4 (AUTH mechanism [initial-response]).
 *
 * Security: the reader copies nothing past its limit and wipes what it held
 * on reset; the parser only points into the line it was given.
 */
#include "pop3d/pop3_command.h"

#include <string.h>

#include "util/str.h"

void pop3_reader_init(struct pop3_reader *r, size_t max)
{
	r->max = max < 3 ? 3 : max > POP3_LINE_ABS_MAX ? POP3_LINE_ABS_MAX : max;
	r->len = 0;
	r->too_long = false;
	r->nul = false;
	r->complete = false;
}

void pop3_reader_reset(struct pop3_reader *r)
{
	explicit_bzero(r->line, r->len + 1); /* the CR of a line handed out too */
	r->len = 0;
	r->too_long = false;
	r->nul = false;
	r->complete = false;
}

enum pop3_line_status pop3_reader_feed(struct pop3_reader *r, const char *p, size_t n,
				       size_t *used)
{
	/* A line handed out last time is over: start the next one. */
	if (r->complete)
		pop3_reader_reset(r);
	const char *lf = memchr(p, '\n', n);
	size_t take = lf ? (size_t)(lf - p) : n; /* octets before the LF */

	*used = lf ? take + 1 : n;
	if (!r->too_long) {
		/* Octets before the LF (its CR included) may be max - 1; checked before the copy. */
		size_t room = r->max - 1 - r->len;
		if (take > room) {
			r->too_long = true;
		} else {
			memcpy(r->line + r->len, p, take);
			if (memchr(p, '\0', take))
				r->nul = true;
			r->len += take;
		}
	}
	if (!lf)
		return POP3_LINE_MORE;

	enum pop3_line_status st = POP3_LINE_OK;
	if (r->too_long)
		st = POP3_LINE_TOO_LONG;
	else if (r->len == 0 || r->line[r->len - 1] != '\r')
		st = POP3_LINE_BARE_LF;
	else if (r->nul)
		st = POP3_LINE_NUL;
	if (st != POP3_LINE_OK) {
		pop3_reader_reset(r);
		return st;
	}
	r->len--; /* the CR */
	r->line[r->len] = '\0';
	r->complete = true;
	return POP3_LINE_OK;
}

/* --- commands ------------------------------------------------------------- */

enum arg_kind {
	A_NONE,   /* no argument */
	A_WORD,   /* one word (USER) */
	A_REST,   /* the rest of the line, at least one octet (PASS) */
	A_AUTH,   /* [mechanism [initial-response]] */
	A_NUM,    /* one number (RETR, DELE) */
	A_OPTNUM, /* an optional number (LIST, UIDL) */
	A_TWONUM, /* two numbers (TOP) */
};

static const struct {
	const char *name;
	enum pop3_verb verb;
	enum arg_kind args;
} verbs[] = {
	{ "USER", POP3_VERB_USER, A_WORD },   { "PASS", POP3_VERB_PASS, A_REST },
	{ "AUTH", POP3_VERB_AUTH, A_AUTH },   { "CAPA", POP3_VERB_CAPA, A_NONE },
	{ "STLS", POP3_VERB_STLS, A_NONE },   { "STAT", POP3_VERB_STAT, A_NONE },
	{ "LIST", POP3_VERB_LIST, A_OPTNUM }, { "RETR", POP3_VERB_RETR, A_NUM },
	{ "DELE", POP3_VERB_DELE, A_NUM },    { "RSET", POP3_VERB_RSET, A_NONE },
	{ "NOOP", POP3_VERB_NOOP, A_NONE },   { "QUIT", POP3_VERB_QUIT, A_NONE },
	{ "TOP", POP3_VERB_TOP, A_TWONUM },   { "UIDL", POP3_VERB_UIDL, A_OPTNUM },
};

#define NVERBS (sizeof verbs / sizeof verbs[0])

const char *pop3_verb_name(enum pop3_verb verb)
{
	for (size_t i = 0; i < NVERBS; i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "";
}

size_t pop3_command_line_max(enum pop3_verb verb)
{
	return verb == POP3_VERB_AUTH ? POP3_LINE_ABS_MAX : POP3_LINE_MAX;
}

/* Split rest into words at single SPs: false on an empty word (two SPs, a leading or
 * trailing SP) or more than max words. */
static bool split_words(struct slice rest, struct slice *words, unsigned max, unsigned *n)
{
	*n = 0;
	if (rest.len == 0)
		return true;
	const char *p = rest.ptr, *end = rest.ptr + rest.len;
	while (p <= end) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		const char *stop = sp ? sp : end;
		if (stop == p || *n == max)
			return false;
		words[(*n)++] = (struct slice){ p, (size_t)(stop - p) };
		if (!sp)
			break;
		p = sp + 1;
	}
	return true;
}

int pop3_command_parse(struct slice line, struct pop3_command *out)
{
	memset(out, 0, sizeof *out);
	const char *sp = memchr(line.ptr, ' ', line.len);
	out->name = (struct slice){ line.ptr, sp ? (size_t)(sp - line.ptr) : line.len };
	struct slice rest = { sp ? sp + 1 : line.ptr + line.len, sp ? line.len - out->name.len - 1 : 0 };
	size_t i;

	for (i = 0; i < NVERBS; i++)
		if (slice_eq_cstr_nocase(out->name, verbs[i].name))
			break;
	if (i == NVERBS)
		return line.len + 2 > POP3_LINE_MAX ? POP3_CMD_ERR_TOO_LONG : POP3_CMD_ERR_UNKNOWN;
	out->verb = verbs[i].verb;
	if (line.len + 2 > pop3_command_line_max(out->verb))
		return POP3_CMD_ERR_TOO_LONG;
	/* "VERB " with nothing after it has an empty argument list. */
	if (sp && rest.len == 0 && verbs[i].args != A_REST)
		return POP3_CMD_ERR_ARGS;

	enum arg_kind kind = verbs[i].args;
	if (kind == A_REST) {
		if (!sp || rest.len == 0)
			return POP3_CMD_ERR_ARGS;
		if (rest.len > SASL_PASSWORD_MAX)
			return POP3_CMD_ERR_TOO_LONG;
		out->nargs = 1;
		out->arg[0] = rest;
		return POP3_CMD_OK;
	}
	unsigned min = 0, max = 0;
	switch (kind) {
	case A_NONE: break;
	case A_WORD: min = max = 1; break;
	case A_AUTH: max = 2; break;
	case A_NUM: min = max = 1; break;
	case A_OPTNUM: max = 1; break;
	case A_TWONUM: min = max = 2; break;
	case A_REST: break;
	}
	struct slice words[2];
	unsigned n;
	if (!split_words(rest, words, max, &n) || n < min) {
		return POP3_CMD_ERR_ARGS;
	}
	for (unsigned k = 0; k < n; k++) {
		/* An AUTH initial response may be as long as the line (RFC 5034 4). */
		bool long_ok = kind == A_AUTH && k == 1;
		if (!long_ok && words[k].len > POP3_ARG_MAX)
			return POP3_CMD_ERR_TOO_LONG;
		out->arg[k] = words[k];
	}
	out->nargs = n;
	if (kind == A_NUM || kind == A_OPTNUM || kind == A_TWONUM) {
		for (unsigned k = 0; k < n; k++) {
			if (parse_u64(words[k], POP3_NUMBER_MAX, &out->num[k]) < 0) {
				out->num[0] = out->num[1] = 0;
				return POP3_CMD_ERR_NUMBER;
			}
		}
	}
	return POP3_CMD_OK;
}
