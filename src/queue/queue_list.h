/*
 * queue_list: `carteiro queue list`, what is in the spool, read straight
 * from the files (no running server needed).
 */
#ifndef CARTEIRO_QUEUE_QUEUE_LIST_H
#define CARTEIRO_QUEUE_QUEUE_LIST_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "queue/queue_file.h"
#include "util/buf.h"

/* What only the running queue manager knows about a message (any field may be 0/NULL). */
struct queue_list_extra {
	const char *const *errors; /* per recipient: its last error */
	const bool *active;        /* per recipient: being delivered now */
	int64_t next_attempt;      /* unix time; 0: none planned */
	unsigned attempts;
};

/* The listing's parts, shared by the offline listing and the server's (`queue list`). */
void queue_list_format_header(struct buf *out);
void queue_list_format_message(struct buf *out, const struct envelope *env, time_t now,
			       const struct queue_list_extra *x);
void queue_list_format_footer(struct buf *out, size_t n, uint64_t total);

/* Print every message of spool to out. 0, or -errno if the spool cannot be read. */
int queue_list(const char *spool, FILE *out);

#endif
