/*
 * ratelimit: event rates per client address and per authenticated user,
 * shared by every SMTP worker (connections per client, messages per client,
 * messages and recipients per user).
 *
 * A rate "N/WINDOW" allows N events in any WINDOW, estimated with a sliding
 * window counter: the counts of the current and the previous fixed window,
 * the previous one weighted by the part of it that the sliding window still
 * covers (count = prev * (1 - elapsed / window) + cur). This is exact for
 * evenly spread events, never lets through more than twice the rate, and
 * needs 16 bytes per key instead of one timestamp per event. Every attempt
 * counts, refused ones included (as Postfix's anvil counts requests): a
 * client must slow down below the rate, not merely wait, to get through.
 *
 * The table is a fixed set-associative cache in anonymous shared memory
 * (mapped by the master before it forks), guarded by a robust process-shared
 * mutex, as auth_limit.c: it never grows; when a bucket is full the entry
 * idle longest gives way, so a flood from many addresses can evict others
 * (and costs one address per eviction). A worker that dies in the critical
 * section leaves at most one count stale. Times are CLOCK_MONOTONIC
 * milliseconds, the same in every process. Nothing survives a restart.
 */
#ifndef CARTEIRO_POLICY_RATELIMIT_H
#define CARTEIRO_POLICY_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/buf.h"

#define RATELIMIT_COUNT_MAX 1000000000u
#define RATELIMIT_WINDOW_MAX (7u * 86400)

/* A configured rate: count events per window seconds; count 0: unlimited. */
struct ratelimit_rate {
	unsigned count;
	unsigned window;
};

enum ratelimit_kind {
	RATELIMIT_CONNECTIONS,   /* per client address */
	RATELIMIT_MESSAGES,      /* MAIL commands per client address */
	RATELIMIT_USER_MESSAGES, /* MAIL commands per authenticated user */
	RATELIMIT_USER_RCPTS,    /* RCPT commands per authenticated user */
	RATELIMIT_KINDS
};

struct ratelimit;

/* "N/DURATION" (30/1m, 500/1h), or "0" / "off"; 0 or -EINVAL. */
int ratelimit_rate_parse(struct slice s, struct ratelimit_rate *out);

struct ratelimit *ratelimit_create(void);
void ratelimit_destroy(struct ratelimit *rl);

/*
 * Count one event of kind for key at now_ms; true when it is within rate
 * (always, for an unlimited rate, which is not counted). *count (if not
 * NULL) gets the estimated events in the window before this one.
 */
bool ratelimit_hit(struct ratelimit *rl, enum ratelimit_kind kind, const uint8_t key[16],
		   const struct ratelimit_rate *rate, int64_t now_ms, unsigned *count);

/* The key of a client address (IPv4 as IPv4-mapped IPv6). */
void ratelimit_key_addr(const struct sockaddr *sa, uint8_t key[16]);
/* The key of a user name (case-insensitive): the first 16 bytes of its SHA-256. */
void ratelimit_key_name(const char *name, uint8_t key[16]);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t ratelimit_now_ms(void);
/* The name of a kind for log lines ("connections", "user_recipients"). */
const char *ratelimit_kind_name(enum ratelimit_kind kind);

#endif
