/*
 * password: crypt(3) hashing and checking with libcrypt. See password.h.
 * The comparison of the computed hash is constant-time.
 */
#include "mail/password.h"

#include <crypt.h>
#include <errno.h>
#include <string.h>

int password_hash(const char *password, char *out, size_t outlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;

	if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt))
		return errno ? -errno : -EINVAL;
	memset(&cd, 0, sizeof cd);
	const char *h = crypt_rn(password, salt, &cd, sizeof cd);
	if (!h || h[0] == '*')
		return errno ? -errno : -EINVAL;
	size_t n = strlen(h);
	if (n >= outlen)
		return -ENOSPC;
	memcpy(out, h, n + 1);
	explicit_bzero(&cd, sizeof cd);
	return 0;
}

bool password_verify(const char *password, const char *hash)
{
	struct crypt_data cd;

	if (!hash[0] || hash[0] == '!' || hash[0] == '*')
		return false;
	memset(&cd, 0, sizeof cd);
	const char *h = crypt_rn(password, hash, &cd, sizeof cd);
	bool ok = false;
	if (h && h[0] != '*') {
		size_t a = strlen(h), b = strlen(hash);
		unsigned char diff = (unsigned char)(a != b);
		for (size_t i = 0; i < a && i < b; i++)
			diff |= (unsigned char)(h[i] ^ hash[i]);
		ok = diff == 0;
	}
	explicit_bzero(&cd, sizeof cd);
	return ok;
}
