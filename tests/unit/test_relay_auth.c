/*
 * test_relay_auth: the relayhost-auth file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/relay_auth.h"
#include "unit.h"

static char path[64];

static int load_text(const char *text, struct relay_auth *a, char *err, size_t errlen)
{
	if (!path[0])
		snprintf(path, sizeof path, "/tmp/carteiro-relay-auth-%ld", (long)getpid());
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
	memset(a, 0, sizeof *a);
	return relay_auth_load(path, a, err, errlen);
}

TEST(good_files)
{
	static const struct {
		const char *text, *user, *pass;
	} rows[] = {
		{ "user pass\n", "user", "pass" },
		{ "user pass", "user", "pass" },
		{ "# comment\n\n  user@example.org   pass with spaces  \r\n", "user@example.org",
		  "pass with spaces" },
		{ "u\tp\n", "u", "p" },
		{ "first one\nsecond two\n", "first", "one" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct relay_auth a;
		char err[128];
		CHECK(load_text(rows[i].text, &a, err, sizeof err) == 0);
		CHECK_STR(a.user ? a.user : "(null)", rows[i].user);
		CHECK_STR(a.pass ? a.pass : "(null)", rows[i].pass);
		CHECK(!a.exposed);
		relay_auth_free(&a);
		CHECK(a.user == NULL && a.pass == NULL);
	}
	unlink(path); /* the tests run last to first: this one is the last */
}

TEST(bad_files)
{
	static const char *const rows[] = {
		"", "\n\n", "# only a comment\n", "useronly\n", "   \n", "user pass\x01word\n",
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct relay_auth a;
		char err[128];
		CHECK(load_text(rows[i], &a, err, sizeof err) == -EINVAL);
		CHECK(a.user == NULL && a.pass == NULL);
		CHECK(err[0] != '\0');
	}
}

TEST(missing_and_exposed)
{
	struct relay_auth a = { 0 };
	char err[128];
	CHECK(relay_auth_load("/nonexistent/carteiro-auth", &a, err, sizeof err) == -ENOENT);
	CHECK(strstr(err, "No such file") != NULL);
	CHECK(load_text("u p\n", &a, err, sizeof err) == 0);
	relay_auth_free(&a);
	chmod(path, 0644);
	CHECK(relay_auth_load(path, &a, err, sizeof err) == 0);
	CHECK(a.exposed);
	relay_auth_free(&a);
}

UNIT_MAIN()
