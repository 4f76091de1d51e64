/*
 * ar_filter: removes forged Authentication-Results fields. See ar_filter.h.
 *
 * Outside a held field the filter hands whole runs to the output (memchr for
 * the line end); only a field that starts with the name is read octet by
 * octet, held, until its authserv-id decides it. RFC 8601 2.2:
 *   authres-header-field = "Authentication-Results:" authserv-id ...
 *   authserv-id = value          (RFC 2045: token / quoted-string)
 * with CFWS allowed before it (RFC 5322 3.2.2: comments nest, "\" quotes).
 */
#include "smtpd/ar_filter.h"

#include <string.h>

#include "util/str.h"

static const char field_name[] = "authentication-results";
#define FIELD_NAME_LEN (sizeof field_name - 1)

enum ar_state {
	S_LINE_START, /* a line of the header section starts */
	S_PASS_LINE,  /* the rest of the line goes out */
	S_DROP_LINE,  /* the rest of the line is removed */
	S_NAME,       /* held: the field name matches so far */
	S_NAME_WSP,   /* held: the whole name, then WSP before ':' */
	S_VALUE,      /* held: after ':', CFWS before the authserv-id */
	S_COMMENT,    /* held: inside a comment */
	S_TOKEN,      /* held: the authserv-id, a token */
	S_QTOKEN,     /* held: the authserv-id, a quoted string */
	S_FOLD,       /* held: after a line end; WSP continues the field */
	S_BODY,       /* past the header section: everything goes out */
};

static void emit(struct ar_filter *f, const char *p, size_t n)
{
	if (n == 0 || f->error)
		return;
	int r = f->output(f->ctx, p, n);
	if (r < 0)
		f->error = r;
}

static void pass_held(struct ar_filter *f)
{
	emit(f, f->hold, f->hold_len);
	f->hold_len = 0;
}

static void drop_held(struct ar_filter *f)
{
	f->hold_len = 0;
	f->removed++;
	f->dropping = true;
}

/* The authserv-id has been read: remove the field (ours) or let it through. */
static void decide(struct ar_filter *f)
{
	if (!f->mismatch && f->matched == f->id_len) {
		drop_held(f);
		f->state = S_DROP_LINE;
	} else {
		pass_held(f);
		f->state = S_PASS_LINE;
	}
}

static void id_octet(struct ar_filter *f, char c)
{
	if (f->matched < f->id_len && ascii_tolower(c) == f->id[f->matched])
		f->matched++;
	else
		f->mismatch = true;
}

void ar_filter_init(struct ar_filter *f, const char *authserv_id, ar_filter_output_fn *output,
		    void *ctx)
{
	memset(f, 0, sizeof *f);
	size_t n = strlen(authserv_id);
	if (n > AR_FILTER_ID_MAX)
		n = AR_FILTER_ID_MAX;
	for (size_t i = 0; i < n; i++)
		f->id[i] = ascii_tolower(authserv_id[i]);
	f->id_len = n;
	f->output = output;
	f->ctx = ctx;
	f->state = S_LINE_START;
}

/*
 * One octet in a holding state. Returns false when c was not taken (the
 * state changed and c must be read again in the new one).
 */
static bool held_octet(struct ar_filter *f, char c)
{
	if (f->hold_len == sizeof f->hold) {
		/* No authserv-id within the bound: removed (see ar_filter.h). */
		drop_held(f);
		f->state = S_DROP_LINE;
		return false;
	}
	switch (f->state) {
	case S_NAME:
		if (ascii_tolower(c) != field_name[f->matched]) {
			pass_held(f);
			f->state = S_PASS_LINE;
			return false;
		}
		if (++f->matched == FIELD_NAME_LEN)
			f->state = S_NAME_WSP;
		break;
	case S_NAME_WSP:
		if (c == ':')
			f->state = S_VALUE;
		else if (c != ' ' && c != '\t') {
			pass_held(f);
			f->state = S_PASS_LINE;
			return false;
		}
		break;
	case S_VALUE:
		if (c == '(') {
			f->depth = 1;
			f->escaped = false;
			f->state = S_COMMENT;
		} else if (c == '\n') {
			f->resume = S_VALUE;
			f->state = S_FOLD;
		} else if (c == '"') {
			f->matched = 0;
			f->mismatch = false;
			f->escaped = false;
			f->state = S_QTOKEN;
		} else if (c != ' ' && c != '\t' && c != '\r') {
			f->matched = 0;
			f->mismatch = false;
			f->state = S_TOKEN;
			return false;
		}
		break;
	case S_COMMENT:
		if (f->escaped)
			f->escaped = false;
		else if (c == '\\')
			f->escaped = true;
		else if (c == '(')
			f->depth++;
		else if (c == ')' && --f->depth == 0)
			f->state = S_VALUE;
		else if (c == '\n') {
			f->resume = S_COMMENT;
			f->state = S_FOLD;
		}
		break;
	case S_TOKEN:
		if (c == ' ' || c == '\t' || c == ';' || c == '(' || c == '\r') {
			decide(f);
			return false;
		}
		id_octet(f, c);
		break;
	case S_QTOKEN:
		if (c == '\r') { /* no closing quote on the line: not an id of ours */
			pass_held(f);
			f->state = S_PASS_LINE;
			return false;
		}
		if (f->escaped) {
			f->escaped = false;
			id_octet(f, c);
		} else if (c == '\\') {
			f->escaped = true;
		} else if (c == '"') {
			f->hold[f->hold_len++] = c;
			decide(f);
			return true;
		} else {
			id_octet(f, c);
		}
		break;
	case S_FOLD:
		if (c != ' ' && c != '\t') {
			/* The field ended before an authserv-id: not ours to judge. */
			pass_held(f);
			f->state = S_LINE_START;
			return false;
		}
		f->state = f->resume;
		break;
	}
	f->hold[f->hold_len++] = c;
	return true;
}

int ar_filter_write(struct ar_filter *f, const char *p, size_t n)
{
	const char *end = p + n;

	while (p < end && !f->error) {
		switch (f->state) {
		case S_BODY:
			emit(f, p, (size_t)(end - p));
			p = end;
			break;
		case S_PASS_LINE:
		case S_DROP_LINE: {
			const char *lf = memchr(p, '\n', (size_t)(end - p));
			const char *stop = lf ? lf + 1 : end;
			if (f->state == S_PASS_LINE)
				emit(f, p, (size_t)(stop - p));
			if (lf)
				f->state = S_LINE_START;
			p = stop;
			break;
		}
		case S_LINE_START:
			if (*p == '\r') {
				f->dropping = false;
				f->state = S_BODY; /* the empty line that ends the header section */
			} else if (*p == ' ' || *p == '\t') {
				f->state = f->dropping ? S_DROP_LINE : S_PASS_LINE;
			} else {
				f->dropping = false;
				f->matched = 0;
				f->state = S_NAME;
			}
			break;
		default:
			if (held_octet(f, *p))
				p++;
			break;
		}
	}
	return f->error;
}

int ar_filter_end(struct ar_filter *f)
{
	/* A token cut by the end of the message is complete; anything else held (no
	 * authserv-id yet, an unterminated quoted string) was not ours. */
	if (f->state == S_TOKEN)
		decide(f);
	else
		pass_held(f);
	return f->error;
}
