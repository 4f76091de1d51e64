/*
 * smtp_policy: the anti-abuse checks of one SMTP session, at connect, MAIL
 * and RCPT, on top of src/policy/ (DNS lists, local lists, greylisting,
 * rate limits). The session calls in at each step and sends the reply it
 * is given; every decision is logged here, one line per event.
 *
 * When each check runs, and what it answers:
 *   connect  connections per client (ratelimit-connections): 421 4.7.0 and
 *            close; then allow-networks, block-networks, and the DNS lists
 *            (dnsbl, dnswl) of the client address, which the greeting waits
 *            for (at most dnsbl-timeout; then it passes, logged).
 *   MAIL     messages per client, or per user once authenticated: 451 4.7.1;
 *            block-senders; rhsbl of the MAIL FROM and HELO domains (the 250
 *            waits for the answers, as the greeting does).
 *   RCPT     a client or sender that a list refused: 554 5.7.1 naming the
 *            list and its reason, at every RCPT (see below); recipients per
 *            user: 451 4.7.1; after the recipient is known to be valid,
 *            greylisting: 451 4.7.1.
 *
 * Refusals of listed clients come at RCPT, after a normal greeting, as
 * Postfix does by default (smtpd_delay_reject, and postscreen's "enforce"),
 * rather than as a 554 greeting (RFC 5321 3.1): a client that gets a 5xx
 * greeting treats it as that host refusing to talk (Postfix's SMTP client
 * skips to the next MX and keeps the message queued for days), while a 5xx
 * to RCPT bounces the message at once, so a legitimate sender whose server
 * is listed learns why, from the list's reason in the bounce. It also lets
 * a user who authenticates from a listed address (a home connection on a
 * policy blocklist) send, and logs the sender and recipients of what was
 * refused. A refused client learns nothing about which recipients exist:
 * the 554 comes before the recipient is looked up.
 *
 * Who is exempt: relay-network clients from everything here; authenticated
 * users from the lists and greylisting (they have rate limits of their own);
 * clients in allow-networks or a dnswl from block-networks, the DNS lists,
 * rhsbl and greylisting (not from block-senders: blocking one address at a
 * big provider is what that file is for; not from the rate limits). The DNS
 * lists are not asked on listeners that require AUTH (submission).
 *
 * The lookups use the worker's resolver (smtpd->dns) and its cache; a check
 * in flight is cancelled with the session (smtp_policy_free).
 */
#ifndef CARTEIRO_SMTPD_SMTP_POLICY_H
#define CARTEIRO_SMTPD_SMTP_POLICY_H

#include <stdbool.h>
#include <sys/socket.h>

#include "conf/config.h"
#include "mail/addr.h"
#include "smtpd/smtp_reply.h"

struct smtpd;
struct smtp_policy;

enum smtp_policy_status {
	SMTP_POLICY_OK,     /* go on */
	SMTP_POLICY_WAIT,   /* a lookup runs: the done callback comes later, then go on */
	SMTP_POLICY_REFUSE, /* send the verdict's reply (and for connect, close) */
};

/* A refusal: its reply, our detail text for it (or NULL) and a word for the session's log. */
struct smtp_policy_verdict {
	enum smtp_reply_id reply;
	const char *detail;
	const char *reason;
};

typedef void smtp_policy_done_fn(void *arg);

/* The checks of a new session from peer (text peer_ip) on listener; NULL when out of memory. */
struct smtp_policy *smtp_policy_new(struct smtpd *d, const char *sid, const struct sockaddr *peer,
				    const char *peer_ip, bool relay_client,
				    const struct listen_cfg *listener);
/* Cancel what is in flight (no callback runs) and free. */
void smtp_policy_free(struct smtp_policy *p);

/* The checks at connect. REFUSE: *v is the 421 to send before closing. */
enum smtp_policy_status smtp_policy_connect(struct smtp_policy *p, smtp_policy_done_fn *done,
					    void *arg, struct smtp_policy_verdict *v);
/* The checks at MAIL (auth_user NULL when not authenticated). REFUSE: *v is the 451. */
enum smtp_policy_status smtp_policy_mail(struct smtp_policy *p, const struct addr *from,
					 const char *helo, const char *auth_user,
					 smtp_policy_done_fn *done, void *arg,
					 struct smtp_policy_verdict *v);
/* At RCPT, before the recipient is looked up: false and *v when it must be refused. */
bool smtp_policy_rcpt(struct smtp_policy *p, const char *auth_user, struct smtp_policy_verdict *v);
/* At RCPT, once the recipient is valid: false and *v (451) when greylisted. */
bool smtp_policy_greylist(struct smtp_policy *p, const struct addr *from, const char *rcpt,
			  const char *auth_user, struct smtp_policy_verdict *v);
/*
 * Is the client trusted by the administrator's lists (relay-network,
 * allow-networks, a dnswl)? Such clients skip SPF as well (authenticated
 * users too, which the caller knows).
 */
bool smtp_policy_exempt(const struct smtp_policy *p);

#endif
