/*
 * dkim_message: the message reader shared by the DKIM verifier and signer
 * (private to src/policy/dkim_*.c).
 *
 * Contract: fed the message bytes in chunks of any size, it keeps the header
 * section (up to the empty line that ends it, RFC 5322 2.1) in one buffer of
 * at most DKIM_HEADER_MAX bytes and splits it into fields, a field being a
 * line and the continuation lines (starting with SP or HTAB) after it. What
 * follows the empty line is the body, which it does not keep: the caller
 * hashes it. A message without an empty line is all header section. A section
 * over DKIM_HEADER_MAX bytes or DKIM_FIELDS_MAX fields puts the reader in the
 * state DKIM_MSG_TOO_BIG, where it drops everything.
 */
#ifndef CARTEIRO_POLICY_DKIM_MESSAGE_H
#define CARTEIRO_POLICY_DKIM_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/dkim.h"
#include "util/buf.h"

enum dkim_msg_state {
	DKIM_MSG_HEAD, /* reading the header section */
	DKIM_MSG_BODY, /* the header section is complete: fields are valid */
	DKIM_MSG_TOO_BIG,
};

struct dkim_field {
	size_t off, len;  /* in head; len includes the final CRLF when there is one */
	size_t name_len;  /* up to the colon, WSP before it excluded; 0 without a colon */
	size_t value_off; /* just after the colon (== len without a colon) */
};

struct dkim_message {
	enum dkim_msg_state state;
	struct buf head;
	unsigned eoh; /* octets of CRLF CRLF matched */
	struct dkim_field *fields;
	size_t nfields;
};

void dkim_message_init(struct dkim_message *m);
void dkim_message_free(struct dkim_message *m);
/*
 * Take header bytes from *p (advancing *p and *n past them). 1 when the header
 * section ended in this call (*p is then the start of the body), 0 when more
 * is needed or when already past the header section, -ENOMEM.
 */
int dkim_message_feed(struct dkim_message *m, const char **p, size_t *n);
/* The end of the message: 1 when this ends the header section (no body), else 0 or -ENOMEM. */
int dkim_message_end(struct dkim_message *m);

/* The whole field text, and its value (after the colon, without the final CRLF). */
struct slice dkim_field_text(const struct dkim_message *m, const struct dkim_field *f);
struct slice dkim_field_value(const struct dkim_message *m, const struct dkim_field *f);
/* Is the field's name name (any case)? */
bool dkim_field_is(const struct dkim_message *m, const struct dkim_field *f, struct slice name);

/*
 * Feed the header fields that names select into fn, canonicalized by c (each
 * with its CRLF), as RFC 6376 5.4.2 orders them: for each name in turn the
 * lowest instance not yet used, bottom-up; a name with no instance left adds
 * nothing. 0 or -ENOMEM.
 */
int dkim_message_hash_fields(const struct dkim_message *m, const struct slice *names,
			     size_t nnames, enum dkim_canon c, dkim_emit_fn *fn, void *ctx);

#endif
