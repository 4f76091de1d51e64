/*
 * fileio: small blocking file helpers for start-up and reload paths and for
 * the I/O threads (never for the event loop).
 */
#ifndef CARTEIRO_UTIL_FILEIO_H
#define CARTEIRO_UTIL_FILEIO_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"

/*
 * Read the whole file at path, at most max bytes, into b (initialized here;
 * the caller frees it on success). 0, -errno, or -EFBIG when larger than max
 * (a regular file is measured before anything is read).
 */
int file_read_all(const char *path, size_t max, struct buf *b);

/*
 * Read the directory dirfd from its start, on a descriptor of its own (dirfd stays open
 * and usable). NULL with errno set on failure; closedir() the result.
 */
DIR *dir_scan_open(int dirfd);

/*
 * pread from data kept as two ranges of fd: pre_size bytes at pre_offset, then
 * the rest from offset on. pos counts from the start of the first range; a
 * read stops at the boundary (a short count, as pread may give anyway).
 */
ssize_t pread_joined(int fd, off_t pre_offset, uint64_t pre_size, off_t offset, void *buf,
		     size_t n, uint64_t pos);

#endif
