/*
 * smtp_server: one SMTP worker process. See smtp_server.h.
 */
#include "smtpd/smtp_server.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/dns.h"
#include "mail/aliases.h"
#include "mail/resolve.h"
#include "mail/users.h"
#include "policy/dkim.h"
#include "policy/policy_lists.h"
#include "policy/psl.h"
#include "pop3d/pop3_session.h"
#include "smtpd/conn_limit.h"
#include "smtpd/smtp_session.h"
#include "tls/tls_server.h"
#include "util/iopool.h"
#include "util/log.h"
#include "util/outflush.h"

/* After EMFILE/ENFILE, accepting pauses this long so the loop does not spin. */
#define ACCEPT_BACKOFF_MS 100

struct smtpd_listener {
	struct smtpd *d;
	const struct listen_cfg *cfg;
	struct evconnlistener *lev;
	struct event *resume;
};

int smtpd_load_maps(const struct config *cfg, config_report_fn *report, void *ctx,
		    struct userdb **users, struct aliasdb **aliases)
{
	struct userdb *u = NULL;
	struct aliasdb *a = NULL;
	int ru, ra;

	/* Both files are always read, so that every error of both is reported at once. */
	if (cfg->users_file)
		ru = userdb_load(cfg->users_file, cfg, report, ctx, &u);
	else
		ru = (u = userdb_empty()) ? 0 : -ENOMEM;
	if (cfg->aliases_file)
		ra = aliasdb_load(cfg->aliases_file, cfg, report, ctx, &a);
	else
		ra = (a = aliasdb_empty()) ? 0 : -ENOMEM;
	if (ru < 0 || ra < 0) {
		if (ru == 0)
			userdb_free(u);
		if (ra == 0)
			aliasdb_free(a);
		return ru < 0 ? ru : ra;
	}
	*users = u;
	*aliases = a;
	return 0;
}

bool smtpd_reload_maps(const struct config *cfg, struct userdb **users, struct aliasdb **aliases)
{
	struct userdb *u;
	struct aliasdb *a;

	if (smtpd_load_maps(cfg, config_report_log, NULL, &u, &a) < 0) {
		log_err("event=reload result=failed keeping=previous");
		return false;
	}
	userdb_free(*users);
	aliasdb_free(*aliases);
	*users = u;
	*aliases = a;
	log_info("event=reload result=ok users=%zu aliases=%zu", userdb_count(u), aliasdb_count(a));
	return true;
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct smtpd_listener *lc = arg;
	int one = 1;
	(void)lev;
	/* Replies are written whole; Nagle would hold the next one for a delayed ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (listen_is_pop3(lc->cfg))
		pop3_session_start(lc->d, fd, sa, (socklen_t)salen, lc->cfg);
	else
		smtp_session_start(lc->d, fd, sa, (socklen_t)salen, lc->cfg);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_listener *lc = arg;
	(void)fd;
	(void)what;
	if (!lc->d->stopping)
		evconnlistener_enable(lc->lev);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct smtpd_listener *lc = arg;
	int err = EVUTIL_SOCKET_ERROR();
	log_warn("event=accept_failed listener=%s error=\"%s\"", lc->cfg->text, strerror(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		struct timeval tv = { 0, ACCEPT_BACKOFF_MS * 1000 };
		evconnlistener_disable(lev);
		evtimer_add(lc->resume, &tv);
	}
}

static void stop_listening(struct smtpd *d)
{
	for (size_t i = 0; i < d->nlisteners; i++) {
		struct smtpd_listener *lc = d->listeners[i];
		evconnlistener_free(lc->lev);
		event_free(lc->resume);
		free(lc);
	}
	free(d->listeners);
	d->listeners = NULL;
	d->nlisteners = 0;
}

void smtpd_session_gone(struct smtpd *d)
{
	if (d->stopping && d->nsessions == 0)
		event_base_loopexit(d->base, NULL);
}

/* Close every session at once. */
static void kill_sessions(struct smtpd *d)
{
	while (d->sessions)
		smtp_session_kill(d->sessions);
	while (d->pop3_sessions)
		pop3_session_kill(d->pop3_sessions);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *d = arg;
	(void)fd;
	(void)what;
	log_warn("event=shutdown_deadline sessions=%zu", d->nsessions);
	kill_sessions(d);
	event_base_loopexit(d->base, NULL);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct smtpd *d = arg;
	(void)what;
	if (d->stopping)
		return;
	d->stopping = true;
	log_info("event=stopping signal=%d sessions=%zu", (int)sig, d->nsessions);
	stop_listening(d);
	struct smtp_session *s = d->sessions;
	while (s) {
		struct smtp_session *next = smtp_session_next(s);
		smtp_session_stop(s);
		s = next;
	}
	struct pop3_session *p = d->pop3_sessions;
	while (p) {
		struct pop3_session *next = pop3_session_next(p);
		pop3_session_stop(p);
		p = next;
	}
	if (d->nsessions == 0) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	struct timeval tv = { (time_t)d->cfg->shutdown_timeout, 0 };
	evtimer_add(d->ev_deadline, &tv);
}

void smtpd_reload_psl(const struct config *cfg, struct psl **psl)
{
	if (!cfg->dmarc)
		return;
	char err[512];
	struct psl *n = psl_load(cfg->public_suffix_list, err, sizeof err);
	if (!n) {
		log_err("event=psl_reload_failed error=%s keeping=%s", LOG_ESC(err),
			*psl ? "previous" : "none");
		return;
	}
	psl_free(*psl);
	*psl = n;
	log_info("event=psl_reloaded rules=%zu", psl_count(n));
}

static void on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct smtpd *d = arg;
	(void)sig;
	(void)what;
	/* Sessions keep no pointers into the tables between commands: swap at once.
	 * Each TLS session holds a reference to the context it started with. */
	smtpd_reload_maps(d->cfg, &d->users, &d->aliases);
	policy_lists_reload(d->cfg, &d->lists);
	tls_server_reload(d->cfg, &d->tls);
	smtpd_reload_psl(d->cfg, &d->psl);
}

/* The master read the dkim-sign keys again (SIGHUP): sign with them from the next message
 * on; a signer already running keeps a reference to the set it started with. */
static void on_keys(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *d = arg;
	char err[512];
	(void)what;

	char *msg = malloc(DKIM_SIGNER_SET_EXPORT_MAX);
	if (!msg) {
		char c;
		if (recv(fd, &c, 1, MSG_DONTWAIT) > 0) /* the datagram is dropped whole */
			log_err("event=dkim_reload_failed error=\"out of memory\" keeping=previous");
		return;
	}
	/* MSG_TRUNC: the datagram's whole length, so that a cut one is seen as such. */
	ssize_t n = recv(fd, msg, DKIM_SIGNER_SET_EXPORT_MAX, MSG_DONTWAIT | MSG_TRUNC);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		event_del(d->ev_keys); /* the master is gone: its death stops us soon */
	} else if (n > DKIM_SIGNER_SET_EXPORT_MAX) {
		log_err("event=dkim_reload_failed error=\"key set too large\" keeping=previous");
	} else if (n > 0) {
		struct dkim_signer_set *set;
		if (dkim_signer_set_import(msg, (size_t)n, &set, err, sizeof err) < 0) {
			log_err("event=dkim_reload_failed error=%s keeping=previous", LOG_ESC(err));
		} else {
			dkim_signer_set_free(d->dkim_keys);
			d->dkim_keys = set;
			log_info("event=dkim_keys_reloaded keys=%zu", dkim_signer_set_count(set));
		}
	}
	if (n > 0)
		explicit_bzero(msg, n < DKIM_SIGNER_SET_EXPORT_MAX ? (size_t)n
								 : DKIM_SIGNER_SET_EXPORT_MAX);
	free(msg);
}

static int add_listeners(struct smtpd *d, const int *fds)
{
	const struct config *cfg = d->cfg;
	d->listeners = calloc(cfg->nlistens, sizeof *d->listeners);
	if (!d->listeners)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->nlistens; i++) {
		struct smtpd_listener *lc = calloc(1, sizeof *lc);
		if (!lc)
			return -ENOMEM;
		lc->d = d;
		lc->cfg = &cfg->listens[i];
		lc->resume = evtimer_new(d->base, on_accept_resume, lc);
		/* 0: the master listens already, with its backlog (-1 would listen again with 128). */
		lc->lev = evconnlistener_new(d->base, on_accept, lc, LEV_OPT_CLOSE_ON_FREE, 0, fds[i]);
		if (!lc->lev || !lc->resume) {
			if (lc->resume)
				event_free(lc->resume);
			free(lc);
			return -ENOMEM;
		}
		evconnlistener_set_error_cb(lc->lev, on_accept_error);
		d->listeners[d->nlisteners++] = lc;
	}
	return 0;
}

int smtpd_worker_main(const struct config *cfg, unsigned worker, const int *fds,
		      const struct smtpd_shared *shared, struct userdb *users,
		      struct aliasdb *aliases)
{
	struct smtpd d;
	int r;

	memset(&d, 0, sizeof d);
	d.cfg = cfg;
	d.worker = worker;
	d.limits = shared->limits;
	d.auth_limits = shared->auth_limits;
	d.tls = shared->tls;
	d.dkim_keys = dkim_signer_set_ref(shared->dkim_keys);
	d.psl = shared->psl;
	d.lists = shared->lists;
	d.greylist = shared->greylist;
	d.ratelimit = shared->ratelimit;
	log_set_role("smtpd");
	d.base = event_base_new();
	if (!d.base)
		fatal("event=startup_failed error=\"cannot create event loop\"");
	char dns_err[DNS_ERROR_MAX];
	d.dns = dns_new(d.base, (const char *const *)cfg->dns_servers, cfg->ndns_servers, dns_err,
			sizeof dns_err);
	if (!d.dns)
		log_err("event=dns_unavailable error=%s note=\"DNS lists and sender "
			"authentication are skipped\"",
			LOG_ESC(dns_err));
	else
		d.resolver = dns_resolver_of(d.dns);
	/* The master's last good tables, inherited: a worker restarted after a failed
	 * reload serves with them rather than not at all. */
	d.users = users;
	d.aliases = aliases;
	d.resolve_scratch = calloc(SMTPD_RESOLVE_MAX, sizeof *d.resolve_scratch);
	d.pool = iopool_new(d.base, cfg->io_threads);
	d.outflush = outflush_new(d.base);
	if (!d.resolve_scratch || !d.pool || !d.outflush)
		fatal("event=startup_failed error=\"out of memory\"");
	r = queue_store_open(&d.store, cfg->spool, d.pool, worker + 1);
	if (r < 0)
		fatal("event=startup_failed spool=%s error=\"%s\"", LOG_ESC(cfg->spool), strerror(-r));
	queue_id_init(&d.session_ids, worker + 1);
	if (add_listeners(&d, fds) < 0)
		fatal("event=startup_failed error=\"cannot listen\"");

	d.ev_term = evsignal_new(d.base, SIGTERM, on_stop, &d);
	d.ev_int = evsignal_new(d.base, SIGINT, on_stop, &d);
	d.ev_hup = evsignal_new(d.base, SIGHUP, on_reload, &d);
	d.ev_deadline = evtimer_new(d.base, on_deadline, &d);
	if (!d.ev_term || !d.ev_int || !d.ev_hup || !d.ev_deadline)
		fatal("event=startup_failed error=\"out of memory\"");
	evsignal_add(d.ev_term, NULL);
	evsignal_add(d.ev_int, NULL);
	evsignal_add(d.ev_hup, NULL);
	if (shared->keys_fd >= 0) {
		d.ev_keys = event_new(d.base, shared->keys_fd, EV_READ | EV_PERSIST, on_keys, &d);
		if (!d.ev_keys || event_add(d.ev_keys, NULL) < 0)
			fatal("event=startup_failed error=\"out of memory\"");
	}

	log_info("event=started worker=%u listeners=%zu", worker, d.nlisteners);
	event_base_dispatch(d.base);

	stop_listening(&d);
	kill_sessions(&d);
	if (d.dns)
		dns_free(d.dns); /* after the sessions, which cancel their lookups */
	/* Outstanding spool jobs (commits of departed clients, cleanups) finish here. */
	iopool_free(d.pool);
	outflush_free(d.outflush);
	queue_store_close(&d.store);
	event_free(d.ev_term);
	event_free(d.ev_int);
	event_free(d.ev_hup);
	event_free(d.ev_deadline);
	if (d.ev_keys)
		event_free(d.ev_keys);
	if (shared->keys_fd >= 0)
		close(shared->keys_fd);
	dkim_signer_set_free(d.dkim_keys);
	userdb_free(d.users);
	aliasdb_free(d.aliases);
	policy_lists_free(d.lists);
	tls_server_free(d.tls);
	psl_free(d.psl);
	free(d.resolve_scratch);
	event_base_free(d.base);
	log_info("event=stopped worker=%u", worker);
	return 0;
}
