/*
 * maildir: deliver a queued message into a Maildir. See maildir.h.
 *
 * Security: the directory names come from the users file (validated there:
 * no '/', no leading '.'), and are checked again here; every path is opened
 * relative to a directory fd with O_NOFOLLOW, so a symlink planted inside
 * maildir-root cannot redirect a delivery.
 */
#include "deliver/maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"

#define COPY_CHUNK (64u * 1024)
#define NAME_MAX_LEN 255

static bool safe_component(const char *s, size_t n)
{
	if (n == 0 || n > NAME_MAX_LEN || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == '\0')
			return false;
	return true;
}

/* Open (creating if needed) directory name under dirfd; fsync dirfd if it was created. */
static int open_subdir(int dirfd, const char *name, bool *created)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : -errno;
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (fsync(dirfd) < 0)
		return -errno;
	*created = true;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

void maildir_close(struct maildir_fds *mb)
{
	int *fds[] = { &mb->box, &mb->tmp, &mb->new, &mb->cur };
	for (size_t i = 0; i < 4; i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

int maildir_open(const char *root, const char *address, struct maildir_fds *mb)
{
	const char *at = strrchr(address, '@');
	char local[NAME_MAX_LEN + 1], domain[NAME_MAX_LEN + 1];
	bool created = false;
	int rootfd, domfd, r = 0;

	mb->box = mb->tmp = mb->new = mb->cur = -1;
	if (!at || !safe_component(address, (size_t)(at - address)) ||
	    !safe_component(at + 1, strlen(at + 1)))
		return -EINVAL;
	memcpy(local, address, (size_t)(at - address));
	local[at - address] = '\0';
	strcpy(domain, at + 1);

	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	domfd = open_subdir(rootfd, domain, &created);
	close(rootfd);
	if (domfd < 0)
		return domfd;
	mb->box = open_subdir(domfd, local, &created);
	close(domfd);
	if (mb->box < 0)
		return mb->box;
	if ((mb->tmp = open_subdir(mb->box, "tmp", &created)) < 0 ||
	    (mb->new = open_subdir(mb->box, "new", &created)) < 0 ||
	    (mb->cur = open_subdir(mb->box, "cur", &created)) < 0) {
		r = mb->tmp < 0 ? mb->tmp : mb->new < 0 ? mb->new : mb->cur;
		maildir_close(mb);
	}
	return r;
}

/* Is there an entry named base, or base followed by ',' or ':' (flags, sizes)? */
static bool dir_has_base(int dirfd, const char *base)
{
	size_t n = strlen(base);
	DIR *d = dir_scan_open(dirfd);
	if (!d)
		return false;
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(d)))
		found = strncmp(de->d_name, base, n) == 0 &&
			(de->d_name[n] == '\0' || de->d_name[n] == ',' || de->d_name[n] == ':');
	closedir(d);
	return found;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copy the message, CRLF -> LF. *lines counts the LFs written (for the CRLF size). */
static int copy_message(const struct maildir_msg *m, int out, uint64_t *written, uint64_t *lines)
{
	char *in = malloc(COPY_CHUNK), *conv = malloc(COPY_CHUNK);
	uint64_t done = 0;
	int r = 0;

	if (!in || !conv) {
		r = -ENOMEM;
		goto out;
	}
	while (done < m->size && r == 0) {
		size_t want = m->size - done < COPY_CHUNK ? (size_t)(m->size - done) : COPY_CHUNK;
		ssize_t n = pread_joined(m->fd, m->pre_offset, m->pre_size, m->offset, in, want, done);
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		/* A CR split from its LF by the chunk boundary: hold it back a round. */
		size_t usable = (size_t)n;
		if (in[usable - 1] == '\r' && done + usable < m->size && usable > 1)
			usable--;
		size_t o = 0;
		for (size_t i = 0; i < usable; i++) {
			if (in[i] == '\r' && i + 1 < usable && in[i + 1] == '\n')
				continue;
			if (in[i] == '\n')
				(*lines)++;
			conv[o++] = in[i];
		}
		r = write_all(out, conv, o);
		*written += o;
		done += usable;
	}
out:
	free(in);
	free(conv);
	return r;
}

static void host_part(const char *hostname, char *dst, size_t dstlen)
{
	/* Maildir: '/' and ':' are not allowed in the host part. */
	size_t o = 0;
	for (const char *p = hostname; *p && o + 5 < dstlen; p++) {
		if (*p == '/') {
			memcpy(dst + o, "\\057", 4);
			o += 4;
		} else if (*p == ':') {
			memcpy(dst + o, "\\072", 4);
			o += 4;
		} else {
			dst[o++] = *p;
		}
	}
	dst[o] = '\0';
}

int maildir_deliver(const struct maildir_msg *m, const char *address, unsigned rcpt_index,
		    bool check_existing)
{
	struct maildir_fds mb;
	char host[128], base[NAME_MAX_LEN + 1], final[NAME_MAX_LEN + 64];
	int r, fd = -1;

	r = maildir_open(m->root, address, &mb);
	if (r < 0)
		return r;
	host_part(m->hostname, host, sizeof host);
	snprintf(base, sizeof base, "%lld.M%06ldQ%sR%u.%s", (long long)m->arrival_sec,
		 m->arrival_usec, m->queue_id, rcpt_index, host);
	if (check_existing && (dir_has_base(mb.new, base) || dir_has_base(mb.cur, base))) {
		r = 0;
		goto out;
	}

	fd = openat(mb.tmp, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		/* Left over from an interrupted attempt of this same delivery. */
		unlinkat(mb.tmp, base, 0);
		fd = openat(mb.tmp, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	char head[1024];
	int hn = snprintf(head, sizeof head, "Return-Path: <%s>\nDelivered-To: %s\n", m->return_path,
			  address);
	if (hn < 0 || (size_t)hn >= sizeof head) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	uint64_t written = (uint64_t)hn, lines = 2;
	r = write_all(fd, head, (size_t)hn);
	if (r == 0)
		r = copy_message(m, fd, &written, &lines);
	if (r == 0 && fdatasync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	fd = -1;
	if (r < 0)
		goto fail;
	int fn = snprintf(final, sizeof final, "%s,S=%llu,W=%llu", base, (unsigned long long)written,
			  (unsigned long long)(written + lines));
	if (fn < 0 || fn > NAME_MAX_LEN) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	if (renameat2(mb.tmp, base, mb.new, final, RENAME_NOREPLACE) < 0) {
		r = -errno;
		goto fail;
	}
	if (fsync(mb.new) < 0) {
		r = -errno;
		goto out;
	}
	r = 0;
	goto out;
fail:
	if (fd >= 0)
		close(fd);
	unlinkat(mb.tmp, base, 0);
out:
	maildir_close(&mb);
	return r;
}
