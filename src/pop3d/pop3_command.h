/*
 * pop3_command: read and parse POP3 command lines (RFC 1939 3, 5-7; CAPA
 * RFC 2449; STLS RFC 2595 4; AUTH RFC 5034).
 *
 * Two layers, both pure (no I/O), so that they are unit-tested and fuzzed:
 *
 *  - struct pop3_reader: a resumable line reader. Bytes are fed in any
 *    pieces; it keeps at most POP3_LINE_ABS_MAX octets of a line (CRLF
 *    included) and checks that before it copies: a longer line is dropped as
 *    it comes and reported once its end arrives (POP3_LINE_TOO_LONG). Only
 *    CRLF ends a line; a bare LF ends it too but is reported
 *    (POP3_LINE_BARE_LF), so that the session refuses it as a whole. A NUL
 *    in a line is reported (POP3_LINE_NUL). pop3_reader_reset() forgets
 *    everything (and wipes the buffer: an AUTH line holds credentials).
 *
 *  - pop3_command_parse(): one line (CRLF removed) into a verb and its
 *    arguments, checked against the verb's syntax: keywords are
 *    case-insensitive, arguments separated by single SPs (RFC 1939 3), at
 *    most POP3_ARG_MAX octets each, message numbers and line counts decimal
 *    without sign, below POP3_NUMBER_MAX. PASS takes the rest of the line as
 *    the password (which may contain SPs, as most servers allow); AUTH the
 *    mechanism and an optional initial response (RFC 5034 4).
 *
 * Limits: RFC 2449 4 allows 255 octets for a command line; we take up to
 * POP3_LINE_MAX (512, CRLF included) for every verb, and up to
 * POP3_LINE_ABS_MAX for AUTH and its responses (RFC 5034 4: as SASL needs).
 */
#ifndef CARTEIRO_POP3D_POP3_COMMAND_H
#define CARTEIRO_POP3D_POP3_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/sasl.h"
#include "util/buf.h"

#define POP3_LINE_MAX 512                    /* a command line, CRLF included */
#define POP3_LINE_ABS_MAX (SASL_LINE_MAX + 2) /* an AUTH line or response, CRLF included */
#define POP3_ARG_MAX 320                      /* an argument (a user name is an address) */
#define POP3_NUMBER_MAX UINT64_C(4294967295)  /* message numbers and TOP line counts */

enum pop3_line_status {
	POP3_LINE_MORE = 0,     /* everything fed was taken; no complete line yet */
	POP3_LINE_OK = 1,       /* a line is in reader.line[0..len) (CRLF removed) */
	POP3_LINE_TOO_LONG = 2, /* a line longer than the limit ended (it was dropped) */
	POP3_LINE_BARE_LF = 3,  /* a line ended with LF alone (dropped) */
	POP3_LINE_NUL = 4,      /* a line held a NUL octet (dropped) */
};

struct pop3_reader {
	size_t max;      /* octets of a line, CRLF included */
	size_t len;      /* octets of line[] in use */
	bool too_long;   /* inside a line that passed max: dropping it */
	bool nul;        /* the current line holds a NUL */
	bool complete;   /* line[] holds a line handed out by the last call */
	char line[POP3_LINE_ABS_MAX];
};

/* An empty reader whose lines may be max octets (CRLF included, <= POP3_LINE_ABS_MAX). */
void pop3_reader_init(struct pop3_reader *r, size_t max);
/* Forget the line in progress (wiped) and any error; max is kept. */
void pop3_reader_reset(struct pop3_reader *r);
/*
 * Take bytes from p[0..n) until a line ends (or all is taken); *used says how
 * many. A pop3_line_status; after POP3_LINE_OK the line stays valid until
 * the next call, which starts a new line.
 */
enum pop3_line_status pop3_reader_feed(struct pop3_reader *r, const char *p, size_t n,
				       size_t *used);

enum pop3_verb {
	POP3_VERB_UNKNOWN = 0,
	POP3_VERB_USER,
	POP3_VERB_PASS,
	POP3_VERB_AUTH,
	POP3_VERB_CAPA,
	POP3_VERB_STLS,
	POP3_VERB_STAT,
	POP3_VERB_LIST,
	POP3_VERB_RETR,
	POP3_VERB_DELE,
	POP3_VERB_RSET,
	POP3_VERB_NOOP,
	POP3_VERB_QUIT,
	POP3_VERB_TOP,
	POP3_VERB_UIDL,
	POP3_VERB_COUNT
};

enum pop3_cmd_error {
	POP3_CMD_OK = 0,
	POP3_CMD_ERR_UNKNOWN = -1,  /* no such command */
	POP3_CMD_ERR_ARGS = -2,     /* too few or too many arguments, or bad spacing */
	POP3_CMD_ERR_NUMBER = -3,   /* an argument that must be a number is not, or is too big */
	POP3_CMD_ERR_TOO_LONG = -4, /* an argument is longer than POP3_ARG_MAX, or the line
				     * than the verb allows */
};

struct pop3_command {
	enum pop3_verb verb;
	struct slice name;    /* the keyword as sent */
	unsigned nargs;       /* 0..2 */
	struct slice arg[2];  /* the arguments (PASS: the whole rest of the line) */
	uint64_t num[2];      /* numeric arguments (LIST, RETR, DELE, TOP, UIDL) */
};

/*
 * Parse line (CRLF removed) into *out. A pop3_cmd_error; out->verb and
 * out->name are set whenever the keyword is known, even when its arguments
 * are refused.
 */
int pop3_command_parse(struct slice line, struct pop3_command *out);
/* The longest line (CRLF included) this verb may come in. */
size_t pop3_command_line_max(enum pop3_verb verb);
/* The verb's keyword in upper case ("RETR"); "" for POP3_VERB_UNKNOWN. */
const char *pop3_verb_name(enum pop3_verb verb);

#endif
