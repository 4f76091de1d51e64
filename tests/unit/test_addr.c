/*
 * test_addr: table-driven tests of mail/addr.c (RFC 5321 paths and
 * mailboxes, RFC 6531 UTF-8, the limits of RFC 5321 4.5.3.1).
 *
 * Each row gives the input, the parser (path or mailbox), the flags, the
 * expected result and, on success, the canonical text, local part, domain and
 * the struct addr flags. Length limits are tested exactly at and one past
 * each limit with generated inputs.
 */
#include <stdio.h>
#include <string.h>

#include "mail/addr.h"
#include "unit.h"

#define N ADDR_ALLOW_NULL
#define U ADDR_UTF8
#define P ADDR_ALLOW_POSTMASTER

#define USER_ZH "\xe7\x94\xa8\xe6\x88\xb7"
#define DOMAIN_ZH "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a"

/* Expected struct addr flags. */
#define F_QUOTED 1u
#define F_LITERAL 2u
#define F_UTF8 4u
#define F_NULL 8u

enum mode { PATH, MAILBOX };

struct addr_case {
	enum mode mode;
	const char *in;
	size_t len; /* 0: strlen(in); set for inputs holding a NUL */
	unsigned flags;
	int want;
	const char *text, *local, *domain;
	unsigned aflags;
	size_t consumed; /* paths only; 0: the whole input */
};

static const struct addr_case cases[] = {
	/* Plain paths. */
	{ PATH, "<user@example.com>", 0, 0, ADDR_OK, "user@example.com", "user", "example.com", 0,
	  0 },
	{ PATH, "<a@b>", 0, 0, ADDR_OK, "a@b", "a", "b", 0, 0 },
	{ PATH, "<u.s.e.r@x>", 0, 0, ADDR_OK, "u.s.e.r@x", "u.s.e.r", "x", 0, 0 },
	{ PATH, "<a+tag@x>", 0, 0, ADDR_OK, "a+tag@x", "a+tag", "x", 0, 0 },
	{ PATH, "<!#$%&'*+-/=?^_`{|}~@x>", 0, 0, ADDR_OK, "!#$%&'*+-/=?^_`{|}~@x",
	  "!#$%&'*+-/=?^_`{|}~", "x", 0, 0 },
	/* Domain lower-cased, local part keeps its case. */
	{ PATH, "<User@Example.COM>", 0, 0, ADDR_OK, "User@example.com", "User", "example.com", 0,
	  0 },
	{ PATH, "<user@ex-ample.com>", 0, 0, ADDR_OK, "user@ex-ample.com", "user", "ex-ample.com",
	  0, 0 },
	{ PATH, "<user@xn--bcher-kva.example>", 0, 0, ADDR_OK, "user@xn--bcher-kva.example", "user",
	  "xn--bcher-kva.example", 0, 0 },
	{ PATH, "<user@1.2.3.4>", 0, 0, ADDR_OK, "user@1.2.3.4", "user", "1.2.3.4", 0, 0 },
	/* What follows '>' is the caller's. */
	{ PATH, "<user@example.com> SIZE=100", 0, 0, ADDR_OK, "user@example.com", "user",
	  "example.com", 0, 18 },
	{ PATH, "<a@b>>", 0, 0, ADDR_OK, "a@b", "a", "b", 0, 5 },

	/* Null path. */
	{ PATH, "<>", 0, N, ADDR_OK, "", "", "", F_NULL, 0 },
	{ PATH, "<> BODY=8BITMIME", 0, N | U, ADDR_OK, "", "", "", F_NULL, 2 },
	{ PATH, "<>", 0, 0, ADDR_ERR_NULL, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<>", 0, P | U, ADDR_ERR_NULL, NULL, NULL, NULL, 0, 0 },

	/* Postmaster without domain (RFC 5321 4.1.1.3). */
	{ PATH, "<postmaster>", 0, P, ADDR_OK, "postmaster", "postmaster", "", 0, 0 },
	{ PATH, "<PostMaster>", 0, P, ADDR_OK, "postmaster", "postmaster", "", 0, 0 },
	{ PATH, "<POSTMASTER> NOTIFY=NEVER", 0, P | U, ADDR_OK, "postmaster", "postmaster", "", 0,
	  12 },
	{ PATH, "<postmaster>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<postmaster>", 0, N | U, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<postmaster >", 0, P, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<postmasters>", 0, P, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\"postmaster\">", 0, P, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<@a:postmaster>", 0, P, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<Postmaster@Example.com>", 0, P, ADDR_OK, "Postmaster@example.com", "Postmaster",
	  "example.com", 0, 0 },

	/* Source routes: parsed, ignored (RFC 5321 3.6.1, 4.1.2). */
	{ PATH, "<@local:user@remote>", 0, 0, ADDR_OK, "user@remote", "user", "remote", 0, 0 },
	{ PATH, "<@a.example,@b.example:user@c.example>", 0, 0, ADDR_OK, "user@c.example", "user",
	  "c.example", 0, 0 },
	{ PATH, "<@a.example,b.example:x@c>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<@a.example:@b.example:x@c>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<@a.example,:x@c>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<@:x@c>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<@example.com>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<@[1.2.3.4]:x@c>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<@a.:x@c>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<@b\xc3\xbc" "cher.example:a@b>", 0, 0, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	/* A UTF-8 route is ignored, so it does not make the address UTF-8. */
	{ PATH, "<@b\xc3\xbc" "cher.example:a@b>", 0, U, ADDR_OK, "a@b", "a", "b", 0, 0 },

	/* Address tricks: no meaning for '%', '!', or a second '@'. */
	{ PATH, "<user%remote@local>", 0, 0, ADDR_OK, "user%remote@local", "user%remote", "local",
	  0, 0 },
	{ PATH, "<remote!user@local>", 0, 0, ADDR_OK, "remote!user@local", "remote!user", "local",
	  0, 0 },
	{ PATH, "<\"user@remote\"@local>", 0, 0, ADDR_OK, "\"user@remote\"@local", "user@remote",
	  "local", F_QUOTED, 0 },
	{ PATH, "<user@remote@local>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[127.0.0.1]>", 0, 0, ADDR_OK, "user@[127.0.0.1]", "user", "[127.0.0.1]",
	  F_LITERAL, 0 },
	{ PATH, "<user@[127.0.0.1]@local>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@local>@remote>", 0, 0, ADDR_OK, "user@local", "user", "local", 0, 12 },

	/* Address literals (RFC 5321 4.1.3). */
	{ PATH, "<user@[IPv6:2001:db8::1]>", 0, 0, ADDR_OK, "user@[IPv6:2001:db8::1]", "user",
	  "[IPv6:2001:db8::1]", F_LITERAL, 0 },
	{ PATH, "<user@[ipv6:2001:DB8::1]>", 0, 0, ADDR_OK, "user@[ipv6:2001:DB8::1]", "user",
	  "[ipv6:2001:DB8::1]", F_LITERAL, 0 },
	{ PATH, "<user@[IPv6:::ffff:192.0.2.1]>", 0, 0, ADDR_OK, "user@[IPv6:::ffff:192.0.2.1]",
	  "user", "[IPv6:::ffff:192.0.2.1]", F_LITERAL, 0 },
	{ PATH, "<user@[IPv6:zzz]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[IPv6:1.2.3.4]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[IPv6:]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[01.002.3.4]>", 0, 0, ADDR_OK, "user@[01.002.3.4]", "user", "[01.002.3.4]",
	  F_LITERAL, 0 },
	{ PATH, "<user@[255.255.255.255]>", 0, 0, ADDR_OK, "user@[255.255.255.255]", "user",
	  "[255.255.255.255]", F_LITERAL, 0 },
	{ PATH, "<user@[256.0.0.1]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[1.2.3]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[1.2.3.4.5]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[1234.1.1.1]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[1..2.3]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[1.2.3.4.]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[ 1.2.3.4]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[127.0.0.1>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[127.0.0.1]x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[x-tag:abc]>", 0, 0, ADDR_OK, "user@[x-tag:abc]", "user", "[x-tag:abc]",
	  F_LITERAL, 0 },
	{ PATH, "<user@[x-:abc]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[tag:]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[:abc]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[tag:a[b]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[tag:a\\b]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@[tag:a b]>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<a@[1.2.3.\xc3\xa4]>", 0, 0, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<a@[1.2.3.\xc3\xa4]>", 0, U, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },

	/* Bad domains. */
	{ PATH, "<user@example.com.>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@.example.com>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@example..com>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@-example.com>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@example-.com>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@ex_ample.com>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@exa mple.com>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },

	/* Bad local parts and brackets. */
	{ PATH, "<@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<.user@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user.@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<us..er@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<us(er@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<us,er@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@example.com", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "user@example.com", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "user@example.com>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "< user@example.com>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user@example.com >", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<user @example.com>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<<a@b>>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<", 0, N, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, ">", 0, N, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "", 0, N, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "< >", 0, N, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<a\0b@x>", 7, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<ab@x\0>", 7, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<a\r\nb@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },

	/* Quoted local parts: unquoted when they are a Dot-string. */
	{ PATH, "<\"demo\"@x>", 0, 0, ADDR_OK, "demo@x", "demo", "x", 0, 0 },
	{ PATH, "<\"d.e.m.o\"@x>", 0, 0, ADDR_OK, "d.e.m.o@x", "d.e.m.o", "x", 0, 0 },
	{ PATH, "<\"a\\b\"@x>", 0, 0, ADDR_OK, "ab@x", "ab", "x", 0, 0 },
	{ PATH, "<\"a b\"@x>", 0, 0, ADDR_OK, "\"a b\"@x", "a b", "x", F_QUOTED, 0 },
	{ PATH, "<\"a\\\"b\"@x>", 0, 0, ADDR_OK, "\"a\\\"b\"@x", "a\"b", "x", F_QUOTED, 0 },
	{ PATH, "<\"a\\\\b\"@x>", 0, 0, ADDR_OK, "\"a\\\\b\"@x", "a\\b", "x", F_QUOTED, 0 },
	{ PATH, "<\"a\\ b\"@x>", 0, 0, ADDR_OK, "\"a b\"@x", "a b", "x", F_QUOTED, 0 },
	{ PATH, "<\"\"@x>", 0, 0, ADDR_OK, "\"\"@x", "", "x", F_QUOTED, 0 },
	{ PATH, "<\"a.\"@x>", 0, 0, ADDR_OK, "\"a.\"@x", "a.", "x", F_QUOTED, 0 },
	{ PATH, "<\"a..b\"@x>", 0, 0, ADDR_OK, "\"a..b\"@x", "a..b", "x", F_QUOTED, 0 },
	{ PATH, "<\"<a@b>\"@x>", 0, 0, ADDR_OK, "\"<a@b>\"@x", "<a@b>", "x", F_QUOTED, 0 },
	{ PATH, "<\"a\tb\"@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\"a\\\tb\"@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\"a\\\x7f\"@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\"a\x7f\"@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\"a\0\"@x>", 8, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\"ab@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\"a\"b@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<a\"b\"@x>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\"a\\", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\"a\\\xc3\xa4\"@x>", 0, U, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\"a\\\xc3\xa4\"@x>", 0, 0, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },

	/* SMTPUTF8 (RFC 6531 3.3). */
	{ PATH, "<j\xc3\xb6rg@example.com>", 0, 0, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<j\xc3\xb6rg@example.com>", 0, U, ADDR_OK, "j\xc3\xb6rg@example.com",
	  "j\xc3\xb6rg", "example.com", F_UTF8, 0 },
	/* 用户@例子.广告 */
	{ PATH, "<" USER_ZH "@" DOMAIN_ZH ">", 0, U, ADDR_OK, USER_ZH "@" DOMAIN_ZH, USER_ZH,
	  DOMAIN_ZH, F_UTF8, 0 },
	{ PATH, "<user@b\xc3\xbc" "cher.example>", 0, 0, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	/* Only ASCII letters are lower-cased (U+00DC stays). */
	{ PATH, "<user@B\xc3\x9c" "cher.EXAMPLE>", 0, U, ADDR_OK, "user@b\xc3\x9c" "cher.example",
	  "user", "b\xc3\x9c" "cher.example", F_UTF8, 0 },
	{ PATH, "<user@\xf0\x9f\x93\xa7.example>", 0, U, ADDR_OK, "user@\xf0\x9f\x93\xa7.example",
	  "user", "\xf0\x9f\x93\xa7.example", F_UTF8, 0 },
	{ PATH, "<\"j\xc3\xb6rg\"@x>", 0, U, ADDR_OK, "j\xc3\xb6rg@x", "j\xc3\xb6rg", "x", F_UTF8,
	  0 },
	{ PATH, "<\"j\xc3\xb6 rg\"@x>", 0, U, ADDR_OK, "\"j\xc3\xb6 rg\"@x", "j\xc3\xb6 rg", "x",
	  F_QUOTED | F_UTF8, 0 },
	{ PATH, "<\"j\xc3\xb6rg\"@x>", 0, 0, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	/* Malformed UTF-8: truncated, overlong, surrogate, too large, stray bytes. */
	{ PATH, "<j\xc3@x>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<j\xc3", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\xc0\xaf@x>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\xc1\xbf@x>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\xe0\x80\xaf@x>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\xf0\x80\x80\xaf@x>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\xed\xa0\x80@x>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\xf4\x90\x80\x80@x>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\xf5\x80\x80\x80@x>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\xff@x>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\x80@x>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<a@x\xc3\x28>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ PATH, "<\"\xc0\xaf\"@x>", 0, U, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	/* The largest code point and the first after the surrogates are fine. */
	{ PATH, "<\xf4\x8f\xbf\xbf@x>", 0, U, ADDR_OK, "\xf4\x8f\xbf\xbf@x", "\xf4\x8f\xbf\xbf",
	  "x", F_UTF8, 0 },
	{ PATH, "<\xee\x80\x80@x>", 0, U, ADDR_OK, "\xee\x80\x80@x", "\xee\x80\x80", "x", F_UTF8,
	  0 },

	/* Bare mailboxes. */
	{ MAILBOX, "user@example.com", 0, 0, ADDR_OK, "user@example.com", "user", "example.com", 0,
	  0 },
	{ MAILBOX, "USER@LOCAL", 0, 0, ADDR_OK, "USER@local", "USER", "local", 0, 0 },
	{ MAILBOX, "user%remote@local", 0, 0, ADDR_OK, "user%remote@local", "user%remote", "local",
	  0, 0 },
	{ MAILBOX, "remote!user@local", 0, 0, ADDR_OK, "remote!user@local", "remote!user", "local",
	  0, 0 },
	{ MAILBOX, "\"user@remote\"@local", 0, 0, ADDR_OK, "\"user@remote\"@local", "user@remote",
	  "local", F_QUOTED, 0 },
	{ MAILBOX, "a@[127.0.0.1]", 0, 0, ADDR_OK, "a@[127.0.0.1]", "a", "[127.0.0.1]", F_LITERAL,
	  0 },
	{ MAILBOX, "\"x\"@Y", 0, 0, ADDR_OK, "x@y", "x", "y", 0, 0 },
	{ MAILBOX, "j\xc3\xb6rg@x", 0, U, ADDR_OK, "j\xc3\xb6rg@x", "j\xc3\xb6rg", "x", F_UTF8, 0 },
	{ MAILBOX, "j\xc3\xb6rg@x", 0, 0, ADDR_ERR_UTF8, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, "user@remote@local", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, "<user@example.com>", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, "user@example.com ", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, " user@example.com", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, "user@example.com.", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, "user", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, "@example.com", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, "user@", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, "", 0, N | P, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, "postmaster", 0, P, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, "@a:user@b", 0, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
	{ MAILBOX, "a@b\0", 4, 0, ADDR_ERR_SYNTAX, NULL, NULL, NULL, 0, 0 },
};

static unsigned addr_flags(const struct addr *a)
{
	return (a->quoted ? F_QUOTED : 0) | (a->literal ? F_LITERAL : 0) | (a->utf8 ? F_UTF8 : 0) |
	       (a->null ? F_NULL : 0);
}

/* A failed parse leaves nothing behind. */
static bool addr_is_clear(const struct addr *a)
{
	return a->text[0] == '\0' && a->local[0] == '\0' && a->domain[0] == '\0' && !a->null &&
	       !a->quoted && !a->literal && !a->utf8;
}

TEST(addr_table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct addr_case *c = &cases[i];
		struct slice in = { c->in, c->len ? c->len : strlen(c->in) };
		struct addr a;
		size_t consumed = 12345;
		int r;

		if (c->mode == PATH)
			r = addr_parse_path(in, c->flags, &a, &consumed);
		else
			r = addr_parse_mailbox(in, c->flags, &a);
		CHECK_MSG(r == c->want, "row %zu \"%s\": got %d, want %d", i, c->in, r, c->want);
		if (r != c->want)
			continue;
		if (r < 0) {
			CHECK_MSG(addr_is_clear(&a), "row %zu \"%s\": not cleared", i, c->in);
			if (c->mode == PATH)
				CHECK_MSG(consumed == 0, "row %zu: consumed %zu", i, consumed);
			continue;
		}
		CHECK_STR(a.text, c->text);
		CHECK_STR(a.local, c->local);
		CHECK_STR(a.domain, c->domain);
		CHECK_MSG(addr_flags(&a) == c->aflags, "row %zu \"%s\": flags %u, want %u", i,
			  c->in, addr_flags(&a), c->aflags);
		if (c->mode == PATH)
			CHECK_MSG(consumed == (c->consumed ? c->consumed : in.len),
				  "row %zu \"%s\": consumed %zu", i, c->in, consumed);
	}
}

/* Every canonical text is a mailbox that parses to itself. */
TEST(addr_canonical_reparses)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct addr_case *c = &cases[i];
		struct addr a, b;

		if (c->want != ADDR_OK || c->domain[0] == '\0')
			continue;
		int r = addr_parse_mailbox(slice_from_cstr(c->text), c->flags & U, &a);
		CHECK_MSG(r == ADDR_OK, "row %zu \"%s\": %d", i, c->text, r);
		if (r != ADDR_OK)
			continue;
		CHECK_STR(a.text, c->text);
		CHECK_STR(a.local, c->local);
		CHECK_STR(a.domain, c->domain);
		r = addr_parse_mailbox(slice_from_cstr(a.text), c->flags & U, &b);
		CHECK(r == ADDR_OK && strcmp(b.text, a.text) == 0);
	}
}

/* Length limits (RFC 5321 4.5.3.1), built at run time. */
struct limit_case {
	enum mode mode;
	size_t local;   /* octets of local part as written */
	bool quoted;    /* '"' + 'q'... + '"' instead of 'l'... */
	size_t domain;  /* octets of domain (labels of <= 50 octets) */
	size_t label;   /* if set: a single label of this length + ".example" */
	int want;
};

static const struct limit_case limits[] = {
	/* Local part: 64 octets as written, quotes included. */
	{ MAILBOX, 64, false, 10, 0, ADDR_OK },
	{ MAILBOX, 65, false, 10, 0, ADDR_ERR_TOO_LONG },
	{ MAILBOX, 64, true, 10, 0, ADDR_OK },
	{ MAILBOX, 65, true, 10, 0, ADDR_ERR_TOO_LONG },
	{ PATH, 64, false, 10, 0, ADDR_OK },
	{ PATH, 65, false, 10, 0, ADDR_ERR_TOO_LONG },
	{ PATH, 64, true, 10, 0, ADDR_OK },
	{ PATH, 65, true, 10, 0, ADDR_ERR_TOO_LONG },
	{ PATH, 1000, false, 10, 0, ADDR_ERR_TOO_LONG },
	/* Path: 256 octets with the brackets: 1 + 64 + 1 + 189 + 1. */
	{ PATH, 64, false, 189, 0, ADDR_OK },
	{ PATH, 64, false, 190, 0, ADDR_ERR_TOO_LONG },
	{ PATH, 64, true, 189, 0, ADDR_OK },
	{ PATH, 64, true, 190, 0, ADDR_ERR_TOO_LONG },
	{ PATH, 1, false, 252, 0, ADDR_OK },
	{ PATH, 1, false, 253, 0, ADDR_ERR_TOO_LONG },
	/* The domain limit (255) is above what fits in a path. */
	{ PATH, 1, false, 255, 0, ADDR_ERR_TOO_LONG },
	{ PATH, 1, false, 256, 0, ADDR_ERR_TOO_LONG },
	{ PATH, 1, false, 5000, 0, ADDR_ERR_TOO_LONG },
	/* Bare mailbox: what fits in a path, 254 octets. */
	{ MAILBOX, 64, false, 189, 0, ADDR_OK },
	{ MAILBOX, 64, false, 190, 0, ADDR_ERR_TOO_LONG },
	{ MAILBOX, 1, false, 252, 0, ADDR_OK },
	{ MAILBOX, 1, false, 253, 0, ADDR_ERR_TOO_LONG },
	/* Labels: 63 octets (RFC 1035 2.3.4). */
	{ PATH, 5, false, 0, 63, ADDR_OK },
	{ PATH, 5, false, 0, 64, ADDR_ERR_TOO_LONG },
	{ MAILBOX, 5, false, 0, 63, ADDR_OK },
	{ MAILBOX, 5, false, 0, 64, ADDR_ERR_TOO_LONG },
};

/* n octets of domain: labels of 50 letters joined by dots, never ending in a dot. */
static void make_domain(char *dst, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (i % 51 == 50) ? '.' : (char)('a' + i % 26);
	if (n && dst[n - 1] == '.')
		dst[n - 1] = 'z';
	dst[n] = '\0';
}

static void make_local(char *dst, size_t n, bool quoted)
{
	memset(dst, quoted ? 'q' : 'l', n);
	if (quoted) {
		dst[0] = '"';
		dst[n - 1] = '"';
	}
	dst[n] = '\0';
}

TEST(addr_limits)
{
	static char local[1100], domain[5100], in[6300];

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		const struct limit_case *c = &limits[i];
		struct addr a;
		size_t consumed;
		int r;

		make_local(local, c->local, c->quoted);
		if (c->label) {
			memset(domain, 'd', c->label);
			strcpy(domain + c->label, ".example");
		} else {
			make_domain(domain, c->domain);
		}
		if (c->mode == PATH) {
			snprintf(in, sizeof(in), "<%s@%s>", local, domain);
			r = addr_parse_path(slice_from_cstr(in), 0, &a, &consumed);
		} else {
			snprintf(in, sizeof(in), "%s@%s", local, domain);
			r = addr_parse_mailbox(slice_from_cstr(in), 0, &a);
		}
		CHECK_MSG(r == c->want, "limit row %zu (len %zu): got %d, want %d", i, strlen(in),
			  r, c->want);
		if (r == ADDR_OK) {
			/* "qqq" is a Dot-string, so a quoted row comes back unquoted. */
			CHECK(strlen(a.text) == strlen(in) - (c->mode == PATH ? 2 : 0) -
							  (c->quoted ? 2 : 0));
			CHECK(strlen(a.local) == c->local - (c->quoted ? 2 : 0));
		}
	}
}

/* A quoted local part full of escapes: 64 octets written, 31 characters. */
TEST(addr_limit_escaped_quotes)
{
	char in[128] = "<\"";
	struct addr a;
	size_t consumed;

	for (int i = 0; i < 31; i++)
		strcat(in, "\\\"");
	strcat(in, "\"@x>");
	CHECK_INT(addr_parse_path(slice_from_cstr(in), 0, &a, &consumed), ADDR_OK);
	CHECK_INT(strlen(a.local), 31);
	CHECK(a.quoted);
	/* The canonical form is what was written, minus the brackets. */
	CHECK(strncmp(a.text, in + 1, strlen(in) - 2) == 0 && strlen(a.text) == strlen(in) - 2);

	/* One escape more: 66 octets. */
	strcpy(in, "<\"");
	for (int i = 0; i < 32; i++)
		strcat(in, "\\\"");
	strcat(in, "\"@x>");
	CHECK_INT(addr_parse_path(slice_from_cstr(in), 0, &a, &consumed), ADDR_ERR_TOO_LONG);

	/* A 4-byte character that leaves no room for the closing quote is refused. */
	strcpy(in, "<\"");
	for (int i = 0; i < 59; i++)
		strcat(in, "q");
	strcat(in, "\xf0\x9f\x93\xa7\"@x>");
	CHECK_INT(addr_parse_path(slice_from_cstr(in), U, &a, &consumed), ADDR_ERR_TOO_LONG);
	in[2 + 58] = '\0';
	strcat(in, "\xf0\x9f\x93\xa7\"@x>");
	CHECK_INT(addr_parse_path(slice_from_cstr(in), U, &a, &consumed), ADDR_OK);
	CHECK_INT(strlen(a.local), 62);
}

/* A long source route is held to the path limit. */
TEST(addr_limit_source_route)
{
	char in[2048] = "<";
	struct addr a;
	size_t consumed;

	for (int i = 0; i < 50; i++)
		strcat(in, i ? ",@route.example" : "@route.example");
	strcat(in, ":a@b>");
	CHECK_INT(addr_parse_path(slice_from_cstr(in), 0, &a, &consumed), ADDR_ERR_TOO_LONG);

	strcpy(in, "<");
	for (int i = 0; i < 16; i++)
		strcat(in, i ? ",@route.example" : "@route.example");
	strcat(in, ":a@b>");
	CHECK(strlen(in) <= ADDR_PATH_MAX);
	CHECK_INT(addr_parse_path(slice_from_cstr(in), 0, &a, &consumed), ADDR_OK);
	CHECK_STR(a.text, "a@b");
}

/* A lone label: 63 octets fit, 64 do not; the same for a UTF-8 label counted in octets. */
TEST(addr_limit_utf8_label)
{
	char in[256] = "a@";
	struct addr a;

	for (int i = 0; i < 31; i++)
		strcat(in, "\xc3\xa4");
	strcat(in, "x");
	CHECK_INT(addr_parse_mailbox(slice_from_cstr(in), U, &a), ADDR_OK);
	strcat(in, "y");
	CHECK_INT(addr_parse_mailbox(slice_from_cstr(in), U, &a), ADDR_ERR_TOO_LONG);
}

struct domain_case {
	const char *s;
	bool utf8;
	bool want;
};

static const struct domain_case domains[] = {
	{ "example.com", false, true },
	{ "EXAMPLE.COM", false, true },
	{ "a", false, true },
	{ "1", false, true },
	{ "a-b.c", false, true },
	{ "a--b.c", false, true },
	{ "xn--bcher-kva.example", false, true },
	{ "", false, false },
	{ ".", false, false },
	{ "-a", false, false },
	{ "a-", false, false },
	{ "a.-b", false, false },
	{ "a..b", false, false },
	{ "a.b.", false, false },
	{ ".a", false, false },
	{ "a_b", false, false },
	{ "_dmarc.example", false, false },
	{ "a b", false, false },
	{ "a\tb", false, false },
	{ "[1.2.3.4]", false, false },
	{ "a@b", false, false },
	{ "b\xc3\xbc" "cher.example", false, false },
	{ "b\xc3\xbc" "cher.example", true, true },
	{ "b\xc3" "cher.example", true, false },
	{ "\xc3\xbc", true, true },
	{ "\xc3\xbc-", true, false },
};

TEST(addr_domain_valid_table)
{
	static char buf[300];

	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
		const struct domain_case *c = &domains[i];
		CHECK_MSG(addr_domain_valid(slice_from_cstr(c->s), c->utf8) == c->want,
			  "domain row %zu \"%s\"", i, c->s);
	}
	/* A NUL inside is not part of any label. */
	CHECK(!addr_domain_valid((struct slice){ "ab\0c", 4 }, false));
	CHECK(!addr_domain_valid((struct slice){ NULL, 0 }, true));

	make_domain(buf, 255);
	CHECK(addr_domain_valid(slice_from_cstr(buf), false));
	make_domain(buf, 256);
	CHECK(!addr_domain_valid(slice_from_cstr(buf), false));
	memset(buf, 'a', 63);
	buf[63] = '\0';
	CHECK(addr_domain_valid(slice_from_cstr(buf), false));
	memset(buf, 'a', 64);
	buf[64] = '\0';
	CHECK(!addr_domain_valid(slice_from_cstr(buf), false));
}

struct literal_case {
	const char *s;
	bool want;
};

static const struct literal_case literals[] = {
	{ "[127.0.0.1]", true },
	{ "[0.0.0.0]", true },
	{ "[255.255.255.255]", true },
	{ "[001.02.3.004]", true },
	{ "[256.1.1.1]", false },
	{ "[1.2.3]", false },
	{ "[1.2.3.4.5]", false },
	{ "[1.2.3.4 ]", false },
	{ "[1.2.3.-4]", false },
	{ "[0001.2.3.4]", false },
	{ "[IPv6:::1]", true },
	{ "[IPv6:2001:db8::1]", true },
	{ "[IPV6:2001:DB8::1]", true },
	{ "[IPv6:2001:db8:0:0:0:0:2:1]", true },
	{ "[IPv6:::ffff:192.0.2.1]", true },
	{ "[IPv6:2001:db8::1::2]", false },
	{ "[IPv6:12345::1]", false },
	{ "[IPv6:fe80::1%eth0]", false },
	{ "[IPv6:1.2.3.4]", false },
	{ "[IPv6:]", false },
	{ "[IPv6:::1 ]", false },
	{ "[IPv6::::::::::::::::::::::::::::::::::::::::::::::::::::::::1]", false },
	{ "[x-foo:bar]", true },
	{ "[tag:!\"#Z^~]", true },
	{ "[tag:a]b]", false },
	{ "[tag:a[b]", false },
	{ "[tag:a\\b]", false },
	{ "[-:a]", false },
	{ "[ta_g:a]", false },
	{ "[1.2.3.4", false },
	{ "1.2.3.4]", false },
	{ "[]", false },
	{ "[", false },
	{ "", false },
	{ "example.com", false },
};

TEST(addr_literal_valid_table)
{
	static char buf[300];

	for (size_t i = 0; i < sizeof(literals) / sizeof(literals[0]); i++)
		CHECK_MSG(addr_literal_valid(slice_from_cstr(literals[i].s)) == literals[i].want,
			  "literal row %zu \"%s\"", i, literals[i].s);
	CHECK(!addr_literal_valid((struct slice){ "[IPv6:::1\0]", 11 }));
	CHECK(!addr_literal_valid((struct slice){ "[1.2.3.4\0]", 10 }));
	CHECK(!addr_literal_valid((struct slice){ "[t:a\0]", 6 }));

	/* General literal at 255 octets, then 256. */
	memset(buf, 'x', 255);
	memcpy(buf, "[t:", 3);
	buf[254] = ']';
	buf[255] = '\0';
	CHECK(addr_literal_valid(slice_from_cstr(buf)));
	memset(buf, 'x', 256);
	memcpy(buf, "[t:", 3);
	buf[255] = ']';
	buf[256] = '\0';
	CHECK(!addr_literal_valid(slice_from_cstr(buf)));
}

TEST(addr_strerror_texts)
{
	CHECK_STR(addr_strerror(ADDR_ERR_SYNTAX), "syntax error in address");
	CHECK_STR(addr_strerror(ADDR_ERR_TOO_LONG), "address too long");
	CHECK(strstr(addr_strerror(ADDR_ERR_UTF8), "UTF-8") != NULL);
	CHECK(strstr(addr_strerror(ADDR_ERR_NULL), "null") != NULL);
	CHECK(addr_strerror(ADDR_OK)[0] != '\0');
	CHECK(addr_strerror(-99)[0] != '\0');
	CHECK(addr_strerror(42)[0] != '\0');
}

UNIT_MAIN()
