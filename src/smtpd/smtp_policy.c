/*
 * smtp_policy: a session's anti-abuse checks. See smtp_policy.h.
 *
 * State: a refusal for the whole session (the client is listed) and one for
 * the current transaction (its sender is listed), each a reason word and
 * the detail text of the 554; and whether the client is exempt from the
 * lists (allow-networks, dnswl). At most one DNS check is in flight, since
 * the session waits for it.
 *
 * Security: reply details are built from our own data (the client address
 * as the socket gives it, the configured zone names) and the lists' TXT
 * reasons, which dnsbl.c has made printable and short; the client's own
 * text (addresses, HELO) only reaches the log, through LOG_ESC.
 */
#include "smtpd/smtp_policy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns/dns.h"
#include "policy/dnsbl.h"
#include "policy/greylist.h"
#include "policy/policy_lists.h"
#include "policy/ratelimit.h"
#include "smtpd/smtp_server.h"
#include "util/log.h"
#include "util/str.h"

/* A 554's detail: "554 5.7.1 Service unavailable; " and this fit a 512-octet reply line. */
#define DETAIL_MAX 400
#define SID_MAX 32

struct smtp_policy {
	struct smtpd *d;
	char sid[SID_MAX];
	struct sockaddr_storage peer;
	char peer_ip[INET6_ADDRSTRLEN];
	bool relay;     /* relay-network: no check at all */
	bool allowed;   /* allow-networks or dnswl */
	bool dns_lists; /* the listener is one where the DNS lists are asked */
	const char *client_reason; /* the session is refused (a client list), else NULL */
	char client_detail[DETAIL_MAX];
	const char *txn_reason;    /* the transaction is refused (a sender list), else NULL */
	char txn_detail[DETAIL_MAX];
	char wait_detail[32];
	char rhsbl_names[DNSBL_NAMES_MAX][ADDR_DOMAIN_MAX + 1]; /* asked at MAIL, for the log */
	struct dnsbl_check *check;
	smtp_policy_done_fn *done;
	void *done_arg;
};

struct smtp_policy *smtp_policy_new(struct smtpd *d, const char *sid, const struct sockaddr *peer,
				    const char *peer_ip, bool relay_client,
				    const struct listen_cfg *listener)
{
	struct smtp_policy *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->d = d;
	str_copy(p->sid, sizeof p->sid, sid);
	memcpy(&p->peer, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
				: peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
							     : sizeof(struct sockaddr));
	str_copy(p->peer_ip, sizeof p->peer_ip, peer_ip);
	p->relay = relay_client;
	p->dns_lists = !(listener->flags & LISTEN_AUTH_REQUIRED);
	return p;
}

void smtp_policy_free(struct smtp_policy *p)
{
	if (!p)
		return;
	dnsbl_check_cancel(p->check);
	free(p);
}

bool smtp_policy_exempt(const struct smtp_policy *p)
{
	return p->relay || p->allowed;
}

static const struct sockaddr *peer_sa(const struct smtp_policy *p)
{
	return (const struct sockaddr *)&p->peer;
}

/* Count an event against a rate; false (logged) when it is beyond. */
static bool rate_ok(struct smtp_policy *p, enum ratelimit_kind kind,
		    const struct ratelimit_rate *rate, const char *user)
{
	uint8_t key[16];
	unsigned count;

	if (rate->count == 0 || !p->d->ratelimit)
		return true;
	if (user)
		ratelimit_key_name(user, key);
	else
		ratelimit_key_addr(peer_sa(p), key);
	if (ratelimit_hit(p->d->ratelimit, kind, key, rate, ratelimit_now_ms(), &count))
		return true;
	log_info("sid=%s event=ratelimit kind=%s client=%s%s%s count=%u limit=%u/%us", p->sid,
		 ratelimit_kind_name(kind), p->peer_ip, user ? " user=" : "",
		 user ? LOG_ESC(user) : "", count, rate->count, rate->window);
	return false;
}

/* The lookups go to the worker's resolver; without one they are skipped (fail open). */
static bool have_resolver(struct smtp_policy *p, const char *what)
{
	if (p->d->dns)
		return true;
	log_warn("sid=%s event=%s result=skipped reason=\"no DNS resolver\"", p->sid, what);
	return false;
}

static void dnsbl_log(const struct smtp_policy *p, const char *event, const char *result,
		      const struct dnsbl_result *r, const char *extra)
{
	log_info("sid=%s event=%s client=%s result=%s%s%s answer=%s reason=%s lookups=%u "
		 "timeouts=%u errors=%u%s", p->sid, event, p->peer_ip, result,
		 r->zone ? " zone=" : "", r->zone ? r->zone : "", r->answer[0] ? r->answer : "-",
		 LOG_ESC(r->reason), r->lookups, r->timeouts, r->errors, extra);
}

/* "; reason" when the list gave one. */
#define REASON_SEP(r) ((r)->reason[0] ? "; " : "")

/* --- connect -------------------------------------------------------------- */

static void client_checked(void *arg, const struct dnsbl_result *r)
{
	struct smtp_policy *p = arg;

	p->check = NULL;
	if (r->verdict == DNSBL_LISTED) {
		p->client_reason = "dnsbl";
		str_format(p->client_detail, sizeof p->client_detail,
			   "client host [%s] blocked using %s%s%s", p->peer_ip, r->zone,
			   REASON_SEP(r), r->reason);
		dnsbl_log(p, "dnsbl", "listed", r, "");
	} else if (r->verdict == DNSBL_ALLOWED) {
		p->allowed = true;
		dnsbl_log(p, "dnsbl", "allowed", r, "");
	} else if (r->timeouts || r->errors) {
		/* Failing open is the point of the deadline, but the administrator should know. */
		char extra[DNSBL_ZONE_MAX + 32] = "";
		if (r->timed_out_zone)
			str_format(extra, sizeof extra, " timed_out=%s", r->timed_out_zone);
		dnsbl_log(p, "dnsbl", r->timeouts ? "timeout" : "error", r, extra);
	} else {
		log_debug("sid=%s event=dnsbl client=%s result=pass lookups=%u", p->sid, p->peer_ip,
			  r->lookups);
	}
	p->done(p->done_arg);
}

enum smtp_policy_status smtp_policy_connect(struct smtp_policy *p, smtp_policy_done_fn *done,
					    void *arg, struct smtp_policy_verdict *v)
{
	const struct config *cfg = p->d->cfg;

	if (p->relay)
		return SMTP_POLICY_OK;
	if (!rate_ok(p, RATELIMIT_CONNECTIONS, &cfg->ratelimit_connections, NULL)) {
		*v = (struct smtp_policy_verdict){ R_RATE_CONNECTIONS, NULL, "ratelimit" };
		return SMTP_POLICY_REFUSE;
	}
	if (policy_lists_client_allowed(p->d->lists, peer_sa(p))) {
		p->allowed = true;
		log_info("sid=%s event=policy client=%s result=allowed list=allow-networks", p->sid,
			 p->peer_ip);
		return SMTP_POLICY_OK;
	}
	if (policy_lists_client_blocked(p->d->lists, peer_sa(p))) {
		p->client_reason = "block_networks";
		str_format(p->client_detail, sizeof p->client_detail,
			   "client host [%s] refused by local policy", p->peer_ip);
		log_info("sid=%s event=policy client=%s result=blocked list=block-networks", p->sid,
			 p->peer_ip);
		return SMTP_POLICY_OK;
	}
	if (!p->dns_lists || (cfg->dnsbl.n == 0 && cfg->dnswl.n == 0) ||
	    !have_resolver(p, "dnsbl"))
		return SMTP_POLICY_OK;
	struct dns_resolver res = dns_resolver_of(p->d->dns);
	p->check = dnsbl_check_client(&res, p->d->base, &cfg->dnsbl, &cfg->dnswl, peer_sa(p),
				      cfg->dnsbl_timeout * 1000, p->sid, client_checked, p);
	if (!p->check) {
		log_warn("sid=%s event=dnsbl result=skipped reason=\"out of memory\"", p->sid);
		return SMTP_POLICY_OK;
	}
	p->done = done;
	p->done_arg = arg;
	return SMTP_POLICY_WAIT;
}

/* --- MAIL ----------------------------------------------------------------- */

static void domains_checked(void *arg, const struct dnsbl_result *r)
{
	struct smtp_policy *p = arg;

	p->check = NULL;
	if (r->verdict == DNSBL_LISTED) {
		bool helo = r->name_index == 1;
		char extra[ADDR_DOMAIN_MAX * 4 + 32];
		p->txn_reason = helo ? "rhsbl_helo" : "rhsbl_sender";
		str_format(p->txn_detail, sizeof p->txn_detail, "%s listed by %s%s%s",
			   helo ? "HELO name" : "sender domain", r->zone, REASON_SEP(r), r->reason);
		str_format(extra, sizeof extra, " what=%s domain=%s", helo ? "helo" : "sender",
			   LOG_ESC(p->rhsbl_names[r->name_index]));
		dnsbl_log(p, "rhsbl", "listed", r, extra);
	} else if (r->timeouts || r->errors) {
		dnsbl_log(p, "rhsbl", r->timeouts ? "timeout" : "error", r, "");
	}
	p->done(p->done_arg);
}

enum smtp_policy_status smtp_policy_mail(struct smtp_policy *p, const struct addr *from,
					 const char *helo, const char *auth_user,
					 smtp_policy_done_fn *done, void *arg,
					 struct smtp_policy_verdict *v)
{
	const struct config *cfg = p->d->cfg;
	const char *domains[DNSBL_NAMES_MAX] = { NULL, NULL };

	p->txn_reason = NULL;
	if (p->relay)
		return SMTP_POLICY_OK;
	if (auth_user) {
		if (rate_ok(p, RATELIMIT_USER_MESSAGES, &cfg->ratelimit_user_messages, auth_user))
			return SMTP_POLICY_OK;
		*v = (struct smtp_policy_verdict){ R_RATE_USER_MESSAGES, NULL, "ratelimit" };
		return SMTP_POLICY_REFUSE;
	}
	if (!rate_ok(p, RATELIMIT_MESSAGES, &cfg->ratelimit_messages, NULL)) {
		*v = (struct smtp_policy_verdict){ R_RATE_MESSAGES, NULL, "ratelimit" };
		return SMTP_POLICY_REFUSE;
	}
	if (policy_lists_sender_blocked(p->d->lists, from)) {
		p->txn_reason = "block_senders";
		str_format(p->txn_detail, sizeof p->txn_detail,
			   "sender address refused by local policy");
		log_info("sid=%s event=policy client=%s result=blocked list=block-senders from=<%s>",
			 p->sid, p->peer_ip, LOG_ESC(from->text));
		return SMTP_POLICY_OK;
	}
	/* An exempt client is not asked about; a refused one is refused already. */
	if (p->allowed || p->client_reason || !p->dns_lists || cfg->rhsbl.n == 0)
		return SMTP_POLICY_OK;
	if (!from->null && !from->literal && from->domain[0])
		domains[0] = from->domain;
	if (helo && helo[0] != '[')
		domains[1] = helo;
	if ((!domains[0] && !domains[1]) || !have_resolver(p, "rhsbl"))
		return SMTP_POLICY_OK;
	for (int i = 0; i < DNSBL_NAMES_MAX; i++)
		str_copy(p->rhsbl_names[i], sizeof p->rhsbl_names[i], domains[i] ? domains[i] : "");
	struct dns_resolver res = dns_resolver_of(p->d->dns);
	p->check = dnsbl_check_domains(&res, p->d->base, &cfg->rhsbl, domains, DNSBL_NAMES_MAX,
				       cfg->dnsbl_timeout * 1000, p->sid, domains_checked, p);
	if (!p->check) {
		log_warn("sid=%s event=rhsbl result=skipped reason=\"out of memory\"", p->sid);
		return SMTP_POLICY_OK;
	}
	p->done = done;
	p->done_arg = arg;
	return SMTP_POLICY_WAIT;
}

/* --- RCPT ----------------------------------------------------------------- */

bool smtp_policy_rcpt(struct smtp_policy *p, const char *auth_user, struct smtp_policy_verdict *v)
{
	const struct config *cfg = p->d->cfg;

	if (p->relay)
		return true;
	if (auth_user) {
		if (rate_ok(p, RATELIMIT_USER_RCPTS, &cfg->ratelimit_user_recipients, auth_user))
			return true;
		*v = (struct smtp_policy_verdict){ R_RATE_USER_RCPTS, NULL, "ratelimit" };
		return false;
	}
	if (p->client_reason) {
		*v = (struct smtp_policy_verdict){ R_POLICY_REJECT, p->client_detail,
						   p->client_reason };
		return false;
	}
	if (p->txn_reason) {
		*v = (struct smtp_policy_verdict){ R_POLICY_REJECT, p->txn_detail, p->txn_reason };
		return false;
	}
	return true;
}

bool smtp_policy_greylist(struct smtp_policy *p, const struct addr *from, const char *rcpt,
			  const char *auth_user, struct smtp_policy_verdict *v)
{
	const struct config *cfg = p->d->cfg;
	struct greylist_result r;

	if (!cfg->greylist || !p->d->greylist || p->relay || p->allowed || auth_user)
		return true;
	struct greylist_times t = { cfg->greylist_delay, cfg->greylist_retry_window,
				    cfg->greylist_expire, cfg->greylist_auto_allow };
	greylist_check(p->d->greylist, peer_sa(p), from->text, rcpt, (int64_t)time(NULL), &t, &r);
	if (r.status == GREYLIST_PASS) {
		if (r.first_pass)
			log_info("sid=%s event=greylist result=passed client=%s from=<%s> to=<%s> "
				 "after=%us", p->sid, p->peer_ip, LOG_ESC(from->text), LOG_ESC(rcpt),
				 r.age);
		if (r.allowed_now)
			log_info("sid=%s event=greylist result=auto_allowed client=%s passed=%u "
				 "note=\"its /24 or /64 is let in at once from now on\"", p->sid,
				 p->peer_ip, cfg->greylist_auto_allow);
		return true;
	}
	snprintf(p->wait_detail, sizeof p->wait_detail, "%u seconds", r.wait);
	*v = (struct smtp_policy_verdict){ R_GREYLISTED, p->wait_detail,
					   r.status == GREYLIST_NEW ? "greylisted"
								    : "greylisted_early" };
	return false;
}
