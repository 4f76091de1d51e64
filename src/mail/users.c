/*
 * users: the accounts file ("address:hash[:ignored...]"), loaded into a
 * table keyed by the lower-case address. See users.h for the format.
 *
 * Contract: userdb_load() either returns a complete table or nothing, after
 * reporting every bad line, so that a reload with a broken file keeps the
 * table in service. Lines are limited to USERS_LINE_MAX bytes and the file to
 * USERS_FILE_MAX bytes, so that a wrong path (a log, a device) cannot make the
 * server allocate without bound.
 *
 * Security: the local part becomes a directory name under maildir-root, so it
 * may not contain '/' nor start with '.' (no "..", no hidden directories),
 * must not be quoted (a quoted local part may hold any byte) and its domain
 * must be a local-domain; the domain is a syntactically valid RFC 5321
 * Domain, so it cannot hold '/' either. Control characters anywhere in a line
 * are refused, so that no message echoes them to a terminal or a log.
 */
#include "mail/users.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/addr.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/str.h"
#include "util/strmap.h"

#define USERS_LINE_MAX 8192
#define USERS_FILE_MAX ((size_t)64 << 20)
/* How much of a bad address is quoted back in an error message. */
#define USERS_ECHO_MAX 100

struct user_entry {
	struct user u;
	unsigned line; /* where it was defined, for duplicate messages */
};

struct userdb {
	struct strmap *map; /* lower-case address -> struct user_entry */
};

static void user_entry_free(void *p)
{
	struct user_entry *e = p;

	user_free_fields(&e->u);
	free(e);
}

static struct userdb *userdb_new(void)
{
	struct userdb *db = calloc(1, sizeof *db);

	if (!db)
		return NULL;
	db->map = strmap_new();
	if (!db->map) {
		free(db);
		return NULL;
	}
	return db;
}

struct userdb *userdb_empty(void)
{
	return userdb_new();
}

void userdb_free(struct userdb *db)
{
	if (!db)
		return;
	strmap_free(db->map, user_entry_free);
	free(db);
}

const struct user *userdb_find(const struct userdb *db, const char *address)
{
	char key[ADDR_TEXT_MAX + 1];

	if (!db || !str_copy(key, sizeof key, address))
		return NULL;
	str_lower(key);
	const struct user_entry *e = strmap_get(db->map, key);
	return e ? &e->u : NULL;
}

size_t userdb_count(const struct userdb *db)
{
	return db ? strmap_count(db->map) : 0;
}

void user_free_fields(struct user *u)
{
	free(u->address);
	free(u->local);
	free(u->domain);
	free(u->hash);
	memset(u, 0, sizeof *u);
}

static char *dup_slice(struct slice s)
{
	char *p = malloc(s.len + 1);

	if (!p)
		return NULL;
	if (s.len)
		memcpy(p, s.ptr, s.len);
	p[s.len] = '\0';
	return p;
}

static int user_error(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int user_error(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

int userdb_parse_line(const char *line, size_t len, const struct config *cfg, struct user *out,
		      char *err, size_t errlen)
{
	struct slice all = slice_trim((struct slice){ line, len });
	struct addr a;
	int r;

	memset(out, 0, sizeof *out);
	if (len > USERS_LINE_MAX)
		return user_error(err, errlen, -EINVAL, "line longer than %d bytes",
				  USERS_LINE_MAX);
	if (all.len == 0 || all.ptr[0] == '#')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return user_error(err, errlen, -EINVAL,
					  "control character 0x%02x in line", c);
	}

	const char *colon = memchr(line, ':', len);
	if (!colon)
		return user_error(err, errlen, -EINVAL, "expected \"address:hash\", no ':' found");
	struct slice field = slice_trim((struct slice){ line, (size_t)(colon - line) });
	const char *hash = colon + 1;
	const char *end = memchr(hash, ':', len - (size_t)(hash - line));
	struct slice hs = { hash, end ? (size_t)(end - hash) : len - (size_t)(hash - line) };
	int echo = field.len > USERS_ECHO_MAX ? USERS_ECHO_MAX : (int)field.len;

	if (field.len == 0)
		return user_error(err, errlen, -EINVAL, "missing address before ':'");
	r = addr_parse_mailbox(field, ADDR_UTF8, &a);
	if (r < 0)
		return user_error(err, errlen, -EINVAL, "bad address '%.*s': %s", echo, field.ptr,
				  addr_strerror(r));
	if (a.quoted)
		return user_error(err, errlen, -EINVAL,
				  "'%.*s': a quoted local part cannot be a mailbox", echo,
				  field.ptr);
	if (a.literal)
		return user_error(err, errlen, -EINVAL,
				  "'%.*s': an address literal cannot be a mailbox", echo,
				  field.ptr);
	if (!config_is_local_domain(cfg, a.domain))
		return user_error(err, errlen, -EINVAL, "domain of '%.*s' is not a local-domain",
				  echo, field.ptr);
	/* The local part names a directory: keep it inside maildir-root/<domain>/. */
	if (strchr(a.local, '/'))
		return user_error(err, errlen, -EINVAL, "local part of '%.*s' contains '/'", echo,
				  field.ptr);
	if (a.local[0] == '.' || a.local[0] == '\0')
		return user_error(err, errlen, -EINVAL,
				  "local part of '%.*s' is empty or starts with '.'", echo,
				  field.ptr);

	str_lower(a.local);
	str_lower(a.domain);
	size_t nl = strlen(a.local), nd = strlen(a.domain);
	out->local = dup_slice((struct slice){ a.local, nl });
	out->domain = dup_slice((struct slice){ a.domain, nd });
	out->hash = dup_slice(hs);
	out->address = malloc(nl + nd + 2);
	if (!out->local || !out->domain || !out->hash || !out->address) {
		user_free_fields(out);
		return user_error(err, errlen, -ENOMEM, "out of memory");
	}
	memcpy(out->address, a.local, nl);
	out->address[nl] = '@';
	memcpy(out->address + nl + 1, a.domain, nd + 1);
	return 1;
}

static void users_report(config_report_fn *report, void *ctx, const char *path, unsigned line,
			 const char *msg)
{
	if (report)
		report(ctx, path, line, msg);
}

/* Parse every line of text into db; returns the number of errors, or -ENOMEM. */
static long users_parse_text(struct userdb *db, const char *path, const char *text, size_t len,
			     const struct config *cfg, config_report_fn *report, void *ctx)
{
	char err[256];
	long errors = 0;
	unsigned lineno = 0;
	size_t pos = 0;

	while (pos < len) {
		const char *p = text + pos;
		const char *nl = memchr(p, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - p) : len - pos;
		struct user u;
		int r;

		pos += n + (nl != NULL);
		lineno++;
		if (n && p[n - 1] == '\r')
			n--;
		r = userdb_parse_line(p, n, cfg, &u, err, sizeof err);
		if (r == -ENOMEM)
			return r;
		if (r < 0) {
			users_report(report, ctx, path, lineno, err);
			errors++;
			continue;
		}
		if (r == 0)
			continue;

		struct user_entry *e = malloc(sizeof *e);
		if (!e) {
			user_free_fields(&u);
			return -ENOMEM;
		}
		e->u = u;
		e->line = lineno;
		r = strmap_put(db->map, u.address, e);
		if (r == -EEXIST) {
			const struct user_entry *first = strmap_get(db->map, u.address);
			snprintf(err, sizeof err, "duplicate address '%s' (first on line %u)",
				 u.address, first->line);
			users_report(report, ctx, path, lineno, err);
			errors++;
		}
		if (r < 0)
			user_entry_free(e);
		if (r == -ENOMEM)
			return r;
	}
	return errors;
}

int userdb_load(const char *path, const struct config *cfg, config_report_fn *report, void *ctx,
		struct userdb **out)
{
	char msg[256];
	struct buf text;
	int r = file_read_all(path, USERS_FILE_MAX, &text);

	if (r < 0) {
		if (r == -EFBIG)
			snprintf(msg, sizeof msg, "cannot read: larger than %zu MiB",
				 USERS_FILE_MAX >> 20);
		else
			snprintf(msg, sizeof msg, "cannot read: %s", strerror(-r));
		users_report(report, ctx, path, 0, msg);
		return r;
	}
	struct userdb *db = userdb_new();
	long errors = db ? users_parse_text(db, path, buf_cstr(&text), text.len, cfg, report, ctx)
			 : -ENOMEM;
	buf_free(&text);
	if (errors == -ENOMEM)
		users_report(report, ctx, path, 0, "out of memory");
	if (errors != 0) {
		userdb_free(db);
		return errors == -ENOMEM ? -ENOMEM : -EINVAL;
	}
	*out = db;
	return 0;
}
