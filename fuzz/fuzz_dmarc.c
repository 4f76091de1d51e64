/*
 * fuzz_dmarc: libFuzzer target for the two parsers of policy/dmarc.c that
 * read untrusted text, and the Punycode conversion they rely on.
 *
 * The input is given, as it is, to:
 *   - dmarc_record_parse() (a TXT record from DNS): the result is 0 or
 *     -EINVAL; fields are in range, texts NUL-terminated and printable;
 *     usable agrees with p, sp and rua (RFC 7489 6.6.3 step 6); parsing
 *     twice gives the same record, and so does the record with an unknown
 *     tag appended;
 *   - dmarc_from_add() (a From field value) and dmarc_from_field(): the
 *     return value agrees with the status; an author domain is a valid,
 *     lower-case ASCII domain; a value that parses means the same with CFWS
 *     added before and after it; a field's value lies inside the field;
 *   - punycode_domain_to_ascii(): the output is lower-case ASCII of at most
 *     253 octets with labels of at most 63, and converts to itself again.
 * A violation abort()s so that libFuzzer records the input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "policy/dmarc.h"
#include "util/punycode.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool text_ok(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (n == size)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static bool same_record(const struct dmarc_record *a, const struct dmarc_record *b)
{
	return a->p == b->p && a->sp == b->sp && a->sp_invalid == b->sp_invalid &&
	       a->adkim_strict == b->adkim_strict && a->aspf_strict == b->aspf_strict &&
	       a->pct == b->pct && a->ri == b->ri && a->fo == b->fo && a->rf_afrf == b->rf_afrf &&
	       a->nrua == b->nrua && a->nruf == b->nruf && a->usable == b->usable &&
	       a->p_from_rua == b->p_from_rua;
}

static void fuzz_record(struct slice in)
{
	static char longer[DMARC_FROM_VALUE_MAX + 64];
	struct dmarc_record rec, again;
	int r = dmarc_record_parse(in, &rec);

	ASSERT(r == 0 || r == -EINVAL);
	if (r == 0) {
		ASSERT(rec.p <= DMARC_POLICY_REJECT && rec.sp <= DMARC_POLICY_REJECT);
		ASSERT(rec.pct <= 100);
		ASSERT(rec.fo != 0 && rec.fo < (1u << 4));
		ASSERT(text_ok(rec.rua, sizeof rec.rua) && text_ok(rec.ruf, sizeof rec.ruf));
		ASSERT(strnlen(rec.problem, sizeof rec.problem) < sizeof rec.problem);
		ASSERT(!rec.usable || (rec.p != DMARC_POLICY_UNSET && !rec.sp_invalid));
		ASSERT(!rec.p_from_rua ||
		       (rec.usable && rec.p == DMARC_POLICY_NONE && rec.nrua > 0));
		ASSERT(rec.usable || rec.nrua == 0);
		ASSERT(rec.nrua == 0 || rec.rua[0] != '\0');
	}
	ASSERT(dmarc_record_parse(in, &again) == r);
	ASSERT(r < 0 || same_record(&rec, &again));

	/* An unknown tag at the end changes nothing. */
	if (in.len + 16 > sizeof longer)
		return;
	memcpy(longer, in.ptr, in.len);
	memcpy(longer + in.len, "; zz=1", 6);
	ASSERT(dmarc_record_parse((struct slice){ longer, in.len + 6 }, &again) == r);
	ASSERT(r < 0 || same_record(&rec, &again));
}

static void check_from(const struct dmarc_from *f, int r)
{
	enum dmarc_from_status st = dmarc_from_result(f);

	ASSERT(r == 0 || r == -EINVAL);
	ASSERT(f->nfields == 1);
	ASSERT((r < 0) == (st == DMARC_FROM_SYNTAX));
	ASSERT(strnlen(f->domain, sizeof f->domain) <= DMARC_DOMAIN_MAX);
	if (f->domain[0]) {
		ASSERT(addr_domain_valid(slice_from_cstr(f->domain), false));
		for (const char *s = f->domain; *s; s++)
			ASSERT(!(*s >= 'A' && *s <= 'Z'));
		ASSERT(f->nmailboxes > 0);
	}
	if (st == DMARC_FROM_OK)
		ASSERT(f->domain[0] && f->nmailboxes > 0 && !f->several_domains && !f->no_domain);
	if (st == DMARC_FROM_EMPTY)
		ASSERT(f->nmailboxes == 0 && !f->domain[0]);
}

static void fuzz_from(struct slice in)
{
	static char wrapped[DMARC_FROM_VALUE_MAX + 64];
	struct dmarc_from f, g;
	struct slice value;
	int r;

	dmarc_from_init(&f);
	r = dmarc_from_add(&f, in);
	check_from(&f, r);

	/* CFWS around a value that parsed changes nothing. */
	if (r == 0 && in.len + 16 <= DMARC_FROM_VALUE_MAX) {
		bool crlf = in.len >= 2 && in.ptr[in.len - 2] == '\r' && in.ptr[in.len - 1] == '\n';
		size_t n = 0;
		memcpy(wrapped, " (a)\r\n ", 7);
		n = 7;
		memcpy(wrapped + n, in.ptr, in.len - (crlf ? 2 : 0));
		n += in.len - (crlf ? 2 : 0);
		memcpy(wrapped + n, " (b\\)) ", 7);
		n += 7;
		dmarc_from_init(&g);
		ASSERT(dmarc_from_add(&g, (struct slice){ wrapped, n }) == 0);
		ASSERT(dmarc_from_result(&g) == dmarc_from_result(&f));
		ASSERT(strcmp(g.domain, f.domain) == 0 && g.nmailboxes == f.nmailboxes);
	}

	if (dmarc_from_field(in, &value)) {
		ASSERT(value.ptr > in.ptr && value.ptr + value.len == in.ptr + in.len);
		ASSERT(value.ptr[-1] == ':');
	}
}

static void fuzz_punycode(struct slice in)
{
	char out[DMARC_DOMAIN_MAX + 1], again[DMARC_DOMAIN_MAX + 1];
	size_t label = 0, n;
	int r = punycode_domain_to_ascii(in, out, sizeof out);

	ASSERT(r == 0 || r == -EINVAL || r == -ENAMETOOLONG);
	if (r < 0) {
		ASSERT(out[0] == '\0');
		return;
	}
	n = strlen(out);
	ASSERT(n > 0 && n <= 253);
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)out[i];
		if (c == '.' || c == '\0') {
			ASSERT(label > 0 && label <= 63);
			label = 0;
			continue;
		}
		ASSERT(c < 0x80 && !(c >= 'A' && c <= 'Z'));
		label++;
	}
	ASSERT(punycode_domain_to_ascii(slice_from_cstr(out), again, sizeof again) == 0);
	ASSERT(strcmp(out, again) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so that ASan catches any read past the end. */
	char *copy = malloc(size ? size : 1);
	struct slice in;

	if (!copy)
		return 0;
	if (size)
		memcpy(copy, data, size);
	in = (struct slice){ copy, size };
	fuzz_record(in);
	fuzz_from(in);
	fuzz_punycode(in);
	free(copy);
	return 0;
}
