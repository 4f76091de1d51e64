/*
 * relay_auth: read the relayhost's credentials. See relay_auth.h.
 */
#include "deliver/relay_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/buf.h"
#include "util/fileio.h"

#define RELAY_AUTH_FILE_MAX (64 * 1024)
#define RELAY_AUTH_FIELD_MAX 1024

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int relay_auth_load(const char *path, struct relay_auth *a, char *err, size_t errlen)
{
	struct buf b;
	struct stat st;

	err[0] = '\0';
	buf_init(&b, RELAY_AUTH_FILE_MAX);
	int r = file_read_all(path, RELAY_AUTH_FILE_MAX, &b);
	if (r < 0) {
		snprintf(err, errlen, "%s", strerror(-r));
		buf_free(&b);
		return r;
	}
	a->exposed = stat(path, &st) == 0 && (st.st_mode & 077) != 0;
	r = -EINVAL;
	snprintf(err, errlen, "expected one line 'USER PASSWORD'");
	const char *p = b.data, *end = b.data + b.len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol ? eol : end;
		const char *q = p;
		p = eol ? eol + 1 : end;
		while (q < line_end && is_blank(*q))
			q++;
		const char *e = line_end;
		while (e > q && (is_blank(e[-1]) || e[-1] == '\r'))
			e--;
		if (q == e || *q == '#')
			continue;
		const char *sp = q;
		while (sp < e && !is_blank(*sp))
			sp++;
		const char *pw = sp;
		while (pw < e && is_blank(*pw))
			pw++;
		size_t ulen = (size_t)(sp - q), plen = (size_t)(e - pw);
		if (ulen == 0 || plen == 0 || ulen > RELAY_AUTH_FIELD_MAX || plen > RELAY_AUTH_FIELD_MAX)
			break;
		bool ctl = false;
		for (const char *c = q; c < e; c++)
			ctl = ctl || ((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f;
		if (ctl) {
			snprintf(err, errlen, "control characters in the file");
			break;
		}
		a->user = strndup(q, ulen);
		a->pass = strndup(pw, plen);
		r = a->user && a->pass ? 0 : -ENOMEM;
		if (r < 0)
			relay_auth_free(a);
		else
			err[0] = '\0';
		break;
	}
	if (b.data)
		explicit_bzero(b.data, b.len);
	buf_free(&b);
	return r;
}

void relay_auth_free(struct relay_auth *a)
{
	if (a->pass)
		explicit_bzero(a->pass, strlen(a->pass));
	free(a->user);
	free(a->pass);
	a->user = a->pass = NULL;
}
