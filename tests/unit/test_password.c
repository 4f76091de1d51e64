/*
 * Unit tests of password hashing and checking (libcrypt): new yescrypt
 * hashes, existing hashes of other schemes, disabled accounts.
 */
#include <string.h>

#include "mail/password.h"
#include "unit.h"

TEST(hash_then_verify)
{
	char hash[PASSWORD_HASH_MAX], again[PASSWORD_HASH_MAX];

	CHECK_INT(password_hash("correct horse", hash, sizeof hash), 0);
	CHECK(strncmp(hash, "$y$", 3) == 0);
	CHECK(password_verify("correct horse", hash));
	CHECK(!password_verify("correct horsE", hash));
	CHECK(!password_verify("", hash));
	/* A fresh salt every time. */
	CHECK_INT(password_hash("correct horse", again, sizeof again), 0);
	CHECK(strcmp(hash, again) != 0);
	CHECK(password_verify("correct horse", again));
	CHECK(password_hash("x", hash, 8) < 0); /* too small a buffer */
}

struct known {
	const char *hash;
	const char *password;
	bool ok;
};

TEST(existing_hashes)
{
	static const struct known rows[] = {
		/* SHA-512-crypt and bcrypt hashes as found in existing passwd-files. */
		{ "$6$abcdefgh$M/eYsB4rVXAm3ZNc88J.UD9rCKAT6FB1rahiwJCHtEndQNORCub5qhjxn50qbqVVthk"
		  "M.9HpEwtf0t.iV9uH0/", "hunter2", true },
		{ "$6$abcdefgh$M/eYsB4rVXAm3ZNc88J.UD9rCKAT6FB1rahiwJCHtEndQNORCub5qhjxn50qbqVVthk"
		  "M.9HpEwtf0t.iV9uH0/", "hunter3", false },
		{ "$2b$12$y8FfHSaRksFCL1Jj9nL15ei2h1bTQzGOaioYCwSNWB5M3g4Za65by", "hunter2", true },
		{ "$2b$12$y8FfHSaRksFCL1Jj9nL15ei2h1bTQzGOaioYCwSNWB5M3g4Za65by", "Hunter2", false },
		/* Disabled or unusable: never a match, whatever the password. */
		{ "", "", false },
		{ "!$6$abcdefgh$M/eYsB4rVXAm3ZNc88J.UD9rCKAT6FB1rahiwJCHtEndQNORCub5qhjxn50qbqVVthk"
		  "M.9HpEwtf0t.iV9uH0/", "hunter2", false },
		{ "*", "", false },
		{ "plain-text", "plain-text", false },
		{ "$6$abcdefgh$truncated", "hunter2", false },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		CHECK_MSG(password_verify(rows[i].password, rows[i].hash) == rows[i].ok, "row %zu", i);
}

UNIT_MAIN()
