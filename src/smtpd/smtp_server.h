/*
 * smtp_server: one SMTP worker process.
 *
 * The master binds every listener (one socket per address, shared by all
 * workers) and forks the workers; each runs its own libevent loop, accepts
 * on the shared sockets (whichever worker is idle takes a connection),
 * enforces the shared connection limits, and runs the sessions: SMTP
 * (smtp_session.c), and POP3 (pop3d/pop3_session.c) for the connections of
 * pop3 and pop3s listeners. Accepted mail goes to the spool through the worker's I/O
 * pool (queue_store.c). SIGHUP reloads the users and aliases files, the
 * local policy lists and the TLS certificates and keys (when the server user
 * can read them); SIGTERM
 * stops accepting, closes idle sessions with 421, lets transactions in flight
 * finish, and exits when none is left or shutdown-timeout has passed.
 */
#ifndef CARTEIRO_SMTPD_SMTP_SERVER_H
#define CARTEIRO_SMTPD_SMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"
#include "dns/dns.h"
#include "queue/queue_store.h"

struct event_base;
struct smtpd_listener;
struct event;
struct iopool;
struct conn_limit;
struct smtp_session;
struct pop3_session;
struct userdb;
struct aliasdb;
struct auth_limit;
struct tls_server;
struct dkim_signer_set;
struct psl;
struct dns;
struct policy_lists;
struct greylist;
struct ratelimit;

/* Results of resolving one RCPT (aliases can fan out). */
#define SMTPD_RESOLVE_MAX 1000

struct resolved;

struct smtpd {
	struct event_base *base;
	const struct config *cfg;
	unsigned worker; /* 0 .. workers-1 */
	struct userdb *users;
	struct aliasdb *aliases;
	struct iopool *pool;
	struct outflush *outflush; /* writes plain sessions' replies (util/outflush.h) */
	struct queue_store store;
	struct conn_limit *limits;
	struct auth_limit *auth_limits; /* failed AUTHs, shared by the workers */
	struct tls_server *tls;         /* NULL when no tls-cert is configured */
	const struct dkim_signer_set *dkim_keys; /* dkim-sign keys (a reference); NULL: none */
	/* The worker's resolver (dns-server), for every policy check of its sessions (DNS
	 * lists, SPF, DKIM, DMARC); NULL when c-ares could not start: lookups are skipped. */
	struct dns *dns;
	struct dns_resolver resolver; /* dns_resolver_of(dns), for the policy modules */
	/* The public suffixes for DMARC (NULL: no DMARC): the master's at start, read again
	 * on SIGHUP. Sessions read it through &psl when they need it, so a reload in the
	 * middle of a message only changes which list that message is judged by. */
	struct psl *psl;
	struct policy_lists *lists;     /* block/allow-networks, block-senders (never NULL) */
	struct greylist *greylist;      /* shared table; NULL unless greylist is on */
	struct ratelimit *ratelimit;    /* shared counters; NULL when no rate is set */
	struct smtpd_listener **listeners;
	size_t nlisteners;
	struct smtp_session *sessions; /* every open SMTP session, for shutdown */
	struct pop3_session *pop3_sessions; /* every open POP3 session (pop3_session.c) */
	size_t nsessions;                   /* of both kinds */
	struct queue_id_gen session_ids;
	struct resolved *resolve_scratch; /* SMTPD_RESOLVE_MAX results, for RCPT */
	bool stopping;
	struct event *ev_term, *ev_int, *ev_hup, *ev_deadline;
	struct event *ev_keys; /* the master's socket for re-read DKIM keys; NULL: none */
};

/*
 * Run worker number `worker` on the given listening sockets (fds[i] belongs
 * to cfg->listens[i]) with the master's users and aliases tables and TLS
 * context (the worker owns them from now on). Returns the process exit status.
 */
/* What the master makes before it forks the workers, shared by (or copied into) each. */
struct smtpd_shared {
	struct conn_limit *limits;
	struct auth_limit *auth_limits;
	struct tls_server *tls; /* the worker owns its copy's reference */
	const struct dkim_signer_set *dkim_keys; /* read by the master as root; NULL: none */
	struct psl *psl;                         /* the master's Public Suffix List (the worker
						  * owns its copy); NULL: none */
	struct policy_lists *lists; /* the worker owns its copy */
	struct greylist *greylist;
	struct ratelimit *ratelimit;
	int keys_fd; /* DKIM keys re-read by the master arrive here (SIGHUP); -1: none */
};

/* Read the Public Suffix List again (dmarc on): on success *psl is replaced; on failure it
 * is kept and the error logged. The master and each worker call it on SIGHUP. */
void smtpd_reload_psl(const struct config *cfg, struct psl **psl);

int smtpd_worker_main(const struct config *cfg, unsigned worker, const int *fds,
		      const struct smtpd_shared *shared, struct userdb *users,
		      struct aliasdb *aliases);

/* Load the users and aliases files named in cfg (either may be absent); both are
 * read and every error reported even when the first fails. */
int smtpd_load_maps(const struct config *cfg, config_report_fn *report, void *ctx,
		    struct userdb **users, struct aliasdb **aliases);

/* Reload the tables into users and aliases (freeing the old ones), or keep them
 * when the files are broken; logs the outcome. */
bool smtpd_reload_maps(const struct config *cfg, struct userdb **users, struct aliasdb **aliases);

/* Called after a session was freed (a stopping worker exits after the last). */
void smtpd_session_gone(struct smtpd *d);

#endif
