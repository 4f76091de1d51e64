/*
 * Live tests of dns.c against a real DNS server: dnsmasq, started here on
 * 127.0.0.1 and a free port with the test zone below, and killed at exit
 * (and by PR_SET_PDEATHSIG should this program crash). Every lookup runs on a
 * real event_base; callbacks check that they never run inside dns_lookup_*().
 *
 * Zone (--local=/test/: names under test. that are not listed get NXDOMAIN):
 *   example.test   MX 10 mx-a, 20 mx-b, 20 mx-c, 5 mx-first (no address)
 *   mx-a.example.test  A 127.0.0.2, AAAA ::1
 *   nomx.test      A 127.0.0.5 (no MX)
 *   v6only.test    AAAA ::2
 *   nullmx.test    MX 0 .
 * A server that refuses (a closed port) and one that never answers (a bound
 * UDP socket nobody reads) give DNS_TEMPFAIL.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns.h"
#include "unit.h"

static pid_t dnsmasq_pid = -1;
static int dnsmasq_port;
static char tmpdir[64];

static void dnsmasq_stop(void)
{
	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, NULL, 0);
		dnsmasq_pid = -1;
	}
	if (tmpdir[0]) {
		char path[128];
		snprintf(path, sizeof path, "%s/dnsmasq.pid", tmpdir);
		unlink(path);
		snprintf(path, sizeof path, "%s/dnsmasq.log", tmpdir);
		unlink(path);
		rmdir(tmpdir);
		tmpdir[0] = '\0';
	}
}

__attribute__((destructor)) static void dnsmasq_stop_at_exit(void)
{
	dnsmasq_stop();
}

/* A port free for both UDP and TCP on 127.0.0.1 (the kernel's pick for UDP). */
static int free_port(void)
{
	for (int attempt = 0; attempt < 20; attempt++) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t len = sizeof sin;
		int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0), ok;

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = bind(u, (struct sockaddr *)&sin, sizeof sin) == 0 &&
		     getsockname(u, (struct sockaddr *)&sin, &len) == 0 &&
		     bind(t, (struct sockaddr *)&sin, sizeof sin) == 0;
		close(u);
		close(t);
		if (ok)
			return ntohs(sin.sin_port);
	}
	return -1;
}

/* Is the UDP port taken (by dnsmasq, once it is ready)? */
static bool udp_port_busy(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	bool busy;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	busy = bind(u, (struct sockaddr *)&sin, sizeof sin) < 0 && errno == EADDRINUSE;
	close(u);
	return busy;
}

static bool dnsmasq_start(void)
{
	char port_opt[32], pid_opt[96], log_opt[96];
	pid_t parent = getpid();

	if (dnsmasq_pid > 0)
		return true;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/carteiro-dns-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		tmpdir[0] = '\0';
		return false;
	}
	for (int attempt = 0; attempt < 5; attempt++) {
		dnsmasq_port = free_port();
		snprintf(port_opt, sizeof port_opt, "--port=%d", dnsmasq_port);
		snprintf(pid_opt, sizeof pid_opt, "--pid-file=%s/dnsmasq.pid", tmpdir);
		snprintf(log_opt, sizeof log_opt, "--log-facility=%s/dnsmasq.log", tmpdir);
		const char *argv[] = {
			"dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
			"--no-hosts", "--bind-interfaces", "--listen-address=127.0.0.1",
			port_opt, pid_opt, log_opt, "--local=/test/",
			"--mx-host=example.test,mx-a.example.test,10",
			"--mx-host=example.test,mx-b.example.test,20",
			"--mx-host=example.test,mx-c.example.test,20",
			"--mx-host=example.test,mx-first.example.test,5",
			"--host-record=mx-a.example.test,127.0.0.2,::1",
			"--host-record=nomx.test,127.0.0.5",
			"--host-record=v6only.test,::2",
			"--mx-host=nullmx.test,.,0",
			"--txt-record=txt.test,v=spf1 ip4:127.0.0.0/8, -all",
			"--txt-record=txt.test,second record",
			"--ptr-record=5.0.0.127.in-addr.arpa,NoMX.test",
			"--local-ttl=30",
			/* Running as root, dnsmasq would switch to "nobody" otherwise. */
			"--user=root", "--group=root", NULL,
		};
		if (geteuid() != 0)
			argv[sizeof argv / sizeof argv[0] - 3] = NULL;
		pid_t pid = fork();
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				_exit(127);
			execvp("dnsmasq", (char *const *)argv);
			execv("/usr/sbin/dnsmasq", (char *const *)argv);
			_exit(127);
		}
		if (pid < 0)
			return false;
		dnsmasq_pid = pid;
		for (int i = 0; i < 500; i++) {
			if (waitpid(pid, NULL, WNOHANG) == pid) {
				dnsmasq_pid = -1;
				break; /* exited: port taken meanwhile? try another */
			}
			if (udp_port_busy(dnsmasq_port))
				return true;
			usleep(10000);
		}
		if (dnsmasq_pid > 0)
			dnsmasq_stop();
	}
	fprintf(stderr, "  cannot start dnsmasq\n");
	return false;
}

/* --- loop helpers --------------------------------------------------------- */

static struct event_base *base;
static bool in_lookup; /* set around every dns_lookup_*() call */
static int calls;

struct mx_seen {
	int calls;
	bool inside; /* a callback ran inside dns_lookup_*() */
	struct dns_mx_result res;
};

struct addr_seen {
	int calls;
	bool inside;
	struct dns_addr_result res;
};

static void on_mx(void *arg, const struct dns_mx_result *res)
{
	struct mx_seen *s = arg;
	s->calls++;
	s->inside |= in_lookup;
	s->res = *res;
	calls++;
}

static void on_addr(void *arg, const struct dns_addr_result *res)
{
	struct addr_seen *s = arg;
	s->calls++;
	s->inside |= in_lookup;
	s->res = *res;
	calls++;
}

static struct dns_req *mx(struct dns *dns, const char *name, struct mx_seen *s)
{
	memset(s, 0, sizeof *s);
	in_lookup = true;
	struct dns_req *r = dns_lookup_mx(dns, name, on_mx, s);
	in_lookup = false;
	return r;
}

static struct dns_req *addr(struct dns *dns, const char *name, uint16_t port,
			    struct addr_seen *s)
{
	memset(s, 0, sizeof *s);
	in_lookup = true;
	struct dns_req *r = dns_lookup_addr(dns, name, port, on_addr, s);
	in_lookup = false;
	return r;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Run the loop until `calls` reaches want or seconds pass; the elapsed seconds. */
static double run_until(int want, double seconds)
{
	bool expired = false;
	struct timeval tv = { (time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6) };
	struct event *deadline = evtimer_new(base, on_deadline, &expired);
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	evtimer_add(deadline, &tv);
	while (calls < want && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(deadline);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

static struct dns *live_dns(void)
{
	char server[64], err[256];
	const char *servers[] = { server };
	struct dns *dns;

	if (!base)
		base = event_base_new();
	calls = 0;
	if (!dnsmasq_start())
		return NULL;
	snprintf(server, sizeof server, "127.0.0.1:%d", dnsmasq_port);
	dns = dns_new(base, servers, 1, err, sizeof err);
	CHECK_MSG(dns != NULL, "dns_new: %s", err);
	return dns;
}

/* A resolver whose server is a bound UDP socket (*fd) that nobody reads. */
static struct dns *silent_dns(int *fd)
{
	char server[64], err[256];
	const char *servers[] = { server };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	struct dns *dns;

	if (!base)
		base = event_base_new();
	calls = 0;
	*fd = socket(AF_INET, SOCK_DGRAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(*fd, (struct sockaddr *)&sin, sizeof sin) == 0);
	getsockname(*fd, (struct sockaddr *)&sin, &len);
	snprintf(server, sizeof server, "127.0.0.1:%d", ntohs(sin.sin_port));
	dns = dns_new(base, servers, 1, err, sizeof err);
	CHECK_MSG(dns != NULL, "dns_new: %s", err);
	return dns;
}

static const char *ip_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	if (ss->ss_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf,
				 (socklen_t)len);
	return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf,
			 (socklen_t)len);
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* --- tests ---------------------------------------------------------------- */

/* Defined first, so run last (UNIT_MAIN runs the tests in reverse order). */
TEST(zz_cleanup)
{
	dnsmasq_stop();
	if (base)
		event_base_free(base);
	base = NULL;
}

TEST(server_list_validation)
{
	static const struct {
		const char *server;
		bool ok;
	} cases[] = {
		{ "127.0.0.1", true },	  { "127.0.0.1:5353", true }, { "[::1]:53", true },
		{ "::1", true },	  { "[::1]", true },	      { "2001:db8::1", true },
		{ "127.0.0.1:0", false }, { "127.0.0.1:65536", false }, { "127.0.0.1:", false },
		{ "[::1", false },	  { "[::1]x", false },	      { "[127.0.0.1]:53", false },
		{ "dns.example", false }, { "", false },	      { "1.2.3.4:53x", false },
		{ "1.2.3.4:-1", false },  { "[::1]:+5", false },
	};
	struct event_base *b = event_base_new();

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256] = "";
		const char *servers[] = { "127.0.0.1", cases[i].server };
		struct dns *dns = dns_new(b, servers, 2, err, sizeof err);
		CHECK_MSG((dns != NULL) == cases[i].ok, "\"%s\": %s", cases[i].server, err);
		if (!cases[i].ok)
			CHECK_MSG(strstr(err, "bad DNS server") != NULL, "\"%s\": \"%s\"",
				  cases[i].server, err);
		dns_free(dns);
	}
	/* No list: /etc/resolv.conf. */
	char err[256];
	struct dns *dns = dns_new(b, NULL, 0, err, sizeof err);
	CHECK_MSG(dns != NULL, "%s", err);
	dns_free(dns);
	event_base_free(b);
}

TEST(mx_lookup_sorted)
{
	struct dns *dns = live_dns();
	struct mx_seen s;
	bool mxb_first = false, mxc_first = false;

	if (!dns)
		return;
	for (int run = 0; run < 30; run++) {
		calls = 0;
		CHECK(mx(dns, run % 2 ? "example.test" : "Example.Test.", &s) != NULL);
		CHECK_INT(s.calls, 0);
		run_until(1, 5);
		CHECK_INT(s.calls, 1);
		CHECK(!s.inside);
		CHECK_INT(s.res.status, DNS_OK);
		CHECK(!s.res.null_mx);
		CHECK_INT(s.res.n, 4);
		if (s.res.n != 4)
			break;
		CHECK_STR(s.res.mx[0].host, "mx-first.example.test");
		CHECK_INT(s.res.mx[0].pref, 5);
		CHECK_STR(s.res.mx[1].host, "mx-a.example.test");
		CHECK_INT(s.res.mx[2].pref, 20);
		CHECK_INT(s.res.mx[3].pref, 20);
		mxb_first |= strcmp(s.res.mx[2].host, "mx-b.example.test") == 0;
		mxc_first |= strcmp(s.res.mx[2].host, "mx-c.example.test") == 0;
	}
	CHECK(mxb_first && mxc_first);
	dns_free(dns);
}

TEST(nodata_nxdomain_null_mx)
{
	struct dns *dns = live_dns();
	struct mx_seen nomx, unknown, nullmx, other_zone;
	struct addr_seen a_nomx, a_unknown, a_mxonly;
	char ip[64];

	if (!dns)
		return;
	mx(dns, "nomx.test", &nomx);
	mx(dns, "unknown.test", &unknown);
	mx(dns, "nullmx.test", &nullmx);
	mx(dns, "outside.zone", &other_zone); /* dnsmasq has no upstream: REFUSED */
	addr(dns, "nomx.test", 25, &a_nomx);
	addr(dns, "unknown.test", 25, &a_unknown);
	addr(dns, "example.test", 25, &a_mxonly);
	run_until(7, 10);
	CHECK_INT(calls, 7);

	CHECK_INT(nomx.res.status, DNS_NODATA);
	CHECK_INT(nomx.res.n, 0);
	CHECK(nomx.res.error[0] != '\0');
	CHECK_INT(unknown.res.status, DNS_NXDOMAIN);
	CHECK_INT(nullmx.res.status, DNS_OK);
	CHECK(nullmx.res.null_mx);
	CHECK_INT(nullmx.res.n, 0);
	CHECK_INT(other_zone.res.status, DNS_TEMPFAIL);
	/* c-ares 1.18 tries the next server after REFUSED and ends with ECONNREFUSED. */
	CHECK_MSG(strstr(other_zone.res.error, "REFUSED") != NULL, "%s", other_zone.res.error);

	CHECK_INT(a_nomx.res.status, DNS_OK);
	CHECK_INT(a_nomx.res.n, 1);
	CHECK_STR(ip_text(&a_nomx.res.addr[0], ip, sizeof ip), "127.0.0.5");
	CHECK_INT(port_of(&a_nomx.res.addr[0]), 25);
	CHECK_INT(a_nomx.res.addrlen[0], sizeof(struct sockaddr_in));
	CHECK_INT(a_unknown.res.status, DNS_NXDOMAIN);
	CHECK_INT(a_mxonly.res.status, DNS_NODATA);
	CHECK(!nomx.inside && !unknown.inside && !nullmx.inside && !a_nomx.inside &&
	      !a_unknown.inside && !a_mxonly.inside);
	dns_free(dns);
}

TEST(addr_both_families)
{
	struct dns *dns = live_dns();
	struct addr_seen both, v6, lit4, lit6, bad;
	char ip[64];

	if (!dns)
		return;
	addr(dns, "MX-A.example.test", 2525, &both);
	addr(dns, "v6only.test.", 25, &v6);
	addr(dns, "127.0.0.9", 26, &lit4);
	addr(dns, "::1", 27, &lit6);
	addr(dns, "bad..name", 25, &bad);
	CHECK_INT(both.calls + v6.calls + lit4.calls + lit6.calls + bad.calls, 0);
	run_until(5, 10);
	CHECK_INT(calls, 5);

	CHECK_INT(both.res.status, DNS_OK);
	CHECK_INT(both.res.n, 2);
	/* IPv6 first, then IPv4 (RFC 8305 4). */
	CHECK_INT(both.res.addr[0].ss_family, AF_INET6);
	CHECK_STR(ip_text(&both.res.addr[0], ip, sizeof ip), "::1");
	CHECK_INT(both.res.addrlen[0], sizeof(struct sockaddr_in6));
	CHECK_STR(ip_text(&both.res.addr[1], ip, sizeof ip), "127.0.0.2");
	CHECK_INT(port_of(&both.res.addr[0]), 2525);
	CHECK_INT(port_of(&both.res.addr[1]), 2525);

	CHECK_INT(v6.res.status, DNS_OK);
	CHECK_INT(v6.res.n, 1);
	CHECK_STR(ip_text(&v6.res.addr[0], ip, sizeof ip), "::2");

	CHECK_INT(lit4.res.status, DNS_OK);
	CHECK_INT(lit4.res.n, 1);
	CHECK_STR(ip_text(&lit4.res.addr[0], ip, sizeof ip), "127.0.0.9");
	CHECK_INT(port_of(&lit4.res.addr[0]), 26);
	CHECK_INT(lit6.res.status, DNS_OK);
	CHECK_INT(lit6.res.n, 1);
	CHECK_STR(ip_text(&lit6.res.addr[0], ip, sizeof ip), "::1");
	CHECK_INT(port_of(&lit6.res.addr[0]), 27);
	CHECK_INT(bad.res.status, DNS_BADNAME);
	CHECK(!both.inside && !v6.inside && !lit4.inside && !lit6.inside && !bad.inside);
	dns_free(dns);
}

TEST(bad_names)
{
	struct dns *dns = live_dns();
	struct mx_seen s[5];
	char longname[300];

	if (!dns)
		return;
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	mx(dns, "", &s[0]);
	mx(dns, "a..b", &s[1]);
	mx(dns, "sp ace.test", &s[2]);
	mx(dns, longname, &s[3]);
	mx(dns, ".", &s[4]);
	run_until(5, 5);
	for (int i = 0; i < 5; i++) {
		CHECK_INT(s[i].calls, 1);
		CHECK(!s[i].inside);
		CHECK_INT(s[i].res.status, DNS_BADNAME);
	}
	dns_free(dns);
}

TEST(cancel_before_answer)
{
	struct dns *dns = live_dns();
	struct mx_seen a, b, c;
	struct addr_seen lit, d;

	if (!dns)
		return;
	struct dns_req *ra = mx(dns, "example.test", &a);
	mx(dns, "nomx.test", &b);
	struct dns_req *rl = addr(dns, "127.0.0.1", 25, &lit); /* answered, not delivered */
	struct dns_req *rc = mx(dns, "", &c);		     /* bad name: answered at once */
	struct dns_req *rd = addr(dns, "mx-a.example.test", 25, &d);
	dns_cancel(ra);
	dns_cancel(rl);
	dns_cancel(rc);
	dns_cancel(rd);
	run_until(1, 5);
	CHECK_INT(b.calls, 1);
	/* The cancelled answers arrive meanwhile; give them time to (not) show up. */
	run_until(99, 0.3);
	CHECK_INT(calls, 1);
	CHECK_INT(a.calls + lit.calls + c.calls + d.calls, 0);
	dns_free(dns);
}

struct rec_seen {
	int calls;
	bool inside;
	enum dns_status status;
	bool cached;
	uint32_t ttl;
	size_t n;
	char text[4][128];
	struct in_addr v4[4];
};

static void on_rec(void *arg, const struct dns_result *res)
{
	struct rec_seen *s = arg;
	s->calls++;
	s->inside |= in_lookup;
	s->status = res->status;
	s->cached = res->cached;
	s->ttl = res->ttl;
	s->n = res->n;
	for (size_t i = 0; i < res->n && i < 4; i++) {
		if (res->rr[i].text)
			snprintf(s->text[i], sizeof s->text[i], "%s", res->rr[i].text);
		if (res->rr[i].family == AF_INET)
			s->v4[i] = res->rr[i].addr.v4;
	}
	calls++;
}

static struct dns_req *rec(struct dns *dns, const char *name, enum dns_type type,
			   struct rec_seen *s)
{
	memset(s, 0, sizeof *s);
	in_lookup = true;
	struct dns_req *r = dns_lookup(dns, name, type, on_rec, s);
	in_lookup = false;
	return r;
}

/* TXT, A, PTR through dns_lookup(); the second asking is answered from the cache. */
TEST(records_and_cache)
{
	struct dns *dns = live_dns();
	struct rec_seen t, a, p, nx, t2, bad;

	if (!dns)
		return;
	rec(dns, "TXT.test.", DNS_T_TXT, &t);
	rec(dns, "nomx.test", DNS_T_A, &a);
	rec(dns, "5.0.0.127.in-addr.arpa", DNS_T_PTR, &p);
	rec(dns, "missing.test", DNS_T_TXT, &nx);
	rec(dns, "bad..name", DNS_T_TXT, &bad);
	run_until(5, 5);
	CHECK_INT(t.calls + a.calls + p.calls + nx.calls + bad.calls, 5);
	CHECK(!t.inside && !a.inside && !p.inside && !nx.inside && !bad.inside);
	CHECK_INT(t.status, DNS_OK);
	CHECK_INT(t.n, 2);
	CHECK(!t.cached);
	CHECK(t.ttl > 0 && t.ttl <= 30);
	bool joined = strcmp(t.text[0], "v=spf1 ip4:127.0.0.0/8 -all") == 0 ||
		      strcmp(t.text[1], "v=spf1 ip4:127.0.0.0/8 -all") == 0;
	CHECK_MSG(joined, "TXT strings not joined: '%s' '%s'", t.text[0], t.text[1]);
	CHECK_INT(a.status, DNS_OK);
	CHECK_INT(a.n, 1);
	CHECK_INT(ntohl(a.v4[0].s_addr), 0x7f000005);
	CHECK_INT(p.status, DNS_OK);
	CHECK_STR(p.text[0], "nomx.test");
	CHECK_INT(nx.status, DNS_NXDOMAIN);
	CHECK_INT(bad.status, DNS_BADNAME);

	/* Again, in another case: from the cache, still never inside the call. */
	calls = 0;
	struct dns_req *r = rec(dns, "txt.TEST", DNS_T_TXT, &t2);
	CHECK(r != NULL);
	run_until(1, 5);
	CHECK_INT(t2.calls, 1);
	CHECK(!t2.inside);
	CHECK(t2.cached);
	CHECK_INT(t2.n, 2);
	CHECK_STR(t2.text[0], t.text[0]);
	/* A cached answer cancelled before delivery is never delivered. */
	calls = 0;
	r = rec(dns, "txt.test", DNS_T_TXT, &t2);
	dns_cancel(r);
	run_until(1, 0.3);
	CHECK_INT(t2.calls, 0);
	/* The resolver interface gives the same. */
	struct dns_resolver res = dns_resolver_of(dns);
	memset(&t2, 0, sizeof t2);
	calls = 0;
	CHECK(res.lookup(res.ctx, "nomx.test", DNS_T_A, on_rec, &t2) != NULL);
	run_until(1, 5);
	CHECK_INT(t2.status, DNS_OK);
	CHECK(t2.cached);
	dns_free(dns);
}

/* A callback that frees the resolver, as a queue manager shutting down might. */
struct free_in_cb {
	struct dns *dns;
	int calls;
};

static void free_from_callback(void *arg, const struct dns_mx_result *res)
{
	struct free_in_cb *f = arg;
	(void)res;
	f->calls++;
	calls++;
	dns_free(f->dns);
}

TEST(free_with_pending_queries)
{
	struct dns *dns = live_dns();
	struct mx_seen a, b;
	struct addr_seen c, d;
	int silent;

	if (!dns)
		return;
	/* Sent, but never given to the loop. */
	mx(dns, "example.test", &a);
	mx(dns, "bad..name", &b);
	addr(dns, "mx-a.example.test", 25, &c);
	addr(dns, "::1", 25, &d);
	dns_free(dns);
	run_until(99, 0.3);
	CHECK_INT(a.calls + b.calls + c.calls + d.calls, 0);

	/* Queries on the wire (to a server that never answers) when the resolver goes. */
	dns = silent_dns(&silent);
	mx(dns, "example.test", &a);
	addr(dns, "mx-a.example.test", 25, &c);
	run_until(99, 0.3);
	dns_free(dns);
	close(silent);
	run_until(99, 0.3);
	CHECK_INT(a.calls + c.calls, 0);

	/* dns_free from a callback: the other requests never call back. */
	struct free_in_cb f = { live_dns(), 0 };
	in_lookup = true;
	dns_lookup_mx(f.dns, "", free_from_callback, &f);
	dns_lookup_mx(f.dns, "", free_from_callback, &f);
	in_lookup = false;
	mx(f.dns, "example.test", &a);
	run_until(99, 0.5);
	CHECK_INT(f.calls, 1);
	CHECK_INT(a.calls, 0);
}

TEST(tempfail_refused_port)
{
	char server[64], err[256];
	const char *servers[] = { server };
	struct mx_seen s;
	int port = free_port(); /* nothing listens there: ICMP port unreachable */

	if (!base)
		base = event_base_new();
	calls = 0;
	snprintf(server, sizeof server, "127.0.0.1:%d", port);
	struct dns *dns = dns_new(base, servers, 1, err, sizeof err);
	CHECK(dns != NULL);
	if (!dns)
		return;
	mx(dns, "example.test", &s);
	double t = run_until(1, 15);
	CHECK_INT(s.calls, 1);
	CHECK_INT(s.res.status, DNS_TEMPFAIL);
	CHECK_MSG(t < 10, "%.1f s", t);
	dns_free(dns);
}

TEST(tempfail_timeout)
{
	struct mx_seen s;
	struct addr_seen a;
	int silent;
	struct dns *dns = silent_dns(&silent);

	if (!dns)
		return;
	mx(dns, "example.test", &s);
	addr(dns, "mx-a.example.test", 25, &a);
	/* 3 s, then 6 s for the second try: about 9 s. */
	double t = run_until(2, 15);
	CHECK_INT(s.calls, 1);
	CHECK_INT(a.calls, 1);
	CHECK_INT(s.res.status, DNS_TEMPFAIL);
	CHECK_STR(s.res.error, "DNS timeout");
	CHECK_INT(a.res.status, DNS_TEMPFAIL);
	CHECK_MSG(t > 2.5 && t < 12, "%.1f s", t);
	dns_free(dns);
	close(silent);
}

UNIT_MAIN()
