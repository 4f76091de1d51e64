/*
 * tls_server: SSL_CTX set-up, SNI and reload. See tls_server.h.
 *
 * RFC 8446 and RFC 5246 (TLS 1.3 and 1.2), RFC 6066 3 (server_name),
 * RFC 7525 (recommendations for secure use of TLS), RFC 8314 (implicit TLS).
 * Security notes: the private keys are read by the master before it drops
 * root; the workers inherit the contexts when they are forked. A reload runs
 * as the server user: key files it cannot read are reported and the old
 * context stays in use.
 */
#include "tls/tls_server.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* Mozilla's intermediate configuration (TLS 1.2 ciphers; 1.3 uses OpenSSL's AEAD suites). */
#define TLS12_CIPHERS                                                                          \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                           \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

struct tls_server {
	unsigned refs;
	size_t nctx;
	SSL_CTX **ctx;  /* [0] is the default */
	X509 **certs;   /* the leaf certificate of each, for SNI matching (borrowed) */
};

/* The SSL ex_data slot that holds the SSL's reference to its tls_server. */
static int ssl_index = -1;

const char *tls_error_text(char *buf, size_t len)
{
	size_t o = 0;
	unsigned long e;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		char one[256];
		ERR_error_string_n(e, one, sizeof one);
		if (o < len)
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "; " : "", one);
	}
	if (!buf[0])
		snprintf(buf, len, "unknown error");
	return buf;
}

static void tls_server_unref(struct tls_server *ts)
{
	if (!ts || --ts->refs > 0)
		return;
	for (size_t i = 0; i < ts->nctx; i++)
		SSL_CTX_free(ts->ctx[i]);
	free(ts->ctx);
	free(ts->certs);
	free(ts);
}

static void ssl_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	tls_server_unref(ptr);
}

/* RFC 6066 3: switch to the pair whose certificate names the host the client asked for. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
	struct tls_server *ts = SSL_get_ex_data(ssl, ssl_index);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	(void)alert;
	(void)arg;

	if (!ts || !name)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 1; i < ts->nctx; i++) {
		if (X509_check_host(ts->certs[i], name, strlen(name), 0, NULL) == 1) {
			SSL_set_SSL_CTX(ssl, ts->ctx[i]);
			break;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* One context for a cert/key pair; NULL with a message in err. */
static SSL_CTX *ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
	char why[TLS_ERROR_MAX];
	const char *file = cert;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* OpenSSL 3 refuses client-initiated renegotiation unless told otherwise. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 || SSL_CTX_set_dh_auto(ctx, 1) != 1)
		goto fail;
	SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		goto fail;
	file = key;
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 &&
	    ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH)
		goto fail;
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "tls-key %s does not match tls-cert %s (%s)", key, cert,
			 tls_error_text(why, sizeof why));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
fail:
	snprintf(err, errlen, "%s %s: %s", file == cert ? "tls-cert" : "tls-key", file,
		 tls_error_text(why, sizeof why));
	SSL_CTX_free(ctx);
	return NULL;
}

int tls_server_load(const struct config *cfg, struct tls_server **out, char *err, size_t errlen)
{
	size_t n = cfg->tls_certs.n;

	*out = NULL;
	if (n == 0)
		return 0;
	if (cfg->tls_keys.n != n) {
		snprintf(err, errlen, "%zu tls-cert but %zu tls-key: they go in pairs", n,
			 cfg->tls_keys.n);
		return -EINVAL;
	}
	if (ssl_index < 0) {
		ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_ex_free);
		if (ssl_index < 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	struct tls_server *ts = calloc(1, sizeof *ts);
	if (!ts || !(ts->ctx = calloc(n, sizeof *ts->ctx)) ||
	    !(ts->certs = calloc(n, sizeof *ts->certs))) {
		if (ts)
			free(ts->ctx);
		free(ts);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ts->refs = 1;
	ERR_clear_error();
	for (size_t i = 0; i < n; i++) {
		ts->ctx[i] = ctx_new(cfg->tls_certs.items[i], cfg->tls_keys.items[i], err, errlen);
		if (!ts->ctx[i]) {
			tls_server_unref(ts);
			return -EINVAL;
		}
		ts->nctx++;
		ts->certs[i] = SSL_CTX_get0_certificate(ts->ctx[i]);
	}
	*out = ts;
	return 0;
}

void tls_server_free(struct tls_server *ts)
{
	tls_server_unref(ts);
}

bool tls_server_reload(const struct config *cfg, struct tls_server **ts)
{
	char err[TLS_ERROR_MAX];
	struct tls_server *fresh;

	if (cfg->tls_certs.n == 0)
		return true;
	if (tls_server_load(cfg, &fresh, err, sizeof err) < 0) {
		log_err("event=tls_reload result=failed keeping=previous error=%s", LOG_ESC(err));
		return false;
	}
	tls_server_free(*ts);
	*ts = fresh;
	log_info("event=tls_reload result=ok certificates=%zu", fresh->nctx);
	return true;
}

SSL *tls_server_ssl_new(struct tls_server *ts)
{
	SSL *ssl = SSL_new(ts->ctx[0]);
	if (!ssl)
		return NULL;
	if (SSL_set_ex_data(ssl, ssl_index, ts) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	ts->refs++;
	return ssl;
}

void tls_info_get(SSL *ssl, struct tls_info *out)
{
	snprintf(out->version, sizeof out->version, "%s", SSL_get_version(ssl));
	snprintf(out->cipher, sizeof out->cipher, "%s", SSL_get_cipher_name(ssl));
	out->bits = SSL_get_cipher_bits(ssl, NULL);
}
