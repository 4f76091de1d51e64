/*
 * addr: RFC 5321 mail addresses (paths and mailboxes), with the SMTPUTF8
 * extension of RFC 6531.
 *
 * Grammar (RFC 5321 4.1.2, 4.1.3; RFC 6531 3.3):
 *   Reverse-path = Path / "<>"
 *   Path         = "<" [ A-d-l ":" ] Mailbox ">"
 *   A-d-l        = At-domain *( "," At-domain )     ; source route: parsed, ignored
 *   Mailbox      = Local-part "@" ( Domain / address-literal )
 *   Local-part   = Dot-string / Quoted-string
 *   Domain       = sub-domain *("." sub-domain)     ; no trailing dot
 *   address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General-address-literal ) "]"
 * With ADDR_UTF8, atext, qtext and sub-domains may also hold UTF-8 (checked
 * for well-formedness); without it, any byte >= 0x80 is a syntax error.
 *
 * Limits (RFC 5321 4.5.3.1): local part 64 octets as written (quotes
 * included), domain 255 octets, whole path 256 octets including "<" ">"
 * (source route included). Also ADDR_ERR_TOO_LONG: a label over 63 octets
 * (RFC 1035 2.3.4), and a bare mailbox over ADDR_PATH_MAX - 2 octets (so
 * that every mailbox accepted also fits in a Path).
 *
 * Canonical form: a quoted local part whose content is a valid Dot-string is
 * unquoted ("demo"@x is demo@x, RFC 5321 4.1.2); otherwise it stays quoted,
 * with only '"' and '\' backslash-escaped. The domain is lower-cased (ASCII
 * only); an address literal keeps its brackets. The local part keeps its case
 * (RFC 5321 2.4); comparisons against local users are done case-insensitively
 * by the caller.
 *
 * Nothing here gives a meaning to '%', '!' or a second '@': they are either
 * plain local-part characters or syntax errors, so no address trick can
 * route mail anywhere but to the domain after the last unquoted '@'.
 */
#ifndef CARTEIRO_MAIL_ADDR_H
#define CARTEIRO_MAIL_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_PATH_MAX 256
/* Longest canonical "local@domain" text, quotes and escapes included. */
#define ADDR_TEXT_MAX (2 * ADDR_LOCAL_MAX + 2 + ADDR_DOMAIN_MAX)

struct addr {
	/* Local part without quotes and escapes (may hold '@', '"', SP if quoted). */
	char local[ADDR_LOCAL_MAX + 1];
	/* Lower-cased domain, or an address literal with its brackets. */
	char domain[ADDR_DOMAIN_MAX + 1];
	/* Canonical "local@domain" as it is written on the wire; "" for the null path. */
	char text[ADDR_TEXT_MAX + 1];
	bool null;    /* the reverse path "<>" */
	bool quoted;  /* the canonical local part needs quotes */
	bool literal; /* the domain is an address literal */
	bool utf8;    /* the address holds non-ASCII characters */
};

/* Flags for the parsers. */
enum {
	ADDR_ALLOW_NULL = 1 << 0,       /* "<>" is accepted (MAIL FROM) */
	ADDR_UTF8 = 1 << 1,             /* SMTPUTF8 in effect (RFC 6531) */
	ADDR_ALLOW_POSTMASTER = 1 << 2, /* "<postmaster>", no domain (RCPT, RFC 5321 4.1.1.3) */
};

enum addr_error {
	ADDR_OK = 0,
	ADDR_ERR_SYNTAX = -1,   /* not a path / mailbox */
	ADDR_ERR_TOO_LONG = -2, /* a length limit of RFC 5321 4.5.3.1 */
	ADDR_ERR_UTF8 = -3,     /* non-ASCII without ADDR_UTF8, or invalid UTF-8 */
	ADDR_ERR_NULL = -4,     /* "<>" where it is not allowed */
};

/*
 * Parse a Path at the start of in ("<...>"), as found after "MAIL FROM:" or
 * "RCPT TO:". *consumed gets the number of bytes up to and including '>';
 * what follows (ESMTP parameters) is left to the caller. "<postmaster>" with
 * ADDR_ALLOW_POSTMASTER gives local "postmaster" and an empty domain.
 * On error *out is zeroed and *consumed is 0.
 */
int addr_parse_path(struct slice in, unsigned flags, struct addr *out, size_t *consumed);

/* Parse a whole slice as a bare Mailbox "local@domain" (config files, aliases).
 * On error *out is zeroed. */
int addr_parse_mailbox(struct slice in, unsigned flags, struct addr *out);

/* Is s a syntactically valid Domain (RFC 5321, no trailing dot)? */
bool addr_domain_valid(struct slice s, bool utf8);
/* Is s a valid address literal "[...]" (IPv4, IPv6: or General)? */
bool addr_literal_valid(struct slice s);

/* Human-readable reason for an addr_error, for reply texts. */
const char *addr_strerror(int err);

#endif
