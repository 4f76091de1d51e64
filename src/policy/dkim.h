/*
 * dkim: DomainKeys Identified Mail (RFC 6376) with RSA-SHA256 and
 * Ed25519-SHA256 (RFC 8463): verification of inbound mail, signing of
 * outbound mail, and the key record a domain publishes.
 *
 * Both directions stream: the SMTP server never holds a whole message. The
 * verifier and the signer take the message bytes as they arrive (CRLF line
 * ends, dot-unstuffed, any chunking), keep the header section (at most
 * DKIM_HEADER_MAX bytes; a larger one makes the message unverifiable and
 * unsigned, never an error) and hash the body incrementally, one running hash
 * per distinct (canonicalization, l=) of the signatures.
 *
 * Verification (RFC 6376 6): every DKIM-Signature field, top to bottom, up to
 * DKIM_SIGS_MAX (the others are counted and ignored). Tags v a b bh c d h i l
 * q s t x (3.5); i= must be d= or a subdomain of it; h= must name From; x=
 * must not be in the past and not before t=; l= limits the body hashed, and a
 * body shorter than l= fails. Header fields named in h= are taken bottom-up,
 * a name listed more often than it occurs signs "nothing" (over-signing,
 * 5.4.2). Keys come from the DNS TXT record "SELECTOR._domainkey.DOMAIN"
 * (3.6.1: v=DKIM1, k=rsa|ed25519, p= (empty: revoked), h=, s=, t=y|s).
 * RFC 8301: rsa-sha1 is refused (result policy), RSA keys under 1024 bits
 * too; RSA keys over 8192 bits are refused (cost). Results are RFC 8601's:
 * pass, fail (body hash mismatch, signature mismatch, expired), neutral
 * (syntax errors, unknown algorithm), policy, temperror (DNS), permerror (no
 * key, bad or revoked key), and none for an unsigned message.
 *
 * Signing (RFC 6376 5): relaxed/relaxed by default, rsa-sha256 or
 * ed25519-sha256 by the key's type, t= set, the header fields that 5.4.1
 * recommends that are present, and the single-instance ones (From, Subject,
 * Date, To, Cc, ...) over-signed so that none can be added on the way.
 *
 * Security: every header field, tag and key record is untrusted input; each
 * parser has a limit and the fuzz target fuzz/fuzz_dkim.c. Values copied
 * into results are checked (domains, selectors) or made printable, so the
 * Authentication-Results text built from them cannot break a header. Private
 * keys are read by the master as root (dkim_signer_set_load) before it drops
 * privileges; on SIGHUP the master (no longer root) reads them again and hands
 * them to the workers (dkim_signer_set_export/import; fuzz/fuzz_dkim.c mode 5).
 */
#ifndef CARTEIRO_POLICY_DKIM_H
#define CARTEIRO_POLICY_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct config;
struct dns_resolver;
struct event_base;

/* Bytes of header section kept; a larger one is not verified or signed. */
#define DKIM_HEADER_MAX (1024 * 1024)
/* Header fields in one section (a larger count is treated like a larger section). */
#define DKIM_FIELDS_MAX 10000
/* DKIM-Signature fields verified per message; the others are ignored. */
#define DKIM_SIGS_MAX 8
/* Tags in one tag-list (signature or key record). */
#define DKIM_TAGS_MAX 64
/* Header field names in one h= tag. */
#define DKIM_H_MAX 256
/* Domain (d=) and selector (s=) text; "s._domainkey.d" must also fit in 253. */
#define DKIM_DOMAIN_MAX 253
/* i= text kept (local part and domain). */
#define DKIM_IDENTITY_MAX 320
/* Decoded signature (an 8192-bit RSA signature is 1024 bytes). */
#define DKIM_SIG_BYTES_MAX 1024
/* Decoded public key of a key record (an 8192-bit RSA SubjectPublicKeyInfo is ~1.1 KB). */
#define DKIM_KEY_BYTES_MAX 2048
/* Characters of b= kept for header.b (RFC 6008 2: at least 8). */
#define DKIM_B_SHORT 8
#define DKIM_REASON_MAX 96
/* A signature header made by dkim_sign_finish, per key. */
#define DKIM_SIGNATURE_TEXT_MAX 4096

enum dkim_result {
	DKIM_NONE,      /* no signature */
	DKIM_PASS,
	DKIM_FAIL,      /* the signature or the body hash does not verify, or it expired */
	DKIM_NEUTRAL,   /* a signature that cannot be processed (syntax, unknown algorithm) */
	DKIM_POLICY,    /* verifiable, but not acceptable (rsa-sha1, short RSA key) */
	DKIM_TEMPERROR, /* the key could not be fetched now */
	DKIM_PERMERROR, /* no key, a bad or revoked key, a header section too large */
};

enum dkim_alg {
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
	DKIM_ALG_RSA_SHA1, /* parsed to be refused (RFC 8301) */
};

enum dkim_canon {
	DKIM_CANON_SIMPLE,
	DKIM_CANON_RELAXED,
};

enum dkim_key_type {
	DKIM_KEY_RSA,
	DKIM_KEY_ED25519,
};

/* "pass", "fail", ... (RFC 8601 2.7.1). */
const char *dkim_result_name(enum dkim_result r);
/* "rsa-sha256", "ed25519-sha256", "rsa-sha1". */
const char *dkim_alg_name(enum dkim_alg a);

/* A selector as dkim-sign and s= take it: dot-separated labels of letters, digits, '-' and '_'
 * (RFC 6376 3.1, with the '_' that real selectors use), at most 63 characters. */
bool dkim_selector_valid(struct slice s);

/* ---- parsers (pure; fuzzed) --------------------------------------------------------------- */

struct dkim_tag {
	struct slice name;  /* tag-name */
	struct slice value; /* tag-value, surrounding FWS removed (inner FWS kept) */
	size_t raw_start;   /* offset (in the parsed text) just after '=' */
};

struct dkim_tag_list {
	size_t n;
	struct dkim_tag tag[DKIM_TAGS_MAX];
};

/*
 * Parse a tag-list (RFC 6376 3.2) into views of in. 0, or -EINVAL for a
 * syntax error, a duplicate tag or more than DKIM_TAGS_MAX tags.
 */
int dkim_tag_list_parse(struct slice in, struct dkim_tag_list *out);
/* The tag named name, or NULL. */
const struct dkim_tag *dkim_tag_find(const struct dkim_tag_list *l, const char *name);

/* A DKIM-Signature field value, checked (RFC 6376 3.5). */
struct dkim_signature {
	enum dkim_alg alg;
	enum dkim_canon hcanon, bcanon;
	char d[DKIM_DOMAIN_MAX + 1];   /* as written */
	char s[DKIM_DOMAIN_MAX + 1];
	char i[DKIM_IDENTITY_MAX + 1]; /* "" when absent (then "@d") */
	char b_short[DKIM_B_SHORT + 1];
	unsigned char b[DKIM_SIG_BYTES_MAX];
	size_t blen;
	unsigned char bh[64];
	size_t bhlen;
	struct slice h[DKIM_H_MAX]; /* header field names, views of the parsed value */
	size_t nh;
	bool has_l, has_t, has_x;
	uint64_t l, t, x; /* l= beyond 2^64-1 saturates */
	size_t b_start, b_end; /* b= value's span (leading FWS included) in the parsed text */
};

/*
 * Parse and check a DKIM-Signature value. 0, or -EINVAL with reason set
 * (syntax, missing or bad tag, i= outside d=, From not in h=, x= before t=,
 * unknown algorithm or canonicalization). d, s, b_short and the algorithm are
 * filled as far as they were read, for the result. Time is not checked here.
 */
int dkim_signature_parse(struct slice value, struct dkim_signature *sig, char *reason,
			 size_t reasonlen);

/* A key record (RFC 6376 3.6.1). */
struct dkim_key_record {
	enum dkim_key_type k;
	bool revoked; /* empty p= */
	bool testing; /* t=y */
	bool strict;  /* t=s: i= must be exactly d= */
	unsigned char key[DKIM_KEY_BYTES_MAX]; /* decoded p= */
	size_t keylen;
};

/* Parse a key record (the TXT strings joined). 0, or -EINVAL with reason set. */
int dkim_key_record_parse(struct slice txt, struct dkim_key_record *out, char *reason,
			  size_t reasonlen);

/* Canonicalize one header field (name ':' value, folded, CRLF-terminated or not) into out:
 * simple keeps it, relaxed per RFC 6376 3.4.2 (with a CRLF when crlf). 0 or -ENOSPC/-ENOMEM. */
int dkim_canon_header(enum dkim_canon c, struct slice field, bool crlf, struct buf *out);

/*
 * Body canonicalizer (RFC 6376 3.4.3, 3.4.4) fed in chunks of any size: the
 * canonical bytes go to emit, at most limit of them (l=), trailing empty
 * lines are dropped, a missing final CRLF is added, and an empty body is
 * "\r\n" (simple) or nothing (relaxed).
 */
typedef void dkim_emit_fn(void *ctx, const char *p, size_t n);
struct dkim_body_canon {
	enum dkim_canon canon;
	uint64_t limit;  /* UINT64_MAX: whole body */
	uint64_t total;  /* canonical bytes so far, counted past limit too */
	uint64_t hashed; /* bytes handed to emit (<= limit) */
	uint64_t empty_lines;
	bool cr, content, wsp;
	dkim_emit_fn *emit;
	void *ctx;
	size_t nstage;
	char stage[1024]; /* bytes not yet handed to emit */
};
void dkim_body_canon_init(struct dkim_body_canon *b, enum dkim_canon canon, uint64_t limit,
			  dkim_emit_fn *emit, void *ctx);
void dkim_body_canon_update(struct dkim_body_canon *b, const char *p, size_t n);
void dkim_body_canon_finish(struct dkim_body_canon *b);

/* ---- verification ------------------------------------------------------------------------- */

struct dkim_sig_result {
	enum dkim_result result;
	char d[DKIM_DOMAIN_MAX + 1]; /* "" when unreadable; printable ASCII only */
	char s[DKIM_DOMAIN_MAX + 1];
	char a[24];
	char i[DKIM_IDENTITY_MAX + 1];
	char b[DKIM_B_SHORT + 1];
	char reason[DKIM_REASON_MAX]; /* "" for pass */
	bool testing;                 /* the key record says t=y */
};

struct dkim_results {
	size_t n;            /* signatures verified; 0 and !unverifiable: none */
	size_t ignored;      /* signatures past DKIM_SIGS_MAX */
	bool unverifiable;   /* the header section was over DKIM_HEADER_MAX (or DKIM_FIELDS_MAX) */
	struct dkim_sig_result sig[DKIM_SIGS_MAX];
};

struct dkim_verify;
/* Valid during the call only; v may be freed inside it. */
typedef void dkim_verify_done_fn(void *arg, const struct dkim_results *res);

/* A verifier for one message; NULL when out of memory. */
struct dkim_verify *dkim_verify_new(void);
/* Message bytes as received (CRLF, dot-unstuffed), any chunking. 0, or -ENOMEM, -EINVAL after
 * finish. A header section over the limit is no error: the message is just unverifiable. */
int dkim_verify_update(struct dkim_verify *v, const char *p, size_t n);
/*
 * The end of the message: fetch the keys through r and call fn(arg, results)
 * once, never inside this call (base runs the deferred call when no lookup is
 * needed). r and base must outlive v's pending work.
 */
void dkim_verify_finish(struct dkim_verify *v, struct event_base *base,
			const struct dns_resolver *r, dkim_verify_done_fn *fn, void *arg);
/* Free; pending lookups are cancelled and fn will not be called. NULL is fine. */
void dkim_verify_free(struct dkim_verify *v);
/*
 * The caller's time limit (msgauth-timeout) ran out after finish: cancel the
 * lookups still pending, make their signatures temperror ("key lookup timed
 * out"), and return the results at once; fn will not be called. Valid while v
 * lives. There is no timer in here: this is how the caller imposes one.
 */
const struct dkim_results *dkim_verify_timeout(struct dkim_verify *v);
/* Verify at this Unix time instead of the clock's (tests). */
void dkim_verify_set_time(struct dkim_verify *v, int64_t now);

/*
 * The From header fields, for DMARC (RFC 7489 6.6.1): once the header section
 * has been read, *count gets how many there were and *first the raw value of
 * the first (after the colon, folding kept, no final CRLF; valid while v
 * lives). 0, -EAGAIN before the header section ended, -E2BIG when it was over
 * the limit (nothing is known then).
 */
int dkim_verify_from(const struct dkim_verify *v, size_t *count, struct slice *first);

/*
 * RFC 8601 2.7.1 method results, one per signature ("dkim=none" when there
 * is none), joined by ";\r\n\t" so that each starts a folded line:
 *   dkim=pass header.d=example.org header.s=sel header.a=rsa-sha256 header.b=AbCdEfGh
 *   dkim=fail reason="body hash mismatch" header.d=...
 * 0, or -ENOSPC when len is too small (out then holds "").
 */
int dkim_auth_results(const struct dkim_results *res, char *out, size_t len);

/* ---- signing ------------------------------------------------------------------------------ */

struct dkim_signer_set;

/* An empty set, with one reference (its owner's); NULL when out of memory. */
struct dkim_signer_set *dkim_signer_set_new(void);
/* One more holder of set (a signer takes one: a set replaced meanwhile lives on for it). */
const struct dkim_signer_set *dkim_signer_set_ref(const struct dkim_signer_set *set);
/* Drop a reference; the last one frees the set. */
void dkim_signer_set_free(const struct dkim_signer_set *set);
/*
 * The master hands re-read keys to the workers (SIGHUP) in this form: per key a line
 * "domain selector length" and the key's PEM. export appends to out (0, -ENOMEM or
 * -ENOSPC); import builds a set (0, or -errno with a message in err).
 */
int dkim_signer_set_export(const struct dkim_signer_set *set, struct buf *out);
/* The largest exported set handed over (one datagram): some 300 RSA-4096 keys. */
#define DKIM_SIGNER_SET_EXPORT_MAX (1024 * 1024)
int dkim_signer_set_import(const char *data, size_t len, struct dkim_signer_set **out,
			   char *err, size_t errlen);
size_t dkim_signer_set_count(const struct dkim_signer_set *set);
/*
 * Read the PEM private key in keyfile (RSA of 1024 to 8192 bits, or Ed25519)
 * for domain and selector. 0, or -errno/-EINVAL with a message naming the
 * file in err. *exposed tells a file readable by group or others.
 */
int dkim_signer_set_add(struct dkim_signer_set *set, const char *domain, const char *selector,
			const char *keyfile, bool *exposed, char *err, size_t errlen);
/*
 * The keys of cfg's dkim-sign lines, read now (the master does it as root).
 * *out NULL when none is configured. 0 or -errno with the first error in err;
 * warnings (a key file others can read, a short RSA key) go to warn(ctx, msg).
 */
int dkim_signer_set_load(const struct config *cfg, struct dkim_signer_set **out,
			 void (*warn)(void *ctx, const char *msg), void *ctx, char *err,
			 size_t errlen);

struct dkim_sign_opts {
	enum dkim_canon hcanon, bcanon; /* default relaxed/relaxed */
	int64_t time;                   /* t=; 0: now */
	uint64_t expire;                /* seconds until x=; 0: no x= */
	bool body_length;               /* add l= */
};

struct dkim_sign;
/* A signer for one message with keys (which must outlive it); NULL when out of memory. */
struct dkim_sign *dkim_sign_new(const struct dkim_signer_set *keys);
struct dkim_sign *dkim_sign_new_opts(const struct dkim_signer_set *keys,
				     const struct dkim_sign_opts *opts);
/* Message bytes, as dkim_verify_update. 0 or -ENOMEM / -EINVAL after finish. */
int dkim_sign_update(struct dkim_sign *s, const char *p, size_t n);
/*
 * The DKIM-Signature header field(s), folded and CRLF-terminated, into out
 * (NUL-terminated): one per key of the most specific dkim-sign domain that is
 * the From domain or a parent of it, to be put on top of the message. *outlen
 * 0 when none applies (no such key, no single From with a domain, header
 * section too large or starting with a continuation line). 0, -ENOSPC, or
 * -EIO (OpenSSL failed).
 */
int dkim_sign_finish(struct dkim_sign *s, char *out, size_t len, size_t *outlen);
/* The d= signed with, after finish ("" when nothing was signed), and why not. */
const char *dkim_sign_domain(const struct dkim_sign *s);
const char *dkim_sign_skip_reason(const struct dkim_sign *s);
void dkim_sign_free(struct dkim_sign *s);

/* ---- keys ------------------------------------------------------------------------------------ */

/*
 * Make a new private key (RSA of bits, or Ed25519) and write it as PEM to path
 * (created, mode 0600, never overwriting); record gets the key record text
 * "v=DKIM1; k=rsa; p=..." to publish. 0 or -errno with a message in err.
 */
int dkim_keygen(enum dkim_key_type type, unsigned bits, const char *path, struct buf *record,
		char *err, size_t errlen);
/* Write text as a zone-file TXT value: ( "..." "..." ) of at most 255-byte strings, each on
 * its own line after the first. 0 or -ENOSPC/-ENOMEM. */
int dkim_zone_strings(struct slice text, struct buf *out);

#endif
