/*
 * config: carteiro's configuration file.
 *
 * Format: one directive a line, "key value...", '#' starts a comment (outside
 * of values), blank lines ignored, keys are case-sensitive and lower-case.
 * Each key is declared once, with its type, default and documentation, in the
 * table of config.c; `carteiro help config` prints that table. Unknown keys,
 * bad values, a repeated single-valued key and a missing file are errors
 * reported as "FILE:LINE: message"; parsing goes on so that every error of a
 * file is reported at once.
 */
#ifndef CARTEIRO_CONF_CONFIG_H
#define CARTEIRO_CONF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "policy/dnsbl.h"
#include "policy/ratelimit.h"
#include "util/log.h"
#include "util/netaddr.h"

enum listen_kind {
	LISTEN_SMTP,        /* port 25 style: MX service */
	LISTEN_SUBMISSION,  /* RFC 6409: port 587, STARTTLS, AUTH required */
	LISTEN_SUBMISSIONS, /* RFC 8314: port 465, implicit TLS, AUTH required */
	LISTEN_POP3,        /* RFC 1939: port 110, STLS with the starttls option */
	LISTEN_POP3S,       /* RFC 8314 3.3: port 995, implicit TLS */
};

/* Where POP3 accepts a login without TLS (pop3-plaintext-auth). */
enum pop3_plaintext {
	POP3_PLAINTEXT_LOOPBACK, /* from loopback clients only */
	POP3_PLAINTEXT_NEVER,
	POP3_PLAINTEXT_ALWAYS,
};

/* What an SPF "fail" of inbound mail leads to (spf-policy). */
enum spf_policy {
	SPF_POLICY_OFF,         /* no check */
	SPF_POLICY_TAG,         /* Received-SPF and Authentication-Results only */
	SPF_POLICY_REJECT_FAIL, /* fail: 550 5.7.23 at RCPT; other results tagged */
};

/* What carteiro does with a message whose DMARC policy asks to reject it (dmarc-reject-policy). */
enum dmarc_reject_policy {
	DMARC_REJECT_POLICY_REJECT,     /* 550 5.7.1 at the end of DATA */
	DMARC_REJECT_POLICY_QUARANTINE, /* deliver with the quarantine header */
	DMARC_REJECT_POLICY_TAG,        /* deliver; only Authentication-Results says it */
};

/* Listener options (struct listen_cfg.flags); the kind implies some (see config.c). */
enum {
	LISTEN_STARTTLS = 1 << 0,      /* offer STARTTLS (RFC 3207) */
	LISTEN_IMPLICIT_TLS = 1 << 1,  /* TLS from the first byte (RFC 8314 3.3) */
	LISTEN_AUTH_REQUIRED = 1 << 2, /* MAIL needs AUTH first (530 5.7.0) */
};

struct listen_cfg {
	enum listen_kind kind;
	struct netaddr addr;
	char text[NETADDR_TEXT_MAX]; /* as written in the file, for logs */
	unsigned flags;              /* LISTEN_* */
	unsigned line;               /* of the configuration file, for messages */
};

/* A list of strings (a repeatable key). */
struct str_list {
	char **items;
	size_t n;
};

enum relayhost_tls {
	RELAYHOST_STARTTLS, /* STARTTLS required (port 587, 2525, 25) */
	RELAYHOST_IMPLICIT, /* TLS from the first byte (port 465) */
	RELAYHOST_NONE,     /* plaintext: no AUTH possible */
};

#define RETRY_SCHEDULE_MAX 16

/* One dkim-sign line: sign mail from domain (and its subdomains) with the key in keyfile. */
struct dkim_sign_cfg {
	char *domain; /* lower case */
	char *selector;
	char *keyfile; /* as written */
	unsigned line;
};

struct config {
	char *source; /* file name, or "<demo>" for the embedded configuration */

	char *hostname;     /* banner, EHLO, Received */
	char *spool;        /* queue directory tree */
	char *maildir_root; /* <root>/<domain>/<user>/ */
	char *user;         /* run as this user when started as root */
	char *users_file;   /* NULL when not configured */
	char *aliases_file; /* NULL when not configured */
	unsigned users_line, aliases_line; /* where they were set, for messages */

	struct listen_cfg *listens;
	size_t nlistens;
	char **local_domains; /* lower-case */
	size_t nlocal_domains;
	struct cidr *relay_networks;
	size_t nrelay_networks;

	uint64_t max_message_size;
	unsigned max_recipients;
	unsigned max_connections;
	unsigned max_connections_per_ip;
	unsigned max_received_headers;
	unsigned smtp_max_errors;
	unsigned smtp_command_timeout; /* seconds */
	unsigned smtp_data_timeout;    /* seconds */
	unsigned shutdown_timeout;     /* seconds */
	unsigned workers;              /* 0: one per CPU, at least 2 */
	unsigned io_threads;           /* spool I/O threads per process */
	char recipient_delimiter[8];   /* "" disables plus-addressing */
	bool syslog;
	enum log_level log_level;

	/* Outbound delivery. */
	char **dns_servers; /* "IP" or "IP:PORT"; none: /etc/resolv.conf */
	size_t ndns_servers;
	unsigned outbound_port;            /* port of MX hosts */
	unsigned destination_concurrency;  /* connections per destination */
	unsigned outbound_max_connections; /* outbound connections at once */
	unsigned outbound_connect_timeout, outbound_command_timeout, outbound_data_timeout;
	char *relayhost;                   /* host name or IP; NULL: deliver by MX */
	unsigned relayhost_port;           /* 0: 465 for implicit TLS, else 587 */
	enum relayhost_tls relayhost_tls;
	bool relayhost_tls_verify;
	char *relayhost_auth_file;         /* "user password" file, NULL: no AUTH */
	unsigned relayhost_auth_line;
	char *outbound_ca_file;            /* NULL: the system's CAs */
	unsigned retry_schedule[RETRY_SCHEDULE_MAX]; /* seconds; the last one repeats */
	size_t nretry_schedule;
	unsigned queue_lifetime; /* seconds before a message bounces */
	unsigned delay_warning;  /* seconds before a delay notice; 0: never */

	/* TLS and authentication */
	struct str_list tls_certs;      /* tls-cert files, paired in order with tls_keys */
	struct str_list tls_keys;
	bool auth_plaintext_loopback;   /* AUTH without TLS for loopback clients */
	bool received_show_auth;        /* name the AUTH user in Received */
	enum spf_policy spf_policy;     /* SPF checks of inbound mail */
	bool dkim_verify;               /* verify DKIM signatures of inbound mail */
	unsigned msgauth_timeout;       /* seconds for SPF, DKIM and DMARC lookups */
	bool dmarc;                     /* check DMARC (RFC 7489) */
	enum dmarc_reject_policy dmarc_reject_policy;
	char *dmarc_quarantine_header;  /* header field name of a quarantined message */
	char *public_suffix_list;       /* file of the Public Suffix List */
	unsigned auth_max_failures;     /* failed AUTHs from one address before a ban */
	unsigned auth_ban_time;         /* seconds */
	unsigned auth_failure_delay;    /* seconds before a 535 */

	/* DKIM signing (policy/dkim.h reads the keys) */
	struct dkim_sign_cfg *dkim_signs;
	size_t ndkim_signs;

	/* POP3 */
	enum pop3_plaintext pop3_plaintext_auth; /* login without TLS */
	unsigned pop3_idle_timeout;              /* seconds */
	unsigned pop3_max_errors;                /* bad commands before a disconnect */

	/* Anti-abuse (src/policy/, src/smtpd/smtp_policy.c) */
	struct dnsbl_list dnsbl;     /* client blocklists */
	struct dnsbl_list rhsbl;     /* MAIL FROM and HELO domain blocklists */
	struct dnsbl_list dnswl;     /* client allowlists */
	unsigned dnsbl_timeout;      /* seconds */
	unsigned greet_pause;        /* seconds before the greeting; 0: none */
	char *block_networks_file;   /* NULL when not configured */
	char *allow_networks_file;
	char *block_senders_file;
	unsigned block_networks_line, allow_networks_line, block_senders_line;
	bool greylist;
	unsigned greylist_delay;        /* seconds */
	unsigned greylist_retry_window; /* seconds */
	unsigned greylist_expire;       /* seconds */
	unsigned greylist_auto_allow;   /* passed triplets that let a network in; 0: never */
	unsigned greylist_max_entries;
	struct ratelimit_rate ratelimit_connections;     /* per client address */
	struct ratelimit_rate ratelimit_messages;        /* per client address */
	struct ratelimit_rate ratelimit_user_messages;   /* per authenticated user */
	struct ratelimit_rate ratelimit_user_recipients; /* per authenticated user */

	/* Not a key: set by `serve --demo`, whose greeting tells a new user what to do. */
	bool demo;
};

/* Called once per error with the file, the line (0: no line) and the message. */
typedef void config_report_fn(void *ctx, const char *file, unsigned line, const char *msg);

/* A report function that prints "FILE:LINE: message" to the FILE * in ctx. */
config_report_fn config_report_stdio;
/* A report function that logs one config_error line (ctx unused): for reloads. */
config_report_fn config_report_log;

/* Fill every key with its default (hostname from the system). */
void config_init(struct config *cfg);
/* Free everything config_init/config_parse allocated. */
void config_free(struct config *cfg);

/*
 * Parse text (len bytes, any content) named name into cfg, which must have
 * been config_init()ed. Reports each error; returns the number of errors.
 * Relative paths are kept as written. After the last line, checks what only
 * the whole file can tell (at least one listen, ...).
 */
unsigned config_parse(struct config *cfg, const char *name, const char *text, size_t len,
		      config_report_fn *report, void *ctx);
/* Read and parse a file (a missing or unreadable file is one error, line 0). */
unsigned config_load_file(struct config *cfg, const char *path, config_report_fn *report,
			  void *ctx);

/* Is domain (any case, no trailing dot) one of the local-domain values? */
bool config_is_local_domain(const struct config *cfg, const char *domain);
/* Is the client address inside a relay-network? */
bool config_is_relay_client(const struct config *cfg, const struct sockaddr *sa);

/* "smtp", "submission", "submissions", "pop3", "pop3s". */
const char *listen_kind_name(enum listen_kind kind);
/* Does the listener serve POP3 (rather than SMTP)? */
bool listen_is_pop3(const struct listen_cfg *l);
/* Does the listener speak TLS from the start, or offer STARTTLS? */
bool listen_uses_tls(const struct listen_cfg *l);

/* Print every key with its default and documentation (for `carteiro help config`). */
void config_print_keys(FILE *out);

/* The embedded demo configuration (`carteiro serve --demo`), paths under ./run/. */
extern const char config_demo_text[];

#endif
