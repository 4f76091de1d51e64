/*
 * Unit tests of util/outflush.c: a plain socket bufferevent's output written
 * at the end of the loop pass without its write event; the write event only
 * for what the socket does not take at once, and given back once drained;
 * errors reported as the bufferevent would; detaching keeps the queue whole.
 *
 * The connections are socketpairs: the test reads the far end itself.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/outflush.h"
#include "unit.h"

struct conn {
	struct outflush_conn out;
	struct bufferevent *bev;
	int peer; /* the far end */
	int written, failed;
	short failed_what;
};

static void on_written(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	outflush_written(&c->out); /* as an owner's write callback does */
	c->written++;
}

static void on_failed(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	c->failed++;
	c->failed_what = what;
}

static bool conn_open(struct conn *c, struct event_base *base, struct outflush *of)
{
	int sv[2];
	memset(c, 0, sizeof *c);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return false;
	c->peer = sv[1];
	c->bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		return false;
	bufferevent_setcb(c->bev, NULL, on_written, on_failed, c);
	bufferevent_enable(c->bev, EV_READ);
	return outflush_attach(of, &c->out, c->bev, on_written, on_failed, c) == 0;
}

static void conn_close(struct conn *c)
{
	outflush_detach(&c->out);
	bufferevent_free(c->bev);
	if (c->peer >= 0)
		close(c->peer);
}

/* What the far end has received so far (up to cap bytes). */
static size_t peer_read(struct conn *c, char *buf, size_t cap)
{
	size_t got = 0;
	while (got < cap) {
		ssize_t n = recv(c->peer, buf + got, cap - got, MSG_DONTWAIT);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void one_pass(struct event_base *base)
{
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

TEST(replies_go_out_at_the_end_of_the_pass_without_the_write_event)
{
	struct event_base *base = event_base_new();
	struct outflush *of = outflush_new(base);
	struct conn c;
	char buf[256];

	CHECK(of != NULL);
	CHECK(conn_open(&c, base, of));
	CHECK(!(bufferevent_get_enabled(c.bev) & EV_WRITE));
	evbuffer_add_printf(bufferevent_get_output(c.bev), "250 first\r\n");
	evbuffer_add_printf(bufferevent_get_output(c.bev), "250 second\r\n");
	/* Nothing is written while the callback that added it runs. */
	CHECK_INT(peer_read(&c, buf, sizeof buf), 0);
	one_pass(base);
	size_t n = peer_read(&c, buf, sizeof buf);
	CHECK_INT(n, 23);
	CHECK(n == 23 && memcmp(buf, "250 first\r\n250 second\r\n", 23) == 0);
	CHECK_INT(c.written, 1);
	CHECK_INT(c.failed, 0);
	CHECK(!(bufferevent_get_enabled(c.bev) & EV_WRITE));
	/* Again, for the next reply. */
	evbuffer_add(bufferevent_get_output(c.bev), "221 bye\r\n", 9);
	one_pass(base);
	CHECK_INT(peer_read(&c, buf, sizeof buf), 9);
	CHECK_INT(c.written, 2);
	conn_close(&c);
	outflush_free(of);
	event_base_free(base);
}

TEST(output_the_socket_does_not_take_waits_for_the_write_event_then_comes_back)
{
	struct event_base *base = event_base_new();
	struct outflush *of = outflush_new(base);
	struct conn c;
	enum { TOTAL = 4 * 1024 * 1024 };
	static char data[TOTAL], got[TOTAL];

	for (size_t i = 0; i < TOTAL; i++)
		data[i] = (char)('a' + i % 26);
	CHECK(conn_open(&c, base, of));
	evbuffer_add(bufferevent_get_output(c.bev), data, TOTAL);
	one_pass(base);
	/* More than a socketpair buffers: the rest waits for the bufferevent's write event. */
	CHECK_INT(c.written, 0);
	CHECK(bufferevent_get_enabled(c.bev) & EV_WRITE);
	CHECK(evbuffer_get_length(bufferevent_get_output(c.bev)) > 0);
	/* Output added meanwhile goes after it, in order. */
	size_t n = 0;
	for (int rounds = 0; n < TOTAL && rounds < 100000; rounds++) {
		n += peer_read(&c, got + n, TOTAL - n);
		one_pass(base);
	}
	CHECK_INT(n, TOTAL);
	CHECK(memcmp(data, got, TOTAL) == 0);
	CHECK_INT(c.written, 1);
	CHECK(!(bufferevent_get_enabled(c.bev) & EV_WRITE));
	/* Back to direct writes. */
	evbuffer_add(bufferevent_get_output(c.bev), "250 ok\r\n", 8);
	one_pass(base);
	CHECK_INT(peer_read(&c, got, 64), 8);
	CHECK_INT(c.written, 2);
	CHECK(!(bufferevent_get_enabled(c.bev) & EV_WRITE));
	conn_close(&c);
	outflush_free(of);
	event_base_free(base);
}

TEST(a_failed_write_is_reported_as_the_bufferevent_would)
{
	struct event_base *base = event_base_new();
	struct outflush *of = outflush_new(base);
	struct conn c;

	signal(SIGPIPE, SIG_IGN);
	CHECK(conn_open(&c, base, of));
	bufferevent_disable(c.bev, EV_READ); /* the EOF alone, not the write, would be reported */
	close(c.peer);
	c.peer = -1;
	evbuffer_add(bufferevent_get_output(c.bev), "250 ok\r\n", 8);
	one_pass(base);
	CHECK_INT(c.failed, 1);
	CHECK_INT(c.failed_what, BEV_EVENT_WRITING | BEV_EVENT_ERROR);
	CHECK_INT(c.written, 0);
	conn_close(&c);
	outflush_free(of);
	event_base_free(base);
}

TEST(detaching_a_queued_connection_keeps_the_others_queued)
{
	struct event_base *base = event_base_new();
	struct outflush *of = outflush_new(base);
	struct conn c[3];
	char buf[64];

	for (int i = 0; i < 3; i++) {
		CHECK(conn_open(&c[i], base, of));
		evbuffer_add_printf(bufferevent_get_output(c[i].bev), "250 %d\r\n", i);
	}
	/* The middle one, then the last one (the queue's tail) leave before the pass. */
	outflush_detach(&c[1].out);
	outflush_detach(&c[2].out);
	CHECK(!outflush_attached(&c[1].out));
	one_pass(base);
	CHECK_INT(peer_read(&c[0], buf, sizeof buf), 7);
	CHECK_INT(c[0].written, 1);
	CHECK_INT(peer_read(&c[1], buf, sizeof buf), 0);
	CHECK_INT(c[1].written, 0);
	/* A connection queued after the tail left is written too. */
	CHECK(outflush_attach(of, &c[2].out, c[2].bev, on_written, on_failed, &c[2]) == 0);
	evbuffer_add(bufferevent_get_output(c[2].bev), "x", 1);
	one_pass(base);
	CHECK_INT(c[2].written, 1);
	for (int i = 0; i < 3; i++)
		conn_close(&c[i]);
	outflush_free(of);
	event_base_free(base);
}

UNIT_MAIN()
