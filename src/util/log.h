/*
 * log: one line per event, key=value, to stderr and/or syslog.
 *
 * Every line is "<time> <process>[pid]: <level>: key=value ...". Callers
 * build the key=value part with printf formats; any text that came from the
 * network or from a file goes through LOG_ESC()/LOG_ESCN(), which quotes it
 * and escapes quotes, backslashes, control and non-ASCII bytes, so that a
 * client can neither forge a field nor break a line. Credentials are never
 * passed here.
 *
 * fatal() is for a broken environment (cannot bind, disk gone): log and
 * exit(1). panic() is for a bug (broken invariant): log and abort().
 */
#ifndef CARTEIRO_UTIL_LOG_H
#define CARTEIRO_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

enum log_level {
	LVL_ERR = 0,
	LVL_WARN = 1,
	LVL_INFO = 2,
	LVL_DEBUG = 3,
};

/* Longest escaped value produced by LOG_ESC (longer input is cut, marked "..."). */
#define LOG_ESC_MAX 512

/* Set the program identity ("carteiro"), the process role ("smtpd") and the sinks. */
void log_init(const char *role, bool to_stderr, bool to_syslog, enum log_level level);
/* Change only the role, e.g. after fork(). */
void log_set_role(const char *role);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                  \
	do {                                            \
		if (log_enabled(LVL_DEBUG))             \
			log_msg(LVL_DEBUG, __VA_ARGS__); \
	} while (0)

_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Escape src[0..len) into dst as one key=value token: bare when it is made of
 * safe characters only, else in double quotes with \" \\ \xNN escapes.
 * Returns dst.
 */
const char *log_escape(char *dst, size_t dstlen, const char *src, size_t len);
/* The same for the string src (read once: an argument with side effects runs once). */
const char *log_escape_str(char *dst, size_t dstlen, const char *src);

/* A temporary escaped copy, valid until the end of the enclosing full expression's block. */
#define LOG_ESCN(p, n) log_escape((char[LOG_ESC_MAX]){ 0 }, LOG_ESC_MAX, (p), (n))
#define LOG_ESC(s) log_escape_str((char[LOG_ESC_MAX]){ 0 }, LOG_ESC_MAX, (s))

#endif
