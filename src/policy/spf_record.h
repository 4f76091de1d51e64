/*
 * spf_record: the pure half of SPF (RFC 7208): selecting and parsing a
 * "v=spf1" record, and expanding macros. No I/O; fuzzed (fuzz_spf_record).
 *
 * Contract:
 *   - spf_record_parse() checks the WHOLE record before anything is evaluated
 *     (RFC 7208 4.6: a syntax error anywhere is a permerror): every term,
 *     every domain-spec (7.1 grammar, letters c/r/t refused outside exp
 *     text), every CIDR length (no leading zeros, <= 32 / <= 128), "redirect"
 *     and "exp" at most once, unknown modifiers with valid macro-strings.
 *     Terms are slices into the caller's text, which must outlive the record.
 *   - spf_macro_expand() is the section 7 expander: transformers (digits,
 *     'r'), delimiters, upper-case letters URL-escaped, %% %_ %-. Its output
 *     is bounded (SPF_EXPAND_MAX); spf_target_name() then turns an expanded
 *     domain-spec into a name to query (7.3: one trailing dot dropped, labels
 *     cut from the left past 253 octets; empty or overlong labels refused).
 *
 * Security: records and TXT explanations are untrusted. Only SP and visible
 * ASCII are accepted (3.1, 4.6.1), so no control byte, NUL or 8-bit byte
 * survives parsing; every length is checked before it is used, a record has
 * at most SPF_TERMS_MAX terms, and a macro value is split with fixed-size
 * tables.
 */
#ifndef CARTEIRO_POLICY_SPF_RECORD_H
#define CARTEIRO_POLICY_SPF_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/buf.h"
#include "util/netaddr.h"

/* A domain name as text, without the trailing dot (RFC 7208 4.3, 7.3). */
#define SPF_DOMAIN_MAX 253
/* Longest expansion of one macro-string, before truncation to a domain name. */
#define SPF_EXPAND_MAX 4096
/* Longest macro value that is split by transformers (longer: the expansion fails). */
#define SPF_VALUE_MAX 1024
#define SPF_ERROR_MAX 160
/*
 * Most terms in one record. RFC 7208 sets none, but a record is meant to fit
 * one 512-octet answer (3.4); this keeps an include chain of records as long
 * as DNS allows from costing megabytes per check.
 */
#define SPF_TERMS_MAX 512
/* "1.0.0.0.(32 nibbles)": %{i} of an IPv6 address. */
#define SPF_IP_DOTTED_MAX 64

enum spf_mech {
	SPF_MECH_ALL,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

struct spf_term {
	enum spf_mech mech;
	char qualifier;       /* '+', '-', '~' or '?' ('+' when none is written) */
	struct slice text;    /* the term as written, qualifier included */
	struct slice domain;  /* domain-spec (a macro-string); len 0: the current domain */
	unsigned cidr4;       /* a, mx: prefix lengths (32 and 128 unless written) */
	unsigned cidr6;
	struct cidr net;      /* ip4, ip6: the network, host bits cleared */
};

struct spf_record {
	struct spf_term *terms; /* the mechanisms, in order (malloc'ed) */
	size_t nterms;
	struct slice redirect;  /* domain-spec; ptr NULL when there is none */
	struct slice exp;       /* domain-spec; ptr NULL when there is none */
	char error[SPF_ERROR_MAX]; /* why parsing failed */
};

/* Flags for the macro functions. */
enum {
	SPF_MACRO_EXP = 1 << 0, /* explanation text: SP and the letters c, r, t allowed */
	SPF_MACRO_ANY = 1 << 1, /* syntax only (unknown modifiers): every letter allowed */
};

/* The values macros expand to (RFC 7208 7.3). */
struct spf_macro_ctx {
	const char *sender;        /* s: "local@domain" ("postmaster" when no local part) */
	const char *local;         /* l */
	const char *sender_domain; /* o */
	const char *domain;        /* d: the domain being checked */
	const char *helo;          /* h */
	const char *receiver;      /* r (exp only); NULL: "unknown" */
	const char *validated;     /* p; NULL: "unknown" */
	long long now;             /* t (exp only) */
	bool ipv6;                 /* v: "ip6", else "in-addr" */
	char ip_dotted[SPF_IP_DOTTED_MAX]; /* i: dotted quad, or 32 dot-separated nibbles */
	char ip_text[48];          /* c: the readable address (RFC 5952 for IPv6) */
};

/* Does this TXT record select itself as SPF ("v=spf1" then SP or end, any case)? */
bool spf_record_is_spf(struct slice txt);
/*
 * Parse a whole record (which must be SPF). 0; -EINVAL with out->error set;
 * -ENOMEM. On success free it with spf_record_free().
 */
int spf_record_parse(struct slice txt, struct spf_record *out);
void spf_record_free(struct spf_record *r);

/* Is s a domain-spec (RFC 7208 7.1: macro-string then "." toplabel or a macro)? */
bool spf_domain_spec_valid(struct slice s);
/* Check a macro-string's syntax (flags SPF_MACRO_*): 0 or -EINVAL. */
int spf_macro_check(struct slice s, unsigned flags);
/* Does s use macro letter (lower case) anywhere, in either case? */
bool spf_macro_uses(struct slice s, char letter);
/*
 * Fill ctx->ip_dotted, ip_text and ipv6 from an AF_INET or AF_INET6 address
 * (IPv4-mapped IPv6 counts as IPv4, RFC 7208 5). 0 or -EINVAL.
 */
int spf_macro_set_ip(struct spf_macro_ctx *ctx, const struct sockaddr *sa);
/*
 * Expand macro-string s into out (appended; out's own maximum applies too).
 * 0; -EINVAL for bad syntax or a letter not allowed; -ENOSPC past
 * SPF_EXPAND_MAX or out's maximum; -ENAMETOOLONG for a value past
 * SPF_VALUE_MAX that must be split; -ENOMEM.
 */
int spf_macro_expand(struct slice s, const struct spf_macro_ctx *ctx, unsigned flags,
		     struct buf *out);
/*
 * An expanded domain-spec as a name to query, into out (SPF_DOMAIN_MAX + 1
 * bytes): trailing dot dropped, whole labels cut from the left while longer
 * than 253 octets. -EINVAL when nothing usable is left, or a label is empty,
 * longer than 63 octets or holds a control byte.
 */
int spf_target_name(struct slice expanded, char *out);
/*
 * Is s usable as the identity domain of check_host() (RFC 7208 4.3): ASCII
 * labels of 1-63 octets, at least two, at most 253 octets (a trailing dot
 * allowed), no address literal, last label not all digits.
 */
bool spf_identity_domain_ok(const char *s);

#endif
