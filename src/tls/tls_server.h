/*
 * tls_server: the server side of TLS (OpenSSL 3) for STARTTLS (RFC 3207) and
 * implicit TLS (RFC 8314 3.3): one SSL_CTX per tls-cert/tls-key pair, the
 * first one the default, the others chosen by SNI (RFC 6066 3) when the name
 * the client asks for matches the certificate's subjectAltName (or CN).
 *
 * Policy (Mozilla's "intermediate" profile): TLS 1.2 and 1.3 only, AEAD
 * ciphers with forward secrecy, the client's cipher order, no compression
 * (CRIME), no renegotiation, session tickets allowed.
 *
 * Contract: tls_server_load() reads every file at once and either returns a
 * complete context or an error message naming the file and OpenSSL's reason;
 * a reload builds a new one and keeps the old one when that fails. Every SSL
 * made by tls_server_ssl_new() holds a reference to its tls_server, so a
 * reload can drop the old context while handshakes that began with it go on.
 * Not thread-safe: one event loop per process uses it.
 */
#ifndef CARTEIRO_TLS_TLS_SERVER_H
#define CARTEIRO_TLS_TLS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

#include "conf/config.h"

#define TLS_ERROR_MAX 512

struct tls_server;

/* Build the contexts for cfg's tls-cert/tls-key pairs. 0 and *out, or -errno with a
 * message in err. With no pair configured, *out is NULL and 0 is returned. */
int tls_server_load(const struct config *cfg, struct tls_server **out, char *err, size_t errlen);
/* Drop the caller's reference (SSLs still in use keep the context alive). NULL is fine. */
void tls_server_free(struct tls_server *ts);
/* Reload into *ts: on success the old one is dropped; on failure it stays and the
 * error is logged. Logs the outcome either way. */
bool tls_server_reload(const struct config *cfg, struct tls_server **ts);
/* A new server-side SSL (accept state) on the default context; NULL when out of memory. */
SSL *tls_server_ssl_new(struct tls_server *ts);

/* What a finished handshake agreed on, for logs and the Received header. */
struct tls_info {
	char version[16]; /* "TLSv1.3" */
	char cipher[64];  /* "TLS_AES_256_GCM_SHA384" */
	int bits;
};
void tls_info_get(SSL *ssl, struct tls_info *out);

/* The queued OpenSSL errors as one line (emptying the queue); "unknown" if none. */
const char *tls_error_text(char *buf, size_t len);

#endif
