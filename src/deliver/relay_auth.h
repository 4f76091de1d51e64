/*
 * relay_auth: the relayhost's credentials (relayhost-auth FILE).
 *
 * The file holds one line "USER PASSWORD" (the password runs to the end of
 * the line, so it may contain spaces; blank lines and '#' comments are
 * skipped). Like Postfix's sasl_passwd it should be readable by root only:
 * the master reads it before it drops root, and the queue manager inherits
 * the credentials. The password is wiped from memory when freed and is never
 * logged.
 */
#ifndef CARTEIRO_DELIVER_RELAY_AUTH_H
#define CARTEIRO_DELIVER_RELAY_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct relay_auth {
	char *user;
	char *pass;
	bool exposed; /* the file is readable by group or others */
};

/* Read path into a (zeroed by the caller). 0, -errno, or -EINVAL with a message in err. */
int relay_auth_load(const char *path, struct relay_auth *a, char *err, size_t errlen);
/* Wipe and free. */
void relay_auth_free(struct relay_auth *a);

#endif
