/*
 * demo: the built-in demo configuration of `carteiro serve --demo` (what
 * `make run` starts): SMTP on 127.0.0.1:2525 (with STARTTLS), submission on
 * 127.0.0.1:2587 (STARTTLS) and 127.0.0.1:2465 (implicit TLS), a self-signed
 * certificate made on the first run in run/tls/, everything under ./run/, the
 * local domain example.test with the mailbox demo@example.test (password
 * "demo") and postmaster/abuse aliases to it.
 */
#ifndef CARTEIRO_CONF_DEMO_H
#define CARTEIRO_CONF_DEMO_H

#include "conf/config.h"

/* Create ./run/, the demo certificate and key, and the users and aliases files if missing;
 * give them to uid/gid. */
int demo_prepare(const struct config *cfg, long uid, long gid);

#endif
