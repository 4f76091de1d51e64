/*
 * tls_bev: TLS on a session's libevent bufferevent, the plumbing that the SMTP
 * (STARTTLS, RFC 3207) and POP3 (STLS, RFC 2595 4) sessions share.
 *
 * STARTTLS/STLS puts a TLS bufferevent of its own on the socket (rather than a
 * filter over the plain one): it writes straight to the kernel, so a last
 * reply is never left behind at close. Whatever the client sent before the
 * handshake is plaintext injection (CVE-2011-0411) and is discarded here.
 */
#ifndef CARTEIRO_TLS_TLS_BEV_H
#define CARTEIRO_TLS_TLS_BEV_H

#include <stddef.h>

struct bufferevent;
struct event_base;
struct tls_server;

struct tls_info;

/* The bufferevent of an accepted connection: TLS in accept state when ts is given
 * (implicit TLS), else plain. It owns fd; NULL when out of memory (fd is then closed). */
struct bufferevent *tls_bev_accept(struct tls_server *ts, struct event_base *base, int fd);
/*
 * A handshake finished: fill *info and log one line "sid=... event=tls client=...
 * tls=... cipher=... bits=... mode=... sni=..." (mode "implicit" or the command's name).
 */
void tls_bev_established(struct bufferevent *bev, struct tls_info *info, const char *sid,
			 const char *client, const char *mode);
/*
 * Start the server side of TLS on plain's socket: plain's input is discarded
 * (*discarded says how many bytes), a TLS bufferevent in accept state takes
 * the socket (closing it when freed), and plain is freed. NULL when out of
 * memory; plain is then left as it was.
 */
struct bufferevent *tls_bev_starttls(struct tls_server *ts, struct event_base *base,
				     struct bufferevent *plain, size_t *discarded);
/* Why a handshake failed, as one line: OpenSSL's reasons, else fallback. Returns why. */
const char *tls_bev_error(struct bufferevent *bev, char *why, size_t len, const char *fallback);
/* An orderly close: send close_notify, so that the client sees the end was ours. */
void tls_bev_close_notify(struct bufferevent *bev);

#endif
