/*
 * punycode: the ASCII form of internationalized domain names (RFC 3492
 * Punycode, RFC 5890 A-labels "xn--...").
 *
 * Contract: the input is UTF-8 and is checked for well-formedness; the output
 * is lower-case ASCII, NUL-terminated, and never longer than the caller's
 * buffer. Only the encoding is done: no IDNA2008 mapping, case folding of
 * non-ASCII letters or Unicode normalization (that needs Unicode tables
 * carteiro does not carry). Text already in NFC and lower case, which is what
 * registries accept and what the Public Suffix List holds, converts exactly;
 * anything else yields an A-label that no registry issued, so lookups of it
 * simply find nothing.
 *
 * Security: every length is bounded (a label of at most 63 octets in its
 * ASCII form, RFC 1035 2.3.4), and the RFC 3492 6.4 overflow checks are done
 * on 32-bit integers, so no input can make the arithmetic wrap.
 */
#ifndef CARTEIRO_UTIL_PUNYCODE_H
#define CARTEIRO_UTIL_PUNYCODE_H

#include <stddef.h>

#include "util/buf.h"

/* Longest label in ASCII form (RFC 1035 2.3.4). */
#define PUNYCODE_LABEL_MAX 63

/*
 * Encode one label (UTF-8, no '.') as Punycode, without the "xn--" prefix:
 * "bücher" -> "bcher-kva". Basic code points are copied as they are (not
 * lower-cased). 0, -EINVAL (empty, or not UTF-8), -ENAMETOOLONG (the result
 * passes PUNYCODE_LABEL_MAX or does not fit in out).
 */
int punycode_encode(struct slice label, char *out, size_t outlen);

/*
 * The ASCII form of a domain name: ASCII labels lower-cased, every label with
 * a non-ASCII byte replaced by "xn--" and its Punycode. Empty labels (leading,
 * trailing or double dots), control characters (NUL included) and malformed
 * UTF-8 are -EINVAL; -ENAMETOOLONG
 * when a label or the whole name does not fit (in out, or in 253 octets).
 */
int punycode_domain_to_ascii(struct slice domain, char *out, size_t outlen);

#endif
