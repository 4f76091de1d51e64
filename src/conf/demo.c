/*
 * demo: the embedded demo configuration and the files it needs. See demo.h.
 *
 * The demo's TLS certificate is self-signed (EC P-256, SHA-256, ten years,
 * subjectAltName mx.example.test, localhost, 127.0.0.1), made with OpenSSL's
 * API on the first run; its key is written with mode 0600.
 */
#include "conf/demo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include "mail/password.h"

const char config_demo_text[] =
	"# carteiro's built-in demo configuration (`carteiro serve --demo`, `make run`).\n"
	"# Print it with `carteiro help demo-config`; start from it for your own.\n"
	"hostname                mx.example.test\n"
	"spool                   run/spool\n"
	"maildir-root            run/mail\n"
	"user                    carteiro      # used only when started as root\n"
	"listen smtp             127.0.0.1:2525 starttls\n"
	"listen submission       127.0.0.1:2587   # STARTTLS, AUTH required\n"
	"listen submissions      127.0.0.1:2465   # implicit TLS, AUTH required\n"
	"listen pop3             127.0.0.1:2110 starttls # read mail: POP3 (login over TLS)\n"
	"listen pop3s            127.0.0.1:2995   # POP3 with implicit TLS\n"
	"tls-cert                run/tls/cert.pem # self-signed, made on the first run\n"
	"tls-key                 run/tls/key.pem\n"
	"local-domain            example.test\n"
	"users                   run/users\n"
	"aliases                 run/aliases\n"
	"max-message-size        35M\n"
	"max-recipients          100\n"
	"max-connections         1000\n"
	"max-connections-per-ip  20\n";

#define DEMO_PASSWORD "demo"

/* Write path with content unless it exists; owned by uid/gid when root. */
static int write_new_file(const char *path, const char *content, long uid, long gid)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : -errno;
	size_t n = strlen(content);
	int r = write(fd, content, n) == (ssize_t)n ? 0 : -EIO;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && geteuid() == 0 && fchown(fd, (uid_t)uid, (gid_t)gid) < 0)
		r = -errno;
	close(fd);
	if (r < 0)
		unlink(path);
	return r;
}

/* Write a PEM object to a new file of the given mode (owned by uid/gid when root). */
static int write_pem(const char *path, mode_t mode, long uid, long gid, EVP_PKEY *key, X509 *cert)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (geteuid() == 0 && fchown(fd, (uid_t)uid, (gid_t)gid) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
		     : PEM_write_X509(f, cert);
	if (fclose(f) != 0 || !ok)
		return -EIO;
	return 0;
}

/* A self-signed certificate and its key in run/tls/, unless the certificate exists. */
static int demo_tls(const struct config *cfg, long uid, long gid)
{
	if (cfg->tls_certs.n == 0 || access(cfg->tls_certs.items[0], F_OK) == 0)
		return 0;
	if (mkdir("run/tls", 0700) < 0 && errno != EEXIST)
		return -errno;
	if (geteuid() == 0 && chown("run/tls", (uid_t)uid, (gid_t)gid) < 0)
		return -errno;
	int r = -ENOMEM;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *cert = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *san = NULL;
	if (!key || !cert || !name)
		goto out;
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 86400);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cfg->hostname,
				   -1, -1, 0);
	X509_set_subject_name(cert, name);
	X509_set_issuer_name(cert, name);
	X509_set_pubkey(cert, key);
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	char alt[300];
	snprintf(alt, sizeof alt, "DNS:%s,DNS:localhost,IP:127.0.0.1", cfg->hostname);
	san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, alt);
	if (!san || !X509_add_ext(cert, san, -1) || !X509_sign(cert, key, EVP_sha256()))
		goto out;
	r = write_pem(cfg->tls_keys.items[0], 0600, uid, gid, key, NULL);
	if (r == 0)
		r = write_pem(cfg->tls_certs.items[0], 0644, uid, gid, NULL, cert);
out:
	X509_EXTENSION_free(san);
	X509_NAME_free(name);
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}

int demo_prepare(const struct config *cfg, long uid, long gid)
{
	char hash[PASSWORD_HASH_MAX], users[PASSWORD_HASH_MAX + 128];
	int r;

	if (mkdir("run", 0755) < 0 && errno != EEXIST)
		return -errno;
	r = demo_tls(cfg, uid, gid);
	if (r < 0)
		return r;
	if (access(cfg->users_file, F_OK) != 0) {
		r = password_hash(DEMO_PASSWORD, hash, sizeof hash);
		if (r < 0)
			return r;
		snprintf(users, sizeof users,
			 "# demo accounts: address:crypt-hash (password of demo@example.test: "
			 "\"demo\")\ndemo@example.test:%s\n",
			 hash);
		r = write_new_file(cfg->users_file, users, uid, gid);
		if (r < 0)
			return r;
	}
	return write_new_file(cfg->aliases_file,
			      "# demo aliases: alias@domain: target[, target...]\n"
			      "postmaster@example.test: demo@example.test\n"
			      "abuse@example.test: demo@example.test\n",
			      uid, gid);
}
