/*
 * punycode: RFC 3492 encoding and A-labels (RFC 5890 2.3.2.1).
 * See punycode.h for the contract.
 *
 * The encoder is RFC 3492 section 6.3 on code points decoded with
 * utf8_decode(); a label has at most PUNYCODE_LABEL_MAX code points, since
 * every code point costs at least one output character, so the code points
 * fit in a fixed array and delta stays far below 2^32 (checked anyway).
 */
#include "util/punycode.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "util/str.h"

enum {
	PUNY_BASE = 36,
	PUNY_TMIN = 1,
	PUNY_TMAX = 26,
	PUNY_SKEW = 38,
	PUNY_DAMP = 700,
	PUNY_INITIAL_BIAS = 72,
	PUNY_INITIAL_N = 0x80,
};

/* Longest domain name in text form, without a trailing dot (RFC 1035 2.3.4). */
#define PUNYCODE_DOMAIN_MAX 253

static char puny_digit(uint32_t d)
{
	return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

/* RFC 3492 6.1. */
static uint32_t puny_adapt(uint32_t delta, uint32_t numpoints, bool first)
{
	uint32_t k = 0;

	delta = first ? delta / PUNY_DAMP : delta / 2;
	delta += delta / numpoints;
	while (delta > ((PUNY_BASE - PUNY_TMIN) * PUNY_TMAX) / 2) {
		delta /= PUNY_BASE - PUNY_TMIN;
		k += PUNY_BASE;
	}
	return k + (PUNY_BASE - PUNY_TMIN + 1) * delta / (delta + PUNY_SKEW);
}

/* Append c to out[*o], keeping room for the NUL and the label limit. */
static bool puny_put(char *out, size_t outlen, size_t *o, char c)
{
	if (*o >= PUNYCODE_LABEL_MAX || *o + 1 >= outlen)
		return false;
	out[(*o)++] = c;
	return true;
}

int punycode_encode(struct slice label, char *out, size_t outlen)
{
	uint32_t cps[PUNYCODE_LABEL_MAX];
	size_t ncp = 0, o = 0, i = 0;
	uint32_t n = PUNY_INITIAL_N, delta = 0, bias = PUNY_INITIAL_BIAS, h, b;

	if (outlen == 0)
		return -ENAMETOOLONG;
	out[0] = '\0';
	if (label.len == 0)
		return -EINVAL;
	while (i < label.len) {
		size_t len = utf8_decode(label.ptr + i, label.len - i, &cps[ncp]);
		if (len == 0)
			return -EINVAL;
		i += len;
		if (++ncp == PUNYCODE_LABEL_MAX && i < label.len)
			return -ENAMETOOLONG;
	}
	for (size_t k = 0; k < ncp; k++)
		if (cps[k] < 0x80 && !puny_put(out, outlen, &o, (char)cps[k]))
			return -ENAMETOOLONG;
	h = b = (uint32_t)o;
	if (b > 0 && !puny_put(out, outlen, &o, '-'))
		return -ENAMETOOLONG;

	while (h < ncp) {
		uint32_t m = UINT32_MAX;
		for (size_t k = 0; k < ncp; k++)
			if (cps[k] >= n && cps[k] < m)
				m = cps[k];
		uint32_t step;
		if (__builtin_mul_overflow(m - n, h + 1, &step) ||
		    __builtin_add_overflow(delta, step, &delta))
			return -ENAMETOOLONG;
		n = m;
		for (size_t k = 0; k < ncp; k++) {
			if (cps[k] < n && __builtin_add_overflow(delta, 1, &delta))
				return -ENAMETOOLONG;
			if (cps[k] != n)
				continue;
			uint32_t q = delta;
			for (uint32_t kk = PUNY_BASE;; kk += PUNY_BASE) {
				uint32_t t = kk <= bias ? PUNY_TMIN
					     : kk >= bias + PUNY_TMAX ? PUNY_TMAX : kk - bias;
				if (q < t)
					break;
				if (!puny_put(out, outlen, &o,
					      puny_digit(t + (q - t) % (PUNY_BASE - t))))
					return -ENAMETOOLONG;
				q = (q - t) / (PUNY_BASE - t);
			}
			if (!puny_put(out, outlen, &o, puny_digit(q)))
				return -ENAMETOOLONG;
			bias = puny_adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
		delta++;
		n++;
	}
	out[o] = '\0';
	return 0;
}

static int domain_to_ascii(struct slice domain, char *out, size_t outlen)
{
	size_t o = 0, start = 0;

	if (domain.len == 0)
		return -EINVAL;
	while (start <= domain.len) {
		const char *dot = memchr(domain.ptr + start, '.', domain.len - start);
		size_t end = dot ? (size_t)(dot - domain.ptr) : domain.len;
		struct slice label = { domain.ptr + start, end - start };
		char lower[4 * PUNYCODE_LABEL_MAX], ascii[PUNYCODE_LABEL_MAX + 1];
		bool wide = false;
		size_t alen;

		if (label.len == 0)
			return -EINVAL;
		if (label.len > sizeof lower)
			return -ENAMETOOLONG;
		for (size_t k = 0; k < label.len; k++) {
			unsigned char c = (unsigned char)label.ptr[k];
			/* A NUL would cut the C string short; no control byte is part of a name. */
			if (c < 0x20 || c == 0x7f)
				return -EINVAL;
			lower[k] = ascii_tolower((char)c);
			wide |= c >= 0x80;
		}
		if (wide) {
			memcpy(ascii, "xn--", 4);
			int r = punycode_encode((struct slice){ lower, label.len }, ascii + 4,
						sizeof ascii - 4);
			if (r < 0)
				return r;
			alen = strlen(ascii);
			if (alen > PUNYCODE_LABEL_MAX)
				return -ENAMETOOLONG;
		} else {
			if (label.len > PUNYCODE_LABEL_MAX)
				return -ENAMETOOLONG;
			memcpy(ascii, lower, label.len);
			alen = label.len;
		}
		/* The label, a dot before it unless it is the first, and the NUL. */
		size_t need = o + (o > 0) + alen;
		if (need > PUNYCODE_DOMAIN_MAX || need + 1 > outlen)
			return -ENAMETOOLONG;
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, ascii, alen);
		o += alen;
		out[o] = '\0';
		if (!dot)
			break;
		start = end + 1;
	}
	return 0;
}

int punycode_domain_to_ascii(struct slice domain, char *out, size_t outlen)
{
	if (outlen == 0)
		return -ENAMETOOLONG;
	out[0] = '\0';
	int r = domain_to_ascii(domain, out, outlen);
	if (r < 0)
		out[0] = '\0';
	return r;
}
