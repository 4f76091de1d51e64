/*
 * fuzz_dns_mx: libFuzzer target for dns_parse_mx (src/dns/dns.c).
 *
 * The input is a DNS message, as a server would answer an MX query. Every
 * result is checked against what the queue manager relies on; a violation
 * abort()s so that libFuzzer records the input:
 *   - the return value and status agree (0: OK, NODATA or BADNAME; -EINVAL:
 *     BADNAME; -ENOMEM: TEMPFAIL), and the error text is set exactly when the
 *     status is not DNS_OK;
 *   - a null MX has no hosts; NODATA and failures have no hosts;
 *   - DNS_OK (not null MX) has 1..DNS_MX_MAX hosts, sorted by preference, each
 *     a lower-case host name (LDH labels of 1-63 octets, no '-' at a label's
 *     ends, at most 253 octets, no trailing dot, last label not all digits),
 *     each listed once;
 *   - parsing again gives the same multiset of hosts (only ties may move).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool host_ok(const char *s)
{
	size_t len = strnlen(s, DNS_NAME_MAX + 1), label = 0;
	bool digits = true;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			if (i < len) {
				label = 0;
				digits = true;
			}
			continue;
		}
		char c = s[i];
		bool digit = c >= '0' && c <= '9';
		if (!((c >= 'a' && c <= 'z') || digit || c == '-'))
			return false;
		if ((label == 0 && c == '-') || ++label > 63)
			return false;
		digits &= digit;
	}
	return !digits;
}

static int by_host(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;
	int c = strcmp(x->host, y->host);
	return c ? c : (x->pref > y->pref) - (x->pref < y->pref);
}

static void check(const struct dns_mx_result *r, int ret)
{
	ASSERT(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
	if (ret == -EINVAL)
		ASSERT(r->status == DNS_BADNAME);
	if (ret == -ENOMEM)
		ASSERT(r->status == DNS_TEMPFAIL);
	if (ret == 0)
		ASSERT(r->status == DNS_OK || r->status == DNS_NODATA || r->status == DNS_BADNAME);
	ASSERT(strnlen(r->error, sizeof r->error) < sizeof r->error);
	ASSERT((r->status == DNS_OK) == (r->error[0] == '\0'));
	ASSERT(r->n <= DNS_MX_MAX);
	if (r->status != DNS_OK || r->null_mx) {
		ASSERT(r->n == 0);
		ASSERT(!r->null_mx || r->status == DNS_OK);
		return;
	}
	ASSERT(r->n >= 1);
	for (size_t i = 0; i < r->n; i++) {
		ASSERT(host_ok(r->mx[i].host));
		ASSERT(r->mx[i].pref <= 65535);
		if (i > 0)
			ASSERT(r->mx[i - 1].pref <= r->mx[i].pref);
		for (size_t j = 0; j < i; j++)
			ASSERT(strcmp(r->mx[i].host, r->mx[j].host) != 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so that ASan catches any read past the end. */
	unsigned char *copy = malloc(size ? size : 1);
	static struct dns_mx_result a, b;
	int ra, rb;

	if (copy == NULL)
		return 0;
	if (size)
		memcpy(copy, data, size);
	ra = dns_parse_mx(copy, size, &a);
	check(&a, ra);
	rb = dns_parse_mx(copy, size, &b);
	ASSERT(ra == rb && a.status == b.status && a.null_mx == b.null_mx && a.n == b.n);
	/* The same hosts; an equal-preference group may come out in another order. */
	if (a.n == b.n && a.n == DNS_MX_MAX && a.mx[a.n - 1].pref == b.mx[b.n - 1].pref) {
		/* A tie cut at DNS_MX_MAX may keep different hosts of the last preference. */
		for (size_t i = 0; i < a.n && a.mx[i].pref < a.mx[a.n - 1].pref; i++)
			ASSERT(a.mx[i].pref == b.mx[i].pref);
	} else {
		qsort(a.mx, a.n, sizeof a.mx[0], by_host);
		qsort(b.mx, b.n, sizeof b.mx[0], by_host);
		for (size_t i = 0; i < a.n; i++)
			ASSERT(strcmp(a.mx[i].host, b.mx[i].host) == 0 && a.mx[i].pref == b.mx[i].pref);
	}
	free(copy);
	return 0;
}
