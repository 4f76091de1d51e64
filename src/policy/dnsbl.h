/*
 * dnsbl: DNS lists of clients and domains (RFC 5782): blocklists of client
 * addresses (dnsbl), of domains (rhsbl: the MAIL FROM and HELO domains) and
 * allowlists of client addresses (dnswl).
 *
 * A client 192.0.2.7 is listed in zone Z when "7.2.0.192.Z" has an A record
 * whose address is one of the zone's codes; an IPv6 client is asked as 32
 * nibbles (RFC 5782 2.4); a domain D as "D.Z" (RFC 5782 2.3). The TXT record of
 * a listed name is the list's reason (RFC 5782 2.1), fetched only once an A
 * record matched, made printable (bytes outside 0x20..0x7e become '?') and cut
 * to DNSBL_REASON_MAX so that it can go into a reply and a log line.
 *
 * Codes (the `dnsbl ZONE CODES` value): a comma-separated list of items, each
 *   - an address range "127.0.0.2-127.0.0.11" (inclusive) or one address, or
 *   - Postfix's octet patterns (postscreen_dnsbl_sites, reject_rbl_client):
 *     "127.0.0.[2..11]", "127.0.[2..15].[0;1]", "127.0.0.[10;11;20..30]".
 * Without codes, an answer counts when it lies in 127.0.0.0/8, except
 * 127.0.0.0 and 127.0.0.1 (never a listing, RFC 5782 2.1), 127.0.0.255 and
 * 127.255.255.0/24: those are the lists' error answers ("you query through a
 * public resolver", "over the query limit": Spamhaus 127.255.255.252-255,
 * dnswl.org 127.0.0.255), which must not reject (or allow) every client:
 * they never count, whatever the codes, and are logged as dnsbl_error. An
 * answer outside 127/8 (a resolver that forges NXDOMAIN answers) never
 * counts by default.
 *
 * A check asks every name under every zone at once, each a lookup of the
 * caller's resolver (the DNS cache is the resolver's), and ends when all have
 * answered, when an allowlist lists the client, or when the deadline passes:
 * then the lookups still out are cancelled (at the deadline, counted as
 * timeouts), so a slow or dead list fails open; temporary DNS failures fail
 * open too. Contract of a check (as dns.h): the callback never runs inside
 * dnsbl_check_client/domains(), runs once unless the check is cancelled,
 * its result is valid only during the call, and the check is freed when the
 * callback returns.
 *
 * Verdict: a client listed by any allowlist zone is DNSBL_ALLOWED (whatever
 * the blocklists say); else the first blocklist zone (in configuration
 * order, then name order) that lists a name gives DNSBL_LISTED; else
 * DNSBL_PASS.
 */
#ifndef CARTEIRO_POLICY_DNSBL_H
#define CARTEIRO_POLICY_DNSBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns/dns.h"
#include "util/buf.h"

struct event_base;

/* Items in one codes value. */
#define DNSBL_CODES_MAX 16
/* Longest TXT reason kept (printable ASCII). */
#define DNSBL_REASON_MAX 200
/* Longest zone name: the 64 octets of an IPv6 query name, a dot and the zone fit in a name. */
#define DNSBL_ZONE_MAX 180
/* Names asked under each zone in one check (the client, or the sender and HELO domains). */
#define DNSBL_NAMES_MAX 2

/* One item of a codes value. */
struct dnsbl_code {
	bool range;        /* lo..hi (host order); else the octet bitmaps */
	uint32_t lo, hi;
	uint8_t octet[4][32]; /* octet[i] bit v set: value v allowed in octet i */
};

struct dnsbl_codes {
	size_t n; /* 0: the default (see above) */
	struct dnsbl_code item[DNSBL_CODES_MAX];
};

/* A configured list: `dnsbl`, `rhsbl` or `dnswl ZONE [CODES]`. */
struct dnsbl_zone {
	char *zone; /* lower case, no trailing dot */
	struct dnsbl_codes codes;
};

struct dnsbl_list {
	struct dnsbl_zone *zones;
	size_t n;
};

/* Parse a codes value; 0, or -EINVAL with a reason in err. */
int dnsbl_codes_parse(struct slice s, struct dnsbl_codes *out, char *err, size_t errlen);
/* Does the answer a (IPv4, host order) count as a listing under codes? */
bool dnsbl_codes_match(const struct dnsbl_codes *codes, uint32_t a);
/* Is a one of the lists' error answers (127.0.0.255, 127.255.255.0/24)? */
bool dnsbl_answer_is_error(uint32_t a);
/* Is zone usable as a list (a domain name of at most DNSBL_ZONE_MAX octets)? */
bool dnsbl_zone_valid(struct slice zone);
/* Copy TXT data (untrusted) as a reason: printable ASCII, at most DNSBL_REASON_MAX. */
void dnsbl_reason_copy(char *dst, size_t dstlen, const char *txt, size_t len);

enum dnsbl_verdict {
	DNSBL_PASS,    /* listed nowhere (or nothing answered in time) */
	DNSBL_LISTED,  /* a blocklist lists a name */
	DNSBL_ALLOWED, /* an allowlist lists the client */
};

struct dnsbl_result {
	enum dnsbl_verdict verdict;
	const char *zone;    /* the zone that decided (LISTED, ALLOWED), else NULL */
	unsigned name_index; /* which of the names it listed */
	char answer[16];     /* the A record that matched, "127.0.0.2" */
	char reason[DNSBL_REASON_MAX + 1]; /* its TXT record, printable; "" when none */
	unsigned lookups;    /* names asked */
	unsigned timeouts;   /* lookups cancelled at the deadline */
	unsigned errors;     /* temporary DNS failures */
	const char *timed_out_zone; /* one zone that did not answer in time, for the log */
};

typedef void dnsbl_done_fn(void *arg, const struct dnsbl_result *res);

struct dnsbl_check;

/*
 * Check the client sa against the blocklists block and the allowlists allow
 * (either may be empty), within timeout_ms. sid names the session in log
 * lines. NULL only when out of memory.
 */
struct dnsbl_check *dnsbl_check_client(const struct dns_resolver *res, struct event_base *base,
				       const struct dnsbl_list *block,
				       const struct dnsbl_list *allow, const struct sockaddr *sa,
				       unsigned timeout_ms, const char *sid, dnsbl_done_fn *fn,
				       void *arg);
/*
 * Check the domains (at most DNSBL_NAMES_MAX, NULL entries skipped) against the
 * domain blocklists block, within timeout_ms. NULL only when out of memory.
 */
struct dnsbl_check *dnsbl_check_domains(const struct dns_resolver *res, struct event_base *base,
					const struct dnsbl_list *block,
					const char *const *domains, size_t ndomains,
					unsigned timeout_ms, const char *sid, dnsbl_done_fn *fn,
					void *arg);
/* Stop a check whose callback has not run: it never will. */
void dnsbl_check_cancel(struct dnsbl_check *check);

#endif
