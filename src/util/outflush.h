/*
 * outflush: write a plain socket bufferevent's output once per pass of the
 * event loop, straight to the socket, instead of through its write event.
 *
 * A bufferevent that is told to write adds its write event to epoll when
 * data is added (epoll_ctl), waits a loop turn for the socket to be writable
 * (it nearly always is), writes, and removes the event again (epoll_ctl): two
 * system calls and a turn of the loop for every reply of a request/reply
 * protocol (SMTP answers each command, POP3 too). With outflush the
 * bufferevent's writing stays disabled; every addition to its output queues
 * the connection, and one event per loop, activated (no system call) when
 * the first connection is queued, writes each queued output with one
 * writev at the end of the pass, pipelined replies included. Only output the
 * socket does not take at once (a client that does not read) goes back to
 * the bufferevent's write event, with its timeout; outflush_written() turns
 * that off again once it is drained.
 *
 * The owner's callbacks see what they would see from the bufferevent: its
 * write callback once the output is drained, its event callback with
 * BEV_EVENT_WRITING | BEV_EVENT_ERROR when the write fails. Either may free
 * the connection (outflush_detach first). TLS bufferevents are not for this:
 * their output must go through OpenSSL.
 */
#ifndef CARTEIRO_UTIL_OUTFLUSH_H
#define CARTEIRO_UTIL_OUTFLUSH_H

#include <event2/bufferevent.h>
#include <stdbool.h>

struct event_base;
struct evbuffer_cb_entry;
struct outflush;

/* One connection's link to its loop's outflush (embedded in the session). */
struct outflush_conn {
	struct outflush *of;           /* NULL: not attached */
	struct bufferevent *bev;
	struct evbuffer_cb_entry *cb;
	bufferevent_data_cb written;   /* the output is drained */
	bufferevent_event_cb failed;   /* the write failed */
	void *arg;
	struct outflush_conn *next;    /* in the queue of this pass */
	bool queued;
	bool waiting;                  /* left to the bufferevent's write event */
};

struct outflush *outflush_new(struct event_base *base);
void outflush_free(struct outflush *of);

/* Take over the writing of the plain socket bufferevent bev (0; -1: out of memory). */
int outflush_attach(struct outflush *of, struct outflush_conn *c, struct bufferevent *bev,
		    bufferevent_data_cb written, bufferevent_event_cb failed, void *arg);
/* Give the writing back (before bev is freed or replaced); safe when not attached. */
void outflush_detach(struct outflush_conn *c);
/* For the owner's write callback: the bufferevent drained what the socket did not take at
 * once; its write event goes off again. */
void outflush_written(struct outflush_conn *c);
/* Is the connection's writing ours? */
static inline bool outflush_attached(const struct outflush_conn *c)
{
	return c->of != NULL;
}

#endif
