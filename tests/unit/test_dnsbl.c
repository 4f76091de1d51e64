/*
 * Unit tests of the DNS lists (src/policy/dnsbl.c): the codes parser and
 * matcher (table-driven), the TXT reason filter, and whole checks against a
 * fake resolver that answers from a table, from the event loop, after a
 * delay of its own per name (or never), and counts cancellations.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/dnsbl.h"
#include "unit.h"

/* --- codes ----------------------------------------------------------------------------------- */

static uint32_t ip(const char *s)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return ntohl(a.s_addr);
}

static const struct {
	const char *codes;
	const char *yes[4];
	const char *no[4];
} code_cases[] = {
	{ "127.0.0.2", { "127.0.0.2" }, { "127.0.0.3", "127.0.0.1" } },
	{ "127.0.0.2-127.0.0.11", { "127.0.0.2", "127.0.0.11", "127.0.0.7" },
	  { "127.0.0.12", "127.0.0.1", "127.0.1.2" } },
	{ "127.0.0.[2..11]", { "127.0.0.2", "127.0.0.11" }, { "127.0.0.12", "127.0.1.5" } },
	{ "127.0.[2..15].[0;1]", { "127.0.2.0", "127.0.15.1" },
	  { "127.0.1.0", "127.0.2.2", "127.0.16.1" } },
	{ "127.0.0.[10;11;20..30]", { "127.0.0.10", "127.0.0.11", "127.0.0.25" },
	  { "127.0.0.12", "127.0.0.31" } },
	{ "127.0.0.2,127.0.0.4-127.0.0.5,127.0.0.[9]", { "127.0.0.2", "127.0.0.5", "127.0.0.9" },
	  { "127.0.0.3", "127.0.0.6" } },
	/* The lists' error answers never count, whatever the codes say. */
	{ "127.0.0.0-127.255.255.255", { "127.0.0.2", "127.200.0.1" },
	  { "127.255.255.254", "127.0.0.255", "127.255.255.252" } },
};

TEST(codes_match_table)
{
	for (size_t i = 0; i < sizeof code_cases / sizeof code_cases[0]; i++) {
		struct dnsbl_codes c;
		char err[128];
		int r = dnsbl_codes_parse(slice_from_cstr(code_cases[i].codes), &c, err, sizeof err);
		CHECK_MSG(r == 0, "%s: %s", code_cases[i].codes, err);
		for (int k = 0; k < 4 && code_cases[i].yes[k]; k++)
			CHECK_MSG(dnsbl_codes_match(&c, ip(code_cases[i].yes[k])), "%s should match %s",
				  code_cases[i].codes, code_cases[i].yes[k]);
		for (int k = 0; k < 4 && code_cases[i].no[k]; k++)
			CHECK_MSG(!dnsbl_codes_match(&c, ip(code_cases[i].no[k])),
				  "%s should not match %s", code_cases[i].codes, code_cases[i].no[k]);
	}
}

TEST(codes_refused)
{
	static const char *const bad[] = {
		"", ",", "127.0.0.2,", "127.0.0", "127.0.0.256", "127.0.0.11-127.0.0.2",
		"127.0.0.[11..2]", "127.0.0.[2..", "127.0.0.[]", "127.0.0.[2;]", "127.0.0.2x",
		"127.0.0.[2..11]]", "127.0.0.1-", "-127.0.0.1", "127.0.0.[2..11].4", "1.2.3.4 ",
		"127.0.0.0002", "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,"
		"127.0.0.7,127.0.0.8,127.0.0.9,127.0.0.10,127.0.0.11,127.0.0.12,127.0.0.13,"
		"127.0.0.14,127.0.0.15,127.0.0.16,127.0.0.17",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct dnsbl_codes c;
		char err[128] = "";
		CHECK_MSG(dnsbl_codes_parse(slice_from_cstr(bad[i]), &c, err, sizeof err) < 0,
			  "accepted '%s'", bad[i]);
		CHECK_MSG(err[0] != '\0', "no message for '%s'", bad[i]);
	}
}

TEST(default_codes)
{
	struct dnsbl_codes def = { .n = 0 };
	CHECK(dnsbl_codes_match(&def, ip("127.0.0.2")));
	CHECK(dnsbl_codes_match(&def, ip("127.0.0.11")));
	CHECK(dnsbl_codes_match(&def, ip("127.1.2.3")));
	CHECK(!dnsbl_codes_match(&def, ip("127.0.0.1")));
	CHECK(!dnsbl_codes_match(&def, ip("127.0.0.0")));
	CHECK(!dnsbl_codes_match(&def, ip("127.0.0.255")));
	CHECK(!dnsbl_codes_match(&def, ip("127.255.255.254")));
	CHECK(!dnsbl_codes_match(&def, ip("10.0.0.2")));
	CHECK(!dnsbl_codes_match(&def, ip("128.0.0.2")));
	CHECK(dnsbl_answer_is_error(ip("127.255.255.252")));
	CHECK(!dnsbl_answer_is_error(ip("127.0.0.2")));
}

TEST(reason_is_printable_and_bounded)
{
	char out[DNSBL_REASON_MAX + 1];
	dnsbl_reason_copy(out, sizeof out, "a\r\nb\x01\xc3\xa9z", 8);
	CHECK_STR(out, "a??b???z");
	char big[1000];
	memset(big, 'x', sizeof big);
	dnsbl_reason_copy(out, sizeof out, big, sizeof big);
	CHECK_INT(strlen(out), DNSBL_REASON_MAX);
	char small[5];
	dnsbl_reason_copy(small, sizeof small, "abcdefgh", 8);
	CHECK_STR(small, "abcd");
}

TEST(zone_valid)
{
	CHECK(dnsbl_zone_valid(slice_from_cstr("zen.spamhaus.org")));
	CHECK(!dnsbl_zone_valid(slice_from_cstr("zen..org")));
	CHECK(!dnsbl_zone_valid(slice_from_cstr("")));
	char long_zone[DNSBL_ZONE_MAX + 10];
	memset(long_zone, 'a', sizeof long_zone);
	for (size_t i = 50; i < sizeof long_zone; i += 50)
		long_zone[i] = '.';
	long_zone[sizeof long_zone - 1] = '\0';
	CHECK(!dnsbl_zone_valid(slice_from_cstr(long_zone)));
}

/* --- a fake resolver ------------------------------------------------------------------------- */

#define FAKE_MAX 32

struct fake_answer {
	const char *name;
	enum dns_type type;
	enum dns_status status;
	const char *values[4]; /* A: addresses; TXT: texts */
	int delay_ms;          /* -1: never answers */
};

struct fake_req {
	struct fake_dns *dns;
	const struct fake_answer *ans;
	char name[DNS_NAME_MAX + 1];
	enum dns_type type;
	dns_result_fn *fn;
	void *arg;
	struct event *ev;
	bool live;
};

struct fake_dns {
	struct event_base *base;
	const struct fake_answer *answers;
	size_t nanswers;
	struct fake_req reqs[FAKE_MAX];
	size_t nreqs;
	unsigned cancels;
	char asked[FAKE_MAX][DNS_NAME_MAX + 8];
};

static void fake_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct fake_req *q = arg;
	struct dns_result res;
	struct dns_rr rr[4];
	(void)fd;
	(void)what;

	memset(&res, 0, sizeof res);
	memset(rr, 0, sizeof rr);
	res.type = q->type;
	res.status = q->ans ? q->ans->status : DNS_NXDOMAIN;
	res.rr = rr;
	for (int i = 0; q->ans && res.status == DNS_OK && i < 4 && q->ans->values[i]; i++) {
		if (q->type == DNS_T_A) {
			rr[i].family = AF_INET;
			inet_pton(AF_INET, q->ans->values[i], &rr[i].addr.v4);
		} else {
			rr[i].text = (char *)q->ans->values[i];
			rr[i].len = strlen(q->ans->values[i]);
		}
		res.n++;
	}
	q->live = false;
	event_free(q->ev);
	q->ev = NULL;
	q->fn(q->arg, &res);
}

static struct dns_req *fake_lookup(void *ctx, const char *name, enum dns_type type,
				   dns_result_fn *fn, void *arg)
{
	struct fake_dns *f = ctx;
	if (f->nreqs == FAKE_MAX)
		return NULL;
	struct fake_req *q = &f->reqs[f->nreqs];
	snprintf(f->asked[f->nreqs], sizeof f->asked[0], "%s/%s", type == DNS_T_A ? "A" : "TXT",
		 name);
	f->nreqs++;
	memset(q, 0, sizeof *q);
	q->dns = f;
	q->type = type;
	q->fn = fn;
	q->arg = arg;
	q->live = true;
	snprintf(q->name, sizeof q->name, "%s", name);
	for (size_t i = 0; i < f->nanswers; i++)
		if (strcmp(f->answers[i].name, name) == 0 && f->answers[i].type == type)
			q->ans = &f->answers[i];
	int delay = q->ans ? q->ans->delay_ms : 0;
	q->ev = evtimer_new(f->base, fake_deliver, q);
	if (delay >= 0) {
		struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
		evtimer_add(q->ev, &tv);
	}
	return (struct dns_req *)(void *)q;
}

static void fake_cancel(void *ctx, struct dns_req *req)
{
	struct fake_dns *f = ctx;
	struct fake_req *q = (struct fake_req *)(void *)req;
	f->cancels++;
	q->live = false;
	event_free(q->ev);
	q->ev = NULL;
}

static struct dns_resolver fake_resolver(struct fake_dns *f)
{
	return (struct dns_resolver){ fake_lookup, fake_cancel, f };
}

static bool asked(const struct fake_dns *f, const char *what)
{
	for (size_t i = 0; i < f->nreqs; i++)
		if (strcmp(f->asked[i], what) == 0)
			return true;
	return false;
}

struct outcome {
	int calls;
	struct dnsbl_result res;
	char zone[DNSBL_ZONE_MAX + 1];
};

static void on_done(void *arg, const struct dnsbl_result *res)
{
	struct outcome *o = arg;
	o->calls++;
	o->res = *res;
	snprintf(o->zone, sizeof o->zone, "%s", res->zone ? res->zone : "");
	o->res.zone = NULL;
	o->res.timed_out_zone = NULL;
}

static struct sockaddr_in v4(const char *s)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, s, &sin.sin_addr);
	return sin;
}

static struct dnsbl_zone zone(const char *name, const char *codes)
{
	struct dnsbl_zone z;
	char err[128];
	memset(&z, 0, sizeof z);
	z.zone = (char *)name;
	if (codes && dnsbl_codes_parse(slice_from_cstr(codes), &z.codes, err, sizeof err) < 0)
		abort();
	return z;
}

static const struct fake_answer answers[] = {
	{ "2.0.0.127.bl.test", DNS_T_A, DNS_OK, { "127.0.0.2" }, 0 },
	{ "2.0.0.127.bl.test", DNS_T_TXT, DNS_OK, { "Listed: see\r\nhttp://bl.test/?127.0.0.2" }, 0 },
	{ "2.0.0.127.second.test", DNS_T_A, DNS_OK, { "127.0.0.4" }, 0 },
	{ "2.0.0.127.second.test", DNS_T_TXT, DNS_OK, { "second list" }, 0 },
	{ "2.0.0.127.wl.test", DNS_T_A, DNS_OK, { "127.0.10.1" }, 30 },
	{ "3.0.0.127.bl.test", DNS_T_A, DNS_OK, { "127.255.255.254" }, 0 },
	{ "4.0.0.127.bl.test", DNS_T_A, DNS_TEMPFAIL, { NULL }, 0 },
	{ "5.0.0.127.bl.test", DNS_T_A, DNS_OK, { "127.0.0.3", "127.0.0.9" }, 0 },
	{ "6.0.0.127.bl.test", DNS_T_A, DNS_OK, { "127.0.0.2" }, 0 }, /* listed, no TXT */
	{ "2.0.0.127.slow.test", DNS_T_A, DNS_OK, { "127.0.0.2" }, -1 },
	{ "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test", DNS_T_A,
	  DNS_OK, { "127.0.0.2" }, 0 },
	{ "spam.example.bl.test", DNS_T_A, DNS_OK, { "127.0.0.2" }, 0 },
	{ "spam.example.bl.test", DNS_T_TXT, DNS_OK, { "spammy domain" }, 0 },
	{ "bad.helo.test.bl.test", DNS_T_A, DNS_OK, { "127.0.0.2" }, 0 },
};

struct world {
	struct event_base *base;
	struct fake_dns f;
	struct dns_resolver res;
};

static void world_init(struct world *w)
{
	memset(w, 0, sizeof *w);
	w->base = event_base_new();
	w->f.base = w->base;
	w->f.answers = answers;
	w->f.nanswers = sizeof answers / sizeof answers[0];
	w->res = fake_resolver(&w->f);
}

static void world_free(struct world *w)
{
	for (size_t i = 0; i < w->f.nreqs; i++)
		if (w->f.reqs[i].ev)
			event_free(w->f.reqs[i].ev);
	event_base_free(w->base);
}

/* Check client addr against block and allow; run the loop until the check is done. */
static struct outcome check_client(struct world *w, const struct sockaddr *sa,
				   struct dnsbl_zone *block, size_t nblock, struct dnsbl_zone *allow,
				   size_t nallow, unsigned timeout_ms)
{
	struct outcome o;
	memset(&o, 0, sizeof o);
	struct dnsbl_list bl = { block, nblock }, wl = { allow, nallow };
	struct dnsbl_check *c = dnsbl_check_client(&w->res, w->base, &bl, &wl, sa, timeout_ms,
						   "SID", on_done, &o);
	CHECK(c != NULL);
	CHECK_INT(o.calls, 0); /* never inside the start */
	event_base_dispatch(w->base);
	CHECK_INT(o.calls, 1);
	return o;
}

TEST(listed_client_with_reason)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.2");
	struct dnsbl_zone bl[] = { zone("bl.test", NULL) };
	struct outcome o = check_client(&w, (struct sockaddr *)&a, bl, 1, NULL, 0, 2000);
	CHECK_INT(o.res.verdict, DNSBL_LISTED);
	CHECK_STR(o.zone, "bl.test");
	CHECK_STR(o.res.answer, "127.0.0.2");
	CHECK_STR(o.res.reason, "Listed: see??http://bl.test/?127.0.0.2");
	CHECK(asked(&w.f, "A/2.0.0.127.bl.test"));
	CHECK(asked(&w.f, "TXT/2.0.0.127.bl.test"));
	CHECK_INT(o.res.timeouts, 0);
	world_free(&w);
}

TEST(unlisted_client_passes_without_txt)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.9");
	struct dnsbl_zone bl[] = { zone("bl.test", NULL) };
	struct outcome o = check_client(&w, (struct sockaddr *)&a, bl, 1, NULL, 0, 2000);
	CHECK_INT(o.res.verdict, DNSBL_PASS);
	CHECK_INT(o.res.lookups, 1);
	CHECK_INT(w.f.nreqs, 1); /* no TXT for an unlisted client */
	world_free(&w);
}

TEST(listed_without_txt_has_empty_reason)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.6");
	struct dnsbl_zone bl[] = { zone("bl.test", NULL) };
	struct outcome o = check_client(&w, (struct sockaddr *)&a, bl, 1, NULL, 0, 2000);
	CHECK_INT(o.res.verdict, DNSBL_LISTED);
	CHECK_STR(o.res.reason, "");
	world_free(&w);
}

TEST(codes_select_answers)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.5"); /* answers 127.0.0.3 and 127.0.0.9 */
	struct dnsbl_zone only4[] = { zone("bl.test", "127.0.0.4") };
	struct outcome o = check_client(&w, (struct sockaddr *)&a, only4, 1, NULL, 0, 2000);
	CHECK_INT(o.res.verdict, DNSBL_PASS);
	struct dnsbl_zone nine[] = { zone("bl.test", "127.0.0.[8..10]") };
	o = check_client(&w, (struct sockaddr *)&a, nine, 1, NULL, 0, 2000);
	CHECK_INT(o.res.verdict, DNSBL_LISTED);
	CHECK_STR(o.res.answer, "127.0.0.9");
	world_free(&w);
}

TEST(error_answer_is_not_a_listing)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.3"); /* 127.255.255.254: "public resolver" */
	struct dnsbl_zone bl[] = { zone("bl.test", NULL) };
	struct outcome o = check_client(&w, (struct sockaddr *)&a, bl, 1, NULL, 0, 2000);
	CHECK_INT(o.res.verdict, DNSBL_PASS);
	world_free(&w);
}

TEST(tempfail_fails_open_and_counts)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.4");
	struct dnsbl_zone bl[] = { zone("bl.test", NULL) };
	struct outcome o = check_client(&w, (struct sockaddr *)&a, bl, 1, NULL, 0, 2000);
	CHECK_INT(o.res.verdict, DNSBL_PASS);
	CHECK_INT(o.res.errors, 1);
	world_free(&w);
}

TEST(allowlist_wins_even_when_it_answers_last)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.2");
	struct dnsbl_zone bl[] = { zone("bl.test", NULL) };
	struct dnsbl_zone wl[] = { zone("wl.test", "127.0.[0..255].[0..3]") };
	struct outcome o = check_client(&w, (struct sockaddr *)&a, bl, 1, wl, 1, 2000);
	CHECK_INT(o.res.verdict, DNSBL_ALLOWED);
	CHECK_STR(o.zone, "wl.test");
	CHECK_STR(o.res.answer, "127.0.10.1");
	world_free(&w);
}

TEST(an_allowed_client_is_decided_at_once)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.2");
	struct dnsbl_zone bl[] = { zone("slow.test", NULL) };
	struct dnsbl_zone wl[] = { zone("wl.test", NULL) };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct outcome o = check_client(&w, (struct sockaddr *)&a, bl, 1, wl, 1, 5000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CHECK_INT(o.res.verdict, DNSBL_ALLOWED);
	CHECK_INT(o.res.timeouts, 0);
	CHECK_INT(w.f.cancels, 1); /* the slow blocklist's lookup */
	CHECK_MSG(ms < 1000, "took %ld ms", ms);
	world_free(&w);
}

TEST(first_zone_in_configuration_order_decides)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.2");
	struct dnsbl_zone bl[] = { zone("second.test", NULL), zone("bl.test", NULL) };
	struct outcome o = check_client(&w, (struct sockaddr *)&a, bl, 2, NULL, 0, 2000);
	CHECK_INT(o.res.verdict, DNSBL_LISTED);
	CHECK_STR(o.zone, "second.test");
	CHECK_STR(o.res.reason, "second list");
	world_free(&w);
}

TEST(deadline_fails_open_and_cancels)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.2");
	struct dnsbl_zone bl[] = { zone("slow.test", NULL), zone("bl.test", NULL) };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct outcome o = check_client(&w, (struct sockaddr *)&a, bl, 1, NULL, 0, 200);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CHECK_INT(o.res.verdict, DNSBL_PASS);
	CHECK_INT(o.res.timeouts, 1);
	CHECK_INT(w.f.cancels, 1);
	CHECK_MSG(ms >= 190 && ms < 1500, "took %ld ms", ms);
	/* A slow list does not hide what a fast one says. */
	o = check_client(&w, (struct sockaddr *)&a, bl, 2, NULL, 0, 200);
	CHECK_INT(o.res.verdict, DNSBL_LISTED);
	CHECK_STR(o.zone, "bl.test");
	CHECK_INT(o.res.timeouts, 1);
	world_free(&w);
}

TEST(ipv6_client_is_asked_by_nibbles)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in6 a;
	memset(&a, 0, sizeof a);
	a.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::1", &a.sin6_addr);
	struct dnsbl_zone bl[] = { zone("bl.test", NULL) };
	struct outcome o = check_client(&w, (struct sockaddr *)&a, bl, 1, NULL, 0, 2000);
	CHECK_INT(o.res.verdict, DNSBL_LISTED);
	/* An IPv4-mapped client is asked as IPv4. */
	inet_pton(AF_INET6, "::ffff:127.0.0.2", &a.sin6_addr);
	o = check_client(&w, (struct sockaddr *)&a, bl, 1, NULL, 0, 2000);
	CHECK_INT(o.res.verdict, DNSBL_LISTED);
	CHECK(asked(&w.f, "A/2.0.0.127.bl.test"));
	world_free(&w);
}

TEST(domains_sender_and_helo)
{
	struct world w;
	world_init(&w);
	struct dnsbl_zone bl[] = { zone("bl.test", NULL) };
	struct dnsbl_list list = { bl, 1 };
	const char *clean[2] = { "good.example", "Bad.Helo.Test" };
	struct outcome o;
	memset(&o, 0, sizeof o);
	CHECK(dnsbl_check_domains(&w.res, w.base, &list, clean, 2, 2000, "SID", on_done, &o));
	event_base_dispatch(w.base);
	CHECK_INT(o.calls, 1);
	CHECK_INT(o.res.verdict, DNSBL_LISTED);
	CHECK_INT(o.res.name_index, 1); /* the HELO name, asked in lower case */
	CHECK(asked(&w.f, "A/bad.helo.test.bl.test"));

	const char *spam[2] = { "spam.example", NULL };
	memset(&o, 0, sizeof o);
	CHECK(dnsbl_check_domains(&w.res, w.base, &list, spam, 2, 2000, "SID", on_done, &o));
	event_base_dispatch(w.base);
	CHECK_INT(o.res.verdict, DNSBL_LISTED);
	CHECK_INT(o.res.name_index, 0);
	CHECK_STR(o.res.reason, "spammy domain");
	CHECK_INT(o.res.lookups, 1);
	world_free(&w);
}

TEST(cancel_before_the_answer)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.2");
	struct dnsbl_zone bl[] = { zone("bl.test", NULL), zone("slow.test", NULL) };
	struct dnsbl_list list = { bl, 2 }, none = { NULL, 0 };
	struct outcome o;
	memset(&o, 0, sizeof o);
	struct dnsbl_check *c = dnsbl_check_client(&w.res, w.base, &list, &none,
						   (struct sockaddr *)&a, 100, "SID", on_done, &o);
	dnsbl_check_cancel(c);
	CHECK_INT(w.f.cancels, 2);
	event_base_dispatch(w.base);
	CHECK_INT(o.calls, 0);
	world_free(&w);
}

TEST(nothing_to_ask_still_calls_back_from_the_loop)
{
	struct world w;
	world_init(&w);
	struct sockaddr_in a = v4("127.0.0.2");
	struct outcome o = check_client(&w, (struct sockaddr *)&a, NULL, 0, NULL, 0, 2000);
	CHECK_INT(o.res.verdict, DNSBL_PASS);
	CHECK_INT(o.res.lookups, 0);
	world_free(&w);
}

UNIT_MAIN()
