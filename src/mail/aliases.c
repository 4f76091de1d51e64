/*
 * aliases: the alias file, "alias@domain: target[, target...]", loaded into
 * a table keyed by the lower-case alias ("local@domain" or "@domain"). See
 * aliases.h for the format.
 *
 * Contract: aliasdb_load() either returns a complete table or nothing, after
 * reporting every bad logical line at the physical line where it starts. A
 * line that starts with SP or HTAB continues the previous logical line
 * (joined as written, RFC 5322 unfolding); a comment line or a blank line ends
 * a logical line, so a continuation right after one, or at the start of the
 * file, is an error rather than a silent merge. Limits: ALIAS_LINE_MAX bytes
 * per logical line, ALIAS_TARGETS_MAX targets per alias, ALIASES_FILE_MAX
 * bytes per file.
 *
 * Targets in a local domain are stored lower-cased (they are looked up
 * case-insensitively, and must not be quoted since no user or alias can have
 * a quoted local part); targets elsewhere keep their local part as written
 * (RFC 5321 2.4: only the remote host may interpret it) and a lower-case
 * domain. Commas inside a quoted local part do not split targets.
 *
 * Security: the file is trusted to the extent that the administrator wrote
 * it, but every field still goes through the RFC 5321 mailbox parser, so
 * nothing that reaches resolve.c or a spool record can hold CR, LF or other
 * control characters.
 */
#include "mail/aliases.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
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

#define ALIASES_FILE_MAX ((size_t)64 << 20)
/* How much of a bad address is quoted back in an error message. */
#define ALIASES_ECHO_MAX 100

struct alias_entry {
	struct alias a;
	unsigned line; /* where it was defined, for duplicate messages */
};

struct aliasdb {
	struct strmap *map; /* lower-case alias -> struct alias_entry */
};

static void alias_entry_free(void *p)
{
	struct alias_entry *e = p;

	alias_free_fields(&e->a);
	free(e);
}

static struct aliasdb *aliasdb_new(void)
{
	struct aliasdb *db = calloc(1, sizeof *db);

	if (!db)
		return NULL;
	db->map = strmap_new();
	if (!db->map) {
		free(db);
		return NULL;
	}
	return db;
}

struct aliasdb *aliasdb_empty(void)
{
	return aliasdb_new();
}

void aliasdb_free(struct aliasdb *db)
{
	if (!db)
		return;
	strmap_free(db->map, alias_entry_free);
	free(db);
}

const struct alias *aliasdb_find(const struct aliasdb *db, const char *address)
{
	char key[ADDR_TEXT_MAX + 1];

	if (!db || !str_copy(key, sizeof key, address))
		return NULL;
	str_lower(key);
	const struct alias_entry *e = strmap_get(db->map, key);
	return e ? &e->a : NULL;
}

size_t aliasdb_count(const struct aliasdb *db)
{
	return db ? strmap_count(db->map) : 0;
}

void alias_free_fields(struct alias *a)
{
	for (size_t i = 0; i < a->ntargets; i++)
		free(a->targets[i]);
	free(a->targets);
	free(a->address);
	memset(a, 0, sizeof *a);
}

static int alias_error(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int alias_error(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int echo_len(struct slice s)
{
	return s.len > ALIASES_ECHO_MAX ? ALIASES_ECHO_MAX : (int)s.len;
}

/* The left-hand side: a mailbox or "@domain" in a local domain, as a lower-case key. */
static int parse_alias_key(struct slice left, const struct config *cfg, char **key, char *err,
			   size_t errlen)
{
	char text[ADDR_TEXT_MAX + 1];
	struct addr a;
	int r;

	if (left.len == 0)
		return alias_error(err, errlen, -EINVAL, "missing alias before ':'");
	if (left.ptr[0] == '@') {
		struct slice dom = { left.ptr + 1, left.len - 1 };
		if (!addr_domain_valid(dom, true) || dom.len > ADDR_DOMAIN_MAX)
			return alias_error(err, errlen, -EINVAL, "bad catch-all domain '%.*s'",
					   echo_len(left), left.ptr);
		text[0] = '@';
		memcpy(text + 1, dom.ptr, dom.len);
		text[dom.len + 1] = '\0';
		str_lower(text);
		if (!config_is_local_domain(cfg, text + 1))
			return alias_error(err, errlen, -EINVAL,
					   "domain of '%.*s' is not a local-domain",
					   echo_len(left), left.ptr);
	} else {
		r = addr_parse_mailbox(left, ADDR_UTF8, &a);
		if (r < 0)
			return alias_error(err, errlen, -EINVAL, "bad alias '%.*s': %s",
					   echo_len(left), left.ptr, addr_strerror(r));
		if (a.quoted || a.literal)
			return alias_error(err, errlen, -EINVAL,
					   "alias '%.*s': a quoted local part or an address "
					   "literal cannot be a local address",
					   echo_len(left), left.ptr);
		if (!config_is_local_domain(cfg, a.domain))
			return alias_error(err, errlen, -EINVAL,
					   "domain of '%.*s' is not a local-domain",
					   echo_len(left), left.ptr);
		if (!str_copy(text, sizeof text, a.text))
			return alias_error(err, errlen, -EINVAL, "alias '%.*s' is too long",
					   echo_len(left), left.ptr);
		str_lower(text);
	}
	*key = strdup(text);
	if (!*key)
		return alias_error(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

/* One target: its stored form (see the header comment) in a new string. */
static int parse_target(struct slice t, const struct config *cfg, char **out, char *err,
			size_t errlen)
{
	char text[ADDR_TEXT_MAX + 1];
	struct addr a;
	int r = addr_parse_mailbox(t, ADDR_UTF8, &a);

	if (r < 0)
		return alias_error(err, errlen, -EINVAL, "bad target '%.*s': %s", echo_len(t),
				   t.ptr, addr_strerror(r));
	if (!str_copy(text, sizeof text, a.text))
		return alias_error(err, errlen, -EINVAL, "target '%.*s' is too long", echo_len(t),
				   t.ptr);
	if (!a.literal && config_is_local_domain(cfg, a.domain)) {
		if (a.quoted)
			return alias_error(err, errlen, -EINVAL,
					   "target '%.*s': a quoted local part cannot be a local "
					   "user or alias",
					   echo_len(t), t.ptr);
		str_lower(text);
	}
	*out = strdup(text);
	if (!*out)
		return alias_error(err, errlen, -ENOMEM, "out of memory");
	return 0;
}

/* Length of the target starting at p: up to the first comma outside a quoted string. */
static size_t target_len(const char *p, size_t len)
{
	bool quoted = false;

	for (size_t i = 0; i < len; i++) {
		if (quoted && p[i] == '\\' && i + 1 < len)
			i++;
		else if (p[i] == '"')
			quoted = !quoted;
		else if (p[i] == ',' && !quoted)
			return i;
	}
	return len;
}

static int parse_targets(struct slice right, const struct config *cfg, struct alias *out,
			 char *err, size_t errlen)
{
	size_t cap = 0;
	int r;

	if (slice_trim(right).len == 0)
		return alias_error(err, errlen, -EINVAL, "no targets after ':'");
	for (size_t pos = 0; pos <= right.len;) {
		size_t n = target_len(right.ptr + pos, right.len - pos);
		struct slice t = slice_trim((struct slice){ right.ptr + pos, n });

		pos += n + 1;
		if (t.len == 0)
			return alias_error(err, errlen, -EINVAL,
					   "empty target (two commas, or a comma at the end)");
		if (out->ntargets == ALIAS_TARGETS_MAX)
			return alias_error(err, errlen, -EINVAL, "more than %d targets",
					   ALIAS_TARGETS_MAX);
		if (out->ntargets == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			char **p = reallocarray(out->targets, ncap, sizeof *p);
			if (!p)
				return alias_error(err, errlen, -ENOMEM, "out of memory");
			out->targets = p;
			cap = ncap;
		}
		r = parse_target(t, cfg, &out->targets[out->ntargets], err, errlen);
		if (r < 0)
			return r;
		out->ntargets++;
	}
	return 0;
}

int aliasdb_parse_line(const char *line, size_t len, const struct config *cfg, struct alias *out,
		       char *err, size_t errlen)
{
	struct slice all = slice_trim((struct slice){ line, len });
	int r;

	memset(out, 0, sizeof *out);
	if (len > ALIAS_LINE_MAX)
		return alias_error(err, errlen, -EINVAL, "logical line longer than %d bytes",
				   ALIAS_LINE_MAX);
	if (all.len == 0 || all.ptr[0] == '#')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return alias_error(err, errlen, -EINVAL,
					   "control character 0x%02x in line", c);
	}
	/* A valid left-hand side holds no ':' (no quotes, no IPv6 literal). */
	const char *colon = memchr(all.ptr, ':', all.len);
	if (!colon)
		return alias_error(err, errlen, -EINVAL,
				   "expected \"alias: target, ...\", no ':' found");
	struct slice left = slice_trim((struct slice){ all.ptr, (size_t)(colon - all.ptr) });
	struct slice right = { colon + 1, all.len - (size_t)(colon - all.ptr) - 1 };

	r = parse_alias_key(left, cfg, &out->address, err, errlen);
	if (r == 0)
		r = parse_targets(right, cfg, out, err, errlen);
	if (r < 0) {
		alias_free_fields(out);
		return r;
	}
	return 1;
}

/*
 * The loader's state: the logical line being gathered (folding), and what
 * the previous physical line allows.
 */
struct alias_loader {
	const char *path;
	const struct config *cfg;
	config_report_fn *report;
	void *ctx;
	struct aliasdb *db;
	struct buf logical; /* limited to ALIAS_LINE_MAX */
	unsigned start;     /* first physical line of logical; 0: none pending */
	bool overlong;      /* logical passed the limit: drop its continuations */
	bool orphan;        /* dropping continuations of a misplaced one */
	unsigned long errors;
	bool nomem;
};

static void loader_error(struct alias_loader *ld, unsigned line, const char *msg)
{
	if (ld->report)
		ld->report(ld->ctx, ld->path, line, msg);
	ld->errors++;
}

/* Parse and insert the pending logical line, if any. */
static void loader_flush(struct alias_loader *ld)
{
	char err[256];
	struct alias a;
	int r;

	if (ld->start == 0)
		return;
	unsigned line = ld->start;
	bool skip = ld->overlong;
	ld->start = 0;
	ld->overlong = false;
	if (skip || ld->nomem) {
		buf_reset(&ld->logical);
		return;
	}
	r = aliasdb_parse_line(buf_cstr(&ld->logical), ld->logical.len, ld->cfg, &a, err,
			       sizeof err);
	buf_reset(&ld->logical);
	if (r == -ENOMEM) {
		ld->nomem = true;
		return;
	}
	if (r < 0) {
		loader_error(ld, line, err);
		return;
	}
	if (r == 0)
		return;

	struct alias_entry *e = malloc(sizeof *e);
	if (!e) {
		alias_free_fields(&a);
		ld->nomem = true;
		return;
	}
	e->a = a;
	e->line = line;
	r = strmap_put(ld->db->map, a.address, e);
	if (r == -EEXIST) {
		const struct alias_entry *first = strmap_get(ld->db->map, a.address);
		snprintf(err, sizeof err, "duplicate alias '%s' (first on line %u)", a.address,
			 first->line);
		loader_error(ld, line, err);
	} else if (r == -ENOMEM) {
		ld->nomem = true;
	}
	if (r < 0)
		alias_entry_free(e);
}

/* Feed one physical line (without its line end). */
static void loader_line(struct alias_loader *ld, const char *p, size_t n, unsigned lineno)
{
	struct slice t = slice_trim((struct slice){ p, n });
	bool blank = t.len == 0 || t.ptr[0] == '#';
	bool continuation = !blank && (p[0] == ' ' || p[0] == '\t');

	if (!continuation) {
		loader_flush(ld);
		ld->orphan = false;
		if (blank)
			return;
		ld->start = lineno;
	} else if (ld->start == 0) {
		if (!ld->orphan)
			loader_error(ld, lineno,
				     "continuation line without a line to continue (at the "
				     "start of the file, or after a comment or a blank line)");
		ld->orphan = true;
		return;
	}
	if (ld->overlong)
		return;
	int r = buf_append(&ld->logical, p, n);
	if (r == -ENOSPC) {
		char err[128];
		snprintf(err, sizeof err, "logical line longer than %d bytes", ALIAS_LINE_MAX);
		loader_error(ld, ld->start, err);
		ld->overlong = true;
	} else if (r < 0) {
		ld->nomem = true;
	}
}

/* Parse the text of a whole alias file into db; 0, -EINVAL after reports, -ENOMEM. */
static int aliases_parse_text(struct aliasdb *db, const char *path, const char *text, size_t len,
			      const struct config *cfg, config_report_fn *report, void *ctx)
{
	struct alias_loader ld = {
		.path = path, .cfg = cfg, .report = report, .ctx = ctx, .db = db,
	};
	unsigned lineno = 0;
	size_t pos = 0;

	buf_init(&ld.logical, ALIAS_LINE_MAX);
	while (pos < len && !ld.nomem) {
		const char *p = text + pos;
		const char *nl = memchr(p, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - p) : len - pos;

		pos += n + (nl != NULL);
		if (n && p[n - 1] == '\r')
			n--;
		loader_line(&ld, p, n, ++lineno);
	}
	loader_flush(&ld);
	buf_free(&ld.logical);
	if (ld.nomem)
		return -ENOMEM;
	return ld.errors ? -EINVAL : 0;
}

int aliasdb_load(const char *path, const struct config *cfg, config_report_fn *report, void *ctx,
		 struct aliasdb **out)
{
	char msg[256];
	struct buf text;
	int r = file_read_all(path, ALIASES_FILE_MAX, &text);

	if (r < 0) {
		if (r == -EFBIG)
			snprintf(msg, sizeof msg, "cannot read: larger than %zu MiB",
				 ALIASES_FILE_MAX >> 20);
		else
			snprintf(msg, sizeof msg, "cannot read: %s", strerror(-r));
		if (report)
			report(ctx, path, 0, msg);
		return r;
	}
	struct aliasdb *db = aliasdb_new();
	r = db ? aliases_parse_text(db, path, buf_cstr(&text), text.len, cfg, report, ctx)
	       : -ENOMEM;
	buf_free(&text);
	if (r == -ENOMEM && report)
		report(ctx, path, 0, "out of memory");
	if (r < 0) {
		aliasdb_free(db);
		return r;
	}
	*out = db;
	return 0;
}
