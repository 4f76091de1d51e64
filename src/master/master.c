/*
 * master: bind, drop root, fork and supervise. See master.h.
 *
 * The master runs no event library: a poll() on a signalfd is all it needs,
 * and it keeps libevent state out of the children it forks at any time.
 */
#include "master/master.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf/version.h"
#include "deliver/relay_auth.h"
#include "mail/aliases.h"
#include "mail/users.h"
#include "policy/dkim.h"
#include "policy/psl.h"
#include "policy/greylist.h"
#include "policy/policy_lists.h"
#include "policy/ratelimit.h"
#include "queue/queue_manager.h"
#include "queue/queue_store.h"
#include "smtpd/auth_limit.h"
#include "smtpd/conn_limit.h"
#include "smtpd/smtp_server.h"
#include "tls/tls_server.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"

/* Queue ids have 31 worker slots (0 is the queue manager's). */
#define WORKERS_MAX 30
#define LISTEN_BACKLOG 1024
#define RESTART_DELAY_MIN_MS 1000
#define RESTART_DELAY_MAX_MS 30000
/* A child that lived this long before dying is restarted at once. */
#define STABLE_UPTIME_S 10

enum child_role { CHILD_QMGR, CHILD_SMTPD };

struct child {
	enum child_role role;
	unsigned index;
	pid_t pid;
	struct timespec started;
	long delay_ms;       /* next restart pause */
	long long restart_at; /* monotonic ms; 0: not waiting */
	int keys_fd;          /* a worker's: the master's end of the socket for re-read DKIM keys */
};

struct master {
	struct config *cfg;
	unsigned nworkers;
	int *fds; /* one listening socket per listener, shared by every worker */
	struct conn_limit *limits;
	struct auth_limit *auth_limits;
	struct tls_server *tls;   /* last good TLS context, handed to every new worker */
	struct userdb *users;     /* last good tables, handed to every new worker */
	struct aliasdb *aliases;
	struct policy_lists *lists; /* last good local lists, handed to every new worker */
	struct greylist *greylist;  /* NULL unless greylist is on */
	struct ratelimit *ratelimit; /* NULL when no rate limit is set */
	struct relay_auth relay_auth; /* read as root; the queue manager inherits it */
	struct dkim_signer_set *dkim; /* dkim-sign keys, read as root; the workers inherit them */
	struct psl *psl;              /* the Public Suffix List for DMARC, read once for all workers */
	struct child *children; /* [0] qmgr, [1..] workers */
	size_t nchildren;
	pid_t pid;
	int sigfd;
	sigset_t blocked;
	bool stopping;
	long long kill_at;
};

static long long now_ms(void)
{
	return clock_mono_ms();
}

int master_lookup_user(const struct config *cfg, long *uid, long *gid)
{
	if (geteuid() != 0) {
		*uid = (long)getuid();
		*gid = (long)getgid();
		return 0;
	}
	struct passwd *pw = getpwnam(cfg->user);
	if (!pw)
		return -1;
	*uid = (long)pw->pw_uid;
	*gid = (long)pw->pw_gid;
	return 0;
}

static int make_dir_owned(const char *path, long uid, long gid)
{
	struct stat st;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (geteuid() == 0 && (st.st_uid != (uid_t)uid || st.st_gid != (gid_t)gid) &&
	    chown(path, (uid_t)uid, (gid_t)gid) < 0)
		return -errno;
	return 0;
}

static int bind_listener(const struct listen_cfg *l)
{
	int one = 1;
	int fd = socket(l->addr.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/*
	 * One socket shared by every worker (no SO_REUSEPORT): an idle worker takes the
	 * next connection, a dead one strands none in a backlog of its own, and an
	 * address already in use (another server) is refused by bind().
	 */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (l->addr.ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (const struct sockaddr *)&l->addr.ss, l->addr.len) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	return fd;
fail:;
	int err = errno;
	close(fd);
	return -err;
}

/* Enough descriptors for max-connections (each session holds one) plus files and spares. */
static void raise_fd_limit(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_connections + 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (want > rl.rlim_max && geteuid() == 0) {
		struct rlimit more = { want, want };
		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return;
	}
	rl.rlim_cur = want < rl.rlim_max ? (want > rl.rlim_cur ? want : rl.rlim_cur) : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want)
		log_warn("event=fd_limit limit=%llu wanted=%llu note=\"max-connections may not be "
			 "reachable\"",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

static void drop_privileges(const struct config *cfg, long uid, long gid)
{
	if (geteuid() != 0) {
		log_info("event=privileges user=%s note=\"not started as root; running as uid %ld\"",
			 LOG_ESC(cfg->user), (long)getuid());
		return;
	}
	if (initgroups(cfg->user, (gid_t)gid) < 0 || setgid((gid_t)gid) < 0 ||
	    setuid((uid_t)uid) < 0)
		fatal("event=startup_failed error=\"cannot drop privileges to %s: %s\"",
		      cfg->user, strerror(errno));
	if (setuid(0) == 0 || geteuid() == 0)
		fatal("event=startup_failed error=\"root privileges could be regained\"");
	log_info("event=privileges user=%s uid=%ld gid=%ld", LOG_ESC(cfg->user), uid, gid);
}

static const char *role_name(enum child_role role)
{
	return role == CHILD_QMGR ? "qmgr" : "smtpd";
}

static void master_free(struct master *m);

/* In the child: undo the master's signal setup and run the role. */
static _Noreturn void child_run(struct master *m, struct child *c)
{
	/* Unsupervised children must not go on serving: the master's death stops them. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != m->pid)
		exit(1); /* the master died before prctl took effect */
	/* A reload (SIGHUP) that comes before the child has its own handler must not kill it:
	 * it starts with the tables the master has just reloaded anyway. */
	signal(SIGHUP, SIG_IGN);
	sigprocmask(SIG_UNBLOCK, &m->blocked, NULL);
	close(m->sigfd);
	m->sigfd = -1;
	if (c->role == CHILD_QMGR) {
		for (size_t i = 0; i < m->cfg->nlistens; i++) {
			close(m->fds[i]);
			m->fds[i] = -1;
		}
	}
	/* The other workers' key sockets are the master's; this one reads its own. */
	int keys_fd = c->keys_fd;
	c->keys_fd = -1;
	for (size_t i = 0; i < m->nchildren; i++)
		if (m->children[i].keys_fd >= 0) {
			close(m->children[i].keys_fd);
			m->children[i].keys_fd = -1;
		}
	int status;
	struct userdb *users = m->users;
	struct aliasdb *aliases = m->aliases;
	m->users = NULL;
	m->aliases = NULL;
	if (c->role == CHILD_QMGR) {
		status = qmgr_main(m->cfg, users, aliases,
				   m->relay_auth.user ? &m->relay_auth : NULL);
	} else {
		struct smtpd_shared shared = {
			.limits = m->limits, .auth_limits = m->auth_limits, .tls = m->tls,
			.lists = m->lists, .greylist = m->greylist, .ratelimit = m->ratelimit,
			.dkim_keys = m->dkim, .psl = m->psl, .keys_fd = keys_fd,
		};
		m->tls = NULL; /* the worker's now */
		m->lists = NULL;
		m->psl = NULL;
		status = smtpd_worker_main(m->cfg, c->index, m->fds, &shared, users, aliases);
		/* The worker's listeners closed its copies of the sockets. */
		for (size_t i = 0; i < m->cfg->nlistens; i++)
			m->fds[i] = -1;
	}
	master_free(m);
	exit(status);
}

static void child_start(struct master *m, struct child *c)
{
	if (c->role == CHILD_SMTPD) {
		/* What a dead predecessor held must not count against the new one. */
		conn_limit_reset_worker(m->limits, c->index);
		queue_spool_clean_incoming(m->cfg->spool, (int)c->index + 1);
	}
	/* A worker gets DKIM keys re-read on SIGHUP over a socket (it cannot read them itself:
	 * they are root's). The worker's end replaces the master's in the child. */
	int sv[2] = { -1, -1 };
	if (c->keys_fd >= 0) {
		close(c->keys_fd);
		c->keys_fd = -1;
	}
	if (c->role == CHILD_SMTPD && m->dkim &&
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0) {
		/* Room for one datagram of the largest set (past net.core.wmem_max only as
		 * root; else the default, about 200 KiB: some 50 RSA-4096 keys). */
		int size = DKIM_SIGNER_SET_EXPORT_MAX + 4096;
		if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
			setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
		if (setsockopt(sv[1], SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
			setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_err("event=fork_failed role=%s error=\"%s\"", role_name(c->role), strerror(errno));
		c->restart_at = now_ms() + RESTART_DELAY_MIN_MS;
		if (sv[0] >= 0) {
			close(sv[0]);
			close(sv[1]);
		}
		return;
	}
	if (pid == 0) {
		if (sv[0] >= 0)
			close(sv[0]);
		c->keys_fd = sv[1];
		child_run(m, c);
	}
	if (sv[1] >= 0)
		close(sv[1]);
	c->keys_fd = sv[0];
	c->pid = pid;
	c->restart_at = 0;
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	log_info("event=child_started role=%s index=%u pid=%ld", role_name(c->role), c->index,
		 (long)pid);
}

static void reap(struct master *m)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c = NULL;
		for (size_t i = 0; i < m->nchildren; i++)
			if (m->children[i].pid == pid)
				c = &m->children[i];
		if (!c)
			continue;
		c->pid = 0;
		char how[64];
		if (WIFEXITED(status))
			snprintf(how, sizeof how, "exit=%d", WEXITSTATUS(status));
		else
			snprintf(how, sizeof how, "signal=%d", WTERMSIG(status));
		if (m->stopping) {
			log_info("event=child_exited role=%s index=%u pid=%ld %s", role_name(c->role),
				 c->index, (long)pid, how);
			continue;
		}
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long uptime = (long)(now.tv_sec - c->started.tv_sec);
		if (uptime >= STABLE_UPTIME_S)
			c->delay_ms = 0;
		else
			c->delay_ms = c->delay_ms ? c->delay_ms * 2 : RESTART_DELAY_MIN_MS;
		if (c->delay_ms > RESTART_DELAY_MAX_MS)
			c->delay_ms = RESTART_DELAY_MAX_MS;
		log_err("event=child_died role=%s index=%u pid=%ld %s uptime=%lds restart_in=%ldms",
			role_name(c->role), c->index, (long)pid, how, uptime, c->delay_ms);
		c->restart_at = now_ms() + c->delay_ms;
	}
}

static size_t running(const struct master *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->nchildren; i++)
		if (m->children[i].pid > 0)
			n++;
	return n;
}

static void signal_children(struct master *m, int sig)
{
	for (size_t i = 0; i < m->nchildren; i++)
		if (m->children[i].pid > 0)
			kill(m->children[i].pid, sig);
}

static void warn_dkim_key(void *ctx, const char *msg);

/*
 * SIGHUP: read the dkim-sign keys again and hand them to every running worker; one
 * restarted later inherits them. The master is no longer root: a key only root may read
 * fails, and like any key that cannot be read it keeps the previous set, in the master
 * and in the workers.
 */
static void reload_dkim_keys(struct master *m)
{
	struct dkim_signer_set *set;
	char err[512];
	struct buf b;

	if (!m->dkim)
		return; /* no dkim-sign line (the configuration is not re-read) */
	if (dkim_signer_set_load(m->cfg, &set, warn_dkim_key, NULL, err, sizeof err) < 0 || !set) {
		log_err("event=dkim_reload_failed error=%s keeping=previous", LOG_ESC(err));
		return;
	}
	buf_init(&b, DKIM_SIGNER_SET_EXPORT_MAX);
	if (dkim_signer_set_export(set, &b) < 0) {
		log_err("event=dkim_reload_failed error=\"keys too large to hand over\" "
			"keeping=previous");
		buf_free(&b);
		dkim_signer_set_free(set);
		return;
	}
	dkim_signer_set_free(m->dkim);
	m->dkim = set;
	size_t sent = 0;
	for (size_t i = 0; i < m->nchildren; i++) {
		struct child *c = &m->children[i];
		if (c->pid <= 0 || c->keys_fd < 0)
			continue;
		if (send(c->keys_fd, b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)b.len)
			sent++;
		else
			log_err("event=dkim_reload_failed worker=%u error=\"%s\"", c->index,
				strerror(errno));
	}
	explicit_bzero(b.data, b.len);
	buf_free(&b);
	log_info("event=dkim_keys_reloaded keys=%zu workers=%zu", dkim_signer_set_count(set), sent);
}

static void supervise(struct master *m)
{
	for (;;) {
		long long now = now_ms(), next = -1;
		if (m->stopping && running(m) == 0)
			return;
		if (!m->stopping) {
			for (size_t i = 0; i < m->nchildren; i++) {
				struct child *c = &m->children[i];
				if (c->pid == 0 && c->restart_at && c->restart_at <= now)
					child_start(m, c);
				if (c->pid == 0 && c->restart_at && (next < 0 || c->restart_at < next))
					next = c->restart_at;
			}
		} else {
			if (now >= m->kill_at) {
				log_warn("event=shutdown_timeout action=kill children=%zu", running(m));
				signal_children(m, SIGKILL);
				m->kill_at = now + 1000;
			}
			next = m->kill_at;
		}
		int timeout = next < 0 ? -1 : (int)(next > now ? next - now : 0);
		struct pollfd pfd = { m->sigfd, POLLIN, 0 };
		if (poll(&pfd, 1, timeout) <= 0)
			continue;
		struct signalfd_siginfo si;
		while (read(m->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
			switch (si.ssi_signo) {
			case SIGCHLD:
				reap(m);
				break;
			case SIGHUP:
				/* First here, so that a worker restarted later gets the new tables. */
				smtpd_reload_maps(m->cfg, &m->users, &m->aliases);
				policy_lists_reload(m->cfg, &m->lists);
				tls_server_reload(m->cfg, &m->tls);
				smtpd_reload_psl(m->cfg, &m->psl);
				reload_dkim_keys(m);
				signal_children(m, SIGHUP);
				break;
			case SIGTERM:
			case SIGINT:
				if (!m->stopping) {
					log_info("event=stopping signal=%u children=%zu", si.ssi_signo,
						 running(m));
					m->stopping = true;
					m->kill_at = now_ms() +
						     (long long)m->cfg->shutdown_timeout * 1000 + 10000;
					signal_children(m, SIGTERM);
				}
				break;
			}
		}
		reap(m);
	}
}

static void master_free(struct master *m)
{
	for (size_t i = 0; m->fds && i < m->cfg->nlistens; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	free(m->fds);
	for (size_t i = 0; m->children && i < m->nchildren; i++)
		if (m->children[i].keys_fd >= 0)
			close(m->children[i].keys_fd);
	free(m->children);
	if (m->sigfd >= 0)
		close(m->sigfd);
	conn_limit_destroy(m->limits);
	auth_limit_destroy(m->auth_limits);
	greylist_close(m->greylist);
	ratelimit_destroy(m->ratelimit);
	policy_lists_free(m->lists);
	tls_server_free(m->tls);
	if (m->users)
		userdb_free(m->users);
	if (m->aliases)
		aliasdb_free(m->aliases);
	relay_auth_free(&m->relay_auth);
	dkim_signer_set_free(m->dkim);
	psl_free(m->psl);
}

static void warn_dkim_key(void *ctx, const char *msg)
{
	(void)ctx;
	log_warn("event=dkim_key_warning warning=%s", LOG_ESC(msg));
}

/* The shared tables of greylisting and rate limits, when configured; -1 after a message. */
static int open_policy_tables(struct master *m, long uid, long gid)
{
	const struct config *cfg = m->cfg;
	char path[4096], err[256];

	if (cfg->greylist) {
		if (!str_format(path, sizeof path, "%s/%s", cfg->spool, GREYLIST_FILE)) {
			fprintf(stderr, "carteiro: spool path too long\n");
			return -1;
		}
		m->greylist = greylist_open(path, cfg->greylist_max_entries, uid, gid, err,
					    sizeof err);
		if (!m->greylist) {
			fprintf(stderr, "carteiro: greylist: %s\n", err);
			log_err("event=startup_failed error=%s", LOG_ESC(err));
			return -1;
		}
	}
	if (cfg->ratelimit_connections.count || cfg->ratelimit_messages.count ||
	    cfg->ratelimit_user_messages.count || cfg->ratelimit_user_recipients.count) {
		m->ratelimit = ratelimit_create();
		if (!m->ratelimit) {
			log_err("event=startup_failed error=\"cannot map the rate limit table\"");
			return -1;
		}
	}
	return 0;
}

/* Bind every listener; false (after a message) when one cannot be. */
static bool bind_all(struct master *m)
{
	const struct config *cfg = m->cfg;

	m->fds = malloc((cfg->nlistens ? cfg->nlistens : 1) * sizeof *m->fds);
	if (!m->fds)
		return false;
	for (size_t i = 0; i < cfg->nlistens; i++)
		m->fds[i] = -1;
	for (size_t i = 0; i < cfg->nlistens; i++) {
		int fd = bind_listener(&cfg->listens[i]);
		if (fd < 0) {
			fprintf(stderr, "carteiro: cannot listen on %s: %s\n", cfg->listens[i].text,
				strerror(-fd));
			return false;
		}
		m->fds[i] = fd;
		log_info("event=listening listener=%s address=%s tls=%s auth_required=%s workers=%u",
			 listen_kind_name(cfg->listens[i].kind), cfg->listens[i].text,
			 cfg->listens[i].flags & LISTEN_IMPLICIT_TLS ? "implicit"
			 : cfg->listens[i].flags & LISTEN_STARTTLS   ? "starttls"
								     : "no",
			 cfg->listens[i].flags & LISTEN_AUTH_REQUIRED ? "yes" : "no", m->nworkers);
	}
	return true;
}

int master_main(struct config *cfg)
{
	struct master m;
	long uid, gid;
	int r, status = 1;

	memset(&m, 0, sizeof m);
	m.cfg = cfg;
	m.sigfd = -1;
	m.pid = getpid();
	log_set_role("master");
	signal(SIGPIPE, SIG_IGN);
	/* A file size limit must fail the write (EFBIG, answered 451), not kill the process. */
	signal(SIGXFSZ, SIG_IGN);

	if (master_lookup_user(cfg, &uid, &gid) < 0) {
		fprintf(stderr,
			"carteiro: user '%s' does not exist. Create it (useradd --system --no-create-home "
			"--shell /usr/sbin/nologin %s) or set 'user' in the configuration.\n",
			cfg->user, cfg->user);
		return 1;
	}
	r = queue_spool_prepare(cfg->spool, uid, gid);
	if (r < 0) {
		fprintf(stderr, "carteiro: spool %s: %s\n", cfg->spool, strerror(-r));
		return 1;
	}
	r = make_dir_owned(cfg->maildir_root, uid, gid);
	if (r < 0) {
		fprintf(stderr, "carteiro: maildir-root %s: %s\n", cfg->maildir_root, strerror(-r));
		return 1;
	}
	r = queue_spool_clean_incoming(cfg->spool, -1);
	if (r > 0)
		log_info("event=recovery removed_incomplete=%d", r);

	/* The master keeps the last good tables: workers are forked with them. */
	if (smtpd_load_maps(cfg, config_report_log, NULL, &m.users, &m.aliases) < 0)
		return 1;
	if (cfg->relayhost_auth_file) {
		char err[128];
		if (relay_auth_load(cfg->relayhost_auth_file, &m.relay_auth, err, sizeof err) < 0) {
			log_err("event=startup_failed file=%s error=\"relayhost-auth: %s\"",
				LOG_ESC(cfg->relayhost_auth_file), err);
			goto out;
		}
		if (m.relay_auth.exposed)
			log_warn("event=relayhost_auth_exposed file=%s advice=\"chmod 600: only root "
				 "should read the password\"", LOG_ESC(cfg->relayhost_auth_file));
	}
	char dkim_err[512];
	if (dkim_signer_set_load(cfg, &m.dkim, warn_dkim_key, NULL, dkim_err, sizeof dkim_err) < 0) {
		log_err("event=startup_failed error=%s", LOG_ESC(dkim_err));
		fprintf(stderr, "carteiro: %s\n", dkim_err);
		goto out;
	}
	if (m.dkim)
		log_info("event=dkim_keys_loaded keys=%zu", dkim_signer_set_count(m.dkim));
	if (cfg->dmarc) {
		char psl_err[512];
		m.psl = psl_load(cfg->public_suffix_list, psl_err, sizeof psl_err);
		if (!m.psl)
			log_err("event=psl_unavailable error=%s note=\"DMARC is skipped\"",
				LOG_ESC(psl_err));
	}
	if (policy_lists_load(cfg, config_report_log, NULL, &m.lists) < 0)
		goto out;
	if (open_policy_tables(&m, uid, gid) < 0)
		goto out;
	/* Keys are read now, while root can read them; the workers inherit the context. */
	char tls_err[TLS_ERROR_MAX];
	if (tls_server_load(cfg, &m.tls, tls_err, sizeof tls_err) < 0) {
		fprintf(stderr, "carteiro: %s\n", tls_err);
		goto out;
	}

	/*
	 * auto: one SMTP worker per two CPUs. A worker's loop is a small part of a
	 * message's cost (parsing and replies; the kernel's TCP, the I/O threads'
	 * syncs, the queue manager and outbound delivery are the rest): at 2,200
	 * msg/s on a 2-core VM it used 35% of a core. A second worker there only
	 * split the batches of group commit and woke both loops for each new
	 * connection: 17% more CPU a message, 10% fewer messages a second at 20
	 * and 100 sessions (bench/README.md, item 16).
	 */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	m.nworkers = cfg->workers ? cfg->workers : (unsigned)(ncpu > 1 ? (ncpu + 1) / 2 : 1);
	if (m.nworkers > WORKERS_MAX)
		m.nworkers = WORKERS_MAX;
	m.limits = conn_limit_create(cfg->max_connections, cfg->max_connections_per_ip, m.nworkers);
	m.auth_limits = auth_limit_create();
	if (!m.limits || !m.auth_limits || !bind_all(&m))
		goto out;

	raise_fd_limit(cfg);
	drop_privileges(cfg, uid, gid);

	sigemptyset(&m.blocked);
	sigaddset(&m.blocked, SIGCHLD);
	sigaddset(&m.blocked, SIGTERM);
	sigaddset(&m.blocked, SIGINT);
	sigaddset(&m.blocked, SIGHUP);
	sigprocmask(SIG_BLOCK, &m.blocked, NULL);
	m.sigfd = signalfd(-1, &m.blocked, SFD_NONBLOCK | SFD_CLOEXEC);
	m.nchildren = 1 + m.nworkers;
	m.children = calloc(m.nchildren, sizeof *m.children);
	if (m.sigfd < 0 || !m.children) {
		log_err("event=startup_failed error=\"%s\"", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < m.nchildren; i++)
		m.children[i].keys_fd = -1;
	m.children[0].role = CHILD_QMGR;
	for (unsigned w = 0; w < m.nworkers; w++) {
		m.children[1 + w].role = CHILD_SMTPD;
		m.children[1 + w].index = w;
	}
	log_info("event=started version=%s hostname=%s workers=%u", CARTEIRO_VERSION,
		 LOG_ESC(cfg->hostname), m.nworkers);
	for (size_t i = 0; i < m.nchildren; i++)
		child_start(&m, &m.children[i]);

	supervise(&m);
	log_info("event=stopped");
	status = 0;
out:
	master_free(&m);
	return status;
}
