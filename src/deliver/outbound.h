/*
 * outbound: delivery of queued mail to other mail servers, for the queue
 * manager's loop.
 *
 * A delivery is one message's recipients at one destination: a domain (its
 * MX hosts, RFC 5321 5.1), an address literal, or the relayhost when one is
 * configured. Deliveries wait in their destination's FIFO; each destination
 * opens at most destination-concurrency connections (outbound-max-connections
 * in all), and a connection that finishes a delivery takes the next one of
 * its destination, so one connection carries many messages.
 *
 * A new connection walks the destination's hosts: MX records by preference
 * (equal preferences shuffled; no MX: the domain's own addresses; null MX,
 * RFC 7505: permanent failure), the IPv6 and IPv4 addresses of each, and
 * takes the first server that greets and accepts EHLO (and STARTTLS/AUTH when
 * required). A connection failure, timeout or 4xx at any of those steps moves
 * on to the next address. When every address failed, the deliveries of the
 * destination that no other connection can take fail with the last error.
 *
 * Each delivery ends with done(d): every d->msg.rcpts[i].reply holds that
 * recipient's outcome (2xx delivered, temporary, or permanent), and d->relay
 * names the server that answered (empty when none did).
 */
#ifndef CARTEIRO_DELIVER_OUTBOUND_H
#define CARTEIRO_DELIVER_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"
#include "deliver/smtp_client.h"
#include "dns/dns.h"

struct event_base;
struct outbound;

struct outbound_delivery {
	/* Set by the caller. */
	char dest[DNS_NAME_MAX + 3]; /* lower-case domain or "[literal]"; ignored with a relayhost */
	const char *queue_id;        /* for logs */
	struct smtpc_msg msg;        /* sender, recipients, message (fd, offset, size) */
	/* Called with msg.fd < 0 right before the transaction, to open the message (sets
	 * msg.fd): 0 or -errno (the delivery then fails temporarily). The caller closes it. */
	int (*open_message)(struct outbound_delivery *d);
	void (*done)(struct outbound_delivery *d);
	void *arg;
	/* Set by outbound before done(). */
	char relay[DNS_NAME_MAX + 64]; /* "host[address]:port" of the server that answered */
	char relay_host[DNS_NAME_MAX + 1];
	bool tls, tls_verified;
	bool dsn; /* the server offered DSN (RFC 3461): it reports success itself */
	/* Private. */
	struct outbound_delivery *next;
};

/*
 * Start the agent on base with cfg's outbound keys (dns-server, relayhost...).
 * auth_user/auth_pass: credentials for the relayhost (NULL: none), copied.
 * NULL on error, with a message in err.
 */
struct outbound *outbound_new(struct event_base *base, const struct config *cfg,
			      const char *auth_user, const char *auth_pass, char *err, size_t errlen);
/* Queue a delivery; done(d) runs later from the loop, exactly once (unless outbound_free). */
void outbound_submit(struct outbound *o, struct outbound_delivery *d);
/* Connections open, for logs. */
size_t outbound_connections(const struct outbound *o);
/* Close every connection and forget every delivery (no done() runs). */
void outbound_free(struct outbound *o);

/*
 * The destination of a remote address: its domain in lower case, or its
 * address literal ("[192.0.2.1]"), into dest. false when the address has no
 * usable domain.
 */
bool outbound_destination(const char *address, char *dest, size_t destlen);

#endif
