/*
 * policy_lists: the administrator's local lists, files named by the
 * block-networks, allow-networks and block-senders keys, read at start and
 * on SIGHUP.
 *
 * Format of all three: one entry a line; blank lines are skipped; a word
 * that begins with '#' or ';' starts a comment (so Spamhaus's DROP list,
 * "1.10.16.0/20 ; SBL256894", is a networks file as it is downloaded);
 * anything else after the entry is an error.
 *
 * Networks (block-networks, allow-networks): "192.0.2.0/24", "2001:db8::/32"
 * or a bare address; host bits are ignored (10.1.2.3/8 is 10.0.0.0/8); an
 * IPv4 network also matches IPv4-mapped IPv6 clients. Entries may overlap.
 *
 * Senders (block-senders), matched against MAIL FROM, case-insensitively:
 *   user@example.org   that address only;
 *   @example.org       every address of that domain, not of its subdomains;
 *   example.org        every address of that domain and of its subdomains
 *                      (a.example.org, b.a.example.org): spammers rotate
 *                      subdomains, and blocking a domain means its subtree.
 * The null sender <> (bounces) never matches.
 *
 * Contract: a load either gives complete tables or nothing, after reporting
 * every bad line as "FILE:LINE: message", so that a reload with a broken
 * file keeps the tables in service (as users and aliases). A line is at most
 * POLICY_LIST_LINE_MAX bytes, a file POLICY_LIST_FILE_MAX bytes and
 * POLICY_LIST_ENTRIES_MAX entries: a wrong path cannot make the server
 * allocate without bound. Control characters are refused.
 *
 * Lookups: networks are kept as sorted, merged address intervals (a binary
 * search per client, whatever the size of the list); senders in a hash map
 * (one probe for the address, one for @domain, one per label of the domain).
 */
#ifndef CARTEIRO_POLICY_POLICY_LISTS_H
#define CARTEIRO_POLICY_POLICY_LISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "conf/config.h"
#include "mail/addr.h"

#define POLICY_LIST_LINE_MAX 1024
#define POLICY_LIST_FILE_MAX ((size_t)64 << 20)
#define POLICY_LIST_ENTRIES_MAX 4000000

struct netlist;
struct senderlist;

/* Parse a networks file's text (name for messages): 0 and *out, or a negative error after
 * reporting every bad line (-EINVAL) or running out of memory (-ENOMEM). */
int netlist_parse(const char *name, const char *text, size_t len, config_report_fn *report,
		  void *ctx, struct netlist **out);
void netlist_free(struct netlist *nl);
/* Is the address sa inside one of the networks? */
bool netlist_match(const struct netlist *nl, const struct sockaddr *sa);
/* Entries read (before merging). */
size_t netlist_count(const struct netlist *nl);

/* Parse a senders file's text, as netlist_parse. */
int senderlist_parse(const char *name, const char *text, size_t len, config_report_fn *report,
		     void *ctx, struct senderlist **out);
void senderlist_free(struct senderlist *sl);
/* Does the sender (a MAIL FROM address) match an entry? */
bool senderlist_match(const struct senderlist *sl, const struct addr *sender);
size_t senderlist_count(const struct senderlist *sl);

/* The three lists of a configuration (NULL members: not configured). */
struct policy_lists {
	struct netlist *block_networks;
	struct netlist *allow_networks;
	struct senderlist *block_senders;
};

/* Read every configured file (each one even after another failed): 0 and *out, or a
 * negative error after reporting every problem. */
int policy_lists_load(const struct config *cfg, config_report_fn *report, void *ctx,
		      struct policy_lists **out);
/* Reload into *lists (freeing the old tables), or keep them when a file is broken; logs. */
bool policy_lists_reload(const struct config *cfg, struct policy_lists **lists);
void policy_lists_free(struct policy_lists *lists);

bool policy_lists_client_blocked(const struct policy_lists *lists, const struct sockaddr *sa);
bool policy_lists_client_allowed(const struct policy_lists *lists, const struct sockaddr *sa);
bool policy_lists_sender_blocked(const struct policy_lists *lists, const struct addr *sender);

#endif
