/*
 * smtp_msgauth: sender authentication of one SMTP transaction, on top of
 * src/policy/ (spf.c, dkim*.c, dmarc.c): what the session asks at MAIL
 * and the end of the data, and the header lines it gets back.
 *
 * Inbound mail (from the internet: not a relay-network client, not an
 * authenticated user, not exempted by allow-networks or a dnswl):
 *   MAIL   the SPF check starts (RFC 7208, spf-policy), without delaying the
 *          250 (its DNS lookups run while the client sends RCPT and DATA);
 *          with spf-policy reject-fail, the 250 waits for the result instead,
 *          and a "fail" gets 550 5.7.23 (RFC 7372) with the explanation;
 *   data   every byte goes to the DKIM verifier (dkim-verify), which hashes
 *          the body as it streams;
 *   end    DKIM keys are fetched, then DMARC (RFC 7489) is evaluated on the
 *          From domain with the SPF and DKIM results; p=reject (per
 *          dmarc-reject-policy) refuses the message with 550 5.7.1, quarantine
 *          adds the quarantine header. The header lines to prepend are
 *          Authentication-Results (RFC 8601, authserv-id = hostname) with
 *          spf, dkim and dmarc, and Received-SPF (RFC 7208 9.1).
 * Outgoing mail (a relay-network client or an authenticated user) with
 * dkim-sign keys: the data goes to the DKIM signer, and the DKIM-Signature
 * is prepended at the end (RFC 6376 5).
 *
 * Every lookup shares msgauth-timeout, after which what is missing counts as
 * temperror (SPF, DKIM) and the message is accepted: sender authentication
 * fails open, as a temporary DNS trouble must not lose mail.
 *
 * Contract: the callbacks never run inside the call that asked; freeing the
 * context cancels every lookup and timer, and no callback runs after it.
 */
#ifndef CARTEIRO_SMTPD_SMTP_MSGAUTH_H
#define CARTEIRO_SMTPD_SMTP_MSGAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct config;
struct dns_resolver;
struct dkim_signer_set;
struct psl;
struct smtp_msgauth;

struct smtp_msgauth_params {
	struct event_base *base;
	const struct dns_resolver *resolver;
	const struct config *cfg;
	const char *sid;               /* for log lines */
	const char *qid;
	const struct sockaddr *client;
	const char *helo;
	const char *sender;            /* MAIL FROM, "" for <> */
	bool verify;                   /* inbound: SPF, DKIM verification, DMARC */
	const struct dkim_signer_set *signers; /* sign with these (outgoing), or NULL */
	struct psl *const *psl;        /* for DMARC's organizational domains: the worker's
					* current list (a reload replaces it), read at the end */
};

/* The verdict at the end of the data. */
enum smtp_msgauth_action {
	MSGAUTH_ACCEPT,
	MSGAUTH_REJECT, /* 550 with reply (enhanced code and text) */
};

struct smtp_msgauth_verdict {
	enum smtp_msgauth_action action;
	const char *reply;   /* MSGAUTH_REJECT: the DMARC domain, for the 550 5.7.1 text */
	const char *headers; /* CRLF-terminated lines to prepend ("" for none) */
	size_t headers_len;
};

typedef void smtp_msgauth_spf_fn(void *arg, bool fail, const char *reply);
typedef void smtp_msgauth_done_fn(void *arg, const struct smtp_msgauth_verdict *v);

/* A context for one transaction (after MAIL was accepted); the SPF check starts now. NULL
 * when out of memory (the transaction then goes unchecked). */
struct smtp_msgauth *smtp_msgauth_new(const struct smtp_msgauth_params *p);
void smtp_msgauth_free(struct smtp_msgauth *m);

/* Does the session have to wait for SPF before answering MAIL (spf-policy reject-fail)? */
bool smtp_msgauth_mail_waits(const struct smtp_msgauth *m);
/* With spf-policy reject-fail: fn(arg, fail, explanation) once SPF is known (never inside
 * this call); the explanation (printable, at most 200 bytes) goes after the 550 5.7.23. */
void smtp_msgauth_spf_wait(struct smtp_msgauth *m, smtp_msgauth_spf_fn *fn, void *arg);

/* Message bytes as received (CRLF, dot-unstuffed). */
void smtp_msgauth_data(struct smtp_msgauth *m, const char *p, size_t n);
/* The end of the data: fn(arg, verdict) once everything is known (never inside this call). */
void smtp_msgauth_finish(struct smtp_msgauth *m, smtp_msgauth_done_fn *fn, void *arg);

#endif
