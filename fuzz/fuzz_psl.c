/*
 * fuzz_psl: libFuzzer target for policy/psl.c.
 *
 * The first byte chooses what the rest is:
 *   even: a domain name (untrusted: a From, MAIL FROM, HELO or DKIM d=
 *         domain) looked up in Debian's list, loaded once (a small built-in
 *         list when the file is missing);
 *   odd:  a list file (the administrator's, still parsed with limits), whose
 *         rules are then asked about a few fixed names and about its own
 *         lines.
 * Invariants of every lookup: the public suffix is a label-aligned suffix of
 * the lower-cased name; the organizational domain is that suffix and exactly
 * one more label, it is its own organizational domain, and its public suffix
 * is the same; -ENOENT exactly when the name is its own public suffix; an
 * error leaves "" in the output. A violation abort()s.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/psl.h"
#include "util/str.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char builtin_list[] = "// ===BEGIN ICANN DOMAINS===\ncom\nuk\nco.uk\n*.ck\n!www.ck\n"
				   "jp\n*.kobe.jp\n!city.kobe.jp\n\xe5\x85\xac\xe5\x8f\xb8.cn\n"
				   "// ===END ICANN DOMAINS===\nblogspot.com\n";

static struct psl *debian_list(void)
{
	static struct psl *psl;
	char err[256];

	if (!psl)
		psl = psl_load(PSL_DEFAULT_PATH, err, sizeof err);
	if (!psl)
		psl = psl_parse(builtin_list, sizeof builtin_list - 1, err, sizeof err);
	ASSERT(psl != NULL);
	return psl;
}

/* Does s end with suffix at a label boundary? */
static bool label_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return m > 0 && m <= n && strcmp(s + n - m, suffix) == 0 && (m == n || s[n - m - 1] == '.');
}

static void check_lookup(const struct psl *psl, const char *name)
{
	char ps[300], org[300], again[300], lower[300];
	int rs = psl_public_suffix(psl, name, ps, sizeof ps);
	int ro = psl_org_domain(psl, name, org, sizeof org);

	ASSERT(rs == 0 || rs == -EINVAL);
	ASSERT(ro == 0 || ro == -EINVAL || ro == -ENOENT);
	ASSERT((rs == -EINVAL) == (ro == -EINVAL));
	if (rs < 0) {
		ASSERT(ps[0] == '\0' && org[0] == '\0');
		return;
	}
	ASSERT(strlen(name) < sizeof lower);
	memcpy(lower, name, strlen(name) + 1);
	str_lower(lower);
	ASSERT(label_suffix(lower, ps));
	if (ro == -ENOENT) {
		ASSERT(org[0] == '\0' && strcmp(ps, lower) == 0);
		return;
	}
	ASSERT(strcmp(ps, lower) != 0);
	ASSERT(label_suffix(lower, org) && label_suffix(org, ps));
	/* Exactly one label more than the public suffix. */
	size_t extra = strlen(org) - strlen(ps) - 1;
	ASSERT(memchr(org, '.', extra) == NULL);
	ASSERT(psl_org_domain(psl, org, again, sizeof again) == 0 && strcmp(again, org) == 0);
	ASSERT(psl_public_suffix(psl, org, again, sizeof again) == 0 && strcmp(again, ps) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "www.example.co.uk", "a.b.test.ck", "www.ck",
					     "x.city.kobe.jp", "com", "a.b.c.d.e.f", "example" };
	char err[256];

	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0) {
		char name[512];
		size_t n = size - 1 < sizeof name - 1 ? size - 1 : sizeof name - 1;
		memcpy(name, data + 1, n);
		name[n] = '\0';
		check_lookup(debian_list(), name);
		return 0;
	}

	/* A copy of exactly the list's bytes, so that ASan catches any read past the end. */
	char *text = malloc(size - 1 ? size - 1 : 1);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	struct psl *psl = psl_parse(text, size - 1, err, sizeof err);
	if (psl) {
		ASSERT(psl_count(psl) > 0);
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			check_lookup(psl, names[i]);
		/* Each line of the list, as a name. */
		for (size_t pos = 0; pos < size - 1;) {
			const char *lf = memchr(text + pos, '\n', size - 1 - pos);
			size_t n = lf ? (size_t)(lf - (text + pos)) : size - 1 - pos;
			char name[300];
			if (n < sizeof name) {
				memcpy(name, text + pos, n);
				name[n] = '\0';
				check_lookup(psl, name);
			}
			pos += n + 1;
		}
		psl_free(psl);
	} else {
		ASSERT(err[0] != '\0');
	}
	free(text);
	return 0;
}
