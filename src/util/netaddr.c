/*
 * netaddr: parse and print socket addresses and CIDR networks.
 */
#include "util/netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "util/str.h"

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static int parse_port(struct slice s, uint16_t *port)
{
	uint64_t v;
	if (parse_u64(s, 65535, &v) < 0)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int netaddr_parse_hostport(struct slice s, struct netaddr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	struct slice hs, ps;
	uint16_t port;

	memset(out, 0, sizeof *out);
	if (s.len == 0)
		return -EINVAL;
	if (s.ptr[0] == '[') {
		const char *close = memchr(s.ptr, ']', s.len);
		if (!close)
			return -EINVAL;
		hs = (struct slice){ s.ptr + 1, (size_t)(close - s.ptr - 1) };
		size_t rest = s.len - (size_t)(close - s.ptr) - 1;
		if (rest < 2 || close[1] != ':')
			return -EINVAL;
		ps = (struct slice){ close + 2, rest - 1 };
		if (!slice_copy(host, sizeof host, hs) || parse_port(ps, &port) < 0)
			return -EINVAL;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		out->len = sizeof *sin6;
		return 0;
	}
	const char *colon = memrchr(s.ptr, ':', s.len);
	if (!colon)
		return -EINVAL;
	hs = (struct slice){ s.ptr, (size_t)(colon - s.ptr) };
	ps = (struct slice){ colon + 1, s.len - hs.len - 1 };
	if (parse_port(ps, &port) < 0)
		return -EINVAL;
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	out->len = sizeof *sin;
	if (hs.len == 1 && hs.ptr[0] == '*') {
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		return 0;
	}
	if (!slice_copy(host, sizeof host, hs) || inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

void netaddr_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(key, v4mapped_prefix, 12);
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	}
}

size_t netaddr_key_hash(const uint8_t key[16])
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 1099511628211ull;
	}
	return (size_t)(h ^ (h >> 29));
}

const char *netaddr_ip_text(const struct sockaddr *sa, char *dst, size_t dstlen)
{
	uint8_t key[16];

	netaddr_key(sa, key);
	if (sa->sa_family == AF_UNIX || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
		str_copy(dst, dstlen, "local");
		return dst;
	}
	if (memcmp(key, v4mapped_prefix, 12) == 0) {
		if (!inet_ntop(AF_INET, key + 12, dst, (socklen_t)dstlen))
			str_copy(dst, dstlen, "?");
	} else if (!inet_ntop(AF_INET6, key, dst, (socklen_t)dstlen)) {
		str_copy(dst, dstlen, "?");
	}
	return dst;
}

unsigned netaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

const char *netaddr_text(const struct sockaddr *sa, char *dst, size_t dstlen)
{
	char ip[INET6_ADDRSTRLEN];
	netaddr_ip_text(sa, ip, sizeof ip);
	if (strchr(ip, ':'))
		snprintf(dst, dstlen, "[%s]:%u", ip, netaddr_port(sa));
	else
		snprintf(dst, dstlen, "%s:%u", ip, netaddr_port(sa));
	return dst;
}

int cidr_parse(struct slice s, struct cidr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = memchr(s.ptr, '/', s.len);
	struct slice hs = s;
	uint64_t prefix = 0;
	bool have_prefix = false;

	memset(out, 0, sizeof *out);
	if (slash) {
		hs.len = (size_t)(slash - s.ptr);
		struct slice ps = { slash + 1, s.len - hs.len - 1 };
		if (parse_u64(ps, 128, &prefix) < 0)
			return -EINVAL;
		have_prefix = true;
	}
	if (!slice_copy(host, sizeof host, hs))
		return -EINVAL;
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		if (!have_prefix)
			prefix = 32;
		if (prefix > 32)
			return -EINVAL;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		if (!have_prefix)
			prefix = 128;
	} else {
		return -EINVAL;
	}
	out->prefix = (unsigned)prefix;
	/* Clear host bits so that 10.1.2.3/8 means 10.0.0.0/8. */
	size_t nbytes = out->family == AF_INET ? 4 : 16;
	for (size_t i = 0; i < nbytes; i++) {
		unsigned bits = i * 8 >= prefix ? 0 : (unsigned)(prefix - i * 8);
		if (bits < 8)
			out->addr[i] &= (uint8_t)(0xff00u >> bits);
	}
	return 0;
}

bool cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	uint8_t key[16];
	const uint8_t *a;
	unsigned prefix = c->prefix;

	netaddr_key(sa, key);
	if (c->family == AF_INET) {
		if (memcmp(key, v4mapped_prefix, 12) != 0)
			return false;
		a = key + 12;
	} else {
		a = key;
	}
	for (unsigned i = 0; prefix > 0; i++) {
		unsigned bits = prefix >= 8 ? 8 : prefix;
		uint8_t mask = (uint8_t)(0xff00u >> bits);
		if ((a[i] & mask) != (c->addr[i] & mask))
			return false;
		prefix -= bits;
	}
	return true;
}

bool netaddr_is_loopback(const struct sockaddr *sa)
{
	uint8_t key[16];
	static const uint8_t v6loop[16] = { [15] = 1 };

	netaddr_key(sa, key);
	if (memcmp(key, v4mapped_prefix, 12) == 0)
		return key[12] == 127;
	return memcmp(key, v6loop, 16) == 0;
}
