/*
 * spf: check_host() of RFC 7208 as an asynchronous state machine, and the
 * Received-SPF / Authentication-Results texts. See spf.h for the contract.
 *
 * Evaluation (RFC 7208 4.4-4.8, 5, 6): a stack of frames, one per
 * check_host() level; "include" pushes one, "redirect" replaces the top one
 * (so an included record's redirect still answers the include). One DNS
 * query is in flight at a time: every handler of an answer returns GO (the
 * evaluation goes on in step()) or STOP (a query was sent, or the check has
 * finished and is freed, so nothing may touch it). The whole record is
 * parsed before its first term runs (4.6), so a syntax error anywhere is a
 * permerror even after an earlier match would have ended evaluation.
 *
 * Results: temperror and permerror end the whole check at once, whatever the
 * depth (5.2: they propagate through include). include maps pass to a match,
 * fail/softfail/neutral to no match, none to permerror. A redirect to a
 * domain without a record is a permerror (6.1).
 *
 * DNS (5): NXDOMAIN counts as no records; any other error of a term's own
 * query is a temperror, except for "ptr", where it is no match (5.5), and
 * for the address lookups that validate PTR names, which skip the name. The
 * address of an MX or PTR name and the exp= TXT do not count as terms or
 * void lookups; all queries count toward SPF_QUERIES_MAX. Names from
 * macros that are not valid DNS names (empty or overlong labels) make the
 * mechanism not match without a query; the suite allows either this or a
 * permerror (4.8, 5 and the openspf "invalid-domain-*" cases).
 *
 * %{p} (7.3): the PTR names of the client (first 10) are fetched once per
 * check and each validated once (forward lookup includes the client); the
 * "ptr" mechanism shares this cache. p prefers the domain itself, then a
 * subdomain of it, then any validated name, else "unknown".
 *
 * Explanation (6.2): only for a final fail, from the exp= of the record that
 * decided at the top level (a redirect's target, never an included
 * record's); a DNS problem, no or several TXT records, or a bad macro
 * falls back to SPF_DEFAULT_EXPLANATION. Bytes outside SP and visible ASCII
 * (possible only through the sender or HELO) become '?'.
 */
#include "policy/spf.h"

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/str.h"

/* An include chain can be at most as deep as the terms that may open it. */
#define SPF_DEPTH_MAX (SPF_LOOKUPS_MAX + 2)
/* Longest HELO argument kept for %{h} and the headers. */
#define SPF_HELO_MAX SPF_VALUE_MAX
/* Longest HELO shown as helo= in Received-SPF (RFC 5321: a domain is <= 255). */
#define SPF_HEADER_HELO_MAX 255
#define HEADER_WIDTH 78

enum flow { GO, STOP };

struct spf_frame {
	char domain[SPF_DOMAIN_MAX + 1];
	char *text; /* the record (owned); rec's slices point into it */
	struct spf_record rec;
	bool loaded;
	bool via_redirect;
	size_t next;                   /* the next term to evaluate */
	const struct spf_term *include; /* in the parent frame: the term that opened this one */
};

enum ptr_state { PTR_UNKNOWN, PTR_VALID, PTR_INVALID };

struct ptr_name {
	char name[SPF_DOMAIN_MAX + 1];
	enum ptr_state state;
};

struct spf_check;
typedef enum flow then_fn(struct spf_check *c, const struct dns_result *res);
typedef enum flow resume_fn(struct spf_check *c);

struct spf_check {
	struct dns_resolver r;
	struct event *deferred; /* delivers an outcome decided without DNS */
	struct dns_req *req;
	then_fn *then;
	spf_done_fn *fn;
	void *arg;
	bool starting, start_failed;
	bool explaining; /* the result is fail: only the explanation is left to find */

	struct sockaddr_storage client;
	struct spf_macro_ctx mc;
	char local[SPF_SENDER_MAX + 1];
	char helo[SPF_HELO_MAX + 1];
	char receiver[SPF_DOMAIN_MAX + 1];
	char validated[SPF_DOMAIN_MAX + 1];

	struct spf_frame frames[SPF_DEPTH_MAX];
	size_t depth;
	unsigned voids;

	const struct spf_term *term; /* the term whose query is in flight */
	char target[SPF_DOMAIN_MAX + 1];
	char mx[SPF_MX_MAX][SPF_DOMAIN_MAX + 1];
	size_t nmx, imx;

	/* The client's PTR names, shared by "ptr" and %{p}. */
	bool ptr_fetched;
	enum dns_status ptr_status;
	struct ptr_name ptr[SPF_PTR_MAX];
	size_t nptr, iptr;
	bool ptr_for_p;     /* the PTR work in flight is for %{p} */
	bool p_ready;       /* every PTR name has been validated */
	resume_fn *p_then;  /* what waits for p_ready */
	char *exp_text;     /* an exp= TXT waiting for %{p} */

	struct spf_outcome out;
};

static enum flow step_once(struct spf_check *c);
static enum flow fail_default(struct spf_check *c);

static struct spf_frame *top(struct spf_check *c)
{
	return &c->frames[c->depth - 1];
}

static void frame_clear(struct spf_frame *f)
{
	spf_record_free(&f->rec);
	free(f->text);
	memset(f, 0, sizeof *f);
}

static void check_free(struct spf_check *c)
{
	for (size_t i = 0; i < c->depth; i++)
		frame_clear(&c->frames[i]);
	if (c->deferred)
		event_free(c->deferred);
	free(c->exp_text);
	free(c);
}

const char *spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_NONE: return "none";
	case SPF_NEUTRAL: return "neutral";
	case SPF_PASS: return "pass";
	case SPF_FAIL: return "fail";
	case SPF_SOFTFAIL: return "softfail";
	case SPF_TEMPERROR: return "temperror";
	case SPF_PERMERROR: return "permerror";
	}
	return "unknown";
}

/* The end: the callback runs, then the check is freed. Always STOP. */
static enum flow finish(struct spf_check *c, enum spf_result r)
{
	c->out.result = r;
	log_debug("event=spf result=%s domain=%s lookups=%u queries=%u mechanism=%s problem=%s",
		  spf_result_name(r), LOG_ESC(c->out.domain), c->out.lookups, c->out.queries,
		  LOG_ESC(c->out.mechanism), LOG_ESC(c->out.problem));
	c->fn(c->arg, &c->out);
	check_free(c);
	return STOP;
}

static enum flow error_result(struct spf_check *c, enum spf_result r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum flow error_result(struct spf_check *c, enum spf_result r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->out.problem, sizeof c->out.problem, fmt, ap);
	va_end(ap);
	return finish(c, r);
}

static void on_dns(void *arg, const struct dns_result *res)
{
	struct spf_check *c = arg;
	then_fn *then = c->then;

	c->req = NULL;
	if (then(c, res) == GO)
		while (step_once(c) == GO)
			;
}

/* Send one query; its answer goes to then. Always STOP. */
static enum flow ask(struct spf_check *c, const char *name, enum dns_type type, then_fn *then)
{
	if (c->out.queries >= SPF_QUERIES_MAX) {
		if (c->explaining)
			return fail_default(c);
		return error_result(c, SPF_PERMERROR, "more than %d DNS queries", SPF_QUERIES_MAX);
	}
	c->out.queries++;
	c->then = then;
	c->req = c->r.lookup(c->r.ctx, name, type, on_dns, c);
	if (!c->req) {
		if (c->starting) {
			c->start_failed = true;
			return STOP;
		}
		if (c->explaining)
			return fail_default(c);
		return error_result(c, SPF_TEMPERROR, "out of memory");
	}
	return STOP;
}

static enum dns_type addr_type(const struct spf_check *c)
{
	return c->mc.ipv6 ? DNS_T_AAAA : DNS_T_A;
}

/* Does the address record rr fall in the client's network of prefix bits? */
static bool rr_matches(const struct spf_check *c, const struct dns_rr *rr, unsigned cidr4,
		       unsigned cidr6)
{
	struct cidr net = { 0 };

	if (rr->family != (c->mc.ipv6 ? AF_INET6 : AF_INET))
		return false;
	net.family = rr->family;
	if (rr->family == AF_INET) {
		memcpy(net.addr, &rr->addr.v4, 4);
		net.prefix = cidr4;
	} else {
		memcpy(net.addr, &rr->addr.v6, 16);
		net.prefix = cidr6;
	}
	return cidr_match(&net, (const struct sockaddr *)&c->client);
}

static bool name_is_under(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (n == d)
		return str_casecmp(name, domain) == 0;
	return n > d && name[n - d - 1] == '.' && str_casecmp(name + n - d, domain) == 0;
}

/* %{p} for the current domain (7.3), from the validated PTR names. */
static void choose_validated(struct spf_check *c, const char *domain)
{
	const char *best = NULL;
	int rank = 0;

	for (size_t i = 0; i < c->nptr; i++) {
		if (c->ptr[i].state != PTR_VALID)
			continue;
		int r = str_casecmp(c->ptr[i].name, domain) == 0     ? 3
			: name_is_under(c->ptr[i].name, domain) ? 2
								  : 1;
		if (r > rank) {
			rank = r;
			best = c->ptr[i].name;
		}
	}
	str_copy(c->validated, sizeof c->validated, best ? best : "unknown");
	c->mc.validated = c->validated;
}

/*
 * Expand domain-spec spec (empty: the current domain) for domain into
 * c->target. -EINVAL: not a usable name; -ENOMEM.
 */
static int expand_target(struct spf_check *c, struct slice spec, const char *domain,
			 char *target)
{
	struct buf b;
	int rc;

	if (spec.len == 0) {
		str_copy(target, SPF_DOMAIN_MAX + 1, domain);
		return 0;
	}
	c->mc.domain = domain;
	if (c->p_ready)
		choose_validated(c, domain);
	buf_init(&b, SPF_EXPAND_MAX);
	rc = spf_macro_expand(spec, &c->mc, 0, &b);
	if (rc == 0)
		rc = spf_target_name(buf_slice(&b), target);
	buf_free(&b);
	return rc == -ENOMEM ? rc : rc < 0 ? -EINVAL : 0;
}

/* --- %{p} and the ptr mechanism -------------------------------------------- */

static enum flow ptr_next(struct spf_check *c);
static enum flow p_next(struct spf_check *c);
static enum flow matched(struct spf_check *c, const struct spf_term *t);

/* One more void lookup (4.6.4): a permerror past the limit. */
static enum flow add_void(struct spf_check *c)
{
	if (++c->voids <= SPF_VOID_MAX)
		return GO;
	return error_result(c, SPF_PERMERROR, "more than %d void lookups", SPF_VOID_MAX);
}

/* The ptr mechanism over the fetched names (a void PTR answer counts each time). */
static enum flow ptr_scan(struct spf_check *c)
{
	c->iptr = 0;
	if ((c->ptr_status == DNS_NXDOMAIN || c->ptr_status == DNS_NODATA) && add_void(c) == STOP)
		return STOP;
	return ptr_next(c);
}

static enum flow got_ptr_addr(struct spf_check *c, const struct dns_result *res)
{
	struct ptr_name *p = &c->ptr[c->iptr];

	/* 5.5: a DNS error skips the name. */
	p->state = PTR_INVALID;
	for (size_t i = 0; res->status == DNS_OK && i < res->n; i++)
		if (rr_matches(c, &res->rr[i], 32, 128))
			p->state = PTR_VALID;
	return c->ptr_for_p ? p_next(c) : ptr_next(c);
}

static enum flow got_ptr(struct spf_check *c, const struct dns_result *res)
{
	c->ptr_fetched = true;
	c->ptr_status = res->status;
	for (size_t i = 0; res->status == DNS_OK && i < res->n && c->nptr < SPF_PTR_MAX; i++) {
		/* 4.6.4: only the first 10 names count; names that cannot be asked are no use. */
		struct ptr_name *p = &c->ptr[c->nptr++];
		if (spf_target_name((struct slice){ res->rr[i].text, res->rr[i].len }, p->name) < 0)
			p->state = PTR_INVALID;
	}
	return c->ptr_for_p ? p_next(c) : ptr_scan(c);
}

static enum flow ask_ptr(struct spf_check *c)
{
	char name[DNS_REVERSE_MAX + 1];

	if (dns_reverse_name((const struct sockaddr *)&c->client,
			     c->mc.ipv6 ? "ip6.arpa" : "in-addr.arpa", name, sizeof name) < 0)
		return error_result(c, SPF_TEMPERROR, "cannot build the PTR name");
	return ask(c, name, DNS_T_PTR, got_ptr);
}

/* Validate the PTR names that match c->target, one query at a time. */
static enum flow ptr_next(struct spf_check *c)
{
	for (; c->iptr < c->nptr; c->iptr++) {
		struct ptr_name *p = &c->ptr[c->iptr];
		if (p->state == PTR_INVALID || !name_is_under(p->name, c->target))
			continue;
		if (p->state == PTR_VALID)
			return matched(c, c->term);
		c->ptr_for_p = false;
		return ask(c, p->name, addr_type(c), got_ptr_addr);
	}
	return GO;
}

/* Validate every PTR name, then go on with c->p_then. */
static enum flow p_next(struct spf_check *c)
{
	if (c->ptr_status == DNS_OK) {
		for (; c->iptr < c->nptr; c->iptr++) {
			if (c->ptr[c->iptr].state == PTR_UNKNOWN) {
				c->ptr_for_p = true;
				return ask(c, c->ptr[c->iptr].name, addr_type(c), got_ptr_addr);
			}
		}
	}
	c->p_ready = true;
	return c->p_then(c);
}

static enum flow p_start(struct spf_check *c, resume_fn *then)
{
	c->p_then = then;
	c->ptr_for_p = true;
	c->iptr = 0;
	if (!c->ptr_fetched)
		return ask_ptr(c);
	return p_next(c);
}

static enum flow resume_step(struct spf_check *c)
{
	(void)c;
	return GO;
}

/* --- explanation (6.2) ------------------------------------------------------ */

/* Set the explanation from macro-string s (already checked), '?' for unsafe bytes. */
static int set_explanation(struct spf_check *c, struct slice s)
{
	struct buf b;
	int rc;

	c->mc.domain = top(c)->domain;
	if (c->p_ready)
		choose_validated(c, c->mc.domain);
	buf_init(&b, SPF_EXPAND_MAX);
	rc = spf_macro_expand(s, &c->mc, SPF_MACRO_EXP, &b);
	if (rc == 0) {
		size_t n = b.len < SPF_EXPLANATION_MAX ? b.len : SPF_EXPLANATION_MAX;
		for (size_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)b.data[i];
			c->out.explanation[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
		}
		c->out.explanation[n] = '\0';
	}
	buf_free(&b);
	return rc;
}

static enum flow fail_default(struct spf_check *c)
{
	if (set_explanation(c, SLICE_LIT(SPF_DEFAULT_EXPLANATION)) < 0)
		str_copy(c->out.explanation, sizeof c->out.explanation, "not permitted");
	return finish(c, SPF_FAIL);
}

static enum flow explain_text(struct spf_check *c)
{
	struct slice s = slice_from_cstr(c->exp_text);

	if (spf_macro_uses(s, 'p') && !c->p_ready)
		return p_start(c, explain_text);
	if (set_explanation(c, s) < 0)
		return fail_default(c);
	return finish(c, SPF_FAIL);
}

static enum flow got_exp(struct spf_check *c, const struct dns_result *res)
{
	if (res->status != DNS_OK || res->n != 1)
		return fail_default(c);
	struct slice s = { res->rr[0].text, res->rr[0].len };
	if (spf_macro_check(s, SPF_MACRO_EXP) < 0)
		return fail_default(c);
	c->exp_text = malloc(s.len + 1);
	if (!c->exp_text)
		return fail_default(c);
	memcpy(c->exp_text, s.ptr, s.len);
	c->exp_text[s.len] = '\0';
	return explain_text(c);
}

static enum flow explain(struct spf_check *c)
{
	struct spf_frame *f = top(c);
	char name[SPF_DOMAIN_MAX + 1];

	c->explaining = true;
	if (!f->rec.exp.ptr)
		return fail_default(c);
	if (spf_macro_uses(f->rec.exp, 'p') && !c->p_ready)
		return p_start(c, explain);
	if (expand_target(c, f->rec.exp, f->domain, name) < 0)
		return fail_default(c);
	return ask(c, name, DNS_T_TXT, got_exp);
}

/* --- frames and terms ------------------------------------------------------- */

static enum spf_result qualifier_result(char q)
{
	switch (q) {
	case '-': return SPF_FAIL;
	case '~': return SPF_SOFTFAIL;
	case '?': return SPF_NEUTRAL;
	default: return SPF_PASS;
	}
}

/* The current frame ended with r (t: the term that matched, if any). */
static enum flow frame_done(struct spf_check *c, enum spf_result r, const struct spf_term *t)
{
	if (c->depth > 1) {
		const struct spf_term *inc = top(c)->include;
		frame_clear(top(c));
		c->depth--;
		/* 5.2: only a pass of the included domain is a match. */
		return r == SPF_PASS ? matched(c, inc) : GO;
	}
	if (t) {
		size_t n = t->text.len < SPF_MECHANISM_MAX ? t->text.len : SPF_MECHANISM_MAX;
		memcpy(c->out.mechanism, t->text.ptr, n);
		c->out.mechanism[n] = '\0';
	}
	if (r == SPF_FAIL)
		return explain(c);
	return finish(c, r);
}

static enum flow matched(struct spf_check *c, const struct spf_term *t)
{
	return frame_done(c, qualifier_result(t->qualifier), t);
}

static enum flow count_void(struct spf_check *c, const struct dns_result *res)
{
	if (res->status == DNS_TEMPFAIL)
		return error_result(c, SPF_TEMPERROR, "DNS error for %s: %s", c->target,
				    res->error[0] ? res->error : "temporary failure");
	if (res->status != DNS_OK || res->n == 0)
		return add_void(c);
	return GO;
}

static enum flow got_a(struct spf_check *c, const struct dns_result *res)
{
	if (count_void(c, res) == STOP)
		return STOP;
	for (size_t i = 0; res->status == DNS_OK && i < res->n; i++)
		if (rr_matches(c, &res->rr[i], c->term->cidr4, c->term->cidr6))
			return matched(c, c->term);
	return GO;
}

static enum flow got_exists(struct spf_check *c, const struct dns_result *res)
{
	if (count_void(c, res) == STOP)
		return STOP;
	for (size_t i = 0; res->status == DNS_OK && i < res->n; i++)
		if (res->rr[i].family == AF_INET)
			return matched(c, c->term);
	return GO;
}

static enum flow mx_next(struct spf_check *c);

static enum flow got_mx_addr(struct spf_check *c, const struct dns_result *res)
{
	if (res->status == DNS_TEMPFAIL)
		return error_result(c, SPF_TEMPERROR, "DNS error for MX host %s: %s",
				    c->mx[c->imx - 1], res->error[0] ? res->error : "temporary failure");
	for (size_t i = 0; res->status == DNS_OK && i < res->n; i++)
		if (rr_matches(c, &res->rr[i], c->term->cidr4, c->term->cidr6))
			return matched(c, c->term);
	return mx_next(c);
}

static enum flow mx_next(struct spf_check *c)
{
	if (c->imx >= c->nmx)
		return GO;
	return ask(c, c->mx[c->imx++], addr_type(c), got_mx_addr);
}

static enum flow got_mx(struct spf_check *c, const struct dns_result *res)
{
	if (count_void(c, res) == STOP)
		return STOP;
	c->nmx = c->imx = 0;
	if (res->status != DNS_OK)
		return GO; /* 5.4: no implicit MX */
	if (res->n > SPF_MX_MAX)
		return error_result(c, SPF_PERMERROR, "%s has more than %d MX records", c->target,
				    SPF_MX_MAX);
	for (size_t i = 0; i < res->n; i++) {
		/* The root (null MX, RFC 7505) or a name we cannot ask has no address. */
		if (res->rr[i].len == 0 || res->rr[i].len > SPF_DOMAIN_MAX ||
		    memchr(res->rr[i].text, '\0', res->rr[i].len) ||
		    spf_target_name((struct slice){ res->rr[i].text, res->rr[i].len },
				    c->mx[c->nmx]) < 0)
			continue;
		c->nmx++;
	}
	return mx_next(c);
}

static enum flow got_record(struct spf_check *c, const struct dns_result *res)
{
	struct spf_frame *f = top(c);
	const struct dns_rr *spf = NULL;
	size_t found = 0;
	int rc;

	if (res->status == DNS_TEMPFAIL)
		return error_result(c, SPF_TEMPERROR, "DNS error for the TXT records of %s: %s",
				    f->domain, res->error[0] ? res->error : "temporary failure");
	for (size_t i = 0; res->status == DNS_OK && i < res->n; i++) {
		if (spf_record_is_spf((struct slice){ res->rr[i].text, res->rr[i].len })) {
			spf = &res->rr[i];
			found++;
		}
	}
	if (found > 1)
		return error_result(c, SPF_PERMERROR, "%s has %zu SPF records", f->domain, found);
	if (found == 0) {
		if (c->depth > 1 || f->via_redirect)
			return error_result(c, SPF_PERMERROR, "%s has no SPF record (%s)", f->domain,
					    c->depth > 1 ? "include" : "redirect");
		str_format(c->out.problem, sizeof c->out.problem, "%s has no SPF record",
			   f->domain);
		return finish(c, SPF_NONE);
	}
	f->text = malloc(spf->len + 1);
	if (!f->text)
		return error_result(c, SPF_TEMPERROR, "out of memory");
	memcpy(f->text, spf->text, spf->len);
	f->text[spf->len] = '\0';
	rc = spf_record_parse((struct slice){ f->text, spf->len }, &f->rec);
	if (rc == -ENOMEM)
		return error_result(c, SPF_TEMPERROR, "out of memory");
	if (rc < 0)
		return error_result(c, SPF_PERMERROR, "%s: %s", f->domain, f->rec.error);
	f->loaded = true;
	return GO;
}

static enum flow count_lookup(struct spf_check *c)
{
	if (++c->out.lookups > SPF_LOOKUPS_MAX) {
		c->out.lookups = SPF_LOOKUPS_MAX;
		return error_result(c, SPF_PERMERROR, "more than %d DNS lookups",
				    SPF_LOOKUPS_MAX);
	}
	return GO;
}

static bool net_matches(const struct spf_check *c, const struct cidr *net)
{
	/* 5.6: an IPv4 client (mapped or not) matches only ip4, IPv6 only ip6. */
	if ((net->family == AF_INET6) != c->mc.ipv6)
		return false;
	return cidr_match(net, (const struct sockaddr *)&c->client);
}

static enum flow step_term(struct spf_check *c, struct spf_frame *f, const struct spf_term *t)
{
	int rc;

	switch (t->mech) {
	case SPF_MECH_ALL:
		f->next++;
		return matched(c, t);
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		f->next++;
		return net_matches(c, &t->net) ? matched(c, t) : GO;
	default:
		break;
	}
	if (spf_macro_uses(t->domain, 'p') && !c->p_ready)
		return p_start(c, resume_step);
	if (count_lookup(c) == STOP)
		return STOP;
	f->next++;
	c->term = t;
	rc = expand_target(c, t->domain, f->domain, c->target);
	if (rc == -ENOMEM)
		return error_result(c, SPF_TEMPERROR, "out of memory");
	if (rc < 0) {
		if (t->mech == SPF_MECH_INCLUDE)
			return error_result(c, SPF_PERMERROR, "%s: include of a bad name",
					    f->domain);
		return GO; /* not a name DNS can have: no match */
	}
	switch (t->mech) {
	case SPF_MECH_A:
		return ask(c, c->target, addr_type(c), got_a);
	case SPF_MECH_EXISTS:
		return ask(c, c->target, DNS_T_A, got_exists); /* 5.7: A even for IPv6 */
	case SPF_MECH_MX:
		return ask(c, c->target, DNS_T_MX, got_mx);
	case SPF_MECH_PTR:
		c->ptr_for_p = false;
		return c->ptr_fetched ? ptr_scan(c) : ask_ptr(c);
	case SPF_MECH_INCLUDE: {
		if (c->depth >= SPF_DEPTH_MAX)
			return error_result(c, SPF_PERMERROR, "includes nested too deep");
		struct spf_frame *n = &c->frames[c->depth++];
		memset(n, 0, sizeof *n);
		str_copy(n->domain, sizeof n->domain, c->target);
		n->include = t;
		return GO;
	}
	default:
		return GO;
	}
}

static enum flow step_redirect(struct spf_check *c, struct spf_frame *f)
{
	char target[SPF_DOMAIN_MAX + 1];
	int rc;

	if (spf_macro_uses(f->rec.redirect, 'p') && !c->p_ready)
		return p_start(c, resume_step);
	if (count_lookup(c) == STOP)
		return STOP;
	rc = expand_target(c, f->rec.redirect, f->domain, target);
	if (rc == -ENOMEM)
		return error_result(c, SPF_TEMPERROR, "out of memory");
	if (rc < 0)
		return error_result(c, SPF_PERMERROR, "%s: redirect to a bad name", f->domain);
	/* 6.1: the target's record replaces this one, with its own exp=. */
	const struct spf_term *inc = f->include;
	frame_clear(f);
	str_copy(f->domain, sizeof f->domain, target);
	f->include = inc;
	f->via_redirect = true;
	return GO;
}

static enum flow step_once(struct spf_check *c)
{
	struct spf_frame *f = top(c);

	if (!f->loaded)
		return ask(c, f->domain, DNS_T_TXT, got_record);
	if (f->next < f->rec.nterms)
		return step_term(c, f, &f->rec.terms[f->next]);
	if (f->rec.redirect.ptr)
		return step_redirect(c, f);
	return frame_done(c, SPF_NEUTRAL, NULL); /* 4.7 */
}

/* --- start and cancel ------------------------------------------------------- */

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct spf_check *c = arg;

	(void)fd;
	(void)what;
	finish(c, c->out.result);
}

/* Copy the client, IPv4-mapped IPv6 turned into IPv4. */
static bool set_client(struct spf_check *c, const struct sockaddr *sa)
{
	uint8_t key[16];

	if (!sa || spf_macro_set_ip(&c->mc, sa) < 0)
		return false;
	netaddr_key(sa, key);
	if (c->mc.ipv6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->client;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, key, 16);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&c->client;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, key + 12, 4);
	}
	return true;
}

/* Sender, local part and identity domain (RFC 7208 2.3, 2.4, 4.3). */
static void set_identity(struct spf_check *c, const struct spf_query *q)
{
	const char *sender = q->sender ? q->sender : "";
	const char *at = strrchr(sender, '@');
	const char *domain;

	if (q->helo_only || sender[0] == '\0') {
		c->out.helo_identity = true;
		domain = c->helo;
		str_copy(c->local, sizeof c->local, "postmaster");
	} else if (at) {
		domain = at + 1;
		if (at == sender)
			str_copy(c->local, sizeof c->local, "postmaster");
		else
			str_copy(c->local, (size_t)(at - sender) + 1 < sizeof c->local
						   ? (size_t)(at - sender) + 1
						   : sizeof c->local,
				 sender);
	} else {
		domain = sender;
		str_copy(c->local, sizeof c->local, "postmaster");
	}
	str_copy(c->out.domain, sizeof c->out.domain, domain);
	str_format(c->out.sender, sizeof c->out.sender, "%s@%s", c->local, c->out.domain);
}

struct spf_check *spf_check_start(struct event_base *base, const struct dns_resolver *r,
				  const struct spf_query *q, spf_done_fn *fn, void *arg)
{
	struct spf_check *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->r = *r;
	c->fn = fn;
	c->arg = arg;
	str_copy(c->helo, sizeof c->helo, q->helo ? q->helo : "");
	str_copy(c->receiver, sizeof c->receiver, q->receiver ? q->receiver : "");
	set_identity(c, q);
	c->mc.sender = c->out.sender;
	c->mc.local = c->local;
	c->mc.sender_domain = c->out.domain;
	c->mc.helo = c->helo;
	c->mc.receiver = c->receiver[0] ? c->receiver : NULL;
	c->mc.now = (long long)time(NULL);

	bool client_ok = set_client(c, q->client);
	if (!client_ok || !spf_identity_domain_ok(c->out.domain)) {
		/* 4.3: no DNS question can be asked; "none", from the loop. */
		c->out.result = SPF_NONE;
		str_copy(c->out.problem, sizeof c->out.problem,
			 client_ok ? "the identity is not a domain name" : "no client IP address");
		c->deferred = event_new(base, -1, 0, on_deferred, c);
		if (!c->deferred) {
			free(c);
			return NULL;
		}
		event_active(c->deferred, 0, 0);
		return c;
	}
	c->depth = 1;
	str_copy(c->frames[0].domain, sizeof c->frames[0].domain, c->out.domain);
	size_t len = strlen(c->frames[0].domain);
	if (len > 0 && c->frames[0].domain[len - 1] == '.')
		c->frames[0].domain[len - 1] = '\0';
	c->starting = true;
	ask(c, c->frames[0].domain, DNS_T_TXT, got_record);
	c->starting = false;
	if (c->start_failed) {
		check_free(c);
		return NULL;
	}
	return c;
}

void spf_check_cancel(struct spf_check *c)
{
	if (!c)
		return;
	if (c->req)
		c->r.cancel(c->r.ctx, c->req);
	check_free(c);
}

void spf_check_timeout(struct spf_check *c, struct spf_outcome *o)
{
	*o = c->out;
	o->result = SPF_TEMPERROR;
	o->explanation[0] = '\0';
	o->mechanism[0] = '\0';
	str_copy(o->problem, sizeof o->problem, "DNS lookups timed out");
	spf_check_cancel(c);
}

/* --- headers ---------------------------------------------------------------- */

/* A header being written: out[0..pos) so far, col the current line's width. */
struct hdr {
	char *out;
	size_t len, pos, col;
	bool full;
};

static void hdr_raw(struct hdr *h, const char *s, size_t n)
{
	if (h->full || n >= h->len - h->pos) {
		h->full = true;
		return;
	}
	memcpy(h->out + h->pos, s, n);
	h->pos += n;
	h->out[h->pos] = '\0';
}

/* One token, after a space or a fold when the line would pass HEADER_WIDTH. */
static void hdr_token(struct hdr *h, const char *s, size_t n)
{
	if (h->col > 0 && h->col + 1 + n > HEADER_WIDTH) {
		hdr_raw(h, "\r\n ", 3);
		h->col = 1;
	} else if (h->col > 0) {
		hdr_raw(h, " ", 1);
		h->col++;
	}
	hdr_raw(h, s, n);
	h->col += n;
}

/* Every space-separated word of s as a token (a comment folds between words). */
static void hdr_words(struct hdr *h, const char *s)
{
	while (*s) {
		size_t n = strcspn(s, " ");
		if (n)
			hdr_token(h, s, n);
		s += n;
		s += strspn(s, " ");
	}
}

/* A byte of untrusted text as header text: controls, and 8-bit unless valid UTF-8, become '?'. */
static char safe_byte(unsigned char c, bool utf8)
{
	if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8))
		return '?';
	return (char)c;
}

static bool is_atext(char c)
{
	return ascii_isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* RFC 5322 dot-atom-text. */
static bool is_dot_atom(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(is_atext(s[i]) || (s[i] == '.' && s[i + 1] != '.')))
			return false;
	return true;
}

/* v as a dot-atom, or a quoted-string with '"' and '\' escaped. */
static int put_value(struct buf *b, const char *v)
{
	bool utf8 = utf8_valid(v, strlen(v));
	int rc = 0;

	if (is_dot_atom(v))
		return buf_append_str(b, v);
	rc = buf_putc(b, '"');
	for (const char *p = v; *p && rc == 0; p++) {
		if (*p == '"' || *p == '\\')
			rc = buf_putc(b, '\\');
		if (rc == 0)
			rc = buf_putc(b, safe_byte((unsigned char)*p, utf8));
	}
	return rc ? rc : buf_putc(b, '"');
}

/* Comment text: '(' ')' '\' escaped as quoted-pairs (RFC 5322 3.2.2). */
static int put_ctext(struct buf *b, const char *v)
{
	bool utf8 = utf8_valid(v, strlen(v));
	int rc = 0;

	for (const char *p = v; *p && rc == 0; p++) {
		if (*p == '(' || *p == ')' || *p == '\\')
			rc = buf_putc(b, '\\');
		if (rc == 0)
			rc = buf_putc(b, safe_byte((unsigned char)*p, utf8));
	}
	return rc;
}

static int put_comment(struct buf *b, const struct spf_outcome *o, const char *receiver,
		       const char *ip)
{
	int rc = buf_putc(b, '(');
	const char *fmt;

	if (rc == 0 && receiver[0]) {
		rc = put_ctext(b, receiver);
		if (rc == 0)
			rc = buf_append_str(b, ": ");
	}
	switch (o->result) {
	case SPF_PASS: fmt = "domain of %S designates %I as permitted sender"; break;
	case SPF_FAIL: fmt = "domain of %S does not designate %I as permitted sender"; break;
	case SPF_SOFTFAIL:
		fmt = "domain of transitioning %S does not designate %I as permitted sender";
		break;
	case SPF_NEUTRAL: fmt = "%I is neither permitted nor denied by domain of %S"; break;
	case SPF_NONE: fmt = "domain of %S does not designate permitted sender hosts"; break;
	case SPF_TEMPERROR: fmt = "temporary error in processing the domain of %S"; break;
	default: fmt = "permanent error in processing the domain of %S"; break;
	}
	for (const char *p = fmt; *p && rc == 0; p++) {
		if (p[0] == '%' && p[1] == 'S')
			rc = put_ctext(b, o->sender);
		else if (p[0] == '%' && p[1] == 'I')
			rc = put_ctext(b, ip);
		else
			rc = buf_putc(b, *p);
		if (p[0] == '%')
			p++;
	}
	return rc ? rc : buf_putc(b, ')');
}

/* key=value; as one token. */
static void hdr_pair(struct hdr *h, struct buf *b, const char *key, const char *value)
{
	buf_reset(b);
	if (buf_appendf(b, "%s=", key) < 0 || put_value(b, value) < 0 || buf_putc(b, ';') < 0) {
		h->full = true;
		return;
	}
	hdr_token(h, b->data, b->len);
}

int spf_received_header(const struct spf_outcome *o, const struct spf_query *q, char *out,
			size_t len)
{
	struct hdr h = { out, len, 0, 0, false };
	char ip[NETADDR_TEXT_MAX];
	const char *receiver = q->receiver ? q->receiver : "";
	const char *helo = q->helo ? q->helo : "";
	struct buf b;

	if (len == 0)
		return -ENOSPC;
	out[0] = '\0';
	if (q->client && (q->client->sa_family == AF_INET || q->client->sa_family == AF_INET6))
		netaddr_ip_text(q->client, ip, sizeof ip);
	else
		str_copy(ip, sizeof ip, "unknown");
	buf_init(&b, 4 * SPF_EXPAND_MAX);
	hdr_token(&h, "Received-SPF:", 13);
	hdr_words(&h, spf_result_name(o->result));
	if (put_comment(&b, o, receiver, ip) == 0)
		hdr_words(&h, buf_cstr(&b));
	else
		h.full = true;
	hdr_pair(&h, &b, "client-ip", ip);
	hdr_pair(&h, &b, "envelope-from", o->sender);
	if (helo[0] && strlen(helo) <= SPF_HEADER_HELO_MAX)
		hdr_pair(&h, &b, "helo", helo);
	if (receiver[0])
		hdr_pair(&h, &b, "receiver", receiver);
	hdr_pair(&h, &b, "identity", o->helo_identity ? "helo" : "mailfrom");
	if (o->mechanism[0])
		hdr_pair(&h, &b, "mechanism", o->mechanism);
	if (o->problem[0] && (o->result == SPF_TEMPERROR || o->result == SPF_PERMERROR))
		hdr_pair(&h, &b, "problem", o->problem);
	hdr_raw(&h, "\r\n", 2);
	buf_free(&b);
	if (h.full) {
		out[0] = '\0';
		return -ENOSPC;
	}
	return 0;
}

/* RFC 2045 token (the value form of RFC 8601 2.2), else a quoted-string. */
static bool is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
		    strchr("()<>@,;:\\\"/[]?=", *s))
			return false;
	return true;
}

int spf_auth_results(const struct spf_outcome *o, char *out, size_t len)
{
	struct buf b;
	int rc;

	buf_init(&b, len ? len - 1 : 0);
	rc = buf_appendf(&b, "spf=%s %s=", spf_result_name(o->result),
			 o->helo_identity ? "smtp.helo" : "smtp.mailfrom");
	if (rc == 0)
		rc = is_token(o->domain) ? buf_append_str(&b, o->domain) : put_value(&b, o->domain);
	if (rc == 0 && len > 0)
		memcpy(out, buf_cstr(&b), b.len + 1);
	else if (len > 0)
		out[0] = '\0';
	buf_free(&b);
	return rc < 0 || len == 0 ? -ENOSPC : 0;
}
