/*
 * queue_file: the on-disk format of one queued message, and its envelope in
 * memory.
 *
 * A queue file is a sequence of records, each
 *
 *     <type> <decimal length> ':' <payload> '\n'
 *
 * (no spaces; the length counts payload bytes; leading zeros allowed). The
 * payload is opaque bytes: a length prefix, not an escape or a line end,
 * delimits every field, so no byte a client sends can forge or end a record
 * (the lesson of Exim's "21Nails"). Records, in order:
 *
 *   V  format version, "carteiro-queue-1"; always first
 *   Q  queue id
 *   A  arrival time, "<unix seconds>.<microseconds>"
 *   I  client IP address        H  client HELO name       P  protocol (ESMTP...)
 *   S  envelope sender ("" for the null reverse-path <>)
 *   B  "8BITMIME" or "7BIT"     U  "1": SMTPUTF8 transaction
 *   T  DSN RET: "FULL"/"HDRS"   E  DSN ENVID (decoded)
 *   R  a recipient: payload = status byte, kind byte, address
 *        status: '-' pending, 'W' pending and the delay notice sent,
 *                'D' delivered, 'F' failed (bounced)
 *        kind:   'L' local mailbox, 'X' remote
 *      then, for that recipient, optionally:
 *      O  the address as given in RCPT TO (when it differs)
 *      N  DSN NOTIFY flags, decimal
 *      X  DSN ORCPT "addr-type;address"
 *   M  the message: a 20-digit length, then the message bytes (CRLF line
 *      ends, exactly as received, Received header included), then '\n'
 *   J  optional: header lines to put before the message at delivery, known
 *      only once the whole message was read (Authentication-Results,
 *      DKIM-Signature...); at most QUEUE_PREPEND_MAX bytes
 *   K  end mark; always last. Its payload is empty, or (every file a worker
 *      writes) 8 lowercase hex digits: the CRC-32 (zlib's) of every byte
 *      before the K record except the M record's 20 length digits, with the
 *      status bytes as first written. A queue file reuses a delivered one in
 *      place (no truncation: freeing blocks costs a discard on this kind of
 *      disk), so after a power cut a file whose syncs had not finished may
 *      mix its blocks with the old message's; the CRC finds that
 *      (queue_file_verify, at recovery: see queue_store.c)
 *
 * The status byte of a recipient is updated in place (pwrite of one byte at
 * envelope_rcpt.status_offset) when its delivery is done, so per-recipient
 * progress survives a crash without rewriting the file.
 *
 * Crash states: a file is written in incoming/, fsync'd, then renamed into
 * queue/ (and queue/ fsync'd) before the 250 reply. A file in queue/ is thus
 * always complete; a file in incoming/ is never trusted and removed at
 * start-up. The reader still checks everything (lengths, order, the K
 * mark) and refuses a damaged file.
 */
#ifndef CARTEIRO_QUEUE_QUEUE_FILE_H
#define CARTEIRO_QUEUE_QUEUE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"

#define QUEUE_FILE_VERSION "carteiro-queue-1"
#define QUEUE_ID_LEN 12
/* Longest header section (everything before the message) a reader accepts. */
#define QUEUE_HEADER_MAX (16u * 1024 * 1024)
/* Longest single field of the envelope. */
#define QUEUE_FIELD_MAX 4096

enum rcpt_status {
	RCPT_PENDING = '-',
	RCPT_DELIVERED = 'D',
	RCPT_FAILED = 'F',
	RCPT_WARNED = 'W', /* still pending; the sender was told of the delay */
};

/* Is a recipient status one that is still to be delivered? */
static inline bool rcpt_status_pending(char st)
{
	return st == RCPT_PENDING || st == RCPT_WARNED;
}

enum rcpt_kind {
	RCPT_LOCAL = 'L',
	RCPT_REMOTE = 'X',
};

struct envelope_rcpt {
	char status;     /* enum rcpt_status */
	char kind;       /* enum rcpt_kind */
	char *address;   /* final address: the mailbox or the remote address */
	char *orig;      /* as given in RCPT TO; NULL when the same as address */
	unsigned notify; /* SMTP_NOTIFY_* bits, 0 when not given */
	char *orcpt;     /* NULL when not given */
	off_t status_offset; /* reader: where the status byte is in the file */
};

struct envelope {
	char id[QUEUE_ID_LEN + 1];
	int64_t arrival_sec;
	long arrival_usec;
	char *client_ip;
	char *helo;
	char *protocol;
	char *sender; /* "" for <> */
	bool body_8bit;
	bool smtputf8;
	char ret;     /* 0, 'F' (FULL) or 'H' (HDRS) */
	char *envid;  /* NULL when not given */
	struct envelope_rcpt *rcpts;
	size_t nrcpts;
	size_t rcpts_cap;
	/* Reader results. */
	off_t msg_offset; /* first byte of the message (the M bytes) in the file */
	uint64_t msg_size;
	off_t pre_offset; /* the J header lines, delivered before the M bytes */
	uint64_t pre_size; /* 0 without a J record */
	bool has_crc;      /* the K record carries a CRC */
	uint32_t crc;
};

/* Bytes of the message as delivered: the J header lines, then the M bytes. */
static inline uint64_t envelope_msg_total(const struct envelope *env)
{
	return env->pre_size + env->msg_size;
}

void envelope_init(struct envelope *env);
void envelope_free(struct envelope *env);
/* Set a string field (copied); 0 or -ENOMEM. */
int envelope_set(char **field, const char *value);
/* Append a recipient (strings copied; orig/orcpt may be NULL); 0 or -ENOMEM. */
int envelope_add_rcpt(struct envelope *env, char kind, const char *address, const char *orig,
		      unsigned notify, const char *orcpt);
/* Number of recipients still pending, optionally only of one kind (0: any). */
size_t envelope_pending(const struct envelope *env, char kind);

/*
 * Serialize everything up to and including the M record's header into out.
 * *len_offset gets the offset (within out) of the 20-digit message length,
 * to be patched with queue_file_patch_length() once the size is known.
 */
int queue_file_write_header(const struct envelope *env, struct buf *out, size_t *len_offset);
/* The 20 digits of a message length, for the M record (no NUL). */
void queue_file_format_length(uint64_t len, char digits[20]);
/* The bytes that end a file after the message, without a CRC: "\nK0:\n". */
#define QUEUE_FILE_TRAILER "\nK0:\n"
#define QUEUE_FILE_TRAILER_LEN 5
/* With one: "\nK8:<8 hex digits>\n". */
#define QUEUE_FILE_TRAILER_CRC_LEN 13
void queue_file_format_trailer_crc(uint32_t crc, char out[QUEUE_FILE_TRAILER_CRC_LEN + 1]);
/*
 * Feed n bytes found at file offset off into a queue file's CRC (start from
 * 0), leaving out the M record's length digits at len_offset.
 */
uint32_t queue_file_crc(uint32_t crc, uint64_t off, const void *p, size_t n, uint64_t len_offset);
/*
 * Check the CRC of a file whose envelope was read (queue_file_read_envelope):
 * 0 when it matches or the file has none, -EINVAL when it does not, -errno.
 */
int queue_file_verify(int fd, const struct envelope *env);
/* Longest J record (header lines added at the end of DATA). */
#define QUEUE_PREPEND_MAX (64u * 1024)

/*
 * Append a J record of the header lines hdrs (CRLF-terminated lines, at most
 * QUEUE_PREPEND_MAX bytes) to out, to be written between the message and the
 * trailer: "\nJ<len>:<hdrs>". 0, -EINVAL (too long) or -ENOMEM.
 */
int queue_file_format_prepend(const char *hdrs, size_t len, struct buf *out);
/*
 * Parse the bytes after a message's last byte (at most QUEUE_PREPEND_MAX + 32
 * of them): a J record and/or the trailer. On 0, *pre_skip is the offset of
 * the J payload within p (0 when none), *pre_size its length, and *tail_len
 * the bytes from the message's end to the end of the file. -EINVAL otherwise.
 */
int queue_file_parse_tail(const char *p, size_t n, size_t *pre_skip, uint64_t *pre_size,
			  size_t *tail_len);

/*
 * Parse the header section of a queue file from data[0..len). Returns 0 with
 * env filled (msg_offset, msg_size, status offsets), -EAGAIN when more bytes
 * are needed (the header continues past len), or -EINVAL for a malformed
 * file. The caller checks that the file size is
 * msg_offset + msg_size + QUEUE_FILE_TRAILER_LEN and that the trailer is there.
 */
int queue_file_parse_header(const char *data, size_t len, struct envelope *env);

/* Read and check a whole queue file's envelope from an open fd (the message is not read). */
int queue_file_read_envelope(int fd, struct envelope *env);
/* The same with preadv2 flags: RWF_NOWAIT makes it -EWOULDBLOCK when a read would wait for
 * the disk (nothing else is, with those flags; env must then be freed and read again). */
int queue_file_read_envelope_flags(int fd, struct envelope *env, int rwflags);
/* Mark one recipient's status on disk (pwrite of its status byte; no fsync). */
int queue_file_set_status(int fd, const struct envelope_rcpt *rcpt, char status);

/* Queue ids: 11 base-32 characters of a strictly increasing microsecond clock and one of the
 * generator's slot (the process that made it), so two processes never make the same id. */
struct queue_id_gen {
	uint64_t last;
	unsigned slot;
};
void queue_id_init(struct queue_id_gen *g, unsigned slot);
void queue_id_next(struct queue_id_gen *g, char out[QUEUE_ID_LEN + 1]);
/* Does name look like a queue id (length and alphabet)? */
bool queue_id_valid(const char *name);
/* The slot of a valid id. */
unsigned queue_id_slot(const char *id);

#endif
