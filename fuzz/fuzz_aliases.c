/*
 * fuzz_aliases: the alias-file parser, the folding loader, and resolve.
 *
 * Each input is split into physical lines for aliasdb_parse_line(), whose
 * accepted aliases must hold only canonical, re-parsable targets. The whole
 * input is then loaded as an alias file (through a memfd, so no disk I/O),
 * which exercises continuation lines, comments, duplicates and line limits.
 * When it loads, a few recipients (fixed ones, and the left-hand side of
 * every line) are resolved against a fixed users table: whatever aliases,
 * loops and catch-alls the input builds, resolve_recipient() must end, stay
 * within its max, and return distinct results that are real users or remote
 * addresses.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mail/resolve.h"
#include "util/log.h"
#include "util/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char *local_domains[] = { "example.test", "other.test" };
static const struct config cfg = {
	.local_domains = local_domains,
	.nlocal_domains = 2,
	.recipient_delimiter = "+-",
};

static const char users_text[] = "alice@example.test:x\n"
				 "bob@example.test:x\n"
				 "a+b@example.test:x\n"
				 "carol@other.test:x\n";

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

#define RESULTS_MAX 16
#define RCPTS_MAX 16

static struct userdb *users;
static int memfd = -1;
static char memfd_path[64];

static void report_none(void *ctx, const char *file, unsigned line, const char *msg)
{
	(void)ctx;
	(void)file;
	(void)line;
	CHECK(msg[0] != '\0');
}

/* Replace the memfd's contents. */
static void memfd_put(const void *data, size_t size)
{
	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LVL_ERR);
	memfd = memfd_create("fuzz_aliases", MFD_CLOEXEC);
	CHECK(memfd >= 0);
	snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
	memfd_put(users_text, sizeof users_text - 1);
	CHECK(userdb_load(memfd_path, &cfg, report_none, NULL, &users) == 0);
	return 0;
}

static void check_alias(const struct alias *a)
{
	struct addr t;

	CHECK(a->address && a->address[0] != '\0');
	for (const char *p = a->address; *p; p++)
		CHECK(!(*p >= 'A' && *p <= 'Z'));
	CHECK(a->ntargets >= 1 && a->ntargets <= ALIAS_TARGETS_MAX);
	for (size_t i = 0; i < a->ntargets; i++) {
		/* Stored canonical: parsing again gives the same text. */
		CHECK(addr_parse_mailbox(slice_from_cstr(a->targets[i]), ADDR_UTF8, &t) == 0);
		CHECK(strcmp(t.text, a->targets[i]) == 0);
		if (t.literal || !config_is_local_domain(&cfg, t.domain))
			continue;
		CHECK(!t.quoted);
		for (const char *p = t.text; *p; p++)
			CHECK(!(*p >= 'A' && *p <= 'Z'));
	}
}

static void check_resolve(const struct aliasdb *aliases, const char *rcpt)
{
	struct resolve_ctx rc = { &cfg, users, aliases };
	struct resolved out[RESULTS_MAX];
	struct addr a;
	size_t consumed, n = 12345;
	char path[ADDR_PATH_MAX + 3];

	snprintf(path, sizeof path, "<%s>", rcpt);
	if (addr_parse_path(slice_from_cstr(path), ADDR_UTF8 | ADDR_ALLOW_POSTMASTER, &a,
			    &consumed) != 0)
		return;
	int r = resolve_recipient(&rc, &a, out, RESULTS_MAX, &n);
	CHECK(r == RESOLVE_OK || r == RESOLVE_UNKNOWN || r == RESOLVE_LOOP ||
	      r == RESOLVE_TOO_MANY);
	if (r != RESOLVE_OK) {
		CHECK(n == 0);
		return;
	}
	CHECK(n >= 1 && n <= RESULTS_MAX);
	for (size_t i = 0; i < n; i++) {
		if (out[i].kind == RESOLVE_LOCAL) {
			const struct user *u = userdb_find(users, out[i].address);
			CHECK(u && strcmp(u->address, out[i].address) == 0);
		} else {
			CHECK(out[i].kind == RESOLVE_REMOTE);
			CHECK(strchr(out[i].address, '@'));
		}
		for (size_t j = 0; j < i; j++)
			CHECK(out[i].kind != out[j].kind || strcmp(out[i].address, out[j].address));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fixed[] = {
		"alice@example.test", "x@example.test", "a+b+c@example.test", "postmaster",
		"bob-x@example.test", "y@other.test",   "z@remote.test",
	};
	const char *text = (const char *)data;
	char err[256], lhs[RCPTS_MAX][ADDR_PATH_MAX];
	size_t nlhs = 0;

	for (size_t pos = 0; pos < size;) {
		const char *p = text + pos;
		const char *nl = memchr(p, '\n', size - pos);
		size_t n = nl ? (size_t)(nl - p) : size - pos;
		struct alias a;

		pos += n + (nl != NULL);
		if (n && p[n - 1] == '\r')
			n--;
		int r = aliasdb_parse_line(p, n, &cfg, &a, err, sizeof err);
		CHECK(r == 1 || r == 0 || r == -EINVAL || r == -ENOMEM);
		if (r < 0)
			CHECK(err[0] != '\0');
		if (r == 1) {
			check_alias(&a);
			alias_free_fields(&a);
		}
		/* Remember what looks like a left-hand side, to resolve it later. */
		const char *colon = memchr(p, ':', n);
		size_t k = colon ? (size_t)(colon - p) : 0;
		if (colon && k > 0 && k < ADDR_PATH_MAX && nlhs < RCPTS_MAX && p[0] != '@' &&
		    !memchr(p, '\0', k)) {
			memcpy(lhs[nlhs], p, k);
			lhs[nlhs++][k] = '\0';
		}
	}

	memfd_put(data, size);
	struct aliasdb *db = NULL;
	int r = aliasdb_load(memfd_path, &cfg, report_none, NULL, &db);
	CHECK(r == 0 || r == -EINVAL);
	if (r < 0) {
		CHECK(db == NULL);
		return 0;
	}
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		check_resolve(db, fixed[i]);
	for (size_t i = 0; i < nlhs; i++)
		check_resolve(db, lhs[i]);
	aliasdb_free(db);
	return 0;
}
