/*
 * Fuzz target: the queue file header parser (queue_file_parse_header).
 *
 * A queue file is written by us, but a damaged disk, a crash or an
 * administrator's editor can hand the queue manager anything. Invariants
 * checked on every accepted input:
 *   - the message offset lies within the input and is right after "M<20 digits>:";
 *   - every recipient's status byte offset points at its status byte;
 *   - writing the parsed envelope back and parsing it again gives the same envelope;
 *   - the bytes after the message (J record, trailer) parse within bounds, and a J
 *     record written back parses to the same header lines.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_file.h"

static void same_or_abort(const struct envelope *a, const struct envelope *b)
{
	if (strcmp(a->id, b->id) || strcmp(a->sender, b->sender) || a->nrcpts != b->nrcpts ||
	    a->arrival_sec != b->arrival_sec || a->arrival_usec != b->arrival_usec ||
	    a->body_8bit != b->body_8bit || a->smtputf8 != b->smtputf8 || a->ret != b->ret)
		abort();
	for (size_t i = 0; i < a->nrcpts; i++) {
		const struct envelope_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
		if (strcmp(x->address, y->address) || x->status != y->status || x->kind != y->kind ||
		    x->notify != y->notify || !x->orig != !y->orig ||
		    (x->orig && strcmp(x->orig, y->orig)) || !x->orcpt != !y->orcpt ||
		    (x->orcpt && strcmp(x->orcpt, y->orcpt)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope env, again;
	const char *p = (const char *)data;

	/* The CRC of the K record, fed in two pieces, is the CRC fed at once (the writer feeds
	 * it chunk by chunk, the verifier 64 KiB at a time); the length digits, placed by the
	 * input, never count. */
	size_t cut = size ? data[0] % size : 0;
	uint64_t digits = size ? data[size - 1] : 0;
	uint32_t whole = queue_file_crc(0, 0, p, size, digits);
	if (queue_file_crc(queue_file_crc(0, 0, p, cut, digits), cut, p + cut, size - cut, digits) !=
	    whole)
		abort();

	envelope_init(&env);
	envelope_init(&again);
	if (queue_file_parse_header(p, size, &env) == 0) {
		if ((size_t)env.msg_offset > size || env.msg_offset < 22 ||
		    p[env.msg_offset - 22] != 'M' || p[env.msg_offset - 1] != ':')
			abort();
		for (size_t i = 0; i < env.nrcpts; i++)
			if ((size_t)env.rcpts[i].status_offset >= size ||
			    p[env.rcpts[i].status_offset] != env.rcpts[i].status)
				abort();
		struct buf b;
		size_t len_off;
		buf_init(&b, QUEUE_HEADER_MAX);
		if (queue_file_write_header(&env, &b, &len_off) == 0) {
			queue_file_format_length(env.msg_size, b.data + len_off);
			if (queue_file_parse_header(b.data, b.len, &again) != 0)
				abort();
			same_or_abort(&env, &again);
		}
		buf_free(&b);
		uint64_t end = (uint64_t)env.msg_offset + env.msg_size;
		size_t skip, tail;
		uint64_t pre;
		if (end <= size &&
		    queue_file_parse_tail(p + end, size - (size_t)end, &skip, &pre, &tail) == 0) {
			if (tail > size - (size_t)end || (pre && skip + pre > tail) ||
			    pre > QUEUE_PREPEND_MAX)
				abort();
			struct buf j;
			size_t skip2, tail2;
			uint64_t pre2;
			buf_init(&j, QUEUE_PREPEND_MAX + 64);
			if (queue_file_format_prepend(p + end + skip, (size_t)pre, &j) == 0 &&
			    buf_append(&j, QUEUE_FILE_TRAILER, QUEUE_FILE_TRAILER_LEN) == 0) {
				if (queue_file_parse_tail(j.data, j.len, &skip2, &pre2, &tail2) != 0 ||
				    pre2 != pre || tail2 != j.len ||
				    (pre && memcmp(j.data + skip2, p + end + skip, (size_t)pre) != 0))
					abort();
			}
			buf_free(&j);
		}
	}
	envelope_free(&env);
	envelope_free(&again);
	return 0;
}
