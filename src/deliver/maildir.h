/*
 * maildir: delivery of one queued message into one Maildir mailbox
 * (https://cr.yp.to/proto/maildir.html, with Dovecot's ",S=" and ",W="
 * size fields).
 *
 * The mailbox of user@domain is <maildir-root>/<domain>/<user>/ with tmp/,
 * new/ and cur/, created on first delivery (and their parents fsync'd). The
 * message is written to tmp/ with "Return-Path:" and "Delivered-To:" first
 * and LF line ends (the Unix convention mail readers expect; ",W=" keeps the
 * CRLF size for POP3/IMAP), fdatasync'd, renamed into new/, and new/ is
 * fsync'd. Only then does the caller forget the recipient.
 *
 * File names are deterministic per message and recipient:
 *   <arrival seconds>.M<arrival microseconds>Q<queue id>R<recipient index>.<host>
 * so that, after a crash between the rename and the queue's own record of it,
 * recovery can see that the message is already there (check_existing) and
 * not deliver it twice.
 *
 * Blocking: runs on an I/O thread, never on the event loop.
 */
#ifndef CARTEIRO_DELIVER_MAILDIR_H
#define CARTEIRO_DELIVER_MAILDIR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct maildir_msg {
	const char *root;        /* maildir-root */
	const char *hostname;    /* for unique names */
	const char *queue_id;
	int64_t arrival_sec;
	long arrival_usec;
	const char *return_path; /* envelope sender, "" for <> */
	int fd;                  /* queue file */
	off_t offset;            /* the message's first byte in fd (after the prefix) */
	uint64_t size;           /* message bytes (CRLF line ends), the prefix included */
	off_t pre_offset;        /* header lines delivered first (pre_size bytes, 0: none) */
	uint64_t pre_size;
};

/*
 * Deliver m to the mailbox of address ("local@domain", canonical lower case),
 * as recipient number rcpt_index of the message. With check_existing, a
 * message already delivered under the same name (in new/ or cur/) counts as
 * delivered. 0, or -errno (every error is temporary: the caller retries).
 */
int maildir_deliver(const struct maildir_msg *m, const char *address, unsigned rcpt_index,
		    bool check_existing);

/* The directories of one mailbox (the Maildir and its tmp/, new/, cur/). */
struct maildir_fds {
	int box, tmp, new, cur;
};

/*
 * Open the Maildir of address ("local@domain") under root, creating what is
 * missing (and fsyncing the parents of what was created); every component is
 * opened with O_NOFOLLOW. 0, or -errno (-EINVAL for an unsafe name).
 */
int maildir_open(const char *root, const char *address, struct maildir_fds *mb);
/* Close the fds that are open (each set to -1). */
void maildir_close(struct maildir_fds *mb);

#endif
