/*
 * sasl: PLAIN (RFC 4616 2) and LOGIN server mechanisms, base64 (RFC 4648 4).
 * See sasl.h.
 *
 * Every decoded response goes to a stack buffer of DECODED_MAX octets that is
 * wiped before return; lengths are checked before each copy, and a value is
 * copied only once it is known to fit with its NUL.
 */
#include "mail/sasl.h"

#include <errno.h>
#include <string.h>

#include "util/str.h"

/* The largest decoded response we accept: a PLAIN message with every part at its limit. */
#define DECODED_MAX (SASL_NAME_MAX * 2 + SASL_PASSWORD_MAX + 2)

/* s->step */
enum {
	STEP_IDLE,          /* no exchange */
	STEP_PLAIN,         /* PLAIN: the response is due */
	STEP_LOGIN_USER,    /* LOGIN: "Username:" sent */
	STEP_LOGIN_PASS,    /* LOGIN: "Password:" sent */
};

static const char challenge_username[] = "VXNlcm5hbWU6"; /* "Username:" */
static const char challenge_password[] = "UGFzc3dvcmQ6"; /* "Password:" */

static const char *const mech_names[] = { [SASL_PLAIN] = "PLAIN", [SASL_LOGIN] = "LOGIN" };

int sasl_mech_parse(struct slice name, enum sasl_mech *out)
{
	for (size_t i = 0; i < sizeof mech_names / sizeof mech_names[0]; i++) {
		if (slice_eq_cstr_nocase(name, mech_names[i])) {
			*out = (enum sasl_mech)i;
			return 0;
		}
	}
	return -ENOENT;
}

const char *sasl_mech_name(enum sasl_mech mech)
{
	return (unsigned)mech < sizeof mech_names / sizeof mech_names[0] ? mech_names[mech] : "?";
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int sasl_base64_decode(struct slice in, unsigned char *out, size_t max, size_t *outlen)
{
	size_t o = 0;

	if (in.len % 4 != 0)
		return SASL_ERR_BASE64;
	for (size_t i = 0; i < in.len; i += 4) {
		const unsigned char *q = (const unsigned char *)in.ptr + i;
		bool last = i + 4 == in.len;
		int v[4];
		size_t n = 3;

		for (int k = 0; k < 4; k++)
			v[k] = b64_value(q[k]);
		/* Padding only at the very end: "xx==" or "xxx=". */
		if (last && q[3] == '=') {
			n = q[2] == '=' ? 1 : 2;
			v[3] = 0;
			if (n == 1)
				v[2] = 0;
		}
		if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0)
			return SASL_ERR_BASE64;
		/* Canonical encoding: the bits the padding drops must be zero. */
		if ((n == 1 && (v[1] & 15)) || (n == 2 && (v[2] & 3)))
			return SASL_ERR_BASE64;
		if (n > max - o)
			return SASL_ERR_TOO_LONG;
		unsigned bits = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
				(unsigned)v[3];
		out[o++] = (unsigned char)(bits >> 16);
		if (n > 1)
			out[o++] = (unsigned char)(bits >> 8);
		if (n > 2)
			out[o++] = (unsigned char)bits;
	}
	*outlen = o;
	return 0;
}

/* Copy a decoded field of n octets into dst (max octets + NUL): no NUL inside. */
static int take_field(char *dst, size_t max, const unsigned char *p, size_t n)
{
	if (n > max)
		return SASL_ERR_TOO_LONG;
	if (memchr(p, '\0', n))
		return SASL_ERR_SYNTAX;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

/* RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd */
static int plain_message(struct sasl *s, const unsigned char *m, size_t n)
{
	const unsigned char *nul1 = memchr(m, '\0', n);
	if (!nul1)
		return SASL_ERR_SYNTAX;
	size_t zlen = (size_t)(nul1 - m);
	const unsigned char *c = nul1 + 1;
	const unsigned char *nul2 = memchr(c, '\0', n - zlen - 1);
	if (!nul2)
		return SASL_ERR_SYNTAX;
	size_t clen = (size_t)(nul2 - c);
	const unsigned char *pw = nul2 + 1;
	size_t plen = n - zlen - clen - 2;

	if (clen == 0 || zlen > SASL_NAME_MAX)
		return clen == 0 ? SASL_ERR_SYNTAX : SASL_ERR_TOO_LONG;
	int r = take_field(s->authcid, SASL_NAME_MAX, c, clen);
	if (r == 0)
		r = take_field(s->password, SASL_PASSWORD_MAX, pw, plen);
	if (r < 0)
		return r;
	/* No proxy authorization: an authzid must name the same identity. */
	if (zlen && (zlen != clen || memcmp(m, c, zlen) != 0))
		return SASL_ERR_SYNTAX;
	return SASL_DONE;
}

/* A response line: "=" is an empty response only as an initial response (RFC 4954 4). */
static int decode(struct slice line, bool initial, unsigned char *out, size_t *n)
{
	if (initial && line.len == 1 && line.ptr[0] == '=') {
		*n = 0;
		return 0;
	}
	if (line.len > SASL_LINE_MAX)
		return SASL_ERR_TOO_LONG;
	return sasl_base64_decode(line, out, DECODED_MAX, n);
}

static int step(struct sasl *s, struct slice line, bool initial)
{
	unsigned char m[DECODED_MAX];
	size_t n = 0;
	int r = decode(line, initial, m, &n);

	if (r == 0) {
		switch (s->step) {
		case STEP_PLAIN:
			r = plain_message(s, m, n);
			break;
		case STEP_LOGIN_USER:
			r = n == 0 ? SASL_ERR_SYNTAX : take_field(s->authcid, SASL_NAME_MAX, m, n);
			if (r == 0) {
				s->step = STEP_LOGIN_PASS;
				s->challenge = challenge_password;
				r = SASL_CONTINUE;
			}
			break;
		case STEP_LOGIN_PASS:
			r = take_field(s->password, SASL_PASSWORD_MAX, m, n);
			break;
		default:
			r = SASL_ERR_STATE;
			break;
		}
	}
	explicit_bzero(m, sizeof m);
	if (r == SASL_CONTINUE)
		return r;
	if (r == 0) {
		s->step = STEP_IDLE;
		s->challenge = NULL;
		return SASL_DONE;
	}
	sasl_reset(s);
	return r;
}

int sasl_start(struct sasl *s, enum sasl_mech mech, bool has_initial, struct slice initial)
{
	sasl_reset(s);
	s->mech = mech;
	if (mech == SASL_PLAIN) {
		s->step = STEP_PLAIN;
		s->challenge = ""; /* RFC 4616: the server's first challenge is empty */
	} else if (mech == SASL_LOGIN) {
		s->step = STEP_LOGIN_USER;
		s->challenge = challenge_username;
	} else {
		return SASL_ERR_STATE;
	}
	if (!has_initial)
		return SASL_CONTINUE;
	return step(s, initial, true);
}

int sasl_step(struct sasl *s, struct slice line)
{
	if (s->step == STEP_IDLE)
		return SASL_ERR_STATE;
	return step(s, line, false);
}

void sasl_reset(struct sasl *s)
{
	explicit_bzero(s, sizeof *s);
	s->step = STEP_IDLE;
	s->challenge = NULL;
}
