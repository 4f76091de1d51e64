/*
 * fuzz_dns_answer: libFuzzer target for dns_parse_answer (src/dns/dns.c), the
 * parser of every answer the policy checks (SPF, DKIM, DMARC, DNSBL) read.
 *
 * The first byte picks the asked type (A, AAAA, MX, TXT, PTR); the rest is the
 * DNS message. Invariants, abort() on violation:
 *   - 0 gives DNS_OK with 1..DNS_RR_MAX records or DNS_NODATA with none;
 *     -EINVAL gives DNS_BADNAME, -ENOMEM DNS_TEMPFAIL, both with no records;
 *   - TXT texts are NUL-terminated at len and at most DNS_TXT_MAX bytes;
 *   - PTR and MX names have no upper-case letter and no trailing dot;
 *   - A and AAAA records carry their family;
 *   - parsing again gives the same result; dns_result_clear() frees all.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/dns.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum dns_type types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_PTR };

static void check(const struct dns_result *r, int ret, enum dns_type type)
{
	ASSERT(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
	ASSERT(r->type == type);
	ASSERT(r->n <= DNS_RR_MAX);
	if (ret == 0)
		ASSERT((r->status == DNS_OK && r->n > 0) || (r->status == DNS_NODATA && r->n == 0));
	else
		ASSERT(r->n == 0 && r->rr == NULL &&
		       r->status == (ret == -EINVAL ? DNS_BADNAME : DNS_TEMPFAIL));
	for (size_t i = 0; i < r->n; i++) {
		const struct dns_rr *rr = &r->rr[i];
		switch (type) {
		case DNS_T_A:
			ASSERT(rr->family == AF_INET && rr->text == NULL);
			break;
		case DNS_T_AAAA:
			ASSERT(rr->family == AF_INET6 && rr->text == NULL);
			break;
		case DNS_T_TXT:
			ASSERT(rr->text != NULL && rr->len <= DNS_TXT_MAX && rr->text[rr->len] == '\0');
			break;
		case DNS_T_MX:
		case DNS_T_PTR:
			ASSERT(rr->text != NULL && strlen(rr->text) == rr->len);
			ASSERT(rr->len == 0 || rr->text[rr->len - 1] != '.' ||
			       (rr->len >= 2 && rr->text[rr->len - 2] == '\\'));
			for (size_t k = 0; k < rr->len; k++)
				ASSERT(rr->text[k] < 'A' || rr->text[k] > 'Z');
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_result a, b;
	unsigned char *copy;
	enum dns_type type;
	int ra, rb;

	if (size < 1)
		return 0;
	type = types[data[0] % (sizeof types / sizeof types[0])];
	size--;
	/* An exact-size copy, so that ASan catches any read past the end. */
	copy = malloc(size ? size : 1);
	if (copy == NULL)
		return 0;
	if (size)
		memcpy(copy, data + 1, size);
	ra = dns_parse_answer(copy, size, type, &a);
	check(&a, ra, type);
	rb = dns_parse_answer(copy, size, type, &b);
	ASSERT(ra == rb && a.status == b.status && a.n == b.n && a.ttl == b.ttl);
	for (size_t i = 0; i < a.n; i++) {
		ASSERT(a.rr[i].len == b.rr[i].len && a.rr[i].pref == b.rr[i].pref);
		if (a.rr[i].text)
			ASSERT(memcmp(a.rr[i].text, b.rr[i].text, a.rr[i].len) == 0);
	}
	dns_result_clear(&a);
	dns_result_clear(&b);
	free(copy);
	return 0;
}
