/*
 * queue_file: serialize and parse queue files; queue ids. See queue_file.h
 * for the format and its crash states.
 *
 * Security: the parser trusts nothing. Every length is checked against the
 * bytes present and against QUEUE_FIELD_MAX before anything is copied, record
 * order is enforced, and a string field may not contain NUL (so a C string
 * copy can never be shorter than its record).
 */
#include "queue/queue_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "util/str.h"

void envelope_init(struct envelope *env)
{
	memset(env, 0, sizeof *env);
}

static void rcpt_free(struct envelope_rcpt *r)
{
	free(r->address);
	free(r->orig);
	free(r->orcpt);
}

void envelope_free(struct envelope *env)
{
	free(env->client_ip);
	free(env->helo);
	free(env->protocol);
	free(env->sender);
	free(env->envid);
	for (size_t i = 0; i < env->nrcpts; i++)
		rcpt_free(&env->rcpts[i]);
	free(env->rcpts);
	envelope_init(env);
}

int envelope_set(char **field, const char *value)
{
	char *copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

int envelope_add_rcpt(struct envelope *env, char kind, const char *address, const char *orig,
		      unsigned notify, const char *orcpt)
{
	if (env->nrcpts == env->rcpts_cap) {
		size_t cap = env->rcpts_cap ? env->rcpts_cap * 2 : 4;
		struct envelope_rcpt *r = reallocarray(env->rcpts, cap, sizeof *r);
		if (!r)
			return -ENOMEM;
		env->rcpts = r;
		env->rcpts_cap = cap;
	}
	struct envelope_rcpt *r = &env->rcpts[env->nrcpts];
	memset(r, 0, sizeof *r);
	r->status = RCPT_PENDING;
	r->kind = kind;
	r->notify = notify;
	r->address = strdup(address);
	if (orig && strcmp(orig, address) != 0)
		r->orig = strdup(orig);
	if (orcpt)
		r->orcpt = strdup(orcpt);
	if (!r->address || (orig && strcmp(orig, address) != 0 && !r->orig) || (orcpt && !r->orcpt)) {
		rcpt_free(r);
		return -ENOMEM;
	}
	env->nrcpts++;
	return 0;
}

size_t envelope_pending(const struct envelope *env, char kind)
{
	size_t n = 0;
	for (size_t i = 0; i < env->nrcpts; i++)
		if (rcpt_status_pending(env->rcpts[i].status) && (!kind || env->rcpts[i].kind == kind))
			n++;
	return n;
}

/* --- writer --------------------------------------------------------------- */

static int put_record(struct buf *out, char type, const void *p, size_t n)
{
	int r = buf_appendf(out, "%c%zu:", type, n);
	if (r == 0)
		r = buf_append(out, p, n);
	if (r == 0)
		r = buf_putc(out, '\n');
	return r;
}

static int put_str(struct buf *out, char type, const char *s)
{
	return put_record(out, type, s, strlen(s));
}

void queue_file_format_length(uint64_t len, char digits[20])
{
	for (int i = 19; i >= 0; i--) {
		digits[i] = (char)('0' + len % 10);
		len /= 10;
	}
}

int queue_file_write_header(const struct envelope *env, struct buf *out, size_t *len_offset)
{
	char tmp[64];
	int r = 0;

	r |= put_str(out, 'V', QUEUE_FILE_VERSION);
	r |= put_str(out, 'Q', env->id);
	snprintf(tmp, sizeof tmp, "%lld.%06ld", (long long)env->arrival_sec, env->arrival_usec);
	r |= put_str(out, 'A', tmp);
	if (env->client_ip)
		r |= put_str(out, 'I', env->client_ip);
	if (env->helo)
		r |= put_str(out, 'H', env->helo);
	if (env->protocol)
		r |= put_str(out, 'P', env->protocol);
	r |= put_str(out, 'S', env->sender ? env->sender : "");
	r |= put_str(out, 'B', env->body_8bit ? "8BITMIME" : "7BIT");
	if (env->smtputf8)
		r |= put_str(out, 'U', "1");
	if (env->ret)
		r |= put_str(out, 'T', env->ret == 'F' ? "FULL" : "HDRS");
	if (env->envid)
		r |= put_str(out, 'E', env->envid);
	for (size_t i = 0; i < env->nrcpts && r == 0; i++) {
		const struct envelope_rcpt *rc = &env->rcpts[i];
		size_t alen = strlen(rc->address);
		r |= buf_appendf(out, "R%zu:%c%c", alen + 2, rc->status, rc->kind);
		r |= buf_append(out, rc->address, alen);
		r |= buf_putc(out, '\n');
		if (rc->orig)
			r |= put_str(out, 'O', rc->orig);
		if (rc->notify) {
			snprintf(tmp, sizeof tmp, "%u", rc->notify);
			r |= put_str(out, 'N', tmp);
		}
		if (rc->orcpt)
			r |= put_str(out, 'X', rc->orcpt);
	}
	r |= buf_append(out, "M", 1);
	if (r == 0) {
		*len_offset = out->len;
		r = buf_append(out, "00000000000000000000:", 21);
	}
	return r ? -ENOMEM : 0;
}

/* --- reader --------------------------------------------------------------- */

struct record {
	char type;
	const char *payload;
	size_t len;
	size_t payload_offset;
};

/* Read one record at *pos; 0, -EAGAIN (incomplete), -EINVAL. */
static int next_record(const char *data, size_t len, size_t *pos, struct record *rec)
{
	size_t p = *pos;
	uint64_t n = 0;
	size_t digits = 0;

	if (p >= len)
		return -EAGAIN;
	rec->type = data[p++];
	if (!ascii_isalpha(rec->type))
		return -EINVAL;
	while (p < len && ascii_isdigit(data[p])) {
		if (++digits > 20)
			return -EINVAL;
		if (__builtin_mul_overflow(n, 10, &n) ||
		    __builtin_add_overflow(n, (uint64_t)(data[p] - '0'), &n))
			return -EINVAL;
		p++;
	}
	if (p >= len)
		return -EAGAIN;
	if (digits == 0 || data[p] != ':')
		return -EINVAL;
	p++;
	rec->payload_offset = p;
	rec->payload = data + p;
	if (rec->type == 'M') {
		/* The message is not part of the header: stop right after its length. */
		rec->len = (size_t)n;
		if (n > INT64_MAX)
			return -EINVAL;
		*pos = p;
		return 0;
	}
	if (n > QUEUE_FIELD_MAX)
		return -EINVAL;
	if (len - p < n + 1)
		return -EAGAIN;
	if (data[p + n] != '\n')
		return -EINVAL;
	rec->len = (size_t)n;
	*pos = p + n + 1;
	return 0;
}

static int dup_field(char **field, const struct record *rec)
{
	if (memchr(rec->payload, '\0', rec->len))
		return -EINVAL;
	char *s = strndup(rec->payload, rec->len);
	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

static bool rec_is(const struct record *rec, const char *s)
{
	return rec->len == strlen(s) && memcmp(rec->payload, s, rec->len) == 0;
}

static int parse_arrival(const struct record *rec, struct envelope *env)
{
	const char *dot = memchr(rec->payload, '.', rec->len);
	uint64_t sec, usec;
	if (!dot)
		return -EINVAL;
	struct slice s1 = { rec->payload, (size_t)(dot - rec->payload) };
	struct slice s2 = { dot + 1, rec->len - s1.len - 1 };
	if (parse_u64(s1, INT64_MAX, &sec) < 0 || s2.len != 6 || parse_u64(s2, 999999, &usec) < 0)
		return -EINVAL;
	env->arrival_sec = (int64_t)sec;
	env->arrival_usec = (long)usec;
	return 0;
}

int queue_file_parse_header(const char *data, size_t len, struct envelope *env)
{
	size_t pos = 0;
	struct record rec;
	struct envelope_rcpt *cur = NULL;
	bool have_q = false, have_s = false, have_a = false;
	char *s = NULL;
	int r;

	envelope_free(env);
	r = next_record(data, len, &pos, &rec);
	if (r < 0)
		return r;
	if (rec.type != 'V' || !rec_is(&rec, QUEUE_FILE_VERSION))
		return -EINVAL;
	for (;;) {
		r = next_record(data, len, &pos, &rec);
		if (r < 0)
			return r;
		if (rec.type == 'M')
			break;
		switch (rec.type) {
		case 'Q':
			if (have_q || rec.len != QUEUE_ID_LEN)
				return -EINVAL;
			memcpy(env->id, rec.payload, QUEUE_ID_LEN);
			env->id[QUEUE_ID_LEN] = '\0';
			if (!queue_id_valid(env->id))
				return -EINVAL;
			have_q = true;
			break;
		case 'A':
			if (have_a || parse_arrival(&rec, env) < 0)
				return -EINVAL;
			have_a = true;
			break;
		case 'I':
			r = dup_field(&env->client_ip, &rec);
			break;
		case 'H':
			r = dup_field(&env->helo, &rec);
			break;
		case 'P':
			r = dup_field(&env->protocol, &rec);
			break;
		case 'S':
			if (have_s)
				return -EINVAL;
			have_s = true;
			r = dup_field(&env->sender, &rec);
			break;
		case 'B':
			if (rec_is(&rec, "8BITMIME"))
				env->body_8bit = true;
			else if (!rec_is(&rec, "7BIT"))
				return -EINVAL;
			break;
		case 'U':
			if (!rec_is(&rec, "1"))
				return -EINVAL;
			env->smtputf8 = true;
			break;
		case 'T':
			if (rec_is(&rec, "FULL"))
				env->ret = 'F';
			else if (rec_is(&rec, "HDRS"))
				env->ret = 'H';
			else
				return -EINVAL;
			break;
		case 'E':
			r = dup_field(&env->envid, &rec);
			break;
		case 'R': {
			if (rec.len < 3)
				return -EINVAL;
			char st = rec.payload[0], kind = rec.payload[1];
			if ((!rcpt_status_pending(st) && st != RCPT_DELIVERED && st != RCPT_FAILED) ||
			    (kind != RCPT_LOCAL && kind != RCPT_REMOTE))
				return -EINVAL;
			struct record addr = rec;
			addr.payload += 2;
			addr.len -= 2;
			s = NULL;
			r = dup_field(&s, &addr);
			if (r < 0)
				return r;
			r = envelope_add_rcpt(env, kind, s, NULL, 0, NULL);
			free(s);
			if (r < 0)
				return r;
			cur = &env->rcpts[env->nrcpts - 1];
			cur->status = st;
			cur->status_offset = (off_t)rec.payload_offset;
			break;
		}
		case 'O':
			if (!cur || cur->orig)
				return -EINVAL;
			r = dup_field(&cur->orig, &rec);
			break;
		case 'N': {
			uint64_t v;
			if (!cur || cur->notify ||
			    parse_u64((struct slice){ rec.payload, rec.len }, 31, &v) < 0 || v == 0)
				return -EINVAL;
			cur->notify = (unsigned)v;
			break;
		}
		case 'X':
			if (!cur || cur->orcpt)
				return -EINVAL;
			r = dup_field(&cur->orcpt, &rec);
			break;
		default:
			return -EINVAL;
		}
		if (r < 0)
			return r;
		if (pos > QUEUE_HEADER_MAX)
			return -EINVAL;
	}
	if (!have_q || !have_s || !have_a || env->nrcpts == 0)
		return -EINVAL;
	/* The M record's length must be written with exactly 20 digits. */
	if (rec.payload_offset < 22 || memcmp(data + rec.payload_offset - 22, "M", 1) != 0)
		return -EINVAL;
	env->msg_offset = (off_t)rec.payload_offset;
	env->msg_size = rec.len;
	return 0;
}

/* The length of the trailer at the start of p[0..n) (0: none there), with its CRC if any. */
static size_t trailer_len(const char *p, size_t n, bool *has_crc, uint32_t *crc)
{
	if (n >= QUEUE_FILE_TRAILER_LEN && memcmp(p, QUEUE_FILE_TRAILER, QUEUE_FILE_TRAILER_LEN) == 0) {
		if (has_crc)
			*has_crc = false;
		return QUEUE_FILE_TRAILER_LEN;
	}
	if (n < QUEUE_FILE_TRAILER_CRC_LEN || memcmp(p, "\nK8:", 4) != 0 ||
	    p[QUEUE_FILE_TRAILER_CRC_LEN - 1] != '\n')
		return 0;
	uint32_t v = 0;
	for (size_t i = 4; i < QUEUE_FILE_TRAILER_CRC_LEN - 1; i++) {
		char c = p[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint32_t)(c - 'a' + 10);
		else
			return 0;
	}
	if (has_crc) {
		*has_crc = true;
		*crc = v;
	}
	return QUEUE_FILE_TRAILER_CRC_LEN;
}

/* pread, or preadv2 with flags (RWF_NOWAIT) when they are given. */
static ssize_t pread_flags(int fd, void *p, size_t n, off_t off, int rwflags)
{
	if (!rwflags)
		return pread(fd, p, n, off);
	struct iovec v = { p, n };
	return preadv2(fd, &v, 1, off, rwflags);
}

int queue_file_read_envelope(int fd, struct envelope *env)
{
	return queue_file_read_envelope_flags(fd, env, 0);
}

int queue_file_read_envelope_flags(int fd, struct envelope *env, int rwflags)
{
	struct buf b;
	struct stat st;
	off_t off = 0;
	int r = -EINVAL;

	if (fstat(fd, &st) < 0)
		return -errno;
	buf_init(&b, QUEUE_HEADER_MAX);
	for (;;) {
		size_t want = b.len ? b.len : 8192;
		if (b.len + want > QUEUE_HEADER_MAX)
			want = QUEUE_HEADER_MAX - b.len;
		if (want == 0) {
			r = -EINVAL; /* a header section above QUEUE_HEADER_MAX */
			break;
		}
		r = buf_reserve(&b, want);
		if (r < 0)
			break;
		ssize_t n = pread_flags(fd, b.data + b.len, want, off, rwflags);
		if (n < 0) {
			r = errno == EAGAIN ? -EWOULDBLOCK : -errno;
			break;
		}
		if (n == 0) {
			r = -EINVAL;
			break;
		}
		b.len += (size_t)n;
		off += n;
		r = queue_file_parse_header(b.data, b.len, env);
		if (r != -EAGAIN)
			break;
	}
	buf_free(&b);
	if (r < 0)
		return r;

	/* After the message: an optional J record, then the trailer, then nothing. */
	uint64_t end;
	if (__builtin_add_overflow((uint64_t)env->msg_offset, env->msg_size, &end) ||
	    end > (uint64_t)st.st_size || (uint64_t)st.st_size - end > QUEUE_PREPEND_MAX + 32)
		return -EINVAL;
	size_t n = (size_t)((uint64_t)st.st_size - end), skip, tail;
	char small[64], *tailbuf = n <= sizeof small ? small : malloc(n);
	if (tailbuf == NULL)
		return -ENOMEM;
	r = -EINVAL;
	ssize_t got = pread_flags(fd, tailbuf, n, (off_t)end, rwflags);
	if (got < 0 && errno == EAGAIN)
		r = -EWOULDBLOCK;
	else if (got == (ssize_t)n &&
	    queue_file_parse_tail(tailbuf, n, &skip, &env->pre_size, &tail) == 0 && tail == n) {
		env->pre_offset = env->pre_size ? (off_t)(end + skip) : 0;
		size_t k = skip + (size_t)env->pre_size; /* where the trailer starts */
		if (trailer_len(tailbuf + k, n - k, &env->has_crc, &env->crc) == 0)
			abort(); /* parse_tail accepted it */
		r = 0;
	}
	if (tailbuf != small)
		free(tailbuf);
	return r;
}

int queue_file_format_prepend(const char *hdrs, size_t len, struct buf *out)
{
	char head[32];

	if (len > QUEUE_PREPEND_MAX)
		return -EINVAL;
	int n = snprintf(head, sizeof head, "\nJ%zu:", len);
	if (buf_append(out, head, (size_t)n) < 0 || buf_append(out, hdrs, len) < 0)
		return -ENOMEM;
	return 0;
}

int queue_file_parse_tail(const char *p, size_t n, size_t *pre_skip, uint64_t *pre_size,
			  size_t *tail_len)
{
	size_t o = 0;

	*pre_skip = 0;
	*pre_size = 0;
	*tail_len = 0;
	if (n >= 3 && p[0] == '\n' && p[1] == 'J') {
		uint64_t len = 0;
		size_t digits = 0;
		for (o = 2; o < n && p[o] >= '0' && p[o] <= '9' && digits < 6; o++, digits++)
			len = len * 10 + (uint64_t)(p[o] - '0');
		if (digits == 0 || o >= n || p[o] != ':' || len > QUEUE_PREPEND_MAX ||
		    len > n - o - 1)
			return -EINVAL;
		o++;
		*pre_skip = o;
		*pre_size = len;
		o += (size_t)len;
	}
	size_t len = trailer_len(p + o, n - o, NULL, NULL);
	if (len == 0)
		return -EINVAL;
	*tail_len = o + len;
	return 0;
}

void queue_file_format_trailer_crc(uint32_t crc, char out[QUEUE_FILE_TRAILER_CRC_LEN + 1])
{
	snprintf(out, QUEUE_FILE_TRAILER_CRC_LEN + 1, "\nK8:%08x\n", (unsigned)crc);
}

uint32_t queue_file_crc(uint32_t crc, uint64_t off, const void *p, size_t n, uint64_t len_offset)
{
	const unsigned char *b = p;
	uint64_t end = off + n, skip_end = len_offset + 20;

	/* The part before the digits, then the part after them. */
	if (off < len_offset) {
		size_t k = (size_t)((end < len_offset ? end : len_offset) - off);
		crc = (uint32_t)crc32(crc, b, (uInt)k);
	}
	if (end > skip_end) {
		uint64_t from = off > skip_end ? off : skip_end;
		crc = (uint32_t)crc32(crc, b + (from - off), (uInt)(end - from));
	}
	return crc;
}

int queue_file_verify(int fd, const struct envelope *env)
{
	enum { CHUNK = 64 * 1024 };
	if (!env->has_crc)
		return 0;
	uint64_t end = env->pre_size ? (uint64_t)env->pre_offset + env->pre_size
				     : (uint64_t)env->msg_offset + env->msg_size;
	uint64_t len_offset = (uint64_t)env->msg_offset - 21;
	char *b = malloc(CHUNK);
	if (!b)
		return -ENOMEM;
	uint32_t crc = (uint32_t)crc32(0, NULL, 0);
	int r = 0;
	for (uint64_t off = 0; off < end;) {
		size_t want = end - off < CHUNK ? (size_t)(end - off) : CHUNK;
		ssize_t got = pread(fd, b, want, (off_t)off);
		if (got <= 0) {
			r = got < 0 ? -errno : -EINVAL;
			break;
		}
		crc = queue_file_crc(crc, off, b, (size_t)got, len_offset);
		off += (uint64_t)got;
	}
	free(b);
	if (r == 0 && crc != env->crc)
		r = -EINVAL;
	return r;
}

int queue_file_set_status(int fd, const struct envelope_rcpt *rcpt, char status)
{
	if (pwrite(fd, &status, 1, rcpt->status_offset) != 1)
		return errno ? -errno : -EIO;
	return 0;
}

/* --- queue ids ------------------------------------------------------------ */

/* Crockford's base 32: no I, L, O, U, so ids read aloud and typed back survive. */
static const char id_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void queue_id_init(struct queue_id_gen *g, unsigned slot)
{
	g->last = 0;
	g->slot = slot & 31;
}

void queue_id_next(struct queue_id_gen *g, char out[QUEUE_ID_LEN + 1])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	/* Strictly increasing even if the clock steps back or two ids share a microsecond. */
	if (now <= g->last)
		now = g->last + 1;
	g->last = now;
	for (int i = 10; i >= 0; i--) {
		out[i] = id_alphabet[now & 31];
		now >>= 5;
	}
	out[11] = id_alphabet[g->slot];
	out[12] = '\0';
}

bool queue_id_valid(const char *name)
{
	size_t i;
	for (i = 0; name[i]; i++)
		if (i >= QUEUE_ID_LEN || !strchr(id_alphabet, name[i]))
			return false;
	return i == QUEUE_ID_LEN;
}

unsigned queue_id_slot(const char *id)
{
	return (unsigned)(strchr(id_alphabet, id[QUEUE_ID_LEN - 1]) - id_alphabet);
}
