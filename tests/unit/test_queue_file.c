/*
 * Unit tests of the queue file format: write/parse round trips, damaged
 * files refused, in-place status updates, queue ids.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "queue/queue_file.h"
#include "smtpd/smtp_command.h"
#include "unit.h"

static void sample_envelope(struct envelope *env)
{
	struct queue_id_gen g;
	envelope_init(env);
	queue_id_init(&g, 3);
	queue_id_next(&g, env->id);
	env->arrival_sec = 1795305443;
	env->arrival_usec = 328299;
	envelope_set(&env->client_ip, "192.0.2.7");
	envelope_set(&env->helo, "client.example.org");
	envelope_set(&env->protocol, "ESMTP");
	envelope_set(&env->sender, "alice@example.org");
	env->body_8bit = true;
	env->ret = 'H';
	envelope_set(&env->envid, "QQ314159");
	envelope_add_rcpt(env, RCPT_LOCAL, "demo@example.test", "Demo+x@example.test",
			  SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, "rfc822;demo+x@example.test");
	envelope_add_rcpt(env, RCPT_REMOTE, "bob@remote.test", NULL, 0, NULL);
	/* A field holding bytes that would break a line- or escape-based format. */
	envelope_add_rcpt(env, RCPT_REMOTE, "\"a\\\"b\nR5:-Lx@y\"@remote.test", NULL, 0, NULL);
}

/* Serialize env plus a message into a complete file image. */
static void build_file(const struct envelope *env, const char *msg, struct buf *out)
{
	size_t len_off;
	char digits[20];
	buf_init(out, 1 << 20);
	CHECK_INT(queue_file_write_header(env, out, &len_off), 0);
	buf_append_str(out, msg);
	buf_append(out, QUEUE_FILE_TRAILER, QUEUE_FILE_TRAILER_LEN);
	queue_file_format_length(strlen(msg), digits);
	memcpy(out->data + len_off, digits, 20);
}

static int write_tmp(const struct buf *b)
{
	char path[] = "/tmp/carteiro-qf-XXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	if (write(fd, b->data, b->len) != (ssize_t)b->len)
		return -1;
	return fd;
}

TEST(round_trip)
{
	struct envelope env, got;
	struct buf b;
	const char *msg = "Subject: x\r\n\r\nbody\r\n";

	sample_envelope(&env);
	build_file(&env, msg, &b);
	int fd = write_tmp(&b);
	envelope_init(&got);
	CHECK_INT(queue_file_read_envelope(fd, &got), 0);
	CHECK_STR(got.id, env.id);
	CHECK_INT(got.arrival_sec, 1795305443);
	CHECK_INT(got.arrival_usec, 328299);
	CHECK_STR(got.client_ip, "192.0.2.7");
	CHECK_STR(got.helo, "client.example.org");
	CHECK_STR(got.protocol, "ESMTP");
	CHECK_STR(got.sender, "alice@example.org");
	CHECK(got.body_8bit);
	CHECK(!got.smtputf8);
	CHECK_INT(got.ret, 'H');
	CHECK_STR(got.envid, "QQ314159");
	CHECK_INT(got.nrcpts, 3);
	CHECK_STR(got.rcpts[0].address, "demo@example.test");
	CHECK_STR(got.rcpts[0].orig, "Demo+x@example.test");
	CHECK_INT(got.rcpts[0].notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
	CHECK_STR(got.rcpts[0].orcpt, "rfc822;demo+x@example.test");
	CHECK_INT(got.rcpts[0].kind, RCPT_LOCAL);
	CHECK_INT(got.rcpts[0].status, RCPT_PENDING);
	CHECK(got.rcpts[1].orig == NULL);
	CHECK_STR(got.rcpts[2].address, "\"a\\\"b\nR5:-Lx@y\"@remote.test");
	CHECK_INT(got.msg_size, strlen(msg));
	char back[64] = { 0 };
	CHECK_INT(pread(fd, back, got.msg_size, got.msg_offset), (long)strlen(msg));
	CHECK_STR(back, msg);
	CHECK_INT(envelope_pending(&got, RCPT_LOCAL), 1);
	CHECK_INT(envelope_pending(&got, RCPT_REMOTE), 2);
	CHECK_INT(envelope_pending(&got, 0), 3);

	/* The status byte is updated in place and read back. */
	CHECK_INT(queue_file_set_status(fd, &got.rcpts[1], RCPT_DELIVERED), 0);
	struct envelope again;
	envelope_init(&again);
	CHECK_INT(queue_file_read_envelope(fd, &again), 0);
	CHECK_INT(again.rcpts[0].status, RCPT_PENDING);
	CHECK_INT(again.rcpts[1].status, RCPT_DELIVERED);
	CHECK_INT(again.rcpts[2].status, RCPT_PENDING);
	CHECK_INT(envelope_pending(&again, RCPT_REMOTE), 1);

	/* 'W' (delay notice sent) is still pending. */
	CHECK_INT(queue_file_set_status(fd, &got.rcpts[2], RCPT_WARNED), 0);
	envelope_free(&again);
	envelope_init(&again);
	CHECK_INT(queue_file_read_envelope(fd, &again), 0);
	CHECK_INT(again.rcpts[2].status, RCPT_WARNED);
	CHECK_INT(envelope_pending(&again, RCPT_REMOTE), 1);
	CHECK_INT(envelope_pending(&again, 0), 2);

	close(fd);
	envelope_free(&again);
	envelope_free(&got);
	envelope_free(&env);
	buf_free(&b);
}

TEST(null_sender_and_empty_message)
{
	struct envelope env, got;
	struct buf b;

	sample_envelope(&env);
	envelope_set(&env.sender, "");
	build_file(&env, "", &b);
	int fd = write_tmp(&b);
	envelope_init(&got);
	CHECK_INT(queue_file_read_envelope(fd, &got), 0);
	CHECK_STR(got.sender, "");
	CHECK_INT(got.msg_size, 0);
	close(fd);
	envelope_free(&got);
	envelope_free(&env);
	buf_free(&b);
}

/* Every proper prefix of a valid header needs more bytes or is refused; never accepted. */
TEST(truncated_headers_never_parse)
{
	struct envelope env, got;
	struct buf b;

	sample_envelope(&env);
	build_file(&env, "x\r\n", &b);
	envelope_init(&got);
	CHECK_INT(queue_file_parse_header(b.data, b.len, &got), 0);
	size_t header_len = (size_t)got.msg_offset;
	for (size_t n = 0; n < header_len; n++) {
		int r = queue_file_parse_header(b.data, n, &got);
		CHECK_MSG(r == -EAGAIN || r == -EINVAL, "prefix %zu gave %d", n, r);
	}
	envelope_free(&got);
	envelope_free(&env);
	buf_free(&b);
}

struct damage {
	const char *name;
	const char *text; /* header section up to the M record */
};

TEST(damaged_files_refused)
{
	static const struct damage cases[] = {
		{ "no version", "Q12:0123456789AB\n" },
		{ "wrong version", "V16:carteiro-queue-9\n" },
		{ "length past field max", "V16:carteiro-queue-1\nS99999:" },
		{ "missing newline", "V16:carteiro-queue-1\nS3:abcX" },
		{ "non-digit length", "V16:carteiro-queue-1\nSx:a\n" },
		{ "unknown record", "V16:carteiro-queue-1\nZ1:a\n" },
		{ "bad status", "V16:carteiro-queue-1\nR5:?Lx@y\n" },
		{ "bad kind", "V16:carteiro-queue-1\nR5:-Qx@y\n" },
		{ "option before recipient", "V16:carteiro-queue-1\nO3:a@b\n" },
		{ "NUL in a field", "V16:carteiro-queue-1\nS3:a\0b\n" },
		{ "duplicate sender", "V16:carteiro-queue-1\nS0:\nS0:\n" },
		{ "bad arrival", "V16:carteiro-queue-1\nA3:1.2\n" },
		{ "bad id", "V16:carteiro-queue-1\nQ12:0123456789ab\n" },
		{ "no recipients",
		  "V16:carteiro-queue-1\nQ12:0123456789AB\nA17:1795305443.000001\nS0:\n"
		  "M00000000000000000000:" },
		{ "short M length",
		  "V16:carteiro-queue-1\nQ12:0123456789AB\nA17:1795305443.000001\nS0:\n"
		  "R5:-Lx@y\nM5:" },
		{ "length overflow", "V16:carteiro-queue-1\nS99999999999999999999999:" },
	};
	struct envelope got;
	envelope_init(&got);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = strlen(cases[i].text);
		if (strcmp(cases[i].name, "NUL in a field") == 0)
			len = 28;
		int r = queue_file_parse_header(cases[i].text, len, &got);
		CHECK_MSG(r == -EINVAL, "%s: got %d", cases[i].name, r);
	}
	envelope_free(&got);
}

TEST(minimal_valid_header)
{
	const char *text = "V16:carteiro-queue-1\nQ12:0123456789AB\nA17:1795305443.000001\nS0:\n"
			   "R5:-Lx@y\nM00000000000000000003:";
	struct envelope got;
	envelope_init(&got);
	CHECK_INT(queue_file_parse_header(text, strlen(text), &got), 0);
	CHECK_INT(got.msg_size, 3);
	CHECK_INT(got.msg_offset, (long)strlen(text));
	CHECK_INT(got.rcpts[0].status_offset, (long)(strstr(text, "-Lx@y") - text));
	envelope_free(&got);
}

TEST(file_size_must_match)
{
	struct envelope env, got;
	struct buf b;

	sample_envelope(&env);
	build_file(&env, "abc\r\n", &b);
	/* One byte short: the trailer is damaged. */
	b.len--;
	int fd = write_tmp(&b);
	envelope_init(&got);
	CHECK_INT(queue_file_read_envelope(fd, &got), -EINVAL);
	close(fd);
	/* Garbage after the trailer. */
	b.len++;
	buf_append_str(&b, "junk");
	fd = write_tmp(&b);
	CHECK_INT(queue_file_read_envelope(fd, &got), -EINVAL);
	close(fd);
	envelope_free(&got);
	envelope_free(&env);
	buf_free(&b);
}

TEST(queue_ids)
{
	struct queue_id_gen g;
	char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];

	queue_id_init(&g, 7);
	queue_id_next(&g, a);
	for (int i = 0; i < 10000; i++) {
		queue_id_next(&g, b);
		CHECK(strcmp(a, b) < 0); /* strictly increasing: names sort by arrival */
		memcpy(a, b, sizeof a);
	}
	CHECK(queue_id_valid(a));
	CHECK_INT(queue_id_slot(a), 7);
	CHECK_INT(strlen(a), QUEUE_ID_LEN);
	CHECK(!queue_id_valid("0123456789A"));
	CHECK(!queue_id_valid("0123456789ABC"));
	CHECK(!queue_id_valid("0123456789AI")); /* I is not in the alphabet */
	CHECK(!queue_id_valid("0123456789a1"));
	CHECK(!queue_id_valid("../../etc/pw"));
	CHECK(!queue_id_valid(""));
}

TEST(parse_tail_table)
{
	static const struct {
		const char *in;
		int ret;
		size_t skip;
		uint64_t pre;
	} cases[] = {
		{ "\nK0:\n", 0, 0, 0 },
		{ "\nJ3:a\r\n\nK0:\n", 0, 4, 3 },
		{ "\nJ0:\nK0:\n", 0, 0, 0 },
		{ "\nJ3:a\r\n", -EINVAL, 0, 0 },
		{ "\nJ9:a\r\n\nK0:\n", -EINVAL, 0, 0 },
		{ "\nJ:\nK0:\n", -EINVAL, 0, 0 },
		{ "\nJ99999999:", -EINVAL, 0, 0 },
		{ "\nK0:", -EINVAL, 0, 0 },
		{ "", -EINVAL, 0, 0 },
		{ "\nX3:abc\nK0:\n", -EINVAL, 0, 0 },
		{ "\nK8:0badf00d\n", 0, 0, 0 },
		{ "\nJ3:abc\nK8:ffffffff\n", 0, 4, 3 },
		{ "\nK8:0BADF00D\n", -EINVAL, 0, 0 }, /* lowercase only */
		{ "\nK8:0badf00\n", -EINVAL, 0, 0 },
		{ "\nK8:0badf00dx", -EINVAL, 0, 0 },
		{ "\nK8:0badf0 d\n", -EINVAL, 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t skip, tail;
		uint64_t pre;
		int r = queue_file_parse_tail(cases[i].in, strlen(cases[i].in), &skip, &pre, &tail);
		CHECK_MSG(r == cases[i].ret, "case %zu: %d", i, r);
		if (r == 0) {
			CHECK_INT(pre, cases[i].pre);
			if (pre)
				CHECK_INT(skip, cases[i].skip);
			CHECK_INT(tail, strlen(cases[i].in));
		}
	}
	/* Bytes after the trailer are not ours: the caller sees tail_len short of the file. */
	size_t skip, tail;
	uint64_t pre;
	CHECK_INT(queue_file_parse_tail("\nK0:\nzz", 7, &skip, &pre, &tail), 0);
	CHECK_INT(tail, 5);
}

TEST(crc_leaves_out_the_length_digits_and_does_not_depend_on_the_chunks)
{
	char data[300];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)(i * 7);
	uint64_t digits = 100;
	uint32_t whole = queue_file_crc(0, 0, data, sizeof data, digits);
	/* Fed in every split, the same. */
	for (size_t cut = 0; cut <= sizeof data; cut += 13) {
		uint32_t c = queue_file_crc(0, 0, data, cut, digits);
		c = queue_file_crc(c, cut, data + cut, sizeof data - cut, digits);
		CHECK_MSG(c == whole, "cut at %zu", cut);
	}
	/* The 20 digits do not count (they are patched after the header is written); the
	 * bytes around them do. */
	memset(data + digits, '9', 20);
	CHECK(queue_file_crc(0, 0, data, sizeof data, digits) == whole);
	data[digits - 1] ^= 1;
	CHECK(queue_file_crc(0, 0, data, sizeof data, digits) != whole);
	data[digits - 1] ^= 1;
	data[digits + 20] ^= 1;
	CHECK(queue_file_crc(0, 0, data, sizeof data, digits) != whole);

	char t[QUEUE_FILE_TRAILER_CRC_LEN + 1];
	queue_file_format_trailer_crc(0x0badf00d, t);
	CHECK_STR(t, "\nK8:0badf00d\n");
}

UNIT_MAIN()
