/*
 * fuzz_smtp_command: libFuzzer target for smtpd/smtp_command.c.
 *
 * The input is split into lines at LF (a CR before it is dropped, as the line
 * reader would); each line, copied to a buffer of exactly its size so that
 * ASan sees any over-read, goes through smtp_command_parse and then, whatever
 * its verb, through every argument parser. Invariants (abort() if violated):
 *   - name and argument are views into the line that rebuild it;
 *   - a refused MAIL/RCPT leaves an empty result, an accepted one holds
 *     bounded, printable values, a valid address and consistent flags;
 *   - a UTF-8 address is accepted only with SMTPUTF8 (MAIL) or in an SMTPUTF8
 *     transaction (RCPT), and an SMTPUTF8 transaction never refuses what a
 *     plain one accepts;
 *   - BDAT results are in range and print back to an equal command;
 *   - xtext decodes, encodes and decodes again to the same bytes.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtp_command.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 32 || (unsigned char)s[i] > 126)
			return false;
	return true;
}

/* An accepted address means what its canonical text says. */
static void check_addr(const struct addr *a, unsigned flags)
{
	char path[ADDR_TEXT_MAX + 3];
	struct addr b;
	size_t consumed;

	if (a->null) {
		ASSERT(a->text[0] == '\0');
		return;
	}
	snprintf(path, sizeof(path), "<%s>", a->text);
	ASSERT(addr_parse_path(slice_from_cstr(path), flags, &b, &consumed) == ADDR_OK);
	ASSERT(strcmp(a->text, b.text) == 0 && strcmp(a->domain, b.domain) == 0);
}

static void fuzz_mail(struct slice arg)
{
	struct smtp_mail_args m;
	int addr_err = 1;
	int r = smtp_parse_mail(arg, &m, &addr_err);

	ASSERT(r <= 0 && r >= SMTP_CMD_ERR_NOT_ENABLED);
	ASSERT((r == SMTP_CMD_ERR_ADDR) == (addr_err != ADDR_OK));
	if (r < 0) {
		ASSERT(m.from.text[0] == '\0' && !m.from.null && !m.size_given && !m.smtputf8);
		ASSERT(m.envid[0] == '\0' && m.auth[0] == '\0' && m.body == SMTP_BODY_UNSPEC);
		return;
	}
	check_addr(&m.from, ADDR_ALLOW_NULL | ADDR_UTF8);
	ASSERT(!m.from.utf8 || m.smtputf8);
	ASSERT(m.size_given || m.size == 0);
	ASSERT(m.body <= SMTP_BODY_8BITMIME && m.ret <= SMTP_RET_HDRS);
	ASSERT(printable(m.envid, SMTP_ENVID_MAX));
	ASSERT(printable(m.auth, SMTP_AUTH_PARAM_MAX));
}

static void check_rcpt_ok(const struct smtp_rcpt_args *a, bool utf8)
{
	const unsigned others = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY;

	check_addr(&a->to, ADDR_ALLOW_POSTMASTER | (utf8 ? ADDR_UTF8 : 0));
	ASSERT(!a->to.null);
	ASSERT(!a->to.utf8 || utf8);
	ASSERT(a->notify == 0 || a->notify == SMTP_NOTIFY_NEVER || (a->notify & ~others) == 0);
	ASSERT(printable(a->orcpt, SMTP_ORCPT_MAX));
	ASSERT(a->orcpt[0] == '\0' || strchr(a->orcpt, ';') != NULL);
}

static void fuzz_rcpt(struct slice arg)
{
	struct smtp_rcpt_args a7, a8;
	int e7 = 1, e8 = 1;
	int r7 = smtp_parse_rcpt(arg, false, &a7, &e7);
	int r8 = smtp_parse_rcpt(arg, true, &a8, &e8);

	ASSERT(r7 <= 0 && r7 >= SMTP_CMD_ERR_NOT_ENABLED && r7 != SMTP_CMD_ERR_BODY);
	ASSERT(r8 <= 0 && r8 >= SMTP_CMD_ERR_PARAM_DUP);
	ASSERT((r8 == SMTP_CMD_ERR_ADDR) == (e8 != ADDR_OK));
	if (r7 == SMTP_CMD_ERR_NOT_ENABLED)
		ASSERT(e7 == ADDR_ERR_UTF8 && r8 != SMTP_CMD_ERR_ADDR);
	if (r7 < 0)
		ASSERT(a7.to.text[0] == '\0' && a7.notify == 0 && a7.orcpt[0] == '\0');
	if (r8 < 0)
		ASSERT(a8.to.text[0] == '\0' && a8.notify == 0 && a8.orcpt[0] == '\0');
	if (r7 == SMTP_CMD_OK) {
		check_rcpt_ok(&a7, false);
		ASSERT(r8 == SMTP_CMD_OK);
		ASSERT(strcmp(a7.to.text, a8.to.text) == 0 && a7.notify == a8.notify);
		ASSERT(strcmp(a7.orcpt, a8.orcpt) == 0);
	}
	if (r8 == SMTP_CMD_OK)
		check_rcpt_ok(&a8, true);
}

static void fuzz_bdat(struct slice arg)
{
	char again[64];
	uint64_t size, size2;
	bool last, last2;
	int r = smtp_parse_bdat(arg, &size, &last);

	if (r < 0) {
		ASSERT(r == SMTP_CMD_ERR_SYNTAX && size == 0 && !last);
		return;
	}
	ASSERT(r == SMTP_CMD_OK && size <= SMTP_BDAT_SIZE_MAX);
	snprintf(again, sizeof(again), "%" PRIu64 "%s", size, last ? " LAST" : "");
	ASSERT(smtp_parse_bdat(slice_from_cstr(again), &size2, &last2) == SMTP_CMD_OK);
	ASSERT(size2 == size && last2 == last);
}

static void fuzz_helo(struct slice arg)
{
	if (!smtp_helo_valid(arg))
		return;
	ASSERT(arg.len > 0 && arg.len <= ADDR_DOMAIN_MAX);
	for (size_t i = 0; i < arg.len; i++)
		ASSERT(arg.ptr[i] > 32 && arg.ptr[i] < 127);
}

static void fuzz_xtext(struct slice arg)
{
	static char dec[1024], dec2[1024];
	struct buf b;
	size_t n, n2;

	if (!xtext_decode(arg, dec, sizeof(dec), &n))
		return;
	ASSERT(n <= arg.len && memchr(dec, '\0', n) == NULL && dec[n] == '\0');
	buf_init(&b, 4 * sizeof(dec));
	ASSERT(xtext_encode((struct slice){ dec, n }, &b) == 0);
	ASSERT(xtext_decode(buf_slice(&b), dec2, sizeof(dec2), &n2));
	ASSERT(n2 == n && memcmp(dec, dec2, n) == 0);
	buf_free(&b);
}

static void fuzz_line(struct slice line)
{
	struct smtp_command cmd;

	smtp_command_parse(line, &cmd);
	ASSERT(cmd.verb >= SMTP_VERB_UNKNOWN && cmd.verb < SMTP_VERB_COUNT);
	ASSERT(cmd.name.ptr == line.ptr && memchr(cmd.name.ptr, ' ', cmd.name.len) == NULL);
	if (cmd.name.len == line.len) {
		ASSERT(cmd.arg.len == 0);
	} else {
		ASSERT(line.ptr[cmd.name.len] == ' ' && cmd.arg.ptr == line.ptr + cmd.name.len + 1);
		ASSERT(cmd.name.len + 1 + cmd.arg.len == line.len);
	}
	ASSERT(cmd.verb == SMTP_VERB_UNKNOWN || (cmd.name.len >= 4 && cmd.name.len <= 8));
	ASSERT(smtp_command_line_max(cmd.verb) >= 512);

	fuzz_mail(cmd.arg);
	fuzz_rcpt(cmd.arg);
	fuzz_bdat(cmd.arg);
	fuzz_helo(cmd.arg);
	fuzz_xtext(cmd.arg);
	/* The whole line too, so that inputs without a verb reach the parsers. */
	fuzz_mail(line);
	fuzz_rcpt(line);
	fuzz_bdat(line);
	fuzz_helo(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t start = 0;

	while (start <= size) {
		const char *nl = memchr(p + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - p) : size;
		size_t len = end - start;
		char *copy;

		if (nl && len > 0 && p[end - 1] == '\r')
			len--;
		copy = malloc(len ? len : 1);
		if (copy == NULL)
			return 0;
		if (len)
			memcpy(copy, p + start, len);
		fuzz_line((struct slice){ copy, len });
		free(copy);
		if (!nl)
			break;
		start = end + 1;
	}
	return 0;
}
