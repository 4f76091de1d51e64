/*
 * users: the accounts file, one "address:crypt-hash" a line, in the format of
 * Dovecot's passwd-file (further ':'-separated fields are allowed and
 * ignored), so that existing account files work. Every address listed has a
 * mailbox. '#' comment lines and blank lines are skipped.
 *
 * The address is a bare RFC 5321 Mailbox (no angle brackets) whose domain must
 * be a local-domain; it is stored lower-cased and looked up case-insensitively.
 * A local part may not contain '/' or start with '.', since it names a
 * directory under maildir-root. The hash may be empty or start with '!' or
 * '*' (account without login; the mailbox still receives mail).
 *
 * Errors are reported as "FILE:LINE: message" and the bad line is skipped;
 * the load fails (-EINVAL) if there was any error, so that a reload keeps the
 * previous table.
 */
#ifndef CARTEIRO_MAIL_USERS_H
#define CARTEIRO_MAIL_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"

struct user {
	char *address; /* lower-case "local@domain" */
	char *local;   /* lower-case local part */
	char *domain;  /* lower-case domain */
	char *hash;    /* crypt(3) hash as written, possibly "" */
};

struct userdb;

/*
 * Load path. cfg gives the local domains. Returns 0 and *out, or a negative
 * error after reporting every problem (out untouched).
 */
int userdb_load(const char *path, const struct config *cfg, config_report_fn *report, void *ctx,
		struct userdb **out);
/* An empty table (no users file configured). */
struct userdb *userdb_empty(void);
void userdb_free(struct userdb *db);
/* Case-insensitive lookup of "local@domain"; NULL when absent. */
const struct user *userdb_find(const struct userdb *db, const char *address);
size_t userdb_count(const struct userdb *db);

/*
 * Parse one users-file line into a user (allocated fields), for the loader and
 * the fuzz target. 1: a user, 0: blank/comment, <0: error with a message in err.
 */
int userdb_parse_line(const char *line, size_t len, const struct config *cfg, struct user *out,
		      char *err, size_t errlen);
void user_free_fields(struct user *u);

#endif
