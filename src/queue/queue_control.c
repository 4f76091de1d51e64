/*
 * queue_control: the control socket. See queue_control.h.
 */
#include "queue/queue_control.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "queue/queue_file.h"
#include "util/log.h"

#define CONTROL_NAME "control.sock"
#define REQUEST_MAX 128
#define ANSWER_MAX (64u * 1024 * 1024)
#define CONTROL_TIMEOUT_S 10

struct queue_control {
	struct evconnlistener *listener;
	queue_control_fn *fn;
	void *arg;
	char path[PATH_MAX];
};

static bool control_path(const char *spool, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", spool, CONTROL_NAME);
	return n > 0 && (size_t)n < outlen && (size_t)n < sizeof((struct sockaddr_un *)0)->sun_path;
}

static void on_write_done(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

/* Split "verb [id]" and check both: the verb is a word, the id a queue id. */
static bool parse_request(char *line, const char **verb, const char **id)
{
	char *sp = strchr(line, ' ');
	*verb = line;
	*id = "";
	if (sp) {
		*sp = '\0';
		*id = sp + 1;
		if (!queue_id_valid(*id))
			return false;
	}
	for (const char *p = line; *p; p++)
		if (*p < 'a' || *p > 'z')
			return false;
	return line[0] != '\0';
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct queue_control *qc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);

	if (eol.pos < 0) {
		if (evbuffer_get_length(in) > REQUEST_MAX)
			bufferevent_free(bev);
		return;
	}
	if (eol.pos > REQUEST_MAX) {
		bufferevent_free(bev);
		return;
	}
	char line[REQUEST_MAX + 2];
	size_t n = (size_t)eol.pos;
	evbuffer_remove(in, line, n + 1);
	line[n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[n - 1] = '\0';

	struct buf out;
	const char *verb, *id;
	int r;
	buf_init(&out, ANSWER_MAX);
	if (parse_request(line, &verb, &id)) {
		log_info("event=control_request verb=%s id=%s", verb, id[0] ? id : "-");
		r = qc->fn(qc->arg, verb, id, &out);
	} else {
		r = -EINVAL;
		buf_append_str(&out, "bad request\n");
	}
	struct evbuffer *o = bufferevent_get_output(bev);
	evbuffer_add_printf(o, "%s\n", r == 0 ? "ok" : "error");
	evbuffer_add(o, out.data, out.len);
	buf_free(&out);
	bufferevent_disable(bev, EV_READ);
	bufferevent_setcb(bev, NULL, on_write_done, on_event, qc);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct queue_control *qc = arg;
	struct ucred cred;
	socklen_t len = sizeof cred;
	(void)sa;
	(void)salen;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		log_warn("event=control_refused uid=%ld", (long)cred.uid);
		close(fd);
		return;
	}
	struct bufferevent *bev =
		bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		close(fd);
		return;
	}
	struct timeval tv = { CONTROL_TIMEOUT_S, 0 };
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_setcb(bev, on_read, NULL, on_event, qc);
	bufferevent_enable(bev, EV_READ);
}

struct queue_control *queue_control_new(struct event_base *base, const char *spool,
					queue_control_fn *fn, void *arg)
{
	struct queue_control *qc = calloc(1, sizeof *qc);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (!qc)
		return NULL;
	if (!control_path(spool, qc->path, sizeof qc->path)) {
		free(qc);
		errno = ENAMETOOLONG;
		return NULL;
	}
	memcpy(sun.sun_path, qc->path, strlen(qc->path) + 1);
	unlink(qc->path); /* a stale socket of a previous run */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
	    chmod(qc->path, 0660) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		free(qc);
		errno = e;
		return NULL;
	}
	qc->fn = fn;
	qc->arg = arg;
	qc->listener = evconnlistener_new(base, on_accept, qc, LEV_OPT_CLOSE_ON_FREE, 16, fd);
	if (!qc->listener) {
		close(fd);
		unlink(qc->path);
		free(qc);
		errno = ENOMEM;
		return NULL;
	}
	return qc;
}

void queue_control_free(struct queue_control *qc)
{
	if (!qc)
		return;
	evconnlistener_free(qc->listener);
	unlink(qc->path);
	free(qc);
}

int queue_control_request(const char *spool, const char *verb, const char *id, FILE *out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char path[PATH_MAX], req[REQUEST_MAX + 2];

	if (!control_path(spool, path, sizeof path))
		return -ENAMETOOLONG;
	int n = snprintf(req, sizeof req, "%s%s%s\n", verb, id && id[0] ? " " : "", id ? id : "");
	if (n < 0 || (size_t)n >= sizeof req)
		return -EINVAL;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
	    write(fd, req, (size_t)n) != n) {
		int e = errno;
		close(fd);
		return -e;
	}
	char buf[8192];
	ssize_t got;
	bool first = true, ok = false;
	size_t skip = 0;
	while ((got = read(fd, buf, sizeof buf)) > 0) {
		size_t off = 0;
		if (first) {
			/* The status line, "ok" or "error", is not for the user. */
			ok = got >= 3 && memcmp(buf, "ok\n", 3) == 0;
			skip = ok ? 3 : (got >= 6 && memcmp(buf, "error\n", 6) == 0 ? 6 : 0);
			off = skip;
			first = false;
		}
		fwrite(buf + off, 1, (size_t)got - off, out);
	}
	close(fd);
	if (first)
		return -EPIPE;
	return ok ? 0 : 1;
}
