/*
 * auth_check: a password check off the event loop, shared by the SMTP AUTH
 * (RFC 4954) and POP3 USER/PASS and AUTH (RFC 1939 7, RFC 5034) sessions.
 *
 * The name is looked up in the users table on the loop; the crypt(3) check,
 * which costs milliseconds by design, runs on an I/O thread of the pool; the
 * result comes back on the loop through the callback. An unknown user is
 * checked against a dummy hash, so that timing does not tell who exists.
 *
 * Security: the password is copied into the check and wiped as soon as it
 * has been hashed, and again with the whole check when it is freed; nothing
 * here logs.
 */
#ifndef CARTEIRO_MAIL_AUTH_CHECK_H
#define CARTEIRO_MAIL_AUTH_CHECK_H

#include <stdbool.h>

#include "mail/sasl.h"

struct iopool;
struct userdb;
struct auth_check;

/*
 * The result, on the loop: ok, and user: the account's own spelling of the
 * address when it exists, else the name as given (for the log).
 */
typedef void auth_check_done_fn(void *arg, bool ok, const char *user);

/* Check name/password; NULL when out of memory (nothing is called back then). */
struct auth_check *auth_check_start(struct iopool *pool, const struct userdb *users,
				    const char *name, const char *password, auth_check_done_fn *done,
				    void *arg);
/* The caller is gone: the check finishes alone, calls nothing, and frees itself. */
void auth_check_detach(struct auth_check *c);

#endif
