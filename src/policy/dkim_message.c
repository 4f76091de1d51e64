/*
 * dkim_message: the header section of a streamed message. See dkim_message.h.
 *
 * RFC 5322 2.1 (header section and body), 2.2.3 (folding); RFC 6376 5.4.2
 * (the order of signed fields).
 */
#include "policy/dkim_message.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void dkim_message_init(struct dkim_message *m)
{
	memset(m, 0, sizeof *m);
	m->state = DKIM_MSG_HEAD;
	buf_init(&m->head, DKIM_HEADER_MAX);
	/* As if after a CRLF: a message that starts with CRLF has an empty header section. */
	m->eoh = 2;
}

void dkim_message_free(struct dkim_message *m)
{
	buf_free(&m->head);
	free(m->fields);
	m->fields = NULL;
	m->nfields = 0;
}

static void too_big(struct dkim_message *m)
{
	dkim_message_free(m);
	m->state = DKIM_MSG_TOO_BIG;
}

/* Split head into fields. 0, -ENOMEM, or -E2BIG past DKIM_FIELDS_MAX. */
static int split_fields(struct dkim_message *m)
{
	const char *h = m->head.data ? m->head.data : "";
	size_t len = m->head.len, i = 0, cap = 0;

	while (i < len) {
		/* A line ends at CRLF; a bare LF stays inside the line. */
		const char *eol = memchr(h + i, '\n', len - i);
		while (eol && (eol == h + i || eol[-1] != '\r'))
			eol = memchr(eol + 1, '\n', (size_t)(h + len - eol - 1));
		size_t end = eol ? (size_t)(eol - h) + 1 : len;
		if ((h[i] == ' ' || h[i] == '\t') && m->nfields > 0) {
			m->fields[m->nfields - 1].len = end - m->fields[m->nfields - 1].off;
			i = end;
			continue;
		}
		if (m->nfields == DKIM_FIELDS_MAX)
			return -E2BIG;
		if (m->nfields == cap) {
			size_t ncap = cap ? cap * 2 : 32, bytes;
			if (ncap > DKIM_FIELDS_MAX)
				ncap = DKIM_FIELDS_MAX;
			if (!size_mul(ncap, sizeof *m->fields, &bytes))
				return -ENOMEM;
			struct dkim_field *nf = realloc(m->fields, bytes);
			if (!nf)
				return -ENOMEM;
			m->fields = nf;
			cap = ncap;
		}
		m->fields[m->nfields++] = (struct dkim_field){ .off = i, .len = end - i };
		i = end;
	}
	for (size_t k = 0; k < m->nfields; k++) {
		struct dkim_field *f = &m->fields[k];
		const char *colon = memchr(h + f->off, ':', f->len);
		if (!colon) {
			f->name_len = 0;
			f->value_off = f->len;
			continue;
		}
		size_t n = (size_t)(colon - (h + f->off));
		f->value_off = n + 1;
		while (n > 0 && (h[f->off + n - 1] == ' ' || h[f->off + n - 1] == '\t'))
			n--;
		f->name_len = n;
	}
	return 0;
}

static int header_done(struct dkim_message *m)
{
	int r = split_fields(m);
	if (r == -E2BIG) {
		too_big(m);
		return 0;
	}
	if (r < 0)
		return r;
	m->state = DKIM_MSG_BODY;
	return 1;
}

int dkim_message_feed(struct dkim_message *m, const char **p, size_t *n)
{
	const char *s = *p;
	size_t i, len = *n;
	bool done = false;

	if (m->state == DKIM_MSG_TOO_BIG) {
		*p += len;
		*n = 0;
		return 0;
	}
	if (m->state != DKIM_MSG_HEAD)
		return 0;
	for (i = 0; i < len && !done; i++) {
		char c = s[i];
		if (c == '\r')
			m->eoh = m->eoh == 2 ? 3 : 1;
		else if (c == '\n' && (m->eoh == 1 || m->eoh == 3))
			m->eoh++;
		else
			m->eoh = 0;
		done = m->eoh == 4;
	}
	/* The empty line's CRLF is not part of any field. */
	size_t keep = done ? i - 2 : i;
	if (done && i < 2) {
		/* Its CR came in the previous chunk. */
		m->head.len -= 1;
		m->head.data[m->head.len] = '\0';
		keep = 0;
	}
	int r = buf_append(&m->head, s, keep);
	if (r == -ENOSPC) {
		too_big(m);
		*p += len;
		*n = 0;
		return 0;
	}
	if (r < 0)
		return r;
	*p += i;
	*n -= i;
	if (!done)
		return 0;
	return header_done(m);
}

int dkim_message_end(struct dkim_message *m)
{
	if (m->state != DKIM_MSG_HEAD)
		return 0;
	return header_done(m);
}

struct slice dkim_field_text(const struct dkim_message *m, const struct dkim_field *f)
{
	return (struct slice){ m->head.data + f->off, f->len };
}

struct slice dkim_field_value(const struct dkim_message *m, const struct dkim_field *f)
{
	struct slice v = { m->head.data + f->off + f->value_off, f->len - f->value_off };
	if (v.len >= 2 && v.ptr[v.len - 2] == '\r' && v.ptr[v.len - 1] == '\n')
		v.len -= 2;
	return v;
}

bool dkim_field_is(const struct dkim_message *m, const struct dkim_field *f, struct slice name)
{
	return f->name_len == name.len &&
	       slice_eq_nocase((struct slice){ m->head.data + f->off, f->name_len }, name);
}

int dkim_message_hash_fields(const struct dkim_message *m, const struct slice *names,
			     size_t nnames, enum dkim_canon c, dkim_emit_fn *fn, void *ctx)
{
	size_t below[DKIM_H_MAX]; /* for names[k]: fields at or after this index are used */
	struct buf tmp;
	int r = 0;

	if (nnames > DKIM_H_MAX)
		return -EINVAL;
	buf_init(&tmp, DKIM_HEADER_MAX + 2);
	for (size_t k = 0; k < nnames; k++) {
		size_t start = m->nfields;
		/* The same name earlier in the list took the instances from below[j] down. */
		for (size_t j = k; j-- > 0;) {
			if (slice_eq_nocase(names[j], names[k])) {
				start = below[j];
				break;
			}
		}
		below[k] = start;
		for (size_t f = start; f-- > 0;) {
			if (!dkim_field_is(m, &m->fields[f], names[k]))
				continue;
			below[k] = f;
			buf_reset(&tmp);
			r = dkim_canon_header(c, dkim_field_text(m, &m->fields[f]), true, &tmp);
			if (r < 0)
				goto out;
			fn(ctx, tmp.data, tmp.len);
			break;
		}
		if (below[k] == start)
			below[k] = 0; /* none left: later repeats of the name find nothing */
	}
out:
	buf_free(&tmp);
	return r;
}
