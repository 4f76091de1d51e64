/*
 * dns: asynchronous DNS lookups on the event loop, with c-ares.
 *
 * One struct dns per process and event loop. c-ares' sockets are watched by
 * libevent events (ARES_OPT_SOCK_STATE_CB) and its timeouts by one timer, so
 * no lookup ever blocks the loop.
 *
 * Contract:
 *   - a callback never runs inside the dns_lookup_*() call that started it;
 *   - it runs exactly once, unless the request is cancelled first
 *     (dns_cancel) or the resolver freed (dns_free): then never;
 *   - the result it gets is valid only during the callback;
 *   - dns_lookup_*() returns NULL only when out of memory (no callback).
 *
 * Results are classified for a mail server (RFC 5321 5.1, RFC 7505):
 * NXDOMAIN and a bad name are permanent, SERVFAIL/REFUSED/timeouts/network
 * errors temporary, NODATA means "exists, but no record of that type" (for MX:
 * use the domain's own addresses, the implicit MX). The answer records are
 * untrusted input: dns_parse_mx() is the pure function that turns an MX answer
 * into our result, and is fuzzed.
 */
#ifndef CARTEIRO_DNS_DNS_H
#define CARTEIRO_DNS_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

struct event_base;
struct dns;
struct dns_req;

enum dns_status {
	DNS_OK,       /* records found */
	DNS_NODATA,   /* the name exists but has no record of this type */
	DNS_NXDOMAIN, /* the name does not exist (permanent) */
	DNS_TEMPFAIL, /* SERVFAIL, REFUSED, timeout, network: try again later */
	DNS_BADNAME,  /* not a usable domain name, or a malformed answer (permanent) */
};

/* More MX hosts than this: the lowest preferences are kept. */
#define DNS_MX_MAX 32
/* More addresses than this per host: the first ones are kept. */
#define DNS_ADDR_MAX 16
#define DNS_NAME_MAX 255
#define DNS_ERROR_MAX 128

struct dns_mx {
	char host[DNS_NAME_MAX + 1]; /* lower case, no trailing dot */
	unsigned pref;
};

struct dns_mx_result {
	enum dns_status status;
	bool null_mx;  /* RFC 7505 "MX 0 .": the domain accepts no mail (status DNS_OK, n 0) */
	size_t n;
	struct dns_mx mx[DNS_MX_MAX]; /* by preference; equal preferences in random order */
	char error[DNS_ERROR_MAX];    /* why, when status is not DNS_OK (for logs and DSNs) */
};

struct dns_addr_result {
	enum dns_status status;
	size_t n;
	/* IPv6 and IPv4 addresses (both families asked), with the port set. */
	struct sockaddr_storage addr[DNS_ADDR_MAX];
	socklen_t addrlen[DNS_ADDR_MAX];
	char error[DNS_ERROR_MAX];
};

typedef void dns_mx_fn(void *arg, const struct dns_mx_result *res);
typedef void dns_addr_fn(void *arg, const struct dns_addr_result *res);

/*
 * A resolver on base. servers: "HOST" or "HOST:PORT" or "[V6]:PORT" (the
 * dns-server key), nservers 0 for /etc/resolv.conf. NULL on error, with a
 * message in err.
 */
struct dns *dns_new(struct event_base *base, const char *const *servers, size_t nservers,
		    char *err, size_t errlen);
/* Cancel every request (no callback runs) and free the resolver. */
void dns_free(struct dns *dns);

/* MX records of domain (no trailing dot needed). */
struct dns_req *dns_lookup_mx(struct dns *dns, const char *domain, dns_mx_fn *fn, void *arg);
/* A and AAAA records of host (an IP literal is returned as is), each with port. */
struct dns_req *dns_lookup_addr(struct dns *dns, const char *host, uint16_t port,
				dns_addr_fn *fn, void *arg);
/* Forget a request whose callback has not run yet: it never will. */
void dns_cancel(struct dns_req *req);

/*
 * Turn a raw MX answer (abuf, alen: a DNS message) into out: sorted, equal
 * preferences shuffled, null MX recognised, names checked. Sets out->status
 * (DNS_OK, DNS_NODATA or DNS_BADNAME) and returns 0, or -EINVAL for a message
 * that does not parse (out->status DNS_BADNAME).
 * Also -ENOMEM (out->status DNS_TEMPFAIL). DNS_BADNAME with 0: MX records
 * exist but none names a usable host. A root exchange (".") anywhere makes the
 * domain a null MX. dns_lookup_mx() reports an answer that does not parse as
 * DNS_TEMPFAIL (a server bug, usually transient), not DNS_BADNAME.
 */
int dns_parse_mx(const unsigned char *abuf, size_t alen, struct dns_mx_result *out);

/* --- any record type (policy checks: SPF, DKIM, DMARC, DNSBL) ------------- */

/* Record types dns_lookup() asks for (their RFC 1035/3596 numbers). */
enum dns_type {
	DNS_T_A = 1,
	DNS_T_PTR = 12,
	DNS_T_MX = 15,
	DNS_T_TXT = 16,
	DNS_T_AAAA = 28,
};

/* More records than this of the asked type in one answer: the first ones are kept. */
#define DNS_RR_MAX 64
/* Longest TXT record kept (its character-strings joined); longer ones are cut. */
#define DNS_TXT_MAX 8192
/* A reversed address name under a zone: 32 nibbles of IPv6 (64 bytes) + zone. */
#define DNS_REVERSE_MAX 72

/* One record of the asked type. */
struct dns_rr {
	/* TXT: the record's character-strings joined, NUL-terminated (text may itself
	 * hold NUL bytes: use len). PTR and MX: the name, lower case, no trailing dot. */
	char *text;
	size_t len;    /* bytes in text */
	unsigned pref; /* MX preference */
	int family;    /* A: AF_INET, AAAA: AF_INET6, else 0 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
};

struct dns_result {
	enum dns_status status;
	enum dns_type type;
	/* Seconds the answer may be kept: the smallest TTL of the records, or for NXDOMAIN
	 * and NODATA the SOA's negative TTL (RFC 2308), 0 when unknown. */
	uint32_t ttl;
	size_t n;
	struct dns_rr *rr;       /* n records in answer order (MX not sorted) */
	bool cached;             /* served from the resolver's cache */
	char error[DNS_ERROR_MAX];
};

typedef void dns_result_fn(void *arg, const struct dns_result *res);

/*
 * Records of one type for name, with the same contract as the lookups above.
 * Answers (also NXDOMAIN and NODATA) are cached by TTL inside the resolver,
 * at most a day, so that repeated checks of one client or domain cost no
 * query; temporary failures are never cached. The cache is bounded (entries,
 * bytes, and the size of one answer): past the bound answers are not kept.
 */
struct dns_req *dns_lookup(struct dns *dns, const char *name, enum dns_type type,
			   dns_result_fn *fn, void *arg);

/*
 * Parse a raw answer (a DNS message) for records of type into out (which the
 * caller then owns: dns_result_clear). Sets status DNS_OK or DNS_NODATA from
 * the records, ttl, n, rr; returns 0, -EINVAL for a message that does not
 * parse (status DNS_BADNAME) or -ENOMEM (DNS_TEMPFAIL). Pure and fuzzed.
 */
int dns_parse_answer(const unsigned char *abuf, size_t alen, enum dns_type type,
		     struct dns_result *out);
/* Free the records of a result filled by dns_parse_answer(). */
void dns_result_clear(struct dns_result *res);

/*
 * The DNSBL/PTR form of an address under zone: "4.3.2.1.zone" for 1.2.3.4,
 * 32 nibbles for IPv6 (RFC 5782 2.1, 2.4); zone "in-addr.arpa"/"ip6.arpa" gives
 * the PTR name. sa is AF_INET or AF_INET6 (a v4-mapped IPv6 address counts as
 * IPv4). 0, or -EINVAL (family) / -ENAMETOOLONG.
 */
int dns_reverse_name(const struct sockaddr *sa, const char *zone, char *out, size_t outlen);

/*
 * The lookup interface that policy code (SPF, DKIM, DMARC, DNSBL) takes, so that
 * its tests can answer from a table instead of a server. The same contract as
 * dns_lookup(): never calls back inside lookup(), once unless cancelled.
 */
struct dns_resolver {
	struct dns_req *(*lookup)(void *ctx, const char *name, enum dns_type type,
				  dns_result_fn *fn, void *arg);
	void (*cancel)(void *ctx, struct dns_req *req);
	void *ctx;
};
/* A dns_resolver that asks dns. */
struct dns_resolver dns_resolver_of(struct dns *dns);

#endif
