/*
 * fileio: small blocking file helpers for start-up and reload paths (never
 * for the event loop).
 */
#ifndef CARTEIRO_UTIL_FILEIO_H
#define CARTEIRO_UTIL_FILEIO_H

#include <stddef.h>

#include "util/buf.h"

/*
 * Read the whole file at path, at most max bytes, into b (initialized here;
 * the caller frees it on success). 0, -errno, or -EFBIG when larger than max
 * (a regular file is measured before anything is read).
 */
int file_read_all(const char *path, size_t max, struct buf *b);

#endif
