/*
 * queue_control: the queue manager's control socket, <spool>/control.sock,
 * through which `carteiro queue ...` lists and steers the running queue.
 *
 * Protocol: the client sends one line "VERB [QUEUE-ID]\n" (VERB one of list,
 * show, flush, delete, hold, release, bounce); the server answers "ok\n" or
 * "error\n", then text lines, and closes. One request per connection.
 *
 * Access: the socket lives in the spool directory (mode 0700, the server's
 * user) and the server also checks the peer's credentials (SO_PEERCRED): only
 * root and the server's own user are served. Requests are limited in length,
 * and a client that sends nothing is dropped after a timeout.
 */
#ifndef CARTEIRO_QUEUE_QUEUE_CONTROL_H
#define CARTEIRO_QUEUE_QUEUE_CONTROL_H

#include <stdio.h>

#include "util/buf.h"

struct event_base;
struct queue_control;

/* Handle one request: write the answer's text into out; 0 or -errno (answered "error"). */
typedef int queue_control_fn(void *arg, const char *verb, const char *id, struct buf *out);

/* Listen on <spool>/control.sock. NULL on error (errno set). */
struct queue_control *queue_control_new(struct event_base *base, const char *spool,
					queue_control_fn *fn, void *arg);
void queue_control_free(struct queue_control *qc);

/*
 * Client side: send "verb id" to the server of spool and copy its answer to
 * out. Returns 0 (ok), 1 (the server answered error), or -errno when the
 * server cannot be reached.
 */
int queue_control_request(const char *spool, const char *verb, const char *id, FILE *out);

#endif
