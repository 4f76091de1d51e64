/*
 * sasl: the server side of the SASL mechanisms PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login), as carried by SMTP AUTH (RFC 4954 4) and,
 * later, POP3 AUTH (RFC 5034): protocol-neutral, so both servers share it.
 *
 * The protocol layer reads response lines (bounded by SASL_LINE_MAX) and
 * hands each one here; this module keeps the exchange's state between lines
 * (a resumable parser, one step a line), decodes base64 (RFC 4648 4, strict:
 * padding required, no whitespace), checks every length before it copies, and
 * answers with the next challenge or with the credentials. A line "*" cancels
 * (RFC 4954 4); the protocol layer checks that before calling sasl_step.
 * An initial response "=" is an empty one (RFC 4954 4).
 *
 * PLAIN: authzid NUL authcid NUL passwd; the authzid must be empty or equal to
 * the authcid (no proxy authorization); neither name nor password may contain
 * NUL; names are at most SASL_NAME_MAX octets, passwords SASL_PASSWORD_MAX.
 * LOGIN: challenges "Username:" and "Password:" (base64), one response each.
 *
 * Security: the password lives only in struct sasl and is wiped by
 * sasl_reset(); nothing here logs. Callers must never log a response line.
 */
#ifndef CARTEIRO_MAIL_SASL_H
#define CARTEIRO_MAIL_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* RFC 4954 4: a response line may be 12288 octets (without CRLF). */
#define SASL_LINE_MAX 12288
#define SASL_NAME_MAX 320
#define SASL_PASSWORD_MAX 1024

enum sasl_mech {
	SASL_PLAIN,
	SASL_LOGIN,
};

enum sasl_status {
	SASL_CONTINUE = 1,    /* send the challenge in sasl.challenge, then a response is due */
	SASL_DONE = 0,        /* authcid and password are set */
	SASL_ERR_BASE64 = -1, /* the response is not valid base64 */
	SASL_ERR_SYNTAX = -2, /* decoded, but not what the mechanism expects */
	SASL_ERR_TOO_LONG = -3,
	SASL_ERR_STATE = -4,  /* no exchange in progress */
};

struct sasl {
	enum sasl_mech mech;
	int step; /* private: where the exchange stands */
	const char *challenge; /* base64 text of the next 334 line ("" for an empty one) */
	char authcid[SASL_NAME_MAX + 1];
	char password[SASL_PASSWORD_MAX + 1];
};

/* The mechanism named name (any case): 0, or -ENOENT for one we do not offer. */
int sasl_mech_parse(struct slice name, enum sasl_mech *out);
const char *sasl_mech_name(enum sasl_mech mech);

/* Start an exchange; with has_initial, initial is the initial response. A sasl_status. */
int sasl_start(struct sasl *s, enum sasl_mech mech, bool has_initial, struct slice initial);
/* Take the next response line (base64, without CRLF). A sasl_status; any error ends the
 * exchange. */
int sasl_step(struct sasl *s, struct slice line);
/* Forget everything (the password is wiped). */
void sasl_reset(struct sasl *s);

/*
 * Decode strict base64 (RFC 4648 4) into out[0..max); 0 and *outlen, or
 * SASL_ERR_BASE64 / SASL_ERR_TOO_LONG. out is not NUL-terminated.
 */
int sasl_base64_decode(struct slice in, unsigned char *out, size_t max, size_t *outlen);

#endif
