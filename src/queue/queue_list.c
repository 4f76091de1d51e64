/*
 * queue_list: print the spool's messages, oldest first. See queue_list.h.
 *
 * Everything printed from a queue file (addresses may hold any printable
 * character and UTF-8) goes through LOG_ESC-style escaping so that a crafted
 * address cannot inject terminal control sequences.
 */
#include "queue/queue_list.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/queue_file.h"
#include "util/log.h"
#include "util/str.h"

struct entry {
	char id[QUEUE_ID_LEN + 1];
	bool incoming;
};

static int cmp_entry(const void *a, const void *b)
{
	/* Ids begin with their time in base 32: name order is arrival order. */
	return strcmp(((const struct entry *)a)->id, ((const struct entry *)b)->id);
}

static int collect(int spool_fd, const char *sub, bool incoming, struct entry **v, size_t *n,
		   size_t *cap)
{
	int fd = openat(spool_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!queue_id_valid(de->d_name))
			continue;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			struct entry *nv = reallocarray(*v, nc, sizeof *nv);
			if (!nv) {
				closedir(d);
				return -ENOMEM;
			}
			*v = nv;
			*cap = nc;
		}
		memcpy((*v)[*n].id, de->d_name, QUEUE_ID_LEN + 1);
		(*v)[*n].incoming = incoming;
		(*n)++;
	}
	closedir(d);
	return 0;
}

static void format_age(time_t secs, char *dst, size_t n)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(dst, n, "%lds", (long)secs);
	else if (secs < 3600)
		snprintf(dst, n, "%ldm%02lds", (long)secs / 60, (long)secs % 60);
	else if (secs < 86400)
		snprintf(dst, n, "%ldh%02ldm", (long)secs / 3600, (long)secs % 3600 / 60);
	else
		snprintf(dst, n, "%ldd%02ldh", (long)secs / 86400, (long)secs % 86400 / 3600);
}

static const char *rcpt_status_name(char st)
{
	return st == RCPT_DELIVERED ? "delivered"
	       : st == RCPT_FAILED  ? "failed"
	       : st == RCPT_WARNED  ? "pending, sender told of the delay"
				    : "pending";
}

void queue_list_format_header(struct buf *out)
{
	buf_appendf(out, "%-12s  %-7s  %10s  %-9s  %s\n", "QUEUE ID", "AGE", "SIZE", "STATE",
		    "SENDER / RECIPIENTS");
}

void queue_list_format_message(struct buf *out, const struct envelope *env, time_t now,
			       const struct queue_list_extra *x)
{
	char age[32];
	format_age(now - (time_t)env->arrival_sec, age, sizeof age);
	const char *state = envelope_pending(env, RCPT_LOCAL)    ? "local"
			    : envelope_pending(env, RCPT_REMOTE) ? "remote"
								 : "done";
	buf_appendf(out, "%-12s  %-7s  %10llu  %-9s  <%s>\n", env->id, age,
		    (unsigned long long)envelope_msg_total(env), state, env->sender[0] ? LOG_ESC(env->sender) : "");
	for (size_t k = 0; k < env->nrcpts; k++) {
		const struct envelope_rcpt *rc = &env->rcpts[k];
		bool active = x && x->active && x->active[k] && rcpt_status_pending(rc->status);
		buf_appendf(out, "%46s-> %s (%s, %s)\n", "", LOG_ESC(rc->address),
			    rc->kind == RCPT_LOCAL ? "local" : "remote",
			    active ? "being delivered" : rcpt_status_name(rc->status));
		const char *err = x && x->errors ? x->errors[k] : NULL;
		if (err && err[0] && rcpt_status_pending(rc->status))
			buf_appendf(out, "%46s   last error: %s\n", "",
				    str_display((char[600]){ 0 }, 600, err, strlen(err)));
	}
	if (x && x->next_attempt > 0) {
		format_age(x->next_attempt - now, age, sizeof age);
		buf_appendf(out, "%46s   next attempt in %s (%u so far)\n", "", age, x->attempts);
	}
}

void queue_list_format_footer(struct buf *out, size_t n, uint64_t total)
{
	buf_appendf(out, "-- %zu message%s, %llu bytes\n", n, n == 1 ? "" : "s",
		    (unsigned long long)total);
}

static void flush_buf(struct buf *b, FILE *out)
{
	fwrite(b->data, 1, b->len, out);
	buf_reset(b);
}

int queue_list(const char *spool, FILE *out)
{
	struct entry *v = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;
	int r;

	int spool_fd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (spool_fd < 0)
		return -errno;
	r = collect(spool_fd, "queue", false, &v, &n, &cap);
	if (r == 0)
		r = collect(spool_fd, "incoming", true, &v, &n, &cap);
	if (r < 0) {
		close(spool_fd);
		free(v);
		return r;
	}
	if (n > 1)
		qsort(v, n, sizeof *v, cmp_entry);

	time_t now = time(NULL);
	size_t shown = 0;
	struct buf b;
	buf_init(&b, 1024 * 1024);
	queue_list_format_header(&b);
	flush_buf(&b, out);
	for (size_t i = 0; i < n; i++) {
		char path[64], age[32];
		snprintf(path, sizeof path, "%s/%s", v[i].incoming ? "incoming" : "queue", v[i].id);
		int fd = openat(spool_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue; /* delivered meanwhile */
		if (v[i].incoming) {
			struct stat st;
			if (fstat(fd, &st) == 0) {
				format_age(now - st.st_mtime, age, sizeof age);
				fprintf(out, "%-12s  %-7s  %10lld  %-9s  (being received)\n", v[i].id, age,
					(long long)st.st_size, "incoming");
				shown++;
			}
			close(fd);
			continue;
		}
		struct envelope env;
		envelope_init(&env);
		r = queue_file_read_envelope(fd, &env);
		close(fd);
		if (r < 0) {
			fprintf(out, "%-12s  %-7s  %10s  %-9s  (unreadable: %s)\n", v[i].id, "-", "-",
				"damaged", r == -EINVAL ? "malformed queue file" : strerror(-r));
			shown++;
			continue;
		}
		queue_list_format_message(&b, &env, now, NULL);
		flush_buf(&b, out);
		total += envelope_msg_total(&env);
		shown++;
		envelope_free(&env);
	}
	queue_list_format_footer(&b, shown, total);
	flush_buf(&b, out);
	buf_free(&b);
	close(spool_fd);
	free(v);
	return 0;
}
