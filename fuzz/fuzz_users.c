/*
 * fuzz_users: the users-file parser.
 *
 * Each input is split into lines for userdb_parse_line(), whose accepted
 * users must keep the invariants that the Maildir code relies on (lower-case
 * "local@domain" in a local domain, no '/' and no leading '.' in the local
 * part, no control characters). The whole input is then loaded as a file
 * (through a memfd, so no disk I/O) and every accepted address must be found
 * again, in any case.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mail/users.h"
#include "util/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *local_domains[] = { "example.test", "other.test" };
static const struct config cfg = {
	.local_domains = local_domains,
	.nlocal_domains = 2,
	.recipient_delimiter = "+",
};

#define CHECK(cond)                    \
	do {                           \
		if (!(cond))           \
			__builtin_trap(); \
	} while (0)

static void check_user(const struct user *u)
{
	char joined[1024];

	CHECK(u->address && u->local && u->domain && u->hash);
	CHECK(u->local[0] != '\0' && u->local[0] != '.');
	CHECK(!strchr(u->local, '/'));
	CHECK(config_is_local_domain(&cfg, u->domain));
	snprintf(joined, sizeof joined, "%s@%s", u->local, u->domain);
	CHECK(strcmp(joined, u->address) == 0);
	for (const char *p = u->address; *p; p++)
		CHECK((unsigned char)*p > 0x20 && *p != 0x7f && !(*p >= 'A' && *p <= 'Z'));
	for (const char *p = u->hash; *p; p++)
		CHECK(((unsigned char)*p >= 0x20 || *p == '\t') && *p != 0x7f && *p != ':');
}

static void report_none(void *ctx, const char *file, unsigned line, const char *msg)
{
	(void)ctx;
	(void)file;
	(void)line;
	CHECK(msg[0] != '\0');
}

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	char err[256], upper[1024];
	bool all_good = true;
	size_t lines = 0;

	for (size_t pos = 0; pos < size;) {
		const char *p = text + pos;
		const char *nl = memchr(p, '\n', size - pos);
		size_t n = nl ? (size_t)(nl - p) : size - pos;
		struct user u;

		pos += n + (nl != NULL);
		lines++;
		if (n && p[n - 1] == '\r')
			n--;
		int r = userdb_parse_line(p, n, &cfg, &u, err, sizeof err);
		CHECK(r >= -1000 && r <= 1);
		if (r < 0) {
			CHECK(err[0] != '\0');
			all_good = false;
		}
		if (r == 1) {
			check_user(&u);
			user_free_fields(&u);
		}
	}

	if (memfd < 0) {
		memfd = memfd_create("fuzz_users", MFD_CLOEXEC);
		CHECK(memfd >= 0);
		snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
	}
	CHECK(ftruncate(memfd, 0) == 0);
	CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);

	struct userdb *db = NULL;
	int r = userdb_load(memfd_path, &cfg, report_none, NULL, &db);
	CHECK(r == 0 || r == -EINVAL);
	/* Bad lines fail the load; good lines can still fail it as duplicates. */
	CHECK(r == 0 || !all_good || lines > 1);
	if (r < 0) {
		CHECK(db == NULL);
		return 0;
	}
	CHECK(all_good);
	CHECK(userdb_count(db) <= lines);
	for (size_t pos = 0; pos < size;) {
		const char *p = text + pos;
		const char *nl = memchr(p, '\n', size - pos);
		size_t n = nl ? (size_t)(nl - p) : size - pos;
		struct user u;

		pos += n + (nl != NULL);
		if (n && p[n - 1] == '\r')
			n--;
		if (userdb_parse_line(p, n, &cfg, &u, err, sizeof err) != 1)
			continue;
		const struct user *found = userdb_find(db, u.address);
		CHECK(found && strcmp(found->address, u.address) == 0);
		CHECK(strcmp(found->hash, u.hash) == 0);
		snprintf(upper, sizeof upper, "%s", u.address);
		for (char *q = upper; *q; q++)
			*q = ascii_toupper(*q);
		CHECK(userdb_find(db, upper) == found);
		user_free_fields(&u);
	}
	userdb_free(db);
	return 0;
}
