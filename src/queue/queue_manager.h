/*
 * queue_manager: the process that delivers what the SMTP workers queued.
 *
 * It learns of new queue files from the kernel (inotify IN_MOVED_TO on
 * queue/, the atomic rename that makes a message durable), rescans the whole
 * queue at start-up, on an inotify overflow and every few minutes, and keeps
 * each message's envelope in memory. Messages with local recipients go to
 * delivery jobs on its I/O pool (Maildir writes block, so they never run on
 * the loop); a message leaves the queue only when every local recipient has
 * it on disk. Temporary failures are retried with a growing delay.
 * Messages for remote domains wait in the queue for the outbound delivery
 * agent.
 */
#ifndef CARTEIRO_QUEUE_QUEUE_MANAGER_H
#define CARTEIRO_QUEUE_QUEUE_MANAGER_H

#include "conf/config.h"

/* Run the queue manager until SIGTERM; returns the exit status. */
int qmgr_main(const struct config *cfg);

#endif
