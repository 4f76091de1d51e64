/*
 * smtp_reply: the reply table. Codes per RFC 5321 4.2.2 and 4.3.2,
 * enhanced codes per RFC 3463 (and RFC 6531 for SMTPUTF8, RFC 3030 for BDAT,
 * RFC 3207 for STARTTLS, RFC 4954 6 and RFC 5248 for AUTH). The policy
 * refusals (smtp_policy.c) add their detail: the list and its reason, the
 * seconds until a greylisted retry can pass.
 */
#include "smtpd/smtp_reply.h"

#include <stddef.h>

#include "util/log.h"

static const struct smtp_reply replies[R_COUNT] = {
	[R_HELP] = { 214, "2.0.0",
		     "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS AUTH" },
	[R_BYE] = { 221, "2.0.0", "Bye" },
	[R_OK] = { 250, "2.0.0", "OK" },
	[R_SENDER_OK] = { 250, "2.1.0", "Sender OK" },
	[R_RCPT_OK] = { 250, "2.1.5", "Recipient OK" },
	[R_QUEUED] = { 250, "2.0.0", "OK: queued as" },
	[R_RESET] = { 250, "2.0.0", "Reset OK" },
	[R_BDAT_OK] = { 250, "2.0.0", "Chunk received:" },
	[R_VRFY] = { 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery" },
	[R_DATA_GO] = { 354, NULL, "End data with <CR><LF>.<CR><LF>" },
	[R_SHUTDOWN] = { 421, "4.3.2", "Service shutting down, closing connection" },
	[R_TIMEOUT] = { 421, "4.4.2", "Timeout, closing connection" },
	[R_TOO_MANY_ERRORS] = { 421, "4.7.0", "Too many errors, closing connection" },
	[R_TOO_MANY_CONNECTIONS] = { 421, "4.7.0", "Too many connections, try again later" },
	[R_TOO_MANY_FROM_IP] = { 421, "4.7.0",
				 "Too many connections from your address, try again later" },
	[R_LOCAL_ERROR] = { 451, "4.3.0", "Local error in processing, try again later" },
	[R_TOO_MANY_RCPTS] = { 452, "4.5.3", "Too many recipients" },
	[R_SYNTAX] = { 500, "5.5.2", "Syntax error, command unrecognized" },
	[R_LINE_TOO_LONG] = { 500, "5.5.2", "Line too long" },
	[R_BARE_LF_COMMAND] = { 500, "5.5.2", "Bare LF received: command lines must end with CRLF" },
	[R_PARAM_SYNTAX] = { 501, "5.5.4", "Syntax error in parameters or arguments" },
	[R_HELO_SYNTAX] = { 501, "5.5.4", "Syntax: EHLO hostname (a domain name or address literal)" },
	[R_SENDER_SYNTAX] = { 501, "5.1.7", "Bad sender address syntax:" },
	[R_RCPT_SYNTAX] = { 501, "5.1.3", "Bad recipient address syntax:" },
	[R_NOT_IMPLEMENTED] = { 502, "5.5.1", "Command not implemented" },
	[R_NEED_HELO] = { 503, "5.5.1", "Bad sequence of commands: send HELO or EHLO first" },
	[R_NEED_MAIL] = { 503, "5.5.1", "Bad sequence of commands: need MAIL first" },
	[R_NEED_RCPT] = { 503, "5.5.1", "Bad sequence of commands: need RCPT first" },
	[R_NESTED_MAIL] = { 503, "5.5.1", "Bad sequence of commands: MAIL already given" },
	[R_BDAT_IN_PROGRESS] = { 503, "5.5.1",
				 "Bad sequence of commands: BDAT transaction in progress" },
	[R_DATA_AFTER_BDAT] = { 503, "5.5.1", "Bad sequence of commands: DATA after BDAT" },
	[R_PARAM_UNKNOWN] = { 555, "5.5.4", "Unsupported parameter" },
	[R_BODY_UNSUPPORTED] = { 555, "5.5.4", "Unsupported BODY type (7BIT and 8BITMIME only)" },
	[R_UNKNOWN_USER] = { 550, "5.1.1", "Recipient address rejected: user unknown" },
	[R_RELAY_DENIED] = { 554, "5.7.1", "Relay access denied" },
	[R_ALIAS_LOOP] = { 550, "5.4.6", "Recipient address rejected: alias loop" },
	[R_SIZE_EXCEEDED] = { 552, "5.3.4", "Message size exceeds fixed maximum message size" },
	[R_UTF8_REQUIRED] = { 553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter" },
	[R_TOO_MANY_HOPS] = { 554, "5.4.6", "Too many hops (Received headers): mail loop?" },
	[R_BARE_LF_DATA] = { 554, "5.6.0",
			     "Message refused: bare LF in the data; lines must end with CRLF "
			     "(RFC 5321 2.3.8)" },
	[R_BARE_CR_DATA] = { 554, "5.6.0",
			     "Message refused: bare CR in the data; lines must end with CRLF "
			     "(RFC 5321 2.3.8)" },
	[R_DATA_LINE_TOO_LONG] = { 554, "5.6.0",
				   "Message refused: a line is longer than 998 characters "
				   "(RFC 5321 4.5.3.1.6)" },
	[R_NO_VALID_RCPTS] = { 554, "5.5.1", "No valid recipients" },
	[R_STARTTLS_UNAVAILABLE] = { 502, "5.5.1", "STARTTLS not available on this port" },
	[R_AUTH_UNAVAILABLE] = { 502, "5.5.1", "AUTH not available on this port" },
	[R_STARTTLS_GO] = { 220, "2.0.0", "Ready to start TLS" },
	[R_STARTTLS_TEMP] = { 454, "4.7.0", "TLS not available due to temporary reason" },
	[R_TLS_ACTIVE] = { 503, "5.5.1", "Bad sequence of commands: TLS already active" },
	[R_TXN_IN_PROGRESS] = { 503, "5.5.1",
				"Bad sequence of commands: not during a mail transaction" },
	[R_AUTH_OK] = { 235, "2.7.0", "Authentication successful" },
	[R_AUTH_ALREADY] = { 503, "5.5.1", "Bad sequence of commands: already authenticated" },
	[R_AUTH_CANCELLED] = { 501, "5.0.0", "Authentication cancelled" },
	[R_AUTH_DECODE] = { 501, "5.5.2", "Cannot decode the AUTH response" },
	[R_AUTH_MECH_UNKNOWN] = { 504, "5.5.4", "Unrecognized authentication type" },
	[R_AUTH_FAILED] = { 535, "5.7.8", "Authentication credentials invalid" },
	[R_AUTH_NEED_TLS] = { 538, "5.7.11",
			      "Encryption required for requested authentication mechanism" },
	[R_AUTH_REQUIRED] = { 530, "5.7.0", "Authentication required" },
	[R_AUTH_BANNED] = { 421, "4.7.0",
			    "Too many failed authentication attempts, try again later" },
	[R_AUTH_TEMP] = { 454, "4.7.0", "Temporary authentication failure" },
	[R_SENDER_NOT_OWNED] = { 553, "5.7.1", "Sender address not owned by the authenticated user" },
	[R_POLICY_REJECT] = { 554, "5.7.1", "Service unavailable;" },
	[R_PREGREET] = { 554, "5.5.0", "Protocol error: you spoke before the greeting (RFC 5321 3.1)" },
	[R_SPF_FAIL] = { 550, "5.7.23", "SPF validation failed:" },
	[R_DMARC_REJECT] = { 550, "5.7.1", "Message refused by the DMARC policy of" },
	[R_GREYLISTED] = { 451, "4.7.1",
			   "Greylisted: new senders are accepted on a retry; try again in" },
	[R_RATE_CONNECTIONS] = { 421, "4.7.0",
				 "Too many connections from your address recently, try again later" },
	[R_RATE_MESSAGES] = { 451, "4.7.1", "Too many messages from your address, try again later" },
	[R_RATE_USER_MESSAGES] = { 451, "4.7.1",
				   "Too many messages from this account, try again later" },
	[R_RATE_USER_RCPTS] = { 451, "4.7.1",
				"Too many recipients from this account, try again later" },
};

const struct smtp_reply *smtp_reply_get(enum smtp_reply_id id)
{
	if ((unsigned)id >= R_COUNT || replies[id].code == 0)
		panic("smtp_reply_get: no reply %d", (int)id);
	return &replies[id];
}
