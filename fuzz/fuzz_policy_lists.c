/*
 * fuzz_policy_lists: the parsers of the local list files (block-networks,
 * allow-networks, block-senders) in src/policy/policy_lists.c.
 *
 * The first byte chooses the parser (even: networks, odd: senders); the rest
 * is the file. Checks, beyond ASan and UBSan: the result is 0 exactly when
 * nothing was reported, -EINVAL otherwise (memory never runs out here); every
 * report has a message and a line within the input. When a networks file is
 * accepted, every entry line (its first word, comments skipped) is a network
 * for cidr_parse(), and for addresses derived from each network (its first
 * and last address and their neighbours) and from the input's bytes,
 * netlist_match() agrees with a linear cidr_match() over all the entries:
 * the sorting and merging of intervals lose nothing and add nothing. When a
 * senders file is accepted, every entry matches the sender it names.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "mail/addr.h"
#include "policy/policy_lists.h"
#include "util/netaddr.h"
#include "util/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

#define ENTRIES_MAX 512

struct reports {
	unsigned n;
	unsigned max_line;
};

static void on_report(void *ctx, const char *file, unsigned line, const char *msg)
{
	struct reports *r = ctx;
	CHECK(msg && msg[0] != '\0' && strcmp(file, "fuzz") == 0);
	CHECK(line >= 1 && line <= r->max_line);
	r->n++;
}

/* The entries of an accepted file: each line's first word, unless a comment. */
static size_t entries(const char *text, size_t len, struct slice *out)
{
	size_t n = 0, pos = 0;
	while (pos < len && n < ENTRIES_MAX) {
		const char *s = text + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - s) : len - pos;
		pos += l + (nl != NULL);
		size_t i = 0;
		while (i < l && (s[i] == ' ' || s[i] == '\t'))
			i++;
		size_t start = i;
		while (i < l && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			i++;
		if (i > start && s[start] != '#' && s[start] != ';')
			out[n++] = (struct slice){ s + start, i - start };
	}
	return n;
}

static void sockaddr_of(const uint8_t key[16], struct sockaddr_in6 *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sin6_family = AF_INET6;
	memcpy(&sa->sin6_addr, key, 16);
}

static void check_address(const struct netlist *nl, const struct cidr *c, size_t n,
			  const uint8_t key[16])
{
	struct sockaddr_in6 sa;
	bool model = false;
	sockaddr_of(key, &sa);
	for (size_t i = 0; i < n && !model; i++)
		model = cidr_match(&c[i], (struct sockaddr *)&sa);
	CHECK(netlist_match(nl, (struct sockaddr *)&sa) == model);
}

/* key +- 1 as a 128-bit number. */
static void step(uint8_t key[16], int delta)
{
	for (int i = 15; i >= 0; i--) {
		key[i] = (uint8_t)(key[i] + delta);
		if ((delta > 0 && key[i] != 0) || (delta < 0 && key[i] != 0xff))
			break;
	}
}

static void check_networks(const struct netlist *nl, const char *text, size_t len)
{
	static struct slice e[ENTRIES_MAX];
	static struct cidr c[ENTRIES_MAX];
	size_t n = entries(text, len, e);

	for (size_t i = 0; i < n; i++)
		CHECK(cidr_parse(e[i], &c[i]) == 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t lo[16] = { 0 }, hi[16];
		unsigned prefix = c[i].prefix;
		if (c[i].family == AF_INET) {
			lo[10] = lo[11] = 0xff;
			memcpy(lo + 12, c[i].addr, 4);
			prefix += 96;
		} else {
			memcpy(lo, c[i].addr, 16);
		}
		for (unsigned b = 0; b < 16; b++) {
			unsigned bits = b * 8 >= prefix ? 0 : prefix - b * 8;
			hi[b] = lo[b] | (bits >= 8 ? 0 : (uint8_t)(0xffu >> bits));
		}
		check_address(nl, c, n, lo);
		check_address(nl, c, n, hi);
		step(lo, -1);
		step(hi, +1);
		check_address(nl, c, n, lo);
		check_address(nl, c, n, hi);
	}
	for (size_t off = 0; off + 16 <= len && off < 16 * 32; off += 16)
		check_address(nl, c, n, (const uint8_t *)text + off);
	CHECK(netlist_count(nl) == n || n == ENTRIES_MAX);
}

static void check_senders(const struct senderlist *sl, const char *text, size_t len)
{
	static struct slice e[ENTRIES_MAX];
	size_t n = entries(text, len, e);
	char path[ADDR_PATH_MAX + 16];
	struct addr a;
	size_t used;

	for (size_t i = 0; i < n; i++) {
		struct slice w = e[i];
		int r;
		if (w.ptr[0] == '@')
			r = snprintf(path, sizeof path, "<x%.*s>", (int)w.len, w.ptr);
		else if (memchr(w.ptr, '@', w.len))
			r = snprintf(path, sizeof path, "<%.*s>", (int)w.len, w.ptr);
		else
			r = snprintf(path, sizeof path, "<x@%.*s>", (int)w.len, w.ptr);
		if (r < 0 || (size_t)r >= sizeof path ||
		    addr_parse_path(slice_from_cstr(path), ADDR_UTF8, &a, &used) < 0 ||
		    used != (size_t)r)
			continue; /* an entry too long to be a whole address */
		CHECK(senderlist_match(sl, &a));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool networks = (data[0] & 1) == 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	struct reports rep = { 0, 1 };
	for (size_t i = 0; i < len; i++)
		rep.max_line += text[i] == '\n';

	if (networks) {
		struct netlist *nl = NULL;
		int r = netlist_parse("fuzz", text, len, on_report, &rep, &nl);
		CHECK(r == 0 || r == -EINVAL);
		CHECK((r == 0) == (rep.n == 0) && (r == 0) == (nl != NULL));
		if (nl)
			check_networks(nl, text, len);
		netlist_free(nl);
	} else {
		struct senderlist *sl = NULL;
		int r = senderlist_parse("fuzz", text, len, on_report, &rep, &sl);
		CHECK(r == 0 || r == -EINVAL);
		CHECK((r == 0) == (rep.n == 0) && (r == 0) == (sl != NULL));
		if (sl)
			check_senders(sl, text, len);
		senderlist_free(sl);
	}
	return 0;
}
