/*
 * password: crypt(3) password hashes through libcrypt (yescrypt for new
 * hashes; any scheme libcrypt knows — yescrypt, bcrypt, SHA-512-crypt — for
 * checks), the format of Dovecot's passwd-file.
 *
 * Checking a password costs milliseconds by design: never call these on an
 * event loop thread.
 */
#ifndef CARTEIRO_MAIL_PASSWORD_H
#define CARTEIRO_MAIL_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* Longest hash produced (CRYPT_OUTPUT_SIZE of libcrypt). */
#define PASSWORD_HASH_MAX 384

/* Hash password with a fresh yescrypt salt into out. 0 or -errno. */
int password_hash(const char *password, char *out, size_t outlen);
/* Does password match hash? Disabled hashes ("", "!...", "*...") never match. */
bool password_verify(const char *password, const char *hash);

#endif
