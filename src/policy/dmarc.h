/*
 * dmarc: Domain-based Message Authentication, Reporting and Conformance
 * (RFC 7489) for inbound mail: the author domain from the From header, the
 * policy record in DNS, identifier alignment, and the disposition.
 *
 * The module takes the results of SPF and DKIM as plain inputs and decides
 * nothing about the SMTP session: the caller (the session, at the end of
 * DATA) turns the outcome into an action with dmarc_action() and the
 * dmarc-reject-policy key, and adds dmarc_auth_results() to its
 * Authentication-Results header.
 *
 * 1. Author domain (RFC 7489 3.1, 6.6.1; RFC 5322 3.4, 3.6.2, 4.4; RFC 6854
 *    groups in From; RFC 6532 UTF-8). Each From field's value goes through
 *    dmarc_from_add(): a full RFC 5322 address-list parser (display names,
 *    quoted strings, nested comments, folding, group syntax, obsolete routes,
 *    phrases and local parts). dmarc_from_result() says whether the message
 *    has exactly one author domain. Zero or several From fields, a field that
 *    does not parse, a mailbox whose domain is an address literal or not a
 *    DNS name, no mailbox at all, or mailboxes of two different domains are
 *    all "cannot determine": no lookup is made, and the caller decides (RFC
 *    7489 6.6.1 lets a receiver reject such messages; carteiro records
 *    dmarc=permerror, see dmarc_outcome_undetermined()). Several mailboxes of
 *    one domain are that one domain. A UTF-8 domain is turned into A-labels.
 *
 * 2. The record (RFC 7489 6.3, 6.4): dmarc_record_parse(), pure. v=DMARC1
 *    must be the first tag ("DMARC1" case-sensitive: the ABNF uses %x); tag
 *    names and keyword values are case-insensitive (ABNF quoted strings);
 *    tag-list syntax of DKIM (RFC 6376 3.2). Unknown tags are ignored; a tag
 *    given twice keeps its first value. An invalid value of adkim, aspf,
 *    pct, fo, rf or ri leaves that tag's default (6.3: "syntax errors in the
 *    remainder of the record SHOULD be discarded in favor of default
 *    values"). A missing or invalid p, or an invalid sp: with at least one
 *    valid rua URI the record counts as p=none (6.6.3 step 6), else the
 *    record is not usable. p may come anywhere after v (6.3 asks for it second;
 *    real records sometimes put it later, and nothing is ambiguous).
 *
 * 3. Policy discovery (6.6.3), asynchronous over struct dns_resolver: TXT
 *    "_dmarc.<from domain>"; if no record there starts with v=DMARC1 (none,
 *    NXDOMAIN, NODATA), TXT "_dmarc.<organizational domain>" when that is a
 *    different name (psl_org_domain; a From domain that is itself a public
 *    suffix is its own organizational domain). Exactly one DMARC record must
 *    remain. Results:
 *      none       no DMARC record at either name: no policy
 *      temperror  a lookup failed temporarily (6.6.3 leaves DNS errors to the
 *                 receiver; the message may be tried again later)
 *      permerror  several DMARC records at one name (step 5), or a record
 *                 that is not usable (step 6): no policy is applied, as
 *                 the RFC says, and the result names the domain's mistake
 *      pass/fail  a usable record was found and the message is (not) aligned
 *
 * 4. Evaluation (3.1, 6.6.2, 6.6.4): DKIM is aligned when a signature that
 *    verified has d= equal to the From domain (adkim=s) or of the same
 *    organizational domain (adkim=r); SPF likewise with the domain SPF
 *    authenticated (MAIL FROM's, or HELO's for the null sender), only when
 *    SPF passed. Either alignment passes. The policy is p, or sp when the
 *    record came from the organizational domain for a From subdomain (and sp
 *    was given). pct: a failing message is sampled with probability pct/100;
 *    one that is not sampled gets the next lesser policy (reject ->
 *    quarantine, quarantine -> none: 6.6.4). The disposition is what the
 *    policy asks for this message (none for anything but fail).
 *
 * Contract of dmarc_check_start(): the callback never runs inside the call,
 * runs exactly once unless dmarc_check_cancel() comes first, and gets an
 * outcome valid only during the callback; the check is freed after its
 * callback returns (do not cancel it then). NULL (no callback) when out of
 * memory, or when in->from_domain is not an ASCII domain name (errno
 * ENOMEM/EINVAL): the parser gives only valid ones. There is no timer here:
 * the caller imposes its limit (msgauth-timeout) with dmarc_check_timeout(),
 * which cancels the check and gives its temperror outcome.
 *
 * Security: every input is untrusted (the From header, the DNS answers, and
 * the SPF/DKIM domains that came from the client). Parsers work on
 * (ptr, len) with limits on lengths and nesting, never recurse, and keep no
 * pointer into their input; the problem texts of outcomes hold only fixed
 * words and validated domain names, yet callers still escape them in logs.
 */
#ifndef CARTEIRO_POLICY_DMARC_H
#define CARTEIRO_POLICY_DMARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "dns/dns.h"
#include "policy/psl.h"
#include "util/buf.h"

#define DMARC_DOMAIN_MAX 253      /* a domain name in text form, no trailing dot */
#define DMARC_PROBLEM_MAX 640     /* outcome.problem and record.problem: two domains fit */
#define DMARC_URIS_MAX 512        /* rua and ruf text kept from a record */
#define DMARC_FROM_VALUE_MAX 16384 /* longest From field value parsed */
#define DMARC_COMMENT_DEPTH_MAX 32 /* nested comments in a From field */

/* Value of the quarantine header (its name is the dmarc-quarantine-header key). */
#define DMARC_QUARANTINE_VALUE "dmarc"

/* ---- the author domain (From) ----------------------------------------------------------------- */

enum dmarc_from_status {
	DMARC_FROM_OK,               /* one From field, one author domain */
	DMARC_FROM_MISSING,          /* no From field */
	DMARC_FROM_MULTIPLE_FIELDS,  /* more than one From field */
	DMARC_FROM_SYNTAX,           /* the field does not parse (or is too long) */
	DMARC_FROM_NO_DOMAIN,        /* a mailbox with an address literal or a non-DNS domain */
	DMARC_FROM_MULTIPLE_DOMAINS, /* mailboxes of different domains */
	DMARC_FROM_EMPTY,            /* no mailbox (an empty field or an empty group) */
};

/* What the From fields of one message said; fill with dmarc_from_add(). */
struct dmarc_from {
	unsigned nfields;     /* From fields seen */
	unsigned nmailboxes;  /* mailboxes in them (those of groups included) */
	bool syntax_error;    /* a field did not parse */
	bool no_domain;       /* a mailbox had no usable domain */
	bool several_domains; /* mailboxes of different domains */
	/* The domain of the first mailbox, lower case, in A-labels ("" before one). */
	char domain[DMARC_DOMAIN_MAX + 1];
};

void dmarc_from_init(struct dmarc_from *f);
/*
 * Add one From field's value (what follows "From:", folding CRLFs included;
 * a final CRLF is ignored). 0, or -EINVAL when it does not parse (recorded
 * in f: dmarc_from_result() says DMARC_FROM_SYNTAX).
 */
int dmarc_from_add(struct dmarc_from *f, struct slice value);
/* The verdict on everything added; the domain is f->domain when DMARC_FROM_OK. */
enum dmarc_from_status dmarc_from_result(const struct dmarc_from *f);
/* "ok", "missing", "multiple-fields", ... for logs. */
const char *dmarc_from_status_name(enum dmarc_from_status st);
/*
 * Is this header field (name ":" value, as in the message) a From field? The
 * name is compared case-insensitively and may be followed by SP/HTAB before
 * the colon (RFC 5322 4.5, obs-optional), so that "From :" is not missed;
 * *value gets what follows the colon.
 */
bool dmarc_from_field(struct slice field, struct slice *value);

/* ---- the record ------------------------------------------------------------------------------- */

enum dmarc_policy {
	DMARC_POLICY_UNSET = 0, /* no policy: no record, or not given (sp) or invalid */
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

/* Failure reporting options (fo=). */
enum {
	DMARC_FO_0 = 1 << 0, /* report when all mechanisms fail to align (the default) */
	DMARC_FO_1 = 1 << 1, /* when any fails */
	DMARC_FO_D = 1 << 2, /* when DKIM fails */
	DMARC_FO_S = 1 << 3, /* when SPF fails */
};

struct dmarc_record {
	enum dmarc_policy p;  /* UNSET when missing or invalid (see usable) */
	enum dmarc_policy sp; /* UNSET when absent: p applies to subdomains */
	bool sp_invalid;      /* sp was given with a bad value */
	bool adkim_strict;    /* adkim=s (default r) */
	bool aspf_strict;     /* aspf=s (default r) */
	unsigned pct;         /* 0..100, default 100 */
	uint32_t ri;          /* report interval, seconds, default 86400 */
	unsigned fo;          /* DMARC_FO_* bits, default DMARC_FO_0 */
	bool rf_afrf;         /* rf lists afrf (the default, and the only format defined) */
	unsigned nrua, nruf;  /* syntactically valid URIs in rua and ruf */
	char rua[DMARC_URIS_MAX + 1]; /* as published (cut to fit), "" when absent */
	char ruf[DMARC_URIS_MAX + 1];
	/* p valid (and sp valid or absent), or p=none by the rua rule of 6.6.3 step 6. */
	bool usable;
	bool p_from_rua; /* p=none was assumed by that rule */
	char problem[DMARC_PROBLEM_MAX]; /* the first thing wrong with the record, or "" */
};

/*
 * Parse a TXT record. 0 when it is a DMARC record (it starts with the
 * v=DMARC1 tag; rec->usable says whether it can be applied), -EINVAL when it
 * is not one (record selection discards it). Pure.
 */
int dmarc_record_parse(struct slice txt, struct dmarc_record *rec);

/* ---- evaluation ------------------------------------------------------------------------------- */

enum dmarc_result {
	DMARC_RESULT_NONE,
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,
	DMARC_RESULT_PERMERROR,
};

/* What SPF and DKIM found about one message. Strings are borrowed for the call only. */
struct dmarc_input {
	const char *from_domain;         /* the author domain (struct dmarc_from.domain) */
	bool spf_pass;                   /* SPF result pass */
	const char *spf_domain;          /* MAIL FROM's domain, or HELO's for <>; may be NULL */
	const char *const *dkim_domains; /* d= of every signature that verified */
	size_t ndkim;
	/* pct sampling: a random draw in 0..99 unless fixed_draw (tests): sampled when draw < pct. */
	bool fixed_draw;
	unsigned draw;
};

struct dmarc_outcome {
	enum dmarc_result result;
	enum dmarc_policy policy;      /* the policy for this message: p, or sp for a subdomain */
	enum dmarc_policy disposition; /* what it asks for this message after pct (NONE unless fail) */
	enum dmarc_policy p, sp;       /* as the record said (UNSET when absent) */
	unsigned pct;
	bool sampled;                  /* the pct draw picked this message */
	char from_domain[DMARC_DOMAIN_MAX + 1];
	char org_domain[DMARC_DOMAIN_MAX + 1];    /* of the From domain */
	char record_domain[DMARC_DOMAIN_MAX + 1]; /* where the record was, "" when none */
	bool spf_aligned, dkim_aligned; /* by the record's modes (relaxed when there is none) */
	char problem[DMARC_PROBLEM_MAX];         /* why, for none/temperror/permerror; or "" */
};

struct dmarc_check;
typedef void dmarc_done_fn(void *arg, const struct dmarc_outcome *o);

/* Start the check of one message (see the contract above). psl must not be NULL. */
struct dmarc_check *dmarc_check_start(const struct dns_resolver *r, const struct psl *psl,
				      const struct dmarc_input *in, dmarc_done_fn *fn, void *arg);
/* Stop a check whose callback has not run: it never will. */
void dmarc_check_cancel(struct dmarc_check *c);
/*
 * The caller's time limit passed: stop the check as dmarc_check_cancel() does
 * and fill o with its outcome, temperror (From and organizational domains set).
 */
void dmarc_check_timeout(struct dmarc_check *c, struct dmarc_outcome *o);

/* The outcome for a message without one author domain (st != DMARC_FROM_OK): permerror. */
void dmarc_outcome_undetermined(struct dmarc_outcome *o, enum dmarc_from_status st);

/*
 * Are domains a and b aligned (RFC 7489 3.1): equal (ASCII case ignored) when
 * strict, of the same organizational domain when relaxed. A name that is not
 * a domain is aligned with nothing.
 */
bool dmarc_aligned(const struct psl *psl, const char *a, const char *b, bool strict);

/* What carteiro does with a message. */
enum dmarc_action {
	DMARC_ACTION_ACCEPT,     /* deliver; only Authentication-Results */
	DMARC_ACTION_QUARANTINE, /* deliver with the quarantine header */
	DMARC_ACTION_REJECT,     /* 550 5.7.1 at the end of DATA */
};

/*
 * The action for an outcome: a quarantine disposition is always
 * DMARC_ACTION_QUARANTINE; a reject disposition is what mode (the
 * dmarc-reject-policy key) says: reject, quarantine, or accept (tag).
 */
enum dmarc_action dmarc_action(const struct dmarc_outcome *o, enum dmarc_reject_policy mode);

/*
 * The Authentication-Results method fragment (RFC 8601 2.7, RFC 7489 11.2):
 *   "dmarc=fail (p=reject dis=reject) header.from=example.com"
 *   "dmarc=pass (p=none dis=none) header.from=example.com"
 *   "dmarc=none header.from=example.com", "dmarc=permerror"
 * with " sp=" in the comment when sp applied. 0, or -ENOSPC when it does not
 * fit in len bytes (-ENOMEM), with out "".
 */
int dmarc_auth_results(const struct dmarc_outcome *o, char *out, size_t len);

/* "none", "pass", "fail", "temperror", "permerror". */
const char *dmarc_result_name(enum dmarc_result r);
/* "none", "quarantine", "reject"; "unset" for DMARC_POLICY_UNSET. */
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
