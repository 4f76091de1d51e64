/*
 * policy_lists: block-networks, allow-networks, block-senders. See policy_lists.h.
 *
 * A network becomes the interval [first, last] of 16-byte keys (IPv4 as
 * IPv4-mapped IPv6, as netaddr_key() makes them, so an IPv4 network matches
 * IPv4-mapped clients as cidr_match() does); keys compare as big-endian
 * numbers with memcmp. After the file is read the intervals are sorted by
 * their first key and overlapping ones merged, so that they are disjoint and
 * a lookup is a binary search for the last interval starting at or below
 * the client.
 */
#include "policy/policy_lists.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/str.h"
#include "util/strmap.h"

#define MSG_MAX 300
#define ECHO_MAX 80

struct interval {
	uint8_t first[16];
	uint8_t last[16];
};

struct netlist {
	struct interval *iv;
	size_t n;       /* intervals after merging */
	size_t entries; /* lines read */
};

struct senderlist {
	struct strmap *map; /* "user@domain", "@domain" or "domain" -> (void *)1 */
};

/* --- lines ---------------------------------------------------------------- */

struct list_parser {
	const char *name;
	config_report_fn *report;
	void *ctx;
	unsigned line;
	unsigned errors;
};

__attribute__((format(printf, 2, 3))) static void list_error(struct list_parser *p,
							    const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (p->errors < UINT32_MAX)
		p->errors++;
	if (p->report)
		p->report(p->ctx, p->name, p->line, msg);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* A word for a message: printable ASCII, cut. */
static const char *echo(char *dst, size_t dstlen, struct slice w)
{
	str_display(dst, dstlen, w.ptr, w.len > ECHO_MAX ? ECHO_MAX : w.len);
	return dst;
}

#define ECHO(w) echo((char[ECHO_MAX * 4 + 8]){ 0 }, ECHO_MAX * 4 + 8, (w))

/*
 * The entry of one line (without its line end): false for a blank or comment
 * line, or after reporting a bad one.
 */
static bool line_entry(struct list_parser *p, struct slice s, struct slice *entry)
{
	size_t i = 0;

	if (s.len > POLICY_LIST_LINE_MAX) {
		list_error(p, "line longer than %d bytes", POLICY_LIST_LINE_MAX);
		return false;
	}
	for (size_t k = 0; k < s.len; k++) {
		unsigned char c = (unsigned char)s.ptr[k];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			list_error(p, "control character 0x%02x in line", c);
			return false;
		}
	}
	while (i < s.len && is_blank(s.ptr[i]))
		i++;
	if (i == s.len || s.ptr[i] == '#' || s.ptr[i] == ';')
		return false;
	size_t start = i;
	while (i < s.len && !is_blank(s.ptr[i]))
		i++;
	*entry = (struct slice){ s.ptr + start, i - start };
	while (i < s.len && is_blank(s.ptr[i]))
		i++;
	if (i < s.len && s.ptr[i] != '#' && s.ptr[i] != ';') {
		list_error(p, "one entry a line: '%s' follows '%s' (comments start with # or ;)",
			   ECHO(((struct slice){ s.ptr + i, s.len - i })), ECHO(*entry));
		return false;
	}
	return true;
}

typedef int list_entry_fn(struct list_parser *p, struct slice entry, void *list);

/* Feed every entry of text to fn; the number of errors, or -ENOMEM. */
static long parse_lines(struct list_parser *p, const char *text, size_t len, list_entry_fn *fn,
			void *list)
{
	size_t pos = 0, entries = 0;

	while (pos < len) {
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		struct slice entry;

		pos += n + (nl != NULL);
		if (p->line < UINT32_MAX)
			p->line++;
		if (n && s[n - 1] == '\r')
			n--;
		if (!line_entry(p, (struct slice){ s, n }, &entry))
			continue;
		if (++entries > POLICY_LIST_ENTRIES_MAX) {
			list_error(p, "more than %d entries", POLICY_LIST_ENTRIES_MAX);
			break;
		}
		if (fn(p, entry, list) == -ENOMEM)
			return -ENOMEM;
	}
	return p->errors;
}

/* --- networks ------------------------------------------------------------- */

static int interval_cmp(const void *a, const void *b)
{
	return memcmp(((const struct interval *)a)->first, ((const struct interval *)b)->first, 16);
}

static int network_entry(struct list_parser *p, struct slice entry, void *list)
{
	struct netlist *nl = list;
	struct cidr c;
	struct interval iv;
	unsigned prefix;

	if (cidr_parse(entry, &c) < 0) {
		list_error(p, "bad network '%s' (expected 192.0.2.0/24, 2001:db8::/32 or an "
			      "address)", ECHO(entry));
		return -EINVAL;
	}
	memset(iv.first, 0, 16);
	if (c.family == AF_INET) {
		iv.first[10] = iv.first[11] = 0xff;
		memcpy(iv.first + 12, c.addr, 4);
		prefix = c.prefix + 96;
	} else {
		memcpy(iv.first, c.addr, 16);
		prefix = c.prefix;
	}
	/* cidr_parse cleared the host bits of first; last has them all set. */
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = i * 8 >= prefix ? 0 : prefix - i * 8;
		uint8_t host = bits >= 8 ? 0 : (uint8_t)(0xffu >> bits);
		iv.last[i] = iv.first[i] | host;
	}
	if (nl->entries % 1024 == 0) {
		size_t cap, bytes;
		if (!size_add(nl->entries, 1024, &cap) || !size_mul(cap, sizeof iv, &bytes))
			return -ENOMEM;
		struct interval *grown = realloc(nl->iv, bytes);
		if (!grown)
			return -ENOMEM;
		nl->iv = grown;
	}
	nl->iv[nl->entries++] = iv;
	return 0;
}

/* Sort by first key and merge overlapping or adjacent intervals. */
static void netlist_merge(struct netlist *nl)
{
	size_t out = 0;

	if (nl->entries == 0)
		return;
	qsort(nl->iv, nl->entries, sizeof *nl->iv, interval_cmp);
	for (size_t i = 1; i < nl->entries; i++) {
		struct interval *cur = &nl->iv[out];
		if (memcmp(nl->iv[i].first, cur->last, 16) <= 0) {
			if (memcmp(nl->iv[i].last, cur->last, 16) > 0)
				memcpy(cur->last, nl->iv[i].last, 16);
		} else {
			nl->iv[++out] = nl->iv[i];
		}
	}
	nl->n = out + 1;
}

void netlist_free(struct netlist *nl)
{
	if (!nl)
		return;
	free(nl->iv);
	free(nl);
}

int netlist_parse(const char *name, const char *text, size_t len, config_report_fn *report,
		  void *ctx, struct netlist **out)
{
	struct list_parser p = { name, report, ctx, 0, 0 };
	struct netlist *nl = calloc(1, sizeof *nl);

	if (!nl)
		return -ENOMEM;
	long r = parse_lines(&p, text, len, network_entry, nl);
	if (r != 0) {
		netlist_free(nl);
		return r < 0 ? (int)r : -EINVAL;
	}
	netlist_merge(nl);
	*out = nl;
	return 0;
}

bool netlist_match(const struct netlist *nl, const struct sockaddr *sa)
{
	uint8_t key[16];
	size_t lo = 0, hi;

	if (!nl || nl->n == 0 || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return false;
	netaddr_key(sa, key);
	/* The last interval whose first key is <= key: in [lo, hi). */
	hi = nl->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(nl->iv[mid].first, key, 16) <= 0)
			lo = mid;
		else
			hi = mid;
	}
	return memcmp(nl->iv[lo].first, key, 16) <= 0 && memcmp(key, nl->iv[lo].last, 16) <= 0;
}

size_t netlist_count(const struct netlist *nl)
{
	return nl ? nl->entries : 0;
}

/* --- senders -------------------------------------------------------------- */

static int sender_entry(struct list_parser *p, struct slice entry, void *list)
{
	struct senderlist *sl = list;
	char key[ADDR_TEXT_MAX + 2];
	struct addr a;

	if (entry.len && entry.ptr[0] == '@') {
		struct slice dom = { entry.ptr + 1, entry.len - 1 };
		if (!addr_domain_valid(dom, true) || !slice_copy(key + 1, sizeof key - 1, dom)) {
			list_error(p, "bad domain in '%s'", ECHO(entry));
			return -EINVAL;
		}
		key[0] = '@';
	} else if (memchr(entry.ptr, '@', entry.len)) {
		int r = addr_parse_mailbox(entry, ADDR_UTF8, &a);
		if (r < 0 || a.literal) {
			list_error(p, "bad address '%s': %s", ECHO(entry),
				   r < 0 ? addr_strerror(r) : "an address literal is not a domain");
			return -EINVAL;
		}
		str_copy(key, sizeof key, a.text);
	} else {
		if (!addr_domain_valid(entry, true) || !slice_copy(key, sizeof key, entry)) {
			list_error(p, "bad entry '%s' (expected user@domain, @domain or domain)",
				   ECHO(entry));
			return -EINVAL;
		}
	}
	str_lower(key);
	int r = strmap_put(sl->map, key, (void *)1);
	return r == -EEXIST ? 0 : r; /* a repeated entry is harmless in a shared list */
}

void senderlist_free(struct senderlist *sl)
{
	if (!sl)
		return;
	strmap_free(sl->map, NULL);
	free(sl);
}

int senderlist_parse(const char *name, const char *text, size_t len, config_report_fn *report,
		     void *ctx, struct senderlist **out)
{
	struct list_parser p = { name, report, ctx, 0, 0 };
	struct senderlist *sl = calloc(1, sizeof *sl);

	if (!sl || !(sl->map = strmap_new())) {
		free(sl);
		return -ENOMEM;
	}
	long r = parse_lines(&p, text, len, sender_entry, sl);
	if (r != 0) {
		senderlist_free(sl);
		return r < 0 ? (int)r : -EINVAL;
	}
	*out = sl;
	return 0;
}

bool senderlist_match(const struct senderlist *sl, const struct addr *sender)
{
	char key[ADDR_TEXT_MAX + 2];

	if (!sl || sender->null || sender->literal)
		return false;
	str_copy(key, sizeof key, sender->text);
	str_lower(key);
	if (strmap_has(sl->map, key))
		return true;
	key[0] = '@';
	str_copy(key + 1, sizeof key - 1, sender->domain);
	str_lower(key);
	if (strmap_has(sl->map, key))
		return true;
	/* The domain, then each parent: "a.b.example.org", "b.example.org", "example.org", "org". */
	for (const char *d = key + 1; d; d = strchr(d, '.') ? strchr(d, '.') + 1 : NULL)
		if (strmap_has(sl->map, d))
			return true;
	return false;
}

size_t senderlist_count(const struct senderlist *sl)
{
	return sl ? strmap_count(sl->map) : 0;
}

/* --- the three lists ------------------------------------------------------ */

typedef int list_parse_fn(const char *name, const char *text, size_t len,
			  config_report_fn *report, void *ctx, void **out);

/* Read path and parse it with fn; 0 (and *out) or a negative error, reported. */
static int load_file(const char *path, list_parse_fn *fn, config_report_fn *report, void *ctx,
		     void **out)
{
	struct buf text;
	char msg[MSG_MAX];
	int r = file_read_all(path, POLICY_LIST_FILE_MAX, &text);

	if (r < 0) {
		if (r == -EFBIG)
			snprintf(msg, sizeof msg, "cannot read: larger than %zu MiB",
				 POLICY_LIST_FILE_MAX >> 20);
		else
			snprintf(msg, sizeof msg, "cannot read: %s", strerror(-r));
		if (report)
			report(ctx, path, 0, msg);
		return r;
	}
	r = fn(path, buf_cstr(&text), text.len, report, ctx, out);
	buf_free(&text);
	if (r == -ENOMEM && report)
		report(ctx, path, 0, "out of memory");
	return r;
}

static int parse_networks(const char *name, const char *text, size_t len,
			  config_report_fn *report, void *ctx, void **out)
{
	struct netlist *nl = NULL;
	int r = netlist_parse(name, text, len, report, ctx, &nl);
	*out = nl;
	return r;
}

static int parse_senders(const char *name, const char *text, size_t len,
			 config_report_fn *report, void *ctx, void **out)
{
	struct senderlist *sl = NULL;
	int r = senderlist_parse(name, text, len, report, ctx, &sl);
	*out = sl;
	return r;
}

void policy_lists_free(struct policy_lists *lists)
{
	if (!lists)
		return;
	netlist_free(lists->block_networks);
	netlist_free(lists->allow_networks);
	senderlist_free(lists->block_senders);
	free(lists);
}

int policy_lists_load(const struct config *cfg, config_report_fn *report, void *ctx,
		      struct policy_lists **out)
{
	struct policy_lists *l = calloc(1, sizeof *l);
	void *p[3] = { NULL, NULL, NULL };
	int r[3] = { 0, 0, 0 };

	if (!l)
		return -ENOMEM;
	/* Every file is read, so that every error of each is reported at once. */
	if (cfg->block_networks_file)
		r[0] = load_file(cfg->block_networks_file, parse_networks, report, ctx, &p[0]);
	if (cfg->allow_networks_file)
		r[1] = load_file(cfg->allow_networks_file, parse_networks, report, ctx, &p[1]);
	if (cfg->block_senders_file)
		r[2] = load_file(cfg->block_senders_file, parse_senders, report, ctx, &p[2]);
	l->block_networks = p[0];
	l->allow_networks = p[1];
	l->block_senders = p[2];
	for (int i = 0; i < 3; i++) {
		if (r[i] < 0) {
			policy_lists_free(l);
			return r[i];
		}
	}
	*out = l;
	return 0;
}

bool policy_lists_reload(const struct config *cfg, struct policy_lists **lists)
{
	struct policy_lists *l;

	if (policy_lists_load(cfg, config_report_log, NULL, &l) < 0) {
		log_err("event=reload what=policy_lists result=failed keeping=previous");
		return false;
	}
	policy_lists_free(*lists);
	*lists = l;
	if (cfg->block_networks_file || cfg->allow_networks_file || cfg->block_senders_file)
		log_info("event=reload what=policy_lists result=ok block_networks=%zu "
			 "allow_networks=%zu block_senders=%zu",
			 netlist_count(l->block_networks), netlist_count(l->allow_networks),
			 senderlist_count(l->block_senders));
	return true;
}

bool policy_lists_client_blocked(const struct policy_lists *lists, const struct sockaddr *sa)
{
	return lists && netlist_match(lists->block_networks, sa);
}

bool policy_lists_client_allowed(const struct policy_lists *lists, const struct sockaddr *sa)
{
	return lists && netlist_match(lists->allow_networks, sa);
}

bool policy_lists_sender_blocked(const struct policy_lists *lists, const struct addr *sender)
{
	return lists && senderlist_match(lists->block_senders, sender);
}
