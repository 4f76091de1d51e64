/*
 * spf: Sender Policy Framework checks (RFC 7208) of the MAIL FROM or HELO
 * identity of an SMTP client, asynchronously over struct dns_resolver.
 *
 * check_host() of RFC 7208 4 with every mechanism and modifier; the record
 * parser and macro expander are in spf_record.c. The identity (2.3, 2.4):
 * the MAIL FROM domain; for the null sender, or when asked for the HELO
 * identity alone, the HELO name with "postmaster@HELO" as the sender.
 *
 * Contract:
 *   - spf_check_start() returns NULL only when out of memory (no callback);
 *     otherwise the callback runs exactly once, never inside
 *     spf_check_start(), unless spf_check_cancel() is called first. The check
 *     frees itself after its callback returns: cancelling it then, or from
 *     inside the callback, is a bug. The outcome is valid during the callback.
 *   - The query's strings are copied; nothing of it need outlive the call.
 *   - There is no timer here: the caller imposes its time limit (RFC 7208
 *     4.6.4 suggests at least 20 s) and cancels, reporting "temperror".
 *
 * Limits (RFC 7208 4.6.4): 10 terms that query DNS (include, a, mx, ptr,
 * exists, redirect), 2 void lookups (NXDOMAIN or no records), 10 MX names
 * (more is a permerror), the first 10 PTR names; and of our own,
 * SPF_QUERIES_MAX DNS queries per check in all (permerror past it).
 *
 * Security: every DNS answer is untrusted; names and texts are length-checked
 * before use, and only SP and visible ASCII reach the explanation. The header
 * writers quote or escape every value so that no sender, HELO or explanation
 * can add a header line or a field.
 */
#ifndef CARTEIRO_POLICY_SPF_H
#define CARTEIRO_POLICY_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "dns/dns.h"
#include "policy/spf_record.h"

struct event_base;

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

/* DNS queries per check, counting those outside the 10-term limit (MX hosts, PTR names, exp). */
#define SPF_QUERIES_MAX 40
#define SPF_LOOKUPS_MAX 10
#define SPF_VOID_MAX 2
#define SPF_MX_MAX 10
#define SPF_PTR_MAX 10

#define SPF_SENDER_MAX 320
#define SPF_EXPLANATION_MAX 400
#define SPF_MECHANISM_MAX 128
#define SPF_PROBLEM_MAX 200

struct spf_query {
	const struct sockaddr *client; /* AF_INET or AF_INET6 (IPv4-mapped counts as IPv4) */
	const char *sender;            /* MAIL FROM address, "" for <> */
	const char *helo;              /* HELO/EHLO argument as the client gave it */
	const char *receiver;          /* our host name (%{r}, receiver=) */
	bool helo_only;                /* check the HELO identity, whatever the sender */
};

struct spf_outcome {
	enum spf_result result;
	char domain[SPF_DOMAIN_MAX + 1];  /* the identity's domain (as given, may be invalid) */
	char sender[SPF_SENDER_MAX + 1];  /* <sender> of check_host(): postmaster@HELO for HELO */
	bool helo_identity;               /* the HELO name was checked (identity=helo) */
	char explanation[SPF_EXPLANATION_MAX + 1]; /* fail only: exp= text, or the default */
	char mechanism[SPF_MECHANISM_MAX + 1];     /* the term that matched, "" for none */
	char problem[SPF_PROBLEM_MAX + 1];         /* temperror/permerror: what went wrong */
	unsigned lookups;                 /* terms that queried DNS (<= 10) */
	unsigned queries;                 /* DNS queries made */
};

/* The default explanation (RFC 7208 6.2), a macro-string. */
#define SPF_DEFAULT_EXPLANATION "domain of %{o} does not designate %{c} as permitted sender"

struct spf_check;
typedef void spf_done_fn(void *arg, const struct spf_outcome *o);

/*
 * Start checking q's identity. base delivers the outcome when no DNS query
 * is needed (an identity that is not a domain: "none"). NULL on ENOMEM.
 */
struct spf_check *spf_check_start(struct event_base *base, const struct dns_resolver *r,
				  const struct spf_query *q, spf_done_fn *fn, void *arg);
/* Stop a check whose callback has not run: its DNS request is cancelled, no callback. */
void spf_check_cancel(struct spf_check *c);
/*
 * The caller's time limit passed: stop the check as spf_check_cancel() does and fill o with
 * its outcome, temperror, with the identity (domain, sender, helo_identity) it was checking.
 */
void spf_check_timeout(struct spf_check *c, struct spf_outcome *o);

/* "pass", "fail", ... as in Received-SPF and Authentication-Results. */
const char *spf_result_name(enum spf_result r);

/*
 * The Received-SPF header (RFC 7208 9.1), with CRLF, folded at 78 columns
 * where spaces allow: result, comment, client-ip, envelope-from, helo,
 * receiver, identity, and mechanism/problem when known. 0 or -ENOSPC.
 */
int spf_received_header(const struct spf_outcome *o, const struct spf_query *q, char *out,
			size_t len);
/* "spf=pass smtp.mailfrom=example.com" (or smtp.helo=) for Authentication-Results (RFC 8601). */
int spf_auth_results(const struct spf_outcome *o, char *out, size_t len);

#endif
