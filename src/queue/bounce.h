/*
 * bounce: delivery status notifications (RFC 3464) that carteiro sends to
 * the envelope sender when a message cannot be delivered (or is delayed), and
 * the success reports a sender asked for with NOTIFY=SUCCESS (RFC 3461):
 * delivered into a mailbox, relayed to a server that does not offer DSN, or
 * an alias expanded.
 *
 * The notification is a multipart/report; report-type=delivery-status
 * message (RFC 6522) with three parts:
 *   1. text/plain: what happened, for a human;
 *   2. message/delivery-status: Reporting-MTA, Original-Envelope-Id,
 *      Arrival-Date, then per recipient Original-Recipient, Final-Recipient,
 *      Action, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date
 *      (Will-Retry-Until for delays);
 *   3. the original message's header section (text/rfc822-headers), or the
 *      whole message (message/rfc822) when the sender asked RET=FULL and it is
 *      not larger than max_returned. A success report returns the header
 *      section only, whatever RET says (RFC 3461 4.3: RET is about failures).
 * For an SMTPUTF8 message the UTF-8 forms of RFC 6533 are used
 * (message/global-delivery-status, message/global-headers, message/global).
 *
 * It comes from MAILER-DAEMON@hostname with Auto-Submitted: auto-replied
 * (RFC 3834), and is sent with the null reverse-path so that it never
 * bounces in turn. Text from remote servers is untrusted: it is reduced to
 * printable ASCII and folded before it goes into a header field.
 */
#ifndef CARTEIRO_QUEUE_BOUNCE_H
#define CARTEIRO_QUEUE_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue/queue_file.h"
#include "util/buf.h"

enum bounce_action {
	BOUNCE_FAILED = 'f',    /* Action: failed */
	BOUNCE_DELAYED = 'd',   /* Action: delayed (a delay warning) */
	/* Success reports (never in the same notification as the two above). */
	BOUNCE_DELIVERED = 'v', /* Action: delivered (into a mailbox here) */
	BOUNCE_RELAYED = 'r',   /* Action: relayed (to a server that does not offer DSN) */
	BOUNCE_EXPANDED = 'x',  /* Action: expanded: the alias rcpt->orig; Final-Recipient is it */
};

/* Is a a success report's action? */
static inline bool bounce_action_success(enum bounce_action a)
{
	return a == BOUNCE_DELIVERED || a == BOUNCE_RELAYED || a == BOUNCE_EXPANDED;
}

struct bounce_rcpt {
	const struct envelope_rcpt *rcpt; /* address, original address, ORCPT */
	enum bounce_action action;
	const char *status;     /* enhanced status code, "5.1.1" */
	const char *remote_mta; /* the server that answered, or NULL */
	const char *diagnostic; /* that server's reply ("550 5.1.1 no such user"), or NULL */
	const char *reason;     /* our explanation when no server answered, or NULL */
	int64_t last_attempt;   /* unix time, 0: none */
};

struct bounce_params {
	const char *hostname;      /* Reporting-MTA, and MAILER-DAEMON@hostname */
	const char *bounce_id;     /* the notification's own queue id (Message-ID, boundary) */
	int64_t now;               /* unix time: Date */
	int64_t retry_until;       /* delays: Will-Retry-Until (unix time) */
	uint64_t max_returned;     /* RET=FULL returns the whole message only up to this size */
};

/*
 * Build the notification for env (its message: the J header lines and the M
 * bytes of the queue file msg_fd, envelope_msg_total(env) bytes) into out: a complete message,
 * headers and body, CRLF line ends. 0, or -errno (I/O error, -ENOMEM,
 * -ENOSPC when out's maximum is too small).
 */
int bounce_build(const struct bounce_params *p, const struct envelope *env,
		 const struct bounce_rcpt *rcpts, size_t nrcpts, int msg_fd, struct buf *out);

/*
 * Put a complete message into the queue, durably, as one new queue file:
 * env (sender, recipients; env->id a fresh valid queue id) and the message
 * bytes. Written in <spool>/incoming/ (O_EXCL), fdatasync'd, renamed into
 * queue/ (RENAME_NOREPLACE) and queue/ fsync'd. Blocking: call it on an I/O
 * thread. spool_fd is the spool directory. 0 or -errno; nothing is left
 * behind on error.
 */
int queue_inject(int spool_fd, struct envelope *env, const void *msg, size_t len);

#endif
