/*
 * dnsbl: DNS block- and allowlists. See dnsbl.h.
 *
 * A check holds one query per (zone, name), all started at once. A query
 * asks for A records; when one of them is a listing code of a blocklist, the
 * same name is asked for TXT (the reason) before the query counts as done.
 * The check ends when every query is done (from the last DNS callback), as
 * soon as an allowlist lists the client, or at the deadline (from its
 * timer); what is still out then is cancelled. The
 * verdict is computed then, from the queries' results in their fixed order,
 * so it does not depend on which server answered first.
 *
 * Security: answers are untrusted. Only A records of the asked name are read
 * (the resolver's parser checked the message), and the TXT text is copied
 * through dnsbl_reason_copy() (printable ASCII, bounded) before it can reach
 * a reply or a log line. Every name is built with a length check.
 */
#include "policy/dnsbl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "util/log.h"
#include "util/str.h"

#define SID_MAX 32
/* A query name's text, without the trailing dot (RFC 1035 2.3.4: 255 octets on the wire). */
#define NAME_TEXT_MAX 253

/* --- codes ---------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int codes_error(char *err, size_t errlen,
							    const char *fmt, ...)
{
	va_list ap;
	if (errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A decimal octet (1 to 3 digits, at most 255) at *p; advances *p. */
static bool parse_octet(const char **p, const char *end, unsigned *v)
{
	unsigned n = 0, digits = 0;
	while (*p < end && ascii_isdigit(**p) && digits < 4) {
		n = n * 10 + (unsigned)(**p - '0');
		(*p)++;
		digits++;
	}
	if (digits == 0 || digits > 3 || n > 255)
		return false;
	*v = n;
	return true;
}

static void set_bits(uint8_t bits[32], unsigned lo, unsigned hi)
{
	for (unsigned v = lo; v <= hi; v++)
		bits[v >> 3] |= (uint8_t)(1u << (v & 7));
}

/* "127.0.[2..15].[0;1]": four octets, each a number or a bracketed set of numbers and ranges. */
static bool parse_pattern(struct slice s, struct dnsbl_code *c)
{
	const char *p = s.ptr, *end = s.ptr + s.len;
	unsigned a, b;

	for (int i = 0; i < 4; i++) {
		if (i > 0 && (p == end || *p++ != '.'))
			return false;
		if (p < end && *p == '[') {
			p++;
			for (;;) {
				if (!parse_octet(&p, end, &a))
					return false;
				b = a;
				if (end - p >= 2 && p[0] == '.' && p[1] == '.') {
					p += 2;
					if (!parse_octet(&p, end, &b) || b < a)
						return false;
				}
				set_bits(c->octet[i], a, b);
				if (p < end && *p == ';') {
					p++;
					continue;
				}
				if (p < end && *p == ']') {
					p++;
					break;
				}
				return false;
			}
		} else {
			if (!parse_octet(&p, end, &a))
				return false;
			set_bits(c->octet[i], a, a);
		}
	}
	return p == end;
}

static bool parse_ipv4(struct slice s, uint32_t *out)
{
	char tmp[INET_ADDRSTRLEN];
	struct in_addr in;

	if (!slice_copy(tmp, sizeof tmp, s) || inet_pton(AF_INET, tmp, &in) != 1)
		return false;
	*out = ntohl(in.s_addr);
	return true;
}

int dnsbl_codes_parse(struct slice s, struct dnsbl_codes *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (s.len == 0)
		return codes_error(err, errlen, "empty codes");
	const char *p = s.ptr, *end = s.ptr + s.len;
	while (p <= end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		struct slice item = { p, comma ? (size_t)(comma - p) : (size_t)(end - p) };
		int shown = item.len > 40 ? 40 : (int)item.len;
		if (out->n == DNSBL_CODES_MAX)
			return codes_error(err, errlen, "more than %d codes", DNSBL_CODES_MAX);
		struct dnsbl_code *c = &out->item[out->n];
		const char *dash = memchr(item.ptr, '-', item.len);
		if (item.len && memchr(item.ptr, '[', item.len)) {
			if (!parse_pattern(item, c))
				return codes_error(err, errlen, "bad code pattern '%.*s'", shown,
						   item.ptr);
		} else if (dash) {
			struct slice lo = { item.ptr, (size_t)(dash - item.ptr) };
			struct slice hi = { dash + 1, item.len - lo.len - 1 };
			c->range = true;
			if (!parse_ipv4(lo, &c->lo) || !parse_ipv4(hi, &c->hi) || c->hi < c->lo)
				return codes_error(err, errlen, "bad code range '%.*s'", shown,
						   item.ptr);
		} else {
			c->range = true;
			if (!parse_ipv4(item, &c->lo))
				return codes_error(err, errlen, "bad code '%.*s'", shown, item.ptr);
			c->hi = c->lo;
		}
		out->n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

bool dnsbl_answer_is_error(uint32_t a)
{
	return a == 0x7f0000ffu || (a & 0xffffff00u) == 0x7fffff00u;
}

static bool code_match(const struct dnsbl_code *c, uint32_t a)
{
	if (c->range)
		return a >= c->lo && a <= c->hi;
	for (int i = 0; i < 4; i++) {
		unsigned v = (a >> (24 - 8 * i)) & 0xff;
		if (!(c->octet[i][v >> 3] & (1u << (v & 7))))
			return false;
	}
	return true;
}

bool dnsbl_codes_match(const struct dnsbl_codes *codes, uint32_t a)
{
	if (dnsbl_answer_is_error(a))
		return false;
	if (codes->n == 0)
		return (a >> 24) == 127 && a > 0x7f000001u;
	for (size_t i = 0; i < codes->n; i++)
		if (code_match(&codes->item[i], a))
			return true;
	return false;
}

bool dnsbl_zone_valid(struct slice zone)
{
	return zone.len <= DNSBL_ZONE_MAX && addr_domain_valid(zone, false);
}

void dnsbl_reason_copy(char *dst, size_t dstlen, const char *txt, size_t len)
{
	size_t o = 0;

	if (dstlen == 0)
		return;
	for (size_t i = 0; i < len && o + 1 < dstlen && o < DNSBL_REASON_MAX; i++) {
		unsigned char c = (unsigned char)txt[i];
		dst[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[o] = '\0';
}

/* --- checks --------------------------------------------------------------- */

struct dnsbl_query {
	struct dnsbl_check *check;
	const struct dnsbl_zone *zone;
	bool allow;          /* an allowlist zone */
	unsigned name_index; /* of the names checked */
	char name[DNS_NAME_MAX + 1];
	struct dns_req *req; /* the lookup in flight (A, then TXT), NULL when done */
	bool listed;
	char answer[INET_ADDRSTRLEN];
	char reason[DNSBL_REASON_MAX + 1];
};

struct dnsbl_check {
	struct dns_resolver res;
	struct event *timer;
	dnsbl_done_fn *fn;
	void *arg;
	char sid[SID_MAX];
	size_t n, pending;
	unsigned errors;
	struct dnsbl_query q[];
};

static void check_free(struct dnsbl_check *c)
{
	if (c->timer)
		event_free(c->timer);
	free(c);
}

/* Cancel every lookup still out; their number. */
static unsigned cancel_lookups(struct dnsbl_check *c, const char **zone)
{
	unsigned n = 0;
	for (size_t i = 0; i < c->n; i++) {
		if (c->q[i].req) {
			c->res.cancel(c->res.ctx, c->q[i].req);
			c->q[i].req = NULL;
			if (zone && n == 0)
				*zone = c->q[i].zone->zone;
			n++;
		}
	}
	return n;
}

/* The verdict from the queries in their order; then the callback, then the check is gone. */
static void check_finish(struct dnsbl_check *c, unsigned timeouts, const char *timed_out_zone)
{
	struct dnsbl_result r;
	const struct dnsbl_query *hit = NULL;

	memset(&r, 0, sizeof r);
	r.lookups = (unsigned)c->n;
	r.errors = c->errors;
	r.timeouts = timeouts;
	r.timed_out_zone = timed_out_zone;
	for (size_t i = 0; i < c->n && !hit; i++)
		if (c->q[i].allow && c->q[i].listed)
			hit = &c->q[i];
	for (size_t i = 0; i < c->n && !hit; i++)
		if (!c->q[i].allow && c->q[i].listed)
			hit = &c->q[i];
	if (hit) {
		r.verdict = hit->allow ? DNSBL_ALLOWED : DNSBL_LISTED;
		r.zone = hit->zone->zone;
		r.name_index = hit->name_index;
		memcpy(r.answer, hit->answer, sizeof r.answer);
		memcpy(r.reason, hit->reason, sizeof r.reason);
	}
	c->fn(c->arg, &r);
	check_free(c);
}

static void query_done(struct dnsbl_query *q)
{
	struct dnsbl_check *c = q->check;
	if (--c->pending == 0) {
		evtimer_del(c->timer);
		check_finish(c, 0, NULL);
	}
}

static void on_txt(void *arg, const struct dns_result *res)
{
	struct dnsbl_query *q = arg;

	q->req = NULL;
	if (res->status == DNS_OK && res->n > 0)
		dnsbl_reason_copy(q->reason, sizeof q->reason, res->rr[0].text, res->rr[0].len);
	query_done(q);
}

static void on_a(void *arg, const struct dns_result *res)
{
	struct dnsbl_query *q = arg;
	struct dnsbl_check *c = q->check;

	q->req = NULL;
	if (res->status == DNS_TEMPFAIL)
		c->errors++;
	for (size_t i = 0; res->status == DNS_OK && i < res->n && !q->listed; i++) {
		if (res->rr[i].family != AF_INET)
			continue;
		uint32_t a = ntohl(res->rr[i].addr.v4.s_addr);
		if (dnsbl_answer_is_error(a)) {
			char text[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &res->rr[i].addr.v4, text, sizeof text);
			log_warn("sid=%s event=dnsbl_error zone=%s answer=%s note=\"the list refuses "
				 "this query (a public resolver, or over its limit): use a local "
				 "resolver\"", c->sid, q->zone->zone, text);
			continue;
		}
		if (dnsbl_codes_match(&q->zone->codes, a)) {
			q->listed = true;
			inet_ntop(AF_INET, &res->rr[i].addr.v4, q->answer, sizeof q->answer);
		}
	}
	if (q->listed && q->allow) {
		/* Allowed whatever the blocklists say: decided now, what is still out is moot. */
		cancel_lookups(c, NULL);
		evtimer_del(c->timer);
		check_finish(c, 0, NULL);
		return;
	}
	if (q->listed) {
		/* The reason is wanted for the reply; without memory, the reply goes without. */
		q->req = c->res.lookup(c->res.ctx, q->name, DNS_T_TXT, on_txt, q);
		if (q->req)
			return;
	}
	query_done(q);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct dnsbl_check *c = arg;
	const char *zone = NULL;
	(void)fd;
	(void)what;
	unsigned n = cancel_lookups(c, &zone);
	check_finish(c, n, zone);
}

/* A check with room for n queries; the caller fills them, then check_start(). */
static struct dnsbl_check *check_new(const struct dns_resolver *res, struct event_base *base,
				     size_t n, const char *sid, dnsbl_done_fn *fn, void *arg)
{
	size_t size;
	if (!size_mul(n, sizeof(struct dnsbl_query), &size) ||
	    !size_add(size, sizeof(struct dnsbl_check), &size))
		return NULL;
	struct dnsbl_check *c = calloc(1, size);
	if (!c)
		return NULL;
	c->res = *res;
	c->fn = fn;
	c->arg = arg;
	str_copy(c->sid, sizeof c->sid, sid ? sid : "-");
	c->timer = evtimer_new(base, on_timeout, c);
	if (!c->timer) {
		free(c);
		return NULL;
	}
	return c;
}

static void add_query(struct dnsbl_check *c, const struct dnsbl_zone *zone, bool allow,
		      unsigned name_index, const char *name)
{
	struct dnsbl_query *q = &c->q[c->n++];
	q->check = c;
	q->zone = zone;
	q->allow = allow;
	q->name_index = name_index;
	memcpy(q->name, name, strlen(name) + 1);
}

/* Start every query and the deadline; NULL (and nothing left) when out of memory. */
static struct dnsbl_check *check_start(struct dnsbl_check *c, unsigned timeout_ms)
{
	for (size_t i = 0; i < c->n; i++) {
		c->q[i].req = c->res.lookup(c->res.ctx, c->q[i].name, DNS_T_A, on_a, &c->q[i]);
		if (!c->q[i].req) {
			cancel_lookups(c, NULL);
			check_free(c);
			return NULL;
		}
	}
	c->pending = c->n;
	/* Nothing to ask: the timer delivers the (empty) verdict from the loop. */
	struct timeval tv = { (time_t)(c->n ? timeout_ms / 1000 : 0),
			      (suseconds_t)(c->n ? (timeout_ms % 1000) * 1000 : 0) };
	evtimer_add(c->timer, &tv);
	return c;
}

struct dnsbl_check *dnsbl_check_client(const struct dns_resolver *res, struct event_base *base,
				       const struct dnsbl_list *block,
				       const struct dnsbl_list *allow, const struct sockaddr *sa,
				       unsigned timeout_ms, const char *sid, dnsbl_done_fn *fn,
				       void *arg)
{
	char name[DNS_NAME_MAX + 1];
	size_t n;

	if (!size_add(block->n, allow->n, &n))
		return NULL;
	struct dnsbl_check *c = check_new(res, base, n, sid, fn, arg);
	if (!c)
		return NULL;
	for (int pass = 0; pass < 2; pass++) {
		const struct dnsbl_list *list = pass ? allow : block;
		for (size_t i = 0; i < list->n; i++)
			if (dns_reverse_name(sa, list->zones[i].zone, name, sizeof name) == 0)
				add_query(c, &list->zones[i], pass == 1, 0, name);
	}
	return check_start(c, timeout_ms);
}

struct dnsbl_check *dnsbl_check_domains(const struct dns_resolver *res, struct event_base *base,
					const struct dnsbl_list *block,
					const char *const *domains, size_t ndomains,
					unsigned timeout_ms, const char *sid, dnsbl_done_fn *fn,
					void *arg)
{
	char name[DNS_NAME_MAX + 1];
	size_t n;

	if (ndomains > DNSBL_NAMES_MAX || !size_mul(block->n, ndomains, &n))
		return NULL;
	struct dnsbl_check *c = check_new(res, base, n, sid, fn, arg);
	if (!c)
		return NULL;
	for (size_t i = 0; i < block->n; i++) {
		for (size_t k = 0; k < ndomains; k++) {
			/* A name of more than 253 octets cannot be asked: not listed. */
			if (!domains[k] || !str_format(name, NAME_TEXT_MAX + 1, "%s.%s",
						       domains[k], block->zones[i].zone))
				continue;
			str_lower(name);
			add_query(c, &block->zones[i], false, (unsigned)k, name);
		}
	}
	return check_start(c, timeout_ms);
}

void dnsbl_check_cancel(struct dnsbl_check *c)
{
	if (!c)
		return;
	cancel_lookups(c, NULL);
	check_free(c);
}
