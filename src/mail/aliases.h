/*
 * aliases: the alias file, "alias@domain: target[, target...]" one a line.
 *
 * Targets are bare RFC 5321 mailboxes, local or remote, separated by commas
 * (optional spaces). A left-hand side of "@domain" is a catch-all for that
 * local domain. Long lists may continue on lines that start with a space or a
 * tab (RFC 5322-style folding). '#' comment lines and blank lines are skipped.
 * The alias address must belong to a local-domain; a repeated alias is an
 * error. Addresses are stored lower-cased (domains) and matched
 * case-insensitively. Errors: "FILE:LINE: message", the load fails.
 *
 * Expansion (recursion, loops, plus-addressing) is resolve.c's job.
 */
#ifndef CARTEIRO_MAIL_ALIASES_H
#define CARTEIRO_MAIL_ALIASES_H

#include <stddef.h>

#include "conf/config.h"

/* Limits: targets of one alias, and bytes of one logical (folded) line. */
#define ALIAS_TARGETS_MAX 1000
#define ALIAS_LINE_MAX 65536

struct alias {
	char *address; /* lower-case "local@domain", or "@domain" for a catch-all */
	char **targets;
	size_t ntargets;
};

struct aliasdb;

int aliasdb_load(const char *path, const struct config *cfg, config_report_fn *report, void *ctx,
		 struct aliasdb **out);
struct aliasdb *aliasdb_empty(void);
void aliasdb_free(struct aliasdb *db);
/* Case-insensitive lookup of "local@domain" or "@domain"; NULL when absent. */
const struct alias *aliasdb_find(const struct aliasdb *db, const char *address);
size_t aliasdb_count(const struct aliasdb *db);

/*
 * Parse one logical line (folding already joined) into an alias; 1, 0 for
 * blank/comment, <0 with a message in err. For the loader and the fuzz target.
 */
int aliasdb_parse_line(const char *line, size_t len, const struct config *cfg, struct alias *out,
		       char *err, size_t errlen);
void alias_free_fields(struct alias *a);

#endif
