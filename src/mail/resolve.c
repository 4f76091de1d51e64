/*
 * resolve: map one recipient to local mailboxes and remote recipients,
 * following the lookup order and the alias rules of resolve.h.
 *
 * Alias expansion is a depth-first walk with an explicit stack of
 * (alias, next target) frames, at most RESOLVE_DEPTH_MAX deep; the stack is
 * also the "currently being expanded" set used to detect loops. Nothing is
 * allocated: the walk lives on the caller's stack and writes straight into
 * the caller's array.
 *
 * Decisions beyond resolve.h:
 * - A chain deeper than RESOLVE_DEPTH_MAX fails the whole recipient
 *   (RESOLVE_LOOP) rather than delivering part of the list.
 * - A target in a local domain that is neither an alias nor a user (nor
 *   caught by a catch-all) is dropped with a warning: the alias file names a
 *   mailbox that does not exist. If nothing is left, the result is
 *   RESOLVE_LOOP when a loop dropped something, else RESOLVE_UNKNOWN.
 * - Plus-addressing cuts at the first delimiter byte of the local part, but
 *   only ASCII delimiters are honoured (a UTF-8 local part is never cut in
 *   the middle of a character) and the part before it must not be empty
 *   ("+tag@domain" would otherwise become the catch-all key "@domain").
 * - A walk that visits more than RESOLVE_WORK_MAX addresses fails with
 *   RESOLVE_TOO_MANY: de-duplication keeps the results small, but without this
 *   bound aliases that fan out into each other (a: b x1000, b: c x1000, ...)
 *   would cost exponential time.
 *
 * Security: recipients come from the network. Every lookup key is built in a
 * fixed buffer from a parsed struct addr whose length limits make it fit;
 * loops, depth and total work are bounded, so no alias file can make one
 * RCPT command run forever.
 */
#include "mail/resolve.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "util/str.h"

/* Addresses looked up while resolving one recipient. */
#define RESOLVE_WORK_MAX 10000

struct resolve_frame {
	const struct alias *alias;
	size_t next; /* index of the next target to visit */
};

struct resolve_walk {
	const struct resolve_ctx *rc;
	struct resolved *out;
	size_t max;
	size_t n;
	struct resolve_frame stack[RESOLVE_DEPTH_MAX];
	size_t depth;
	size_t work;
	bool loop; /* a loop was cut */
};

/* Append a result unless it is already there. */
static int walk_add(struct resolve_walk *w, enum resolve_kind kind, const char *address)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->out[i].kind == kind && strcmp(w->out[i].address, address) == 0)
			return RESOLVE_OK;
	if (w->n == w->max)
		return RESOLVE_TOO_MANY;
	w->out[w->n].kind = kind;
	/* Every address here was built from a struct addr and fits. */
	str_copy(w->out[w->n].address, sizeof w->out[w->n].address, address);
	w->n++;
	return RESOLVE_OK;
}

/*
 * The plus-addressing base of a lower-case key ("user+tag@d" -> "user@d") in
 * base; false when the local part holds no delimiter after its first byte.
 */
static bool plus_base(const struct config *cfg, const char *key, char *base, size_t baselen)
{
	const char *delims = cfg->recipient_delimiter;
	size_t ndelims = strnlen(delims, sizeof cfg->recipient_delimiter);
	const char *at = strrchr(key, '@');

	/* A quoted local part is never a user or an alias name: leave it whole. */
	if (ndelims == 0 || !at || key[0] == '"')
		return false;
	for (const char *p = key + 1; p < at; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x80 || !memchr(delims, c, ndelims))
			continue;
		size_t cut = (size_t)(p - key), rest = strlen(at);
		if (cut + rest >= baselen)
			return false;
		memcpy(base, key, cut);
		memcpy(base + cut, at, rest + 1);
		return true;
	}
	return false;
}

/* The mailbox an address delivers to on its own (exact user, then plus base). */
static const struct user *mailbox_of(const struct resolve_walk *w, const char *key)
{
	char base[ADDR_TEXT_MAX + 1];
	const struct user *u = userdb_find(w->rc->users, key);

	if (!u && plus_base(w->rc->cfg, key, base, sizeof base))
		u = userdb_find(w->rc->users, base);
	return u;
}

/* Start expanding alias a, reached through key; a loop delivers to key's mailbox, if any. */
static int walk_expand(struct resolve_walk *w, const struct alias *a, const char *key)
{
	for (size_t i = 0; i < w->depth; i++) {
		if (w->stack[i].alias != a)
			continue;
		const struct user *u = mailbox_of(w, key);
		w->loop = true;
		log_debug("event=alias_loop alias=%s mailbox=%s", LOG_ESC(a->address),
			  u ? LOG_ESC(u->address) : "none");
		return u ? walk_add(w, RESOLVE_LOCAL, u->address) : RESOLVE_OK;
	}
	if (w->depth == RESOLVE_DEPTH_MAX) {
		log_warn("event=alias_too_deep alias=%s depth=%d", LOG_ESC(a->address),
			 RESOLVE_DEPTH_MAX);
		return RESOLVE_LOOP;
	}
	w->stack[w->depth++] = (struct resolve_frame){ a, 0 };
	return RESOLVE_OK;
}

/*
 * Look up one address (canonical text) in the order of resolve.h; from is
 * the alias that named it, NULL for the recipient itself.
 */
static int walk_visit(struct resolve_walk *w, const char *text, const struct alias *from)
{
	const struct config *cfg = w->rc->cfg;
	char key[ADDR_TEXT_MAX + 1], base[ADDR_TEXT_MAX + 1];
	const struct alias *a;
	const struct user *u;

	if (++w->work > RESOLVE_WORK_MAX) {
		log_warn("event=alias_expansion_too_big limit=%d", RESOLVE_WORK_MAX);
		return RESOLVE_TOO_MANY;
	}
	const char *at = strrchr(text, '@');
	if (at && (at[1] == '[' || !config_is_local_domain(cfg, at + 1)))
		return walk_add(w, RESOLVE_REMOTE, text);
	if (!at || !str_copy(key, sizeof key, text))
		return from ? RESOLVE_OK : RESOLVE_UNKNOWN;
	str_lower(key);

	if ((a = aliasdb_find(w->rc->aliases, key)))
		return walk_expand(w, a, key);
	if ((u = userdb_find(w->rc->users, key)))
		return walk_add(w, RESOLVE_LOCAL, u->address);
	if (plus_base(cfg, key, base, sizeof base)) {
		if ((a = aliasdb_find(w->rc->aliases, base)))
			return walk_expand(w, a, key);
		if ((u = userdb_find(w->rc->users, base)))
			return walk_add(w, RESOLVE_LOCAL, u->address);
	}
	/* The catch-all key "@domain" is the tail of key. */
	if ((a = aliasdb_find(w->rc->aliases, strrchr(key, '@'))))
		return walk_expand(w, a, key);

	/* RFC 5321 4.5.1: every domain has a postmaster; without one of its own, the host's
	 * (postmaster of the first local domain) answers for it. */
	const char *kat = strrchr(key, '@');
	if (cfg->nlocal_domains > 0 && (size_t)(kat - key) == 10 &&
	    memcmp(key, "postmaster", 10) == 0 && strcmp(kat + 1, cfg->local_domains[0]) != 0) {
		char pm[ADDR_TEXT_MAX + 1];
		if (snprintf(pm, sizeof pm, "postmaster@%s", cfg->local_domains[0]) < (int)sizeof pm)
			return walk_visit(w, pm, from);
	}
	if (!from)
		return RESOLVE_UNKNOWN;
	log_warn("event=alias_target_unknown alias=%s target=%s", LOG_ESC(from->address),
		 LOG_ESC(text));
	return RESOLVE_OK;
}

int resolve_recipient(const struct resolve_ctx *rc, const struct addr *rcpt, struct resolved *out,
		      size_t max, size_t *n)
{
	struct resolve_walk w = { .rc = rc, .out = out, .max = max };
	char postmaster[ADDR_TEXT_MAX + 1];
	const char *text = rcpt->text;
	int r;

	*n = 0;
	if (rcpt->null)
		return RESOLVE_UNKNOWN;
	if (rcpt->domain[0] == '\0') {
		/* RFC 5321 4.1.1.3: "<postmaster>" is the postmaster of this host. */
		if (str_casecmp(rcpt->local, "postmaster") != 0 || rc->cfg->nlocal_domains == 0)
			return RESOLVE_UNKNOWN;
		int len = snprintf(postmaster, sizeof postmaster, "postmaster@%s",
				   rc->cfg->local_domains[0]);
		if (len < 0 || (size_t)len >= sizeof postmaster)
			return RESOLVE_UNKNOWN;
		text = postmaster;
	} else if (rcpt->literal || !config_is_local_domain(rc->cfg, rcpt->domain)) {
		r = walk_add(&w, RESOLVE_REMOTE, rcpt->text);
		*n = w.n;
		return r;
	}

	r = walk_visit(&w, text, NULL);
	while (r == RESOLVE_OK && w.depth > 0) {
		struct resolve_frame *f = &w.stack[w.depth - 1];
		if (f->next == f->alias->ntargets) {
			w.depth--;
			continue;
		}
		r = walk_visit(&w, f->alias->targets[f->next++], f->alias);
	}
	if (r != RESOLVE_OK)
		return r;
	if (w.n == 0)
		return w.loop ? RESOLVE_LOOP : RESOLVE_UNKNOWN;
	*n = w.n;
	return RESOLVE_OK;
}
