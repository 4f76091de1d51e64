/*
 * config_query: questions the rest of the server asks of a loaded
 * configuration (kept apart from the parser in config.c).
 */
#include "conf/config.h"

#include <string.h>

#include "util/str.h"

bool config_is_local_domain(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->nlocal_domains; i++)
		if (str_casecmp(cfg->local_domains[i], domain) == 0)
			return true;
	return false;
}

bool config_is_relay_client(const struct config *cfg, const struct sockaddr *sa)
{
	for (size_t i = 0; i < cfg->nrelay_networks; i++)
		if (cidr_match(&cfg->relay_networks[i], sa))
			return true;
	return false;
}

const char *listen_kind_name(enum listen_kind kind)
{
	switch (kind) {
	case LISTEN_SUBMISSION:
		return "submission";
	case LISTEN_SUBMISSIONS:
		return "submissions";
	case LISTEN_POP3:
		return "pop3";
	case LISTEN_POP3S:
		return "pop3s";
	default:
		return "smtp";
	}
}

bool listen_uses_tls(const struct listen_cfg *l)
{
	return (l->flags & (LISTEN_STARTTLS | LISTEN_IMPLICIT_TLS)) != 0;
}

bool listen_is_pop3(const struct listen_cfg *l)
{
	return l->kind == LISTEN_POP3 || l->kind == LISTEN_POP3S;
}
