/*
 * queue_manager: the process that delivers what the SMTP workers queued.
 *
 * It learns of new queue files from the kernel (inotify IN_MOVED_TO on
 * queue/, the atomic rename that makes a message durable), rescans the whole
 * queue at start-up, on an inotify overflow and every few minutes, and keeps
 * each message's envelope in memory. Messages with local recipients go to
 * delivery jobs on its I/O pool (Maildir writes block, so they never run on
 * the loop); a message leaves the queue only when every local recipient has
 * it on disk. Remote recipients go to the outbound agent (deliver/outbound.c),
 * grouped by destination. Temporary failures are retried on retry-schedule
 * until queue-lifetime; permanent ones (and expired messages) bounce to the
 * sender (queue/bounce.c). The control socket (queue/queue_control.c) lets
 * `carteiro queue` list, flush, hold, release, delete and bounce messages.
 */
#ifndef CARTEIRO_QUEUE_QUEUE_MANAGER_H
#define CARTEIRO_QUEUE_QUEUE_MANAGER_H

#include "conf/config.h"

struct userdb;
struct aliasdb;
struct relay_auth;

/* Run the queue manager until SIGTERM; returns the exit status. It owns users and
 * aliases (to address notices to local senders) and reloads them on SIGHUP; auth
 * (NULL: none) holds the relayhost's credentials, read by the master as root. */
int qmgr_main(const struct config *cfg, struct userdb *users, struct aliasdb *aliases,
	      const struct relay_auth *auth);

#endif
