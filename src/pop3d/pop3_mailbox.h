/*
 * pop3_mailbox: a user's Maildir as a POP3 maildrop (RFC 1939 3, 8, 11),
 * and the octets of its messages as POP3 sends them.
 *
 * pop3_mailbox_open() takes the maildrop's lock, moves what is in new/ into
 * cur/ (adding the empty info ":2,", as Dovecot does at login), and lists
 * cur/ once: the session works on that snapshot, so that mail delivered
 * during the session is safe and shows up in the next one. Messages are
 * numbered in arrival order (the file names begin with the arrival time).
 * pop3_mailbox_update() is the UPDATE state (RFC 1939 6): it unlinks the
 * messages marked deleted and gives the retrieved ones the seen flag ('S').
 * Nothing else changes the Maildir; a session that ends otherwise deletes
 * nothing.
 *
 * Locking: one session per maildrop, across every worker process: an open
 * file description lock (fcntl F_OFD_SETLK, write lock, never waited for) on
 * the file "carteiro-pop3.lock" inside the Maildir, held until
 * pop3_mailbox_close(). The kernel drops it when the process dies.
 *
 * UIDL (RFC 1939 7): the file name's base, before the Maildir info (":2,")
 * and before the first ',' (the ",S=" and ",W=" size fields), with octets
 * outside 0x21-0x7E left out, so it survives new/ -> cur/ moves, flag
 * changes and restarts. A base longer than 70 octets keeps its first 53 and
 * ends with "." and 16 hex digits of a 64-bit FNV-1a hash of the whole base.
 *
 * Sizes (RFC 1939 11): the octets of the message with CRLF line ends (what
 * RETR sends, before dot-stuffing and without the final "."): Dovecot's
 * ",W=" field of the name when present, else counted from the file (and
 * CRLF added when the last line has no line end, as RETR adds it).
 *
 * Blocking: open, update and pop3_mailbox_open_msg do file I/O: call them on
 * an I/O thread. The pop3_xfer and name functions are pure.
 */
#ifndef CARTEIRO_POP3D_POP3_MAILBOX_H
#define CARTEIRO_POP3D_POP3_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POP3_UIDL_MAX 70
#define POP3_LOCK_FILE "carteiro-pop3.lock"

struct pop3_msg {
	char *name;     /* the file's name in cur/ */
	char uidl[POP3_UIDL_MAX + 1];
	uint64_t size;  /* octets with CRLF line ends */
	bool deleted;   /* DELE in this session */
	bool retrieved; /* RETR in this session: marked seen at UPDATE */
};

struct pop3_mailbox {
	int box, cur, lock; /* the Maildir, its cur/, the lock file (-1: closed) */
	struct pop3_msg *msgs;
	size_t n;
	uint64_t total;   /* sum of the sizes */
	unsigned moved;   /* messages moved from new/ to cur/ at open */
};

/*
 * Lock and list the Maildir of address under root (created when missing).
 * 0; -EWOULDBLOCK when another session holds the lock; other -errno. On any
 * error mb is left closed.
 */
int pop3_mailbox_open(struct pop3_mailbox *mb, const char *root, const char *address);
/* UPDATE: unlink the deleted, mark the retrieved seen. 0 or the first -errno; *deleted
 * counts the messages removed. */
int pop3_mailbox_update(struct pop3_mailbox *mb, unsigned *deleted);
/* Release the lock and free the list (fine on a mailbox whose open failed). */
void pop3_mailbox_close(struct pop3_mailbox *mb);
/* Open message i (0-based) for reading: an fd, or -errno. */
int pop3_mailbox_open_msg(const struct pop3_mailbox *mb, size_t i);

/* The UIDL of a Maildir file name (see above) into out[POP3_UIDL_MAX + 1]. */
void pop3_uidl_from_name(const char *name, char *out);
/* The ",W=" size in a Maildir file name: true and *size when there is one. */
bool pop3_name_wire_size(const char *name, uint64_t *size);

/*
 * A message on its way out (RFC 1939 3): LF -> CRLF (a CR already before the
 * LF is kept, not doubled), '.' doubled at the start of a line, and for TOP
 * only the header, the blank line and the first `lines` lines of the body.
 * Resumable over chunks of any size.
 */
struct pop3_xfer {
	bool cr;             /* the last octet taken was a CR */
	bool body;           /* past the blank line that ends the header */
	bool top;            /* TOP: stop after `lines` body lines */
	bool done;           /* TOP has taken all it sends */
	uint64_t lines;      /* TOP: body lines still to send */
	uint64_t line_octets; /* octets of the current line so far (0: at its start) */
};

void pop3_xfer_init(struct pop3_xfer *x, bool top, uint64_t lines);
/*
 * Convert in[0..n) into out, which must have room for 2 * n octets. Returns
 * the octets written; *used says how many of in were taken (fewer than n only
 * once x->done).
 */
size_t pop3_xfer_convert(struct pop3_xfer *x, const char *in, size_t n, char *out, size_t *used);
/* The end: CRLF when the last line was not ended, then ".CRLF". Returns the octets written
 * into out (room for 5). */
size_t pop3_xfer_finish(struct pop3_xfer *x, char *out);

/* The POP3 size of stored octets (an LF counts as CRLF, except after a CR); for a file
 * read in chunks, *cr carries whether the previous chunk ended with a CR (start: false). */
uint64_t pop3_wire_octets(const char *p, size_t n, bool *cr);

#endif
