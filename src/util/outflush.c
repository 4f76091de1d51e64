/*
 * outflush: the output of plain connections written once per loop pass. See outflush.h.
 */
#include "util/outflush.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>

struct outflush {
	struct event *ev; /* activated, never added: runs at the end of the pass */
	struct outflush_conn *head, *tail;
};

/* Write what c's output holds: drained -> written(); the socket full -> the bufferevent's
 * write event takes over; an error -> failed(). The callbacks may free c's owner. */
static void flush_one(struct outflush_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->waiting || evbuffer_get_length(out) == 0)
		return;
	if (bufferevent_get_enabled(c->bev) & EV_WRITE) {
		/* The owner turned the bufferevent's writing on itself: it writes, and
		 * outflush_written() gives the writing back to us once it is drained. */
		c->waiting = true;
		return;
	}
	/* A socket bufferevent keeps the front of its output frozen except while it writes. */
	evbuffer_unfreeze(out, 1);
	errno = 0;
	int n = evbuffer_write(out, bufferevent_getfd(c->bev));
	int err = errno;
	evbuffer_freeze(out, 1);
	if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
		c->failed(c->bev, BEV_EVENT_WRITING | BEV_EVENT_ERROR, c->arg);
		return;
	}
	if (evbuffer_get_length(out) > 0) {
		c->waiting = true;
		bufferevent_enable(c->bev, EV_WRITE);
		return;
	}
	c->written(c->bev, c->arg);
}

static void outflush_run(evutil_socket_t fd, short what, void *arg)
{
	struct outflush *of = arg;
	(void)fd;
	(void)what;

	/* A callback may queue more (a reply after a drained output) or detach a
	 * connection: each is taken off the queue before it is written. */
	while (of->head) {
		struct outflush_conn *c = of->head;
		of->head = c->next;
		if (!of->head)
			of->tail = NULL;
		c->next = NULL;
		c->queued = false;
		flush_one(c);
	}
}

/* Queue c for the end of the pass (unless it is queued, or the write event has its output). */
static void enqueue(struct outflush_conn *c)
{
	struct outflush *of = c->of;

	if (c->queued || c->waiting)
		return;
	c->queued = true;
	c->next = NULL;
	if (of->tail) {
		of->tail->next = c;
	} else {
		of->head = c;
		event_active(of->ev, EV_WRITE, 0);
	}
	of->tail = c;
}

/* Output was added. */
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	(void)buf;
	if (info->n_added > 0)
		enqueue(arg);
}

struct outflush *outflush_new(struct event_base *base)
{
	struct outflush *of = calloc(1, sizeof *of);
	if (!of)
		return NULL;
	of->ev = event_new(base, -1, 0, outflush_run, of);
	if (!of->ev) {
		free(of);
		return NULL;
	}
	return of;
}

void outflush_free(struct outflush *of)
{
	if (!of)
		return;
	event_free(of->ev);
	free(of);
}

int outflush_attach(struct outflush *of, struct outflush_conn *c, struct bufferevent *bev,
		    bufferevent_data_cb written, bufferevent_event_cb failed, void *arg)
{
	*c = (struct outflush_conn){
		.bev = bev, .written = written, .failed = failed, .arg = arg,
	};
	c->cb = evbuffer_add_cb(bufferevent_get_output(bev), on_output, c);
	if (!c->cb)
		return -1;
	c->of = of;
	bufferevent_disable(bev, EV_WRITE);
	return 0;
}

void outflush_detach(struct outflush_conn *c)
{
	struct outflush *of = c->of;

	if (!of)
		return;
	if (c->queued) {
		struct outflush_conn **pp = &of->head, *prev = NULL;
		while (*pp != c) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = c->next;
		if (of->tail == c)
			of->tail = prev;
	}
	evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->cb);
	*c = (struct outflush_conn){ 0 };
}

void outflush_written(struct outflush_conn *c)
{
	if (!c->of || !c->waiting)
		return;
	c->waiting = false;
	bufferevent_disable(c->bev, EV_WRITE);
	/* Anything added since the bufferevent's last write goes out at the end of this pass. */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
		enqueue(c);
}
