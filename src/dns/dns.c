/*
 * dns: asynchronous MX and address lookups with c-ares on a libevent loop.
 * See dns.h for the contract.
 *
 * Event glue: c-ares tells us through ARES_OPT_SOCK_STATE_CB which sockets it
 * wants read or write readiness for; each gets one persistent libevent event
 * (struct dns_sock), rebuilt when the interest changes and freed when c-ares
 * says "neither". One timer follows ares_timeout() and is re-armed after every
 * call into c-ares. Readiness and timeouts go to ares_process_fd().
 *
 * Callbacks: c-ares may answer inside ares_query()/ares_getaddrinfo() (errors,
 * out of memory) and calls every pending callback from ares_destroy() with
 * ARES_EDESTRUCTION. So no user callback is ever called from a c-ares
 * callback: the result is stored in the request and delivered by a per-request
 * event made active (allocated up front, so delivery cannot fail). A request
 * is in one of three states: QUERY (c-ares holds it; cancelling only marks it,
 * and the c-ares callback frees it), READY (answered, its event active;
 * cancelling frees it at once) and DELIVERING (inside the user callback;
 * cancelling is a no-op). Every live request is on the resolver's list, so
 * dns_free() can free the READY ones after ares_destroy() has disposed of the
 * QUERY ones.
 *
 * Queries: a mail domain is absolute, so search domains never apply
 * (ARES_FLAG_NOSEARCH; ares_query() does not search anyway, and names given to
 * ares_getaddrinfo() get a trailing dot). Only DNS is asked (lookups "b"), never
 * /etc/hosts, so that tests see what the configured server says. Timeout 3 s,
 * 2 tries (c-ares doubles the timeout per round: at most ~9 s with one server),
 * EDNS0 with a 1232-byte payload (larger answers come over TCP).
 *
 * MX answers (RFC 5321 5.1, RFC 7505), in dns_parse_mx():
 *   - an MX whose exchange is the root (".") makes the whole domain a null MX,
 *     even beside other MX records (which RFC 7505 3 forbids): the owner said
 *     the domain takes no mail, and bouncing at once is safer than delivering
 *     to hosts it disowned;
 *   - exchanges are lower-cased, a trailing dot removed, and skipped unless
 *     they are host names (RFC 1123 2.1: LDH labels of 1-63 octets, not
 *     starting or ending with '-', at most 253 octets, last label not all
 *     digits so that an IP address posing as an MX name is never used);
 *   - a host listed twice keeps its lowest preference;
 *   - sorted by preference, equal preferences shuffled (RFC 5321 5.1), then
 *     the first DNS_MX_MAX kept;
 *   - MX records exist but none is usable: DNS_BADNAME (permanent; falling back
 *     to the implicit MX would be wrong, RFC 5321 5.1);
 *   - no MX record at all: DNS_NODATA (the caller uses the implicit MX).
 *
 * Addresses: A and AAAA are asked together (ares_getaddrinfo, AF_UNSPEC,
 * ARES_AI_NOSORT); the result interleaves the families, IPv6 first (RFC 8305
 * 4), each family in answer order, duplicates dropped, at most DNS_ADDR_MAX.
 * An IP literal is answered without a query (still from the loop).
 *
 * Status mapping: NXDOMAIN and a bad query name are permanent; SERVFAIL,
 * REFUSED, NOTIMP, FORMERR, timeouts, refused connections, out of memory and
 * malformed responses (a server bug is usually transient) are DNS_TEMPFAIL.
 *
 * Security: answers are untrusted. ares_parse_mx_reply() checks the message
 * structure and escapes odd bytes (which our name check then refuses); every
 * name is length-checked before it is copied; names are logged with LOG_ESC.
 */
#include "dns/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "util/log.h"
#include "util/strmap.h"

#define DNS_TIMEOUT_MS 3000
#define DNS_TRIES 2
#define DNS_EDNS_PAYLOAD 1232
#define DNS_HOST_MAX 253 /* a host name's text, without the trailing dot */
#define DNS_LABEL_MAX 63
#define DNS_MSG_MAX 65535

struct dns_sock {
	struct dns_sock *next;
	struct dns *dns;
	ares_socket_t fd;
	struct event *ev;
};

struct dns {
	struct event_base *base;
	ares_channel channel;
	struct event *timer;
	struct dns_sock *socks;
	struct dns_req *reqs; /* every live request */
	struct strmap *cache; /* "TYPE/name" -> struct cache_entry (dns_lookup answers) */
	size_t cache_bytes;   /* the entries' sizes (cache_entry.bytes) */
	time_t cache_swept;   /* when a full cache was last swept of expired entries */
};

enum dns_req_type { REQ_MX, REQ_ADDR, REQ_RECORDS };
enum dns_req_state { REQ_QUERY, REQ_READY, REQ_DELIVERING };

struct dns_req {
	struct dns_req *prev, *next;
	struct dns *dns;
	enum dns_req_type type;
	enum dns_req_state state;
	bool cancelled;
	struct event *deliver;
	uint16_t port;
	/* REQ_ADDR: the AAAA and A queries, each with its own status (ARES_*). */
	unsigned pending;
	int status6, status4;
	struct in6_addr v6[DNS_ADDR_MAX];
	struct in_addr v4[DNS_ADDR_MAX];
	size_t n6, n4;
	void *arg;
	union {
		dns_mx_fn *mx;
		dns_addr_fn *addr;
		dns_result_fn *rec;
	} fn;
	char name[DNS_NAME_MAX + 2];
	union {
		struct dns_mx_result mx;
		struct dns_addr_result addr;
		struct dns_result rec; /* its records are ours: freed with the request */
	} res;
};

/* --- names ---------------------------------------------------------------- */

static bool is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

/*
 * A host name per RFC 1123 2.1, without trailing dot: LDH labels of 1-63
 * octets, no '-' at either end of a label, at most 253 octets, and a last
 * label that is not all digits.
 */
static bool host_name_ok(const char *s, size_t len)
{
	size_t label = 0;
	bool digits = true;

	if (len == 0 || len > DNS_HOST_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			if (i == len)
				return !digits;
			label = 0;
			digits = true;
			continue;
		}
		unsigned char c = (unsigned char)s[i];
		if (!is_ldh(c) || (label == 0 && c == '-') || ++label > DNS_LABEL_MAX)
			return false;
		if (c < '0' || c > '9')
			digits = false;
	}
	return false;
}

/*
 * A name we are willing to ask about: printable ASCII except '\\' and
 * blanks (names such as _dmarc or SRV owners are fine), labels of 1-63
 * octets, at most 253 octets, one trailing dot allowed. Copies it without
 * the dot into out (DNS_NAME_MAX + 2 bytes).
 */
static bool query_name_ok(const char *name, char *out)
{
	size_t len = strnlen(name, DNS_HOST_MAX + 2), label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (c <= ' ' || c >= 0x7f || c == '\\' || ++label > DNS_LABEL_MAX)
			return false;
	}
	memcpy(out, name, len);
	out[len] = '\0';
	return true;
}

/* --- MX answers ----------------------------------------------------------- */

struct mx_entry {
	const char *host; /* in the ares_mx_reply list, no trailing dot, checked */
	unsigned pref;
	uint32_t rnd; /* tie-breaker among equal preferences */
};

static int mx_by_name(const void *a, const void *b)
{
	const struct mx_entry *x = a, *y = b;
	int c = strcasecmp(x->host, y->host);

	if (c != 0)
		return c;
	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

static int mx_by_pref(const void *a, const void *b)
{
	const struct mx_entry *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return x->rnd < y->rnd ? -1 : x->rnd > y->rnd;
}

/* splitmix64: plenty for spreading load over equal-preference hosts. */
static uint64_t mix_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static uint64_t random_seed(void)
{
	static uint64_t counter;
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed)
		return seed;
	/* No entropy yet (early boot): unpredictability does not matter here. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ++counter;
}

/* Strip one trailing dot; true when what is left is a host name. */
static bool mx_host_usable(const char *host, size_t *len)
{
	*len = strlen(host);
	if (*len > 0 && host[*len - 1] == '.')
		(*len)--;
	return host_name_ok(host, *len);
}

int dns_parse_mx(const unsigned char *abuf, size_t alen, struct dns_mx_result *out)
{
	struct ares_mx_reply *list = NULL;
	struct mx_entry *v;
	size_t count = 0, n = 0, kept;
	bool null_mx = false;
	int r;

	memset(out, 0, sizeof *out);
	if (abuf == NULL || alen > DNS_MSG_MAX) {
		r = ARES_EBADRESP;
	} else {
		r = ares_parse_mx_reply(abuf, (int)alen, &list);
	}
	/* c-ares 1.18 says success, with an empty list, when the answer holds no MX. */
	if (r == ARES_ENODATA || (r == ARES_SUCCESS && list == NULL)) {
		out->status = DNS_NODATA;
		snprintf(out->error, sizeof out->error, "No MX records");
		return 0;
	}
	if (r == ARES_ENOMEM) {
		out->status = DNS_TEMPFAIL;
		snprintf(out->error, sizeof out->error, "Out of memory");
		return -ENOMEM;
	}
	if (r != ARES_SUCCESS) {
		out->status = DNS_BADNAME;
		snprintf(out->error, sizeof out->error, "Malformed DNS response");
		return -EINVAL;
	}

	for (struct ares_mx_reply *p = list; p; p = p->next) {
		count++;
		if (p->host[0] == '\0' || strcmp(p->host, ".") == 0)
			null_mx = true;
	}
	if (null_mx) {
		ares_free_data(list);
		out->status = DNS_OK;
		out->null_mx = true;
		return 0;
	}
	v = calloc(count, sizeof *v);
	if (v == NULL) {
		ares_free_data(list);
		out->status = DNS_TEMPFAIL;
		snprintf(out->error, sizeof out->error, "Out of memory");
		return -ENOMEM;
	}
	for (struct ares_mx_reply *p = list; p; p = p->next) {
		size_t len;
		if (!mx_host_usable(p->host, &len))
			continue;
		p->host[len] = '\0';
		v[n].host = p->host;
		v[n].pref = p->priority;
		n++;
	}

	/* Duplicates: keep each host once, at its lowest preference. */
	qsort(v, n, sizeof *v, mx_by_name);
	kept = 0;
	for (size_t i = 0; i < n; i++)
		if (kept == 0 || strcasecmp(v[kept - 1].host, v[i].host) != 0)
			v[kept++] = v[i];
	n = kept;

	/* Random tie-breakers, then one sort: each order of a tie is equally likely. */
	if (n > 1) {
		uint64_t state = random_seed();
		for (size_t i = 0; i < n; i++)
			v[i].rnd = (uint32_t)(mix_next(&state) >> 32);
	}
	qsort(v, n, sizeof *v, mx_by_pref);

	for (size_t i = 0; i < n && out->n < DNS_MX_MAX; i++) {
		struct dns_mx *m = &out->mx[out->n++];
		size_t len = strlen(v[i].host);
		for (size_t j = 0; j < len; j++) {
			char c = v[i].host[j];
			m->host[j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		}
		m->host[len] = '\0';
		m->pref = v[i].pref;
	}
	free(v);
	ares_free_data(list);
	if (out->n == 0) {
		out->status = DNS_BADNAME;
		snprintf(out->error, sizeof out->error, "MX records hold no valid host name");
		return 0;
	}
	out->status = DNS_OK;
	return 0;
}

/* --- status mapping ------------------------------------------------------- */

static enum dns_status map_status(int status, const char *what, char *err, size_t errlen)
{
	switch (status) {
	case ARES_ENODATA:
		snprintf(err, errlen, "No %s records", what);
		return DNS_NODATA;
	case ARES_ENOTFOUND:
		snprintf(err, errlen, "Host or domain name not found");
		return DNS_NXDOMAIN;
	case ARES_EBADNAME:
	case ARES_EBADQUERY:
		snprintf(err, errlen, "Bad domain name");
		return DNS_BADNAME;
	case ARES_ESERVFAIL:
		snprintf(err, errlen, "DNS server failure (SERVFAIL)");
		return DNS_TEMPFAIL;
	case ARES_EREFUSED:
		snprintf(err, errlen, "DNS query refused (REFUSED)");
		return DNS_TEMPFAIL;
	case ARES_ENOTIMP:
		snprintf(err, errlen, "DNS server does not implement the query (NOTIMP)");
		return DNS_TEMPFAIL;
	case ARES_EFORMERR:
		snprintf(err, errlen, "DNS server refused the query format (FORMERR)");
		return DNS_TEMPFAIL;
	case ARES_ETIMEOUT:
		snprintf(err, errlen, "DNS timeout");
		return DNS_TEMPFAIL;
	case ARES_ECONNREFUSED:
		/* Also c-ares 1.18's verdict after SERVFAIL/REFUSED from every server. */
		snprintf(err, errlen, "No usable DNS server (unreachable, SERVFAIL or REFUSED)");
		return DNS_TEMPFAIL;
	case ARES_EBADRESP:
		snprintf(err, errlen, "Malformed DNS response");
		return DNS_TEMPFAIL;
	case ARES_ENOMEM:
		snprintf(err, errlen, "Out of memory");
		return DNS_TEMPFAIL;
	default:
		snprintf(err, errlen, "DNS error: %s", ares_strerror(status));
		return DNS_TEMPFAIL;
	}
}

static const char *status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_NODATA:
		return "nodata";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_BADNAME:
		return "badname";
	}
	return "?";
}

/* --- event glue ----------------------------------------------------------- */

static void timer_update(struct dns *dns)
{
	struct timeval tv, *tvp = ares_timeout(dns->channel, NULL, &tv);

	if (tvp)
		evtimer_add(dns->timer, tvp);
	else
		evtimer_del(dns->timer);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dns *dns = arg;

	(void)fd;
	(void)what;
	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	timer_update(dns);
}

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct dns *dns = ((struct dns_sock *)arg)->dns;

	/* The dns_sock may be freed by sock_state_cb inside ares_process_fd. */
	ares_process_fd(dns->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	timer_update(dns);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *dns = data;
	struct dns_sock **pp, *s;
	short what = (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));

	for (pp = &dns->socks; *pp && (*pp)->fd != fd; pp = &(*pp)->next)
		;
	s = *pp;
	if (s && s->ev) {
		event_free(s->ev);
		s->ev = NULL;
	}
	if (what == 0) {
		if (s) {
			*pp = s->next;
			free(s);
		}
		return;
	}
	if (s == NULL) {
		s = calloc(1, sizeof *s);
		if (s == NULL)
			goto fail;
		s->dns = dns;
		s->fd = fd;
		s->next = dns->socks;
		dns->socks = s;
	}
	s->ev = event_new(dns->base, fd, (short)(what | EV_PERSIST), on_sock, s);
	if (s->ev && event_add(s->ev, NULL) == 0)
		return;
fail:
	/* Unwatched, the query on this socket ends by timeout (DNS_TEMPFAIL). */
	log_err("event=dns_error error=\"cannot watch socket\" fd=%d", (int)fd);
}

/* --- requests ------------------------------------------------------------- */

static void req_free(struct dns_req *req)
{
	struct dns *dns = req->dns;

	if (req->prev)
		req->prev->next = req->next;
	else if (dns->reqs == req)
		dns->reqs = req->next;
	if (req->next)
		req->next->prev = req->prev;
	if (req->type == REQ_RECORDS)
		dns_result_clear(&req->res.rec);
	event_free(req->deliver);
	free(req);
}

static void on_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct dns_req *req = arg;
	struct dns *dns = req->dns;

	(void)fd;
	(void)what;
	/* Off the list first: the callback may call dns_free(). */
	if (req->prev)
		req->prev->next = req->next;
	else
		dns->reqs = req->next;
	if (req->next)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
	req->state = REQ_DELIVERING;
	if (req->type == REQ_MX)
		req->fn.mx(req->arg, &req->res.mx);
	else if (req->type == REQ_ADDR)
		req->fn.addr(req->arg, &req->res.addr);
	else
		req->fn.rec(req->arg, &req->res.rec);
	if (req->type == REQ_RECORDS)
		dns_result_clear(&req->res.rec);
	event_free(req->deliver);
	free(req);
}

static const char *type_name(enum dns_type t);

static void req_ready(struct dns_req *req)
{
	enum dns_status st = req->type == REQ_MX     ? req->res.mx.status
			     : req->type == REQ_ADDR ? req->res.addr.status
						     : req->res.rec.status;

	req->state = REQ_READY;
	if (req->type == REQ_RECORDS)
		log_debug("event=dns_result type=%s name=%s status=%s n=%zu ttl=%u cached=%d",
			  type_name(req->res.rec.type), LOG_ESC(req->name), status_name(st),
			  req->res.rec.n, (unsigned)req->res.rec.ttl, req->res.rec.cached);
	else if (req->type == REQ_MX)
		log_debug("event=dns_result type=MX name=%s status=%s n=%zu null_mx=%d",
			  LOG_ESC(req->name), status_name(st), req->res.mx.n, req->res.mx.null_mx);
	else
		log_debug("event=dns_result type=addr name=%s status=%s n=%zu",
			  LOG_ESC(req->name), status_name(st), req->res.addr.n);
	event_active(req->deliver, EV_TIMEOUT, 1);
}

static struct dns_req *req_new(struct dns *dns, enum dns_req_type type, void *arg)
{
	struct dns_req *req = calloc(1, sizeof *req);

	if (req == NULL)
		return NULL;
	req->deliver = event_new(dns->base, -1, 0, on_deliver, req);
	if (req->deliver == NULL) {
		free(req);
		return NULL;
	}
	req->dns = dns;
	req->type = type;
	req->arg = arg;
	req->next = dns->reqs;
	if (dns->reqs)
		dns->reqs->prev = req;
	dns->reqs = req;
	return req;
}

/* A c-ares callback: true when the request was cancelled or c-ares is going away. */
static bool req_dropped(struct dns_req *req, int status)
{
	if (req->cancelled || status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		req_free(req);
		return true;
	}
	return false;
}

static void on_mx_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_req *req = arg;
	struct dns_mx_result *res = &req->res.mx;

	(void)timeouts;
	if (req_dropped(req, status))
		return;
	if (status == ARES_SUCCESS && abuf && alen >= 0) {
		int r = dns_parse_mx(abuf, (size_t)alen, res);
		if (r == -EINVAL) {
			/* c-ares accepted the message but it is no MX answer: a server bug. */
			log_warn("event=dns_error type=MX name=%s error=\"malformed answer\"",
				 LOG_ESC(req->name));
			res->status = DNS_TEMPFAIL;
		}
	} else {
		memset(res, 0, sizeof *res);
		res->status = map_status(status == ARES_SUCCESS ? ARES_EBADRESP : status, "MX",
					 res->error, sizeof res->error);
	}
	req_ready(req);
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
			      &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr)) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* Append sa (with port) unless full or already there. */
static void addr_add(struct dns_addr_result *res, const struct sockaddr *sa, size_t salen,
		     uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(&ss, 0, sizeof ss);
	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
		len = sizeof(struct sockaddr_in);
		memcpy(&ss, sa, len);
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	} else if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
		len = sizeof(struct sockaddr_in6);
		memcpy(&ss, sa, len);
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	} else {
		return;
	}
	if (res->n >= DNS_ADDR_MAX)
		return;
	for (size_t i = 0; i < res->n; i++)
		if (same_addr(&res->addr[i], &ss))
			return;
	res->addr[res->n] = ss;
	res->addrlen[res->n] = len;
	res->n++;
}

/* Whether a per-family status says "try later" (anything but an answer, NXDOMAIN or NODATA). */
static bool status_temporary(int status)
{
	return status != ARES_SUCCESS && status != ARES_ENODATA && status != ARES_ENOTFOUND;
}

/* Both queries are in: interleave the families, IPv6 first (RFC 8305 4), or say why none. */
static void addr_finish(struct dns_req *req)
{
	struct dns_addr_result *res = &req->res.addr;

	memset(res, 0, sizeof *res);
	for (size_t i = 0; i < req->n6 || i < req->n4; i++) {
		if (i < req->n6) {
			struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = req->v6[i] };
			addr_add(res, (struct sockaddr *)&sin6, sizeof sin6, req->port);
		}
		if (i < req->n4) {
			struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = req->v4[i] };
			addr_add(res, (struct sockaddr *)&sin, sizeof sin, req->port);
		}
	}
	if (res->n > 0) {
		res->status = DNS_OK;
	} else {
		/* A failure of either family is temporary for the name: the other may just be
		 * missing while this one would have answered. Both NXDOMAIN: no such name. */
		int st = status_temporary(req->status6)		 ? req->status6
			 : status_temporary(req->status4)		 ? req->status4
			 : req->status6 == ARES_ENOTFOUND && req->status4 == ARES_ENOTFOUND ? ARES_ENOTFOUND
											 : ARES_ENODATA;
		res->status = map_status(st, "address", res->error, sizeof res->error);
	}
	req_ready(req);
}

static void on_addr_part(struct dns_req *req, int family, int status, unsigned char *abuf,
			 int alen)
{
	req->pending--;
	if (req->cancelled || status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		req->cancelled = true;
		if (req->pending == 0)
			req_free(req);
		return;
	}
	if (status == ARES_SUCCESS && abuf && alen >= 0) {
		int n = DNS_ADDR_MAX;
		if (family == AF_INET6) {
			struct ares_addr6ttl ttls[DNS_ADDR_MAX];
			status = ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &n);
			for (int i = 0; status == ARES_SUCCESS && i < n; i++)
				memcpy(&req->v6[req->n6++], &ttls[i].ip6addr, sizeof req->v6[0]);
		} else {
			struct ares_addrttl ttls[DNS_ADDR_MAX];
			status = ares_parse_a_reply(abuf, alen, NULL, ttls, &n);
			for (int i = 0; status == ARES_SUCCESS && i < n; i++)
				req->v4[req->n4++] = ttls[i].ipaddr;
		}
		if (status == ARES_SUCCESS && n == 0)
			status = ARES_ENODATA;
	}
	if (family == AF_INET6)
		req->status6 = status;
	else
		req->status4 = status;
	if (req->pending == 0)
		addr_finish(req);
}

static void on_aaaa_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	(void)timeouts;
	on_addr_part(arg, AF_INET6, status, abuf, alen);
}

static void on_a_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	(void)timeouts;
	on_addr_part(arg, AF_INET, status, abuf, alen);
}

struct dns_req *dns_lookup_mx(struct dns *dns, const char *domain, dns_mx_fn *fn, void *arg)
{
	struct dns_req *req = req_new(dns, REQ_MX, arg);

	if (req == NULL)
		return NULL;
	req->fn.mx = fn;
	if (!query_name_ok(domain, req->name)) {
		snprintf(req->name, sizeof req->name, "%.*s", DNS_NAME_MAX, domain);
		req->res.mx.status = DNS_BADNAME;
		snprintf(req->res.mx.error, sizeof req->res.mx.error, "Bad domain name");
		req_ready(req);
		return req;
	}
	log_debug("event=dns_query type=MX name=%s", LOG_ESC(req->name));
	req->state = REQ_QUERY;
	ares_query(dns->channel, req->name, ns_c_in, ns_t_mx, on_mx_answer, req);
	timer_update(dns);
	return req;
}

/* An IPv4 or IPv6 literal: the result, without a query. */
static bool addr_literal(const char *host, uint16_t port, struct dns_addr_result *res)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(&sin, 0, sizeof sin);
	memset(&sin6, 0, sizeof sin6);
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		addr_add(res, (struct sockaddr *)&sin, sizeof sin, port);
	} else if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		addr_add(res, (struct sockaddr *)&sin6, sizeof sin6, port);
	} else {
		return false;
	}
	res->status = DNS_OK;
	return true;
}

struct dns_req *dns_lookup_addr(struct dns *dns, const char *host, uint16_t port,
				dns_addr_fn *fn, void *arg)
{
	struct dns_req *req = req_new(dns, REQ_ADDR, arg);

	if (req == NULL)
		return NULL;
	req->fn.addr = fn;
	req->port = port;
	snprintf(req->name, sizeof req->name, "%.*s", DNS_NAME_MAX, host);
	if (addr_literal(host, port, &req->res.addr)) {
		req_ready(req);
		return req;
	}
	if (!query_name_ok(host, req->name)) {
		req->res.addr.status = DNS_BADNAME;
		snprintf(req->res.addr.error, sizeof req->res.addr.error, "Bad domain name");
		req_ready(req);
		return req;
	}
	log_debug("event=dns_query type=addr name=%s", LOG_ESC(req->name));
	/* Two queries rather than ares_getaddrinfo, which keeps only the status of the last
	 * one to finish: a SERVFAIL for A must not turn into "no address" when AAAA is empty. */
	req->state = REQ_QUERY;
	req->pending = 2;
	ares_query(dns->channel, req->name, ns_c_in, ns_t_aaaa, on_aaaa_answer, req);
	ares_query(dns->channel, req->name, ns_c_in, ns_t_a, on_a_answer, req);
	timer_update(dns);
	return req;
}

void dns_cancel(struct dns_req *req)
{
	if (req == NULL)
		return;
	switch (req->state) {
	case REQ_QUERY:
		req->cancelled = true; /* freed by its c-ares callback */
		break;
	case REQ_READY:
		req_free(req); /* event_free removes the active event */
		break;
	case REQ_DELIVERING:
		break; /* inside its own callback: freed when it returns */
	}
}

/* --- any record type: parsing --------------------------------------------- */

#define DNS_HDR_LEN 12
#define DNS_RR_FIXED 10    /* type, class, TTL, RDLENGTH */
#define DNS_TTL_CAP 86400u /* cache an answer for a day at most */
#define DNS_CACHE_MAX 20000
/* Bytes of records the cache holds at most, and the largest answer it keeps (a name chosen by a
 * client, e.g. through an SPF include, can have 64 TXT records of 8 KiB). */
#define DNS_CACHE_BYTES_MAX (8u * 1024 * 1024)
#define DNS_CACHE_ENTRY_MAX (64u * 1024)

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Skip (or expand into *name, which the caller frees) the domain name at
 * *pos; c-ares follows compression pointers and refuses loops. false when the
 * name does not parse.
 */
static bool answer_name(const unsigned char *abuf, size_t alen, size_t *pos, char **name)
{
	char *s = NULL;
	long enclen = 0;

	if (*pos >= alen || ares_expand_name(abuf + *pos, abuf, (int)alen, &s, &enclen) != ARES_SUCCESS)
		return false;
	if (enclen <= 0 || (size_t)enclen > alen - *pos) {
		ares_free_string(s);
		return false;
	}
	*pos += (size_t)enclen;
	if (name)
		*name = s;
	else
		ares_free_string(s);
	return true;
}

/*
 * A name from c-ares as our text: lower case, no trailing dot (c-ares escapes
 * a dot inside a label as "\\.", which stays). NULL when out of memory.
 */
static char *rr_name(const char *s, size_t *len)
{
	size_t n = strlen(s);
	char *out;

	if (n > 0 && s[n - 1] == '.' && (n < 2 || s[n - 2] != '\\'))
		n--;
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
	out[n] = '\0';
	*len = n;
	return out;
}

/* TXT RDATA: character-strings joined (RFC 7208 3.3), cut at DNS_TXT_MAX. */
static char *rr_txt(const unsigned char *p, size_t rdlen, size_t *len, bool *ok)
{
	size_t total = 0, o = 0;
	char *out;

	*ok = false;
	while (o < rdlen) {
		size_t l = p[o];
		if (l > rdlen - o - 1)
			return NULL;
		total += l;
		o += 1 + l;
	}
	if (total > DNS_TXT_MAX)
		total = DNS_TXT_MAX;
	out = malloc(total + 1);
	if (out == NULL)
		return NULL;
	*ok = true;
	*len = 0;
	for (o = 0; o < rdlen; o += 1 + (size_t)p[o]) {
		size_t l = p[o], room = total - *len;
		if (l > room)
			l = room;
		memcpy(out + *len, p + o + 1, l);
		*len += l;
	}
	out[*len] = '\0';
	return out;
}

void dns_result_clear(struct dns_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n; i++)
		free(res->rr[i].text);
	free(res->rr);
	res->rr = NULL;
	res->n = 0;
}

/* Fill one record of type from rdata at abuf[pos..pos+rdlen). 1 kept, 0 skipped, <0 error. */
static int rr_fill(const unsigned char *abuf, size_t alen, size_t pos, size_t rdlen,
		   enum dns_type type, struct dns_rr *rr)
{
	const unsigned char *p = abuf + pos;
	char *name = NULL;
	size_t o = pos;
	bool ok;

	memset(rr, 0, sizeof *rr);
	switch (type) {
	case DNS_T_A:
		if (rdlen != 4)
			return -EINVAL;
		rr->family = AF_INET;
		memcpy(&rr->addr.v4, p, 4);
		return 1;
	case DNS_T_AAAA:
		if (rdlen != 16)
			return -EINVAL;
		rr->family = AF_INET6;
		memcpy(&rr->addr.v6, p, 16);
		return 1;
	case DNS_T_TXT:
		rr->text = rr_txt(p, rdlen, &rr->len, &ok);
		if (rr->text == NULL)
			return ok ? -ENOMEM : -EINVAL;
		return 1;
	case DNS_T_MX:
		if (rdlen < 3)
			return -EINVAL;
		rr->pref = get16(p);
		o += 2;
		/* fall through */
	case DNS_T_PTR:
		if (!answer_name(abuf, alen, &o, &name) || o > pos + rdlen) {
			ares_free_string(name);
			return -EINVAL;
		}
		rr->text = rr_name(name, &rr->len);
		ares_free_string(name);
		return rr->text ? 1 : -ENOMEM;
	}
	return 0;
}

int dns_parse_answer(const unsigned char *abuf, size_t alen, enum dns_type type,
		     struct dns_result *out)
{
	size_t pos = DNS_HDR_LEN, qd, an, ns;
	uint32_t ttl = UINT32_MAX, neg_ttl = 0;
	int r = -EINVAL;

	memset(out, 0, sizeof *out);
	out->type = type;
	if (alen < DNS_HDR_LEN || alen > DNS_MSG_MAX)
		goto bad;
	qd = get16(abuf + 4);
	an = get16(abuf + 6);
	ns = get16(abuf + 8);
	for (size_t i = 0; i < qd; i++) {
		if (!answer_name(abuf, alen, &pos, NULL) || alen - pos < 4)
			goto bad;
		pos += 4;
	}
	for (size_t i = 0; i < an + ns; i++) {
		if (!answer_name(abuf, alen, &pos, NULL) || alen - pos < DNS_RR_FIXED)
			goto bad;
		uint16_t rtype = get16(abuf + pos), rclass = get16(abuf + pos + 2);
		uint32_t rttl = get32(abuf + pos + 4);
		size_t rdlen = get16(abuf + pos + 8);
		pos += DNS_RR_FIXED;
		if (rdlen > alen - pos)
			goto bad;
		if (rttl > INT32_MAX) /* RFC 2181 8: treat as zero */
			rttl = 0;
		if (i < an && rtype == type && rclass == ns_c_in) {
			if (out->n == 0) {
				out->rr = calloc(DNS_RR_MAX, sizeof *out->rr);
				if (out->rr == NULL) {
					r = -ENOMEM;
					goto fail;
				}
			}
			if (out->n < DNS_RR_MAX) {
				int k = rr_fill(abuf, alen, pos, rdlen, type, &out->rr[out->n]);
				if (k < 0) {
					r = k;
					goto fail;
				}
				out->n += (size_t)k;
			}
			if (rttl < ttl)
				ttl = rttl;
		} else if (i >= an && rtype == ns_t_soa && rclass == ns_c_in) {
			/* RFC 2308 5: the negative TTL is min(SOA TTL, SOA MINIMUM). */
			size_t o = pos;
			if (!answer_name(abuf, alen, &o, NULL) || !answer_name(abuf, alen, &o, NULL) ||
			    o + 20 > pos + rdlen)
				goto bad;
			uint32_t min = get32(abuf + o + 16);
			neg_ttl = min < rttl ? min : rttl;
			if (neg_ttl > INT32_MAX)
				neg_ttl = 0;
		}
		pos += rdlen;
	}
	if (out->n > 0) {
		out->status = DNS_OK;
		out->ttl = ttl;
	} else {
		dns_result_clear(out);
		out->status = DNS_NODATA;
		out->ttl = neg_ttl;
		snprintf(out->error, sizeof out->error, "No records of the asked type");
	}
	return 0;
bad:
	r = -EINVAL;
fail:
	dns_result_clear(out);
	out->ttl = 0;
	out->status = r == -ENOMEM ? DNS_TEMPFAIL : DNS_BADNAME;
	snprintf(out->error, sizeof out->error, "%s",
		 r == -ENOMEM ? "Out of memory" : "Malformed DNS response");
	return r;
}

/* A deep copy of src into dst (records and texts). 0 or -ENOMEM (dst then empty). */
static int result_copy(struct dns_result *dst, const struct dns_result *src)
{
	*dst = *src;
	dst->rr = NULL;
	dst->n = 0;
	if (src->n == 0)
		return 0;
	dst->rr = calloc(src->n, sizeof *dst->rr);
	if (dst->rr == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < src->n; i++) {
		dst->rr[i] = src->rr[i];
		dst->rr[i].text = NULL;
		if (src->rr[i].text) {
			dst->rr[i].text = malloc(src->rr[i].len + 1);
			if (dst->rr[i].text == NULL) {
				dst->n = i;
				dns_result_clear(dst);
				return -ENOMEM;
			}
			memcpy(dst->rr[i].text, src->rr[i].text, src->rr[i].len + 1);
		}
		dst->n = i + 1;
	}
	return 0;
}

/* --- any record type: the cache ------------------------------------------- */

struct cache_entry {
	time_t expires; /* CLOCK_MONOTONIC seconds */
	size_t bytes;   /* what it holds, counted in dns->cache_bytes */
	struct dns_result res;
};

/* The memory an answer takes in the cache. */
static size_t result_bytes(const struct dns_result *res)
{
	size_t n = sizeof(struct cache_entry) + res->n * sizeof(struct dns_rr);
	for (size_t i = 0; i < res->n; i++)
		n += res->rr[i].text ? res->rr[i].len + 1 : 0;
	return n;
}

static time_t mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void cache_entry_free(void *p)
{
	struct cache_entry *e = p;
	if (e) {
		dns_result_clear(&e->res);
		free(e);
	}
}

/* "TYPE/name" in lower case: names are case-insensitive (RFC 4343). */
static void cache_key(char *key, size_t len, enum dns_type type, const char *name)
{
	int n = snprintf(key, len, "%u/", (unsigned)type);
	for (size_t i = 0; n >= 0 && (size_t)n + i + 1 < len && name[i]; i++) {
		char c = name[i];
		key[n + (int)i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		key[n + (int)i + 1] = '\0';
	}
}

/* Remove key's entry, if any, from the cache and its byte count. */
static void cache_drop(struct dns *dns, const char *key)
{
	void *val;

	if (strmap_del(dns->cache, key, &val) == 0) {
		dns->cache_bytes -= ((struct cache_entry *)val)->bytes;
		cache_entry_free(val);
	}
}

/* Remove the expired entries (at most once a second: a full cache of live entries would
 * otherwise be walked at every answer). */
static void cache_sweep(struct dns *dns, time_t now)
{
	struct strmap_iter it;
	const char *key;
	void *val;
	char **dead;
	size_t n = 0, count = strmap_count(dns->cache);

	if (dns->cache_swept == now)
		return;
	dns->cache_swept = now;
	dead = calloc(count ? count : 1, sizeof *dead);
	if (dead == NULL)
		return;
	strmap_iter_init(&it, dns->cache);
	while (strmap_iter_next(&it, &key, &val))
		if (((struct cache_entry *)val)->expires <= now && (dead[n] = strdup(key)) != NULL)
			n++;
	for (size_t i = 0; i < n; i++) {
		cache_drop(dns, dead[i]);
		free(dead[i]);
	}
	free(dead);
}

static void cache_put(struct dns *dns, const char *name, const struct dns_result *res)
{
	char key[DNS_NAME_MAX + 16];
	struct cache_entry *e;
	time_t now = mono_now();
	size_t bytes = result_bytes(res);

	if (dns->cache == NULL || res->ttl == 0 || bytes > DNS_CACHE_ENTRY_MAX ||
	    (res->status != DNS_OK && res->status != DNS_NODATA && res->status != DNS_NXDOMAIN))
		return;
	cache_key(key, sizeof key, res->type, name);
	cache_drop(dns, key);
	if (strmap_count(dns->cache) >= DNS_CACHE_MAX ||
	    dns->cache_bytes + bytes > DNS_CACHE_BYTES_MAX) {
		cache_sweep(dns, now);
		if (strmap_count(dns->cache) >= DNS_CACHE_MAX ||
		    dns->cache_bytes + bytes > DNS_CACHE_BYTES_MAX)
			return;
	}
	e = calloc(1, sizeof *e);
	if (e == NULL || result_copy(&e->res, res) < 0) {
		free(e);
		return;
	}
	e->expires = now + (time_t)(res->ttl < DNS_TTL_CAP ? res->ttl : DNS_TTL_CAP);
	e->bytes = bytes;
	if (strmap_put(dns->cache, key, e) < 0) {
		cache_entry_free(e);
		return;
	}
	dns->cache_bytes += bytes;
}

/* A fresh cached answer copied into out (cached set), or false. */
static bool cache_get(struct dns *dns, const char *name, enum dns_type type,
		      struct dns_result *out)
{
	char key[DNS_NAME_MAX + 16];
	struct cache_entry *e;
	time_t now = mono_now();

	if (dns->cache == NULL)
		return false;
	cache_key(key, sizeof key, type, name);
	e = strmap_get(dns->cache, key);
	if (e == NULL)
		return false;
	if (e->expires <= now) {
		cache_drop(dns, key);
		return false;
	}
	if (result_copy(out, &e->res) < 0)
		return false;
	out->ttl = (uint32_t)(e->expires - now);
	out->cached = true;
	return true;
}

/* --- any record type: lookups --------------------------------------------- */

static const char *type_name(enum dns_type t)
{
	switch (t) {
	case DNS_T_A:
		return "A";
	case DNS_T_AAAA:
		return "AAAA";
	case DNS_T_MX:
		return "MX";
	case DNS_T_TXT:
		return "TXT";
	case DNS_T_PTR:
		return "PTR";
	}
	return "?";
}

static void on_records_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_req *req = arg;
	struct dns_result *res = &req->res.rec;
	enum dns_type type = res->type;

	(void)timeouts;
	if (req_dropped(req, status))
		return;
	if ((status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND) && abuf &&
	    alen >= 0) {
		int r = dns_parse_answer(abuf, (size_t)alen, type, res);
		if (r == -EINVAL) {
			log_warn("event=dns_error type=%s name=%s error=\"malformed answer\"",
				 type_name(type), LOG_ESC(req->name));
			res->status = DNS_TEMPFAIL;
		} else if (r == 0 && status == ARES_ENOTFOUND) {
			dns_result_clear(res);
			res->status = map_status(status, type_name(type), res->error, sizeof res->error);
		} else if (r == 0 && res->status == DNS_NODATA) {
			map_status(ARES_ENODATA, type_name(type), res->error, sizeof res->error);
		}
	} else {
		dns_result_clear(res);
		memset(res, 0, sizeof *res);
		res->type = type;
		res->status = map_status(status == ARES_SUCCESS ? ARES_EBADRESP : status,
					 type_name(type), res->error, sizeof res->error);
	}
	cache_put(req->dns, req->name, res);
	req_ready(req);
}

struct dns_req *dns_lookup(struct dns *dns, const char *name, enum dns_type type,
			   dns_result_fn *fn, void *arg)
{
	struct dns_req *req = req_new(dns, REQ_RECORDS, arg);

	if (req == NULL)
		return NULL;
	req->fn.rec = fn;
	req->res.rec.type = type;
	if (!query_name_ok(name, req->name) || type_name(type)[0] == '?') {
		snprintf(req->name, sizeof req->name, "%.*s", DNS_NAME_MAX, name);
		req->res.rec.status = DNS_BADNAME;
		snprintf(req->res.rec.error, sizeof req->res.rec.error, "Bad domain name");
		req_ready(req);
		return req;
	}
	if (cache_get(dns, req->name, type, &req->res.rec)) {
		req_ready(req);
		return req;
	}
	log_debug("event=dns_query type=%s name=%s", type_name(type), LOG_ESC(req->name));
	req->state = REQ_QUERY;
	ares_query(dns->channel, req->name, ns_c_in, (int)type, on_records_answer, req);
	timer_update(dns);
	return req;
}

int dns_reverse_name(const struct sockaddr *sa, const char *zone, char *out, size_t outlen)
{
	const unsigned char *b;
	size_t o = 0;
	int n;

	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		b = a6->s6_addr;
		if (!IN6_IS_ADDR_V4MAPPED(a6)) {
			static const char hex[] = "0123456789abcdef";
			if (outlen < 64 + 1)
				return -ENAMETOOLONG;
			for (int i = 15; i >= 0; i--) {
				out[o++] = hex[b[i] & 0xf];
				out[o++] = '.';
				out[o++] = hex[b[i] >> 4];
				out[o++] = '.';
			}
			n = snprintf(out + o, outlen - o, "%s", zone);
			return n < 0 || (size_t)n >= outlen - o ? -ENAMETOOLONG : 0;
		}
		b += 12;
	} else if (sa->sa_family == AF_INET) {
		b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else {
		return -EINVAL;
	}
	n = snprintf(out, outlen, "%u.%u.%u.%u.%s", b[3], b[2], b[1], b[0], zone);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static struct dns_req *resolver_lookup(void *ctx, const char *name, enum dns_type type,
				       dns_result_fn *fn, void *arg)
{
	return dns_lookup(ctx, name, type, fn, arg);
}

static void resolver_cancel(void *ctx, struct dns_req *req)
{
	(void)ctx;
	dns_cancel(req);
}

struct dns_resolver dns_resolver_of(struct dns *dns)
{
	return (struct dns_resolver){ .lookup = resolver_lookup, .cancel = resolver_cancel, .ctx = dns };
}

/* --- resolver ------------------------------------------------------------- */

/*
 * One dns-server entry: "HOST" or "HOST:PORT" (IPv4), "V6" or "[V6]" or
 * "[V6]:PORT". Fills node; false with a message in err.
 */
static bool parse_server(const char *s, struct ares_addr_port_node *node, char *err,
			 size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *hs = s, *ps = NULL, *colon;
	size_t hlen;
	unsigned long port = 53;

	memset(node, 0, sizeof *node);
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL)
			goto bad;
		hs = s + 1;
		hlen = (size_t)(close - hs);
		if (close[1] == ':')
			ps = close + 2;
		else if (close[1] != '\0')
			goto bad;
	} else if ((colon = strchr(s, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		hlen = (size_t)(colon - s);
		ps = colon + 1;
	} else {
		hlen = strlen(s); /* no port, or a bare IPv6 address */
	}
	if (hlen == 0 || hlen >= sizeof host)
		goto bad;
	memcpy(host, hs, hlen);
	host[hlen] = '\0';
	if (ps) {
		char *end;
		if (*ps < '0' || *ps > '9')
			goto bad;
		errno = 0;
		port = strtoul(ps, &end, 10);
		if (*end != '\0' || errno || port == 0 || port > 65535)
			goto bad;
	}
	if (s[0] != '[' && inet_pton(AF_INET, host, &node->addr.addr4) == 1) {
		node->family = AF_INET;
	} else if (inet_pton(AF_INET6, host, &node->addr.addr6) == 1) {
		node->family = AF_INET6;
	} else {
		goto bad;
	}
	node->udp_port = node->tcp_port = (int)port;
	return true;
bad:
	snprintf(err, errlen,
		 "bad DNS server \"%.60s\": expected an IP address, IPv4:PORT or [IPv6]:PORT", s);
	return false;
}

struct dns *dns_new(struct event_base *base, const char *const *servers, size_t nservers,
		    char *err, size_t errlen)
{
	struct dns *dns;
	struct ares_options opts;
	struct ares_addr_port_node *nodes = NULL;
	char lookups[] = "b";
	int r;

	if (nservers > 0) {
		nodes = calloc(nservers, sizeof *nodes);
		if (nodes == NULL) {
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
		for (size_t i = 0; i < nservers; i++) {
			if (!parse_server(servers[i], &nodes[i], err, errlen)) {
				free(nodes);
				return NULL;
			}
			nodes[i].next = i + 1 < nservers ? &nodes[i + 1] : NULL;
		}
	}
	dns = calloc(1, sizeof *dns);
	if (dns == NULL || (r = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "out of memory");
		free(dns);
		free(nodes);
		return NULL;
	}
	dns->base = base;
	dns->timer = evtimer_new(base, on_timer, dns);
	dns->cache = strmap_new();
	if (dns->timer == NULL || dns->cache == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	memset(&opts, 0, sizeof opts);
	opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_EDNS;
	opts.timeout = DNS_TIMEOUT_MS;
	opts.tries = DNS_TRIES;
	opts.ednspsz = DNS_EDNS_PAYLOAD;
	opts.lookups = lookups;
	opts.sock_state_cb = sock_state_cb;
	opts.sock_state_cb_data = dns;
	r = ares_init_options(&dns->channel, &opts,
			      ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
				      ARES_OPT_EDNSPSZ | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB);
	if (r != ARES_SUCCESS) {
		snprintf(err, errlen, "cannot start the DNS resolver: %s", ares_strerror(r));
		dns->channel = NULL;
		goto fail;
	}
	if (nodes && (r = ares_set_servers_ports(dns->channel, nodes)) != ARES_SUCCESS) {
		snprintf(err, errlen, "cannot set the DNS servers: %s", ares_strerror(r));
		goto fail;
	}
	free(nodes);
	return dns;
fail:
	free(nodes);
	dns_free(dns);
	return NULL;
}

void dns_free(struct dns *dns)
{
	if (dns == NULL)
		return;
	/* Calls every QUERY request back with ARES_EDESTRUCTION: they free themselves. */
	if (dns->channel)
		ares_destroy(dns->channel);
	while (dns->reqs)
		req_free(dns->reqs);
	while (dns->socks) {
		struct dns_sock *s = dns->socks;
		dns->socks = s->next;
		if (s->ev)
			event_free(s->ev);
		free(s);
	}
	if (dns->timer)
		event_free(dns->timer);
	strmap_free(dns->cache, cache_entry_free);
	free(dns);
	ares_library_cleanup();
}
