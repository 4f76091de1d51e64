/*
 * dkim_sign: DKIM signing of outbound mail (RFC 6376 5, RFC 8463), the keys
 * it signs with (dkim-sign DOMAIN SELECTOR KEYFILE), and new keys with their
 * DNS record (`carteiro dkim-keygen`). See dkim.h for the contract.
 *
 * The signing domain is the From domain or its nearest parent that has a
 * dkim-sign line (every key of that domain signs: an RSA and an Ed25519 key
 * side by side is the usual way to offer Ed25519, RFC 8463 5). Header fields
 * signed: RFC 6376 5.4.1's list as present in the message; the ones RFC 5322
 * 3.6 allows once (From, Subject, Date, To, Cc, ...) are over-signed (5.4.2:
 * listed once more than they occur), so that none can be added later.
 *
 * Security: private keys are read once, by the master as root, from files
 * that should be readable by root only (a warning otherwise); PEM
 * passphrases are refused rather than asked for. A new key file is created
 * with O_EXCL and mode 0600 and never replaces an existing file.
 */
#include "policy/dkim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/config.h"
#include "mail/addr.h"
#include "policy/dkim_message.h"
#include "util/fileio.h"
#include "util/str.h"

#define KEY_FILE_MAX (64 * 1024)
#define RSA_BITS_MIN 1024
#define RSA_BITS_MAX 8192
#define FOLD_WIDTH 76

struct dkim_key {
	char domain[DKIM_DOMAIN_MAX + 1]; /* lower case */
	char selector[DKIM_DOMAIN_MAX + 1];
	enum dkim_key_type type;
	EVP_PKEY *pkey;
};

struct dkim_signer_set {
	struct dkim_key *keys;
	size_t n;
	unsigned refs; /* holders: its owner, each signer made from it (one thread) */
};

/* ---- keys ---------------------------------------------------------------------------------- */

struct dkim_signer_set *dkim_signer_set_new(void)
{
	struct dkim_signer_set *set = calloc(1, sizeof(struct dkim_signer_set));
	if (set)
		set->refs = 1;
	return set;
}

const struct dkim_signer_set *dkim_signer_set_ref(const struct dkim_signer_set *set)
{
	/* The keys never change; only the count of holders does. */
	if (set)
		((struct dkim_signer_set *)set)->refs++;
	return set;
}

void dkim_signer_set_free(const struct dkim_signer_set *cset)
{
	struct dkim_signer_set *set = (struct dkim_signer_set *)cset;
	if (!set || --set->refs > 0)
		return;
	for (size_t i = 0; i < set->n; i++)
		EVP_PKEY_free(set->keys[i].pkey);
	free(set->keys);
	free(set);
}

size_t dkim_signer_set_count(const struct dkim_signer_set *set)
{
	return set ? set->n : 0;
}

/* Never ask for a passphrase on a terminal: an encrypted key is an error. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Add the PEM key pem[0..len) for domain and selector; keyfile names it in errors. */
static int add_pem(struct dkim_signer_set *set, const char *domain, const char *selector,
		   const char *pem, size_t len, const char *keyfile, char *err, size_t errlen)
{
	struct dkim_key k = { 0 };

	if (!str_copy(k.domain, sizeof k.domain, domain) ||
	    !str_copy(k.selector, sizeof k.selector, selector)) {
		snprintf(err, errlen, "dkim-sign %s %s: name too long", domain, selector);
		return -EINVAL;
	}
	str_lower(k.domain);
	BIO *bio = len <= KEY_FILE_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
	k.pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
	BIO_free(bio);
	int r = -EINVAL;
	if (!k.pkey) {
		snprintf(err, errlen, "dkim-sign key %s: not a PEM private key (or encrypted)",
			 keyfile);
		return r;
	}
	int id = EVP_PKEY_get_base_id(k.pkey), bits = EVP_PKEY_get_bits(k.pkey);
	if (id == EVP_PKEY_ED25519) {
		k.type = DKIM_KEY_ED25519;
	} else if (id == EVP_PKEY_RSA && bits >= RSA_BITS_MIN && bits <= RSA_BITS_MAX) {
		k.type = DKIM_KEY_RSA;
	} else {
		snprintf(err, errlen, "dkim-sign key %s: expected an RSA key of 1024 to 8192 bits "
			 "or an Ed25519 key", keyfile);
		goto fail;
	}
	for (size_t i = 0; i < set->n; i++) {
		if (strcmp(set->keys[i].domain, k.domain) == 0 &&
		    str_casecmp(set->keys[i].selector, k.selector) == 0) {
			snprintf(err, errlen, "dkim-sign %s %s: given twice", domain, selector);
			goto fail;
		}
	}
	size_t bytes;
	if (!size_add(set->n, 1, &bytes) || !size_mul(bytes, sizeof k, &bytes)) {
		r = -ENOMEM;
		goto fail;
	}
	struct dkim_key *keys = realloc(set->keys, bytes);
	if (!keys) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	set->keys = keys;
	set->keys[set->n++] = k;
	return 0;
fail:
	EVP_PKEY_free(k.pkey);
	return r;
}

int dkim_signer_set_add(struct dkim_signer_set *set, const char *domain, const char *selector,
			const char *keyfile, bool *exposed, char *err, size_t errlen)
{
	struct buf b;
	struct stat st;

	*exposed = false;
	buf_init(&b, KEY_FILE_MAX);
	int r = file_read_all(keyfile, KEY_FILE_MAX, &b);
	if (r < 0) {
		snprintf(err, errlen, "dkim-sign key %s: %s", keyfile, strerror(-r));
		buf_free(&b);
		return r;
	}
	*exposed = stat(keyfile, &st) == 0 && (st.st_mode & 077) != 0;
	r = add_pem(set, domain, selector, b.data ? b.data : "", b.len, keyfile, err, errlen);
	if (b.data)
		explicit_bzero(b.data, b.len);
	buf_free(&b);
	return r;
}

/* One key in the export format: "domain selector length\n" then that many bytes of PEM. */
int dkim_signer_set_export(const struct dkim_signer_set *set, struct buf *out)
{
	int r = 0;

	for (size_t i = 0; set && i < set->n && r == 0; i++) {
		BIO *bio = BIO_new(BIO_s_secmem());
		char *pem = NULL;
		long len;
		if (!bio || !PEM_write_bio_PrivateKey(bio, set->keys[i].pkey, NULL, NULL, 0, NULL,
						      NULL) ||
		    (len = BIO_get_mem_data(bio, &pem)) <= 0) {
			BIO_free(bio);
			return -ENOMEM;
		}
		char head[2 * DKIM_DOMAIN_MAX + 32];
		snprintf(head, sizeof head, "%s %s %ld\n", set->keys[i].domain,
			 set->keys[i].selector, len);
		r = buf_append_str(out, head);
		if (r == 0)
			r = buf_append(out, pem, (size_t)len);
		BIO_free(bio);
	}
	return r;
}

int dkim_signer_set_import(const char *data, size_t len, struct dkim_signer_set **out,
			   char *err, size_t errlen)
{
	struct dkim_signer_set *set = dkim_signer_set_new();
	size_t o = 0;

	*out = NULL;
	if (!set) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (o < len) {
		char domain[DKIM_DOMAIN_MAX + 1], selector[DKIM_DOMAIN_MAX + 1];
		char line[2 * DKIM_DOMAIN_MAX + 32];
		const char *nl = memchr(data + o, '\n', len - o);
		size_t n = nl ? (size_t)(nl - (data + o)) : 0;
		unsigned long pem_len;
		int used = 0;
		if (!nl || n >= sizeof line)
			goto bad;
		memcpy(line, data + o, n);
		line[n] = '\0';
		_Static_assert(DKIM_DOMAIN_MAX == 253, "the widths below");
		if (sscanf(line, "%253s %253s %lu%n", domain, selector, &pem_len, &used) != 3 ||
		    (size_t)used != n || pem_len == 0 || pem_len > KEY_FILE_MAX ||
		    pem_len > len - o - n - 1)
			goto bad;
		o += n + 1;
		int r = add_pem(set, domain, selector, data + o, pem_len, "(from the master)", err,
				errlen);
		if (r < 0) {
			dkim_signer_set_free(set);
			return r;
		}
		o += pem_len;
	}
	*out = set;
	return 0;
bad:
	snprintf(err, errlen, "malformed key set");
	dkim_signer_set_free(set);
	return -EINVAL;
}

int dkim_signer_set_load(const struct config *cfg, struct dkim_signer_set **out,
			 void (*warn)(void *ctx, const char *msg), void *ctx, char *err,
			 size_t errlen)
{
	*out = NULL;
	if (cfg->ndkim_signs == 0)
		return 0;
	struct dkim_signer_set *set = dkim_signer_set_new();
	if (!set) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->ndkim_signs; i++) {
		const struct dkim_sign_cfg *c = &cfg->dkim_signs[i];
		bool exposed;
		int r = dkim_signer_set_add(set, c->domain, c->selector, c->keyfile, &exposed, err,
					    errlen);
		if (r < 0) {
			dkim_signer_set_free(set);
			return r;
		}
		char msg[600];
		if (exposed && warn) {
			snprintf(msg, sizeof msg, "dkim-sign key %s is readable by others "
				 "(chmod 600: only root should read it)", c->keyfile);
			warn(ctx, msg);
		}
		const struct dkim_key *k = &set->keys[set->n - 1];
		if (k->type == DKIM_KEY_RSA && EVP_PKEY_get_bits(k->pkey) < 2048 && warn) {
			snprintf(msg, sizeof msg, "dkim-sign key %s has %d bits (2048 or more is "
				 "recommended)", c->keyfile, EVP_PKEY_get_bits(k->pkey));
			warn(ctx, msg);
		}
	}
	*out = set;
	return 0;
}

/* ---- the signer ---------------------------------------------------------------------------- */

/* Header fields signed (RFC 6376 5.4.1), and whether each is over-signed (RFC 5322 3.6: at
 * most one instance, so one more in h= keeps any from being added). */
static const struct {
	const char *name;
	bool oversign;
} sign_fields[] = {
	{ "From", true },
	{ "Reply-To", true },
	{ "Subject", true },
	{ "Date", true },
	{ "To", true },
	{ "Cc", true },
	{ "Message-ID", true },
	{ "In-Reply-To", true },
	{ "References", true },
	{ "Sender", false },
	{ "Resent-Date", false },
	{ "Resent-From", false },
	{ "Resent-Sender", false },
	{ "Resent-To", false },
	{ "Resent-Cc", false },
	{ "Resent-Message-ID", false },
	{ "MIME-Version", true },
	{ "Content-Type", true },
	{ "Content-Transfer-Encoding", true },
	{ "Content-ID", false },
	{ "Content-Description", false },
	{ "List-Id", false },
	{ "List-Help", false },
	{ "List-Unsubscribe", false },
	{ "List-Unsubscribe-Post", false },
	{ "List-Subscribe", false },
	{ "List-Post", false },
	{ "List-Owner", false },
	{ "List-Archive", false },
};

struct dkim_sign {
	const struct dkim_signer_set *keys;
	struct dkim_sign_opts opts;
	struct dkim_message msg;
	EVP_MD_CTX *body_md;
	struct dkim_body_canon body;
	bool finished;
	const char *skip;                 /* why nothing is signed, or NULL */
	char domain[DKIM_DOMAIN_MAX + 1]; /* the keys' domain, "" when none applies */
};

struct dkim_sign *dkim_sign_new_opts(const struct dkim_signer_set *keys,
				     const struct dkim_sign_opts *opts)
{
	struct dkim_sign *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->keys = dkim_signer_set_ref(keys);
	s->opts = *opts;
	dkim_message_init(&s->msg);
	return s;
}

struct dkim_sign *dkim_sign_new(const struct dkim_signer_set *keys)
{
	struct dkim_sign_opts opts = { .hcanon = DKIM_CANON_RELAXED, .bcanon = DKIM_CANON_RELAXED };
	return dkim_sign_new_opts(keys, &opts);
}

void dkim_sign_free(struct dkim_sign *s)
{
	if (!s)
		return;
	EVP_MD_CTX_free(s->body_md);
	dkim_message_free(&s->msg);
	dkim_signer_set_free(s->keys);
	free(s);
}

const char *dkim_sign_domain(const struct dkim_sign *s)
{
	return s->domain;
}

const char *dkim_sign_skip_reason(const struct dkim_sign *s)
{
	return s->skip ? s->skip : "";
}

/*
 * The domain of the first mailbox of a From value (RFC 5322 3.4): the addr-spec
 * inside <> if there is one, else the text itself, comments and quoted
 * strings skipped; lower-cased into out. false when there is none.
 */
static bool from_domain(struct slice v, char *out, size_t outlen)
{
	char spec[ADDR_DOMAIN_MAX + ADDR_LOCAL_MAX + 8];
	size_t n = 0, depth = 0, at = SIZE_MAX;
	bool quoted = false, angle = false;

	for (size_t i = 0; i < v.len; i++) {
		char c = v.ptr[i];
		if (c == '\\' && (quoted || depth) && i + 1 < v.len) {
			i++;
			continue;
		}
		if (depth) {
			if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (quoted) {
			quoted = c != '"';
			continue;
		}
		if (c == '"') {
			quoted = true;
			continue;
		}
		if (c == '(') {
			depth = 1;
			continue;
		}
		if (c == '<' && !angle) {
			/* What came before was a display name. */
			angle = true;
			n = 0;
			at = SIZE_MAX;
			continue;
		}
		if ((c == '>' && angle) || (c == ',' && !angle))
			break;
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '@')
			at = n;
		if (n == sizeof spec)
			return false;
		spec[n++] = c;
	}
	if (at == SIZE_MAX || at + 1 >= n)
		return false;
	struct slice dom = { spec + at + 1, n - at - 1 };
	if (!addr_domain_valid(dom, true) || !slice_copy(out, outlen, dom))
		return false;
	str_lower(out);
	return true;
}

/* The most specific domain of the set that is d or a parent of d; NULL when none. */
static const char *key_domain_for(const struct dkim_signer_set *set, const char *d)
{
	const char *best = NULL;
	size_t dlen = strlen(d), best_len = 0;

	for (size_t i = 0; set && i < set->n; i++) {
		const char *k = set->keys[i].domain;
		size_t klen = strlen(k);
		bool match = klen == dlen ? strcmp(k, d) == 0
					  : klen < dlen && d[dlen - klen - 1] == '.' &&
						    strcmp(d + dlen - klen, k) == 0;
		if (match && klen > best_len) {
			best = k;
			best_len = klen;
		}
	}
	return best;
}

static void md_update(void *ctx, const char *p, size_t n)
{
	EVP_DigestUpdate(ctx, p, n);
}

static void header_section_done(struct dkim_sign *s)
{
	struct dkim_message *m = &s->msg;
	size_t from = 0, nfrom = 0;
	char d[ADDR_DOMAIN_MAX + 1];

	/* The signature goes on top: a first line that is a continuation would join it. */
	if (m->head.len > 0 && (m->head.data[0] == ' ' || m->head.data[0] == '\t')) {
		s->skip = "header section starts with a continuation line";
		return;
	}
	for (size_t i = 0; i < m->nfields; i++)
		if (dkim_field_is(m, &m->fields[i], SLICE_LIT("From")) && nfrom++ == 0)
			from = i;
	if (nfrom != 1) {
		s->skip = nfrom ? "several From fields" : "no From field";
		return;
	}
	if (!from_domain(dkim_field_value(m, &m->fields[from]), d, sizeof d)) {
		s->skip = "no domain in From";
		return;
	}
	const char *kd = key_domain_for(s->keys, d);
	if (!kd) {
		s->skip = "no dkim-sign key for the From domain";
		return;
	}
	s->body_md = EVP_MD_CTX_new();
	if (!s->body_md || EVP_DigestInit_ex(s->body_md, EVP_sha256(), NULL) != 1) {
		s->skip = "out of memory";
		return;
	}
	str_copy(s->domain, sizeof s->domain, kd);
	dkim_body_canon_init(&s->body, s->opts.bcanon, UINT64_MAX, md_update, s->body_md);
}

int dkim_sign_update(struct dkim_sign *s, const char *p, size_t n)
{
	if (s->finished)
		return -EINVAL;
	int r = dkim_message_feed(&s->msg, &p, &n);
	if (r < 0)
		return r;
	if (r == 1)
		header_section_done(s);
	if (s->msg.state == DKIM_MSG_BODY && n > 0 && s->domain[0])
		dkim_body_canon_update(&s->body, p, n);
	return 0;
}

/* A header being written with folding: words wrap before FOLD_WIDTH columns. */
struct fold {
	struct buf *b;
	size_t col;
	int err;
};

static void fold_put(struct fold *f, const char *sep, const char *word, size_t len)
{
	if (f->err)
		return;
	if (f->col + strlen(sep) + len > FOLD_WIDTH && f->col > 8) {
		f->err = buf_append_str(f->b, "\r\n\t");
		f->col = 8;
		sep = "";
	}
	if (!f->err)
		f->err = buf_append_str(f->b, sep);
	if (!f->err)
		f->err = buf_append(f->b, word, len);
	f->col += strlen(sep) + len;
}

static void fold_tag(struct fold *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fold_tag(struct fold *f, const char *fmt, ...)
{
	char word[DKIM_DOMAIN_MAX + 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(word, sizeof word, fmt, ap);
	va_end(ap);
	fold_put(f, " ", word, strlen(word));
}

/* The h= list: each field of sign_fields as often as it occurs, plus one if over-signed. */
static size_t signed_names(const struct dkim_message *m, struct slice *names)
{
	size_t n = 0;
	for (size_t k = 0; k < sizeof sign_fields / sizeof sign_fields[0]; k++) {
		struct slice name = slice_from_cstr(sign_fields[k].name);
		size_t count = sign_fields[k].oversign ? 1 : 0;
		for (size_t i = 0; i < m->nfields; i++)
			count += dkim_field_is(m, &m->fields[i], name);
		for (size_t i = 0; i < count && n < DKIM_H_MAX; i++)
			names[n++] = name;
	}
	return n;
}

/* Sign the SHA-256 digest with key: RSA PKCS#1 v1.5, or Ed25519 over the digest (RFC 8463). */
static int sign_digest(const struct dkim_key *key, const unsigned char *digest,
		       unsigned char *sig, size_t *siglen)
{
	int ok;
	if (key->type == DKIM_KEY_ED25519) {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, key->pkey) == 1 &&
		     EVP_DigestSign(md, sig, siglen, digest, 32) == 1;
		EVP_MD_CTX_free(md);
	} else {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key->pkey, NULL);
		ok = ctx && EVP_PKEY_sign_init(ctx) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
		     EVP_PKEY_sign(ctx, sig, siglen, digest, 32) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	return ok ? 0 : -EIO;
}

static const char *canon_name(enum dkim_canon c)
{
	return c == DKIM_CANON_RELAXED ? "relaxed" : "simple";
}

/* One DKIM-Signature header for key into out. */
static int sign_one(struct dkim_sign *s, const struct dkim_key *key, const char *bh,
		    const struct slice *names, size_t nnames, struct buf *out)
{
	struct buf hdr, canon;
	struct fold f = { &hdr, 0, 0 };
	unsigned char digest[EVP_MAX_MD_SIZE], sig[DKIM_SIG_BYTES_MAX];
	char b64[((DKIM_SIG_BYTES_MAX + 2) / 3) * 4 + 1];
	size_t siglen = sizeof sig;
	int64_t t = s->opts.time ? s->opts.time : (int64_t)time(NULL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int r = -ENOMEM;

	buf_init(&hdr, DKIM_SIGNATURE_TEXT_MAX);
	buf_init(&canon, DKIM_SIGNATURE_TEXT_MAX + 2);
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	f.err = buf_append_str(&hdr, "DKIM-Signature:");
	f.col = strlen("DKIM-Signature:");
	fold_tag(&f, "v=1;");
	fold_tag(&f, "a=%s;", key->type == DKIM_KEY_ED25519 ? "ed25519-sha256" : "rsa-sha256");
	fold_tag(&f, "c=%s/%s;", canon_name(s->opts.hcanon), canon_name(s->opts.bcanon));
	fold_tag(&f, "d=%s;", key->domain);
	fold_tag(&f, "s=%s;", key->selector);
	fold_tag(&f, "t=%lld;", (long long)t);
	if (s->opts.expire)
		fold_tag(&f, "x=%llu;", (unsigned long long)((uint64_t)t + s->opts.expire));
	if (s->opts.body_length)
		fold_tag(&f, "l=%llu;", (unsigned long long)s->body.total);
	for (size_t i = 0; i < nnames; i++) {
		char word[64];
		snprintf(word, sizeof word, "%s%s%c", i ? "" : "h=", names[i].ptr,
			 i + 1 < nnames ? ':' : ';');
		fold_put(&f, i ? "" : " ", word, strlen(word));
	}
	fold_tag(&f, "bh=%s;", bh);
	fold_put(&f, " ", "b=", 2);
	if ((r = f.err) < 0)
		goto out;
	/* The header data: the signed fields, then this field up to "b=" (3.7). */
	r = dkim_message_hash_fields(&s->msg, names, nnames, s->opts.hcanon, md_update, md);
	if (r < 0 || (r = dkim_canon_header(s->opts.hcanon, buf_slice(&hdr), false, &canon)) < 0)
		goto out;
	md_update(md, canon.data, canon.len);
	r = -EIO;
	if (EVP_DigestFinal_ex(md, digest, NULL) != 1 || sign_digest(key, digest, sig, &siglen) < 0)
		goto out;
	EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
	/* b= last, folded wherever the line is full: FWS inside base64 is allowed (3.5). */
	for (size_t i = 0, len = strlen(b64); i < len && !f.err;) {
		size_t room = f.col < FOLD_WIDTH ? FOLD_WIDTH - f.col : 0, n = len - i;
		if (room < 8) {
			f.err = buf_append_str(&hdr, "\r\n\t");
			f.col = 8;
			continue;
		}
		if (n > room)
			n = room;
		f.err = buf_append(&hdr, b64 + i, n);
		f.col += n;
		i += n;
	}
	if (!f.err)
		f.err = buf_append_str(&hdr, "\r\n");
	r = f.err ? f.err : buf_append(out, hdr.data, hdr.len);
out:
	EVP_MD_CTX_free(md);
	buf_free(&hdr);
	buf_free(&canon);
	return r;
}

int dkim_sign_finish(struct dkim_sign *s, char *out, size_t len, size_t *outlen)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	char bh[((EVP_MAX_MD_SIZE + 2) / 3) * 4 + 1];
	struct slice names[DKIM_H_MAX];
	struct buf b;
	int r = 0;

	*outlen = 0;
	if (len)
		out[0] = '\0';
	if (s->finished)
		return -EINVAL;
	s->finished = true;
	if (dkim_message_end(&s->msg) == 1)
		header_section_done(s);
	if (s->msg.state == DKIM_MSG_TOO_BIG) {
		s->skip = "header section too large";
		s->domain[0] = '\0';
	}
	if (!s->domain[0])
		return 0;
	dkim_body_canon_finish(&s->body);
	if (EVP_DigestFinal_ex(s->body_md, digest, &dlen) != 1)
		return -EIO;
	EVP_EncodeBlock((unsigned char *)bh, digest, (int)dlen);
	size_t nnames = signed_names(&s->msg, names);
	buf_init(&b, len ? len - 1 : 0);
	for (size_t i = 0; i < s->keys->n && r == 0; i++)
		if (strcmp(s->keys->keys[i].domain, s->domain) == 0)
			r = sign_one(s, &s->keys->keys[i], bh, names, nnames, &b);
	if (r == 0) {
		memcpy(out, buf_cstr(&b), b.len + 1);
		*outlen = b.len;
	}
	buf_free(&b);
	return r;
}

/* ---- new keys ------------------------------------------------------------------------------ */

int dkim_keygen(enum dkim_key_type type, unsigned bits, const char *path, struct buf *record,
		char *err, size_t errlen)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	unsigned char *der = NULL, raw[32];
	char *pem;
	int r = -EIO, fd = -1, derlen;
	size_t rawlen = sizeof raw;

	if (type == DKIM_KEY_RSA && (bits < 1024 || bits > RSA_BITS_MAX)) {
		snprintf(err, errlen, "RSA keys have 1024 to %d bits", RSA_BITS_MAX);
		return -EINVAL;
	}
	pkey = type == DKIM_KEY_RSA ? EVP_RSA_gen(bits) : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	bio = BIO_new(BIO_s_mem());
	if (!pkey || !bio || PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		snprintf(err, errlen, "cannot make the key (OpenSSL)");
		goto out;
	}
	/* The public key: a SubjectPublicKeyInfo for RSA, the bare 32 bytes for Ed25519. */
	if (type == DKIM_KEY_RSA) {
		derlen = i2d_PUBKEY(pkey, &der);
	} else {
		derlen = EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) == 1 ? (int)rawlen : -1;
	}
	if (derlen <= 0) {
		snprintf(err, errlen, "cannot encode the public key (OpenSSL)");
		goto out;
	}
	char b64[((DKIM_KEY_BYTES_MAX + 2) / 3) * 4 + 1];
	if ((size_t)derlen > DKIM_KEY_BYTES_MAX) {
		snprintf(err, errlen, "public key too large");
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)b64, type == DKIM_KEY_RSA ? der : raw, derlen);
	if ((r = buf_appendf(record, "v=DKIM1; k=%s; p=%s",
			     type == DKIM_KEY_RSA ? "rsa" : "ed25519", b64)) < 0) {
		snprintf(err, errlen, "%s", strerror(-r));
		goto out;
	}
	long pemlen = BIO_get_mem_data(bio, &pem);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	for (long off = 0; off < pemlen;) {
		ssize_t w = write(fd, pem + off, (size_t)(pemlen - off));
		if (w < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			unlink(path);
			goto out;
		}
		off += w;
	}
	if (fchmod(fd, 0600) < 0 || fsync(fd) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(path);
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	OPENSSL_free(der);
	BIO_free(bio); /* BIO_s_mem clears its memory on free */
	EVP_PKEY_free(pkey);
	return r;
}

int dkim_zone_strings(struct slice text, struct buf *out)
{
	int r = buf_append_str(out, "( ");
	for (size_t i = 0; i < text.len && r == 0;) {
		size_t n = text.len - i > 255 ? 255 : text.len - i;
		if (i > 0)
			r = buf_append_str(out, "\n\t");
		if (r == 0)
			r = buf_putc(out, '"');
		for (size_t k = 0; k < n && r == 0; k++) {
			char c = text.ptr[i + k];
			if (c == '"' || c == '\\')
				r = buf_putc(out, '\\');
			if (r == 0)
				r = buf_putc(out, c);
		}
		if (r == 0)
			r = buf_putc(out, '"');
		i += n;
	}
	return r < 0 ? r : buf_append_str(out, " )");
}
