/*
 * fake_dns: a struct dns_resolver answering from a table, for the policy
 * tests (SPF now; DKIM, DMARC, DNSBL later). Header-only, like unit.h.
 *
 * Contract (the one of dns.h): an answer is delivered from the event loop,
 * never inside lookup(), exactly once unless cancelled. Names compare
 * case-insensitively, one trailing dot ignored; PTR, MX and CNAME targets are
 * returned lower case without the trailing dot, as dns_lookup() does.
 *
 * Zone semantics follow the openspf test suite's own driver: a name's
 * entries are walked in the order added; a bare TIMEOUT entry times the query
 * out (DNS_TEMPFAIL) unless a record of the asked type came before it, and
 * ends the answer otherwise; a typed TIMEOUT times out that type only. A
 * name with no record of the type but a CNAME is followed (8 hops, then
 * DNS_TEMPFAIL, as a resolver reports a loop). Unknown name: NXDOMAIN; known
 * name without such records: NODATA; a label over 63 octets: DNS_BADNAME.
 */
#ifndef CARTEIRO_TESTS_FAKE_DNS_H
#define CARTEIRO_TESTS_FAKE_DNS_H

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dns.h"

#define FAKE_T_CNAME 5
#define FAKE_T_SPF 99
#define FAKE_T_TIMEOUT (-1)

struct fake_entry {
	char *name;
	int type;     /* DNS_T_*, FAKE_T_CNAME, FAKE_T_SPF or FAKE_T_TIMEOUT (bare) */
	bool timeout; /* a typed TIMEOUT */
	char *text;   /* TXT (joined), PTR/MX/CNAME target */
	size_t len;
	unsigned pref;
	int family;
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
};

struct fake_dns {
	struct event_base *base;
	struct fake_entry *e;
	size_t n, cap;
	unsigned queries;   /* lookups asked */
	unsigned pending;   /* answers not yet delivered nor cancelled */
	unsigned cancelled;
	char last[DNS_NAME_MAX + 2]; /* the last name asked */
};

struct fake_req {
	struct fake_dns *d;
	struct event *ev;
	dns_result_fn *fn;
	void *arg;
	struct dns_result res;
	struct dns_rr rr[DNS_RR_MAX];
};

static inline void fake_dns_init(struct fake_dns *d, struct event_base *base)
{
	memset(d, 0, sizeof *d);
	d->base = base;
}

static inline void fake_dns_clear(struct fake_dns *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->e[i].name);
		free(d->e[i].text);
	}
	free(d->e);
	d->e = NULL;
	d->n = d->cap = 0;
}

static inline char *fake_dns_name(const char *s, size_t len)
{
	char *p;

	if (len > 0 && s[len - 1] == '.')
		len--;
	p = malloc(len + 1);
	if (!p)
		abort();
	for (size_t i = 0; i < len; i++)
		p[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
	p[len] = '\0';
	return p;
}

static inline struct fake_entry *fake_dns_add(struct fake_dns *d, const char *name, int type)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->e = realloc(d->e, d->cap * sizeof *d->e);
		if (!d->e)
			abort();
	}
	struct fake_entry *e = &d->e[d->n++];
	memset(e, 0, sizeof *e);
	e->name = fake_dns_name(name, strlen(name));
	e->type = type;
	return e;
}

/* TXT (or SPF) with text of len bytes (may hold NULs). */
static inline void fake_dns_txt(struct fake_dns *d, const char *name, int type, const char *text,
				size_t len)
{
	struct fake_entry *e = fake_dns_add(d, name, type);
	e->text = malloc(len + 1);
	if (!e->text)
		abort();
	memcpy(e->text, text, len);
	e->text[len] = '\0';
	e->len = len;
}

/* A or AAAA from its text form; false if it does not parse. */
static inline bool fake_dns_addr(struct fake_dns *d, const char *name, const char *ip)
{
	struct fake_entry *e = fake_dns_add(d, name, DNS_T_A);
	if (inet_pton(AF_INET, ip, &e->addr.v4) == 1) {
		e->family = AF_INET;
		return true;
	}
	e->type = DNS_T_AAAA;
	e->family = AF_INET6;
	return inet_pton(AF_INET6, ip, &e->addr.v6) == 1;
}

/* PTR, MX or CNAME to target. */
static inline void fake_dns_target(struct fake_dns *d, const char *name, int type,
				   const char *target, unsigned pref)
{
	struct fake_entry *e = fake_dns_add(d, name, type);
	e->text = fake_dns_name(target, strlen(target));
	e->len = strlen(e->text);
	e->pref = pref;
}

/* A TIMEOUT entry: bare (type FAKE_T_TIMEOUT) or of one type. */
static inline void fake_dns_timeout(struct fake_dns *d, const char *name, int type)
{
	struct fake_entry *e = fake_dns_add(d, name, type);
	e->timeout = type != FAKE_T_TIMEOUT;
}

static inline void fake_dns_resolve(struct fake_dns *d, const char *qname, int type,
				    struct fake_req *q, int depth)
{
	char *name = fake_dns_name(qname, strlen(qname));
	const struct fake_entry *cname = NULL;
	bool known = false, seen = false;
	size_t label = 0;

	q->res.status = DNS_NODATA;
	for (const char *p = name;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label > 63)
				q->res.status = DNS_BADNAME;
			label = 0;
			if (!*p)
				break;
		} else {
			label++;
		}
	}
	for (size_t i = 0; i < d->n && q->res.status != DNS_BADNAME; i++) {
		const struct fake_entry *e = &d->e[i];
		if (strcmp(e->name, name) != 0)
			continue;
		known = true;
		if (e->type == FAKE_T_TIMEOUT) {
			if (!seen)
				q->res.status = DNS_TEMPFAIL;
			break;
		}
		if (e->type == FAKE_T_CNAME)
			cname = e;
		if (e->type != type)
			continue;
		seen = true;
		if (e->timeout) {
			q->res.status = DNS_TEMPFAIL;
			break;
		}
		if (q->res.n == DNS_RR_MAX)
			continue;
		struct dns_rr *rr = &q->rr[q->res.n++];
		rr->text = e->text;
		rr->len = e->len;
		rr->pref = e->pref;
		rr->family = e->family;
		memcpy(&rr->addr, &e->addr, sizeof rr->addr);
	}
	free(name);
	if (q->res.status == DNS_TEMPFAIL || q->res.status == DNS_BADNAME) {
		q->res.n = 0;
		return;
	}
	if (q->res.n > 0) {
		q->res.status = DNS_OK;
	} else if (cname && type != FAKE_T_CNAME) {
		if (depth >= 8) {
			q->res.status = DNS_TEMPFAIL;
			return;
		}
		fake_dns_resolve(d, cname->text, type, q, depth + 1);
	} else {
		q->res.status = known ? DNS_NODATA : DNS_NXDOMAIN;
	}
}

static inline void fake_dns_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct fake_req *q = arg;

	(void)fd;
	(void)what;
	q->d->pending--;
	q->fn(q->arg, &q->res);
	event_free(q->ev);
	free(q);
}

static inline struct dns_req *fake_dns_lookup(void *ctx, const char *name, enum dns_type type,
					      dns_result_fn *fn, void *arg)
{
	struct fake_dns *d = ctx;
	struct fake_req *q = calloc(1, sizeof *q);

	if (!q)
		return NULL;
	d->queries++;
	snprintf(d->last, sizeof d->last, "%s", name);
	q->d = d;
	q->fn = fn;
	q->arg = arg;
	q->res.type = type;
	q->res.rr = q->rr;
	fake_dns_resolve(d, name, (int)type, q, 0);
	if (q->res.status != DNS_OK)
		snprintf(q->res.error, sizeof q->res.error, "fake status %d", (int)q->res.status);
	q->ev = event_new(d->base, -1, 0, fake_dns_deliver, q);
	if (!q->ev) {
		free(q);
		return NULL;
	}
	event_active(q->ev, 0, 0);
	d->pending++;
	return (struct dns_req *)(void *)q;
}

static inline void fake_dns_cancel(void *ctx, struct dns_req *req)
{
	struct fake_dns *d = ctx;
	struct fake_req *q = (struct fake_req *)(void *)req;

	d->pending--;
	d->cancelled++;
	event_free(q->ev);
	free(q);
}

static inline struct dns_resolver fake_dns_resolver(struct fake_dns *d)
{
	return (struct dns_resolver){ fake_dns_lookup, fake_dns_cancel, d };
}

#endif
