/*
 * psl: the Public Suffix List (https://publicsuffix.org/list/), and the
 * organizational domain of DMARC (RFC 7489 3.2).
 *
 * The list is loaded once (at start and on reload, never on the event loop)
 * from the file of Debian's publicsuffix package into a hash table, and is
 * read-only afterwards: lookups are pure and may run on any thread.
 *
 * The matching algorithm is the list's own (publicsuffix.org/list, "Format"):
 * normal rules ("co.uk"), wildcards ("*.ck": any one label), exceptions
 * ("!www.ck": prevails over every other match, and its public suffix is the
 * rule without its leftmost label), and the implicit "*" rule when nothing
 * matches (an unknown TLD is a public suffix). Among the other matches the
 * rule with the most labels prevails. Rules written in Unicode are also
 * entered as A-labels, so "食狮.公司.cn" and "xn--85x722f.xn--55qx5d.cn"
 * give the same answer; names are compared after ASCII lower-casing.
 *
 * ICANN and private sections: both are used, as OpenDMARC does with the same
 * file and as the list's own test vectors assume. A private entry such as
 * "blogspot.com" means that the names under it belong to different owners,
 * which is exactly what relaxed DMARC alignment must not treat as one
 * organization: with the ICANN section alone, alice.blogspot.com and
 * mallory.blogspot.com would be aligned with each other.
 *
 * Security: the file is the administrator's, but it is parsed with limits
 * all the same (file size, line length, label count), and a list without the
 * "===END ICANN DOMAINS===" marker is refused: a truncated or wrong file
 * would otherwise leave only the implicit "*" rule, under which evil.co.uk
 * and bank.co.uk share the organizational domain co.uk.
 */
#ifndef CARTEIRO_POLICY_PSL_H
#define CARTEIRO_POLICY_PSL_H

#include <stdbool.h>
#include <stddef.h>

/* Where Debian's publicsuffix package puts the list (the public-suffix-list default). */
#define PSL_DEFAULT_PATH "/usr/share/publicsuffix/public_suffix_list.dat"

struct psl;

/*
 * Load the list from path, or parse len bytes of text. NULL on error, with a
 * message in err (cannot read, too large, no ICANN section end, out of
 * memory). Malformed rules are skipped and counted (psl_skipped).
 */
struct psl *psl_load(const char *path, char *err, size_t errlen);
struct psl *psl_parse(const char *text, size_t len, char *err, size_t errlen);
void psl_free(struct psl *psl);

/* Rules loaded, and rules skipped as malformed. */
size_t psl_count(const struct psl *psl);
size_t psl_skipped(const struct psl *psl);

/*
 * The public suffix of domain (no trailing dot; ASCII letters in any case;
 * UTF-8 or A-label labels), lower-cased, into out. 0, -EINVAL (empty label,
 * leading or trailing dot, a label over 63 octets, a name over 253, a
 * control character or space), -ENAMETOOLONG (out too small).
 */
int psl_public_suffix(const struct psl *psl, const char *domain, char *out, size_t outlen);

/*
 * The organizational domain of domain (RFC 7489 3.2): its public suffix and
 * one more label, lower-cased, into out. 0; -ENOENT when domain is itself a
 * public suffix ("co.uk": it has no organizational domain); or the errors of
 * psl_public_suffix().
 */
int psl_org_domain(const struct psl *psl, const char *domain, char *out, size_t outlen);

#endif
