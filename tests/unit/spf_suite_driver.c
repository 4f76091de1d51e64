/*
 * spf_suite: runs SPF checks against a zone read from stdin, through the fake
 * resolver, for tests/scenario/test_spf_suite.py (the openspf RFC 7208 suite).
 * Built with the unit tests as build/<variant>/tests/spf_suite; not a test_*
 * program, so tests/run.py does not run it bare.
 *
 * Input: one record per line, fields separated by TAB, each field
 * %XX-encoded (bytes below 0x21, above 0x7e and '%' itself):
 *   RR <name> A|AAAA <address>
 *   RR <name> MX <preference> <host>
 *   RR <name> PTR|CNAME <target>
 *   RR <name> TXT|SPF [<string>...]    (a record of several strings, joined)
 *   TIMEOUT <name> [<type>]            (bare, or that type only)
 *   CHECK <id> <client-ip> <mail-from> <helo> [helo-only]
 * Zone lines apply to the CHECK lines after them. For each CHECK it prints
 *   RESULT <id> <result> <explanation> <mechanism> <problem> <lookups> <queries>
 *   HEADER <id> <Received-SPF header>
 *   AR <id> <Authentication-Results method>
 * with the texts %XX-encoded the same way. Exit 0, or 2 on bad input.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_dns.h"
#include "policy/spf.h"
#include "util/str.h"

#define MAX_FIELDS 64
#define LINE_MAX_LEN 65536

struct field {
	char *p;
	size_t len;
};

static int hexval(int c)
{
	return ascii_xdigit_value(c);
}

/* Decode %XX in place; the result may hold NULs (len says how long). */
static size_t decode(char *s)
{
	size_t o = 0;
	for (size_t i = 0; s[i]; i++) {
		if (s[i] == '%' && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			s[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			s[o++] = s[i];
		}
	}
	s[o] = '\0';
	return o;
}

static void put_encoded(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x21 || *p > 0x7e || *p == '%')
			printf("%%%02X", *p);
		else
			putchar(*p);
	}
}

static int type_of(const char *t)
{
	static const struct {
		const char *name;
		int type;
	} types[] = { { "A", DNS_T_A },		{ "AAAA", DNS_T_AAAA }, { "MX", DNS_T_MX },
		      { "PTR", DNS_T_PTR },	{ "TXT", DNS_T_TXT },	{ "SPF", FAKE_T_SPF },
		      { "CNAME", FAKE_T_CNAME } };
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (strcmp(t, types[i].name) == 0)
			return types[i].type;
	return 0;
}

struct run {
	bool done;
	struct spf_outcome o;
};

static void on_done(void *arg, const struct spf_outcome *o)
{
	struct run *r = arg;
	r->o = *o;
	r->done = true;
}

static int check(struct event_base *base, struct fake_dns *d, struct field *f, size_t n)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct dns_resolver r = fake_dns_resolver(d);
	struct run run = { 0 };
	char header[2048], ar[600];

	if (n < 5)
		return -1;
	if (inet_pton(AF_INET, f[2].p, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
	} else if (inet_pton(AF_INET6, f[2].p, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
	} else {
		fprintf(stderr, "spf_suite: bad client address %s\n", f[2].p);
		return -1;
	}
	struct spf_query q = { (struct sockaddr *)&ss, f[3].p, f[4].p, "receiver.example",
			       n > 5 && strcmp(f[5].p, "helo-only") == 0 };
	struct spf_check *c = spf_check_start(base, &r, &q, on_done, &run);
	if (!c) {
		fprintf(stderr, "spf_suite: out of memory\n");
		return -1;
	}
	if (run.done) {
		fprintf(stderr, "spf_suite: callback ran inside spf_check_start\n");
		return -1;
	}
	while (!run.done)
		if (event_base_loop(base, EVLOOP_ONCE) < 0)
			return -1;
	if (d->pending != 0) {
		fprintf(stderr, "spf_suite: %u DNS requests left behind\n", d->pending);
		return -1;
	}
	printf("RESULT\t%s\t%s\t", f[1].p, spf_result_name(run.o.result));
	put_encoded(run.o.explanation);
	putchar('\t');
	put_encoded(run.o.mechanism);
	putchar('\t');
	put_encoded(run.o.problem);
	printf("\t%u\t%u\n", run.o.lookups, run.o.queries);
	if (spf_received_header(&run.o, &q, header, sizeof header) < 0 ||
	    spf_auth_results(&run.o, ar, sizeof ar) < 0) {
		fprintf(stderr, "spf_suite: header does not fit\n");
		return -1;
	}
	printf("HEADER\t%s\t", f[1].p);
	put_encoded(header);
	printf("\nAR\t%s\t", f[1].p);
	put_encoded(ar);
	putchar('\n');
	return 0;
}

static int zone_line(struct fake_dns *d, struct field *f, size_t n)
{
	if (strcmp(f[0].p, "TIMEOUT") == 0 && (n == 2 || n == 3)) {
		fake_dns_timeout(d, f[1].p, n == 3 ? type_of(f[2].p) : FAKE_T_TIMEOUT);
		return 0;
	}
	if (strcmp(f[0].p, "RR") != 0 || n < 3)
		return -1;
	int type = type_of(f[2].p);
	switch (type) {
	case DNS_T_A:
	case DNS_T_AAAA:
		return n == 4 && fake_dns_addr(d, f[1].p, f[3].p) ? 0 : -1;
	case DNS_T_MX:
		if (n != 5)
			return -1;
		fake_dns_target(d, f[1].p, type, f[4].p, (unsigned)atoi(f[3].p));
		return 0;
	case DNS_T_PTR:
	case FAKE_T_CNAME:
		if (n != 4)
			return -1;
		fake_dns_target(d, f[1].p, type, f[3].p, 0);
		return 0;
	case DNS_T_TXT:
	case FAKE_T_SPF: {
		char joined[DNS_TXT_MAX];
		size_t len = 0;
		for (size_t i = 3; i < n; i++) {
			if (len + f[i].len > sizeof joined)
				return -1;
			memcpy(joined + len, f[i].p, f[i].len);
			len += f[i].len;
		}
		fake_dns_txt(d, f[1].p, type, joined, len);
		return 0;
	}
	default:
		return -1;
	}
}

int main(void)
{
	struct event_base *base = event_base_new();
	struct fake_dns d;
	static char line[LINE_MAX_LEN];
	struct field f[MAX_FIELDS];
	unsigned lineno = 0;

	if (!base)
		return 2;
	fake_dns_init(&d, base);
	while (fgets(line, sizeof line, stdin)) {
		size_t n = 0;
		char *s = line;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		for (;;) {
			char *tab = strchr(s, '\t');
			if (n == MAX_FIELDS)
				goto bad;
			if (tab)
				*tab = '\0';
			f[n].p = s;
			f[n].len = decode(s);
			n++;
			if (!tab)
				break;
			s = tab + 1;
		}
		if (strcmp(f[0].p, "CHECK") == 0 ? check(base, &d, f, n) < 0 : zone_line(&d, f, n) < 0)
			goto bad;
		fflush(stdout);
	}
	fake_dns_clear(&d);
	event_base_free(base);
	return 0;
bad:
	fprintf(stderr, "spf_suite: bad input line %u\n", lineno);
	fake_dns_clear(&d);
	event_base_free(base);
	return 2;
}
