/*
 * greylist: temporary refusal of mail from unknown (client, sender,
 * recipient) triplets (the technique of Harris, 2003; postgrey, sqlgrey).
 *
 * A triplet is the client's network (/24 for IPv4, /64 for IPv6, so that a
 * sender's pool of outbound servers counts as one client), the envelope
 * sender and the recipient, both lower-cased. The first attempt of a triplet
 * is refused (451 4.7.1 at RCPT); a retry at least `delay` seconds after the
 * first attempt passes, and the triplet is then remembered as good for
 * `expire` seconds after it was last seen (36 days by default, as postgrey's
 * 35: a monthly newsletter stays known). A triplet that never retried is
 * forgotten `retry_window` seconds after its first attempt (1 day, sqlgrey's
 * default: real servers retry within minutes to hours; after a day the next
 * attempt simply starts over).
 *
 * Storage, shared by every worker and kept across restarts: a fixed-size
 * table in a file of the spool (greylist-max-entries entries of 32 bytes,
 * plus a 4 KiB header) mapped MAP_SHARED by the master before it forks, so
 * a check is a few memory accesses under a process-shared robust mutex (the
 * mutex lives in anonymous shared memory, not in the file: a lock word left
 * in the file by a crash could not be recovered). The kernel writes the
 * pages back (within about 30 s, and after the processes are gone). After
 * a power loss the latest triplets may be lost, which only means one more
 * delay for them.
 *
 * Why not one small file per triplet, made on the I/O threads: measured on
 * this machine (ext4, 2 cores), creating such a file costs 12 us and a
 * lookup with a touch 3 us, plus a hop to an I/O thread and back, and every
 * triplet takes a 4 KiB block (100,000 triplets: 396 MB of disk). A check of
 * this table costs 1.1 to 1.5 us on the event loop, the SHA-256 of the
 * triplet included (release build; tests/unit/test_greylist.c prints it),
 * and 100,000 triplets take 3.2 MB.
 *
 * The table is set-associative (buckets of 8 entries; the bucket and the key
 * come from a SHA-256 of the triplet salted with a random value kept in the
 * file, so a client cannot aim at the entries of another). A new triplet
 * takes a free or expired entry of its bucket, else the one never retried
 * that was seen longest ago, else the good one seen longest ago: a flood of
 * new triplets evicts pending ones before it evicts good ones.
 *
 * Auto-allowing (postgrey's --auto-whitelist-clients, milter-greylist's
 * autowhite): a client network that has passed greylisting with auto_allow
 * different triplets (each retried after the delay, as only a real mail
 * server does) is known as a sender. Its new triplets pass at once and take
 * no entry; the network's own entry is kept for `expire` seconds after it
 * was last seen, like a good triplet. A big provider's servers retry every
 * message they send to a new recipient; without this, each of them waits
 * the delay. The network's entry is keyed like a triplet (salted SHA-256,
 * under its own tag), so it cannot be aimed at either.
 *
 * Times are wall-clock seconds (they must survive a restart). A header that
 * does not match (another version, a broken file) starts a fresh table,
 * logged; a file made for another greylist-max-entries is carried over.
 */
#ifndef CARTEIRO_POLICY_GREYLIST_H
#define CARTEIRO_POLICY_GREYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define GREYLIST_FILE "greylist.db"
#define GREYLIST_ENTRIES_MIN 1024
#define GREYLIST_ENTRIES_MAX (4u << 20)

struct greylist;

struct greylist_times {
	unsigned delay;        /* seconds before a retry passes */
	unsigned retry_window; /* seconds a triplet that never passed is kept */
	unsigned expire;       /* seconds a good triplet is kept after it was last seen */
	unsigned auto_allow;   /* passed triplets after which a network passes at once; 0: never */
};

enum greylist_status {
	GREYLIST_PASS,  /* a known good triplet, or a retry after the delay (first_pass) */
	GREYLIST_NEW,   /* first attempt: refuse */
	GREYLIST_EARLY, /* retried before the delay: refuse */
};

struct greylist_result {
	enum greylist_status status;
	bool first_pass;  /* PASS of a triplet that was pending until now */
	bool auto_allowed; /* PASS because the client's network is auto-allowed */
	bool allowed_now;  /* this first_pass made the network auto-allowed */
	unsigned age;     /* seconds since the triplet's first attempt */
	unsigned wait;    /* NEW, EARLY: seconds before a retry can pass */
};

/*
 * Open (or create) the table in the file path for max_entries triplets
 * (rounded up to a power of two), owned by uid:gid when run as root. NULL
 * with a message in err.
 */
struct greylist *greylist_open(const char *path, size_t max_entries, long uid, long gid,
			       char *err, size_t errlen);
/* Unmap the table in the calling process (the kernel writes the pages back). */
void greylist_close(struct greylist *g);
/* Check the triplet at time now (seconds since the epoch) and record the attempt. */
void greylist_check(struct greylist *g, const struct sockaddr *client, const char *sender,
		    const char *rcpt, int64_t now, const struct greylist_times *t,
		    struct greylist_result *out);
/* Entries in use (pending or good triplets, auto-allow counts; not expired at now). */
size_t greylist_count(struct greylist *g, int64_t now, const struct greylist_times *t);

#endif
