/*
 * smtp_command: parse one SMTP command line (CRLF already removed).
 *
 * RFC 5321 4.1.1 (commands), 4.1.2 (syntax); ESMTP parameters of MAIL and
 * RCPT: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET, ENVID,
 * NOTIFY, ORCPT (RFC 3461), AUTH (RFC 4954; parsed, value kept as given).
 *
 * The verb is case-insensitive. For MAIL/RCPT the syntax is strict about the
 * angle brackets ("MAIL FROM:<a@b>"), tolerant of spaces after the colon,
 * and parameters are "keyword[=value]" separated by single or multiple SPs.
 * A parameter may appear once. Unknown parameters are an error
 * (SMTP_CMD_ERR_PARAM_UNKNOWN, 555 5.5.4); xtext values (ENVID, ORCPT) are
 * checked and decoded (RFC 3461 4).
 */
#ifndef CARTEIRO_SMTPD_SMTP_COMMAND_H
#define CARTEIRO_SMTPD_SMTP_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/addr.h"
#include "util/buf.h"

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_HELP,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_COUNT
};

struct smtp_command {
	enum smtp_verb verb;
	struct slice name; /* the verb as sent */
	struct slice arg;  /* after the verb and one SP; may be empty */
};

enum smtp_cmd_error {
	SMTP_CMD_OK = 0,
	SMTP_CMD_ERR_SYNTAX = -1,         /* 501 5.5.4 / 5.5.2 */
	SMTP_CMD_ERR_ADDR = -2,           /* bad address: see addr_err */
	SMTP_CMD_ERR_PARAM_UNKNOWN = -3,  /* 555 5.5.4 */
	SMTP_CMD_ERR_PARAM_SYNTAX = -4,   /* 501 5.5.4 */
	SMTP_CMD_ERR_PARAM_DUP = -5,      /* 501 5.5.4 */
	SMTP_CMD_ERR_BODY = -6,           /* BODY= value not supported: 555 5.5.4 */
	SMTP_CMD_ERR_NOT_ENABLED = -7,    /* SMTPUTF8 address without SMTPUTF8: 553 5.6.7 */
};

/* The largest BDAT chunk size accepted by the parser (the message size limit applies too). */
#define SMTP_BDAT_SIZE_MAX UINT64_C(0xffffffffffff)

enum smtp_body { SMTP_BODY_UNSPEC = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };
enum smtp_ret { SMTP_RET_UNSPEC = 0, SMTP_RET_FULL, SMTP_RET_HDRS };
enum {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
	/* Ours, never on the wire: this recipient is the first member of a multi-recipient
	 * alias whose RCPT asked NOTIFY=SUCCESS; the alias's "expanded" report (RFC 3461
	 * 5.2.7) goes out when this member's delivery is over. The members themselves get
	 * the NOTIFY minus SUCCESS. */
	SMTP_NOTIFY_EXPANDED = 1 << 4,
};

#define SMTP_ENVID_MAX 100 /* RFC 3461 4.4: decoded at most 100 characters */
#define SMTP_ORCPT_MAX 500 /* RFC 3461 4.2: the whole parameter */
#define SMTP_AUTH_PARAM_MAX 500

struct smtp_mail_args {
	struct addr from;
	bool size_given;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	char envid[SMTP_ENVID_MAX + 1]; /* decoded; "" when absent */
	char auth[SMTP_AUTH_PARAM_MAX + 1]; /* as given (xtext); "" when absent */
};

struct smtp_rcpt_args {
	struct addr to;
	unsigned notify; /* SMTP_NOTIFY_* ; 0 when absent */
	/* ORCPT as "addr-type;decoded-address", e.g. "rfc822;a@b"; "" when absent. */
	char orcpt[SMTP_ORCPT_MAX + 1];
};

/* Split a line into verb and argument; never fails (unknown verb: SMTP_VERB_UNKNOWN). */
void smtp_command_parse(struct slice line, struct smtp_command *out);

/* The longest command line (CRLF included) allowed for this verb: 512, or
 * more for MAIL and RCPT whose extensions add to it (RFC 5321 4.5.3.1.4,
 * RFC 1870, RFC 3461 5, RFC 4954 5). */
size_t smtp_command_line_max(enum smtp_verb verb);

/*
 * Parse the argument of MAIL ("FROM:<path> params"). An address with UTF-8
 * needs the SMTPUTF8 parameter (else SMTP_CMD_ERR_NOT_ENABLED).
 * On SMTP_CMD_ERR_ADDR, *addr_err holds the addr_error.
 */
int smtp_parse_mail(struct slice arg, struct smtp_mail_args *out, int *addr_err);
/* Parse the argument of RCPT ("TO:<path> params"); utf8: the transaction is SMTPUTF8.
 * A well-formed UTF-8 address when utf8 is false gives SMTP_CMD_ERR_NOT_ENABLED. */
int smtp_parse_rcpt(struct slice arg, bool utf8, struct smtp_rcpt_args *out, int *addr_err);
/* Parse the argument of BDAT ("size [LAST]"). */
int smtp_parse_bdat(struct slice arg, uint64_t *size, bool *last);
/* Validate a HELO/EHLO argument: a Domain or an address literal (for
 * compatibility with Windows host names, '_' is accepted inside labels). */
bool smtp_helo_valid(struct slice arg);

/* RFC 3461 4 xtext: decode into dst (NUL-terminated); false on bad syntax or overflow. */
bool xtext_decode(struct slice in, char *dst, size_t dstlen, size_t *outlen);
/* Encode into buf (for spool records and DSNs); 0, -ENOSPC or -ENOMEM, and
 * on failure nothing is appended. */
int xtext_encode(struct slice in, struct buf *out);

#endif
