/*
 * smtp_client_reply: SMTP reply and EHLO extension parsing for the client.
 * See smtp_client_reply.h.
 *
 * RFC 5321 4.2, 4.2.1, 4.5.3.1.5; RFC 2034, RFC 3463 2 (status code syntax);
 * RFC 5321 4.1.1.1 (EHLO reply: ehlo-line = ehlo-keyword *( SP ehlo-param )).
 *
 * Leniency, on purpose: an enhanced status code is taken wherever it is
 * present, not only after ENHANCEDSTATUSCODES was announced (a status code
 * whose class does not match the reply's first digit is left in the text);
 * EHLO keywords are case-insensitive and unknown ones are ignored; "SIZE"
 * with a malformed number counts as announced without a limit.
 */
#include "deliver/smtp_client_reply.h"

#include <string.h>

#include "util/str.h"

void smtpc_reply_reset(struct smtpc_reply_parser *p)
{
	p->lines = 0;
	p->code = 0;
	p->done = false;
	p->status[0] = '\0';
	p->text_len = 0;
	p->text[0] = '\0';
	p->line_text = (struct slice){ "", 0 };
}

bool smtpc_status_parse(struct slice s, size_t *len)
{
	size_t i = 0;

	if (s.len < 5 || (s.ptr[0] != '2' && s.ptr[0] != '4' && s.ptr[0] != '5') || s.ptr[1] != '.')
		return false;
	i = 2;
	for (int part = 0; part < 2; part++) {
		size_t digits = 0;
		while (i < s.len && ascii_isdigit(s.ptr[i]) && digits < 4) {
			i++;
			digits++;
		}
		if (digits < 1 || digits > 3)
			return false;
		if (part == 0) {
			if (i >= s.len || s.ptr[i] != '.')
				return false;
			i++;
		}
	}
	if (i < s.len && s.ptr[i] != ' ')
		return false;
	if (len)
		*len = i;
	return true;
}

/* Append printable text, bytes outside printable ASCII as '?', within SMTPC_TEXT_MAX - 1. */
static void text_append(struct smtpc_reply_parser *p, struct slice t)
{
	if (t.len == 0)
		return;
	if (p->text_len > 0 && p->text_len < sizeof(p->text) - 1)
		p->text[p->text_len++] = ' ';
	for (size_t i = 0; i < t.len && p->text_len < sizeof(p->text) - 1; i++) {
		unsigned char c = (unsigned char)t.ptr[i];
		p->text[p->text_len++] = (c >= 32 && c < 127) ? (char)c : '?';
	}
	p->text[p->text_len] = '\0';
}

int smtpc_reply_feed(struct smtpc_reply_parser *p, struct slice line)
{
	int code;
	bool last;

	if (p->done)
		smtpc_reply_reset(p);
	p->line_text = (struct slice){ "", 0 };
	if (line.len > SMTPC_REPLY_LINE_MAX) {
		p->done = true;
		return SMTPC_REPLY_ERR_TOO_LONG;
	}
	if (p->lines >= SMTPC_REPLY_LINES_MAX) {
		p->done = true;
		return SMTPC_REPLY_ERR_TOO_MANY;
	}
	if (line.len < 3 || line.ptr[0] < '2' || line.ptr[0] > '5' || !ascii_isdigit(line.ptr[1]) ||
	    !ascii_isdigit(line.ptr[2]) || (line.len > 3 && line.ptr[3] != ' ' && line.ptr[3] != '-')) {
		p->done = true;
		return SMTPC_REPLY_ERR_SYNTAX;
	}
	code = (line.ptr[0] - '0') * 100 + (line.ptr[1] - '0') * 10 + (line.ptr[2] - '0');
	if (p->lines > 0 && code != p->code) {
		p->done = true;
		return SMTPC_REPLY_ERR_CODE;
	}
	p->code = code;
	p->lines++;
	last = line.len == 3 || line.ptr[3] == ' ';

	struct slice t = line.len > 4 ? (struct slice){ line.ptr + 4, line.len - 4 }
				       : (struct slice){ "", 0 };
	p->line_text = t;
	size_t slen;
	if (smtpc_status_parse(t, &slen) && t.ptr[0] == line.ptr[0]) {
		if (p->status[0] == '\0')
			slice_copy(p->status, sizeof(p->status), (struct slice){ t.ptr, slen });
		t.ptr += slen;
		t.len -= slen;
		while (t.len > 0 && t.ptr[0] == ' ') {
			t.ptr++;
			t.len--;
		}
	}
	text_append(p, t);
	if (last) {
		p->done = true;
		return SMTPC_REPLY_DONE;
	}
	return SMTPC_REPLY_MORE;
}

void smtpc_reply_get(const struct smtpc_reply_parser *p, struct smtpc_reply *out)
{
	int cls = p->code / 100;

	memset(out, 0, sizeof(*out));
	out->code = p->code;
	out->temporary = cls != 2 && cls != 5;
	if (p->status[0])
		memcpy(out->status, p->status, sizeof(out->status));
	else if (cls >= 2 && cls <= 5) {
		out->status[0] = (char)('0' + cls);
		memcpy(out->status + 1, ".0.0", 5);
	}
	memcpy(out->text, p->text, p->text_len + 1);
}

const char *smtpc_reply_strerror(int err)
{
	switch (err) {
	case SMTPC_REPLY_ERR_SYNTAX:
		return "malformed reply";
	case SMTPC_REPLY_ERR_CODE:
		return "reply lines with different codes";
	case SMTPC_REPLY_ERR_TOO_LONG:
		return "reply line too long";
	case SMTPC_REPLY_ERR_TOO_MANY:
		return "too many reply lines";
	default:
		return "reply error";
	}
}

/* --- EHLO extensions ------------------------------------------------------ */

void smtpc_caps_reset(struct smtpc_caps *c)
{
	memset(c, 0, sizeof(*c));
}

/* The next SP-separated word of *s, or an empty slice at the end. */
static struct slice next_word(struct slice *s)
{
	while (s->len > 0 && (s->ptr[0] == ' ' || s->ptr[0] == '\t')) {
		s->ptr++;
		s->len--;
	}
	size_t n = 0;
	while (n < s->len && s->ptr[n] != ' ' && s->ptr[n] != '\t')
		n++;
	struct slice w = { s->ptr, n };
	s->ptr += n;
	s->len -= n;
	return w;
}

static void caps_auth(struct smtpc_caps *c, struct slice params)
{
	struct slice w;

	c->auth = true;
	while ((w = next_word(&params)).len > 0) {
		if (slice_eq_cstr_nocase(w, "PLAIN"))
			c->auth_mechs |= SMTPC_AUTH_PLAIN;
		else if (slice_eq_cstr_nocase(w, "LOGIN"))
			c->auth_mechs |= SMTPC_AUTH_LOGIN;
	}
}

void smtpc_caps_line(struct smtpc_caps *c, struct slice text)
{
	struct slice kw = next_word(&text);

	if (kw.len == 0)
		return;
	if (slice_eq_cstr_nocase(kw, "PIPELINING")) {
		c->pipelining = true;
	} else if (slice_eq_cstr_nocase(kw, "SIZE")) {
		struct slice n = next_word(&text);
		uint64_t v = 0;
		c->size = true;
		c->size_max = n.len > 0 && parse_u64(n, UINT64_MAX, &v) == 0 ? v : 0;
	} else if (slice_eq_cstr_nocase(kw, "8BITMIME")) {
		c->eightbitmime = true;
	} else if (slice_eq_cstr_nocase(kw, "SMTPUTF8")) {
		c->smtputf8 = true;
	} else if (slice_eq_cstr_nocase(kw, "DSN")) {
		c->dsn = true;
	} else if (slice_eq_cstr_nocase(kw, "STARTTLS")) {
		c->starttls = true;
	} else if (slice_eq_cstr_nocase(kw, "ENHANCEDSTATUSCODES")) {
		c->enhancedstatuscodes = true;
	} else if (slice_eq_cstr_nocase(kw, "CHUNKING")) {
		c->chunking = true;
	} else if (slice_eq_cstr_nocase(kw, "AUTH")) {
		caps_auth(c, text);
	} else if (slice_startswith_nocase(kw, "AUTH=")) {
		/* Pre-RFC 4954 form "AUTH=PLAIN LOGIN": the first mechanism follows '='. */
		struct slice first = { kw.ptr + 5, kw.len - 5 };
		caps_auth(c, first);
		caps_auth(c, text);
	}
}
