/*
 * auth_limit: failed AUTH attempts per client address, shared by every SMTP
 * worker (and later the POP3 server), so that a password-guessing client is
 * banned for the server as a whole, whichever worker takes its connections.
 *
 * A client's failures are counted from its first failure for `window`
 * seconds (auth-ban-time); when they reach `max` (auth-max-failures) the
 * address is banned for `window` seconds from that failure. A success does
 * not clear the count (an attacker holding one account must not be able to
 * reset it).
 *
 * The table is a fixed set-associative cache in anonymous shared memory
 * (mapped by the master before it forks), guarded by a robust process-shared
 * mutex. It never grows: when a bucket is full, its entry with the oldest
 * activity gives way, so a flood from many addresses can evict others (but
 * costs the attacker one address per eviction and buys no extra guesses).
 * Times are CLOCK_MONOTONIC seconds, the same in every process.
 */
#ifndef CARTEIRO_SMTPD_AUTH_LIMIT_H
#define CARTEIRO_SMTPD_AUTH_LIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct auth_limit;

struct auth_limit *auth_limit_create(void);
void auth_limit_destroy(struct auth_limit *al);
/* Is sa banned at time now? */
bool auth_limit_banned(struct auth_limit *al, const struct sockaddr *sa, int64_t now);
/* Count a failure of sa at now; returns the failures counted in the window, and bans sa
 * once they reach max. */
unsigned auth_limit_failed(struct auth_limit *al, const struct sockaddr *sa, int64_t now,
			   unsigned max, unsigned window);
/* CLOCK_MONOTONIC in seconds, the clock of the table. */
int64_t auth_limit_now(void);

#endif
