/*
 * fake_resolver: a struct dns_resolver that answers from a table, for the
 * tests of policy code (DKIM, and whatever else takes a dns_resolver).
 *
 * Each entry is {name, type, text, status}: a lookup of name and type (any
 * case) gets every matching entry's text as one record, status DNS_OK; an
 * entry with status DNS_TEMPFAIL makes the answer a temporary failure; no
 * entry is NXDOMAIN. Like the real resolver, it answers from the event loop
 * (a zero timer), never inside lookup(), and cancel() forgets a request.
 * Header-only: include it in one test program.
 */
#ifndef CARTEIRO_TESTS_FAKE_RESOLVER_H
#define CARTEIRO_TESTS_FAKE_RESOLVER_H

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dns.h"

struct fake_dns_entry {
	const char *name;
	enum dns_type type;
	const char *text;
	enum dns_status status; /* DNS_OK, or DNS_TEMPFAIL */
};

struct fake_dns {
	struct event_base *base;
	const struct fake_dns_entry *entries;
	size_t n;
	size_t lookups, cancelled, answered;
};

struct dns_req {
	struct fake_dns *fd;
	struct event *ev;
	char name[DNS_NAME_MAX + 1];
	enum dns_type type;
	dns_result_fn *fn;
	void *arg;
};

static void fake_dns_fire(evutil_socket_t sock, short what, void *arg)
{
	struct dns_req *req = arg;
	struct fake_dns *fd = req->fd;
	struct dns_rr rr[DNS_RR_MAX];
	struct dns_result res = { .status = DNS_NXDOMAIN, .type = req->type, .rr = rr };
	(void)sock;
	(void)what;

	memset(rr, 0, sizeof rr);
	for (size_t i = 0; i < fd->n; i++) {
		const struct fake_dns_entry *e = &fd->entries[i];
		if (e->type != req->type || strcasecmp(e->name, req->name) != 0)
			continue;
		if (e->status == DNS_TEMPFAIL) {
			res.status = DNS_TEMPFAIL;
			res.n = 0;
			break;
		}
		if (res.n < DNS_RR_MAX) {
			rr[res.n].text = (char *)e->text;
			rr[res.n].len = strlen(e->text);
			res.n++;
			res.status = DNS_OK;
		}
	}
	if (res.status != DNS_OK)
		snprintf(res.error, sizeof res.error, "%s",
			 res.status == DNS_TEMPFAIL ? "SERVFAIL (fake)" : "NXDOMAIN (fake)");
	fd->answered++;
	event_free(req->ev);
	dns_result_fn *fn = req->fn;
	void *cb_arg = req->arg;
	free(req);
	fn(cb_arg, &res);
}

static struct dns_req *fake_dns_lookup(void *ctx, const char *name, enum dns_type type,
				       dns_result_fn *fn, void *arg)
{
	static const struct timeval zero = { 0, 0 };
	struct fake_dns *fd = ctx;
	struct dns_req *req = calloc(1, sizeof *req);

	if (!req)
		return NULL;
	req->fd = fd;
	snprintf(req->name, sizeof req->name, "%s", name);
	req->type = type;
	req->fn = fn;
	req->arg = arg;
	req->ev = evtimer_new(fd->base, fake_dns_fire, req);
	if (!req->ev || evtimer_add(req->ev, &zero) < 0) {
		if (req->ev)
			event_free(req->ev);
		free(req);
		return NULL;
	}
	fd->lookups++;
	return req;
}

static void fake_dns_cancel(void *ctx, struct dns_req *req)
{
	struct fake_dns *fd = ctx;
	fd->cancelled++;
	event_free(req->ev);
	free(req);
}

static inline struct dns_resolver fake_dns_resolver(struct fake_dns *fd)
{
	return (struct dns_resolver){ fake_dns_lookup, fake_dns_cancel, fd };
}

#endif
