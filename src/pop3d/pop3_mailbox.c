/*
 * pop3_mailbox: a Maildir as a POP3 maildrop. See pop3_mailbox.h.
 *
 * RFC 1939 3 (byte-stuffing, CRLF), 6 (UPDATE), 7 (UIDL: 1-70 octets of
 * 0x21-0x7E), 8 (locking the maildrop), 11 (sizes with CRLF line ends);
 * Maildir: https://cr.yp.to/proto/maildir.html (new/ -> cur/ with ":2,"
 * info and flags in ASCII order).
 *
 * Security: every file is opened relative to the Maildir's directory fds
 * with O_NOFOLLOW, and names from readdir() that begin with '.' or could
 * not be a Maildir name are skipped, so a planted symlink or "../" cannot
 * lead outside the mailbox.
 */
#include "pop3d/pop3_mailbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/maildir.h"
#include "util/buf.h"
#include "util/fileio.h"
#include "util/str.h"

#define SCAN_CHUNK (64u * 1024)
#define NAME_MAX_LEN 255
/* A maildrop larger than this many messages is refused rather than listed. */
#define MAILBOX_MSGS_MAX 1000000u

/* --- names ---------------------------------------------------------------- */

static uint64_t fnv1a64(const char *p, size_t n)
{
	uint64_t h = UINT64_C(14695981039346656037);
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

void pop3_uidl_from_name(const char *name, char *out)
{
	size_t base = strcspn(name, ":,"), o = 0;
	char full[NAME_MAX_LEN + 1];

	for (size_t i = 0; i < base && o < sizeof full - 1; i++)
		if (ascii_isgraph((unsigned char)name[i]))
			full[o++] = name[i];
	if (o > 0 && o <= POP3_UIDL_MAX) {
		memcpy(out, full, o);
		out[o] = '\0';
		return;
	}
	/* Too long, or nothing printable: a prefix and a hash of the whole base. */
	size_t keep = o > 53 ? 53 : o;
	memcpy(out, full, keep);
	snprintf(out + keep, POP3_UIDL_MAX + 1 - keep, "%s%016llx", keep ? "." : "",
		 (unsigned long long)fnv1a64(name, base));
}

bool pop3_name_wire_size(const char *name, uint64_t *size)
{
	const char *info = strchr(name, ':');
	size_t end = info ? (size_t)(info - name) : strlen(name);

	for (const char *p = name; (p = memchr(p, ',', end - (size_t)(p - name))); p++) {
		if (p[1] != 'W' || p[2] != '=')
			continue;
		size_t n = strspn(p + 3, "0123456789");
		if (n == 0 || (size_t)(p + 3 + n - name) > end)
			continue;
		if (parse_u64((struct slice){ p + 3, n }, UINT64_MAX, size) == 0)
			return true;
	}
	return false;
}

/* Arrival order: the leading seconds numerically, then the whole name. */
static int msg_cmp(const void *a, const void *b)
{
	const struct pop3_msg *x = a, *y = b;
	unsigned long long sx = strtoull(x->name, NULL, 10), sy = strtoull(y->name, NULL, 10);
	if (sx != sy)
		return sx < sy ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* --- the octets on the wire ------------------------------------------------ */

uint64_t pop3_wire_octets(const char *p, size_t n, bool *cr)
{
	uint64_t total = n;
	const char *end = p + n, *q = p;
	const char *lf;

	while ((lf = memchr(q, '\n', (size_t)(end - q)))) {
		bool before_cr = lf > q ? lf[-1] == '\r' : *cr;
		if (!before_cr)
			total++;
		q = lf + 1;
	}
	if (n)
		*cr = p[n - 1] == '\r';
	return total;
}

void pop3_xfer_init(struct pop3_xfer *x, bool top, uint64_t lines)
{
	memset(x, 0, sizeof *x);
	x->top = top;
	x->lines = lines;
}

/* A line ended: where the header ends, and where TOP stops. */
static void xfer_line_end(struct pop3_xfer *x)
{
	bool empty = x->line_octets == 0 || (x->line_octets == 1 && x->cr);
	if (!x->body) {
		if (empty) {
			x->body = true;
			if (x->top && x->lines == 0)
				x->done = true;
		}
	} else if (x->top && --x->lines == 0) {
		x->done = true;
	}
	x->line_octets = 0;
	x->cr = false;
}

size_t pop3_xfer_convert(struct pop3_xfer *x, const char *in, size_t n, char *out, size_t *used)
{
	size_t i = 0, o = 0;

	while (i < n && !x->done) {
		const char *lf = memchr(in + i, '\n', n - i);
		size_t seg = lf ? (size_t)(lf - (in + i)) : n - i;
		if (seg) {
			if (x->line_octets == 0 && in[i] == '.')
				out[o++] = '.';
			memcpy(out + o, in + i, seg);
			o += seg;
			x->line_octets += seg;
			x->cr = in[i + seg - 1] == '\r';
			i += seg;
		}
		if (!lf)
			break;
		if (!x->cr)
			out[o++] = '\r';
		out[o++] = '\n';
		i++;
		xfer_line_end(x);
	}
	*used = i;
	return o;
}

size_t pop3_xfer_finish(struct pop3_xfer *x, char *out)
{
	size_t o = 0;
	if (x->line_octets) {
		if (!x->cr)
			out[o++] = '\r';
		out[o++] = '\n';
		x->line_octets = 0;
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

/* --- the maildrop ----------------------------------------------------------- */

/* Could this be a Maildir file name? Not ".", "..", dot files, nor anything with '/'. */
static bool name_ok(const char *name)
{
	size_t n = strlen(name);
	return n > 0 && n <= NAME_MAX_LEN && name[0] != '.' && !strchr(name, '/');
}

/* The size of a file without ",W=": counted. */
static int count_size(int dirfd, const char *name, uint64_t *size)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char *chunk = malloc(SCAN_CHUNK);
	if (!chunk) {
		close(fd);
		return -ENOMEM;
	}
	uint64_t total = 0;
	bool cr = false;
	char last = '\n';
	ssize_t r;
	while ((r = read(fd, chunk, SCAN_CHUNK)) > 0) {
		total += pop3_wire_octets(chunk, (size_t)r, &cr);
		last = chunk[r - 1];
	}
	int err = r < 0 ? -errno : 0;
	free(chunk);
	close(fd);
	if (err)
		return err;
	/* RETR ends an unterminated last line with CRLF: it counts. */
	if (total && last != '\n')
		total += cr ? 1 : 2;
	*size = total;
	return 0;
}

/* Move every message of new/ to cur/ with the info ":2," (kept if it has one). */
static int move_new(struct maildir_fds *md, unsigned *moved)
{
	DIR *d = dir_scan_open(md->new);
	if (!d)
		return -errno;
	struct dirent *de;
	int r = 0;
	char target[NAME_MAX_LEN + 8];
	while ((de = readdir(d))) {
		if (!name_ok(de->d_name))
			continue;
		bool has_info = strchr(de->d_name, ':') != NULL;
		if (snprintf(target, sizeof target, "%s%s", de->d_name, has_info ? "" : ":2,") >
		    NAME_MAX_LEN)
			continue; /* no room for the info: left in new/, listed from there next time */
		if (renameat2(md->new, de->d_name, md->cur, target, RENAME_NOREPLACE) < 0) {
			if (errno == ENOENT || errno == EEXIST)
				continue;
			r = -errno;
			break;
		}
		(*moved)++;
	}
	closedir(d);
	if (r == 0 && *moved && (fsync(md->cur) < 0 || fsync(md->new) < 0))
		r = -errno;
	return r;
}

/* List cur/ into mb. */
static int list_cur(struct pop3_mailbox *mb)
{
	DIR *d = dir_scan_open(mb->cur);
	if (!d)
		return -errno;
	size_t cap = 0;
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!name_ok(de->d_name))
			continue;
		if (mb->n == cap) {
			size_t ncap, bytes;
			if (cap >= MAILBOX_MSGS_MAX) {
				r = -EFBIG;
				break;
			}
			ncap = cap ? cap * 2 : 64;
			void *p = NULL;
			if (size_mul(ncap, sizeof *mb->msgs, &bytes))
				p = realloc(mb->msgs, bytes);
			if (!p) {
				r = -ENOMEM;
				break;
			}
			mb->msgs = p;
			cap = ncap;
		}
		struct pop3_msg *m = &mb->msgs[mb->n];
		memset(m, 0, sizeof *m);
		m->name = strdup(de->d_name);
		if (!m->name) {
			r = -ENOMEM;
			break;
		}
		mb->n++;
		if (!pop3_name_wire_size(m->name, &m->size)) {
			int e = count_size(mb->cur, m->name, &m->size);
			if (e == -ENOENT || e == -ELOOP) {
				/* Gone meanwhile, or not a regular file: not a message. */
				free(m->name);
				mb->n--;
				continue;
			}
			if (e < 0) {
				r = e;
				break;
			}
		}
		pop3_uidl_from_name(m->name, m->uidl);
	}
	closedir(d);
	if (r == 0 && mb->n)
		qsort(mb->msgs, mb->n, sizeof *mb->msgs, msg_cmp);
	for (size_t i = 0; r == 0 && i < mb->n; i++)
		mb->total += mb->msgs[i].size;
	return r;
}

int pop3_mailbox_open(struct pop3_mailbox *mb, const char *root, const char *address)
{
	struct maildir_fds md;
	int r;

	memset(mb, 0, sizeof *mb);
	mb->box = mb->cur = mb->lock = -1;
	r = maildir_open(root, address, &md);
	if (r < 0)
		return r;
	mb->lock = openat(md.box, POP3_LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (mb->lock < 0) {
		r = -errno;
		goto fail;
	}
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	if (fcntl(mb->lock, F_OFD_SETLK, &fl) < 0) {
		r = errno == EAGAIN || errno == EACCES ? -EWOULDBLOCK : -errno;
		goto fail;
	}
	r = move_new(&md, &mb->moved);
	if (r < 0)
		goto fail;
	mb->box = md.box;
	mb->cur = md.cur;
	md.box = md.cur = -1;
	maildir_close(&md);
	r = list_cur(mb);
	if (r < 0)
		pop3_mailbox_close(mb);
	return r;
fail:
	maildir_close(&md);
	pop3_mailbox_close(mb);
	return r;
}

/* The name with the seen flag added to its info ("x:2," -> "x:2,S"; flags stay sorted). */
static bool seen_name(const char *name, char *out, size_t outlen)
{
	const char *info = strstr(name, ":2,");
	if (!info || strchr(info + 3, 'S'))
		return false;
	size_t head = (size_t)(info + 3 - name);
	const char *flags = info + 3;
	size_t before = strspn(flags, "DFPR"); /* flags that sort before 'S' */
	int n = snprintf(out, outlen, "%.*s%.*sS%s", (int)head, name, (int)before, flags,
			 flags + before);
	return n > 0 && (size_t)n < outlen && n <= NAME_MAX_LEN;
}

int pop3_mailbox_update(struct pop3_mailbox *mb, unsigned *deleted)
{
	int r = 0;
	bool changed = false;
	char seen[NAME_MAX_LEN + 2];

	*deleted = 0;
	for (size_t i = 0; i < mb->n; i++) {
		struct pop3_msg *m = &mb->msgs[i];
		if (m->deleted) {
			if (unlinkat(mb->cur, m->name, 0) < 0 && errno != ENOENT) {
				if (r == 0)
					r = -errno;
				continue;
			}
			(*deleted)++;
			changed = true;
		} else if (m->retrieved && seen_name(m->name, seen, sizeof seen)) {
			if (renameat2(mb->cur, m->name, mb->cur, seen, RENAME_NOREPLACE) == 0)
				changed = true;
		}
	}
	if (changed && fsync(mb->cur) < 0 && r == 0)
		r = -errno;
	return r;
}

void pop3_mailbox_close(struct pop3_mailbox *mb)
{
	int *fds[] = { &mb->box, &mb->cur, &mb->lock };
	for (size_t i = 0; i < 3; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]); /* the lock file's close releases the lock */
		*fds[i] = -1;
	}
	for (size_t i = 0; i < mb->n; i++)
		free(mb->msgs[i].name);
	free(mb->msgs);
	mb->msgs = NULL;
	mb->n = 0;
	mb->total = 0;
}

int pop3_mailbox_open_msg(const struct pop3_mailbox *mb, size_t i)
{
	if (i >= mb->n)
		return -EINVAL;
	int fd = openat(mb->cur, mb->msgs[i].name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}
