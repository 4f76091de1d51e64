/*
 * fuzz_dnsbl_codes: the parser of DNS list codes (the CODES of `dnsbl ZONE
 * CODES`, src/policy/dnsbl.c) and the matcher, and the TXT reason filter.
 *
 * Checks, beyond ASan and UBSan: a failure always has a message; a success
 * has 1 to DNSBL_CODES_MAX items, each range with lo <= hi; parsing again
 * gives the same result; the lists' error answers never match; when the
 * value is a plain list of addresses and ranges (no pattern), each range's
 * ends match and the addresses just outside match exactly when another item
 * covers them (checked against a linear model). The reason filter keeps
 * only printable ASCII, at most DNSBL_REASON_MAX bytes of it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "policy/dnsbl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

static bool in_ranges(const struct dnsbl_codes *c, uint32_t a)
{
	for (size_t i = 0; i < c->n; i++)
		if (a >= c->item[i].lo && a <= c->item[i].hi)
			return true;
	return false;
}

static void check_point(const struct dnsbl_codes *c, uint32_t a)
{
	bool model = in_ranges(c, a) && !dnsbl_answer_is_error(a);
	CHECK(dnsbl_codes_match(c, a) == model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dnsbl_codes c, again;
	char err[128] = "", err2[128];
	struct slice s = { (const char *)data, size };
	bool patterns = memchr(data, '[', size) != NULL;

	int r = dnsbl_codes_parse(s, &c, err, sizeof err);
	if (r < 0) {
		CHECK(err[0] != '\0');
	} else {
		CHECK(c.n >= 1 && c.n <= DNSBL_CODES_MAX);
		CHECK(dnsbl_codes_parse(s, &again, err2, sizeof err2) == 0);
		CHECK(memcmp(&c, &again, sizeof c) == 0);
		for (size_t i = 0; i < c.n; i++)
			CHECK(!c.item[i].range || c.item[i].lo <= c.item[i].hi);
		CHECK(!dnsbl_codes_match(&c, 0x7fffffffu) && !dnsbl_codes_match(&c, 0x7f0000ffu));
		if (!patterns) {
			for (size_t i = 0; i < c.n; i++) {
				CHECK(c.item[i].range);
				check_point(&c, c.item[i].lo);
				check_point(&c, c.item[i].hi);
				check_point(&c, c.item[i].lo - 1);
				check_point(&c, c.item[i].hi + 1);
			}
		}
	}

	char reason[DNSBL_REASON_MAX + 1];
	dnsbl_reason_copy(reason, sizeof reason, (const char *)data, size);
	size_t n = strlen(reason);
	CHECK(n <= DNSBL_REASON_MAX && n == (size < DNSBL_REASON_MAX ? size : DNSBL_REASON_MAX));
	for (size_t i = 0; i < n; i++)
		CHECK(reason[i] >= 0x20 && reason[i] < 0x7f);
	return 0;
}
