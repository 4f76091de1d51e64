/*
 * netaddr: socket addresses and CIDR networks, parsed and printed.
 *
 * Accepted forms: "1.2.3.4:25", "[2001:db8::1]:25", "*:25" (all IPv4) and
 * "[::]:25" for listeners; "10.0.0.0/8", "::1/128", "192.0.2.7" (a host) for
 * networks. IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 networks.
 */
#ifndef CARTEIRO_UTIL_NETADDR_H
#define CARTEIRO_UTIL_NETADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/buf.h"

/* Room for "[ffff:...:255.255.255.255]:65535". */
#define NETADDR_TEXT_MAX 64

struct netaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

/* "host:port" with a numeric host; 0 or -EINVAL. */
int netaddr_parse_hostport(struct slice s, struct netaddr *out);
/* The address alone ("192.0.2.1", "2001:db8::1"); IPv4-mapped shown as IPv4. */
const char *netaddr_ip_text(const struct sockaddr *sa, char *dst, size_t dstlen);
/* "192.0.2.1:25" or "[2001:db8::1]:25". */
const char *netaddr_text(const struct sockaddr *sa, char *dst, size_t dstlen);
unsigned netaddr_port(const struct sockaddr *sa);

/* "a.b.c.d/n", "x::y/n" or a bare address (full-length prefix); 0 or -EINVAL. */
int cidr_parse(struct slice s, struct cidr *out);
bool cidr_match(const struct cidr *c, const struct sockaddr *sa);
/* The 16-byte key of an address (IPv4 as IPv4-mapped IPv6), for hashing and equality. */
void netaddr_key(const struct sockaddr *sa, uint8_t key[16]);
/* A hash of such a key (FNV-1a, folded), for the shared per-address tables. */
size_t netaddr_key_hash(const uint8_t key[16]);
/* Is this a loopback address (127/8, ::1, ::ffff:127/104)? */
bool netaddr_is_loopback(const struct sockaddr *sa);

#endif
