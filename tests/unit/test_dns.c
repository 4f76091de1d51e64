/*
 * Unit tests of dns_parse_mx on hand-built DNS answers: order by preference,
 * shuffled ties, null MX (RFC 7505), name checks, duplicates, the DNS_MX_MAX
 * cut, and messages that do not parse. The live lookups against dnsmasq are in
 * test_dns_live.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "unit.h"

struct pkt {
	unsigned char b[8192];
	size_t len;
};

static void put8(struct pkt *p, unsigned v)
{
	if (p->len < sizeof p->b)
		p->b[p->len++] = (unsigned char)v;
}

static void put16(struct pkt *p, unsigned v)
{
	put8(p, v >> 8);
	put8(p, v & 0xff);
}

/*
 * A name in wire form: labels split at '.', "\." puts a dot inside a label,
 * "\xNN" a raw byte; "" and "." are the root.
 */
static void put_name(struct pkt *p, const char *name)
{
	unsigned char label[256];
	size_t n = 0;

	for (const char *s = name;; s++) {
		if (*s == '\0' || *s == '.') {
			if (n > 0) {
				put8(p, (unsigned)n);
				for (size_t i = 0; i < n; i++)
					put8(p, label[i]);
			}
			n = 0;
			if (*s == '\0')
				break;
			continue;
		}
		if (*s == '\\' && s[1] == 'x') {
			label[n++] = (unsigned char)strtoul((char[3]){ s[2], s[3], 0 }, NULL, 16);
			s += 3;
		} else if (*s == '\\' && s[1]) {
			label[n++] = (unsigned char)*++s;
		} else {
			label[n++] = (unsigned char)*s;
		}
	}
	put8(p, 0);
}

struct mxrec {
	unsigned pref;
	const char *host;
};

/* A NOERROR response to "qname MX" whose answer holds recs (n of them). */
static void build_mx(struct pkt *p, const char *qname, const struct mxrec *recs, size_t n)
{
	p->len = 0;
	put16(p, 0x1234);
	put16(p, 0x8180);
	put16(p, 1);
	put16(p, (unsigned)n);
	put16(p, 0);
	put16(p, 0);
	put_name(p, qname);
	put16(p, 15);
	put16(p, 1);
	for (size_t i = 0; i < n; i++) {
		size_t rdlen_at;
		put16(p, 0xc00c); /* owner: the question name */
		put16(p, 15);
		put16(p, 1);
		put16(p, 0);
		put16(p, 300);
		rdlen_at = p->len;
		put16(p, 0);
		put16(p, recs[i].pref);
		put_name(p, recs[i].host);
		p->b[rdlen_at] = (unsigned char)((p->len - rdlen_at - 2) >> 8);
		p->b[rdlen_at + 1] = (unsigned char)((p->len - rdlen_at - 2) & 0xff);
	}
}

static int parse(const struct mxrec *recs, size_t n, struct dns_mx_result *out)
{
	struct pkt p;
	build_mx(&p, "example.test", recs, n);
	return dns_parse_mx(p.b, p.len, out);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct mx_case {
	const char *what;
	struct mxrec recs[8];
	size_t n;
	int ret;
	enum dns_status status;
	bool null_mx;
	const char *want[8]; /* expected hosts in order, "pref host" */
};

static const struct mx_case mx_cases[] = {
	{ "one", { { 10, "mx.example.test" } }, 1, 0, DNS_OK, false, { "10 mx.example.test" } },
	{ "sorted by preference",
	  { { 20, "mx2.example.test" }, { 10, "mx1.example.test" }, { 30, "mx3.example.test" },
	    { 0, "mx0.example.test" } },
	  4, 0, DNS_OK, false,
	  { "0 mx0.example.test", "10 mx1.example.test", "20 mx2.example.test",
	    "30 mx3.example.test" } },
	{ "upper case lowered", { { 5, "MX.Example.TEST" } }, 1, 0, DNS_OK, false,
	  { "5 mx.example.test" } },
	{ "null MX", { { 0, "." } }, 1, 0, DNS_OK, true, { NULL } },
	{ "null MX among others (RFC 7505 3 forbids it: still null MX)",
	  { { 10, "mx1.example.test" }, { 0, "." }, { 20, "mx2.example.test" } }, 3, 0, DNS_OK,
	  true, { NULL } },
	{ "root exchange with a preference other than 0", { { 10, "" } }, 1, 0, DNS_OK, true,
	  { NULL } },
	{ "empty answer", { { 0, NULL } }, 0, 0, DNS_NODATA, false, { NULL } },
	{ "invalid names skipped",
	  { { 1, "bad_name.test" },
	    { 2, "-lead.test" },
	    { 3, "trail-.test" },
	    { 4, "dot\\.inside.test" },
	    { 5, "192.0.2.1" },
	    { 6, "sp ace.test" },
	    { 7, "caf\\xc3\\xa9.test" },
	    { 8, "ok-1.example.test" } },
	  8, 0, DNS_OK, false, { "8 ok-1.example.test" } },
	{ "only invalid names", { { 1, "bad_name.test" }, { 2, "10.0.0.1" } }, 2, 0, DNS_BADNAME,
	  false, { NULL } },
	{ "numeric labels are fine unless last", { { 1, "123.4example.test" }, { 2, "a.b.123" } },
	  2, 0, DNS_OK, false, { "1 123.4example.test" } },
	{ "duplicates keep the lowest preference",
	  { { 20, "mx1.example.test" }, { 10, "MX1.example.test" }, { 15, "mx2.example.test" } },
	  3, 0, DNS_OK, false, { "10 mx1.example.test", "15 mx2.example.test" } },
	{ "single-label host", { { 10, "localhost" } }, 1, 0, DNS_OK, false, { "10 localhost" } },
	{ "preference 65535", { { 65535, "a.test" }, { 0, "b.test" } }, 2, 0, DNS_OK, false,
	  { "0 b.test", "65535 a.test" } },
};

TEST(parse_mx_table)
{
	for (size_t i = 0; i < N(mx_cases); i++) {
		const struct mx_case *c = &mx_cases[i];
		struct dns_mx_result out;
		size_t nwant = 0;
		int r = parse(c->recs, c->n, &out);

		while (nwant < N(c->want) && c->want[nwant])
			nwant++;
		CHECK_MSG(r == c->ret, "%s: ret %d", c->what, r);
		CHECK_MSG(out.status == c->status, "%s: status %d", c->what, (int)out.status);
		CHECK_MSG(out.null_mx == c->null_mx, "%s: null_mx %d", c->what, out.null_mx);
		CHECK_MSG(out.n == nwant, "%s: n %zu, want %zu", c->what, out.n, nwant);
		for (size_t j = 0; j < nwant && j < out.n; j++) {
			char got[DNS_NAME_MAX + 16];
			snprintf(got, sizeof got, "%u %s", out.mx[j].pref, out.mx[j].host);
			CHECK_MSG(strcmp(got, c->want[j]) == 0, "%s: [%zu] \"%s\", want \"%s\"",
				  c->what, j, got, c->want[j]);
		}
		CHECK_MSG((out.status == DNS_OK) == (out.error[0] == '\0'), "%s: error \"%s\"",
			  c->what, out.error);
	}
}

TEST(parse_mx_label_and_name_lengths)
{
	char l63[64], l64[65], name[300];
	struct dns_mx_result out;

	memset(l63, 'a', 63);
	l63[63] = '\0';
	memset(l64, 'b', 64);
	l64[64] = '\0';
	/* A 64-octet label cannot even be encoded (0x40 is a reserved label type). */
	struct mxrec r1[] = { { 1, l63 } };
	CHECK_INT(parse(r1, 1, &out), 0);
	CHECK_INT(out.n, 1);
	CHECK_INT(strlen(out.mx[0].host), 63);

	/* 253 octets of text: the longest host name; 63+1+63+1+63+1+61. */
	snprintf(name, sizeof name, "%s.%s.%s.%.61s", l63, l63, l63, l63);
	CHECK_INT(strlen(name), 253);
	struct mxrec r2[] = { { 1, name } };
	CHECK_INT(parse(r2, 1, &out), 0);
	CHECK_INT(out.status, DNS_OK);
	CHECK_INT(out.n, 1);
	CHECK_STR(out.mx[0].host, name);
	(void)l64;
}

TEST(parse_mx_equal_preferences_shuffled)
{
	static const struct mxrec recs[] = {
		{ 10, "a.example.test" }, { 10, "b.example.test" }, { 5, "first.example.test" },
		{ 20, "last.example.test" }, { 10, "c.example.test" },
	};
	int seen_first[3] = { 0 };

	for (int run = 0; run < 300; run++) {
		struct dns_mx_result out;
		CHECK_INT(parse(recs, N(recs), &out), 0);
		CHECK_INT(out.n, 5);
		CHECK_STR(out.mx[0].host, "first.example.test");
		CHECK_STR(out.mx[4].host, "last.example.test");
		for (int j = 1; j <= 3; j++)
			CHECK_INT(out.mx[j].pref, 10);
		seen_first[out.mx[1].host[0] - 'a']++;
	}
	/* Each of a, b, c comes first among the ties (p of failing ~ 3 * (2/3)^300). */
	for (int k = 0; k < 3; k++)
		CHECK_MSG(seen_first[k] > 0, "%c never first", 'a' + k);
}

TEST(parse_mx_keeps_lowest_preferences)
{
	struct mxrec recs[40];
	char names[40][32];
	struct pkt p;
	struct dns_mx_result out;

	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof names[i], "mx%d.example.test", i);
		recs[i] = (struct mxrec){ (unsigned)(40 - i), names[i] };
	}
	build_mx(&p, "example.test", recs, 40);
	CHECK_INT(dns_parse_mx(p.b, p.len, &out), 0);
	CHECK_INT(out.status, DNS_OK);
	CHECK_INT(out.n, DNS_MX_MAX);
	for (size_t j = 0; j < out.n; j++)
		CHECK_INT(out.mx[j].pref, j + 1);
	CHECK_STR(out.mx[0].host, "mx39.example.test");

	/* 40 ties: 32 of them kept, each a different host. */
	for (int i = 0; i < 40; i++)
		recs[i].pref = 7;
	build_mx(&p, "example.test", recs, 40);
	CHECK_INT(dns_parse_mx(p.b, p.len, &out), 0);
	CHECK_INT(out.n, DNS_MX_MAX);
	for (size_t j = 0; j < out.n; j++)
		for (size_t k = 0; k < j; k++)
			CHECK(strcmp(out.mx[j].host, out.mx[k].host) != 0);
}

TEST(parse_mx_truncated_and_garbage)
{
	static const struct mxrec recs[] = { { 10, "mx1.example.test" }, { 20, "mx2.example.test" } };
	static const unsigned char zeros[12];
	/* The question name's first label points at itself. */
	static const unsigned char loop[] = { 0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
					      0xc0, 0x0c, 0, 15, 0, 1 };
	static const unsigned char garbage[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
					       "\xff\xff\xff\xff";
	struct pkt p;
	struct dns_mx_result out;

	build_mx(&p, "example.test", recs, N(recs));
	CHECK_INT(dns_parse_mx(p.b, p.len, &out), 0);
	CHECK_INT(out.n, 2);
	for (size_t len = 0; len < p.len; len++) {
		unsigned char *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */
		memcpy(copy, p.b, len);
		int r = dns_parse_mx(copy, len, &out);
		CHECK_MSG(r == -EINVAL, "truncated at %zu: %d", len, r);
		CHECK_MSG(out.status == DNS_BADNAME && out.n == 0 && !out.null_mx,
			  "truncated at %zu", len);
		CHECK(out.error[0] != '\0');
		free(copy);
	}
	CHECK_INT(dns_parse_mx(zeros, sizeof zeros, &out), -EINVAL);
	CHECK_INT(dns_parse_mx(loop, sizeof loop, &out), -EINVAL);
	CHECK_INT(dns_parse_mx(garbage, sizeof garbage - 1, &out), -EINVAL);
	CHECK_INT(dns_parse_mx(NULL, 0, &out), -EINVAL);
	CHECK_INT(out.status, DNS_BADNAME);
}

TEST(parse_mx_other_record_types)
{
	struct pkt p;
	struct dns_mx_result out;

	/* A CNAME and an A record in the answer, no MX: no data. */
	p.len = 0;
	put16(&p, 1);
	put16(&p, 0x8180);
	put16(&p, 1);
	put16(&p, 2);
	put16(&p, 0);
	put16(&p, 0);
	put_name(&p, "alias.test");
	put16(&p, 15);
	put16(&p, 1);
	put16(&p, 0xc00c);
	put16(&p, 5); /* CNAME */
	put16(&p, 1);
	put16(&p, 0);
	put16(&p, 60);
	put16(&p, 8);
	put_name(&p, "b.test");
	put16(&p, 0xc00c);
	put16(&p, 1); /* A */
	put16(&p, 1);
	put16(&p, 0);
	put16(&p, 60);
	put16(&p, 4);
	put16(&p, 0x7f00);
	put16(&p, 0x0001);
	CHECK_INT(dns_parse_mx(p.b, p.len, &out), 0);
	CHECK_INT(out.status, DNS_NODATA);
	CHECK_INT(out.n, 0);
	CHECK(out.error[0] != '\0');
}

/* --- dns_parse_answer ----------------------------------------------------- */

/* Start a response to "qname qtype" with an/ns counts; records follow. */
static void answer_begin(struct pkt *p, const char *qname, unsigned qtype, unsigned an, unsigned ns)
{
	p->len = 0;
	put16(p, 0x4321);
	put16(p, 0x8180);
	put16(p, 1);
	put16(p, an);
	put16(p, ns);
	put16(p, 0);
	put_name(p, qname);
	put16(p, qtype);
	put16(p, 1);
}

/* One record owned by the question name; rdata raw bytes. */
static void answer_rr(struct pkt *p, unsigned type, unsigned ttl, const void *rdata, size_t len)
{
	put16(p, 0xc00c);
	put16(p, type);
	put16(p, 1);
	put16(p, ttl >> 16);
	put16(p, ttl & 0xffff);
	put16(p, (unsigned)len);
	for (size_t i = 0; i < len; i++)
		put8(p, ((const unsigned char *)rdata)[i]);
}

TEST(answer_txt_joined_min_ttl)
{
	struct pkt p;
	struct dns_result out;
	static const unsigned char a[] = "\x08v=spf1 a\x05 -all";
	static const unsigned char b[] = "\x0bsecond text";
	static const unsigned char ip[] = { 127, 0, 0, 2 };

	answer_begin(&p, "example.test", 16, 3, 0);
	answer_rr(&p, 16, 300, a, sizeof a - 1);
	answer_rr(&p, 1, 5, ip, 4); /* another type: ignored, its TTL too */
	answer_rr(&p, 16, 120, b, sizeof b - 1);
	CHECK_INT(dns_parse_answer(p.b, p.len, DNS_T_TXT, &out), 0);
	CHECK_INT(out.status, DNS_OK);
	CHECK_INT(out.n, 2);
	CHECK_INT(out.ttl, 120);
	CHECK_STR(out.rr[0].text, "v=spf1 a -all");
	CHECK_INT(out.rr[0].len, 13);
	CHECK_STR(out.rr[1].text, "second text");
	dns_result_clear(&out);
	CHECK(out.rr == NULL && out.n == 0);
}

TEST(answer_txt_nul_and_empty_strings)
{
	struct pkt p;
	struct dns_result out;
	static const unsigned char a[] = { 3, 'a', 0, 'b', 0, 1, 'c' };

	answer_begin(&p, "example.test", 16, 1, 0);
	answer_rr(&p, 16, 60, a, sizeof a);
	CHECK_INT(dns_parse_answer(p.b, p.len, DNS_T_TXT, &out), 0);
	CHECK_INT(out.n, 1);
	CHECK_INT(out.rr[0].len, 4);
	CHECK(memcmp(out.rr[0].text, "a\0bc", 5) == 0);
	dns_result_clear(&out);
}

TEST(answer_txt_string_past_rdata_refused)
{
	struct pkt p;
	struct dns_result out;
	static const unsigned char a[] = { 9, 'a', 'b' };

	answer_begin(&p, "example.test", 16, 1, 0);
	answer_rr(&p, 16, 60, a, sizeof a);
	CHECK_INT(dns_parse_answer(p.b, p.len, DNS_T_TXT, &out), -EINVAL);
	CHECK_INT(out.status, DNS_BADNAME);
	CHECK_INT(out.n, 0);
	CHECK(out.error[0] != '\0');
}

TEST(answer_a_aaaa_by_type)
{
	struct pkt p;
	struct dns_result out;
	static const unsigned char v4[] = { 127, 0, 0, 2 };
	static const unsigned char v6[16] = { [15] = 1 };

	answer_begin(&p, "2.0.0.127.bl.test", 1, 2, 0);
	answer_rr(&p, 1, 900, v4, 4);
	answer_rr(&p, 28, 900, v6, 16);
	CHECK_INT(dns_parse_answer(p.b, p.len, DNS_T_A, &out), 0);
	CHECK_INT(out.n, 1);
	CHECK_INT(out.rr[0].family, AF_INET);
	CHECK(memcmp(&out.rr[0].addr.v4, v4, 4) == 0);
	dns_result_clear(&out);
	CHECK_INT(dns_parse_answer(p.b, p.len, DNS_T_AAAA, &out), 0);
	CHECK_INT(out.n, 1);
	CHECK_INT(out.rr[0].family, AF_INET6);
	dns_result_clear(&out);
	/* An A record of the wrong size is a malformed answer. */
	answer_begin(&p, "x.test", 1, 1, 0);
	answer_rr(&p, 1, 900, v6, 16);
	CHECK_INT(dns_parse_answer(p.b, p.len, DNS_T_A, &out), -EINVAL);
}

TEST(answer_ptr_and_mx_names_lowered)
{
	struct pkt p, rd;
	struct dns_result out;

	rd.len = 0;
	put_name(&rd, "Mail.Example.TEST");
	answer_begin(&p, "2.0.0.127.in-addr.arpa", 12, 1, 0);
	answer_rr(&p, 12, 60, rd.b, rd.len);
	CHECK_INT(dns_parse_answer(p.b, p.len, DNS_T_PTR, &out), 0);
	CHECK_INT(out.n, 1);
	CHECK_STR(out.rr[0].text, "mail.example.test");
	dns_result_clear(&out);

	rd.len = 0;
	put16(&rd, 20);
	put_name(&rd, "MX.example.test");
	answer_begin(&p, "example.test", 15, 1, 0);
	answer_rr(&p, 15, 60, rd.b, rd.len);
	CHECK_INT(dns_parse_answer(p.b, p.len, DNS_T_MX, &out), 0);
	CHECK_INT(out.rr[0].pref, 20);
	CHECK_STR(out.rr[0].text, "mx.example.test");
	dns_result_clear(&out);
}

TEST(answer_nodata_negative_ttl_from_soa)
{
	struct pkt p, rd;
	struct dns_result out;

	rd.len = 0;
	put_name(&rd, "ns.test");
	put_name(&rd, "hostmaster.test");
	for (int i = 0; i < 4; i++) {
		put16(&rd, 0);
		put16(&rd, 100);
	}
	put16(&rd, 0);
	put16(&rd, 45); /* MINIMUM */
	answer_begin(&p, "none.test", 16, 0, 1);
	answer_rr(&p, 6, 600, rd.b, rd.len);
	CHECK_INT(dns_parse_answer(p.b, p.len, DNS_T_TXT, &out), 0);
	CHECK_INT(out.status, DNS_NODATA);
	CHECK_INT(out.ttl, 45);
	CHECK_INT(out.n, 0);
	CHECK(out.rr == NULL);
}

TEST(answer_truncated_messages_refused)
{
	struct pkt p;
	struct dns_result out;
	static const unsigned char a[] = "\x05hello";

	answer_begin(&p, "example.test", 16, 1, 0);
	answer_rr(&p, 16, 60, a, sizeof a - 1);
	for (size_t cut = 0; cut < p.len; cut++) {
		int r = dns_parse_answer(p.b, cut, DNS_T_TXT, &out);
		CHECK_MSG(r == -EINVAL && out.n == 0, "cut at %zu: %d", cut, r);
	}
	CHECK_INT(dns_parse_answer(p.b, p.len, DNS_T_TXT, &out), 0);
	dns_result_clear(&out);
}

TEST(reverse_names)
{
	char out[DNS_REVERSE_MAX + 32];
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	inet_pton(AF_INET, "192.0.2.99", &sin.sin_addr);
	CHECK_INT(dns_reverse_name((struct sockaddr *)&sin, "zen.example", out, sizeof out), 0);
	CHECK_STR(out, "99.2.0.192.zen.example");
	inet_pton(AF_INET6, "2001:db8:1:2::f", &sin6.sin6_addr);
	CHECK_INT(dns_reverse_name((struct sockaddr *)&sin6, "ip6.arpa", out, sizeof out), 0);
	CHECK_STR(out, "f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6.sin6_addr);
	CHECK_INT(dns_reverse_name((struct sockaddr *)&sin6, "bl.test", out, sizeof out), 0);
	CHECK_STR(out, "3.2.1.10.bl.test");
	CHECK_INT(dns_reverse_name((struct sockaddr *)&sin, "zen.example", out, 10), -ENAMETOOLONG);
	struct sockaddr sa = { .sa_family = AF_UNIX };
	CHECK_INT(dns_reverse_name(&sa, "x", out, sizeof out), -EINVAL);
}

UNIT_MAIN()
