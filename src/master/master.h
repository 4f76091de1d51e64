/*
 * master: the parent process of `carteiro serve`.
 *
 * It prepares the spool and maildir-root, removes what a crash left in
 * incoming/, binds every listener (one socket per address, which every
 * worker accepts on), maps the shared connection table, keeps the users and
 * aliases tables for new workers, then drops root for `user`
 * and forks the queue manager and the SMTP workers. It supervises them: a
 * child that dies is restarted (after a growing pause if it keeps dying),
 * and a dead worker's connection counts and partial spool files are
 * cleaned first. SIGTERM/SIGINT stop the children gracefully (SIGKILL after
 * shutdown-timeout plus a margin); SIGHUP reloads the users and aliases
 * tables here (keeping the old ones if the files are broken) and is passed on
 * to the children. Children die with the master (PR_SET_PDEATHSIG).
 */
#ifndef CARTEIRO_MASTER_MASTER_H
#define CARTEIRO_MASTER_MASTER_H

#include "conf/config.h"

/* Run the server; returns the process exit status. */
int master_main(struct config *cfg);

/* Look up the server user; when not root (or no user set), the current ids. 0 or -1. */
int master_lookup_user(const struct config *cfg, long *uid, long *gid);

#endif
