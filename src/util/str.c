/*
 * str: ASCII helpers, checked number parsing, UTF-8 validation.
 */
#include "util/str.h"

#include <stdarg.h>
#include <stdio.h>

#include <errno.h>
#include <string.h>

void str_lower(char *s)
{
	for (; *s; s++)
		*s = ascii_tolower(*s);
}

bool str_copy(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);
	if (dstlen == 0)
		return false;
	if (n >= dstlen) {
		memcpy(dst, src, dstlen - 1);
		dst[dstlen - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

int str_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char ca = (unsigned char)ascii_tolower(*a);
		unsigned char cb = (unsigned char)ascii_tolower(*b);
		if (ca != cb || ca == '\0')
			return ca - cb;
	}
}

int parse_u64(struct slice s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s.len == 0)
		return -EINVAL;
	for (size_t i = 0; i < s.len; i++) {
		if (!ascii_isdigit(s.ptr[i]))
			return -EINVAL;
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s.ptr[i] - '0'), &v))
			return -ERANGE;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int parse_scaled(struct slice s, const char *units, const uint64_t *mult,
			uint64_t *out)
{
	uint64_t m = 1, v;
	int r;

	if (s.len == 0)
		return -EINVAL;
	const char *u = strchr(units, ascii_tolower(s.ptr[s.len - 1]));
	if (u && s.ptr[s.len - 1] != '\0') {
		m = mult[u - units];
		s.len--;
	}
	r = parse_u64(s, UINT64_MAX, &v);
	if (r < 0)
		return r;
	if (__builtin_mul_overflow(v, m, out))
		return -ERANGE;
	return 0;
}

int parse_size(struct slice s, uint64_t *out)
{
	static const uint64_t mult[] = { 1, 1024, 1024 * 1024, 1024 * 1024 * 1024 };
	return parse_scaled(s, "bkmg", mult, out);
}

int parse_duration(struct slice s, uint64_t *out)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400, 7 * 86400 };
	return parse_scaled(s, "smhdw", mult, out);
}

bool str_format(char *dst, size_t dstlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(dst, dstlen, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < dstlen;
}

const char *str_display(char *dst, size_t dstlen, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	bool utf8 = utf8_valid(src, len);
	size_t o = 0;

	if (dstlen < 5) {
		if (dstlen)
			dst[0] = '\0';
		return dst;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		bool plain = c == '\t' || (c >= 0x20 && c != 0x7f && (c < 0x80 || utf8));
		size_t need = plain ? 1 : 4;
		if (o + need + 4 > dstlen) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		if (plain) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}

size_t utf8_decode(const char *p, size_t n, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)p;
	unsigned c;
	size_t len;
	uint32_t v;

	if (n == 0)
		return 0;
	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3f);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10ffff ||
	    (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

bool utf8_valid(const char *p, size_t n)
{
	size_t i = 0;
	uint32_t cp;

	while (i < n) {
		size_t len = utf8_decode(p + i, n - i, &cp);
		if (len == 0)
			return false;
		i += len;
	}
	return true;
}
