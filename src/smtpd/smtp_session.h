/*
 * smtp_session: the SMTP server state machine, one per connection
 * (RFC 5321 3, 4.1, 4.3.2; PIPELINING RFC 2920; CHUNKING RFC 3030).
 *
 * States and the commands each allows are in one table (smtp_session.c);
 * every state change goes through session_enter(), which logs it at debug
 * level. Input is processed in arrival order, reply by reply, so pipelined
 * command groups are answered in one write; processing pauses (and reading
 * stops) while a message is being committed to the spool, while the spool
 * asks for back-pressure, and while the client is not reading its replies.
 */
#ifndef CARTEIRO_SMTPD_SMTP_SESSION_H
#define CARTEIRO_SMTPD_SMTP_SESSION_H

#include <event2/util.h>
#include <sys/socket.h>

#include "conf/config.h"

struct smtpd;
struct smtp_session;

/* Take over an accepted connection: greet the client (or refuse it with 421). */
void smtp_session_start(struct smtpd *d, evutil_socket_t fd, const struct sockaddr *peer,
			socklen_t peerlen, const struct listen_cfg *listener);
/* The server is stopping: close now if idle, else after the transaction in flight. */
void smtp_session_stop(struct smtp_session *s);
/* Close at once, whatever the state (shutdown deadline passed). */
void smtp_session_kill(struct smtp_session *s);
struct smtp_session *smtp_session_next(struct smtp_session *s);

#endif
