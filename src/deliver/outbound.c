/*
 * outbound: destinations, connections and the MX walk. See outbound.h.
 *
 * A connection (struct oconn) goes through:
 *   MX       looking up the destination's MX records (not for a relayhost or
 *            an address literal)
 *   ADDR     looking up the addresses of the current host
 *   CONNECT  smtpc_connect() to the current address (greeting, EHLO, TLS, AUTH)
 *   BUSY     carrying a delivery
 *   IDLE     connected, waiting a moment for the next delivery of its destination
 * A connection that fails at MX, ADDR or CONNECT moves to the next address,
 * then the next host; when none is left the walk has failed (walk_fail).
 *
 * Ownership: a delivery belongs to its destination's FIFO, then to the
 * connection that carries it, until done() hands it back to the caller.
 * Destinations live while they have deliveries or connections.
 */
#include "deliver/outbound.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/netaddr.h"
#include "util/str.h"
#include "util/strmap.h"

/* Addresses one connection tries before it gives up (Postfix: smtp_mx_address_limit). */
#define WALK_ADDR_MAX 10
/* How long a connection waits, idle, for another message of its destination. */
#define IDLE_KEEP_S 2
/* Walks in a row that may fail before the destination's queue fails with them. */
#define DEST_RETRY_WALKS 1

enum oconn_state {
	OC_MX,
	OC_ADDR,
	OC_CONNECT,
	OC_BUSY,
	OC_IDLE,
};

struct dest;

struct oconn {
	struct dest *dst;
	enum oconn_state state;
	struct dns_req *req;
	struct smtpc *c;
	struct outbound_delivery *cur;
	struct dns_mx_result hosts;
	size_t host_i;
	struct dns_addr_result addrs;
	size_t addr_i;
	unsigned tried;
	bool implicit_mx;
	bool any_tempfail; /* a DNS lookup of a host failed temporarily */
	struct smtpc_reply last; /* the last failure, reported if every address fails */
	char last_relay[DNS_NAME_MAX + 64]; /* the server that gave it, if one did */
	char last_host[DNS_NAME_MAX + 1];
	char relay[DNS_NAME_MAX + 64];
	struct event *idle_timer;
	struct oconn *prev, *next; /* the destination's connections */
};

struct dest {
	char name[DNS_NAME_MAX + 3];
	struct outbound *o;
	struct outbound_delivery *head, *tail;
	size_t queued;
	unsigned nconns;   /* every connection of this destination */
	unsigned walking;  /* connections not yet connected */
	unsigned dispatching; /* dest_dispatch() runs: the destination must stay */
	struct oconn *conns;
};

struct outbound {
	struct event_base *base;
	const struct config *cfg;
	struct dns *dns;
	SSL_CTX *ssl_ctx;
	struct strmap *dests;
	size_t nconns;
	char *auth_user, *auth_pass;
	bool freeing;
};

static void dest_dispatch(struct dest *dst);
static void walk_next_host(struct oconn *oc);

static void reply_set(struct smtpc_reply *r, bool temporary, const char *status, const char *fmt,
		      ...) __attribute__((format(printf, 4, 5)));

static void reply_set(struct smtpc_reply *r, bool temporary, const char *status, const char *fmt,
		      ...)
{
	va_list ap;
	memset(r, 0, sizeof *r);
	r->temporary = temporary;
	str_copy(r->status, sizeof r->status, status);
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof r->text, fmt, ap);
	va_end(ap);
}

bool outbound_destination(const char *address, char *dest, size_t destlen)
{
	const char *at = strrchr(address, '@');
	if (!at || at[1] == '\0' || !str_copy(dest, destlen, at + 1))
		return false;
	if (dest[0] != '[')
		str_lower(dest);
	return true;
}

/* --- destinations --------------------------------------------------------------------------- */

static struct dest *dest_get(struct outbound *o, const char *name)
{
	struct dest *dst = strmap_get(o->dests, name);
	if (dst)
		return dst;
	dst = calloc(1, sizeof *dst);
	if (!dst)
		return NULL;
	str_copy(dst->name, sizeof dst->name, name);
	dst->o = o;
	if (strmap_put(o->dests, name, dst) < 0) {
		free(dst);
		return NULL;
	}
	return dst;
}

static void dest_maybe_free(struct dest *dst)
{
	if (dst->queued > 0 || dst->nconns > 0 || dst->dispatching || dst->o->freeing)
		return;
	strmap_del(dst->o->dests, dst->name, NULL);
	free(dst);
}

static struct outbound_delivery *dest_pop(struct dest *dst)
{
	struct outbound_delivery *d = dst->head;
	if (d) {
		dst->head = d->next;
		if (!dst->head)
			dst->tail = NULL;
		d->next = NULL;
		dst->queued--;
	}
	return d;
}

/* Hand a delivery back to its owner with every recipient's outcome set to r (when not yet set). */
static void delivery_finish(struct outbound_delivery *d, const struct smtpc_reply *r)
{
	if (r) {
		for (size_t i = 0; i < d->msg.nrcpts; i++)
			d->msg.rcpts[i].reply = *r;
	}
	d->done(d);
}

/* Every queued delivery of dst fails with r (from relay, when a server gave it). */
static void dest_fail_queue(struct dest *dst, const struct smtpc_reply *r, const char *relay,
			    const char *host)
{
	struct outbound_delivery *d;
	while ((d = dest_pop(dst)) != NULL) {
		str_copy(d->relay, sizeof d->relay, relay);
		str_copy(d->relay_host, sizeof d->relay_host, host);
		log_info("qid=%s event=deferred_by_destination dest=%s error=%s", d->queue_id,
			 LOG_ESC(dst->name), LOG_ESC(r->text));
		delivery_finish(d, r);
	}
}

/* --- connections ---------------------------------------------------------------------------- */

static void oconn_free(struct oconn *oc, bool quit)
{
	struct dest *dst = oc->dst;
	struct outbound *o = dst->o;

	if (oc->req)
		dns_cancel(oc->req);
	if (oc->c) {
		if (quit)
			smtpc_quit(oc->c);
		else
			smtpc_free(oc->c);
	}
	if (oc->idle_timer)
		event_free(oc->idle_timer);
	if (oc->prev)
		oc->prev->next = oc->next;
	else
		dst->conns = oc->next;
	if (oc->next)
		oc->next->prev = oc->prev;
	if (oc->state != OC_BUSY && oc->state != OC_IDLE)
		dst->walking--;
	dst->nconns--;
	o->nconns--;
	free(oc);
}

/* A connection is gone: let the destinations that waited for a free slot go on. */
static void outbound_slot_freed(struct outbound *o)
{
	struct strmap_iter it;
	const char *key;
	void *val;
	enum { WANTING_MAX = 32 };
	char wanting[WANTING_MAX][DNS_NAME_MAX + 3];
	size_t n = 0;

	if (o->freeing)
		return;
	/* Collect names first: dispatching one destination may create or free others. */
	strmap_iter_init(&it, o->dests);
	while (n < WANTING_MAX && strmap_iter_next(&it, &key, &val)) {
		struct dest *dst = val;
		if (dst->queued > dst->walking)
			str_copy(wanting[n++], sizeof wanting[0], dst->name);
	}
	for (size_t i = 0; i < n; i++) {
		struct dest *dst = strmap_get(o->dests, wanting[i]);
		if (dst)
			dest_dispatch(dst);
	}
}

/* Every address of the walk failed (or DNS said no): the deliveries nobody else can take fail. */
static void walk_fail(struct oconn *oc, const struct smtpc_reply *r)
{
	struct dest *dst = oc->dst;
	struct outbound *o = dst->o;
	struct smtpc_reply copy = *r;
	char relay[sizeof oc->last_relay], host[sizeof oc->last_host];
	bool from_server = r == &oc->last && r->code != 0;
	str_copy(relay, sizeof relay, from_server ? oc->last_relay : "");
	str_copy(host, sizeof host, from_server ? oc->last_host : "");

	log_warn("event=destination_failed dest=%s tried=%u temporary=%s error=%s",
		 LOG_ESC(dst->name), oc->tried, copy.temporary ? "yes" : "no", LOG_ESC(copy.text));
	oconn_free(oc, false);
	/* Other connections of a healthy destination may still take the queue; a permanent
	 * answer (no such domain, null MX) holds for everything queued. */
	if (!copy.temporary || dst->nconns == dst->walking)
		dest_fail_queue(dst, &copy, relay, host);
	dest_maybe_free(dst);
	outbound_slot_freed(o);
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct oconn *oc = arg;
	struct dest *dst = oc->dst;
	struct outbound *o = dst->o;
	(void)fd;
	(void)what;
	oconn_free(oc, true);
	dest_maybe_free(dst);
	outbound_slot_freed(o);
}

static void oconn_take_work(struct oconn *oc);

static void on_sent(void *arg, const struct smtpc_reply *txn)
{
	struct oconn *oc = arg;
	struct outbound_delivery *d = oc->cur;
	const struct smtpc_info *info = smtpc_info(oc->c);
	(void)txn;

	oc->cur = NULL;
	str_copy(d->relay, sizeof d->relay, oc->relay);
	str_copy(d->relay_host, sizeof d->relay_host, oc->hosts.mx[oc->host_i].host);
	d->tls = info->tls;
	d->tls_verified = info->tls_verified;
	d->dsn = info->dsn;
	oc->state = OC_IDLE;
	delivery_finish(d, NULL);
	if (smtpc_usable(oc->c)) {
		oconn_take_work(oc);
		return;
	}
	struct dest *dst = oc->dst;
	struct outbound *o = dst->o;
	oconn_free(oc, false);
	dest_dispatch(dst); /* may free dst */
	outbound_slot_freed(o);
}

/* A connected, idle connection: carry the next delivery, or wait a moment for one. */
static void oconn_take_work(struct oconn *oc)
{
	struct dest *dst = oc->dst;
	struct outbound_delivery *d;

	/* The message is opened only now: thousands may wait in a destination's queue. */
	while ((d = dest_pop(dst)) != NULL && d->msg.fd < 0 && d->open_message) {
		int r = d->open_message(d);
		if (r == 0)
			break;
		struct smtpc_reply fail;
		reply_set(&fail, true, "4.3.0", "cannot open the queued message: %s", strerror(-r));
		delivery_finish(d, &fail);
	}

	if (!d) {
		oc->state = OC_IDLE;
		if (!oc->idle_timer)
			oc->idle_timer = evtimer_new(dst->o->base, on_idle_timeout, oc);
		struct timeval tv = { IDLE_KEEP_S, 0 };
		if (!oc->idle_timer || evtimer_add(oc->idle_timer, &tv) < 0) {
			struct outbound *o = dst->o;
			oconn_free(oc, true);
			dest_maybe_free(dst);
			outbound_slot_freed(o);
		}
		return;
	}
	if (oc->idle_timer)
		evtimer_del(oc->idle_timer);
	oc->state = OC_BUSY;
	oc->cur = d;
	smtpc_send(oc->c, &d->msg, on_sent, oc);
}

static void walk_next_addr(struct oconn *oc);

static void on_ready(void *arg, const struct smtpc_reply *failure)
{
	struct oconn *oc = arg;
	struct dest *dst = oc->dst;

	if (failure) {
		oc->c = NULL; /* already gone */
		oc->last = *failure;
		/* A reply names its server in the notices; our own reasons say which one. */
		if (failure->code) {
			str_copy(oc->last_relay, sizeof oc->last_relay, oc->relay);
			str_copy(oc->last_host, sizeof oc->last_host, oc->hosts.mx[oc->host_i].host);
		} else {
			if (!strstr(failure->text, oc->hosts.mx[oc->host_i].host))
				str_format(oc->last.text, sizeof oc->last.text, "%s: %s", oc->relay,
					   failure->text);
			oc->last_relay[0] = oc->last_host[0] = '\0';
		}
		log_info("event=connect_failed dest=%s relay=%s error=%s", LOG_ESC(dst->name),
			 LOG_ESC(oc->relay), LOG_ESC(failure->text));
		oc->addr_i++;
		walk_next_addr(oc);
		return;
	}
	const struct smtpc_info *info = smtpc_info(oc->c);
	log_info("event=connected dest=%s relay=%s tls=%s%s%s verified=%s", LOG_ESC(dst->name),
		 LOG_ESC(oc->relay), info->tls ? info->tls_version : "no", info->tls ? " cipher=" : "",
		 info->tls ? info->tls_cipher : "", info->tls_verified ? "yes" : "no");
	dst->walking--;
	oconn_take_work(oc);
}

static bool is_relayhost(const struct outbound *o)
{
	return o->cfg->relayhost != NULL;
}

static void walk_next_addr(struct oconn *oc)
{
	struct dest *dst = oc->dst;
	struct outbound *o = dst->o;
	const struct config *cfg = o->cfg;

	if (oc->addr_i >= oc->addrs.n || oc->tried >= WALK_ADDR_MAX) {
		oc->host_i++;
		walk_next_host(oc);
		return;
	}
	const struct sockaddr *sa = (const struct sockaddr *)&oc->addrs.addr[oc->addr_i];
	char ip[NETADDR_TEXT_MAX];
	const char *host = oc->hosts.mx[oc->host_i].host;
	snprintf(oc->relay, sizeof oc->relay, "%s[%s]:%u", host, netaddr_ip_text(sa, ip, sizeof ip),
		 netaddr_port(sa));

	struct smtpc_params p = {
		.helo = cfg->hostname,
		.peer_name = host,
		.addr = sa,
		.addrlen = oc->addrs.addrlen[oc->addr_i],
		.tls = SMTPC_TLS_OPPORTUNISTIC,
		.ssl_ctx = o->ssl_ctx,
		.connect_timeout = cfg->outbound_connect_timeout,
		.command_timeout = cfg->outbound_command_timeout,
		.data_timeout = cfg->outbound_data_timeout,
	};
	if (is_relayhost(o)) {
		p.tls = cfg->relayhost_tls == RELAYHOST_IMPLICIT ? SMTPC_TLS_IMPLICIT
			: cfg->relayhost_tls == RELAYHOST_NONE	 ? SMTPC_TLS_NONE
								 : SMTPC_TLS_STARTTLS;
		p.tls_verify = p.tls != SMTPC_TLS_NONE && cfg->relayhost_tls_verify;
		p.auth_user = o->auth_user;
		p.auth_pass = o->auth_pass;
	}
	oc->tried++;
	oc->state = OC_CONNECT;
	oc->c = smtpc_connect(o->base, &p, on_ready, oc);
	if (!oc->c) {
		struct smtpc_reply r;
		reply_set(&r, true, "4.3.0", "out of memory");
		walk_fail(oc, &r);
	}
}

static uint16_t dest_port(const struct outbound *o)
{
	const struct config *cfg = o->cfg;
	if (!is_relayhost(o))
		return (uint16_t)cfg->outbound_port;
	if (cfg->relayhost_port)
		return (uint16_t)cfg->relayhost_port;
	return cfg->relayhost_tls == RELAYHOST_IMPLICIT ? 465 : 587;
}

static void on_addr(void *arg, const struct dns_addr_result *res)
{
	struct oconn *oc = arg;
	const char *host = oc->hosts.mx[oc->host_i].host;

	oc->req = NULL;
	if (res->status == DNS_OK && res->n > 0) {
		oc->addrs = *res;
		oc->addr_i = 0;
		walk_next_addr(oc);
		return;
	}
	if (res->status == DNS_TEMPFAIL) {
		oc->any_tempfail = true;
		reply_set(&oc->last, true, "4.4.3", "lookup of %s failed: %s", host, res->error);
	} else if (oc->implicit_mx) {
		/* No MX and no address: the domain cannot receive mail. */
		reply_set(&oc->last, false, "5.1.2",
			  "Host or domain name not found: %s has no MX, A or AAAA record", host);
	} else if (oc->last.text[0] == '\0' || !oc->last.temporary) {
		reply_set(&oc->last, true, "4.4.4",
			  "Host %s (MX of %s) not found: %s", host, oc->dst->name, res->error);
	}
	oc->host_i++;
	walk_next_host(oc);
}

static void walk_next_host(struct oconn *oc)
{
	struct dest *dst = oc->dst;
	struct outbound *o = dst->o;

	if (oc->host_i >= oc->hosts.n || oc->tried >= WALK_ADDR_MAX) {
		if (oc->last.text[0] == '\0')
			reply_set(&oc->last, true, "4.4.1", "no server of %s could be reached",
				  dst->name);
		walk_fail(oc, &oc->last);
		return;
	}
	oc->state = OC_ADDR;
	oc->addrs.n = 0;
	oc->req = dns_lookup_addr(o->dns, oc->hosts.mx[oc->host_i].host, dest_port(o), on_addr, oc);
	if (!oc->req) {
		struct smtpc_reply r;
		reply_set(&r, true, "4.3.0", "out of memory");
		walk_fail(oc, &r);
	}
}

/* RFC 5321 5.1: when we are one of the MX hosts, only the more preferred ones may be used. */
static void drop_self_and_less_preferred(struct oconn *oc, const char *self)
{
	for (size_t i = 0; i < oc->hosts.n; i++) {
		if (str_casecmp(oc->hosts.mx[i].host, self) == 0) {
			unsigned pref = oc->hosts.mx[i].pref;
			size_t keep = 0;
			while (keep < oc->hosts.n && oc->hosts.mx[keep].pref < pref)
				keep++;
			oc->hosts.n = keep;
			return;
		}
	}
}

static void on_mx(void *arg, const struct dns_mx_result *res)
{
	struct oconn *oc = arg;
	struct dest *dst = oc->dst;
	struct smtpc_reply r;

	oc->req = NULL;
	switch (res->status) {
	case DNS_OK:
		if (res->null_mx) {
			reply_set(&r, false, "5.1.10",
				  "Domain %s does not accept mail (null MX, RFC 7505)", dst->name);
			walk_fail(oc, &r);
			return;
		}
		oc->hosts = *res;
		drop_self_and_less_preferred(oc, dst->o->cfg->hostname);
		if (oc->hosts.n == 0) {
			reply_set(&r, false, "5.4.6", "mail for %s loops back to myself", dst->name);
			walk_fail(oc, &r);
			return;
		}
		break;
	case DNS_NODATA:
		/* No MX: the domain itself is the host (RFC 5321 5.1, implicit MX). */
		oc->implicit_mx = true;
		oc->hosts.n = 1;
		oc->hosts.mx[0].pref = 0;
		str_copy(oc->hosts.mx[0].host, sizeof oc->hosts.mx[0].host, dst->name);
		break;
	case DNS_NXDOMAIN:
	case DNS_BADNAME:
		reply_set(&r, false, "5.1.2", "Host or domain name not found: %s (%s)", dst->name,
			  res->error);
		walk_fail(oc, &r);
		return;
	case DNS_TEMPFAIL:
	default:
		reply_set(&r, true, "4.4.3", "MX lookup of %s failed: %s", dst->name, res->error);
		walk_fail(oc, &r);
		return;
	}
	oc->host_i = 0;
	walk_next_host(oc);
}

/* An address literal "[192.0.2.1]" or "[IPv6:2001:db8::1]" as the only host. */
static bool literal_addr(struct oconn *oc, const char *name, uint16_t port)
{
	char ip[DNS_NAME_MAX + 1];
	size_t len = strlen(name);
	if (len < 3 || name[0] != '[' || name[len - 1] != ']')
		return false;
	const char *p = name + 1;
	len -= 2;
	if (len > 5 && strncasecmp(p, "IPv6:", 5) == 0) {
		p += 5;
		len -= 5;
	}
	if (len >= sizeof ip)
		return false;
	memcpy(ip, p, len);
	ip[len] = '\0';
	struct sockaddr_storage *ss = &oc->addrs.addr[0];
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
	if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		oc->addrs.addrlen[0] = sizeof *in;
	} else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		oc->addrs.addrlen[0] = sizeof *in6;
	} else {
		return false;
	}
	oc->addrs.status = DNS_OK;
	oc->addrs.n = 1;
	oc->hosts.n = 1;
	str_copy(oc->hosts.mx[0].host, sizeof oc->hosts.mx[0].host, name);
	return true;
}

/* Open one more connection to dst: start its walk. */
static void dest_open(struct dest *dst)
{
	struct outbound *o = dst->o;
	struct oconn *oc = calloc(1, sizeof *oc);
	if (!oc)
		return; /* the queue waits for another connection or the next attempt */
	oc->dst = dst;
	oc->next = dst->conns;
	if (dst->conns)
		dst->conns->prev = oc;
	dst->conns = oc;
	dst->nconns++;
	dst->walking++;
	o->nconns++;

	struct smtpc_reply r;
	if (is_relayhost(o)) {
		oc->hosts.n = 1;
		str_copy(oc->hosts.mx[0].host, sizeof oc->hosts.mx[0].host, o->cfg->relayhost);
		walk_next_host(oc);
	} else if (dst->name[0] == '[') {
		if (literal_addr(oc, dst->name, dest_port(o))) {
			walk_next_addr(oc);
		} else {
			reply_set(&r, false, "5.1.2", "unusable address literal %s", dst->name);
			walk_fail(oc, &r);
		}
	} else {
		oc->state = OC_MX;
		oc->req = dns_lookup_mx(o->dns, dst->name, on_mx, oc);
		if (!oc->req) {
			reply_set(&r, true, "4.3.0", "out of memory");
			walk_fail(oc, &r);
		}
	}
}

/* Give queued deliveries to idle connections, and open connections for the rest.
 * Frees dst when it is left with nothing to do: callers must not use it afterwards. */
static void dest_dispatch(struct dest *dst)
{
	struct outbound *o = dst->o;
	const struct config *cfg = o->cfg;

	dst->dispatching++;
	for (struct oconn *oc = dst->conns; oc && dst->queued > 0;) {
		struct oconn *next = oc->next;
		if (oc->state == OC_IDLE && !oc->cur && smtpc_usable(oc->c))
			oconn_take_work(oc);
		oc = next;
	}
	while (dst->queued > dst->walking && dst->nconns < cfg->destination_concurrency &&
	       o->nconns < cfg->outbound_max_connections) {
		unsigned before = dst->nconns;
		dest_open(dst);
		if (dst->nconns <= before)
			break; /* out of memory, or the walk ended at once */
	}
	dst->dispatching--;
	dest_maybe_free(dst);
}

void outbound_submit(struct outbound *o, struct outbound_delivery *d)
{
	const char *name = is_relayhost(o) ? "[relayhost]" : d->dest;
	struct dest *dst = dest_get(o, name);
	d->next = NULL;
	d->relay[0] = '\0';
	d->relay_host[0] = '\0';
	if (!dst) {
		struct smtpc_reply r;
		reply_set(&r, true, "4.3.0", "out of memory");
		delivery_finish(d, &r);
		return;
	}
	if (dst->tail)
		dst->tail->next = d;
	else
		dst->head = d;
	dst->tail = d;
	dst->queued++;
	dest_dispatch(dst);
}

size_t outbound_connections(const struct outbound *o)
{
	return o->nconns;
}

/* --- setup ---------------------------------------------------------------------------------- */

struct outbound *outbound_new(struct event_base *base, const struct config *cfg,
			      const char *auth_user, const char *auth_pass, char *err, size_t errlen)
{
	struct outbound *o = calloc(1, sizeof *o);
	if (!o) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o->base = base;
	o->cfg = cfg;
	o->dests = strmap_new();
	if (auth_user) {
		o->auth_user = strdup(auth_user);
		o->auth_pass = strdup(auth_pass ? auth_pass : "");
	}
	if (!o->dests || (auth_user && (!o->auth_user || !o->auth_pass))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	o->dns = dns_new(base, (const char *const *)cfg->dns_servers, cfg->ndns_servers, err,
			 errlen);
	if (!o->dns)
		goto fail;
	o->ssl_ctx = smtpc_tls_ctx_new(cfg->outbound_ca_file, err, errlen);
	if (!o->ssl_ctx)
		goto fail;
	return o;
fail:
	outbound_free(o);
	return NULL;
}

static void dest_free(void *p)
{
	struct dest *dst = p;
	while (dst->conns)
		oconn_free(dst->conns, false);
	free(dst);
}

void outbound_free(struct outbound *o)
{
	if (!o)
		return;
	o->freeing = true;
	if (o->dests)
		strmap_free(o->dests, dest_free);
	if (o->dns)
		dns_free(o->dns);
	if (o->ssl_ctx)
		SSL_CTX_free(o->ssl_ctx);
	if (o->auth_pass)
		explicit_bzero(o->auth_pass, strlen(o->auth_pass));
	free(o->auth_user);
	free(o->auth_pass);
	free(o);
}
