/*
 * buf: the one growable byte buffer of carteiro, and the borrowed slice.
 *
 * Contract: a struct buf always has a maximum size fixed at buf_init(); an
 * append that would pass it fails with -ENOSPC and leaves the buffer as it
 * was, so untrusted input can never grow memory without a bound. The data is
 * kept NUL-terminated (one spare byte beyond len) so that text buffers can be
 * handed to C string functions; binary data may contain NULs of its own.
 * All size arithmetic is overflow-checked.
 *
 * struct slice is a borrowed {ptr, len} view (nginx's ngx_str_t); it never
 * owns memory and is not NUL-terminated.
 */
#ifndef CARTEIRO_UTIL_BUF_H
#define CARTEIRO_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct slice {
	const char *ptr;
	size_t len;
};

#define SLICE_LIT(s) ((struct slice){ (s), sizeof(s) - 1 })

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

/* Size arithmetic that reports overflow instead of wrapping. */
static inline bool size_add(size_t a, size_t b, size_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

static inline bool size_mul(size_t a, size_t b, size_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

/* Prepare an empty buffer that will never hold more than max bytes. */
void buf_init(struct buf *b, size_t max);
/* Release the memory; the buffer is empty (and reusable) afterwards. */
void buf_free(struct buf *b);
/* Forget the contents but keep the memory. */
void buf_reset(struct buf *b);
/* Make room for n more bytes: 0, -ENOSPC past max, -ENOMEM. */
int buf_reserve(struct buf *b, size_t n);
/* Append n bytes: 0, -ENOSPC past max, -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
/* printf-style append: 0, -ENOSPC, -ENOMEM. */
int buf_appendf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* The contents as a C string (always valid; "" for an empty buffer). */
const char *buf_cstr(const struct buf *b);
static inline struct slice buf_slice(const struct buf *b)
{
	return (struct slice){ b->data ? b->data : "", b->len };
}

/* Slice helpers. */
static inline struct slice slice_from_cstr(const char *s)
{
	return (struct slice){ s, strlen(s) };
}
bool slice_eq(struct slice a, struct slice b);
bool slice_eq_nocase(struct slice a, struct slice b);
bool slice_eq_cstr_nocase(struct slice a, const char *s);
bool slice_startswith_nocase(struct slice a, const char *prefix);
/* Copy into a fixed array with NUL: false (and dst = "") if it does not fit. */
bool slice_copy(char *dst, size_t dstlen, struct slice s);
/* Remove leading and trailing SP and HTAB. */
struct slice slice_trim(struct slice s);

#endif
