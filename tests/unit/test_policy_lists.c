/*
 * Unit tests of the local lists (src/policy/policy_lists.c): the networks
 * file (formats, comments, errors with line numbers, interval merging
 * checked against cidr_match over many addresses), the senders file (the
 * three entry forms and their matching), and loading from files.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/addr.h"
#include "policy/policy_lists.h"
#include "unit.h"
#include "util/netaddr.h"

struct reports {
	unsigned n;
	unsigned lines[16];
	char last[300];
};

static void collect(void *ctx, const char *file, unsigned line, const char *msg)
{
	struct reports *r = ctx;
	(void)file;
	if (r->n < 16)
		r->lines[r->n] = line;
	r->n++;
	snprintf(r->last, sizeof r->last, "%s", msg);
}

static struct sockaddr_storage addr(const char *s)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	if (strchr(s, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, s, &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, s, &a->sin_addr);
	}
	return ss;
}

static bool net_has(const struct netlist *nl, const char *s)
{
	struct sockaddr_storage ss = addr(s);
	return netlist_match(nl, (struct sockaddr *)&ss);
}

static struct netlist *nets(const char *text, struct reports *r)
{
	struct netlist *nl = NULL;
	int rc = netlist_parse("nets", text, strlen(text), collect, r, &nl);
	return rc == 0 ? nl : NULL;
}

TEST(networks_file_formats)
{
	struct reports r = { 0 };
	/* Spamhaus DROP's own format, # comments, blanks, CRLF, bare addresses, IPv6. */
	struct netlist *nl = nets("; Spamhaus DROP List\n"
				  "1.10.16.0/20 ; SBL256894\n"
				  "\n"
				  "   # a comment\n"
				  "192.0.2.7\r\n"
				  "10.1.2.3/8   # host bits are ignored\n"
				  "2001:db8::/32\n"
				  "::ffff:203.0.113.0/120\n",
				  &r);
	CHECK(nl != NULL);
	CHECK_INT(r.n, 0);
	CHECK_INT(netlist_count(nl), 5);
	CHECK(net_has(nl, "1.10.16.1"));
	CHECK(net_has(nl, "1.10.31.255"));
	CHECK(!net_has(nl, "1.10.32.0"));
	CHECK(net_has(nl, "192.0.2.7"));
	CHECK(!net_has(nl, "192.0.2.8"));
	CHECK(net_has(nl, "10.200.0.1"));
	CHECK(net_has(nl, "2001:db8:1::5"));
	CHECK(!net_has(nl, "2001:db9::1"));
	CHECK(net_has(nl, "::ffff:10.0.0.1")); /* an IPv4-mapped client matches IPv4 networks */
	CHECK(net_has(nl, "203.0.113.9"));     /* and an IPv4-mapped network IPv4 clients */
	CHECK(!net_has(nl, "203.0.114.9"));
	netlist_free(nl);
}

TEST(networks_file_errors_are_all_reported)
{
	struct reports r = { 0 };
	struct netlist *nl = nets("192.0.2.0/24\n"
				  "192.0.2.0/33\n"
				  "not-a-network\n"
				  "10.0.0.0/8 REJECT\n"
				  "ok.line.is.not.an.address\n"
				  "1.2.3.4\x01\n"
				  "2001:db8::/129\n",
				  &r);
	CHECK(nl == NULL);
	CHECK_INT(r.n, 6);
	CHECK_INT(r.lines[0], 2);
	CHECK_INT(r.lines[1], 3);
	CHECK_INT(r.lines[2], 4);
	CHECK_INT(r.lines[3], 5);
	CHECK_INT(r.lines[4], 6);
	CHECK_INT(r.lines[5], 7);
}

TEST(networks_empty_and_huge_lines)
{
	struct reports r = { 0 };
	struct netlist *nl = nets("", &r);
	CHECK(nl != NULL);
	CHECK(!net_has(nl, "127.0.0.1"));
	netlist_free(nl);
	char line[POLICY_LIST_LINE_MAX + 10];
	memset(line, ' ', sizeof line);
	memcpy(line + sizeof line - 12, "192.0.2.1\n", 11);
	CHECK(nets(line, &r) == NULL);
	CHECK_INT(r.lines[0], 1);
}

/* Random networks: the merged intervals say what a linear cidr_match says, for many addresses. */
TEST(networks_match_the_linear_model)
{
	srand(7);
	for (int round = 0; round < 20; round++) {
		char text[64 * 60] = "";
		struct cidr cs[60];
		size_t n = 0;
		for (int i = 0; i < 60; i++) {
			char line[64];
			unsigned a = (unsigned)rand();
			int v6 = rand() % 3 == 0;
			if (v6)
				snprintf(line, sizeof line, "2001:db8:%x:%x::/%d\n", a & 0xf,
					 (a >> 4) & 0xff, 32 + rand() % 40);
			else
				snprintf(line, sizeof line, "10.%u.%u.%u/%d\n", a & 3, (a >> 2) & 0xff,
					 (a >> 10) & 0xff, 8 + rand() % 25);
			strcat(text, line);
			line[strlen(line) - 1] = '\0';
			CHECK(cidr_parse(slice_from_cstr(line), &cs[n++]) == 0);
		}
		struct reports r = { 0 };
		struct netlist *nl = nets(text, &r);
		CHECK(nl != NULL);
		for (int k = 0; k < 2000 && nl; k++) {
			char a[64];
			unsigned x = (unsigned)rand();
			if (k % 3 == 0)
				snprintf(a, sizeof a, "2001:db8:%x:%x::%x", x & 0xf, (x >> 4) & 0xff,
					 x >> 20);
			else
				snprintf(a, sizeof a, "10.%u.%u.%u", x & 3, (x >> 2) & 0xff,
					 (x >> 10) & 0xff);
			struct sockaddr_storage ss = addr(a);
			bool model = false;
			for (size_t i = 0; i < n; i++)
				model = model || cidr_match(&cs[i], (struct sockaddr *)&ss);
			CHECK_MSG(netlist_match(nl, (struct sockaddr *)&ss) == model, "%s", a);
		}
		netlist_free(nl);
	}
}

static struct senderlist *senders(const char *text, struct reports *r)
{
	struct senderlist *sl = NULL;
	int rc = senderlist_parse("senders", text, strlen(text), collect, r, &sl);
	return rc == 0 ? sl : NULL;
}

static bool sender_has(const struct senderlist *sl, const char *path)
{
	struct addr a;
	size_t used;
	if (addr_parse_path(slice_from_cstr(path), ADDR_ALLOW_NULL | ADDR_UTF8, &a, &used) < 0)
		abort();
	return senderlist_match(sl, &a);
}

TEST(senders_three_forms)
{
	struct reports r = { 0 };
	struct senderlist *sl = senders("# who we do not want\n"
					"Spammer@Example.COM\n"
					"@exact.example   ; only this domain\n"
					"rotating.example\n"
					"rotating.example\n", /* repeated in a shared list: harmless */
					&r);
	CHECK(sl != NULL);
	CHECK_INT(r.n, 0);
	CHECK_INT(senderlist_count(sl), 3);
	CHECK(sender_has(sl, "<spammer@example.com>"));
	CHECK(sender_has(sl, "<SPAMMER@example.com>"));
	CHECK(!sender_has(sl, "<other@example.com>"));
	CHECK(sender_has(sl, "<anyone@exact.example>"));
	CHECK(sender_has(sl, "<anyone@EXACT.example>"));
	CHECK(!sender_has(sl, "<anyone@sub.exact.example>"));
	CHECK(sender_has(sl, "<a@rotating.example>"));
	CHECK(sender_has(sl, "<a@x1.rotating.example>"));
	CHECK(sender_has(sl, "<a@y.x2.rotating.example>"));
	CHECK(!sender_has(sl, "<a@notrotating.example>"));
	CHECK(!sender_has(sl, "<>"));
	senderlist_free(sl);
}

TEST(senders_file_errors)
{
	struct reports r = { 0 };
	struct senderlist *sl = senders("ok@example.com\n"
					"@\n"
					"bad..domain\n"
					"user@[192.0.2.1]\n"
					"two words\n"
					"@bad domain\n",
					&r);
	CHECK(sl == NULL);
	CHECK_INT(r.n, 5);
	CHECK_INT(r.lines[0], 2);
	CHECK_INT(r.lines[4], 6);
}

TEST(load_from_files_and_keep_on_broken_reload)
{
	char dir[] = "/tmp/carteiro-lists-XXXXXX";
	char nets_path[128], senders_path[128];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(nets_path, sizeof nets_path, "%s/nets", dir);
	snprintf(senders_path, sizeof senders_path, "%s/senders", dir);
	FILE *f = fopen(nets_path, "w");
	fputs("192.0.2.0/24\n", f);
	fclose(f);
	f = fopen(senders_path, "w");
	fputs("spam.example\n", f);
	fclose(f);

	struct config cfg;
	config_init(&cfg);
	cfg.block_networks_file = strdup(nets_path);
	cfg.allow_networks_file = strdup(nets_path);
	cfg.block_senders_file = strdup(senders_path);
	struct policy_lists *l = NULL;
	struct reports r = { 0 };
	CHECK(policy_lists_load(&cfg, collect, &r, &l) == 0);
	struct sockaddr_storage in = addr("192.0.2.9"), out = addr("198.51.100.1");
	CHECK(policy_lists_client_blocked(l, (struct sockaddr *)&in));
	CHECK(policy_lists_client_allowed(l, (struct sockaddr *)&in));
	CHECK(!policy_lists_client_blocked(l, (struct sockaddr *)&out));

	/* A broken file: the reload keeps what was loaded. */
	f = fopen(nets_path, "w");
	fputs("192.0.2.0/99\n", f);
	fclose(f);
	CHECK(!policy_lists_reload(&cfg, &l));
	CHECK(policy_lists_client_blocked(l, (struct sockaddr *)&in));
	/* Fixed: the new table replaces it. */
	f = fopen(nets_path, "w");
	fputs("198.51.100.0/24\n", f);
	fclose(f);
	CHECK(policy_lists_reload(&cfg, &l));
	CHECK(!policy_lists_client_blocked(l, (struct sockaddr *)&in));
	CHECK(policy_lists_client_blocked(l, (struct sockaddr *)&out));

	/* A missing file is one error; every file is still read. */
	unlink(senders_path);
	f = fopen(nets_path, "w");
	fputs("bad\n", f);
	fclose(f);
	struct policy_lists *l2 = NULL;
	memset(&r, 0, sizeof r);
	CHECK(policy_lists_load(&cfg, collect, &r, &l2) < 0);
	CHECK_INT(r.n, 3); /* bad line in each networks file, and the missing senders file */
	CHECK(l2 == NULL);

	policy_lists_free(l);
	config_free(&cfg);
	unlink(nets_path);
	rmdir(dir);
}

TEST(no_lists_match_nothing)
{
	struct config cfg;
	config_init(&cfg);
	struct policy_lists *l = NULL;
	CHECK(policy_lists_load(&cfg, collect, NULL, &l) == 0);
	struct sockaddr_storage in = addr("192.0.2.9");
	CHECK(!policy_lists_client_blocked(l, (struct sockaddr *)&in));
	CHECK(!policy_lists_client_allowed(l, (struct sockaddr *)&in));
	CHECK(!policy_lists_client_blocked(NULL, (struct sockaddr *)&in));
	policy_lists_free(l);
	config_free(&cfg);
}

UNIT_MAIN()
