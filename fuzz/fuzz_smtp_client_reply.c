/*
 * fuzz_smtp_client_reply: libFuzzer target for deliver/smtp_client_reply.c.
 *
 * The input is split into lines at LF (a CR before it is dropped, as the
 * client's line reader does); each line, copied to a buffer of exactly its
 * size so that ASan sees any over-read, is fed to one reply parser (which
 * resets itself after each complete reply or error) and to the EHLO
 * extension parser. Invariants (abort() if violated):
 *   - the result is in range and agrees with a one-line model: a line is
 *     accepted iff it has three digits (first 2-5), then nothing, SP or '-',
 *     is within the length limit and continues a reply with the same code;
 *     it ends the reply iff it is not a '-' line;
 *   - the line count never passes SMTPC_REPLY_LINES_MAX;
 *   - line_text is a view into the line;
 *   - a complete reply has code 200-599, printable text shorter than
 *     SMTPC_TEXT_MAX, a well-formed status of the code's class, and
 *     temporary set exactly for 3xx/4xx; a one-line reply without a status
 *     code keeps its text (sanitized, truncated) exactly;
 *   - EHLO capabilities stay consistent (a usable mechanism implies AUTH).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/smtp_client_reply.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool line_ok(const char *p, size_t n)
{
	return n >= 3 && n <= SMTPC_REPLY_LINE_MAX && p[0] >= '2' && p[0] <= '5' && p[1] >= '0' &&
	       p[1] <= '9' && p[2] >= '0' && p[2] <= '9' && (n == 3 || p[3] == ' ' || p[3] == '-');
}

static void check_reply(const struct smtpc_reply_parser *p, const char *line, size_t n)
{
	struct smtpc_reply r;
	size_t slen = 0;

	smtpc_reply_get(p, &r);
	ASSERT(r.code >= 200 && r.code <= 599);
	ASSERT(strlen(r.text) < SMTPC_TEXT_MAX);
	for (const char *q = r.text; *q; q++)
		ASSERT(*q >= 32 && *q < 127);
	if (r.code / 100 == 3) {
		ASSERT(strcmp(r.status, "3.0.0") == 0); /* RFC 3463 has no class 3 */
	} else {
		ASSERT(smtpc_status_parse(slice_from_cstr(r.status), &slen) &&
		       slen == strlen(r.status));
		ASSERT(r.status[0] == (char)('0' + r.code / 100));
	}
	ASSERT(r.temporary == (r.code / 100 == 3 || r.code / 100 == 4));
	if (p->lines == 1 && n > 4 && !smtpc_status_parse((struct slice){ line + 4, n - 4 }, NULL)) {
		size_t want = n - 4 < SMTPC_TEXT_MAX - 1 ? n - 4 : SMTPC_TEXT_MAX - 1;
		ASSERT(strlen(r.text) == want);
		for (size_t i = 0; i < want; i++) {
			unsigned char c = (unsigned char)line[4 + i];
			ASSERT(r.text[i] == ((c >= 32 && c < 127) ? (char)c : '?'));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct smtpc_reply_parser rp;
	struct smtpc_caps caps;
	size_t start = 0;
	int prev = SMTPC_REPLY_DONE;
	int prev_code = 0;

	smtpc_reply_reset(&rp);
	smtpc_caps_reset(&caps);
	while (start < size) {
		const char *nl = memchr(p + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - p) : size;
		size_t len = end - start;

		if (nl && len > 0 && p[end - 1] == '\r')
			len--;
		char *line = malloc(len ? len : 1);
		if (!line)
			return 0;
		if (len)
			memcpy(line, p + start, len);

		unsigned lines_before = prev == SMTPC_REPLY_MORE ? rp.lines : 0;
		int r = smtpc_reply_feed(&rp, (struct slice){ line, len });
		ASSERT(r >= SMTPC_REPLY_ERR_TOO_MANY && r <= SMTPC_REPLY_DONE);
		ASSERT(rp.lines <= SMTPC_REPLY_LINES_MAX);
		bool continues = prev == SMTPC_REPLY_MORE;
		bool model_ok = line_ok(line, len) && lines_before < SMTPC_REPLY_LINES_MAX &&
				(!continues ||
				 (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0') ==
					 prev_code);
		ASSERT((r >= 0) == model_ok);
		if (r >= 0) {
			ASSERT((r == SMTPC_REPLY_DONE) == (len == 3 || line[3] == ' '));
			ASSERT(rp.lines == lines_before + 1);
			ASSERT(rp.line_text.len == 0 ||
			       (rp.line_text.ptr >= line && rp.line_text.ptr + rp.line_text.len <= line + len));
			smtpc_caps_line(&caps, rp.line_text);
			ASSERT(!caps.auth_mechs || caps.auth);
			ASSERT(caps.auth_mechs <= (SMTPC_AUTH_PLAIN | SMTPC_AUTH_LOGIN));
			ASSERT(!caps.size_max || caps.size);
			prev_code = rp.code;
		}
		if (r == SMTPC_REPLY_DONE)
			check_reply(&rp, line, len);
		prev = r;
		free(line);
		if (!nl)
			break;
		start = end + 1;
	}
	return 0;
}
