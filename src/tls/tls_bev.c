/*
 * tls_bev: TLS on a session's bufferevent. See tls_bev.h.
 */
#include "tls/tls_bev.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>

#include "tls/tls_server.h"
#include "util/log.h"

struct bufferevent *tls_bev_starttls(struct tls_server *ts, struct event_base *base,
				     struct bufferevent *plain, size_t *discarded)
{
	struct evbuffer *in = bufferevent_get_input(plain);
	evutil_socket_t fd = bufferevent_getfd(plain);
	SSL *ssl = tls_server_ssl_new(ts);
	struct bufferevent *tb = NULL;

	*discarded = evbuffer_get_length(in);
	evbuffer_drain(in, *discarded);
	if (!ssl)
		return NULL;
	tb = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
					    BEV_OPT_CLOSE_ON_FREE);
	if (!tb)
		return NULL;
	bufferevent_setfd(plain, -1); /* the socket is the TLS bufferevent's now */
	bufferevent_free(plain);
	return tb;
}

const char *tls_bev_error(struct bufferevent *bev, char *why, size_t len, const char *fallback)
{
	unsigned long e;
	size_t o = 0;

	why[0] = '\0';
	while ((e = bufferevent_get_openssl_error(bev)) != 0 && o < len) {
		char one[200];
		if (ERR_GET_LIB(e) == 0)
			continue; /* libevent's own record of errno, not an OpenSSL reason */
		ERR_error_string_n(e, one, sizeof one);
		o += (size_t)snprintf(why + o, len - o, "%s%s", o ? "; " : "", one);
	}
	if (!why[0])
		snprintf(why, len, "%s", fallback);
	return why;
}

void tls_bev_close_notify(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl && SSL_shutdown(ssl) < 0)
		ERR_clear_error();
}

struct bufferevent *tls_bev_accept(struct tls_server *ts, struct event_base *base, int fd)
{
	struct bufferevent *bev;

	if (ts) {
		SSL *ssl = tls_server_ssl_new(ts);
		bev = ssl ? bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
							   BEV_OPT_CLOSE_ON_FREE)
			  : NULL;
	} else {
		bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!bev)
		evutil_closesocket(fd);
	return bev;
}

void tls_bev_established(struct bufferevent *bev, struct tls_info *info, const char *sid,
			 const char *client, const char *mode)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	tls_info_get(ssl, info);
	log_info("sid=%s event=tls client=%s tls=%s cipher=%s bits=%d mode=%s sni=%s", sid, client,
		 info->version, info->cipher, info->bits, mode, sni ? LOG_ESC(sni) : "-");
}
