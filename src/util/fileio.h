/*
 * fileio: small blocking file helpers for start-up and reload paths (never
 * for the event loop).
 */
#ifndef CARTEIRO_UTIL_FILEIO_H
#define CARTEIRO_UTIL_FILEIO_H

#include <dirent.h>
#include <stddef.h>

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

#endif
