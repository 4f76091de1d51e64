/*
 * smtp_reply: every reply the SMTP server sends, in one table of
 * {reply code, enhanced status code, text} (RFC 5321 4.2, RFC 2034,
 * RFC 3463). A reply may add a detail after the table's text.
 */
#ifndef CARTEIRO_SMTPD_SMTP_REPLY_H
#define CARTEIRO_SMTPD_SMTP_REPLY_H

enum smtp_reply_id {
	R_HELP,
	R_BYE,
	R_OK,
	R_SENDER_OK,
	R_RCPT_OK,
	R_QUEUED,
	R_RESET,
	R_BDAT_OK,
	R_VRFY,
	R_DATA_GO,
	R_SHUTDOWN,
	R_TIMEOUT,
	R_TOO_MANY_ERRORS,
	R_TOO_MANY_CONNECTIONS,
	R_TOO_MANY_FROM_IP,
	R_LOCAL_ERROR,
	R_TOO_MANY_RCPTS,
	R_SYNTAX,
	R_LINE_TOO_LONG,
	R_BARE_LF_COMMAND,
	R_PARAM_SYNTAX,
	R_HELO_SYNTAX,
	R_SENDER_SYNTAX,
	R_RCPT_SYNTAX,
	R_NOT_IMPLEMENTED,
	R_NEED_HELO,
	R_NEED_MAIL,
	R_NEED_RCPT,
	R_NESTED_MAIL,
	R_BDAT_IN_PROGRESS,
	R_DATA_AFTER_BDAT,
	R_PARAM_UNKNOWN,
	R_BODY_UNSUPPORTED,
	R_UNKNOWN_USER,
	R_RELAY_DENIED,
	R_ALIAS_LOOP,
	R_SIZE_EXCEEDED,
	R_UTF8_REQUIRED,
	R_TOO_MANY_HOPS,
	R_BARE_LF_DATA,
	R_BARE_CR_DATA,
	R_DATA_LINE_TOO_LONG,
	R_NO_VALID_RCPTS,
	R_STARTTLS_UNAVAILABLE,
	R_AUTH_UNAVAILABLE,
	R_COUNT
};

struct smtp_reply {
	unsigned code;
	const char *enhanced; /* NULL for codes without one (220, 354) */
	const char *text;
};

const struct smtp_reply *smtp_reply_get(enum smtp_reply_id id);

#endif
