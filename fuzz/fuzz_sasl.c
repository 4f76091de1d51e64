/*
 * fuzz_sasl: the SASL PLAIN/LOGIN decoder (src/mail/sasl.c).
 *
 * The first input byte picks the mechanism and whether the first line is an
 * initial response; the rest is cut at LF into response lines, fed one by
 * one as the protocol layer would. Invariants:
 *  - every status is one the API names, and CONTINUE always has a known
 *    challenge;
 *  - DONE gives a non-empty authcid and a password within their limits, with
 *    no NUL inside, and (PLAIN) the decoded message is exactly
 *    [authcid] NUL authcid NUL password;
 *  - after DONE or an error, a further step is SASL_ERR_STATE;
 *  - base64 is canonical: whatever decodes re-encodes to the same text, and
 *    the encoding of any bytes decodes back to them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

static void check_base64(const uint8_t *data, size_t size)
{
	static unsigned char dec[SASL_LINE_MAX];
	static char enc[SASL_LINE_MAX * 2];
	size_t n;

	if (size > SASL_LINE_MAX)
		return;
	/* What decodes is canonical. */
	if (sasl_base64_decode((struct slice){ (const char *)data, size }, dec, sizeof dec, &n) ==
	    0) {
		CHECK(b64_encode(dec, n, enc) == size && memcmp(enc, data, size) == 0);
	}
	/* Any bytes survive a round trip. */
	size_t m = b64_encode(data, size, enc);
	CHECK(sasl_base64_decode((struct slice){ enc, m }, dec, sizeof dec, &n) == 0);
	CHECK(n == size && memcmp(dec, data, size) == 0);
}

static bool known_challenge(const char *c)
{
	return c && (strcmp(c, "") == 0 || strcmp(c, "VXNlcm5hbWU6") == 0 ||
		     strcmp(c, "UGFzc3dvcmQ6") == 0);
}

static void check_done(const struct sasl *s, struct slice last, bool plain)
{
	static unsigned char dec[SASL_LINE_MAX];
	size_t alen = strnlen(s->authcid, sizeof s->authcid);
	size_t plen = strnlen(s->password, sizeof s->password);
	size_t n;

	CHECK(alen > 0 && alen <= SASL_NAME_MAX);
	CHECK(plen <= SASL_PASSWORD_MAX);
	if (!plain || (last.len == 1 && last.ptr[0] == '='))
		return;
	CHECK(sasl_base64_decode(last, dec, sizeof dec, &n) == 0);
	/* [authzid] NUL authcid NUL password, authzid empty or the authcid. */
	size_t tail = 1 + alen + 1 + plen;
	CHECK(n == tail || n == alen + tail);
	const unsigned char *p = dec + (n - tail);
	if (n != tail)
		CHECK(memcmp(dec, s->authcid, alen) == 0);
	CHECK(p[0] == 0 && memcmp(p + 1, s->authcid, alen) == 0 && p[1 + alen] == 0);
	CHECK(memcmp(p + 2 + alen, s->password, plen) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sasl s;

	if (size == 0)
		return 0;
	unsigned mode = data[0];
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	enum sasl_mech mech = (mode & 1) ? SASL_LOGIN : SASL_PLAIN;
	bool initial = (mode & 2) != 0;

	check_base64(data + 1, size - 1);

	int r = SASL_CONTINUE;
	bool started = false;
	struct slice fed = { "", 0 }; /* the last line fed */
	while (p <= end && r == SASL_CONTINUE) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		struct slice line = { p, lf ? (size_t)(lf - p) : (size_t)(end - p) };
		if (!started) {
			started = true;
			r = sasl_start(&s, mech, initial, line);
			if (initial)
				fed = line;
			else if (r == SASL_CONTINUE)
				r = sasl_step(&s, fed = line);
		} else {
			r = sasl_step(&s, fed = line);
		}
		if (!lf)
			break;
		p = lf + 1;
	}
	CHECK(r == SASL_CONTINUE || r == SASL_DONE || r == SASL_ERR_BASE64 ||
	      r == SASL_ERR_SYNTAX || r == SASL_ERR_TOO_LONG);
	if (r == SASL_CONTINUE)
		CHECK(known_challenge(s.challenge));
	if (r == SASL_DONE)
		check_done(&s, fed, mech == SASL_PLAIN);
	if (r != SASL_CONTINUE)
		CHECK(sasl_step(&s, (struct slice){ "AA==", 4 }) == SASL_ERR_STATE);
	sasl_reset(&s);
	return 0;
}
