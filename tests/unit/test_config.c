/*
 * Unit tests for conf/config: every key's valid values, limits and bad
 * values, the line syntax (comments, CRLF, long lines, control bytes),
 * duplicates, the unknown-key suggestion, the checks of the whole file,
 * defaults, repeated parses, config_load_file and the printed key table.
 * Leaks are caught by ASan's leak check at exit.
 *
 * Error tables list the expected reports in order as "LINE: substring"; a
 * substring that ends with '$' must end the message.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"
#include "mail/addr.h"
#include "unit.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* Appended to most error cases so that the missing-listen check stays quiet. */
#define LISTEN_TAIL "\nlisten smtp 192.0.2.1:25\n"
#define MAX_REPORTS 32

struct report {
	unsigned line;
	char file[128];
	char msg[1024];
};

struct report_log {
	unsigned n;
	struct report r[MAX_REPORTS];
};

static void collect(void *ctx, const char *file, unsigned line, const char *msg)
{
	struct report_log *log = ctx;

	/* The fuzz target's invariants, checked here too. */
	CHECK(msg != NULL && msg[0] != '\0');
	if (log->n < MAX_REPORTS) {
		struct report *r = &log->r[log->n];
		r->line = line;
		snprintf(r->file, sizeof r->file, "%s", file);
		snprintf(r->msg, sizeof r->msg, "%s", msg);
	}
	log->n++;
}

static void dump_reports(const struct report_log *log)
{
	for (unsigned i = 0; i < log->n && i < MAX_REPORTS; i++)
		fprintf(stderr, "    got %u: %s\n", log->r[i].line, log->r[i].msg);
}

/* Does one report match "LINE: substring[$]"? */
static int report_matches(const struct report *r, const char *want)
{
	char *end;
	unsigned long line = strtoul(want, &end, 10);
	size_t n, mlen = strlen(r->msg);

	if (end[0] != ':' || end[1] != ' ' || line != r->line)
		return 0;
	want = end + 2;
	n = strlen(want);
	if (n && want[n - 1] == '$')
		return mlen >= n - 1 && memcmp(r->msg + mlen - (n - 1), want, n - 1) == 0;
	return strstr(r->msg, want) != NULL;
}

/* Parse text and check the reports against want (NULL-terminated). */
static void expect_reports(const char *label, const char *text, size_t len,
			   const char *const *want)
{
	struct config cfg;
	struct report_log log = { 0 };
	unsigned nwant = 0, errors;
	int ok = 1;

	while (want[nwant])
		nwant++;
	config_init(&cfg);
	errors = config_parse(&cfg, "t.conf", text, len, collect, &log);
	config_free(&cfg);
	if (errors != log.n || log.n != nwant)
		ok = 0;
	for (unsigned i = 0; ok && i < nwant; i++)
		ok = report_matches(&log.r[i], want[i]) && strcmp(log.r[i].file, "t.conf") == 0;
	CHECK_MSG(ok, "case %s: %u errors returned, %u reported, %u expected", label, errors, log.n,
		  nwant);
	if (!ok) {
		for (unsigned i = 0; i < nwant; i++)
			fprintf(stderr, "    want %s\n", want[i]);
		dump_reports(&log);
	}
}

/* A field of a config as text, so that value tables can compare strings. */
static void render(const struct config *c, const char *key, char *out, size_t outlen)
{
	char tmp[256];
	size_t o = 0;

	out[0] = '\0';
	if (strcmp(key, "hostname") == 0)
		snprintf(out, outlen, "%s", c->hostname);
	else if (strcmp(key, "spool") == 0)
		snprintf(out, outlen, "%s", c->spool);
	else if (strcmp(key, "maildir-root") == 0)
		snprintf(out, outlen, "%s", c->maildir_root);
	else if (strcmp(key, "user") == 0)
		snprintf(out, outlen, "%s", c->user);
	else if (strcmp(key, "users") == 0)
		snprintf(out, outlen, "%s@%u", c->users_file ? c->users_file : "(null)",
			 c->users_line);
	else if (strcmp(key, "aliases") == 0)
		snprintf(out, outlen, "%s@%u", c->aliases_file ? c->aliases_file : "(null)",
			 c->aliases_line);
	else if (strcmp(key, "listen") == 0)
		for (size_t i = 0; i < c->nlistens; i++) {
			const struct sockaddr *sa = (const struct sockaddr *)&c->listens[i].addr.ss;
			netaddr_text(sa, tmp, sizeof tmp);
			o += (size_t)snprintf(out + o, outlen - o, "%s%s=%s", i ? "," : "",
					      c->listens[i].text, tmp);
		}
	else if (strcmp(key, "local-domain") == 0)
		for (size_t i = 0; i < c->nlocal_domains; i++)
			o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? "," : "",
					      c->local_domains[i]);
	else if (strcmp(key, "relay-network") == 0)
		for (size_t i = 0; i < c->nrelay_networks; i++) {
			const struct cidr *n = &c->relay_networks[i];
			inet_ntop(n->family, n->addr, tmp, sizeof tmp);
			o += (size_t)snprintf(out + o, outlen - o, "%s%s/%u", i ? "," : "", tmp,
					      n->prefix);
		}
	else if (strcmp(key, "dns-server") == 0)
		for (size_t i = 0; i < c->ndns_servers; i++)
			o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? "," : "",
					      c->dns_servers[i]);
	else if (strcmp(key, "relayhost") == 0)
		snprintf(out, outlen, "%s port=%u", c->relayhost ? c->relayhost : "(null)",
			 c->relayhost_port);
	else if (strcmp(key, "relayhost-tls") == 0)
		snprintf(out, outlen, "%d", (int)c->relayhost_tls);
	else if (strcmp(key, "retry-schedule") == 0)
		for (size_t i = 0; i < c->nretry_schedule; i++)
			o += (size_t)snprintf(out + o, outlen - o, "%s%u", i ? "," : "",
					      c->retry_schedule[i]);
	else if (strcmp(key, "queue-lifetime") == 0)
		snprintf(out, outlen, "%u", c->queue_lifetime);
	else if (strcmp(key, "dmarc") == 0)
		snprintf(out, outlen, "%s", c->dmarc ? "yes" : "no");
	else if (strcmp(key, "dmarc-reject-policy") == 0)
		snprintf(out, outlen, "%d", (int)c->dmarc_reject_policy);
	else if (strcmp(key, "dmarc-quarantine-header") == 0)
		snprintf(out, outlen, "%s", c->dmarc_quarantine_header);
	else if (strcmp(key, "public-suffix-list") == 0)
		snprintf(out, outlen, "%s", c->public_suffix_list);
	else if (strcmp(key, "delay-warning") == 0)
		snprintf(out, outlen, "%u", c->delay_warning);
	else if (strcmp(key, "outbound-port") == 0)
		snprintf(out, outlen, "%u", c->outbound_port);
	else if (strcmp(key, "max-message-size") == 0)
		snprintf(out, outlen, "%llu", (unsigned long long)c->max_message_size);
	else if (strcmp(key, "max-recipients") == 0)
		snprintf(out, outlen, "%u", c->max_recipients);
	else if (strcmp(key, "max-connections") == 0)
		snprintf(out, outlen, "%u", c->max_connections);
	else if (strcmp(key, "max-connections-per-ip") == 0)
		snprintf(out, outlen, "%u", c->max_connections_per_ip);
	else if (strcmp(key, "max-received-headers") == 0)
		snprintf(out, outlen, "%u", c->max_received_headers);
	else if (strcmp(key, "smtp-max-errors") == 0)
		snprintf(out, outlen, "%u", c->smtp_max_errors);
	else if (strcmp(key, "smtp-command-timeout") == 0)
		snprintf(out, outlen, "%u", c->smtp_command_timeout);
	else if (strcmp(key, "smtp-data-timeout") == 0)
		snprintf(out, outlen, "%u", c->smtp_data_timeout);
	else if (strcmp(key, "shutdown-timeout") == 0)
		snprintf(out, outlen, "%u", c->shutdown_timeout);
	else if (strcmp(key, "workers") == 0)
		snprintf(out, outlen, "%u", c->workers);
	else if (strcmp(key, "io-threads") == 0)
		snprintf(out, outlen, "%u", c->io_threads);
	else if (strcmp(key, "recipient-delimiter") == 0)
		snprintf(out, outlen, "[%s]", c->recipient_delimiter);
	else if (strcmp(key, "syslog") == 0)
		snprintf(out, outlen, "%s", c->syslog ? "yes" : "no");
	else if (strcmp(key, "log-level") == 0)
		snprintf(out, outlen, "%d", (int)c->log_level);
	else
		snprintf(out, outlen, "?unknown key %s", key);
}

/* ---- defaults ---------------------------------------------------------------------------- */

TEST(defaults)
{
	static const struct {
		const char *key, *want;
	} rows[] = {
		{ "spool", "/var/spool/carteiro" },
		{ "maildir-root", "/var/mail/carteiro" },
		{ "user", "carteiro" },
		{ "users", "(null)@0" },
		{ "aliases", "(null)@0" },
		{ "listen", "" },
		{ "local-domain", "" },
		{ "relay-network", "" },
		{ "max-message-size", "36700160" },
		{ "max-recipients", "100" },
		{ "max-connections", "1000" },
		{ "max-connections-per-ip", "20" },
		{ "max-received-headers", "100" },
		{ "smtp-max-errors", "20" },
		{ "smtp-command-timeout", "300" },
		{ "smtp-data-timeout", "600" },
		{ "shutdown-timeout", "30" },
		{ "workers", "0" },
		{ "io-threads", "4" },
		{ "recipient-delimiter", "[+]" },
		{ "syslog", "no" },
		{ "dns-server", "" },
		{ "relayhost", "(null) port=0" },
		{ "relayhost-tls", "0" },
		{ "retry-schedule", "60,300,900,1800,3600,7200,14400" },
		{ "queue-lifetime", "432000" },
		{ "delay-warning", "14400" },
		{ "outbound-port", "25" },
		{ "log-level", "2" },
		{ "dmarc", "yes" },
		{ "dmarc-reject-policy", "0" },
		{ "dmarc-quarantine-header", "X-Carteiro-Quarantine" },
		{ "public-suffix-list", "/usr/share/publicsuffix/public_suffix_list.dat" },
	};
	struct config cfg;
	char got[512];

	config_init(&cfg);
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		render(&cfg, rows[i].key, got, sizeof got);
		CHECK_MSG(strcmp(got, rows[i].want) == 0, "default %s is \"%s\", expected \"%s\"",
			  rows[i].key, got, rows[i].want);
	}
	/* The system's host name, or localhost: either way a valid domain. */
	CHECK(cfg.hostname != NULL);
	if (cfg.hostname)
		CHECK(addr_domain_valid(slice_from_cstr(cfg.hostname), false));
	CHECK_STR(cfg.source, "<defaults>");
	CHECK(cfg.listens == NULL && cfg.local_domains == NULL && cfg.relay_networks == NULL);
	config_free(&cfg);
}

/* ---- valid values ------------------------------------------------------------------------ */

TEST(valid_values)
{
	static const struct {
		const char *text, *key, *want;
	} rows[] = {
		{ "hostname mail.example.org", "hostname", "mail.example.org" },
		{ "hostname MX1.Example.ORG", "hostname", "MX1.Example.ORG" },
		{ "hostname localhost", "hostname", "localhost" },
		{ "hostname a-b.c-d.example", "hostname", "a-b.c-d.example" },
		{ "spool /srv/spool", "spool", "/srv/spool" },
		{ "spool run/spool", "spool", "run/spool" },
		{ "spool /var/caf\xc3\xa9", "spool", "/var/caf\xc3\xa9" },
		{ "maildir-root /srv/mail", "maildir-root", "/srv/mail" },
		{ "user mail", "user", "mail" },
		{ "user _carteiro", "user", "_carteiro" },
		{ "user a-b_c9$", "user", "a-b_c9$" },
		{ "user abcdefghijklmnopqrstuvwxyz012345", "user",
		  "abcdefghijklmnopqrstuvwxyz012345" },
		{ "users /etc/carteiro/users", "users", "/etc/carteiro/users@1" },
		{ "\n\n# c\nusers u.txt", "users", "u.txt@4" },
		{ "aliases /etc/carteiro/aliases", "aliases", "/etc/carteiro/aliases@1" },
		{ "listen smtp 127.0.0.1:25", "listen", "127.0.0.1:25=127.0.0.1:25" },
		{ "listen smtp [::1]:2525", "listen", "[::1]:2525=[::1]:2525" },
		{ "listen smtp *:25", "listen", "*:25=0.0.0.0:25" },
		{ "listen SMTP 192.0.2.1:65535", "listen", "192.0.2.1:65535=192.0.2.1:65535" },
		{ "listen smtp *:25\nlisten smtp [::]:25", "listen",
		  "*:25=0.0.0.0:25,[::]:25=[::]:25" },
		{ "listen smtp 127.0.0.1:25\nlisten smtp 127.0.0.1:26", "listen",
		  "127.0.0.1:25=127.0.0.1:25,127.0.0.1:26=127.0.0.1:26" },
		{ "listen\tsmtp\t127.0.0.1:25\t# tab separated", "listen",
		  "127.0.0.1:25=127.0.0.1:25" },
		{ "local-domain example.org", "local-domain", "example.org" },
		{ "local-domain Example.ORG", "local-domain", "example.org" },
		{ "local-domain a.org\nlocal-domain b.org", "local-domain", "a.org,b.org" },
		{ "relay-network 10.0.0.0/8", "relay-network", "10.0.0.0/8" },
		{ "relay-network 10.1.2.3/8", "relay-network", "10.0.0.0/8" },
		{ "relay-network 192.0.2.7", "relay-network", "192.0.2.7/32" },
		{ "relay-network 2001:db8::/32\nrelay-network ::1", "relay-network",
		  "2001:db8::/32,::1/128" },
		{ "dns-server 127.0.0.1", "dns-server", "127.0.0.1" },
		{ "dns-server 127.0.0.1:5353\ndns-server [::1]:53", "dns-server",
		  "127.0.0.1:5353,[::1]:53" },
		{ "relayhost smtp.example.net:587", "relayhost", "smtp.example.net port=587" },
		{ "relayhost smtp.example.net", "relayhost", "smtp.example.net port=0" },
		{ "relayhost 192.0.2.1:2525", "relayhost", "192.0.2.1 port=2525" },
		{ "relayhost [2001:db8::1]:465", "relayhost", "2001:db8::1 port=465" },
		{ "relayhost-tls implicit", "relayhost-tls", "1" },
		{ "relayhost-tls NONE", "relayhost-tls", "2" },
		{ "retry-schedule 1s", "retry-schedule", "1" },
		{ "retry-schedule 1m 5m 1h", "retry-schedule", "60,300,3600" },
		{ "queue-lifetime 2d", "queue-lifetime", "172800" },
		{ "dmarc off", "dmarc", "no" },
		{ "dmarc-reject-policy quarantine", "dmarc-reject-policy", "1" },
		{ "dmarc-reject-policy TAG", "dmarc-reject-policy", "2" },
		{ "dmarc-quarantine-header X-Spam-Flag", "dmarc-quarantine-header", "X-Spam-Flag" },
		{ "public-suffix-list /srv/psl.dat", "public-suffix-list", "/srv/psl.dat" },
		{ "delay-warning 0", "delay-warning", "0" },
		{ "outbound-port 2525", "outbound-port", "2525" },
		{ "max-message-size 4096", "max-message-size", "4096" },
		{ "max-message-size 1K", "max-message-size", "1024" },
		{ "max-message-size 1024", "max-message-size", "1024" },
		{ "max-message-size 512k", "max-message-size", "524288" },
		{ "max-message-size 35M", "max-message-size", "36700160" },
		{ "max-message-size 1G", "max-message-size", "1073741824" },
		{ "max-message-size 2G", "max-message-size", "2147483648" },
		{ "max-message-size 2048M", "max-message-size", "2147483648" },
		{ "max-recipients 1", "max-recipients", "1" },
		{ "max-recipients 100000", "max-recipients", "100000" },
		{ "max-connections 1000000", "max-connections", "1000000" },
		{ "max-connections 1\nmax-connections-per-ip 1", "max-connections", "1" },
		{ "max-connections-per-ip 1", "max-connections-per-ip", "1" },
		{ "max-connections-per-ip 1000", "max-connections-per-ip", "1000" },
		{ "max-connections 1000000\nmax-connections-per-ip 1000000",
		  "max-connections-per-ip", "1000000" },
		{ "max-received-headers 1", "max-received-headers", "1" },
		{ "max-received-headers 1000", "max-received-headers", "1000" },
		{ "smtp-max-errors 1", "smtp-max-errors", "1" },
		{ "smtp-max-errors 1000", "smtp-max-errors", "1000" },
		{ "smtp-command-timeout 30", "smtp-command-timeout", "30" },
		{ "smtp-command-timeout 30s", "smtp-command-timeout", "30" },
		{ "smtp-command-timeout 1s", "smtp-command-timeout", "1" },
		{ "smtp-command-timeout 5m", "smtp-command-timeout", "300" },
		{ "smtp-command-timeout 1h", "smtp-command-timeout", "3600" },
		{ "smtp-data-timeout 3600", "smtp-data-timeout", "3600" },
		{ "smtp-data-timeout 1", "smtp-data-timeout", "1" },
		{ "shutdown-timeout 0", "shutdown-timeout", "0" },
		{ "shutdown-timeout 10m", "shutdown-timeout", "600" },
		{ "workers auto", "workers", "0" },
		{ "workers AUTO", "workers", "0" },
		{ "workers 1", "workers", "1" },
		{ "workers 30", "workers", "30" },
		{ "io-threads 1", "io-threads", "1" },
		{ "io-threads 64", "io-threads", "64" },
		{ "recipient-delimiter -", "recipient-delimiter", "[-]" },
		{ "recipient-delimiter +-", "recipient-delimiter", "[+-]" },
		{ "recipient-delimiter +-=_.", "recipient-delimiter", "[+-=_.]" },
		{ "recipient-delimiter none", "recipient-delimiter", "[]" },
		{ "syslog yes", "syslog", "yes" },
		{ "syslog on", "syslog", "yes" },
		{ "syslog true", "syslog", "yes" },
		{ "syslog YES", "syslog", "yes" },
		{ "syslog no", "syslog", "no" },
		{ "syslog off", "syslog", "no" },
		{ "syslog false", "syslog", "no" },
		{ "log-level error", "log-level", "0" },
		{ "log-level warning", "log-level", "1" },
		{ "log-level info", "log-level", "2" },
		{ "log-level debug", "log-level", "3" },
		/* Line syntax. */
		{ "spool /a#b", "spool", "/a#b" },
		{ "spool /x # a comment", "spool", "/x" },
		{ "spool /x #", "spool", "/x" },
		{ "# spool /nope\nspool /x", "spool", "/x" },
		{ "#spool /nope", "spool", "/var/spool/carteiro" },
		{ "   spool   /x   ", "spool", "/x" },
		{ "\tspool\t/x\t", "spool", "/x" },
		{ "spool /x\r\n", "spool", "/x" },
		{ "\r\n\r\nspool /crlf\r\n\r\n", "spool", "/crlf" },
		{ "spool /no-final-newline", "spool", "/no-final-newline" },
		{ "spool /x\r", "spool", "/x" },
		{ "\n\n\n", "spool", "/var/spool/carteiro" },
	};
	char text[1024], got[1024];

	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct config cfg;
		struct report_log log = { 0 };
		unsigned errors;

		/* A listen first unless the row is about listen (the list order matters). */
		snprintf(text, sizeof text, "%s%s", rows[i].text,
			 strstr(rows[i].text, "listen") ? "" : LISTEN_TAIL);
		config_init(&cfg);
		errors = config_parse(&cfg, "v.conf", text, strlen(text), collect, &log);
		render(&cfg, rows[i].key, got, sizeof got);
		CHECK_MSG(errors == 0 && strcmp(got, rows[i].want) == 0,
			  "row %zu \"%s\": %u errors, %s is \"%s\", expected \"%s\"", i,
			  rows[i].text, errors, rows[i].key, got, rows[i].want);
		if (errors)
			dump_reports(&log);
		config_free(&cfg);
	}
}

/* ---- errors ------------------------------------------------------------------------------ */

struct error_case {
	const char *text;
	const char *want[6];
};

/* raw: the texts are used as they are, without LISTEN_TAIL. */
static void run_error_cases(const struct error_case *rows, size_t n, int raw)
{
	char text[16384], label[32];

	for (size_t i = 0; i < n; i++) {
		snprintf(text, sizeof text, "%s%s", rows[i].text, raw ? "" : LISTEN_TAIL);
		snprintf(label, sizeof label, "%zu", i);
		expect_reports(label, text, strlen(text), rows[i].want);
	}
}

TEST(bad_values)
{
	static const struct error_case rows[] = {
		{ "hostname bad_host",
		  { "1: bad value 'bad_host' for 'hostname' (expected a domain name" } },
		{ "hostname -a.example", { "1: bad value '-a.example' for 'hostname'" } },
		{ "hostname a..b", { "1: bad value 'a..b' for 'hostname'" } },
		{ "hostname example.org.", { "1: bad value 'example.org.' for 'hostname'" } },
		{ "hostname [192.0.2.1]", { "1: bad value '[192.0.2.1]' for 'hostname'" } },
		{ "hostname caf\xc3\xa9.example", { "1: bad value 'caf\\xc3\\xa9.example'" } },
		{ "user Carteiro",
		  { "1: bad value 'Carteiro' for 'user' (expected a user name" } },
		{ "user 1abc", { "1: bad value '1abc' for 'user'" } },
		{ "user -abc", { "1: bad value '-abc' for 'user'" } },
		{ "user a$b", { "1: bad value 'a$b' for 'user'" } },
		{ "user $", { "1: bad value '$' for 'user'" } },
		{ "user a.b", { "1: bad value 'a.b' for 'user'" } },
		{ "user abcdefghijklmnopqrstuvwxyz0123456", { "1: for 'user'" } },
		{ "local-domain bad..domain",
		  { "1: bad value 'bad..domain' for 'local-domain'" } },
		{ "local-domain a.org.", { "1: bad value 'a.org.' for 'local-domain'" } },
		{ "relay-network 10.0.0.0/33",
		  { "1: bad value '10.0.0.0/33' for 'relay-network'" } },
		{ "relay-network ::1/129", { "1: bad value '::1/129' for 'relay-network'" } },
		{ "relay-network example.org",
		  { "1: bad value 'example.org' for 'relay-network'" } },
		{ "relay-network 10.0.0.0/", { "1: bad value '10.0.0.0/' for 'relay-network'" } },
		{ "dns-server ns.example.org", { "1: bad value 'ns.example.org' for 'dns-server'" } },
		{ "dns-server 10.0.0.0/8", { "1: bad value '10.0.0.0/8' for 'dns-server'" } },
		{ "dns-server 127.0.0.1:0", { "1: bad value '127.0.0.1:0' for 'dns-server'" } },
		{ "relayhost smtp.example.net:0", { "1: bad value 'smtp.example.net:0' for 'relayhost'" } },
		{ "relayhost smtp.example.net:99999", { "1: bad value" } },
		{ "relayhost [smtp.example.net]:25", { "1: bad value" } },
		{ "relayhost bad_host:25", { "1: bad value 'bad_host:25' for 'relayhost'" } },
		{ "relayhost [::1", { "1: bad value '[::1' for 'relayhost'" } },
		{ "relayhost-tls maybe",
		  { "1: bad value 'maybe' for 'relayhost-tls' (expected starttls, implicit or none)" } },
		{ "retry-schedule 1m 0s", { "1: bad value '0s' for 'retry-schedule'" } },
		{ "retry-schedule 1m 8d", { "1: bad value '8d' for 'retry-schedule'" } },
		{ "retry-schedule 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s",
		  { "1: 'retry-schedule'" } },
		{ "queue-lifetime 0", { "1: bad value '0' for 'queue-lifetime'" } },
		{ "dmarc maybe", { "1: bad value 'maybe' for 'dmarc' (expected yes or no)" } },
		{ "dmarc-reject-policy discard",
		  { "1: bad value 'discard' for 'dmarc-reject-policy' (expected reject, quarantine "
		    "or tag)" } },
		{ "dmarc-quarantine-header X-Bad:Name",
		  { "1: bad value 'X-Bad:Name' for 'dmarc-quarantine-header'" } },
		{ "dmarc-quarantine-header Subject",
		  { "1: bad value 'Subject' for 'dmarc-quarantine-header'" } },
		{ "dmarc-quarantine-header authentication-results",
		  { "1: bad value 'authentication-results' for 'dmarc-quarantine-header'" } },
		{ "dmarc-quarantine-header X-\xc3\xa9", { "1: bad value 'X-\\xc3\\xa9'" } },
		{ "dmarc-quarantine-header "
		  "X-123456789012345678901234567890123456789012345678901234567890123",
		  { "1: bad value" } },
		{ "queue-lifetime 31d", { "1: bad value '31d' for 'queue-lifetime'" } },
		{ "outbound-port 65536", { "1: bad value '65536' for 'outbound-port'" } },
		{ "max-message-size 1023",
		  { "1: bad value '1023' for 'max-message-size' (expected a size such as 4096, "
		    "512K, 35M or 1G, from 1K to 2G)$" } },
		{ "max-message-size 0", { "1: bad value '0' for 'max-message-size'" } },
		{ "max-message-size 2049M", { "1: bad value '2049M' for 'max-message-size'" } },
		{ "max-message-size 3G", { "1: bad value '3G'" } },
		{ "max-message-size 35X", { "1: bad value '35X'" } },
		{ "max-message-size -1", { "1: bad value '-1'" } },
		{ "max-message-size 99999999999999999999",
		  { "1: bad value '99999999999999999999'" } },
		{ "max-message-size 17179869184G", { "1: bad value '17179869184G'" } },
		{ "max-message-size M", { "1: bad value 'M'" } },
		{ "max-recipients 0",
		  { "1: bad value '0' for 'max-recipients' (expected a number from 1 to "
		    "100000)$" } },
		{ "max-recipients 100001", { "1: bad value '100001' for 'max-recipients'" } },
		{ "max-recipients ten", { "1: bad value 'ten' for 'max-recipients'" } },
		{ "max-recipients +5", { "1: bad value '+5' for 'max-recipients'" } },
		{ "max-recipients 1e3", { "1: bad value '1e3' for 'max-recipients'" } },
		{ "max-connections 0", { "1: (expected a number from 1 to 1000000)" } },
		{ "max-connections 1000001",
		  { "1: bad value '1000001' for 'max-connections'" } },
		{ "max-connections-per-ip 0",
		  { "1: bad value '0' for 'max-connections-per-ip'" } },
		{ "max-connections-per-ip 1000001", { "1: for 'max-connections-per-ip'" } },
		{ "max-received-headers 0", { "1: (expected a number from 1 to 1000)" } },
		{ "max-received-headers 1001",
		  { "1: bad value '1001' for 'max-received-headers'" } },
		{ "smtp-max-errors 0", { "1: bad value '0' for 'smtp-max-errors'" } },
		{ "smtp-max-errors 1001", { "1: bad value '1001' for 'smtp-max-errors'" } },
		{ "smtp-command-timeout 0",
		  { "1: bad value '0' for 'smtp-command-timeout' (expected a duration such as "
		    "30s, 5m or 1h, from 1s to 1h)$" } },
		{ "smtp-command-timeout 2h", { "1: bad value '2h' for 'smtp-command-timeout'" } },
		{ "smtp-command-timeout 3601", { "1: bad value '3601'" } },
		{ "smtp-command-timeout 5x", { "1: bad value '5x'" } },
		{ "smtp-command-timeout 5 m",
		  { "1: too many values for 'smtp-command-timeout'" } },
		{ "smtp-data-timeout 61m", { "1: bad value '61m' for 'smtp-data-timeout'" } },
		{ "smtp-data-timeout 0s", { "1: bad value '0s' for 'smtp-data-timeout'" } },
		{ "shutdown-timeout 601",
		  { "1: for 'shutdown-timeout' (expected a duration such as 30s, 5m or 1h, "
		    "from 0s to 10m)$" } },
		{ "shutdown-timeout 11m", { "1: bad value '11m' for 'shutdown-timeout'" } },
		{ "workers 0",
		  { "1: bad value '0' for 'workers' (expected auto or a number from 1 to 30)$" } },
		{ "workers 31", { "1: bad value '31' for 'workers'" } },
		{ "workers many", { "1: bad value 'many' for 'workers'" } },
		{ "io-threads 0",
		  { "1: bad value '0' for 'io-threads' (expected a number from 1 to 64)$" } },
		{ "io-threads 65", { "1: bad value '65' for 'io-threads'" } },
		{ "recipient-delimiter ++", { "1: bad value '++' for 'recipient-delimiter'" } },
		{ "recipient-delimiter +-=_.+", { "1: bad value '+-=_.+'" } },
		{ "recipient-delimiter abc", { "1: bad value 'abc' for 'recipient-delimiter'" } },
		{ "recipient-delimiter +#", { "1: bad value '+#' for 'recipient-delimiter'" } },
		{ "recipient-delimiter /", { "1: bad value '/' for 'recipient-delimiter'" } },
		{ "recipient-delimiter #", { "1: missing value for 'recipient-delimiter'" } },
		{ "syslog maybe", { "1: bad value 'maybe' for 'syslog' (expected yes or no)$" } },
		{ "syslog 1", { "1: bad value '1' for 'syslog'" } },
		{ "log-level verbose",
		  { "1: bad value 'verbose' for 'log-level' (expected error, warning, info or "
		    "debug)$" } },
		{ "log-level warn", { "1: bad value 'warn' for 'log-level'" } },
	};
	run_error_cases(rows, ARRAY_LEN(rows), 0);
}

TEST(listen_errors)
{
	static const struct error_case rows[] = {
		{ "listen smtp 127.0.0.1",
		  { "1: bad listen address '127.0.0.1' (expected IPV4:PORT, [IPV6]:PORT or "
		    "*:PORT)$" } },
		{ "listen smtp 127.0.0.1:0", { "1: bad listen address '127.0.0.1:0': port 0" } },
		{ "listen smtp *:0", { "1: port 0 is not allowed" } },
		{ "listen smtp 127.0.0.1:65536", { "1: bad listen address '127.0.0.1:65536'" } },
		{ "listen smtp 127.0.0.1:-1", { "1: bad listen address" } },
		{ "listen smtp [::1:25", { "1: bad listen address '[::1:25'" } },
		{ "listen smtp ::1:25", { "1: bad listen address '::1:25'" } },
		{ "listen smtp mail.example.org:25",
		  { "1: bad listen address 'mail.example.org:25'" } },
		{ "listen smtp 127.0.0.1:25 tls", { "1: unknown listen option 'tls' (expected starttls, implicit-tls or auth-required)$" } },
		{ "listen smtp 127.0.0.1:25 a b c d e f g h i j k l m n o",
		  { "1: too many values for 'listen' (expected KIND ADDR:PORT [OPTION...])$" } },
		/* Longer than listen_cfg.text although netaddr accepts it. */
		{ "listen smtp [0000:0000:0000:0000:0000:0000:0000:0001]:00000000000000000000025",
		  { "1: bad listen address '[0000" } },
	};
	/* Without the listen that the other tables add. */
	static const struct error_case raw[] = {
		{ "listen",
		  { "1: missing value for 'listen' (expected KIND ADDR:PORT [OPTION...])$",
		    "0: no 'listen' directive: nothing to serve$" } },
		{ "listen smtp", { "1: missing value for 'listen'", "0: no 'listen'" } },
		{ "listen imap *:143",
		  { "1: unknown listener kind 'imap' (expected smtp, submission, submissions, pop3 or pop3s)$", "0: no 'listen'" } },
		{ "listen pop3s *:995",
		  { "1: listen pop3s *:995 needs TLS, but no tls-cert is set$" } },
		{ "listen pop3 *:110 starttls",
		  { "1: listen pop3 *:110 needs TLS, but no tls-cert is set$" } },
		{ "listen pop3 *:110 auth-required",
		  { "1: listen option auth-required is for SMTP (POP3 always needs a login)$",
		    "0: no 'listen'" } },
		{ "listen smtp *:25\nlisten smtp 0.0.0.0:25",
		  { "2: duplicate listen address '0.0.0.0:25' (same as '*:25')$" } },
		{ "listen smtp [::1]:25\nlisten smtp [0:0::1]:25",
		  { "2: duplicate listen address '[0:0::1]:25' (same as '[::1]:25')" } },
		/* TLS listeners need a certificate; options exclude each other; keys pair up. */
		{ "listen submissions *:465",
		  { "1: listen submissions *:465 needs TLS, but no tls-cert is set$" } },
		{ "listen smtp *:25 starttls",
		  { "1: listen smtp *:25 needs TLS, but no tls-cert is set$" } },
		{ "listen smtp *:25 starttls implicit-tls",
		  { "1: listen options starttls and implicit-tls exclude each other$",
		    "0: no 'listen'" } },
		{ "listen submission *:587\ntls-cert /c.pem", { "2: 1 tls-cert but 0 tls-key" } },
		{ "listen smtp *:25\nlisten submissions *:465",
		  { "2: listen submissions *:465 needs TLS, but no tls-cert is set$" } },
		{ "listen submission *:587\nlisten smtp *:25 auth-required STARTTLS\n"
		  "tls-cert a\ntls-key b", { NULL } },
		/* An IPv4 and an IPv6 socket are different listeners. */
		{ "listen smtp [::ffff:127.0.0.1]:25\nlisten smtp 127.0.0.1:25", { NULL } },
	};
	run_error_cases(rows, ARRAY_LEN(rows), 0);
	run_error_cases(raw, ARRAY_LEN(raw), 1);
}

TEST(syntax_errors)
{
	static const struct error_case rows[] = {
		{ "hostnme mail.example.org",
		  { "1: unknown key 'hostnme' (did you mean 'hostname'?)$" } },
		{ "Hostname mail.example.org",
		  { "1: unknown key 'Hostname' (did you mean 'hostname'?)" } },
		{ "hsotname x", { "1: (did you mean 'hostname'?)" } },
		{ "max-recipient 5",
		  { "1: unknown key 'max-recipient' (did you mean 'max-recipients'?)" } },
		{ "listne smtp *:25", { "1: (did you mean 'listen'?)" } },
		{ "users2 /x", { "1: (did you mean 'users'?)" } },
		{ "spoool /x", { "1: (did you mean 'spool'?)" } },
		{ "frobnicate 1", { "1: unknown key 'frobnicate'$" } },
		{ "s 1", { "1: unknown key 's'$" } },
		{ "spool#x /y", { "1: unknown key 'spool#x' (did you mean 'spool'?)" } },
		{ "bad\\key\xff", { "1: unknown key 'bad\\x5ckey\\xff'$" } },
		{ "spool", { "1: missing value for 'spool' (expected PATH)$" } },
		{ "spool # /x", { "1: missing value for 'spool'" } },
		{ "spool /a /b", { "1: too many values for 'spool' (expected PATH)$" } },
		{ "hostname a.example b.example", { "1: too many values for 'hostname'" } },
		{ "spool /a\nspool /b", { "2: 'spool' already set on line 1$" } },
		{ "\n\nspool /a\n# x\nspool /b\nspool /c",
		  { "5: 'spool' already set on line 3$", "6: 'spool' already set on line 3$" } },
		{ "users /a\nusers /a", { "2: 'users' already set on line 1" } },
		{ "workers 0\nworkers 2",
		  { "1: bad value '0' for 'workers'", "2: 'workers' already set on line 1" } },
		{ "local-domain a.org\nlocal-domain A.ORG",
		  { "2: duplicate local-domain 'A.ORG'$" } },
		{ "spool /a\rb", { "1: control character 0x0d in line$" } },
		{ "spool /a\x01", { "1: control character 0x01 in line$" } },
		{ "spool /a\x7f", { "1: control character 0x7f in line$" } },
		{ "# comment \x1b[2J", { "1: control character 0x1b" } },
		{ "spool /a\r\r\n", { "1: control character 0x0d" } },
		{ "a 1\nb 2\nspool\nmax-recipients 0\n",
		  { "1: unknown key 'a'", "2: unknown key 'b'", "3: missing value",
		    "4: bad value '0'" } },
		{ "max-connections 10",
		  { "1: max-connections-per-ip (20) is larger than max-connections (10)$" } },
		{ "max-connections 10\nmax-connections-per-ip 11",
		  { "2: max-connections-per-ip (11) is larger than max-connections (10)$" } },
		{ "max-connections-per-ip 1001",
		  { "1: max-connections-per-ip (1001) is larger" } },
	};
	static const struct error_case raw[] = {
		{ "", { "0: no 'listen' directive: nothing to serve$" } },
		{ "# only a comment\n\n", { "0: no 'listen' directive" } },
		{ "lisen smtp *:25", { "1: (did you mean 'listen'?)", "0: no 'listen'" } },
	};
	run_error_cases(rows, ARRAY_LEN(rows), 0);
	run_error_cases(raw, ARRAY_LEN(raw), 1);
}

/* Texts that a table of C strings cannot hold: NULs and long lines. */
TEST(nul_and_long_lines)
{
	static const char nul[] = "spool /a\0b\nlisten smtp *:25\n";
	static const char *const want_nul[] = { "1: NUL byte in line$", NULL };
	static const char *const want_long[] = { "2: line too long (more than 4096 bytes)$", NULL };
	static const char *const want_none[] = { NULL };
	static const char nul_only[] = "\0";
	static const char *const want_nul_only[] = { "1: NUL byte", "0: no 'listen'", NULL };
	size_t n = 6000;
	char *text = malloc(n + 64);

	expect_reports("nul", nul, sizeof nul - 1, want_nul);
	expect_reports("nul-only", nul_only, 1, want_nul_only);

	/* 4096 bytes is the longest line allowed, CRLF not counted. */
	for (int crlf = 0; crlf <= 1; crlf++) {
		size_t o = (size_t)snprintf(text, 64, "listen smtp *:25\n#");
		memset(text + o, 'x', 4095);
		o += 4095;
		o += (size_t)snprintf(text + o, 64, "%s",
				      crlf ? "\r\nspool /x\r\n" : "\nspool /x\n");
		expect_reports("4096", text, o, want_none);
	}
	size_t o = (size_t)snprintf(text, 64, "listen smtp *:25\nspool /");
	memset(text + o, 'x', 4096);
	o += 4096;
	o += (size_t)snprintf(text + o, 64, "\nspool /x\n");
	expect_reports("4097", text, o, want_long);
	/* Without a final line end too. */
	expect_reports("4097-eof", text, o - strlen("\nspool /x\n"), want_long);
	free(text);
}

/* ---- repeated parses and the life cycle ------------------------------------------------- */

TEST(parse_twice_replaces)
{
	static const char first[] = "spool /one\nlocal-domain a.org\nlocal-domain b.org\n"
				    "listen smtp *:25\nlisten smtp *:26\nusers /u1\n";
	static const char second[] = "spool /two\nlocal-domain c.org\nlisten smtp *:27\n";
	struct config cfg;
	struct report_log log = { 0 };
	char got[512];

	config_init(&cfg);
	CHECK_INT(config_parse(&cfg, "first", first, strlen(first), collect, &log), 0);
	CHECK_STR(cfg.source, "first");
	render(&cfg, "local-domain", got, sizeof got);
	CHECK_STR(got, "a.org,b.org");
	/* A second file replaces values and lists it names; 'spool' is not "already set". */
	CHECK_INT(config_parse(&cfg, "second", second, strlen(second), collect, &log), 0);
	CHECK_STR(cfg.source, "second");
	CHECK_STR(cfg.spool, "/two");
	render(&cfg, "local-domain", got, sizeof got);
	CHECK_STR(got, "c.org");
	render(&cfg, "listen", got, sizeof got);
	CHECK_STR(got, "*:27=0.0.0.0:27");
	/* What the second file does not name stays. */
	CHECK_STR(cfg.users_file, "/u1");
	CHECK_INT(log.n, 0);
	config_free(&cfg);
	config_free(&cfg);
	CHECK(cfg.spool == NULL && cfg.listens == NULL && cfg.nlistens == 0);
	CHECK(cfg.local_domains == NULL && cfg.nlocal_domains == 0 && cfg.source == NULL);
}

TEST(bad_list_line_still_takes_the_list_over)
{
	static const char first[] = "listen smtp *:25\nlocal-domain a.org\n";
	static const char second[] = "listen smtp *:26\nlocal-domain bad..org\n";
	struct config cfg;
	struct report_log log = { 0 };

	config_init(&cfg);
	CHECK_INT(config_parse(&cfg, "a", first, strlen(first), collect, &log), 0);
	CHECK_INT(config_parse(&cfg, "b", second, strlen(second), collect, &log), 1);
	CHECK_INT(cfg.nlocal_domains, 0);
	config_free(&cfg);
}

TEST(null_report_function)
{
	static const char text[] = "bogus\nspool\n";
	struct config cfg;

	config_init(&cfg);
	CHECK_INT(config_parse(&cfg, "x", text, strlen(text), NULL, NULL), 3);
	CHECK_INT(config_parse(&cfg, "x", NULL, 0, NULL, NULL), 1);
	config_free(&cfg);
}

TEST(many_list_entries)
{
	size_t cap = 300 * 40, o = 0;
	char *text = malloc(cap);
	struct config cfg;
	struct report_log log = { 0 };

	for (unsigned i = 0; i < 257; i++)
		o += (size_t)snprintf(text + o, cap - o, "listen smtp 127.0.%u.%u:25\n", i / 256,
				      i % 256);
	config_init(&cfg);
	CHECK_INT(config_parse(&cfg, "many", text, o, collect, &log), 1);
	CHECK_INT(cfg.nlistens, 256);
	CHECK(log.n == 1 && log.r[0].line == 257 &&
	      strstr(log.r[0].msg, "too many 'listen' directives (at most 256)"));
	config_free(&cfg);
	free(text);
}

/* ---- files ------------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fwrite(text, 1, len, f) == len);
	fclose(f);
}

TEST(load_file)
{
	char dir[] = "/tmp/test_config.XXXXXX", path[256];
	static const char good[] = "hostname mx.example.org\nlisten smtp 127.0.0.1:2525\n";
	static const char bad[] = "listen smtp 127.0.0.1:2525\nspool\n";
	struct config cfg;
	struct report_log log = { 0 };

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof path, "%s/carteiro.conf", dir);

	config_init(&cfg);
	CHECK_INT(config_load_file(&cfg, path, collect, &log), 1);
	CHECK(log.n == 1 && log.r[0].line == 0 && strcmp(log.r[0].file, path) == 0 &&
	      strcmp(log.r[0].msg, "cannot read: No such file or directory") == 0);

	log.n = 0;
	CHECK_INT(config_load_file(&cfg, dir, collect, &log), 1);
	CHECK(log.n == 1 && strcmp(log.r[0].msg, "cannot read: Is a directory") == 0);

	log.n = 0;
	write_file(path, good, strlen(good));
	CHECK_INT(config_load_file(&cfg, path, collect, &log), 0);
	CHECK_STR(cfg.hostname, "mx.example.org");
	CHECK_STR(cfg.source, path);
	CHECK_INT(cfg.nlistens, 1);

	log.n = 0;
	write_file(path, bad, strlen(bad));
	CHECK_INT(config_load_file(&cfg, path, collect, &log), 1);
	CHECK(log.n == 1 && log.r[0].line == 2 && strcmp(log.r[0].file, path) == 0);
	config_free(&cfg);

	/* 1 MiB exactly is read; one byte more is refused before any parsing. */
	size_t big = 1024 * 1024;
	char *text = malloc(big + 1);
	memset(text, '\n', big + 1);
	memcpy(text, good, strlen(good));
	write_file(path, text, big);
	config_init(&cfg);
	log.n = 0;
	CHECK_INT(config_load_file(&cfg, path, collect, &log), 0);
	write_file(path, text, big + 1);
	CHECK_INT(config_load_file(&cfg, path, collect, &log), 1);
	CHECK(log.n == 1 && log.r[0].line == 0 &&
	      strstr(log.r[0].msg, "file too large (more than 1048576 bytes)"));
	config_free(&cfg);
	free(text);

	unlink(path);
	rmdir(dir);
}

TEST(report_stdio)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	config_report_stdio(f, "a.conf", 3, "bad value");
	config_report_stdio(f, "a.conf", 0, "cannot read: x");
	fclose(f);
	CHECK_STR(out, "a.conf:3: bad value\na.conf: cannot read: x\n");
	free(out);
}

/* ---- anti-abuse keys (src/policy/) --------------------------------------------------------- */

TEST(policy_keys)
{
	static const char text[] =
		"dnsbl zen.example.org\n"
		"dnsbl B.Example.ORG. 127.0.0.2-127.0.0.11\n"
		"dnsbl pf.example.org=127.0.0.[2..11],127.0.0.20\n"
		"rhsbl dbl.example.org 127.0.1.[2..99]\n"
		"dnswl list.dnswl.example 127.0.[0..255].[1..3]\n"
		"dnsbl-timeout 2s\n"
		"block-networks /etc/carteiro/drop.txt\n"
		"block-senders /etc/carteiro/senders\n"
		"greylist on\n"
		"greylist-delay 2s\n"
		"greylist-retry-window 1h\n"
		"greylist-max-entries 5000\n"
		"ratelimit-connections 60/1m\n"
		"ratelimit-user-recipients 1000/1d\n"
		"ratelimit-messages off\n" LISTEN_TAIL;
	struct config cfg;
	struct report_log log = { 0 };

	config_init(&cfg);
	CHECK_INT(cfg.dnsbl.n, 0);
	CHECK(!cfg.greylist);
	CHECK_INT(cfg.greylist_delay, 300);
	CHECK_INT(cfg.greylist_retry_window, 86400);
	CHECK_INT(cfg.greylist_expire, 36 * 86400);
	CHECK_INT(cfg.dnsbl_timeout, 5);
	CHECK_INT(cfg.ratelimit_connections.count, 0);
	CHECK_INT(config_parse(&cfg, "t.conf", text, sizeof text - 1, collect, &log), 0);
	dump_reports(&log);
	CHECK_INT(cfg.dnsbl.n, 3);
	CHECK_STR(cfg.dnsbl.zones[0].zone, "zen.example.org");
	CHECK_INT(cfg.dnsbl.zones[0].codes.n, 0);
	CHECK_STR(cfg.dnsbl.zones[1].zone, "b.example.org");
	CHECK_INT(cfg.dnsbl.zones[1].codes.n, 1);
	CHECK_STR(cfg.dnsbl.zones[2].zone, "pf.example.org");
	CHECK_INT(cfg.dnsbl.zones[2].codes.n, 2);
	CHECK(dnsbl_codes_match(&cfg.dnsbl.zones[2].codes, 0x7f000014u));
	CHECK(!dnsbl_codes_match(&cfg.dnsbl.zones[2].codes, 0x7f00000cu));
	CHECK_INT(cfg.rhsbl.n, 1);
	CHECK_INT(cfg.dnswl.n, 1);
	CHECK_INT(cfg.dnsbl_timeout, 2);
	CHECK_STR(cfg.block_networks_file, "/etc/carteiro/drop.txt");
	CHECK_INT(cfg.block_networks_line, 7);
	CHECK(cfg.allow_networks_file == NULL);
	CHECK(cfg.greylist);
	CHECK_INT(cfg.greylist_delay, 2);
	CHECK_INT(cfg.greylist_retry_window, 3600);
	CHECK_INT(cfg.greylist_max_entries, 5000);
	CHECK_INT(cfg.ratelimit_connections.count, 60);
	CHECK_INT(cfg.ratelimit_connections.window, 60);
	CHECK_INT(cfg.ratelimit_user_recipients.window, 86400);
	CHECK_INT(cfg.ratelimit_messages.count, 0);
	config_free(&cfg);
}

TEST(policy_key_errors)
{
	static const struct error_case rows[] = {
		{ "dnsbl bad..zone", { "1: bad zone 'bad..zone' for 'dnsbl'" } },
		{ "dnsbl zen.example 127.0.0.300", { "1: bad codes '127.0.0.300' for 'dnsbl'" } },
		{ "dnsbl zen.example=127.0.0.[2..]", { "1: bad codes '127.0.0.[2..]'" } },
		{ "dnsbl zen.example=127.0.0.2 127.0.0.3", { "1: codes given twice" } },
		{ "dnsbl zen.example 1 2", { "1: too many values for 'dnsbl'" } },
		{ "dnsbl a.example\ndnsbl A.example", { "2: duplicate dnsbl zone 'A.example'" } },
		{ "dnswl", { "1: missing value for 'dnswl'" } },
		{ "dnsbl-timeout 0", { "1: bad value '0' for 'dnsbl-timeout'" } },
		{ "ratelimit-connections 60", { "1: bad value '60' for 'ratelimit-connections'" } },
		{ "ratelimit-messages 0/1h", { "1: bad value '0/1h'" } },
		{ "greylist-delay 2h\ngreylist-retry-window 1h",
		  { "2: greylist-retry-window (3600s) must be longer than greylist-delay (7200s)" } },
		{ "greylist-max-entries 10", { "1: bad value '10' for 'greylist-max-entries'" } },
		{ "block-senders", { "1: missing value for 'block-senders'" } },
	};
	run_error_cases(rows, ARRAY_LEN(rows), 0);
}

TEST(print_keys)
{
	static const char *const must[] = {
		"hostname", "spool", "maildir-root", "user", "listen", "local-domain", "users",
		"aliases", "relay-network", "max-message-size", "max-recipients",
		"max-connections", "max-connections-per-ip", "max-received-headers",
		"smtp-max-errors", "smtp-command-timeout", "smtp-data-timeout",
		"shutdown-timeout", "workers", "io-threads", "recipient-delimiter", "syslog",
		"log-level", "/var/spool/carteiro", "35M", "from 1K to 2G", "from 1s to 1h",
		"KIND ADDR:PORT", "may repeat", "tls-cert", "tls-key", "auth-plaintext-loopback",
		"received-show-auth", "auth-max-failures", "auth-ban-time", "auth-failure-delay",
		"pop3-plaintext-auth", "pop3-idle-timeout", "pop3-max-errors", "loopback|never|always",
		"dmarc", "dmarc-reject-policy", "dmarc-quarantine-header", "public-suffix-list",
		"reject|quarantine|tag",
		"dnsbl", "rhsbl", "dnswl", "dnsbl-timeout", "block-networks", "allow-networks",
		"block-senders", "greylist", "greylist-delay", "greylist-retry-window",
		"greylist-expire", "greylist-max-entries", "ratelimit-connections",
		"ratelimit-messages", "ratelimit-user-messages", "ratelimit-user-recipients",
		"COUNT/DURATION|off",
	};
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	config_print_keys(f);
	fclose(f);
	for (size_t i = 0; i < ARRAY_LEN(must); i++)
		CHECK_MSG(strstr(out, must[i]) != NULL, "'%s' missing from help", must[i]);
	/* Every line fits a terminal of 100 columns. */
	for (char *line = out, *end; *line; line = end + 1) {
		end = strchr(line, '\n');
		CHECK(end != NULL);
		if (!end)
			break;
		CHECK_MSG(end - line <= 100, "help line too long: %.*s", (int)(end - line), line);
	}
	free(out);
}

UNIT_MAIN()
