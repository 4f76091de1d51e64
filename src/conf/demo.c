/*
 * demo: the embedded demo configuration and the files it needs. See demo.h.
 */
#include "conf/demo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/password.h"

const char config_demo_text[] =
	"# carteiro's built-in demo configuration (`carteiro serve --demo`, `make run`).\n"
	"# Print it with `carteiro help demo-config`; start from it for your own.\n"
	"hostname                mx.example.test\n"
	"spool                   run/spool\n"
	"maildir-root            run/mail\n"
	"user                    carteiro      # used only when started as root\n"
	"listen smtp             127.0.0.1:2525\n"
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

int demo_prepare(const struct config *cfg, long uid, long gid)
{
	char hash[PASSWORD_HASH_MAX], users[PASSWORD_HASH_MAX + 128];
	int r;

	if (mkdir("run", 0755) < 0 && errno != EEXIST)
		return -errno;
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
