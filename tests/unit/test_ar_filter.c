/*
 * Unit tests of the Authentication-Results filter (smtpd/ar_filter.c): fields
 * that claim our authserv-id are removed with their continuation lines, all
 * others and the body are kept byte for byte, whatever the split of the input.
 */
#include <stdlib.h>
#include <string.h>

#include "smtpd/ar_filter.h"
#include "unit.h"

#define ME "mx.example.test"

struct sink {
	char data[8192];
	size_t len;
};

static int sink_write(void *ctx, const char *p, size_t n)
{
	struct sink *s = ctx;
	if (n > sizeof s->data - s->len)
		return -1;
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->data[s->len] = '\0';
	return 0;
}

/* Filter in all at once, then in every split into pieces of 1..7 octets: the same output. */
static const char *filtered(const char *in, unsigned *removed)
{
	static struct sink whole;
	struct ar_filter f;
	memset(&whole, 0, sizeof whole);
	ar_filter_init(&f, ME, sink_write, &whole);
	CHECK_INT(ar_filter_write(&f, in, strlen(in)), 0);
	CHECK_INT(ar_filter_end(&f), 0);
	*removed = f.removed;
	for (size_t step = 1; step <= 7; step++) {
		struct sink parts = { .len = 0 };
		ar_filter_init(&f, ME, sink_write, &parts);
		for (size_t off = 0; off < strlen(in); off += step) {
			size_t n = strlen(in) - off < step ? strlen(in) - off : step;
			CHECK_INT(ar_filter_write(&f, in + off, n), 0);
		}
		CHECK_INT(ar_filter_end(&f), 0);
		CHECK_STR(parts.data, whole.data);
		CHECK_INT(f.removed, *removed);
	}
	return whole.data;
}

TEST(a_field_with_our_authserv_id_is_removed_and_others_kept)
{
	unsigned removed;
	const char *out = filtered("From: a@example.org\r\n"
				   "Authentication-Results: mx.example.test; dkim=pass\r\n"
				   "Authentication-Results: mx.other.example; spf=fail\r\n"
				   "Subject: hi\r\n"
				   "\r\n"
				   "Authentication-Results: mx.example.test; in the body\r\n",
				   &removed);
	CHECK_STR(out, "From: a@example.org\r\n"
		       "Authentication-Results: mx.other.example; spf=fail\r\n"
		       "Subject: hi\r\n"
		       "\r\n"
		       "Authentication-Results: mx.example.test; in the body\r\n");
	CHECK_INT(removed, 1);
}

TEST(case_comments_folding_and_continuation_lines)
{
	unsigned removed;
	const char *out = filtered("aUTHENTICATION-rESULTS :  (a (nested) \\) comment)\r\n"
				   "\tMX.Example.Test;\r\n"
				   "  dkim=pass header.d=example.org;\r\n"
				   "\tdmarc=pass\r\n"
				   "X-Keep: 1\r\n"
				   "Authentication-Results:\r\n mx.example.test (ours);\r\n spf=pass\r\n"
				   "\r\n",
				   &removed);
	CHECK_STR(out, "X-Keep: 1\r\n\r\n");
	CHECK_INT(removed, 2);
}

TEST(near_misses_are_kept)
{
	unsigned removed;
	const char *in = "Authentication-Results: mx.example.test.evil; dkim=pass\r\n"
			 "Authentication-Results: mx.example.tes; dkim=pass\r\n"
			 "Authentication-Results-Original: mx.example.test; dkim=pass\r\n"
			 "Authentication-Result: mx.example.test; dkim=pass\r\n"
			 "X-Authentication-Results: mx.example.test; dkim=pass\r\n"
			 "Authentication-Results: \"other\"; none\r\n"
			 "Authentication-Results:\r\n"
			 "Subject: no id above\r\n"
			 "\r\n"
			 "body\r\n";
	CHECK_STR(filtered(in, &removed), in);
	CHECK_INT(removed, 0);
}

TEST(a_quoted_authserv_id_and_one_without_a_result)
{
	unsigned removed;
	const char *out = filtered("Authentication-Results: \"mx.example.test\"; none\r\n"
				   "Authentication-Results: mx.example.test\r\n"
				   "To: b@example.test\r\n"
				   "\r\n",
				   &removed);
	CHECK_STR(out, "To: b@example.test\r\n\r\n");
	CHECK_INT(removed, 2);
}

TEST(a_field_that_hides_its_authserv_id_past_the_bound_is_removed)
{
	char in[4096];
	size_t n = (size_t)snprintf(in, sizeof in, "Subject: x\r\nAuthentication-Results: (");
	while (n < AR_FILTER_HOLD_MAX + 64)
		in[n++] = 'x';
	snprintf(in + n, sizeof in - n, ")\r\n mx.example.test; dkim=pass\r\n\tmore\r\nTo: y\r\n\r\nbody\r\n");
	unsigned removed;
	CHECK_STR(filtered(in, &removed), "Subject: x\r\nTo: y\r\n\r\nbody\r\n");
	CHECK_INT(removed, 1);
}

TEST(a_message_that_ends_inside_the_header_section)
{
	unsigned removed;
	CHECK_STR(filtered("Subject: x\r\nAuthentication-Results: mx.example.test", &removed),
		  "Subject: x\r\n");
	CHECK_INT(removed, 1);
	CHECK_STR(filtered("Authentication-Results: (unfinished", &removed),
		  "Authentication-Results: (unfinished");
	CHECK_INT(removed, 0);
}

static int failing_write(void *ctx, const char *p, size_t n)
{
	(void)ctx, (void)p, (void)n;
	return -28;
}

TEST(an_output_error_is_returned_and_nothing_more_written)
{
	struct ar_filter f;
	ar_filter_init(&f, ME, failing_write, NULL);
	CHECK_INT(ar_filter_write(&f, "Subject: x\r\n", 12), -28);
	CHECK_INT(ar_filter_write(&f, "To: y\r\n", 7), -28);
	CHECK_INT(ar_filter_end(&f), -28);
}

UNIT_MAIN()
