/*
 * Fuzz target: the queue file header parser (queue_file_parse_header).
 *
 * A queue file is written by us, but a damaged disk, a crash or an
 * administrator's editor can hand the queue manager anything. Invariants
 * checked on every accepted input:
 *   - the message offset lies within the input and is right after "M<20 digits>:";
 *   - every recipient's status byte offset points at its status byte;
 *   - writing the parsed envelope back and parsing it again gives the same envelope.
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
	}
	envelope_free(&env);
	envelope_free(&again);
	return 0;
}
