/*
 * log: key=value event lines to stderr and syslog. See log.h.
 *
 * A line is written with a single write(2) so that lines from the several
 * processes sharing stderr do not interleave.
 */
#include "util/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/str.h"

/* The process id for the line's prefix, asked once per process (getpid is a system call,
 * and a line is written per event); a fork's child asks again. Threads may race to set it,
 * with the same value. */
static pid_t log_pid;

static void log_pid_reset(void)
{
	__atomic_store_n(&log_pid, 0, __ATOMIC_RELAXED);
}

static void log_pid_hook(void)
{
	pthread_atfork(NULL, NULL, log_pid_reset);
}

static pid_t log_getpid(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pid_t pid = __atomic_load_n(&log_pid, __ATOMIC_RELAXED);
	if (pid == 0) {
		pthread_once(&once, log_pid_hook);
		pid = getpid();
		__atomic_store_n(&log_pid, pid, __ATOMIC_RELAXED);
	}
	return pid;
}

static struct {
	char role[32];
	bool to_stderr;
	bool to_syslog;
	enum log_level level;
} log_state = { "carteiro", true, false, LVL_INFO };

static const char *const level_names[] = { "error", "warning", "info", "debug" };
static const int level_syslog[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void log_init(const char *role, bool to_stderr, bool to_syslog, enum log_level level)
{
	str_copy(log_state.role, sizeof log_state.role, role);
	log_state.to_stderr = to_stderr;
	log_state.level = level;
	if (to_syslog && !log_state.to_syslog)
		openlog("carteiro", LOG_PID | LOG_NDELAY, LOG_MAIL);
	log_state.to_syslog = to_syslog;
}

void log_set_role(const char *role)
{
	str_copy(log_state.role, sizeof log_state.role, role);
}

void log_set_level(enum log_level level)
{
	log_state.level = level;
}

bool log_enabled(enum log_level level)
{
	return level <= log_state.level;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[4096];
	size_t n = 0;
	int saved_errno = errno;

	if (!log_enabled(level))
		return;

	if (log_state.to_stderr) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ carteiro/%s[%ld]: %s: ",
				      ts.tv_nsec / 1000000, log_state.role, (long)log_getpid(),
				      level_names[level]);
	}
	size_t body = n;
	va_list aq;
	va_copy(aq, ap);
	int m = vsnprintf(line + n, sizeof line - n - 1, fmt, aq);
	va_end(aq);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof line - 2)
		n = sizeof line - 2;

	if (log_state.to_syslog)
		syslog(level_syslog[level], "%s: %s", log_state.role, line + body);
	if (log_state.to_stderr) {
		line[n++] = '\n';
		ssize_t w = write(STDERR_FILENO, line, n);
		(void)w;
	}
	errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LVL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

void panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LVL_ERR, fmt, ap);
	va_end(ap);
	abort();
}

static bool log_safe_char(unsigned char c)
{
	return ascii_isalnum(c) || c == '.' || c == '-' || c == '_' || c == '@' || c == '+' ||
	       c == ':' || c == '/' || c == '[' || c == ']' || c == '<' || c == '>' ||
	       c == ',' || c == '=' || c == '%' || c == '!' || c == '#' || c == '*';
}

const char *log_escape_str(char *dst, size_t dstlen, const char *src)
{
	return log_escape(dst, dstlen, src, strlen(src));
}

const char *log_escape(char *dst, size_t dstlen, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	bool bare = len > 0;
	size_t o = 0;

	if (dstlen < 8) {
		if (dstlen)
			dst[0] = '\0';
		return dst;
	}
	for (size_t i = 0; i < len && bare; i++)
		bare = log_safe_char((unsigned char)src[i]);
	if (bare && len < dstlen) {
		memcpy(dst, src, len);
		dst[len] = '\0';
		return dst;
	}
	/* Reserve room for the closing quote, a "..." mark and the NUL. */
	size_t limit = dstlen - 5;
	dst[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)src[i];
		char tmp[4];
		size_t k = 0;
		if (c == '"' || c == '\\') {
			tmp[k++] = '\\';
			tmp[k++] = (char)c;
		} else if (c < 32 || c >= 127) {
			tmp[k++] = '\\';
			tmp[k++] = 'x';
			tmp[k++] = hex[c >> 4];
			tmp[k++] = hex[c & 15];
		} else {
			tmp[k++] = (char)c;
		}
		if (o + k > limit) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(dst + o, tmp, k);
		o += k;
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}
