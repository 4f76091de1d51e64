/*
 * fuzz_dkim: libFuzzer target for the DKIM parsers and the streaming verifier
 * and signer (src/policy/dkim_*.c).
 *
 * The first input byte picks what the rest is:
 *   0  a tag-list (RFC 6376 3.2)
 *   1  a key record (3.6.1)
 *   2  a DKIM-Signature value (3.5)
 *   3  a message, verified with fixed keys (the RFC 8463 Appendix A keys, so
 *      that mutations of its message reach the signature checks), fed whole
 *      and in chunks of a size taken from the second byte
 *   4  a message, signed with the RFC 8463 Ed25519 key for football.example.com
 *      and then verified
 *   5  a set of keys as the master hands them to the workers on SIGHUP
 *      (dkim_signer_set_import)
 * Invariants (a violation abort()s):
 *   - tag-list: 1..DKIM_TAGS_MAX tags, names ALPHA *(ALNUM / "_"), unique,
 *     values inside the input with no FWS at their ends;
 *   - key record and signature: the reason is set exactly on failure; a
 *     parsed signature has d= and s=, From in h=, a non-empty b=, x >= t, its
 *     b= span inside the input;
 *   - verification: the same results for both chunkings, one call of the
 *     callback and never inside finish, results in range, texts printable,
 *     the Authentication-Results text builds, with CR LF only in ";\r\n\t";
 *   - signing: whatever is signed verifies (pass) with the matching key;
 *   - key sets: a refusal says why; what is taken exports and is taken again
 *     with as many keys.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests/unit/rfc8463.h"
#include "policy/dkim.h"
#include "util/str.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1600000000

static const char ed_pem[] = "-----BEGIN PRIVATE KEY-----\n"
			     "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
			     "-----END PRIVATE KEY-----\n";


static struct event_base *base;
static struct fake_dns fdns;
static struct dns_resolver resolver;
static struct dkim_signer_set *signers;

static void setup(void)
{
	if (base)
		return;
	base = event_base_new();
	/* The RFC 8463 keys, and a selector whose lookup fails. */
	fake_dns_init(&fdns, base);
	txt_records_add(&fdns, rfc8463_keys, 2);
	fake_dns_timeout(&fdns, "temp._domainkey.football.example.com", DNS_T_TXT);
	resolver = fake_dns_resolver(&fdns);
	char path[] = "/tmp/fuzz_dkim_key_XXXXXX";
	int fd = mkstemp(path);
	ASSERT(fd >= 0 && write(fd, ed_pem, sizeof ed_pem - 1) == (ssize_t)(sizeof ed_pem - 1));
	close(fd);
	char err[256];
	bool exposed;
	signers = dkim_signer_set_new();
	ASSERT(dkim_signer_set_add(signers, "football.example.com", "brisbane", path, &exposed, err,
				   sizeof err) == 0);
	unlink(path);
}

static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void check_tags(const char *p, size_t n)
{
	struct dkim_tag_list l;
	if (dkim_tag_list_parse((struct slice){ p, n }, &l) < 0)
		return;
	ASSERT(l.n >= 1 && l.n <= DKIM_TAGS_MAX);
	for (size_t i = 0; i < l.n; i++) {
		struct dkim_tag *t = &l.tag[i];
		ASSERT(t->name.len >= 1 && ascii_isalpha(t->name.ptr[0]));
		for (size_t k = 1; k < t->name.len; k++)
			ASSERT(ascii_isalnum(t->name.ptr[k]) || t->name.ptr[k] == '_');
		ASSERT(t->value.ptr >= p && t->value.ptr + t->value.len <= p + n);
		ASSERT(t->raw_start <= (size_t)(t->value.ptr - p));
		if (t->value.len)
			ASSERT(!is_fws(t->value.ptr[0]) && !is_fws(t->value.ptr[t->value.len - 1]));
		ASSERT(!memchr(t->value.ptr, ';', t->value.len));
		for (size_t j = 0; j < i; j++)
			ASSERT(!slice_eq(t->name, l.tag[j].name));
	}
}

static void check_key(const char *p, size_t n)
{
	struct dkim_key_record kr;
	char reason[DKIM_REASON_MAX];
	int r = dkim_key_record_parse((struct slice){ p, n }, &kr, reason, sizeof reason);
	ASSERT(r == 0 || r == -EINVAL);
	ASSERT((r == 0) == (reason[0] == '\0'));
	if (r == 0) {
		ASSERT(kr.keylen <= DKIM_KEY_BYTES_MAX);
		ASSERT(kr.revoked == (kr.keylen == 0));
	}
}

static bool printable(const char *s, size_t max)
{
	size_t len = strnlen(s, max);
	if (len == max)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void check_signature(const char *p, size_t n)
{
	static struct dkim_signature sig;
	char reason[DKIM_REASON_MAX];
	int r = dkim_signature_parse((struct slice){ p, n }, &sig, reason, sizeof reason);
	ASSERT(r == 0 || r == -EINVAL);
	ASSERT((r == 0) == (reason[0] == '\0'));
	ASSERT(printable(sig.d, sizeof sig.d) && printable(sig.s, sizeof sig.s));
	ASSERT(printable(sig.b_short, sizeof sig.b_short));
	if (r < 0)
		return;
	ASSERT(sig.d[0] && sig.s[0] && sig.blen > 0 && sig.bhlen > 0);
	ASSERT(sig.nh >= 1 && sig.nh <= DKIM_H_MAX);
	bool from = false;
	for (size_t i = 0; i < sig.nh; i++)
		from = from || slice_eq_cstr_nocase(sig.h[i], "from");
	ASSERT(from);
	ASSERT(sig.b_start <= sig.b_end && sig.b_end <= n);
	ASSERT(!(sig.has_t && sig.has_x) || sig.x >= sig.t);
}

struct run {
	int calls;
	struct dkim_results res;
};

static void on_done(void *arg, const struct dkim_results *res)
{
	struct run *run = arg;
	run->calls++;
	run->res = *res;
}

static void verify(const char *p, size_t n, size_t step, struct run *run)
{
	struct dkim_verify *v = dkim_verify_new();
	ASSERT(v);
	dkim_verify_set_time(v, NOW);
	for (size_t off = 0; off < n;) {
		size_t k = step && step < n - off ? step : n - off;
		ASSERT(dkim_verify_update(v, p + off, k) == 0);
		off += k;
	}
	memset(run, 0, sizeof *run);
	dkim_verify_finish(v, base, &resolver, on_done, run);
	ASSERT(run->calls == 0);
	event_base_dispatch(base);
	ASSERT(run->calls == 1);
	size_t count;
	struct slice first;
	int r = dkim_verify_from(v, &count, &first);
	ASSERT(r == 0 || r == -E2BIG);
	ASSERT(count > 0 || first.len == 0);
	dkim_verify_free(v);
}

static void check_results(const struct dkim_results *res)
{
	static char ar[32768];
	ASSERT(res->n <= DKIM_SIGS_MAX);
	for (size_t i = 0; i < res->n; i++) {
		const struct dkim_sig_result *s = &res->sig[i];
		ASSERT(s->result > DKIM_NONE && s->result <= DKIM_PERMERROR);
		ASSERT(printable(s->d, sizeof s->d) && printable(s->s, sizeof s->s));
		ASSERT(printable(s->a, sizeof s->a) && printable(s->b, sizeof s->b));
		ASSERT(printable(s->reason, sizeof s->reason));
		ASSERT((s->result == DKIM_PASS) == (s->reason[0] == '\0'));
		ASSERT(strnlen(s->i, sizeof s->i) < sizeof s->i);
	}
	ASSERT(dkim_auth_results(res, ar, sizeof ar) == 0);
	for (size_t i = 0; ar[i]; i++) {
		unsigned char c = (unsigned char)ar[i];
		if (c == '\r')
			ASSERT(i > 0 && ar[i - 1] == ';' && ar[i + 1] == '\n' && ar[i + 2] == '\t');
		else if (c == '\n')
			ASSERT(ar[i - 1] == '\r');
		else
			ASSERT(c >= 0x20 || c == '\t');
	}
}

static void check_verify(const char *p, size_t n, size_t step)
{
	static struct run a, b;
	verify(p, n, 0, &a);
	verify(p, n, step, &b);
	check_results(&a.res);
	ASSERT(memcmp(&a.res, &b.res, sizeof a.res) == 0);
}

static void check_sign(const char *p, size_t n, size_t step)
{
	static char out[4 * DKIM_SIGNATURE_TEXT_MAX];
	struct dkim_sign_opts opts = { .hcanon = (enum dkim_canon)(step & 1),
				       .bcanon = (enum dkim_canon)((step >> 1) & 1),
				       .time = NOW, .body_length = (step & 4) != 0 };
	struct dkim_sign *s = dkim_sign_new_opts(signers, &opts);
	size_t outlen;
	ASSERT(s);
	for (size_t off = 0; off < n;) {
		size_t k = step && step < n - off ? step : n - off;
		ASSERT(dkim_sign_update(s, p + off, k) == 0);
		off += k;
	}
	ASSERT(dkim_sign_finish(s, out, sizeof out, &outlen) == 0);
	ASSERT(outlen == strlen(out));
	ASSERT((outlen > 0) == (dkim_sign_domain(s)[0] != '\0'));
	dkim_sign_free(s);
	if (outlen == 0)
		return;
	/* The signed message verifies, whatever the rest of it holds. */
	char *msg = malloc(outlen + n);
	ASSERT(msg);
	memcpy(msg, out, outlen);
	memcpy(msg + outlen, p, n);
	static struct run run;
	verify(msg, outlen + n, 0, &run);
	if (run.res.sig[0].result != DKIM_PASS)
		fprintf(stderr, "signed, then: %s (%s)\n%.*s", dkim_result_name(run.res.sig[0].result),
			run.res.sig[0].reason, (int)outlen, out);
	ASSERT(run.res.n >= 1 && run.res.sig[0].result == DKIM_PASS);
	free(msg);
}

static void check_keyset(const char *p, size_t n)
{
	struct dkim_signer_set *set, *again;
	char err[512] = "";
	struct buf b;

	if (dkim_signer_set_import(p, n, &set, err, sizeof err) < 0) {
		ASSERT(err[0] != '\0');
		return;
	}
	buf_init(&b, 4 * n + 1024);
	ASSERT(dkim_signer_set_export(set, &b) == 0);
	ASSERT(dkim_signer_set_import(b.data ? b.data : "", b.len, &again, err, sizeof err) == 0);
	ASSERT(dkim_signer_set_count(again) == dkim_signer_set_count(set));
	dkim_signer_set_free(again);
	dkim_signer_set_free(set);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	setup();
	/* An exact-size copy, so that ASan catches any read past the end. */
	size_t n = size - 2;
	char *p = malloc(n ? n : 1);
	if (!p)
		return 0;
	memcpy(p, data + 2, n);
	size_t step = (size_t)data[1] + 1;
	switch (data[0] % 6) {
	case 0:
		check_tags(p, n);
		break;
	case 1:
		check_key(p, n);
		break;
	case 2:
		check_signature(p, n);
		break;
	case 3:
		check_verify(p, n, step);
		break;
	case 4:
		check_sign(p, n, step);
		break;
	case 5:
		check_keyset(p, n);
		break;
	}
	free(p);
	return 0;
}
