/*
 * psl: Public Suffix List loading and matching. See psl.h for the contract.
 *
 * Representation: one strmap whose keys say what kind of rule they are, so
 * that a lookup is a handful of probes per label of the name:
 *   "co.uk"    a normal rule
 *   "!www.ck"  an exception rule
 *   "*.ck"     a wildcard rule (the list has them only as the leftmost label)
 * Lookups refuse names holding '!' or '*', so a name can never be taken for
 * an exception or a wildcard key. Values are unused (a non-NULL marker).
 *
 * Matching walks the suffixes of the name from the TLD up, noting the longest
 * normal or wildcard match and the longest exception; the prevailing rule is
 * the exception if any, else the longest match, else the implicit "*".
 */
#include "policy/psl.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/fileio.h"
#include "util/punycode.h"
#include "util/str.h"
#include "util/strmap.h"

#define PSL_FILE_MAX (8 * 1024 * 1024) /* the 2023 list is 246 KB */
#define PSL_LINE_MAX 512               /* a longer line is not a rule */
#define PSL_NAME_MAX 253               /* text form, no trailing dot */
#define PSL_LABELS_MAX 127             /* 253 octets hold at most 127 labels */

struct psl {
	struct strmap *rules;
	size_t count;   /* rules as written in the file */
	size_t skipped; /* malformed lines */
};

static void *const psl_marker = (void *)(uintptr_t)1;

/* ---- loading --------------------------------------------------------------------------------- */

/*
 * Insert one rule in its text form (kind prefix included) and, for a rule with
 * Unicode labels, its A-label form too. 0, -EINVAL (not a rule), -ENOMEM.
 */
static int psl_insert(struct psl *psl, const char *prefix, struct slice name)
{
	char key[2 + 4 * PSL_NAME_MAX + 1], ascii[PSL_NAME_MAX + 1];
	size_t plen = strlen(prefix);
	int r;

	if (name.len == 0 || name.len > 4 * PSL_NAME_MAX)
		return -EINVAL;
	/* The A-label form also checks the labels (none empty, none too long, UTF-8). */
	r = punycode_domain_to_ascii(name, ascii, sizeof ascii);
	if (r < 0)
		return -EINVAL;
	for (size_t i = 0; i < name.len; i++) {
		unsigned char c = (unsigned char)name.ptr[i];
		if (c <= 0x20 || c == 0x7f || c == '!' || c == '*')
			return -EINVAL;
	}
	memcpy(key, prefix, plen);
	for (size_t i = 0; i < name.len; i++)
		key[plen + i] = ascii_tolower(name.ptr[i]);
	key[plen + name.len] = '\0';
	r = strmap_put(psl->rules, key, psl_marker);
	if (r < 0 && r != -EEXIST)
		return r;
	if (strcmp(key + plen, ascii) != 0) {
		memcpy(key + plen, ascii, strlen(ascii) + 1);
		r = strmap_put(psl->rules, key, psl_marker);
		if (r < 0 && r != -EEXIST)
			return r;
	}
	return 0;
}

/* One rule (the first word of a line): 0, -EINVAL (skipped), -ENOMEM. */
static int psl_add_rule(struct psl *psl, struct slice rule)
{
	if (rule.len > 0 && rule.ptr[0] == '!') {
		struct slice rest = { rule.ptr + 1, rule.len - 1 };
		/* An exception's public suffix is the rule minus one label: it needs two. */
		if (!memchr(rest.ptr, '.', rest.len))
			return -EINVAL;
		return psl_insert(psl, "!", rest);
	}
	if (rule.len >= 2 && rule.ptr[0] == '*' && rule.ptr[1] == '.')
		return psl_insert(psl, "*.", (struct slice){ rule.ptr + 2, rule.len - 2 });
	return psl_insert(psl, "", rule);
}

struct psl *psl_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct psl *psl = calloc(1, sizeof *psl);
	bool icann_end = false;
	size_t pos = 0;

	if (!psl || !(psl->rules = strmap_new())) {
		snprintf(err, errlen, "out of memory");
		free(psl);
		return NULL;
	}
	while (pos < len) {
		const char *start = text + pos;
		const char *lf = memchr(start, '\n', len - pos);
		size_t n = lf ? (size_t)(lf - start) : len - pos;
		struct slice line = { start, n }, rule;

		pos += n + (lf ? 1 : 0);
		if (n > 0 && start[n - 1] == '\r')
			line.len--;
		line = slice_trim(line);
		if (line.len == 0)
			continue;
		if (line.len >= 2 && line.ptr[0] == '/' && line.ptr[1] == '/') {
			if (line.len < PSL_LINE_MAX &&
			    memmem(line.ptr, line.len, "===END ICANN DOMAINS===", 23))
				icann_end = true;
			continue;
		}
		if (line.len > PSL_LINE_MAX) {
			psl->skipped++;
			continue;
		}
		/* "Each line is only read up to the first whitespace." */
		rule = line;
		for (size_t i = 0; i < line.len; i++) {
			if (line.ptr[i] == ' ' || line.ptr[i] == '\t') {
				rule.len = i;
				break;
			}
		}
		int r = psl_add_rule(psl, rule);
		if (r == -ENOMEM) {
			snprintf(err, errlen, "out of memory");
			psl_free(psl);
			return NULL;
		}
		if (r < 0)
			psl->skipped++;
		else
			psl->count++;
	}
	if (!icann_end || psl->count == 0) {
		snprintf(err, errlen, "not a public suffix list: %s",
			 psl->count == 0 ? "no rules" : "no \"===END ICANN DOMAINS===\" line "
							"(truncated?)");
		psl_free(psl);
		return NULL;
	}
	return psl;
}

struct psl *psl_load(const char *path, char *err, size_t errlen)
{
	struct buf b;
	struct psl *psl;
	char why[160];
	int r = file_read_all(path, PSL_FILE_MAX, &b);

	if (r < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 r == -EFBIG ? "file too large" : strerror(-r));
		return NULL;
	}
	psl = psl_parse(b.data ? b.data : "", b.len, why, sizeof why);
	buf_free(&b);
	if (!psl)
		snprintf(err, errlen, "%s: %s", path, why);
	return psl;
}

void psl_free(struct psl *psl)
{
	if (!psl)
		return;
	strmap_free(psl->rules, NULL);
	free(psl);
}

size_t psl_count(const struct psl *psl)
{
	return psl->count;
}

size_t psl_skipped(const struct psl *psl)
{
	return psl->skipped;
}

/* ---- matching -------------------------------------------------------------------------------- */

/* A name split into labels: the lower-cased text and where each label starts. */
struct psl_name {
	char text[PSL_NAME_MAX + 1];
	size_t start[PSL_LABELS_MAX + 1];
	size_t n;
};

static int psl_split(const char *domain, struct psl_name *nm)
{
	size_t len = domain ? strlen(domain) : 0, label = 0;

	if (len == 0 || len > PSL_NAME_MAX)
		return -EINVAL;
	nm->n = 0;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)domain[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > PUNYCODE_LABEL_MAX || nm->n == PSL_LABELS_MAX)
				return -EINVAL;
			nm->start[nm->n++] = i - label;
			label = 0;
			nm->text[i] = (char)c;
			continue;
		}
		if (c <= 0x20 || c == 0x7f || c == '!' || c == '*')
			return -EINVAL;
		nm->text[i] = ascii_tolower((char)c);
		label++;
	}
	return 0;
}

/* The suffix of nm made of its last k labels (1 <= k <= n). */
static const char *psl_suffix(const struct psl_name *nm, size_t k)
{
	return nm->text + nm->start[nm->n - k];
}

static bool psl_has(const struct psl *psl, const char *prefix, const char *suffix)
{
	char key[2 + PSL_NAME_MAX + 1];

	snprintf(key, sizeof key, "%s%s", prefix, suffix);
	return strmap_has(psl->rules, key);
}

/* Labels in the public suffix of nm (1 ... n). */
static size_t psl_suffix_labels(const struct psl *psl, const struct psl_name *nm)
{
	size_t best = 1, exception = 0; /* the implicit "*" rule */

	for (size_t k = 1; k <= nm->n; k++) {
		const char *s = psl_suffix(nm, k);
		if (psl_has(psl, "", s))
			best = k;
		if (k >= 2 && psl_has(psl, "*.", psl_suffix(nm, k - 1)))
			best = k;
		if (k >= 2 && psl_has(psl, "!", s))
			exception = k;
	}
	return exception ? exception - 1 : best;
}

static int psl_copy(const char *s, char *out, size_t outlen)
{
	if (!str_copy(out, outlen, s)) {
		if (outlen)
			out[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

int psl_public_suffix(const struct psl *psl, const char *domain, char *out, size_t outlen)
{
	struct psl_name nm;

	if (outlen)
		out[0] = '\0';
	if (psl_split(domain, &nm) < 0)
		return -EINVAL;
	return psl_copy(psl_suffix(&nm, psl_suffix_labels(psl, &nm)), out, outlen);
}

int psl_org_domain(const struct psl *psl, const char *domain, char *out, size_t outlen)
{
	struct psl_name nm;
	size_t k;

	if (outlen)
		out[0] = '\0';
	if (psl_split(domain, &nm) < 0)
		return -EINVAL;
	k = psl_suffix_labels(psl, &nm);
	if (k >= nm.n)
		return -ENOENT;
	return psl_copy(psl_suffix(&nm, k + 1), out, outlen);
}
