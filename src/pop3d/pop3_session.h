/*
 * pop3_session: the POP3 server state machine, one per connection
 * (RFC 1939; CAPA and response codes RFC 2449; STLS RFC 2595; AUTH RFC 5034;
 * implicit TLS RFC 8314 3.3).
 *
 * Sessions run in the SMTP worker processes, on the same event loops: the
 * worker (smtp_server.c) hands a connection accepted on a pop3 or pop3s
 * listener to pop3_session_start() instead of smtp_session_start(). They
 * share the worker's users table, TLS context, I/O pool, connection limits
 * and failed-login table with the SMTP sessions.
 *
 * States AUTHORIZATION -> TRANSACTION -> UPDATE, and the states in which the
 * session waits for something else than a command; every change goes
 * through one session_enter(). Commands are read in order (pipelining, RFC
 * 2449 6.6) and answered one at a time; the disk work (locking and listing
 * the Maildir, reading messages, the UPDATE) runs on the I/O pool while the
 * session waits.
 */
#ifndef CARTEIRO_POP3D_POP3_SESSION_H
#define CARTEIRO_POP3D_POP3_SESSION_H

#include <event2/util.h>
#include <sys/socket.h>

#include "conf/config.h"

struct smtpd;
struct pop3_session;

/* Take over a connection accepted on a POP3 listener: greet it (or refuse it). */
void pop3_session_start(struct smtpd *d, evutil_socket_t fd, const struct sockaddr *peer,
			socklen_t peerlen, const struct listen_cfg *listener);
/* The server is stopping: close now if waiting for a command, else after the one in
 * progress (a QUIT's UPDATE is finished). */
void pop3_session_stop(struct pop3_session *s);
/* Close at once, whatever the state (shutdown deadline passed); nothing is deleted. */
void pop3_session_kill(struct pop3_session *s);
struct pop3_session *pop3_session_next(struct pop3_session *s);

#endif
