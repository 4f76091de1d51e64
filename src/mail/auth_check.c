/*
 * auth_check: a password check off the event loop. See auth_check.h.
 */
#include "mail/auth_check.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mail/password.h"
#include "mail/users.h"
#include "util/iopool.h"
#include "util/str.h"

struct auth_check {
	struct iojob job; /* first: the pool hands it back */
	auth_check_done_fn *done; /* NULL once detached */
	void *arg;
	bool known; /* the user exists */
	bool ok;
	char user[SASL_NAME_MAX + 1]; /* the account's address, or the name given */
	char hash[PASSWORD_HASH_MAX];
	char password[SASL_PASSWORD_MAX + 1];
};

/* A yescrypt hash of nothing anyone knows, checked against for unknown users. */
static char auth_dummy_hash[PASSWORD_HASH_MAX];

static void auth_dummy_hash_init(void)
{
	if (password_hash("carteiro: no such user", auth_dummy_hash, sizeof auth_dummy_hash) < 0)
		auth_dummy_hash[0] = '\0';
}

/* The password check, on an I/O thread. */
static int auth_check_run(struct iojob *job)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct auth_check *c = (struct auth_check *)job;

	/* An unknown user costs a hash too, so that timing does not tell who exists. */
	pthread_once(&once, auth_dummy_hash_init);
	c->ok = password_verify(c->password, c->known ? c->hash : auth_dummy_hash) && c->known;
	explicit_bzero(c->password, sizeof c->password);
	return 0;
}

static void auth_check_finished(struct iojob *job)
{
	struct auth_check *c = (struct auth_check *)job;

	if (c->done)
		c->done(c->arg, c->ok, c->user);
	explicit_bzero(c, sizeof *c);
	free(c);
}

struct auth_check *auth_check_start(struct iopool *pool, const struct userdb *users,
				    const char *name, const char *password, auth_check_done_fn *done,
				    void *arg)
{
	struct auth_check *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	const struct user *u = userdb_find(users, name);
	c->done = done;
	c->arg = arg;
	/* The account's own spelling of the address, or the name as given (for the log). */
	c->known = u && str_copy(c->hash, sizeof c->hash, u->hash);
	str_copy(c->user, sizeof c->user, u ? u->address : name);
	str_copy(c->password, sizeof c->password, password);
	iojob_init(&c->job, auth_check_run, NULL, auth_check_finished);
	iopool_submit(pool, &c->job);
	return c;
}

void auth_check_detach(struct auth_check *c)
{
	c->done = NULL;
}
