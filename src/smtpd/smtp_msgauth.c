/*
 * smtp_msgauth: SPF, DKIM and DMARC for one SMTP transaction, and DKIM
 * signing of outgoing mail. See smtp_msgauth.h for when each runs.
 *
 * Order at the end of the data: SPF (started at MAIL) and the DKIM key
 * lookups must both be done before DMARC starts, since DMARC needs their
 * results (RFC 7489 4.3); then the verdict. One timer bounds the waiting:
 * armed at MAIL for SPF, and again at the end of the data for the rest.
 * What it cuts off counts as temperror.
 *
 * The header lines (all ours; every value comes through the policy modules'
 * writers, which quote or drop what could break a header):
 *   Authentication-Results: <hostname>;
 *           spf=... smtp.mailfrom=...;
 *           dkim=... header.d=... (one per signature);
 *           dmarc=... header.from=...
 *   Received-SPF: ...
 *   DKIM-Signature: ... (outgoing)
 * They go in the queue file's J record, so they come out above our Received
 * header, as RFC 7208 9.1 and RFC 8601 5 want.
 */
#include "smtpd/smtp_msgauth.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "dns/dns.h"
#include "policy/dkim.h"
#include "policy/dmarc.h"
#include "policy/spf.h"
#include "util/buf.h"
#include "util/log.h"

/* Our header lines: Authentication-Results, Received-SPF, DKIM-Signatures. */
#define MSGAUTH_HEADERS_MAX (32u * 1024)
#define MSGAUTH_PART_MAX 4096

enum step {
	STEP_SPF,      /* from MAIL until the end of the data */
	STEP_KEYS,     /* end of data: SPF and the DKIM keys */
	STEP_DMARC,    /* the DMARC record */
	STEP_DONE,
};

struct smtp_msgauth {
	struct event_base *base;
	const struct dns_resolver *resolver;
	const struct config *cfg;
	struct psl *const *psl; /* the worker's slot: *psl is the list of the moment */
	char sid[32], qid[32];
	bool verify;
	enum step step;

	/* SPF */
	struct spf_check *spf;
	bool spf_checked; /* a check ran (or was cut off) and spf_out holds its outcome */
	bool spf_pending;
	struct spf_outcome spf_out;
	struct spf_query spf_q; /* its strings point at the copies below */
	struct sockaddr_storage client;
	char *helo, *sender;
	smtp_msgauth_spf_fn *spf_fn;
	void *spf_arg;
	bool spf_notify;

	/* DKIM */
	struct dkim_verify *dv;
	bool dkim_pending;
	bool dkim_checked;
	struct dkim_results dkim_res;
	struct dkim_sign *ds;

	/* DMARC */
	struct dmarc_check *dmarc;
	bool dmarc_pending;
	bool dmarc_checked;
	struct dmarc_outcome dmarc_out;

	struct event *timer;
	struct event *defer; /* runs callbacks out of the caller's stack */
	smtp_msgauth_done_fn *done_fn;
	void *done_arg;
	struct buf headers;
	char reply[256];
};

static void msgauth_step(struct smtp_msgauth *m);

static void timer_arm(struct smtp_msgauth *m)
{
	struct timeval tv = { (time_t)m->cfg->msgauth_timeout, 0 };
	evtimer_add(m->timer, &tv);
}

/* --- SPF ------------------------------------------------------------------ */

static void spf_notify(struct smtp_msgauth *m)
{
	if (m->spf_fn && !m->spf_pending) {
		m->spf_notify = true;
		event_active(m->defer, EV_TIMEOUT, 1);
	}
}

static void on_spf(void *arg, const struct spf_outcome *o)
{
	struct smtp_msgauth *m = arg;

	m->spf = NULL; /* it frees itself */
	m->spf_pending = false;
	m->spf_checked = true;
	m->spf_out = *o;
	log_info("sid=%s qid=%s event=spf result=%s identity=%s domain=%s%s%s", m->sid, m->qid,
		 spf_result_name(o->result), o->helo_identity ? "helo" : "mailfrom",
		 LOG_ESC(o->domain), o->problem[0] ? " problem=" : "",
		 o->problem[0] ? LOG_ESC(o->problem) : "");
	spf_notify(m);
	msgauth_step(m);
}

static void spf_cut_off(struct smtp_msgauth *m)
{
	if (!m->spf_pending)
		return;
	spf_check_timeout(m->spf, &m->spf_out);
	m->spf = NULL;
	m->spf_pending = false;
	m->spf_checked = true;
	log_info("sid=%s qid=%s event=spf result=temperror problem=\"timeout\"", m->sid, m->qid);
	spf_notify(m);
}

bool smtp_msgauth_mail_waits(const struct smtp_msgauth *m)
{
	return m && m->verify && m->cfg->spf_policy == SPF_POLICY_REJECT_FAIL;
}

void smtp_msgauth_spf_wait(struct smtp_msgauth *m, smtp_msgauth_spf_fn *fn, void *arg)
{
	m->spf_fn = fn;
	m->spf_arg = arg;
	spf_notify(m);
}

/* --- DKIM ----------------------------------------------------------------- */

static void on_dkim(void *arg, const struct dkim_results *res)
{
	struct smtp_msgauth *m = arg;

	m->dkim_pending = false;
	m->dkim_checked = true;
	m->dkim_res = *res;
	for (size_t i = 0; i < res->n; i++)
		log_info("sid=%s qid=%s event=dkim result=%s d=%s s=%s a=%s%s%s", m->sid, m->qid,
			 dkim_result_name(res->sig[i].result), LOG_ESC(res->sig[i].d),
			 LOG_ESC(res->sig[i].s), LOG_ESC(res->sig[i].a),
			 res->sig[i].reason[0] ? " reason=" : "",
			 res->sig[i].reason[0] ? LOG_ESC(res->sig[i].reason) : "");
	msgauth_step(m);
}

void smtp_msgauth_data(struct smtp_msgauth *m, const char *p, size_t n)
{
	if (m == NULL)
		return;
	if (m->dv && dkim_verify_update(m->dv, p, n) < 0) {
		dkim_verify_free(m->dv); /* out of memory: the message goes unverified */
		m->dv = NULL;
	}
	if (m->ds && dkim_sign_update(m->ds, p, n) < 0) {
		log_warn("sid=%s qid=%s event=dkim_sign_failed error=\"out of memory\"", m->sid,
			 m->qid);
		dkim_sign_free(m->ds);
		m->ds = NULL;
	}
}

/* --- DMARC ---------------------------------------------------------------- */

static void on_dmarc(void *arg, const struct dmarc_outcome *o)
{
	struct smtp_msgauth *m = arg;

	m->dmarc = NULL;
	m->dmarc_pending = false;
	m->dmarc_checked = true;
	m->dmarc_out = *o;
	msgauth_step(m);
}

/* Start DMARC on the From domain with the SPF and DKIM results; false when there is nothing to
 * wait for (DMARC off, or no single author domain: then the outcome is already known). */
static bool dmarc_start(struct smtp_msgauth *m)
{
	const char *pass[DKIM_SIGS_MAX];
	size_t count = 0, npass = 0;
	struct slice first;
	struct dmarc_from from;

	if (!m->cfg->dmarc || m->dv == NULL || m->psl == NULL || *m->psl == NULL ||
	    dkim_verify_from(m->dv, &count, &first) < 0)
		return false;
	dmarc_from_init(&from);
	if (count > 0)
		dmarc_from_add(&from, first);
	if (count > 1)
		from.nfields = (unsigned)count; /* RFC 7489 6.6.1: which author is meant? */
	enum dmarc_from_status st = dmarc_from_result(&from);
	if (st != DMARC_FROM_OK) {
		dmarc_outcome_undetermined(&m->dmarc_out, st);
		m->dmarc_checked = true;
		return false;
	}
	for (size_t i = 0; m->dkim_checked && i < m->dkim_res.n; i++)
		if (m->dkim_res.sig[i].result == DKIM_PASS && m->dkim_res.sig[i].d[0])
			pass[npass++] = m->dkim_res.sig[i].d;
	struct dmarc_input in = {
		.from_domain = from.domain,
		.spf_pass = m->spf_checked && m->spf_out.result == SPF_PASS,
		.spf_domain = m->spf_checked ? m->spf_out.domain : NULL,
		.dkim_domains = pass,
		.ndkim = npass,
	};
	m->dmarc = dmarc_check_start(m->resolver, *m->psl, &in, on_dmarc, m);
	if (m->dmarc == NULL)
		return false;
	m->dmarc_pending = true;
	return true;
}

/* --- the verdict ---------------------------------------------------------- */

/* Append one "method=result ..." part to the Authentication-Results being built. */
static void ar_part(struct buf *ar, const char *part)
{
	if (part[0] == '\0')
		return;
	buf_append(ar, ";\r\n\t", 4);
	buf_append(ar, part, strlen(part));
}

static void build_headers(struct smtp_msgauth *m, bool *reject)
{
	char part[MSGAUTH_PART_MAX];
	struct buf ar;

	*reject = false;
	buf_reset(&m->headers);
	if (m->verify) {
		buf_init(&ar, MSGAUTH_HEADERS_MAX);
		buf_appendf(&ar, "Authentication-Results: %s", m->cfg->hostname);
		size_t empty = ar.len;
		if (m->spf_checked && spf_auth_results(&m->spf_out, part, sizeof part) == 0)
			ar_part(&ar, part);
		if (m->dkim_checked &&
			 dkim_auth_results(&m->dkim_res, part, sizeof part) == 0)
			ar_part(&ar, part);
		if (m->dmarc_checked && dmarc_auth_results(&m->dmarc_out, part, sizeof part) == 0)
			ar_part(&ar, part);
		if (ar.len == empty)
			buf_append(&ar, "; none", 6);
		buf_append(&ar, "\r\n", 2);
		buf_append(&m->headers, ar.data, ar.len);
		buf_free(&ar);
		if (m->spf_checked) {
			struct spf_query q = m->spf_q;
			if (spf_received_header(&m->spf_out, &q, part, sizeof part) == 0)
				buf_append(&m->headers, part, strlen(part));
		}
		if (m->dmarc_checked) {
			enum dmarc_action act = dmarc_action(&m->dmarc_out, m->cfg->dmarc_reject_policy);
			if (act == DMARC_ACTION_REJECT) {
				*reject = true;
				snprintf(m->reply, sizeof m->reply, "%s", m->dmarc_out.from_domain);
			} else if (act == DMARC_ACTION_QUARANTINE) {
				buf_appendf(&m->headers, "%s: %s\r\n", m->cfg->dmarc_quarantine_header,
					    DMARC_QUARANTINE_VALUE);
			}
		}
	}
	if (m->ds) {
		static char sig[MSGAUTH_HEADERS_MAX];
		size_t len = 0;
		int r = dkim_sign_finish(m->ds, sig, sizeof sig, &len);
		if (r < 0)
			log_warn("sid=%s qid=%s event=dkim_sign_failed error=\"%s\"", m->sid, m->qid,
				 strerror(-r));
		else if (len > 0)
			log_info("sid=%s qid=%s event=dkim_signed d=%s", m->sid, m->qid,
				 LOG_ESC(dkim_sign_domain(m->ds)));
		else
			log_debug("sid=%s qid=%s event=dkim_not_signed reason=%s", m->sid, m->qid,
				  LOG_ESC(dkim_sign_skip_reason(m->ds)));
		if (r == 0 && len > 0)
			buf_append(&m->headers, sig, len);
	}
}

static void finish(struct smtp_msgauth *m)
{
	struct smtp_msgauth_verdict v = { .action = MSGAUTH_ACCEPT };
	bool reject;

	m->step = STEP_DONE;
	evtimer_del(m->timer);
	build_headers(m, &reject);
	if (m->dmarc_checked) {
		enum dmarc_action act = dmarc_action(&m->dmarc_out, m->cfg->dmarc_reject_policy);
		log_info("sid=%s qid=%s event=dmarc result=%s from=%s policy=%s action=%s%s%s",
			 m->sid, m->qid, dmarc_result_name(m->dmarc_out.result),
			 LOG_ESC(m->dmarc_out.from_domain), dmarc_policy_name(m->dmarc_out.policy),
			 act == DMARC_ACTION_REJECT	    ? "reject"
			 : act == DMARC_ACTION_QUARANTINE ? "quarantine"
							  : "accept",
			 m->dmarc_out.problem[0] ? " problem=" : "",
			 m->dmarc_out.problem[0] ? LOG_ESC(m->dmarc_out.problem) : "");
	}
	if (reject) {
		v.action = MSGAUTH_REJECT;
		v.reply = m->reply;
	}
	v.headers = m->headers.len ? m->headers.data : "";
	v.headers_len = m->headers.len;
	m->done_fn(m->done_arg, &v);
}

static void msgauth_step(struct smtp_msgauth *m)
{
	switch (m->step) {
	case STEP_SPF:
	case STEP_DONE:
		return;
	case STEP_KEYS:
		if (m->spf_pending || m->dkim_pending)
			return;
		m->step = STEP_DMARC;
		if (m->verify && dmarc_start(m))
			return;
		/* no DMARC to wait for */
		__attribute__((fallthrough));
	case STEP_DMARC:
		if (m->dmarc_pending)
			return;
		finish(m);
		return;
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_msgauth *m = arg;

	(void)fd;
	(void)what;
	spf_cut_off(m);
	if (m->step == STEP_SPF)
		return;
	if (m->dkim_pending) {
		m->dkim_pending = false;
		m->dkim_checked = true;
		m->dkim_res = *dkim_verify_timeout(m->dv);
		log_info("sid=%s qid=%s event=dkim result=temperror problem=\"timeout\"", m->sid,
			 m->qid);
	}
	if (m->dmarc_pending) {
		dmarc_check_timeout(m->dmarc, &m->dmarc_out);
		m->dmarc = NULL;
		m->dmarc_pending = false;
		m->dmarc_checked = true;
		log_info("sid=%s qid=%s event=dmarc result=temperror problem=\"timeout\"", m->sid,
			 m->qid);
	}
	msgauth_step(m);
}

/* Deferred work: the SPF notification for MAIL, or the start of the end-of-data steps. */
static void on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_msgauth *m = arg;

	(void)fd;
	(void)what;
	if (m->spf_notify) {
		m->spf_notify = false;
		smtp_msgauth_spf_fn *fn = m->spf_fn;
		m->spf_fn = NULL;
		bool fail = m->spf_checked && m->spf_out.result == SPF_FAIL;
		if (fail)
			snprintf(m->reply, sizeof m->reply, "%.200s",
				 m->spf_out.explanation[0] ? m->spf_out.explanation
							   : "sender not permitted");
		fn(m->spf_arg, fail, fail ? m->reply : NULL);
		return; /* m may be gone */
	}
	if (m->step == STEP_KEYS)
		msgauth_step(m);
}

void smtp_msgauth_finish(struct smtp_msgauth *m, smtp_msgauth_done_fn *fn, void *arg)
{
	m->done_fn = fn;
	m->done_arg = arg;
	m->spf_fn = NULL;
	m->step = STEP_KEYS;
	timer_arm(m);
	if (m->dv) {
		m->dkim_pending = true;
		dkim_verify_finish(m->dv, m->base, m->resolver, on_dkim, m);
	}
	event_active(m->defer, EV_TIMEOUT, 1);
}

/* --- life cycle ----------------------------------------------------------- */

struct smtp_msgauth *smtp_msgauth_new(const struct smtp_msgauth_params *p)
{
	struct smtp_msgauth *m = calloc(1, sizeof *m);

	if (m == NULL)
		return NULL;
	m->base = p->base;
	m->resolver = p->resolver;
	m->cfg = p->cfg;
	m->psl = p->psl;
	m->verify = p->verify;
	snprintf(m->sid, sizeof m->sid, "%s", p->sid);
	snprintf(m->qid, sizeof m->qid, "%s", p->qid);
	buf_init(&m->headers, MSGAUTH_HEADERS_MAX);
	m->helo = strdup(p->helo ? p->helo : "");
	m->sender = strdup(p->sender);
	m->timer = evtimer_new(p->base, on_timer, m);
	m->defer = event_new(p->base, -1, 0, on_defer, m);
	if (!m->helo || !m->sender || !m->timer || !m->defer)
		goto fail;
	if (p->verify && p->cfg->dkim_verify && (m->dv = dkim_verify_new()) == NULL)
		goto fail;
	if (p->signers && (m->ds = dkim_sign_new(p->signers)) == NULL)
		goto fail;
	if (p->verify && p->cfg->spf_policy != SPF_POLICY_OFF) {
		memcpy(&m->client, p->client,
		       p->client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							: sizeof(struct sockaddr_in));
		m->spf_q = (struct spf_query){ .client = (struct sockaddr *)&m->client,
					       .sender = m->sender,
					       .helo = m->helo,
					       .receiver = p->cfg->hostname };
		m->spf = spf_check_start(p->base, p->resolver, &m->spf_q, on_spf, m);
		if (m->spf == NULL)
			goto fail;
		m->spf_pending = true;
		timer_arm(m);
	}
	return m;
fail:
	smtp_msgauth_free(m);
	return NULL;
}

void smtp_msgauth_free(struct smtp_msgauth *m)
{
	if (m == NULL)
		return;
	if (m->spf_pending)
		spf_check_cancel(m->spf);
	if (m->dmarc_pending)
		dmarc_check_cancel(m->dmarc);
	dkim_verify_free(m->dv);
	dkim_sign_free(m->ds);
	if (m->timer)
		event_free(m->timer);
	if (m->defer)
		event_free(m->defer);
	buf_free(&m->headers);
	free(m->helo);
	free(m->sender);
	free(m);
}
