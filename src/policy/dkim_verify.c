/*
 * dkim_verify: verification of the DKIM signatures of a streamed message
 * (RFC 6376 6, RFC 8463, RFC 8301), and their Authentication-Results text
 * (RFC 8601 2.7.1). See dkim.h for the contract.
 *
 * Flow: the header section is kept; when it ends, each DKIM-Signature (up to
 * DKIM_SIGS_MAX) is parsed, the hash of its signed header fields is computed
 * at once (6.1.3: fields bottom-up, then the signature field itself with b=
 * emptied, without its CRLF), and the body is hashed as it streams in, one
 * running hash per distinct (body canonicalization, l=). At the end the keys
 * are fetched (6.1.2), all at once, and each signature is checked against its
 * key as its answer arrives; the caller's function runs once after the last.
 *
 * Ed25519 (RFC 8463 3) signs the SHA-256 hash of the header data (PureEdDSA
 * over the 32-byte digest); RSA signs it with PKCS#1 v1.5 (RFC 8017 8.2).
 *
 * Security: a signature costs one DNS lookup and at most one public-key
 * operation; at most DKIM_SIGS_MAX are looked at, RSA keys are limited to
 * 8192 bits, and identical body hashes are shared, so a hostile message costs
 * a bounded multiple of hashing it once per canonicalization.
 */
#include "policy/dkim.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns/dns.h"
#include "policy/dkim_message.h"
#include "util/str.h"

#define RSA_BITS_MIN 1024 /* RFC 8301 3.2 */
#define RSA_BITS_MAX 8192
#define DOMAINKEY "._domainkey."

struct body_hash {
	enum dkim_canon canon;
	uint64_t limit;
	EVP_MD_CTX *md;
	struct dkim_body_canon c;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned digest_len;
};

struct vsig {
	struct dkim_verify *v;
	struct dkim_signature sig;
	struct dkim_sig_result *res;
	bool pending; /* parsed and hashed: waits for its key */
	struct body_hash *body;
	unsigned char hdr[EVP_MAX_MD_SIZE]; /* SHA-256 of the signed header data */
	struct dns_req *req;
};

struct dkim_verify {
	struct dkim_message msg;
	struct vsig sig[DKIM_SIGS_MAX];
	size_t nsig;
	struct body_hash body[DKIM_SIGS_MAX];
	size_t nbody;
	struct dkim_results results;
	size_t from_count;
	size_t from_field;
	bool finished;
	bool now_set;
	int64_t now;
	struct dns_resolver resolver;
	struct event *ev_done;
	size_t outstanding;
	dkim_verify_done_fn *fn;
	void *arg;
};

static void set_reason(struct dkim_sig_result *r, enum dkim_result result, const char *reason)
{
	r->result = result;
	str_copy(r->reason, sizeof r->reason, reason);
}

struct dkim_verify *dkim_verify_new(void)
{
	struct dkim_verify *v = calloc(1, sizeof *v);
	if (!v)
		return NULL;
	dkim_message_init(&v->msg);
	return v;
}

void dkim_verify_set_time(struct dkim_verify *v, int64_t now)
{
	v->now = now;
	v->now_set = true;
}

static void md_update(void *ctx, const char *p, size_t n)
{
	EVP_DigestUpdate(ctx, p, n);
}

/* The running body hash for (canon, limit), shared by the signatures that agree on both. */
static struct body_hash *body_hash_get(struct dkim_verify *v, enum dkim_canon canon,
				       uint64_t limit)
{
	for (size_t i = 0; i < v->nbody; i++)
		if (v->body[i].canon == canon && v->body[i].limit == limit)
			return &v->body[i];
	struct body_hash *b = &v->body[v->nbody];
	b->md = EVP_MD_CTX_new();
	if (!b->md || EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(b->md);
		b->md = NULL;
		return NULL;
	}
	b->canon = canon;
	b->limit = limit;
	dkim_body_canon_init(&b->c, canon, limit, md_update, b->md);
	v->nbody++;
	return b;
}

/* SHA-256 of the signed header fields and of the signature field itself without b=. */
static int header_hash(struct dkim_verify *v, struct vsig *s, const struct dkim_field *f)
{
	struct dkim_message *m = &v->msg;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct buf copy, canon;
	int r = -ENOMEM;

	buf_init(&copy, DKIM_HEADER_MAX);
	buf_init(&canon, DKIM_HEADER_MAX + 2);
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	r = dkim_message_hash_fields(m, s->sig.h, s->sig.nh, s->sig.hcanon, md_update, md);
	if (r < 0)
		goto out;
	/* The field with the b= value (from just after '=') cut out (3.7). */
	struct slice text = dkim_field_text(m, f);
	size_t cut = f->value_off + s->sig.b_start, resume = f->value_off + s->sig.b_end;
	if ((r = buf_append(&copy, text.ptr, cut)) < 0 ||
	    (r = buf_append(&copy, text.ptr + resume, text.len - resume)) < 0 ||
	    (r = dkim_canon_header(s->sig.hcanon, buf_slice(&copy), false, &canon)) < 0)
		goto out;
	md_update(md, canon.data, canon.len);
	r = EVP_DigestFinal_ex(md, s->hdr, NULL) == 1 ? 0 : -ENOMEM;
out:
	EVP_MD_CTX_free(md);
	buf_free(&copy);
	buf_free(&canon);
	return r;
}

static int64_t now_of(const struct dkim_verify *v)
{
	return v->now_set ? v->now : (int64_t)time(NULL);
}

/* One DKIM-Signature field: parse, check what needs no key, hash its headers. */
static void signature_start(struct dkim_verify *v, const struct dkim_field *f)
{
	struct vsig *s = &v->sig[v->nsig];
	struct dkim_sig_result *res = &v->results.sig[v->nsig];
	char reason[DKIM_REASON_MAX];

	s->v = v;
	s->res = res;
	v->nsig++;
	v->results.n = v->nsig;
	int r = dkim_signature_parse(dkim_field_value(&v->msg, f), &s->sig, reason, sizeof reason);
	memcpy(res->d, s->sig.d, sizeof res->d);
	memcpy(res->s, s->sig.s, sizeof res->s);
	memcpy(res->b, s->sig.b_short, sizeof res->b);
	memcpy(res->i, s->sig.i, sizeof res->i);
	if (r < 0) {
		if (strcmp(reason, "unknown algorithm") != 0)
			str_copy(res->a, sizeof res->a, dkim_alg_name(s->sig.alg));
		set_reason(res, DKIM_NEUTRAL, reason);
		return;
	}
	str_copy(res->a, sizeof res->a, dkim_alg_name(s->sig.alg));
	if (s->sig.alg == DKIM_ALG_RSA_SHA1) {
		set_reason(res, DKIM_POLICY, "rsa-sha1 is not accepted (RFC 8301)");
		return;
	}
	if (s->sig.has_x && s->sig.x < (uint64_t)now_of(v)) {
		set_reason(res, DKIM_FAIL, "signature expired");
		return;
	}
	s->body = body_hash_get(v, s->sig.bcanon, s->sig.has_l ? s->sig.l : UINT64_MAX);
	if (!s->body || (r = header_hash(v, s, f)) < 0) {
		set_reason(res, DKIM_TEMPERROR, "out of memory");
		return;
	}
	s->pending = true;
}

static void header_section_done(struct dkim_verify *v)
{
	struct dkim_message *m = &v->msg;

	for (size_t i = 0; i < m->nfields; i++) {
		const struct dkim_field *f = &m->fields[i];
		if (dkim_field_is(m, f, SLICE_LIT("From")) && v->from_count++ == 0)
			v->from_field = i;
		if (!dkim_field_is(m, f, SLICE_LIT("DKIM-Signature")))
			continue;
		if (v->nsig == DKIM_SIGS_MAX)
			v->results.ignored++;
		else
			signature_start(v, f);
	}
}

int dkim_verify_update(struct dkim_verify *v, const char *p, size_t n)
{
	if (v->finished)
		return -EINVAL;
	int r = dkim_message_feed(&v->msg, &p, &n);
	if (r < 0)
		return r;
	if (r == 1)
		header_section_done(v);
	if (v->msg.state == DKIM_MSG_BODY && n > 0)
		for (size_t i = 0; i < v->nbody; i++)
			dkim_body_canon_update(&v->body[i].c, p, n);
	return 0;
}

int dkim_verify_from(const struct dkim_verify *v, size_t *count, struct slice *first)
{
	*count = 0;
	*first = (struct slice){ "", 0 };
	if (v->msg.state == DKIM_MSG_TOO_BIG)
		return -E2BIG;
	if (v->msg.state == DKIM_MSG_HEAD)
		return -EAGAIN;
	*count = v->from_count;
	if (v->from_count)
		*first = dkim_field_value(&v->msg, &v->msg.fields[v->from_field]);
	return 0;
}

/* ---- keys and the verdict ------------------------------------------------------------------ */

/* The public key of a record of type k, or NULL with a reason. */
static EVP_PKEY *key_load(const struct dkim_key_record *kr, const char **why)
{
	const unsigned char *p = kr->key;
	EVP_PKEY *pkey = NULL;

	if (kr->k == DKIM_KEY_ED25519) {
		/* RFC 8463 4: p= is the bare 32-byte public key. */
		if (kr->keylen == 32)
			pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, kr->key, 32);
		*why = "bad ed25519 key";
		return pkey;
	}
	/* 3.6.1: an RSA key is a SubjectPublicKeyInfo; some publish the bare RSAPublicKey. */
	pkey = d2i_PUBKEY(NULL, &p, (long)kr->keylen);
	if (pkey && (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA || p != kr->key + kr->keylen)) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	if (!pkey) {
		p = kr->key;
		pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)kr->keylen);
		if (pkey && p != kr->key + kr->keylen) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	}
	*why = "bad RSA key";
	return pkey;
}

static bool signature_ok(const struct vsig *s, EVP_PKEY *pkey)
{
	bool ok = false;

	if (s->sig.alg == DKIM_ALG_ED25519_SHA256) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) == 1 &&
		     EVP_DigestVerify(md, s->sig.b, s->sig.blen, s->hdr, 32) == 1;
		EVP_MD_CTX_free(md);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
		ok = ctx && EVP_PKEY_verify_init(ctx) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		     EVP_PKEY_verify(ctx, s->sig.b, s->sig.blen, s->hdr, 32) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	return ok;
}

/* The verdict for s with the key record kr (6.1.2, 6.1.3). */
static void check_with_key(struct vsig *s, const struct dkim_key_record *kr)
{
	struct dkim_sig_result *res = s->res;
	const char *why = NULL;
	bool rsa = s->sig.alg == DKIM_ALG_RSA_SHA256;

	res->testing = kr->testing;
	if (kr->revoked) {
		set_reason(res, DKIM_PERMERROR, "key revoked");
		return;
	}
	if ((kr->k == DKIM_KEY_RSA) != rsa) {
		set_reason(res, DKIM_PERMERROR, "key type does not match a=");
		return;
	}
	if (kr->strict && s->sig.i[0]) {
		const char *at = strrchr(s->sig.i, '@');
		if (!at || str_casecmp(at + 1, s->sig.d) != 0) {
			set_reason(res, DKIM_PERMERROR, "i= must be d= for this key (t=s)");
			return;
		}
	}
	EVP_PKEY *pkey = key_load(kr, &why);
	if (!pkey) {
		set_reason(res, DKIM_PERMERROR, why);
		return;
	}
	int bits = EVP_PKEY_get_bits(pkey);
	if (rsa && bits < RSA_BITS_MIN)
		set_reason(res, DKIM_POLICY, "RSA key shorter than 1024 bits (RFC 8301)");
	else if (rsa && bits > RSA_BITS_MAX)
		set_reason(res, DKIM_POLICY, "RSA key longer than 8192 bits");
	else if (s->sig.has_l && s->body->c.total < s->sig.l)
		set_reason(res, DKIM_FAIL, "body shorter than l=");
	else if (s->sig.bhlen != s->body->digest_len ||
		 memcmp(s->sig.bh, s->body->digest, s->sig.bhlen) != 0)
		set_reason(res, DKIM_FAIL, "body hash mismatch");
	else if (!signature_ok(s, pkey))
		set_reason(res, DKIM_FAIL, "signature did not verify");
	else
		set_reason(res, DKIM_PASS, "");
	EVP_PKEY_free(pkey);
}

static void deliver(struct dkim_verify *v)
{
	if (v->fn)
		v->fn(v->arg, &v->results); /* may free v */
}

static void on_key(void *arg, const struct dns_result *dr)
{
	struct vsig *s = arg;
	struct dkim_verify *v = s->v;
	struct dkim_key_record kr;
	char reason[DKIM_REASON_MAX] = "no key for signature";
	bool found = false;

	s->req = NULL;
	s->pending = false;
	switch (dr->status) {
	case DNS_OK:
		/* 3.6.2.2: several records make the result undefined; the first good one is used. */
		for (size_t i = 0; i < dr->n && !found; i++)
			found = dkim_key_record_parse((struct slice){ dr->rr[i].text, dr->rr[i].len },
						      &kr, reason, sizeof reason) == 0;
		if (found)
			check_with_key(s, &kr);
		else
			set_reason(s->res, DKIM_PERMERROR, reason);
		break;
	case DNS_TEMPFAIL:
		set_reason(s->res, DKIM_TEMPERROR, "key lookup failed");
		break;
	default:
		set_reason(s->res, DKIM_PERMERROR, reason);
		break;
	}
	if (--v->outstanding == 0)
		deliver(v);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	deliver(arg);
}

void dkim_verify_finish(struct dkim_verify *v, struct event_base *base,
			const struct dns_resolver *r, dkim_verify_done_fn *fn, void *arg)
{
	v->fn = fn;
	v->arg = arg;
	v->resolver = *r;
	if (!v->finished) {
		v->finished = true;
		if (dkim_message_end(&v->msg) == 1)
			header_section_done(v);
		for (size_t i = 0; i < v->nbody; i++) {
			struct body_hash *b = &v->body[i];
			dkim_body_canon_finish(&b->c);
			if (EVP_DigestFinal_ex(b->md, b->digest, &b->digest_len) != 1)
				b->digest_len = 0;
		}
		v->results.unverifiable = v->msg.state == DKIM_MSG_TOO_BIG;
	}
	/* Count first: a resolver that breaks its contract and answers at once finds it set. */
	for (size_t i = 0; i < v->nsig; i++)
		if (v->sig[i].pending)
			v->outstanding++;
	v->outstanding++;
	for (size_t i = 0; i < v->nsig; i++) {
		struct vsig *s = &v->sig[i];
		char name[DKIM_DOMAIN_MAX + 1];
		if (!s->pending)
			continue;
		snprintf(name, sizeof name, "%s" DOMAINKEY "%s", s->sig.s, s->sig.d);
		s->req = r->lookup(r->ctx, name, DNS_T_TXT, on_key, s);
		if (!s->req) {
			s->pending = false;
			set_reason(s->res, DKIM_TEMPERROR, "out of memory");
			v->outstanding--;
		}
	}
	if (--v->outstanding > 0)
		return;
	/* Nothing to look up: answer from the loop, never from inside this call. */
	static const struct timeval zero = { 0, 0 };
	if (!v->ev_done)
		v->ev_done = evtimer_new(base, on_done, v);
	if (!v->ev_done || evtimer_add(v->ev_done, &zero) < 0) {
		for (size_t i = 0; i < v->nsig; i++)
			set_reason(&v->results.sig[i], DKIM_TEMPERROR, "out of memory");
		/* No way to defer: the caller's loop is out of memory too; still answer once. */
		deliver(v);
	}
}

const struct dkim_results *dkim_verify_timeout(struct dkim_verify *v)
{
	for (size_t i = 0; i < v->nsig; i++) {
		struct vsig *s = &v->sig[i];
		if (s->req)
			v->resolver.cancel(v->resolver.ctx, s->req);
		if (s->req || s->pending)
			set_reason(s->res, DKIM_TEMPERROR, "key lookup timed out");
		s->req = NULL;
		s->pending = false;
	}
	if (v->ev_done)
		evtimer_del(v->ev_done);
	v->outstanding = 0;
	v->fn = NULL;
	return &v->results;
}

void dkim_verify_free(struct dkim_verify *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->nsig; i++)
		if (v->sig[i].req)
			v->resolver.cancel(v->resolver.ctx, v->sig[i].req);
	if (v->ev_done)
		event_free(v->ev_done);
	for (size_t i = 0; i < v->nbody; i++)
		EVP_MD_CTX_free(v->body[i].md);
	dkim_message_free(&v->msg);
	free(v);
}

/* ---- Authentication-Results ---------------------------------------------------------------- */

/* RFC 2045 5.1 token characters (a value that needs no quotes); '@' is allowed in header.i. */
static bool token_char(char c)
{
	return ascii_isalnum(c) || (c && strchr("!#$%&'*+-.^_`{|}~@", c));
}

/* value as a token, or as a quoted-string (RFC 5322 3.2.4) with anything unprintable as '?'. */
static int append_value(struct buf *b, const char *value)
{
	bool token = value[0] != '\0';
	for (const char *c = value; *c && token; c++)
		token = token_char(*c);
	if (token)
		return buf_append_str(b, value);
	int r = buf_putc(b, '"');
	for (const char *c = value; *c && r == 0; c++) {
		if (*c == '"' || *c == '\\')
			r = buf_putc(b, '\\');
		if (r == 0)
			r = buf_putc(b, ascii_isgraph(*c) || *c == ' ' ? *c : '?');
	}
	return r < 0 ? r : buf_putc(b, '"');
}

static int append_prop(struct buf *b, const char *name, const char *value)
{
	int r;
	if (!value[0])
		return 0;
	if ((r = buf_appendf(b, " %s=", name)) < 0)
		return r;
	return append_value(b, value);
}

int dkim_auth_results(const struct dkim_results *res, char *out, size_t len)
{
	struct buf b;
	int r = 0;

	buf_init(&b, len ? len - 1 : 0);
	if (res->n == 0)
		r = buf_append_str(&b, res->unverifiable ? "dkim=permerror reason=\"header section "
							   "too large\""
							 : "dkim=none");
	for (size_t i = 0; i < res->n && r == 0; i++) {
		const struct dkim_sig_result *s = &res->sig[i];
		if (i > 0)
			r = buf_append_str(&b, ";\r\n\t");
		if (r == 0)
			r = buf_appendf(&b, "dkim=%s", dkim_result_name(s->result));
		if (r == 0 && s->reason[0]) {
			r = buf_append_str(&b, " reason=");
			if (r == 0)
				r = append_value(&b, s->reason);
		}
		if (r == 0 && s->testing)
			r = buf_append_str(&b, " (test mode)");
		if (r == 0)
			r = append_prop(&b, "header.d", s->d);
		if (r == 0)
			r = append_prop(&b, "header.i", s->i);
		if (r == 0)
			r = append_prop(&b, "header.s", s->s);
		if (r == 0)
			r = append_prop(&b, "header.a", s->a);
		if (r == 0)
			r = append_prop(&b, "header.b", s->b);
	}
	if (r == 0 && len > 0)
		memcpy(out, buf_cstr(&b), b.len + 1);
	else if (len > 0)
		out[0] = '\0';
	buf_free(&b);
	return r < 0 ? -ENOSPC : 0;
}
