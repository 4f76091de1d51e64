/*
 * fileio: read a whole file with a size limit. See fileio.h.
 */
#include "util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

int file_read_all(const char *path, size_t max, struct buf *b)
{
	char chunk[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	buf_init(b, max);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		r = buf_append(b, chunk, (size_t)n);
		if (r == -ENOSPC)
			r = -EFBIG;
		if (r < 0)
			break;
	}
	close(fd);
	if (r < 0)
		buf_free(b);
	return r;
}

DIR *dir_scan_open(int dirfd)
{
	int fd = dup(dirfd);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	/* A dup shares the offset of a directory read before: start over. */
	rewinddir(d);
	return d;
}

ssize_t pread_joined(int fd, off_t pre_offset, uint64_t pre_size, off_t offset, void *buf,
		     size_t n, uint64_t pos)
{
	if (pos < pre_size) {
		if (n > pre_size - pos)
			n = (size_t)(pre_size - pos);
		return pread(fd, buf, n, pre_offset + (off_t)pos);
	}
	return pread(fd, buf, n, offset + (off_t)(pos - pre_size));
}
