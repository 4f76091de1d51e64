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

#endif
