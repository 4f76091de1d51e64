/*
 * str: locale-independent ASCII helpers and checked number parsing.
 *
 * The <ctype.h> functions depend on the locale and are undefined for negative
 * chars; network input is parsed with these instead.
 */
#ifndef CARTEIRO_UTIL_STR_H
#define CARTEIRO_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

static inline bool ascii_isdigit(int c) { return c >= '0' && c <= '9'; }
static inline bool ascii_isalpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static inline bool ascii_isalnum(int c) { return ascii_isalpha(c) || ascii_isdigit(c); }
static inline bool ascii_isxdigit(int c)
{
	return ascii_isdigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
/* Printable ASCII, SP excluded. */
static inline bool ascii_isgraph(int c) { return c > 32 && c < 127; }
static inline char ascii_tolower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}
static inline char ascii_toupper(char c)
{
	return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}
static inline int ascii_xdigit_value(int c)
{
	if (ascii_isdigit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Lower-case a NUL-terminated string in place (ASCII only). */
void str_lower(char *s);
/* Copy with truncation and NUL; returns false when truncated. */
bool str_copy(char *dst, size_t dstlen, const char *src);
/* snprintf that may cut on purpose (texts for logs and replies): false when it did. */
bool str_format(char *dst, size_t dstlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Case-insensitive ASCII comparison of C strings (like strcasecmp, no locale). */
int str_casecmp(const char *a, const char *b);

/*
 * Parse a whole slice as a decimal unsigned integer no larger than max.
 * No sign, no spaces, no leading '+'; at least one digit. 0 or -EINVAL/-ERANGE.
 */
int parse_u64(struct slice s, uint64_t max, uint64_t *out);
/* Byte sizes such as 4096, 512K, 35M, 1G (binary multiples). */
int parse_size(struct slice s, uint64_t *out);
/* Durations such as 30, 30s, 5m, 2h, 1d (seconds). */
int parse_duration(struct slice s, uint64_t *out);

/* Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
/*
 * Text for a terminal (`carteiro queue`): src as is, except control bytes (but
 * tab) and, unless src is valid UTF-8, bytes above 0x7e, which become \xNN.
 * Cut (with "...") to fit dst. Returns dst.
 */
const char *str_display(char *dst, size_t dstlen, const char *src, size_t len);
bool utf8_valid(const char *p, size_t n);
/*
 * Decode the well-formed UTF-8 sequence at the start of p[0..n) into *cp:
 * its length in bytes (1-4), or 0 when p does not start with one (or n is 0).
 */
size_t utf8_decode(const char *p, size_t n, uint32_t *cp);

#endif
