/*
 * fuzz_addr: libFuzzer target for mail/addr.c.
 *
 * The input is parsed as a Path and as a bare Mailbox with every combination
 * of the ADDR_* flags, and given to addr_domain_valid and addr_literal_valid.
 * Every success is checked against the invariants the rest of carteiro
 * relies on; a violation abort()s so that libFuzzer records the input:
 *   - the fields are bounded, NUL-free, free of control characters, and hold
 *     non-ASCII only with ADDR_UTF8 (the utf8 flag says so exactly);
 *   - the domain is lower-case and a valid Domain, or a valid literal;
 *   - the canonical text is never longer than what was written, and parses
 *     again (as a mailbox and as a path) to the same text, local part, domain
 *     and flags;
 *   - ADDR_UTF8 only ever accepts more, never changes a result;
 *   - a mailbox is also a path once bracketed, and a valid domain or literal
 *     makes a valid mailbox.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_addr(const struct addr *a, const struct addr *b)
{
	return strcmp(a->text, b->text) == 0 && strcmp(a->local, b->local) == 0 &&
	       strcmp(a->domain, b->domain) == 0 && a->null == b->null && a->quoted == b->quoted &&
	       a->literal == b->literal && a->utf8 == b->utf8;
}

/* A field is a C string inside its array, with no control character in it. */
static bool field_ok(const char *s, size_t size, bool utf8_allowed, bool *non_ascii)
{
	size_t n = strnlen(s, size);

	if (n == size)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c >= 0x80) {
			if (!utf8_allowed)
				return false;
			*non_ascii = true;
		}
	}
	return true;
}

static void check_success(const struct addr *a, unsigned flags, size_t written)
{
	bool non_ascii = false, ignored = false;
	struct addr b;
	char path[ADDR_TEXT_MAX + 3];
	size_t consumed, tlen;

	ASSERT(field_ok(a->local, sizeof(a->local), flags & ADDR_UTF8, &non_ascii));
	ASSERT(field_ok(a->domain, sizeof(a->domain), flags & ADDR_UTF8, &non_ascii));
	ASSERT(field_ok(a->text, sizeof(a->text), flags & ADDR_UTF8, &ignored));
	tlen = strlen(a->text);
	ASSERT(tlen <= written);

	if (a->null) {
		ASSERT(flags & ADDR_ALLOW_NULL);
		ASSERT(tlen == 0 && a->local[0] == '\0' && a->domain[0] == '\0');
		ASSERT(!a->quoted && !a->literal && !a->utf8);
		return;
	}
	if (a->domain[0] == '\0') {
		ASSERT(flags & ADDR_ALLOW_POSTMASTER);
		ASSERT(strcmp(a->local, "postmaster") == 0 && strcmp(a->text, "postmaster") == 0);
		ASSERT(!a->quoted && !a->literal && !a->utf8);
		return;
	}
	ASSERT(a->utf8 == non_ascii);
	ASSERT(strlen(a->local) <= ADDR_LOCAL_MAX && strlen(a->domain) <= ADDR_DOMAIN_MAX);
	ASSERT(tlen <= ADDR_PATH_MAX - 2);
	if (a->literal) {
		ASSERT(addr_literal_valid(slice_from_cstr(a->domain)));
	} else {
		ASSERT(addr_domain_valid(slice_from_cstr(a->domain), flags & ADDR_UTF8));
		for (const char *s = a->domain; *s; s++)
			ASSERT(!(*s >= 'A' && *s <= 'Z'));
	}
	if (!a->quoted) {
		ASSERT(tlen == strlen(a->local) + 1 + strlen(a->domain));
		ASSERT(strncmp(a->text, a->local, strlen(a->local)) == 0);
	} else {
		ASSERT(a->text[0] == '"');
	}
	ASSERT(strcmp(a->text + tlen - strlen(a->domain), a->domain) == 0);

	/* The canonical text means the same when it comes back. */
	ASSERT(addr_parse_mailbox(slice_from_cstr(a->text), flags & ADDR_UTF8, &b) == ADDR_OK);
	ASSERT(same_addr(a, &b));
	snprintf(path, sizeof(path), "<%s>", a->text);
	ASSERT(addr_parse_path(slice_from_cstr(path), flags & ADDR_UTF8, &b, &consumed) ==
	       ADDR_OK);
	ASSERT(same_addr(a, &b) && consumed == tlen + 2);
}

static bool has_non_ascii(struct slice in)
{
	for (size_t i = 0; i < in.len; i++)
		if ((unsigned char)in.ptr[i] >= 0x80)
			return true;
	return false;
}

static void fuzz_path(struct slice in, unsigned flags)
{
	struct addr a, b;
	size_t consumed = 99999, consumed8;
	int r = addr_parse_path(in, flags, &a, &consumed);

	ASSERT(r <= 0 && r >= ADDR_ERR_NULL);
	if (r < 0) {
		ASSERT(consumed == 0 && a.text[0] == '\0' && a.local[0] == '\0');
		ASSERT(r != ADDR_ERR_UTF8 || has_non_ascii(in));
		return;
	}
	ASSERT(consumed >= 2 && consumed <= in.len && consumed <= ADDR_PATH_MAX);
	ASSERT(in.ptr[0] == '<' && in.ptr[consumed - 1] == '>');
	check_success(&a, flags, consumed - 2);
	/* Same result on the path alone, whatever followed it. */
	ASSERT(addr_parse_path((struct slice){ in.ptr, consumed }, flags, &b, &consumed8) == 0);
	ASSERT(same_addr(&a, &b) && consumed8 == consumed);
	if (!(flags & ADDR_UTF8)) {
		ASSERT(addr_parse_path(in, flags | ADDR_UTF8, &b, &consumed8) == ADDR_OK);
		ASSERT(same_addr(&a, &b) && consumed8 == consumed);
	}
}

static void fuzz_mailbox(struct slice in, unsigned flags)
{
	static char path[ADDR_PATH_MAX + 1];
	struct addr a, b;
	size_t consumed;
	int r = addr_parse_mailbox(in, flags, &a);

	ASSERT(r <= 0 && r >= ADDR_ERR_NULL && r != ADDR_ERR_NULL);
	if (r < 0) {
		ASSERT(a.text[0] == '\0' && a.local[0] == '\0' && a.domain[0] == '\0');
		ASSERT(r != ADDR_ERR_UTF8 || has_non_ascii(in));
		return;
	}
	ASSERT(!a.null && a.domain[0] != '\0');
	check_success(&a, flags, in.len);
	if (!(flags & ADDR_UTF8)) {
		ASSERT(addr_parse_mailbox(in, flags | ADDR_UTF8, &b) == ADDR_OK);
		ASSERT(same_addr(&a, &b));
	}
	/* A mailbox, bracketed, is a path meaning the same. */
	ASSERT(in.len + 2 <= sizeof(path) - 1);
	path[0] = '<';
	memcpy(path + 1, in.ptr, in.len);
	path[in.len + 1] = '>';
	ASSERT(addr_parse_path((struct slice){ path, in.len + 2 }, flags, &b, &consumed) == 0);
	ASSERT(same_addr(&a, &b) && consumed == in.len + 2);
}

static void fuzz_domain(struct slice in)
{
	static char mbox[ADDR_PATH_MAX];
	bool d7 = addr_domain_valid(in, false), d8 = addr_domain_valid(in, true);
	bool lit = addr_literal_valid(in);
	struct addr a;

	ASSERT(!d7 || d8);
	ASSERT(!(lit && d8));
	if (!(d8 || lit) || in.len > ADDR_PATH_MAX - 4)
		return;
	mbox[0] = 'a';
	mbox[1] = '@';
	memcpy(mbox + 2, in.ptr, in.len);
	ASSERT(addr_parse_mailbox((struct slice){ mbox, in.len + 2 }, ADDR_UTF8, &a) == ADDR_OK);
	ASSERT(a.literal == lit && strlen(a.domain) == in.len);
	if (lit)
		ASSERT(memcmp(a.domain, in.ptr, in.len) == 0);
	if (d7)
		ASSERT(addr_parse_mailbox((struct slice){ mbox, in.len + 2 }, 0, &a) == ADDR_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so that ASan catches any read past the end. */
	char *copy = malloc(size ? size : 1);
	struct slice in;

	if (copy == NULL)
		return 0;
	if (size)
		memcpy(copy, data, size);
	in = (struct slice){ copy, size };
	for (unsigned flags = 0; flags < 8; flags++) {
		fuzz_path(in, flags);
		fuzz_mailbox(in, flags);
	}
	fuzz_domain(in);
	free(copy);
	return 0;
}
