/*
 * config: parse carteiro's configuration file into struct config.
 *
 * Contract (config.h): config_init() gives every key its default;
 * config_parse() overlays a file on that and reports every error it finds,
 * with its line, through the caller's report function, then goes on with the
 * next line so that one run shows all the mistakes of a file. A struct config
 * is always complete: its strings are heap-allocated and non-NULL, except
 * users_file and aliases_file, which are NULL when not configured.
 *
 * Every key is declared once, in keys[] below, with its type, default, limits
 * and documentation. A default is text parsed by the same setter as a value
 * from the file, so it obeys the same checks; config_print_keys() prints the
 * table for `carteiro help config`. A single-valued key may appear once in a
 * file and replaces its default; a repeatable key builds a list that starts
 * from its default (empty for all of them) at its first line in the file.
 *
 * Syntax: "key value..." separated by SP/HTAB; a word that begins with '#'
 * starts a comment (a '#' inside a word is part of it); LF or CRLF line ends;
 * blank lines are ignored. Values are single words; listen takes two.
 *
 * Security: the file is written by root, but it is still parsed as untrusted
 * bytes: a line is at most CONFIG_LINE_MAX bytes, NUL and control characters
 * are refused, numbers are range-checked before they are narrowed, lists are
 * capped, and text echoed in messages is cut and escaped (quote()) so that a
 * message cannot carry terminal controls or forge a line of its own.
 */
#include "conf/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/addr.h"
#include "policy/dkim.h"
#include "policy/greylist.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/str.h"

#define CONFIG_LINE_MAX 4096          /* bytes, line end excluded */
#define CONFIG_FILE_MAX (1024 * 1024) /* config_load_file() */
#define CONFIG_WORDS_MAX 16           /* values kept per directive; more is an error */
#define CONFIG_MSG_MAX 600
#define QUOTE_IN_MAX 64 /* bytes of a word shown in a message */
#define QUOTE_MAX 300   /* room for QUOTE_IN_MAX bytes escaped as \xNN, and "..." */
#define USER_NAME_MAX 32

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct key;

/* One directive being applied: its values, its origin, and room for an error message. */
struct directive {
	const struct key *key;
	struct slice words[CONFIG_WORDS_MAX];
	size_t nwords; /* values after the key; may exceed CONFIG_WORDS_MAX */
	unsigned line; /* 0 for a default */
	char msg[CONFIG_MSG_MAX];
};

/* Parse d->words into the key's field: 0, or -EINVAL/-ENOMEM with d->msg set. */
typedef int key_set_fn(struct config *cfg, struct directive *d);
/* Free what the setters allocated and forget the value. */
typedef void key_clear_fn(struct config *cfg, const struct key *k);

/* How a range is written in messages and in `help config`. */
enum key_unit {
	UNIT_NONE,
	UNIT_COUNT,
	UNIT_SIZE,
	UNIT_DURATION,
};

struct key_type {
	key_set_fn *set;
	key_clear_fn *clear; /* NULL for values that own no memory */
	size_t min_words, max_words;
	enum key_unit unit; /* of key.min and key.max */
};

enum {
	KEY_REPEAT = 1 << 0,          /* each line adds to a list */
	KEY_SYSTEM_HOSTNAME = 1 << 1, /* try the system's host name before the default */
};

struct key {
	const char *name;
	const struct key_type *type;
	size_t off;      /* of the field in struct config */
	size_t line_off; /* of the unsigned that records the line (type_file only) */
	const char *def; /* default value as text; NULL: none (NULL path, empty list) */
	uint64_t min, max; /* value range; for a list, max is its length limit */
	unsigned flags;
	const char *syntax;
	const char *doc;
};

#define FIELD(cfg, k, type) ((type *)(void *)((char *)(cfg) + (k)->off))

/* ---- messages ------------------------------------------------------------------------------ */

/*
 * Copy a word for a message: at most QUOTE_IN_MAX bytes, '\\' and bytes
 * outside printable ASCII as \xNN, "..." when cut.
 */
static const char *quote(char *dst, size_t dstlen, struct slice s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = s.len > QUOTE_IN_MAX ? QUOTE_IN_MAX : s.len, o = 0;

	for (size_t i = 0; i < n && o + 5 < dstlen; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (n < s.len && o + 4 <= dstlen) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

/* A quoted word, valid until the end of the enclosing block. */
#define Q(s) quote((char[QUOTE_MAX]){ 0 }, QUOTE_MAX, (s))

__attribute__((format(printf, 2, 3))) static int fail(struct directive *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof d->msg, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int fail_nomem(struct directive *d)
{
	snprintf(d->msg, sizeof d->msg, "out of memory");
	return -ENOMEM;
}

/* Write v with the largest unit that divides it exactly ("1K", "2G", "5m", "0"). */
static const char *unit_text(char *dst, size_t dstlen, enum key_unit unit, uint64_t v)
{
	static const struct {
		char suffix;
		uint64_t mult;
	} sizes[] = { { 'G', 1024ULL * 1024 * 1024 }, { 'M', 1024 * 1024 }, { 'K', 1024 } },
	  durations[] = { { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 } };
	const char *fmt = unit == UNIT_DURATION ? "%llus" : "%llu";

	if (v != 0 && (unit == UNIT_SIZE || unit == UNIT_DURATION)) {
		for (size_t i = 0; i < 3; i++) {
			char suffix = unit == UNIT_SIZE ? sizes[i].suffix : durations[i].suffix;
			uint64_t mult = unit == UNIT_SIZE ? sizes[i].mult : durations[i].mult;
			if (v % mult == 0) {
				snprintf(dst, dstlen, "%llu%c", (unsigned long long)(v / mult),
					 suffix);
				return dst;
			}
		}
	}
	snprintf(dst, dstlen, fmt, (unsigned long long)v);
	return dst;
}

/* "from 1 to 100000", for messages. */
static const char *range_text(char *dst, size_t dstlen, const struct key *k)
{
	char lo[32], hi[32];
	snprintf(dst, dstlen, "from %s to %s", unit_text(lo, sizeof lo, k->type->unit, k->min),
		 unit_text(hi, sizeof hi, k->type->unit, k->max));
	return dst;
}

#define RANGE(k) range_text((char[80]){ 0 }, 80, (k))

/* ---- setters ------------------------------------------------------------------------------- */

/* Replace the string at *field by a copy of s. */
static int store_string(char **field, struct slice s, struct directive *d)
{
	char *copy = strndup(s.ptr, s.len);
	if (!copy)
		return fail_nomem(d);
	free(*field);
	*field = copy;
	return 0;
}

static void clear_string(struct config *cfg, const struct key *k)
{
	char **field = FIELD(cfg, k, char *);
	free(*field);
	*field = NULL;
}

static int set_hostname(struct config *cfg, struct directive *d)
{
	if (!addr_domain_valid(d->words[0], false))
		return fail(d, "bad value '%s' for '%s' (expected a domain name such as "
			       "mail.example.org)", Q(d->words[0]), d->key->name);
	return store_string(FIELD(cfg, d->key, char *), d->words[0], d);
}

/* Paths are kept as written: a relative one is relative to the working directory. */
static int set_path(struct config *cfg, struct directive *d)
{
	return store_string(FIELD(cfg, d->key, char *), d->words[0], d);
}

/* A path whose line is kept for the messages of the module that reads the file. */
static int set_file(struct config *cfg, struct directive *d)
{
	int r = set_path(cfg, d);
	if (r == 0)
		*(unsigned *)(void *)((char *)cfg + d->key->line_off) = d->line;
	return r;
}

static void clear_file(struct config *cfg, const struct key *k)
{
	clear_string(cfg, k);
	*(unsigned *)(void *)((char *)cfg + k->line_off) = 0;
}

/* The portable user name of useradd: [a-z_][a-z0-9_-]*[$]?, at most 32 characters. */
static bool user_name_valid(struct slice s)
{
	if (s.len == 0 || s.len > USER_NAME_MAX)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.ptr[i];
		bool ok = (c >= 'a' && c <= 'z') || c == '_' ||
			  (i > 0 && (ascii_isdigit(c) || c == '-')) ||
			  (i > 0 && i == s.len - 1 && c == '$');
		if (!ok)
			return false;
	}
	return true;
}

static int set_user(struct config *cfg, struct directive *d)
{
	if (!user_name_valid(d->words[0]))
		return fail(d, "bad value '%s' for '%s' (expected a user name: "
			       "[a-z_][a-z0-9_-]*[$], at most %d characters)",
			    Q(d->words[0]), d->key->name, USER_NAME_MAX);
	return store_string(FIELD(cfg, d->key, char *), d->words[0], d);
}

/* Make room for one more element of size bytes in an array of n (a list key). */
static int grow(void **array, size_t n, size_t size, struct directive *d)
{
	size_t want;
	void *p;

	if (!size_add(n, 1, &want) || !size_mul(want, size, &want))
		return fail_nomem(d);
	p = realloc(*array, want);
	if (!p)
		return fail_nomem(d);
	*array = p;
	return 0;
}

/* Append copy (which the list takes over, or frees on failure) to a string list. */
static int append_string(char ***items, size_t *n, char *copy, struct directive *d)
{
	void *array = *items;

	if (grow(&array, *n, sizeof copy, d) < 0) {
		free(copy);
		return -ENOMEM;
	}
	*items = array;
	(*items)[(*n)++] = copy;
	return 0;
}

static bool same_address(const struct netaddr *a, const struct netaddr *b)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	const struct sockaddr *sb = (const struct sockaddr *)&b->ss;
	uint8_t ka[16], kb[16];

	/* IPv4 and IPv6 sockets never conflict, even for ::ffff:a.b.c.d. */
	if (sa->sa_family != sb->sa_family || netaddr_port(sa) != netaddr_port(sb))
		return false;
	netaddr_key(sa, ka);
	netaddr_key(sb, kb);
	return memcmp(ka, kb, sizeof ka) == 0;
}

/* Listener kinds and the options each implies (submission's STARTTLS: see check_whole). */
static const struct {
	const char *name;
	enum listen_kind kind;
	unsigned flags;
} listen_kinds[] = {
	{ "smtp", LISTEN_SMTP, 0 },
	{ "submission", LISTEN_SUBMISSION, LISTEN_AUTH_REQUIRED },
	{ "submissions", LISTEN_SUBMISSIONS, LISTEN_IMPLICIT_TLS | LISTEN_AUTH_REQUIRED },
	{ "pop3", LISTEN_POP3, 0 },
	{ "pop3s", LISTEN_POP3S, LISTEN_IMPLICIT_TLS },
};

static const struct {
	const char *name;
	unsigned flag;
} listen_options[] = {
	{ "starttls", LISTEN_STARTTLS },
	{ "implicit-tls", LISTEN_IMPLICIT_TLS },
	{ "auth-required", LISTEN_AUTH_REQUIRED },
};

static int set_listen(struct config *cfg, struct directive *d)
{
	struct listen_cfg l = { .kind = LISTEN_SMTP, .line = d->line };
	struct slice kind = d->words[0], addr = d->words[1];
	void *array = cfg->listens;
	size_t k;

	for (k = 0; k < ARRAY_LEN(listen_kinds); k++)
		if (slice_eq_cstr_nocase(kind, listen_kinds[k].name))
			break;
	if (k == ARRAY_LEN(listen_kinds))
		return fail(d, "unknown listener kind '%s' (expected smtp, submission, "
			       "submissions, pop3 or pop3s)", Q(kind));
	l.kind = listen_kinds[k].kind;
	l.flags = listen_kinds[k].flags;
	if (netaddr_parse_hostport(addr, &l.addr) < 0 || !slice_copy(l.text, sizeof l.text, addr))
		return fail(d, "bad listen address '%s' (expected IPV4:PORT, [IPV6]:PORT "
			       "or *:PORT)", Q(addr));
	if (netaddr_port((const struct sockaddr *)&l.addr.ss) == 0)
		return fail(d, "bad listen address '%s': port 0 is not allowed", Q(addr));
	for (size_t i = 2; i < d->nwords && i < CONFIG_WORDS_MAX; i++) {
		size_t o;
		for (o = 0; o < ARRAY_LEN(listen_options); o++)
			if (slice_eq_cstr_nocase(d->words[i], listen_options[o].name))
				break;
		if (o == ARRAY_LEN(listen_options))
			return fail(d, "unknown listen option '%s' (expected starttls, implicit-tls "
				       "or auth-required)", Q(d->words[i]));
		l.flags |= listen_options[o].flag;
	}
	if ((l.flags & LISTEN_STARTTLS) && (l.flags & LISTEN_IMPLICIT_TLS))
		return fail(d, "listen options starttls and implicit-tls exclude each other");
	if (listen_is_pop3(&l) && (l.flags & LISTEN_AUTH_REQUIRED))
		return fail(d, "listen option auth-required is for SMTP (POP3 always needs a login)");
	for (size_t i = 0; i < cfg->nlistens; i++)
		if (same_address(&cfg->listens[i].addr, &l.addr))
			return fail(d, "duplicate listen address '%s' (same as '%s')", Q(addr),
				    cfg->listens[i].text);
	if (cfg->nlistens >= d->key->max)
		return fail(d, "too many '%s' directives (at most %llu)", d->key->name,
			    (unsigned long long)d->key->max);
	if (grow(&array, cfg->nlistens, sizeof l, d) < 0)
		return -ENOMEM;
	cfg->listens = array;
	cfg->listens[cfg->nlistens++] = l;
	return 0;
}

/* A repeatable path (tls-cert, tls-key): kept as written, in order. */
static int set_path_list(struct config *cfg, struct directive *d)
{
	struct str_list *list = FIELD(cfg, d->key, struct str_list);
	char *copy;

	if (list->n >= d->key->max)
		return fail(d, "too many '%s' directives (at most %llu)", d->key->name,
			    (unsigned long long)d->key->max);
	copy = strndup(d->words[0].ptr, d->words[0].len);
	if (!copy)
		return fail_nomem(d);
	return append_string(&list->items, &list->n, copy, d);
}

static void clear_path_list(struct config *cfg, const struct key *k)
{
	struct str_list *list = FIELD(cfg, k, struct str_list);
	for (size_t i = 0; i < list->n; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->n = 0;
}

static void clear_listens(struct config *cfg, const struct key *k)
{
	(void)k;
	free(cfg->listens);
	cfg->listens = NULL;
	cfg->nlistens = 0;
}

static int set_local_domain(struct config *cfg, struct directive *d)
{
	struct slice w = d->words[0];
	char *copy;

	if (!addr_domain_valid(w, false))
		return fail(d, "bad value '%s' for '%s' (expected a domain name such as "
			       "example.org)", Q(w), d->key->name);
	if (cfg->nlocal_domains >= d->key->max)
		return fail(d, "too many '%s' directives (at most %llu)", d->key->name,
			    (unsigned long long)d->key->max);
	copy = strndup(w.ptr, w.len);
	if (!copy)
		return fail_nomem(d);
	str_lower(copy);
	for (size_t i = 0; i < cfg->nlocal_domains; i++) {
		if (strcmp(cfg->local_domains[i], copy) == 0) {
			free(copy);
			return fail(d, "duplicate local-domain '%s'", Q(w));
		}
	}
	return append_string(&cfg->local_domains, &cfg->nlocal_domains, copy, d);
}

static void clear_local_domains(struct config *cfg, const struct key *k)
{
	(void)k;
	for (size_t i = 0; i < cfg->nlocal_domains; i++)
		free(cfg->local_domains[i]);
	free(cfg->local_domains);
	cfg->local_domains = NULL;
	cfg->nlocal_domains = 0;
}

static int set_relay_network(struct config *cfg, struct directive *d)
{
	struct cidr c;
	void *array = cfg->relay_networks;

	if (cidr_parse(d->words[0], &c) < 0)
		return fail(d, "bad value '%s' for '%s' (expected a network such as "
			       "192.0.2.0/24 or 2001:db8::/32, or an address)",
			    Q(d->words[0]), d->key->name);
	if (cfg->nrelay_networks >= d->key->max)
		return fail(d, "too many '%s' directives (at most %llu)", d->key->name,
			    (unsigned long long)d->key->max);
	if (grow(&array, cfg->nrelay_networks, sizeof c, d) < 0)
		return -ENOMEM;
	cfg->relay_networks = array;
	cfg->relay_networks[cfg->nrelay_networks++] = c;
	return 0;
}

static void clear_relay_networks(struct config *cfg, const struct key *k)
{
	(void)k;
	free(cfg->relay_networks);
	cfg->relay_networks = NULL;
	cfg->nrelay_networks = 0;
}

static int set_size(struct config *cfg, struct directive *d)
{
	const struct key *k = d->key;
	uint64_t v;

	if (parse_size(d->words[0], &v) < 0 || v < k->min || v > k->max)
		return fail(d, "bad value '%s' for '%s' (expected a size such as 4096, 512K, 35M "
			       "or 1G, %s)", Q(d->words[0]), k->name, RANGE(k));
	*FIELD(cfg, k, uint64_t) = v;
	return 0;
}

/* The table keeps max <= UINT_MAX for the unsigned fields, so the narrowing is exact. */
static int set_count(struct config *cfg, struct directive *d)
{
	const struct key *k = d->key;
	uint64_t v;

	if (parse_u64(d->words[0], k->max, &v) < 0 || v < k->min)
		return fail(d, "bad value '%s' for '%s' (expected a number %s)", Q(d->words[0]),
			    k->name, RANGE(k));
	*FIELD(cfg, k, unsigned) = (unsigned)v;
	return 0;
}

static int set_duration(struct config *cfg, struct directive *d)
{
	const struct key *k = d->key;
	uint64_t v;

	if (parse_duration(d->words[0], &v) < 0 || v < k->min || v > k->max)
		return fail(d, "bad value '%s' for '%s' (expected a duration such as 30s, 5m "
			       "or 1h, %s)", Q(d->words[0]), k->name, RANGE(k));
	*FIELD(cfg, k, unsigned) = (unsigned)v;
	return 0;
}

static int set_workers(struct config *cfg, struct directive *d)
{
	const struct key *k = d->key;
	uint64_t v;

	if (slice_eq_cstr_nocase(d->words[0], "auto")) {
		*FIELD(cfg, k, unsigned) = 0;
		return 0;
	}
	if (parse_u64(d->words[0], k->max, &v) < 0 || v < k->min)
		return fail(d, "bad value '%s' for '%s' (expected auto or a number %s)",
			    Q(d->words[0]), k->name, RANGE(k));
	*FIELD(cfg, k, unsigned) = (unsigned)v;
	return 0;
}

static int set_delimiter(struct config *cfg, struct directive *d)
{
	static const char allowed[] = "+-=_.";
	char *field = FIELD(cfg, d->key, char);
	struct slice w = d->words[0];
	bool ok = w.len > 0 && w.len < sizeof cfg->recipient_delimiter;

	if (slice_eq_cstr_nocase(w, "none")) {
		field[0] = '\0';
		return 0;
	}
	/* Each character at most once: a repeat is a typo, not a second delimiter. */
	for (size_t i = 0; ok && i < w.len; i++)
		ok = w.ptr[i] != '\0' && strchr(allowed, w.ptr[i]) &&
		     !memchr(w.ptr, w.ptr[i], i);
	if (!ok)
		return fail(d, "bad value '%s' for '%s' (expected 1 to %zu different characters "
			       "of \"%s\", or none)", Q(w), d->key->name,
			    sizeof cfg->recipient_delimiter - 1, allowed);
	memcpy(field, w.ptr, w.len);
	field[w.len] = '\0';
	return 0;
}

static int set_bool(struct config *cfg, struct directive *d)
{
	static const struct {
		const char *name;
		bool value;
	} words[] = {
		{ "yes", true }, { "no", false }, { "on", true }, { "off", false },
		{ "true", true }, { "false", false },
	};
	struct slice w = d->words[0];

	for (size_t i = 0; i < ARRAY_LEN(words); i++) {
		if (slice_eq_cstr_nocase(w, words[i].name)) {
			*FIELD(cfg, d->key, bool) = words[i].value;
			return 0;
		}
	}
	return fail(d, "bad value '%s' for '%s' (expected yes or no)", Q(w), d->key->name);
}

/* A word naming one value of an enum key. */
struct enum_word {
	const char *name;
	int value;
};

/* Set the (int-sized) enum field of d's key to the value its word names. */
static int set_enum(struct config *cfg, struct directive *d, const struct enum_word *words,
		    size_t n, const char *expected)
{
	for (size_t i = 0; i < n; i++) {
		if (slice_eq_cstr_nocase(d->words[0], words[i].name)) {
			*FIELD(cfg, d->key, int) = words[i].value;
			return 0;
		}
	}
	return fail(d, "bad value '%s' for '%s' (expected %s)", Q(d->words[0]), d->key->name,
		    expected);
}

static int set_log_level(struct config *cfg, struct directive *d)
{
	static const struct enum_word words[] = {
		{ "error", LVL_ERR },
		{ "warning", LVL_WARN },
		{ "info", LVL_INFO },
		{ "debug", LVL_DEBUG },
	};

	_Static_assert(sizeof(enum log_level) == sizeof(int), "an int-sized enum");
	return set_enum(cfg, d, words, ARRAY_LEN(words), "error, warning, info or debug");
}

/* A DNS server: an IP address, with a port or not ("192.0.2.53", "127.0.0.1:5353", "[::1]:53"). */
static int set_dns_server(struct config *cfg, struct directive *d)
{
	struct slice w = d->words[0];
	struct netaddr na;
	struct cidr c;
	void *array = cfg->dns_servers;
	char *copy;

	bool ip_only = cidr_parse(w, &c) == 0 && memchr(w.ptr, '/', w.len) == NULL;
	if (!ip_only && (netaddr_parse_hostport(w, &na) < 0 ||
			 netaddr_port((const struct sockaddr *)&na.ss) == 0))
		return fail(d, "bad value '%s' for '%s' (expected an IP address, IP:PORT or "
			       "[IPV6]:PORT)", Q(w), d->key->name);
	if (cfg->ndns_servers >= d->key->max)
		return fail(d, "too many '%s' directives (at most %llu)", d->key->name,
			    (unsigned long long)d->key->max);
	copy = strndup(w.ptr, w.len);
	if (!copy || grow(&array, cfg->ndns_servers, sizeof copy, d) < 0) {
		free(copy);
		return fail_nomem(d);
	}
	cfg->dns_servers = array;
	cfg->dns_servers[cfg->ndns_servers++] = copy;
	return 0;
}

static void clear_dns_servers(struct config *cfg, const struct key *k)
{
	(void)k;
	for (size_t i = 0; i < cfg->ndns_servers; i++)
		free(cfg->dns_servers[i]);
	free(cfg->dns_servers);
	cfg->dns_servers = NULL;
	cfg->ndns_servers = 0;
}

/* relayhost HOST[:PORT], HOST a domain name, an IPv4 address or [IPV6]. */
static int set_relayhost(struct config *cfg, struct directive *d)
{
	struct slice w = d->words[0], host = w;
	uint64_t port = 0;
	const char *colon = NULL;
	struct cidr c;

	if (w.len > 0 && w.ptr[0] == '[') {
		const char *end = memchr(w.ptr, ']', w.len);
		if (!end)
			goto bad;
		host = (struct slice){ w.ptr + 1, (size_t)(end - w.ptr - 1) };
		if (end + 1 < w.ptr + w.len) {
			if (end[1] != ':')
				goto bad;
			colon = end + 1;
		}
		if (cidr_parse(host, &c) < 0 || memchr(host.ptr, '/', host.len))
			goto bad;
	} else {
		colon = memchr(w.ptr, ':', w.len);
		if (colon)
			host.len = (size_t)(colon - w.ptr);
		if (!addr_domain_valid(host, false) &&
		    (cidr_parse(host, &c) < 0 || memchr(host.ptr, '/', host.len)))
			goto bad;
	}
	if (colon) {
		struct slice ps = { colon + 1, (size_t)(w.ptr + w.len - colon - 1) };
		if (parse_u64(ps, 65535, &port) < 0 || port == 0)
			goto bad;
	}
	cfg->relayhost_port = (unsigned)port;
	return store_string(FIELD(cfg, d->key, char *), host, d);
bad:
	return fail(d, "bad value '%s' for '%s' (expected HOST:PORT, such as "
		       "smtp.example.net:587 or [2001:db8::1]:465)", Q(w), d->key->name);
}

static int set_relayhost_tls(struct config *cfg, struct directive *d)
{
	static const struct enum_word words[] = {
		{ "starttls", RELAYHOST_STARTTLS },
		{ "implicit", RELAYHOST_IMPLICIT },
		{ "none", RELAYHOST_NONE },
	};

	_Static_assert(sizeof(enum relayhost_tls) == sizeof(int), "an int-sized enum");
	return set_enum(cfg, d, words, ARRAY_LEN(words), "starttls, implicit or none");
}

static int set_pop3_plaintext(struct config *cfg, struct directive *d)
{
	static const struct enum_word words[] = {
		{ "loopback", POP3_PLAINTEXT_LOOPBACK },
		{ "never", POP3_PLAINTEXT_NEVER },
		{ "always", POP3_PLAINTEXT_ALWAYS },
	};

	_Static_assert(sizeof(enum pop3_plaintext) == sizeof(int), "an int-sized enum");
	return set_enum(cfg, d, words, ARRAY_LEN(words), "loopback, never or always");
}

static int set_dmarc_reject_policy(struct config *cfg, struct directive *d)
{
	static const struct enum_word words[] = {
		{ "reject", DMARC_REJECT_POLICY_REJECT },
		{ "quarantine", DMARC_REJECT_POLICY_QUARANTINE },
		{ "tag", DMARC_REJECT_POLICY_TAG },
	};

	_Static_assert(sizeof(enum dmarc_reject_policy) == sizeof(int), "an int-sized enum");
	return set_enum(cfg, d, words, ARRAY_LEN(words), "reject, quarantine or tag");
}

/*
 * A header field name (RFC 5322 3.6.8: printable ASCII but ':'), at most 64
 * characters, that is not one carteiro or the sender's client writes itself:
 * X- names and other private ones are what a filter looks for.
 */
static int set_header_name(struct config *cfg, struct directive *d)
{
	static const char *const taken[] = { "from", "to", "cc", "bcc", "subject", "date",
					     "message-id", "received", "return-path",
					     "delivered-to", "authentication-results", "sender",
					     "reply-to", "dkim-signature", "received-spf" };
	struct slice w = d->words[0];
	bool ok = w.len > 0 && w.len <= 64;

	for (size_t i = 0; ok && i < w.len; i++)
		ok = ascii_isgraph((unsigned char)w.ptr[i]) && w.ptr[i] != ':';
	for (size_t i = 0; ok && i < ARRAY_LEN(taken); i++)
		ok = !slice_eq_cstr_nocase(w, taken[i]);
	if (!ok)
		return fail(d, "bad value '%s' for '%s' (expected a header field name such as "
			       "X-Carteiro-Quarantine: printable ASCII without ':', at most 64 "
			       "characters, not a standard field)", Q(w), d->key->name);
	return store_string(FIELD(cfg, d->key, char *), w, d);
}

/* retry-schedule DURATION...: delays between attempts; the last one repeats. */
static int set_retry_schedule(struct config *cfg, struct directive *d)
{
	size_t n = d->nwords;

	if (n > RETRY_SCHEDULE_MAX)
		return fail(d, "too many values for '%s' (at most %d)", d->key->name,
			    RETRY_SCHEDULE_MAX);
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		if (parse_duration(d->words[i], &v) < 0 || v < 1 || v > 7 * 86400)
			return fail(d, "bad value '%s' for '%s' (expected durations such as 1m "
				       "5m 15m, each 1s..7d)", Q(d->words[i]), d->key->name);
		cfg->retry_schedule[i] = (unsigned)v;
	}
	cfg->nretry_schedule = n;
	return 0;
}

/* dkim-sign DOMAIN SELECTOR KEYFILE: the key is read later, by the master (policy/dkim.h). */
static int set_dkim_sign(struct config *cfg, struct directive *d)
{
	struct dkim_sign_cfg e = { .line = d->line };
	void *array = cfg->dkim_signs;

	if (!addr_domain_valid(d->words[0], false))
		return fail(d, "bad domain '%s' for '%s' (expected a domain name such as "
			       "example.org)", Q(d->words[0]), d->key->name);
	if (!dkim_selector_valid(d->words[1]))
		return fail(d, "bad selector '%s' for '%s' (expected letters, digits, '-', '_' and "
			       "dots, at most 63 characters)", Q(d->words[1]), d->key->name);
	for (size_t i = 0; i < cfg->ndkim_signs; i++)
		if (slice_eq_cstr_nocase(d->words[0], cfg->dkim_signs[i].domain) &&
		    slice_eq_cstr_nocase(d->words[1], cfg->dkim_signs[i].selector))
			return fail(d, "duplicate '%s %s %s' (line %u)", d->key->name,
				    Q(d->words[0]), Q(d->words[1]), cfg->dkim_signs[i].line);
	if (cfg->ndkim_signs >= d->key->max)
		return fail(d, "too many '%s' directives (at most %llu)", d->key->name,
			    (unsigned long long)d->key->max);
	e.domain = strndup(d->words[0].ptr, d->words[0].len);
	e.selector = strndup(d->words[1].ptr, d->words[1].len);
	e.keyfile = strndup(d->words[2].ptr, d->words[2].len);
	if (!e.domain || !e.selector || !e.keyfile || grow(&array, cfg->ndkim_signs, sizeof e, d) < 0) {
		free(e.domain);
		free(e.selector);
		free(e.keyfile);
		return fail_nomem(d);
	}
	str_lower(e.domain);
	cfg->dkim_signs = array;
	cfg->dkim_signs[cfg->ndkim_signs++] = e;
	return 0;
}

static void clear_dkim_signs(struct config *cfg, const struct key *k)
{
	(void)k;
	for (size_t i = 0; i < cfg->ndkim_signs; i++) {
		free(cfg->dkim_signs[i].domain);
		free(cfg->dkim_signs[i].selector);
		free(cfg->dkim_signs[i].keyfile);
	}
	free(cfg->dkim_signs);
	cfg->dkim_signs = NULL;
	cfg->ndkim_signs = 0;
}

/* dnsbl, rhsbl, dnswl ZONE [CODES], or Postfix's ZONE=CODES in one word. */
static int set_dnsbl(struct config *cfg, struct directive *d)
{
	struct dnsbl_list *list = FIELD(cfg, d->key, struct dnsbl_list);
	struct slice zone = d->words[0], codes = { NULL, 0 };
	struct dnsbl_zone z;
	void *array = list->zones;
	char err[128];

	memset(&z, 0, sizeof z);
	const char *eq = memchr(zone.ptr, '=', zone.len);
	if (eq) {
		if (d->nwords > 1)
			return fail(d, "codes given twice for '%s' (ZONE=CODES or ZONE CODES)",
				    d->key->name);
		codes = (struct slice){ eq + 1, zone.len - (size_t)(eq - zone.ptr) - 1 };
		zone.len = (size_t)(eq - zone.ptr);
	} else if (d->nwords > 1) {
		codes = d->words[1];
	}
	if (zone.len && zone.ptr[zone.len - 1] == '.')
		zone.len--;
	if (!dnsbl_zone_valid(zone))
		return fail(d, "bad zone '%s' for '%s' (expected a domain name such as "
			       "zen.spamhaus.org, at most %d characters)", Q(zone), d->key->name,
			    DNSBL_ZONE_MAX);
	if ((eq || d->nwords > 1) && dnsbl_codes_parse(codes, &z.codes, err, sizeof err) < 0)
		return fail(d, "bad codes '%s' for '%s': %s (expected such as 127.0.0.2, "
			       "127.0.0.2-127.0.0.11, 127.0.0.[2..11], comma-separated)", Q(codes),
			    d->key->name, err);
	if (list->n >= d->key->max)
		return fail(d, "too many '%s' directives (at most %llu)", d->key->name,
			    (unsigned long long)d->key->max);
	z.zone = strndup(zone.ptr, zone.len);
	if (!z.zone)
		return fail_nomem(d);
	str_lower(z.zone);
	for (size_t i = 0; i < list->n; i++) {
		if (strcmp(list->zones[i].zone, z.zone) == 0) {
			free(z.zone);
			return fail(d, "duplicate %s zone '%s'", d->key->name, Q(zone));
		}
	}
	if (grow(&array, list->n, sizeof z, d) < 0) {
		free(z.zone);
		return -ENOMEM;
	}
	list->zones = array;
	list->zones[list->n++] = z;
	return 0;
}

static void clear_dnsbl(struct config *cfg, const struct key *k)
{
	struct dnsbl_list *list = FIELD(cfg, k, struct dnsbl_list);
	for (size_t i = 0; i < list->n; i++)
		free(list->zones[i].zone);
	free(list->zones);
	list->zones = NULL;
	list->n = 0;
}

/* N/DURATION, or off. */
static int set_rate(struct config *cfg, struct directive *d)
{
	if (ratelimit_rate_parse(d->words[0], FIELD(cfg, d->key, struct ratelimit_rate)) < 0)
		return fail(d, "bad value '%s' for '%s' (expected COUNT/DURATION such as 30/1m or "
			       "500/1h, at most %u per up to 7d, or off)", Q(d->words[0]),
			    d->key->name, RATELIMIT_COUNT_MAX);
	return 0;
}

/* ---- the table ----------------------------------------------------------------------------- */

static const struct key_type type_hostname = { set_hostname, clear_string, 1, 1, UNIT_NONE };
static const struct key_type type_path = { set_path, clear_string, 1, 1, UNIT_NONE };
static const struct key_type type_file = { set_file, clear_file, 1, 1, UNIT_NONE };
static const struct key_type type_user = { set_user, clear_string, 1, 1, UNIT_NONE };
/* listen takes its options after the address; set_listen refuses the unknown ones. */
static const struct key_type type_listen = { set_listen, clear_listens, 2, CONFIG_WORDS_MAX,
					     UNIT_NONE };
static const struct key_type type_local_domain = { set_local_domain, clear_local_domains, 1, 1,
						   UNIT_NONE };
static const struct key_type type_relay_network = { set_relay_network, clear_relay_networks, 1, 1,
						    UNIT_NONE };
static const struct key_type type_size = { set_size, NULL, 1, 1, UNIT_SIZE };
static const struct key_type type_count = { set_count, NULL, 1, 1, UNIT_COUNT };
static const struct key_type type_duration = { set_duration, NULL, 1, 1, UNIT_DURATION };
static const struct key_type type_workers = { set_workers, NULL, 1, 1, UNIT_COUNT };
static const struct key_type type_delimiter = { set_delimiter, NULL, 1, 1, UNIT_NONE };
static const struct key_type type_bool = { set_bool, NULL, 1, 1, UNIT_NONE };
static const struct key_type type_log_level = { set_log_level, NULL, 1, 1, UNIT_NONE };
static const struct key_type type_dns_server = { set_dns_server, clear_dns_servers, 1, 1,
						 UNIT_NONE };
static const struct key_type type_relayhost = { set_relayhost, clear_string, 1, 1, UNIT_NONE };
static const struct key_type type_relayhost_tls = { set_relayhost_tls, NULL, 1, 1, UNIT_NONE };
static const struct key_type type_retry_schedule = { set_retry_schedule, NULL, 1,
						     CONFIG_WORDS_MAX, UNIT_NONE };
static const struct key_type type_path_list = { set_path_list, clear_path_list, 1, 1, UNIT_NONE };
static const struct key_type type_dkim_sign = { set_dkim_sign, clear_dkim_signs, 3, 3, UNIT_NONE };
static const struct key_type type_pop3_plaintext = { set_pop3_plaintext, NULL, 1, 1, UNIT_NONE };
static const struct key_type type_dnsbl = { set_dnsbl, clear_dnsbl, 1, 2, UNIT_NONE };
static const struct key_type type_rate = { set_rate, NULL, 1, 1, UNIT_NONE };

static int set_spf_policy(struct config *cfg, struct directive *d)
{
	static const struct enum_word words[] = {
		{ "off", SPF_POLICY_OFF },
		{ "tag", SPF_POLICY_TAG },
		{ "reject-fail", SPF_POLICY_REJECT_FAIL },
	};

	_Static_assert(sizeof(enum spf_policy) == sizeof(int), "an int-sized enum");
	return set_enum(cfg, d, words, ARRAY_LEN(words), "off, tag or reject-fail");
}

static const struct key_type type_spf_policy = { set_spf_policy, NULL, 1, 1, UNIT_NONE };
static const struct key_type type_dmarc_reject_policy = { set_dmarc_reject_policy, NULL, 1, 1,
							  UNIT_NONE };
static const struct key_type type_header_name = { set_header_name, clear_string, 1, 1, UNIT_NONE };

#define OFF(field) offsetof(struct config, field)
#define KIB 1024ULL
#define GIB (1024ULL * 1024 * 1024)

static const struct key keys[] = {
	{ "hostname", &type_hostname, OFF(hostname), 0, "localhost", 0, 0, KEY_SYSTEM_HOSTNAME,
	  "DOMAIN", "name in the banner, the EHLO reply and Received headers" },
	{ "spool", &type_path, OFF(spool), 0, "/var/spool/carteiro", 0, 0, 0,
	  "PATH", "queue and state directory" },
	{ "maildir-root", &type_path, OFF(maildir_root), 0, "/var/mail/carteiro", 0, 0, 0,
	  "PATH", "the mailbox of user@domain is the Maildir <root>/<domain>/<user>/" },
	{ "user", &type_user, OFF(user), 0, "carteiro", 0, 0, 0,
	  "NAME", "when started as root, run as this user once the ports are bound" },
	{ "listen", &type_listen, OFF(listens), 0, NULL, 0, 256, KEY_REPEAT,
	  "KIND ADDR:PORT [OPTION...]",
	  "KIND smtp, submission(s), pop3(s); OPTION starttls, implicit-tls, auth-required" },
	{ "local-domain", &type_local_domain, OFF(local_domains), 0, NULL, 0, 10000, KEY_REPEAT,
	  "DOMAIN", "deliver mail for this domain here" },
	{ "users", &type_file, OFF(users_file), OFF(users_line), NULL, 0, 0, 0,
	  "PATH", "accounts file: one address:crypt-hash a line" },
	{ "aliases", &type_file, OFF(aliases_file), OFF(aliases_line), NULL, 0, 0, 0,
	  "PATH", "alias file" },
	{ "relay-network", &type_relay_network, OFF(relay_networks), 0, NULL, 0, 10000, KEY_REPEAT,
	  "CIDR", "clients in this network may relay mail to other domains" },
	{ "max-message-size", &type_size, OFF(max_message_size), 0, "35M", KIB, 2 * GIB, 0,
	  "SIZE", "largest message accepted, in bytes or with K, M, G" },
	{ "max-recipients", &type_count, OFF(max_recipients), 0, "100", 1, 100000, 0,
	  "NUMBER", "recipients in one transaction" },
	{ "max-connections", &type_count, OFF(max_connections), 0, "1000", 1, 1000000, 0,
	  "NUMBER", "SMTP connections at once" },
	{ "max-connections-per-ip", &type_count, OFF(max_connections_per_ip), 0, "20", 1, 1000000,
	  0, "NUMBER", "SMTP connections at once from one address (<= max-connections)" },
	{ "max-received-headers", &type_count, OFF(max_received_headers), 0, "100", 1, 1000, 0,
	  "NUMBER", "hop limit: a message with more Received headers is refused (RFC 5321 6.3)" },
	{ "smtp-max-errors", &type_count, OFF(smtp_max_errors), 0, "20", 1, 1000, 0,
	  "NUMBER", "errors in one session before 421 and disconnect" },
	{ "smtp-command-timeout", &type_duration, OFF(smtp_command_timeout), 0, "5m", 1, 3600, 0,
	  "DURATION", "idle time allowed while waiting for an SMTP command" },
	{ "smtp-data-timeout", &type_duration, OFF(smtp_data_timeout), 0, "10m", 1, 3600, 0,
	  "DURATION", "idle time allowed while receiving message data" },
	{ "shutdown-timeout", &type_duration, OFF(shutdown_timeout), 0, "30s", 0, 600, 0,
	  "DURATION", "how long SIGTERM waits for the transactions in flight" },
	{ "workers", &type_workers, OFF(workers), 0, "auto", 1, 30, 0,
	  "auto|NUMBER", "SMTP worker processes; auto: one per two CPUs, at least 1" },
	{ "io-threads", &type_count, OFF(io_threads), 0, "4", 1, 64, 0,
	  "NUMBER", "spool I/O threads per process" },
	{ "recipient-delimiter", &type_delimiter, OFF(recipient_delimiter), 0, "+", 0, 0, 0,
	  "CHARS|none", "plus-addressing: user+tag@domain reaches user@domain (chars of +-=_.)" },
	/* Outbound delivery. */
	{ "dns-server", &type_dns_server, OFF(dns_servers), 0, NULL, 0, 16, KEY_REPEAT,
	  "IP[:PORT]", "DNS server for outbound delivery (default: those of /etc/resolv.conf)" },
	{ "outbound-port", &type_count, OFF(outbound_port), 0, "25", 1, 65535, 0,
	  "PORT", "port of the MX hosts that mail is delivered to" },
	{ "destination-concurrency", &type_count, OFF(destination_concurrency), 0, "20", 1, 1000,
	  0, "NUMBER", "connections at once to one destination (domain or relayhost)" },
	{ "outbound-max-connections", &type_count, OFF(outbound_max_connections), 0, "200", 1,
	  100000, 0, "NUMBER", "outbound SMTP connections at once" },
	{ "outbound-connect-timeout", &type_duration, OFF(outbound_connect_timeout), 0, "30s", 1,
	  600, 0, "DURATION", "time allowed to connect to a remote server" },
	{ "outbound-command-timeout", &type_duration, OFF(outbound_command_timeout), 0, "5m", 1,
	  3600, 0, "DURATION", "time allowed for a remote server's reply (RFC 5321 4.5.3.2)" },
	{ "outbound-data-timeout", &type_duration, OFF(outbound_data_timeout), 0, "10m", 1, 3600,
	  0, "DURATION", "time allowed for the reply after the message data" },
	{ "relayhost", &type_relayhost, OFF(relayhost), 0, NULL, 0, 0, 0,
	  "HOST[:PORT]", "send all outbound mail through this smarthost (port: 587, or 465 with "
	  "relayhost-tls implicit)" },
	{ "relayhost-tls", &type_relayhost_tls, OFF(relayhost_tls), 0, "starttls", 0, 0, 0,
	  "starttls|implicit|none", "TLS toward the relayhost: STARTTLS required, implicit TLS "
	  "(port 465), or none" },
	{ "relayhost-tls-verify", &type_bool, OFF(relayhost_tls_verify), 0, "yes", 0, 0, 0,
	  "yes|no", "require the relayhost's certificate to verify for its name" },
	{ "relayhost-auth", &type_file, OFF(relayhost_auth_file), OFF(relayhost_auth_line), NULL, 0,
	  0, 0, "PATH", "file with 'USER PASSWORD' for AUTH at the relayhost (readable by the "
	  "server only)" },
	{ "outbound-ca-file", &type_path, OFF(outbound_ca_file), 0, NULL, 0, 0, 0,
	  "PATH", "CA certificates that verify remote servers (default: the system's)" },
	{ "retry-schedule", &type_retry_schedule, OFF(retry_schedule), 0,
	  "1m 5m 15m 30m 1h 2h 4h", 0, 0, 0, "DURATION...",
	  "delays between delivery attempts after a temporary failure; the last one repeats" },
	{ "queue-lifetime", &type_duration, OFF(queue_lifetime), 0, "5d", 1, 30 * 86400, 0,
	  "DURATION", "how long a message is retried before it bounces" },
	{ "delay-warning", &type_duration, OFF(delay_warning), 0, "4h", 0, 30 * 86400, 0,
	  "DURATION", "tell the sender a message is delayed after this long (0: never)" },
	{ "syslog", &type_bool, OFF(syslog), 0, "no", 0, 0, 0,
	  "yes|no", "also log to syslog (facility mail)" },
	{ "log-level", &type_log_level, OFF(log_level), 0, "info", 0, 0, 0,
	  "error|warning|info|debug", "least important messages that are logged" },

	/* TLS and authentication */
	{ "tls-cert", &type_path_list, OFF(tls_certs), 0, NULL, 0, 16, KEY_REPEAT,
	  "PATH", "PEM certificate chain; several pairs are chosen by SNI, the first is the default" },
	{ "tls-key", &type_path_list, OFF(tls_keys), 0, NULL, 0, 16, KEY_REPEAT,
	  "PATH", "PEM private key of the tls-cert of the same rank" },
	{ "auth-plaintext-loopback", &type_bool, OFF(auth_plaintext_loopback), 0, "no", 0, 0, 0,
	  "yes|no", "offer AUTH without TLS to loopback clients (127.0.0.0/8, ::1)" },
	{ "received-show-auth", &type_bool, OFF(received_show_auth), 0, "no", 0, 0, 0,
	  "yes|no", "name the authenticated user in the Received header" },
	{ "auth-max-failures", &type_count, OFF(auth_max_failures), 0, "5", 1, 1000, 0,
	  "NUMBER", "failed AUTH attempts from one address (all workers) before it is banned" },
	{ "auth-ban-time", &type_duration, OFF(auth_ban_time), 0, "10m", 1, 86400, 0,
	  "DURATION", "how long failures are remembered, and how long a ban lasts" },
	{ "auth-failure-delay", &type_duration, OFF(auth_failure_delay), 0, "2s", 0, 60, 0,
	  "DURATION", "pause before the 535 reply to a failed AUTH" },

	/* DKIM (RFC 6376) */
	{ "dkim-sign", &type_dkim_sign, OFF(dkim_signs), 0, NULL, 0, 1000, KEY_REPEAT,
	  "DOMAIN SELECTOR KEYFILE", "DKIM-sign mail from DOMAIN and subdomains with the RSA/Ed25519 "
	  "PEM key KEYFILE" },
	/* Sender authentication of inbound mail (not of relay-network or authenticated clients). */
	{ "spf-policy", &type_spf_policy, OFF(spf_policy), 0, "tag", 0, 0, 0,
	  "off|tag|reject-fail", "SPF of inbound mail: add Received-SPF, or also refuse "
	  "\"fail\" at RCPT (550 5.7.23)" },
	{ "dkim-verify", &type_bool, OFF(dkim_verify), 0, "yes", 0, 0, 0,
	  "yes|no", "verify the DKIM signatures of inbound mail (Authentication-Results)" },
	{ "msgauth-timeout", &type_duration, OFF(msgauth_timeout), 0, "20s", 1, 300, 0,
	  "DURATION", "time for the DNS lookups of SPF, DKIM and DMARC (then temperror)" },
	{ "dmarc", &type_bool, OFF(dmarc), 0, "on", 0, 0, 0,
	  "on|off", "check the DMARC policy of the From domain of inbound mail (RFC 7489)" },
	{ "dmarc-reject-policy", &type_dmarc_reject_policy, OFF(dmarc_reject_policy), 0, "reject", 0,
	  0, 0, "reject|quarantine|tag", "p=reject failures: refused (550 5.7.1), quarantined, "
	  "or only noted in Authentication-Results" },
	{ "dmarc-quarantine-header", &type_header_name, OFF(dmarc_quarantine_header), 0,
	  "X-Carteiro-Quarantine", 0, 0, 0, "NAME", "header field added (value 'dmarc') to mail "
	  "whose DMARC policy asks for quarantine" },
	{ "public-suffix-list", &type_path, OFF(public_suffix_list), 0,
	  "/usr/share/publicsuffix/public_suffix_list.dat", 0, 0, 0, "PATH",
	  "the Public Suffix List (Debian package publicsuffix), for DMARC's organizational domains" },

	/* POP3 (listen pop3 / pop3s); logins share the auth-* limits above. */
	{ "pop3-plaintext-auth", &type_pop3_plaintext, OFF(pop3_plaintext_auth), 0, "loopback", 0,
	  0, 0, "loopback|never|always", "POP3 logins without TLS: from loopback clients only, "
	  "never, or always" },
	{ "pop3-idle-timeout", &type_duration, OFF(pop3_idle_timeout), 0, "10m", 1, 86400, 0,
	  "DURATION", "idle time allowed between POP3 commands (RFC 1939: at least 10m)" },
	{ "pop3-max-errors", &type_count, OFF(pop3_max_errors), 0, "20", 1, 1000, 0,
	  "NUMBER", "bad POP3 commands in one session before a disconnect" },

	/* Anti-abuse on the smtp listeners: DNS lists, local lists, greylisting, rate limits.
	 * Clients of relay-network and authenticated users are exempt from all of them. */
	{ "dnsbl", &type_dnsbl, OFF(dnsbl), 0, NULL, 0, 32, KEY_REPEAT, "ZONE [CODES]",
	  "DNS blocklist of clients (554 5.7.1 at RCPT); CODES e.g. 127.0.0.[2..11]" },
	{ "rhsbl", &type_dnsbl, OFF(rhsbl), 0, NULL, 0, 32, KEY_REPEAT, "ZONE [CODES]",
	  "DNS blocklist of the MAIL FROM and HELO domains (554 5.7.1 at RCPT)" },
	{ "dnswl", &type_dnsbl, OFF(dnswl), 0, NULL, 0, 32, KEY_REPEAT, "ZONE [CODES]",
	  "DNS allowlist: listed clients skip DNS blocklists, greylisting and SPF" },
	{ "dnsbl-timeout", &type_duration, OFF(dnsbl_timeout), 0, "5s", 1, 60, 0, "DURATION",
	  "longest wait for the DNS lists' answers; then the check passes" },
	{ "greet-pause", &type_duration, OFF(greet_pause), 0, "0", 0, 30, 0, "DURATION",
	  "hold the smtp greeting; a client that speaks first gets 554 (0: off)" },
	{ "block-networks", &type_file, OFF(block_networks_file), OFF(block_networks_line),
	  NULL, 0, 0, 0, "PATH", "networks (CIDR, one a line) refused with 554 5.7.1 at RCPT" },
	{ "allow-networks", &type_file, OFF(allow_networks_file), OFF(allow_networks_line),
	  NULL, 0, 0, 0, "PATH", "networks that skip block-networks, DNS lists, greylisting, SPF" },
	{ "block-senders", &type_file, OFF(block_senders_file), OFF(block_senders_line),
	  NULL, 0, 0, 0, "PATH", "MAIL FROM refused: user@domain, @domain, domain (and subdomains)" },
	{ "greylist", &type_bool, OFF(greylist), 0, "no", 0, 0, 0, "yes|no",
	  "451 4.7.1 to the first attempt of a new (client /24, sender, recipient)" },
	{ "greylist-delay", &type_duration, OFF(greylist_delay), 0, "5m", 1, 86400, 0,
	  "DURATION", "how long after its first attempt a retry passes" },
	{ "greylist-retry-window", &type_duration, OFF(greylist_retry_window), 0, "1d", 60,
	  30 * 86400, 0, "DURATION", "how long a first attempt is remembered until a retry" },
	{ "greylist-expire", &type_duration, OFF(greylist_expire), 0, "36d", 3600, 365 * 86400,
	  0, "DURATION", "how long a triplet that passed is remembered after its last use" },
	{ "greylist-auto-allow", &type_count, OFF(greylist_auto_allow), 0, "5", 0, 1000000, 0,
	  "NUMBER", "passed triplets after which a client /24 is let in at once (0: never)" },
	{ "greylist-max-entries", &type_count, OFF(greylist_max_entries), 0, "262144",
	  GREYLIST_ENTRIES_MIN, GREYLIST_ENTRIES_MAX, 0, "NUMBER",
	  "triplets kept in spool/greylist.db (32 bytes each)" },
	{ "ratelimit-connections", &type_rate, OFF(ratelimit_connections), 0, "off", 0, 0, 0,
	  "COUNT/DURATION|off", "connections per client address, e.g. 60/1m; beyond: 421 4.7.0" },
	{ "ratelimit-messages", &type_rate, OFF(ratelimit_messages), 0, "off", 0, 0, 0,
	  "COUNT/DURATION|off", "messages (MAIL) per client address, e.g. 200/1h; beyond: 451 4.7.1" },
	{ "ratelimit-user-messages", &type_rate, OFF(ratelimit_user_messages), 0, "off", 0, 0,
	  0, "COUNT/DURATION|off", "messages (MAIL) per authenticated user; beyond: 451 4.7.1" },
	{ "ratelimit-user-recipients", &type_rate, OFF(ratelimit_user_recipients), 0, "off", 0,
	  0, 0, "COUNT/DURATION|off", "recipients (RCPT) per authenticated user; beyond: 451 4.7.1" },
};

/* ---- words and keys ------------------------------------------------------------------------ */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Take the next word of *rest into *word; false at the end or at a comment. */
static bool next_word(struct slice *rest, struct slice *word)
{
	size_t i = 0, start;

	while (i < rest->len && is_blank(rest->ptr[i]))
		i++;
	if (i == rest->len || rest->ptr[i] == '#') {
		rest->ptr += rest->len;
		rest->len = 0;
		return false;
	}
	start = i;
	while (i < rest->len && !is_blank(rest->ptr[i]))
		i++;
	*word = (struct slice){ rest->ptr + start, i - start };
	rest->ptr += i;
	rest->len -= i;
	return true;
}

/* Split the values of a directive into d->words; d->nwords counts them all. */
static void split_values(struct slice rest, struct directive *d)
{
	struct slice w;

	d->nwords = 0;
	while (next_word(&rest, &w)) {
		if (d->nwords < CONFIG_WORDS_MAX)
			d->words[d->nwords] = w;
		d->nwords++;
	}
}

static const struct key *find_key(struct slice name)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (slice_eq(name, slice_from_cstr(keys[i].name)))
			return &keys[i];
	return NULL;
}

static const struct key *find_key_cstr(const char *name)
{
	return find_key(slice_from_cstr(name));
}

/*
 * Optimal string alignment distance (Levenshtein plus adjacent
 * transpositions) between a and b, or limit + 1 when it is larger than limit.
 */
static size_t edit_distance(struct slice a, const char *b, size_t limit)
{
	enum { N = 40 };
	size_t rows[3][N + 1], blen = strlen(b), far = limit + 1;
	size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

	if (blen > N || a.len > blen + limit || blen > a.len + limit)
		return far;
	for (size_t j = 0; j <= blen; j++)
		prev[j] = j < far ? j : far;
	for (size_t i = 1; i <= a.len; i++) {
		/*
		 * A cell with |i - j| > limit is at least that far: only the band
		 * around the diagonal is computed, its edges are marked far, and
		 * values are capped at far.
		 */
		size_t lo = i > limit ? i - limit : 1, hi = i + limit < blen ? i + limit : blen;

		cur[0] = i < far ? i : far;
		cur[lo - 1] = lo > 1 ? far : cur[0];
		size_t row_min = cur[lo - 1];
		for (size_t j = lo; j <= hi; j++) {
			size_t best = prev[j - 1] + (a.ptr[i - 1] == b[j - 1] ? 0 : 1);
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			bool swapped = i > 1 && j > 1 && a.ptr[i - 1] == b[j - 2] &&
				       a.ptr[i - 2] == b[j - 1];
			if (swapped && prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best < far ? best : far;
			row_min = cur[j] < row_min ? cur[j] : row_min;
		}
		if (hi < blen)
			cur[hi + 1] = far;
		/* The smallest value of a row never decreases: stop once all are too far. */
		if (row_min == far)
			return far;
		size_t *t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[blen];
}

/* The known key closest to name, if one is within 2 edits. */
static const struct key *suggest_key(struct slice name)
{
	const struct key *best = NULL;
	size_t best_dist = 3;

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		size_t dist = edit_distance(name, keys[i].name, 2);
		if (dist < best_dist) {
			best = &keys[i];
			best_dist = dist;
		}
	}
	return best;
}

/* Check the number of values, then call the setter; 0 or negative with d->msg set. */
static int apply(struct config *cfg, struct directive *d)
{
	const struct key *k = d->key;

	if (d->nwords < k->type->min_words)
		return fail(d, "missing value for '%s' (expected %s)", k->name, k->syntax);
	if (d->nwords > k->type->max_words)
		return fail(d, "too many values for '%s' (expected %s)", k->name, k->syntax);
	return k->type->set(cfg, d);
}

/* Apply a value given as text (a default): split as a line of the file would be. */
static int apply_text(struct config *cfg, const struct key *k, const char *text, char *msg,
		      size_t msglen)
{
	struct directive d = { .key = k };
	int r;

	split_values(slice_from_cstr(text), &d);
	r = apply(cfg, &d);
	if (r < 0)
		snprintf(msg, msglen, "%s", d.msg);
	return r;
}

/* The system's host name (NUL-terminated), or "" when it cannot be had. */
static const char *system_hostname(char *dst, size_t dstlen)
{
	if (gethostname(dst, dstlen - 1) < 0)
		dst[0] = '\0';
	dst[dstlen - 1] = '\0';
	return dst;
}

/* Give k its default: clear it, then parse the default text, if any. */
static void apply_default(struct config *cfg, const struct key *k)
{
	char msg[CONFIG_MSG_MAX], host[ADDR_DOMAIN_MAX + 2];

	if (k->type->clear)
		k->type->clear(cfg, k);
	/* A host name that is not a valid domain (say "my_box") falls back to the default. */
	if ((k->flags & KEY_SYSTEM_HOSTNAME) &&
	    apply_text(cfg, k, system_hostname(host, sizeof host), msg, sizeof msg) == 0)
		return;
	if (!k->def)
		return;
	int r = apply_text(cfg, k, k->def, msg, sizeof msg);
	if (r == -ENOMEM)
		fatal("config: out of memory");
	if (r < 0)
		panic("config: bad default for '%s': %s", k->name, msg);
}

/* ---- public functions ---------------------------------------------------------------------- */

void config_report_log(void *ctx, const char *file, unsigned line, const char *msg)
{
	(void)ctx;
	if (line)
		log_err("event=config_error file=%s line=%u error=%s", LOG_ESC(file), line,
			LOG_ESC(msg));
	else
		log_err("event=config_error file=%s error=%s", LOG_ESC(file), LOG_ESC(msg));
}

void config_report_stdio(void *ctx, const char *file, unsigned line, const char *msg)
{
	FILE *out = ctx;

	if (line)
		fprintf(out, "%s:%u: %s\n", file, line, msg);
	else
		fprintf(out, "%s: %s\n", file, msg);
}

void config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->source = strdup("<defaults>");
	if (!cfg->source)
		fatal("config: out of memory");
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		apply_default(cfg, &keys[i]);
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (keys[i].type->clear)
			keys[i].type->clear(cfg, &keys[i]);
	free(cfg->source);
	cfg->source = NULL;
}

/* State of one config_parse() call. */
struct parser {
	struct config *cfg;
	const char *name;
	config_report_fn *report;
	void *ctx;
	unsigned errors;
	unsigned seen[ARRAY_LEN(keys)]; /* line of each key's first directive, 0: none yet */
};

static void report(struct parser *p, unsigned line, const char *msg)
{
	if (p->errors < UINT_MAX)
		p->errors++;
	if (p->report)
		p->report(p->ctx, p->name, line, msg);
}

__attribute__((format(printf, 3, 4))) static void reportf(struct parser *p, unsigned line,
							 const char *fmt, ...)
{
	char msg[CONFIG_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	report(p, line, msg);
}

/* One line, line end removed. */
static void parse_line(struct parser *p, unsigned line, struct slice s)
{
	struct directive d = { .line = line };
	struct slice name;

	if (s.len > CONFIG_LINE_MAX) {
		reportf(p, line, "line too long (more than %d bytes)", CONFIG_LINE_MAX);
		return;
	}
	/* Checked before comments are stripped: a NUL hides text from other tools too. */
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			if (c == 0)
				report(p, line, "NUL byte in line");
			else
				reportf(p, line, "control character 0x%02x in line", c);
			return;
		}
	}
	if (!next_word(&s, &name))
		return;
	d.key = find_key(name);
	if (!d.key) {
		const struct key *hint = suggest_key(name);
		if (hint)
			reportf(p, line, "unknown key '%s' (did you mean '%s'?)", Q(name),
				hint->name);
		else
			reportf(p, line, "unknown key '%s'", Q(name));
		return;
	}

	size_t idx = (size_t)(d.key - keys);
	if (p->seen[idx] && !(d.key->flags & KEY_REPEAT)) {
		reportf(p, line, "'%s' already set on line %u", d.key->name, p->seen[idx]);
		return;
	}
	/* The file takes a list over at its first line, even if that line is wrong. */
	if (!p->seen[idx]) {
		p->seen[idx] = line;
		if (d.key->flags & KEY_REPEAT)
			apply_default(p->cfg, d.key);
	}
	split_values(s, &d);
	if (apply(p->cfg, &d) < 0)
		report(p, line, d.msg);
}

/* TLS keys go in pairs; a listener that speaks TLS needs one; submission offers STARTTLS
 * whenever a certificate is configured. */
static void check_tls(struct parser *p)
{
	struct config *cfg = p->cfg;
	unsigned cert_line = p->seen[find_key_cstr("tls-cert") - keys];

	if (cfg->tls_certs.n != cfg->tls_keys.n) {
		unsigned line = cert_line ? cert_line : p->seen[find_key_cstr("tls-key") - keys];
		reportf(p, line, "%zu tls-cert but %zu tls-key: they go in pairs", cfg->tls_certs.n,
			cfg->tls_keys.n);
	}
	for (size_t i = 0; i < cfg->nlistens; i++) {
		struct listen_cfg *l = &cfg->listens[i];
		if (l->kind == LISTEN_SUBMISSION && cfg->tls_certs.n && !(l->flags & LISTEN_IMPLICIT_TLS))
			l->flags |= LISTEN_STARTTLS;
		if (listen_uses_tls(l) && cfg->tls_certs.n == 0)
			reportf(p, l->line, "listen %s %s needs TLS, but no tls-cert is set",
				listen_kind_name(l->kind), l->text);
	}
}

/* What only the whole file can tell. */
static void check_whole(struct parser *p)
{
	const struct config *cfg = p->cfg;

	if (cfg->nlistens == 0)
		report(p, 0, "no 'listen' directive: nothing to serve");
	if (cfg->max_connections_per_ip > cfg->max_connections) {
		unsigned line = p->seen[find_key_cstr("max-connections-per-ip") - keys];
		if (!line)
			line = p->seen[find_key_cstr("max-connections") - keys];
		reportf(p, line, "max-connections-per-ip (%u) is larger than max-connections (%u)",
			cfg->max_connections_per_ip, cfg->max_connections);
	}
	if (cfg->greylist_retry_window <= cfg->greylist_delay) {
		unsigned line = p->seen[find_key_cstr("greylist-retry-window") - keys];
		if (!line)
			line = p->seen[find_key_cstr("greylist-delay") - keys];
		reportf(p, line, "greylist-retry-window (%us) must be longer than greylist-delay "
			"(%us): no retry could pass", cfg->greylist_retry_window, cfg->greylist_delay);
	}
	check_tls(p);
}

unsigned config_parse(struct config *cfg, const char *name, const char *text, size_t len,
		      config_report_fn *report_fn, void *ctx)
{
	struct parser p = { .cfg = cfg, .name = name ? name : "<config>", .report = report_fn,
			    .ctx = ctx };
	unsigned line = 0;
	size_t pos = 0;
	char *source = strdup(p.name);

	if (source) {
		free(cfg->source);
		cfg->source = source;
	} else {
		report(&p, 0, "out of memory");
	}
	while (pos < len) {
		const char *start = text + pos;
		const char *lf = memchr(start, '\n', len - pos);
		size_t n = lf ? (size_t)(lf - start) : len - pos;

		pos += n + (lf ? 1 : 0);
		if (line < UINT_MAX)
			line++;
		if (n > 0 && start[n - 1] == '\r')
			n--;
		parse_line(&p, line, (struct slice){ start, n });
	}
	check_whole(&p);
	return p.errors;
}

unsigned config_load_file(struct config *cfg, const char *path, config_report_fn *report_fn,
			  void *ctx)
{
	struct parser p = { .cfg = cfg, .name = path, .report = report_fn, .ctx = ctx };
	struct buf b;
	unsigned errors;

	int r = file_read_all(path, CONFIG_FILE_MAX, &b);
	if (r == -EFBIG) {
		reportf(&p, 0, "file too large (more than %d bytes)", CONFIG_FILE_MAX);
		return p.errors;
	} else if (r < 0) {
		reportf(&p, 0, "cannot read: %s", strerror(-r));
		return p.errors;
	}
	errors = config_parse(cfg, path, buf_cstr(&b), b.len, report_fn, ctx);
	buf_free(&b);
	return errors;
}

void config_print_keys(FILE *out)
{
	int wname = 0, wsyntax = 0;

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		int n = (int)strlen(keys[i].name), m = (int)strlen(keys[i].syntax);
		wname = n > wname ? n : wname;
		wsyntax = m > wsyntax ? m : wsyntax;
	}
	fprintf(out, "One directive a line, \"key value\"; a word that begins with '#' starts a "
		     "comment.\n\n");
	fprintf(out, "%-*s  %-*s  %s\n", wname, "KEY", wsyntax, "VALUE", "DEFAULT");
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const struct key *k = &keys[i];
		char def[128];

		if (k->flags & KEY_SYSTEM_HOSTNAME)
			snprintf(def, sizeof def, "the host name, else %s", k->def);
		else if (k->flags & KEY_REPEAT)
			snprintf(def, sizeof def, "none; may repeat");
		else
			snprintf(def, sizeof def, "%s", k->def ? k->def : "none");
		/* A long default (a path) takes from the value column's padding: 100 columns. */
		int wrow = 100 - (wname + 2) - 2 - (int)strlen(def);
		wrow = wrow < wsyntax ? wrow : wsyntax;
		fprintf(out, "%-*s  %-*s  %s\n", wname, k->name, wrow, k->syntax, def);
		if (k->type->unit != UNIT_NONE)
			fprintf(out, "    %s; %s\n", k->doc, RANGE(k));
		else if (k->flags & KEY_REPEAT)
			fprintf(out, "    %s; at most %llu\n", k->doc, (unsigned long long)k->max);
		else
			fprintf(out, "    %s\n", k->doc);
	}
}
