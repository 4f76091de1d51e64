/*
 * resolve: what a recipient address means here.
 *
 * For an address in a local domain, in this order (first match wins):
 *   1. an alias of the exact address,
 *   2. a user (mailbox) of the exact address,
 *   3. with plus-addressing (user+tag@domain, any recipient-delimiter
 *      character, first occurrence): an alias, then a user, of user@domain,
 *   4. a catch-all alias "@domain",
 *   5. postmaster@<any local domain> without an entry of its own: the
 *      postmaster of the first local domain (RFC 5321 4.5.1),
 *   6. otherwise: unknown user.
 * "postmaster" without domain (RFC 5321 4.1.1.3) means postmaster@ the first
 * local domain. Local parts are compared case-insensitively.
 * An alias expands recursively into its targets; a remote target is a
 * remote recipient; a target already being expanded (a loop) is delivered to
 * as a mailbox when it is one and dropped otherwise; depth is limited to
 * RESOLVE_DEPTH_MAX. If nothing deliverable remains, the result is a loop error.
 * Results are de-duplicated.
 *
 * For an address in another domain: one remote recipient, unchanged (relay
 * permission is the SMTP session's decision, not this module's).
 */
#ifndef CARTEIRO_MAIL_RESOLVE_H
#define CARTEIRO_MAIL_RESOLVE_H

#include <stddef.h>

#include "conf/config.h"
#include "mail/addr.h"
#include "mail/aliases.h"
#include "mail/users.h"

#define RESOLVE_DEPTH_MAX 20

enum resolve_kind {
	RESOLVE_LOCAL,  /* a mailbox here: address is the user's canonical address */
	RESOLVE_REMOTE, /* another domain */
};

struct resolved {
	enum resolve_kind kind;
	char address[ADDR_TEXT_MAX + 1];
};

enum resolve_status {
	RESOLVE_OK = 0,
	RESOLVE_UNKNOWN = -1,  /* no such user or alias in a local domain */
	RESOLVE_LOOP = -2,     /* alias loop with nothing deliverable, or too deep */
	RESOLVE_TOO_MANY = -3, /* expansion exceeds the caller's max */
};

struct resolve_ctx {
	const struct config *cfg;
	const struct userdb *users;
	const struct aliasdb *aliases;
};

/*
 * Resolve rcpt into at most max results in out (*n set). Returns a
 * resolve_status. Does not allocate on the caller's behalf.
 */
int resolve_recipient(const struct resolve_ctx *rc, const struct addr *rcpt, struct resolved *out,
		      size_t max, size_t *n);

#endif
