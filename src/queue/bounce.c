/*
 * bounce: build delivery status notifications. See bounce.h.
 *
 * RFCs: RFC 3464 2 (the message/delivery-status fields: 2.2 per message,
 * 2.3 per recipient; 2.2.1 Original-Envelope-Id in xtext), RFC 6522 (the
 * multipart/report container), RFC 3461 4.2 and 4.4 (ORCPT, ENVID), RFC 6533
 * 3 and 6 (message/global-delivery-status, message/global-headers,
 * message/global for SMTPUTF8 mail), RFC 3834 5 (Auto-Submitted), RFC 5322
 * 2.1.1 and 2.2.3 (998/78 line lengths, folding), 3.3 (Date), RFC 2046 5.1.1
 * (boundaries).
 *
 * Output, all lines CRLF:
 *   top-level header (From MAILER-DAEMON, To the sender, Subject, Date,
 *   Message-ID, Auto-Submitted, MIME-Version, Content-Type with the boundary)
 *   --boundary  text/plain: the explanation for a human
 *   --boundary  message/delivery-status: the machine-readable report
 *   --boundary  message/rfc822 (the whole message) or text/rfc822-headers
 *   --boundary--
 *
 * Security: text that came from elsewhere (remote replies, our reasons, which
 * may quote DNS data, remote host names, addresses, ENVID, ORCPT) never
 * reaches the output as it is: control characters become spaces, runs of
 * white space one space, bytes outside ASCII '?' (or are kept, in the UTF-8
 * forms, when the whole value is valid UTF-8 and is an address), and the
 * result is folded so that no line passes 998 octets; free text is even
 * hard-wrapped at 78. So no reply can end a header field, start a MIME
 * part, or make an overlong line. The returned message is copied as it is,
 * but the boundary is checked against everything else in the notification
 * and changed until it occurs nowhere else.
 *
 * Sizing: the notification is the returned part (at most max_returned bytes,
 * or at most BOUNCE_HEADERS_MAX of headers) plus a few KiB per recipient; a
 * buf maximum of max_returned + 1 MiB is plenty for any realistic number of
 * recipients. When out's maximum is too small, -ENOSPC and out is left as it
 * was.
 */
#include "queue/bounce.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtpd/smtp_command.h"
#include "util/str.h"
#include "util/fileio.h"

/* The most of the original's header section that is returned (text/rfc822-headers). */
#define BOUNCE_HEADERS_MAX (256u * 1024)
/* Bytes read from the queue file per pread. */
#define BOUNCE_READ_CHUNK (64u * 1024)
/* RFC 5322 2.1.1: lines SHOULD stay within 78 characters and MUST within 998. */
#define LINE_SOFT 78
#define LINE_HARD 990 /* leaves room for a closing '>' or ';' after a folded word */
/* Every use of the boundary: the Content-Type parameter, three delimiters, the close. */
#define BOUNDARY_USES 5
#define BOUNDARY_TRIES 10000

/* fold_text flags */
enum {
	FOLD_UTF8 = 1 << 0, /* keep valid UTF-8 (RFC 6533 forms), else non-ASCII becomes '?' */
	FOLD_WRAP = 1 << 1, /* free text: hard-wrap long words at LINE_SOFT, not LINE_HARD */
};

/* Writer of folded lines; the first error sticks in err and later calls do nothing. */
struct fold {
	struct buf *out;
	size_t col;         /* bytes on the current line */
	bool sep;           /* a space goes before the next word */
	const char *indent; /* starts a continuation line: " " in header fields */
	int err;
};

struct bounce_ctx {
	const struct bounce_params *p;
	const struct envelope *env;
	struct buf *out;
	bool global;          /* SMTPUTF8: the RFC 6533 forms */
	bool full;            /* the whole message is returned */
	bool success;         /* a success report (delivered, relayed, expanded) */
	char boundary[128];
	size_t boundary_len;
	size_t bpos[BOUNDARY_USES]; /* where each use of the boundary is in out */
	size_t nb;
	int err;
};

/* --- small formatting helpers ---------------------------------------------- */

/* RFC 5322 3.3 date-time in UTC, locale-independent: "Tue, 01 Dec 2026 10:00:00 +0000". */
static void format_date(int64_t t, char out[64])
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm)) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	snprintf(out, 64, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
		 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/* RFC 3463 status-code: class "." subject "." detail, class 2, 4 or 5, 1-3 digits each. */
static bool status_valid(const char *s)
{
	if (!s || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	s += 2;
	for (int part = 0; part < 2; part++) {
		int n = 0;
		while (ascii_isdigit(*s) && n < 4) {
			s++;
			n++;
		}
		if (n < 1 || n > 3)
			return false;
		if (part == 0 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

static bool is_printable_ascii(const char *s)
{
	for (; *s; s++)
		if (!ascii_isgraph((unsigned char)*s) && *s != ' ')
			return false;
	return true;
}

/* --- folding ----------------------------------------------------------------- */

static void fold_init(struct fold *f, struct buf *out, const char *indent)
{
	f->out = out;
	f->col = 0;
	f->sep = false;
	f->indent = indent;
	f->err = 0;
}

/* Trusted text (ours, no CR/LF), appended as it is. */
static void fold_raw(struct fold *f, const char *s)
{
	size_t n = strlen(s);
	if (f->err == 0)
		f->err = buf_append(f->out, s, n);
	f->col += n;
	f->sep = false;
}

static void fold_break(struct fold *f)
{
	if (f->err == 0)
		f->err = buf_appendf(f->out, "\r\n%s", f->indent);
	f->col = strlen(f->indent);
}

/* End the line. */
static void fold_end(struct fold *f)
{
	if (f->err == 0)
		f->err = buf_append(f->out, "\r\n", 2);
	f->col = 0;
	f->sep = false;
}

static bool is_space_like(unsigned char c)
{
	return c <= ' ' || c == 0x7f;
}

/* One word (no space-like bytes), mapped and hard-wrapped. */
static void fold_word(struct fold *f, const char *w, size_t n, bool keep_utf8, size_t hard)
{
	size_t indent_len = strlen(f->indent);

	if (f->sep) {
		if (f->col + 1 + n > LINE_SOFT && f->col > indent_len)
			fold_break(f);
		else {
			if (f->err == 0)
				f->err = buf_putc(f->out, ' ');
			f->col++;
		}
	}
	while (n > 0 && f->err == 0) {
		if (f->col >= hard)
			fold_break(f);
		size_t take = hard - f->col;
		if (take > n)
			take = n;
		/* Never cut a UTF-8 sequence in two. */
		if (keep_utf8 && take < n) {
			size_t t = take;
			while (t > 0 && ((unsigned char)w[t] & 0xc0) == 0x80)
				t--;
			if (t > 0)
				take = t;
		}
		f->err = buf_reserve(f->out, take);
		for (size_t i = 0; i < take && f->err == 0; i++) {
			unsigned char c = (unsigned char)w[i];
			f->out->data[f->out->len++] = (c >= 0x80 && !keep_utf8) ? '?' : (char)c;
		}
		if (f->err == 0)
			f->out->data[f->out->len] = '\0';
		f->col += take;
		w += take;
		n -= take;
		if (n > 0)
			fold_break(f);
	}
	f->sep = true;
}

/* Untrusted text: split into words at any control or space byte, folded. */
static void fold_text(struct fold *f, const char *s, unsigned flags)
{
	size_t len = strlen(s);
	bool keep_utf8 = (flags & FOLD_UTF8) && utf8_valid(s, len);
	size_t hard = (flags & FOLD_WRAP) ? LINE_SOFT : LINE_HARD;
	size_t i = 0;

	while (i < len) {
		while (i < len && is_space_like((unsigned char)s[i]))
			i++;
		size_t start = i;
		while (i < len && !is_space_like((unsigned char)s[i]))
			i++;
		if (i > start)
			fold_word(f, s + start, i - start, keep_utf8, hard);
	}
}

/* A header field "Name: value" of untrusted text, folded, CRLF-terminated. */
static void fold_field(struct fold *f, const char *name, const char *prefix, const char *value,
		       unsigned flags)
{
	fold_raw(f, name);
	fold_raw(f, ": ");
	if (prefix)
		fold_raw(f, prefix);
	fold_text(f, value, flags);
	fold_end(f);
}

/* --- boundary ---------------------------------------------------------------- */

static void put_boundary(struct bounce_ctx *c, const char *before, const char *after)
{
	if (c->err == 0)
		c->err = buf_append_str(c->out, before);
	if (c->err == 0 && c->nb < BOUNDARY_USES) {
		c->bpos[c->nb++] = c->out->len;
		c->err = buf_append(c->out, c->boundary, c->boundary_len);
	}
	if (c->err == 0)
		c->err = buf_append_str(c->out, after);
}

/* A delimiter and the part's header section; false after an error (in c->err). */
static bool part_begin(struct bounce_ctx *c, struct fold *f, const char *indent,
		       const char *description, const char *type, bool eight_bit)
{
	put_boundary(c, "\r\n--", "\r\n");
	if (c->err == 0)
		c->err = buf_appendf(c->out, "Content-Description: %s\r\nContent-Type: %s\r\n%s\r\n",
				     description, type,
				     eight_bit ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	fold_init(f, c->out, indent);
	return c->err == 0;
}

static void make_boundary(struct bounce_ctx *c, unsigned attempt)
{
	/* "=_" cannot occur in quoted-printable text; the id and time make it unique. */
	int n = snprintf(c->boundary, sizeof c->boundary, "=_carteiro_%s_%lld_%04u",
			 c->p->bounce_id, (long long)c->p->now, attempt % BOUNDARY_TRIES);
	c->boundary_len = n > 0 && (size_t)n < sizeof c->boundary ? (size_t)n : 0;
}

static size_t count_occurrences(const char *hay, size_t len, const char *needle, size_t nlen)
{
	size_t count = 0;
	const char *end = hay + len, *p = hay;

	while ((size_t)(end - p) >= nlen && (p = memmem(p, (size_t)(end - p), needle, nlen))) {
		count++;
		p += nlen;
	}
	return count;
}

/*
 * The boundary must occur only where we put it (RFC 2046 5.1.1). The returned
 * message could contain anything, so check the finished notification and,
 * on a clash, switch to the next candidate (same length) everywhere.
 */
static int fix_boundary(struct bounce_ctx *c, size_t base)
{
	const char *data = c->out->data + base;
	size_t len = c->out->len - base;

	for (unsigned attempt = 1; attempt < BOUNDARY_TRIES; attempt++) {
		if (count_occurrences(data, len, c->boundary, c->boundary_len) == c->nb)
			return 0;
		size_t old_len = c->boundary_len;
		make_boundary(c, attempt);
		if (c->boundary_len != old_len)
			return -EINVAL;
		for (size_t i = 0; i < c->nb; i++)
			memcpy(c->out->data + c->bpos[i], c->boundary, c->boundary_len);
	}
	return -EEXIST;
}

/* --- the parts ----------------------------------------------------------------- */

static size_t count_action(const struct bounce_rcpt *rcpts, size_t n, enum bounce_action a)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += rcpts[i].action == a;
	return k;
}

static void put_top_header(struct bounce_ctx *c, struct fold *f, const char *subject,
			   bool eight_bit)
{
	const struct bounce_params *p = c->p;
	char date[64];
	unsigned addr_flags = c->global ? FOLD_UTF8 : 0;

	format_date(p->now, date);
	fold_raw(f, "From: Mail Delivery System <MAILER-DAEMON@");
	fold_text(f, p->hostname, 0);
	fold_raw(f, ">");
	fold_end(f);
	fold_raw(f, "To: <");
	fold_text(f, c->env->sender, addr_flags);
	fold_raw(f, ">");
	fold_end(f);
	fold_raw(f, "Subject: ");
	fold_raw(f, subject);
	fold_end(f);
	fold_field(f, "Date", NULL, date, 0);
	fold_raw(f, "Message-ID: <");
	fold_text(f, p->bounce_id, 0);
	snprintf(date, sizeof date, ".%lld@", (long long)p->now);
	fold_raw(f, date);
	fold_text(f, p->hostname, 0);
	fold_raw(f, ">");
	fold_end(f);
	fold_raw(f, "Auto-Submitted: auto-replied");
	fold_end(f);
	fold_raw(f, "MIME-Version: 1.0");
	fold_end(f);
	c->err = f->err;
	put_boundary(c, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
			" boundary=\"", "\"\r\n");
	if (eight_bit && c->err == 0)
		c->err = buf_append_str(c->out, "Content-Transfer-Encoding: 8bit\r\n");
	if (c->err == 0)
		c->err = buf_append_str(c->out, "\r\nThis is a MIME-encapsulated message.\r\n");
}

/* The address a recipient's report is about: an expanded alias is reported as itself. */
static const char *final_recipient(const struct bounce_rcpt *br)
{
	return br->action == BOUNCE_EXPANDED ? br->rcpt->orig : br->rcpt->address;
}

/* An action's Action: value (RFC 3464 2.3.3) and the human part's words when no reply says more. */
static const struct action_words {
	enum bounce_action action;
	const char *name, *text;
} action_words[] = {
	{ BOUNCE_FAILED, "failed", "delivery failed" },
	{ BOUNCE_DELAYED, "delayed", "delivery temporarily failed" },
	{ BOUNCE_DELIVERED, "delivered", "delivered to the mailbox" },
	{ BOUNCE_RELAYED, "relayed", "relayed to a server that does not report deliveries" },
	{ BOUNCE_EXPANDED, "expanded", "alias expanded" },
};

static const struct action_words *words_of(enum bounce_action a)
{
	for (size_t i = 1; i < sizeof action_words / sizeof action_words[0]; i++)
		if (action_words[i].action == a)
			return &action_words[i];
	return &action_words[0];
}

/* One recipient's line of the human part: "<addr> (expanded from <orig>): why". */
static void put_human_rcpt(struct bounce_ctx *c, struct fold *f, const struct bounce_rcpt *br)
{
	unsigned addr_flags = c->global ? FOLD_UTF8 : 0;

	fold_raw(f, "<");
	fold_text(f, final_recipient(br), addr_flags);
	fold_raw(f, ">");
	if (br->rcpt->orig && br->action != BOUNCE_EXPANDED) {
		fold_raw(f, " (expanded from <");
		fold_text(f, br->rcpt->orig, addr_flags);
		fold_raw(f, ">)");
	}
	fold_raw(f, ":");
	f->sep = true;
	if (br->diagnostic && br->diagnostic[0]) {
		if (br->remote_mta && br->remote_mta[0]) {
			fold_text(f, "host", 0);
			fold_text(f, br->remote_mta, 0);
			fold_text(f, "said:", 0);
		}
		fold_text(f, br->diagnostic, FOLD_WRAP);
	} else if (br->reason && br->reason[0]) {
		fold_text(f, br->reason, FOLD_WRAP);
	} else {
		fold_text(f, words_of(br->action)->text, 0);
	}
	fold_end(f);
	fold_end(f);
}

static void put_human_part(struct bounce_ctx *c, const struct bounce_rcpt *rcpts, size_t n,
			   size_t nfailed, size_t ndelayed)
{
	const struct bounce_params *p = c->p;
	struct fold f;
	char until[64];

	if (!part_begin(c, &f, "    ", "Notification",
			c->global ? "text/plain; charset=utf-8" : "text/plain; charset=us-ascii",
			c->global))
		return;
	fold_raw(&f, "This is the mail system at host");
	f.sep = true;
	fold_text(&f, p->hostname, 0);
	fold_raw(&f, ".");
	fold_end(&f);
	fold_end(&f);
	format_date(p->retry_until, until);
	if (c->success) {
		fold_raw(&f, "Your message was delivered to the recipients below, as you asked\r\n"
			     "(a delivery status notification). For a recipient marked\r\n"
			     "relayed, it went on to a mail system that does not report\r\n"
			     "deliveries: you will hear of it again only if it fails there.\r\n"
			     "For an expanded alias, you will hear of its members only if\r\n"
			     "delivery to one of them fails.\r\n\r\n"
			     "                   The mail system\r\n\r\n");
		f.col = 0;
		for (size_t i = 0; i < n; i++)
			put_human_rcpt(c, &f, &rcpts[i]);
		c->err = f.err;
		return;
	}
	if (nfailed > 0) {
		fold_raw(&f, "I'm sorry to have to inform you that your message could not\r\n"
			     "be delivered to one or more recipients. ");
		fold_raw(&f, c->full ? "It's attached below.\r\n"
				     : "Its header section is\r\nattached below.\r\n");
		fold_raw(&f, "\r\nFor further assistance, please send mail to postmaster.\r\n\r\n"
			     "If you do so, please include this problem report. You can\r\n"
			     "delete your own text from the attached returned message.\r\n\r\n"
			     "                   The mail system\r\n\r\n");
		f.col = 0;
		for (size_t i = 0; i < n; i++)
			if (rcpts[i].action == BOUNCE_FAILED)
				put_human_rcpt(c, &f, &rcpts[i]);
		if (ndelayed > 0) {
			fold_raw(&f, "Delivery to the following recipients is still being retried");
			if (p->retry_until) {
				fold_raw(&f, "\r\nuntil ");
				fold_raw(&f, until);
			}
			fold_raw(&f, ";\r\nyou do not need to resend your message to them.\r\n\r\n");
			f.col = 0;
		}
	} else {
		fold_raw(&f, "####################################################################\r\n"
			     "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
			     "####################################################################\r\n"
			     "\r\n"
			     "Your message could not be delivered yet to the recipients below.\r\n");
		if (p->retry_until) {
			fold_raw(&f, "The mail system will keep trying until ");
			fold_raw(&f, until);
			fold_raw(&f, ".\r\n");
		} else {
			fold_raw(&f, "The mail system will keep trying.\r\n");
		}
		fold_raw(&f, "You will be notified if it finally gives up.\r\n\r\n");
		f.col = 0;
	}
	for (size_t i = 0; i < n && ndelayed > 0; i++)
		if (rcpts[i].action == BOUNCE_DELAYED)
			put_human_rcpt(c, &f, &rcpts[i]);
	c->err = f.err;
}

/*
 * An address field, RFC 3464 2.3.1/2.3.2: "Name: type;address" (with a space
 * after ';' when space). The envelope holds ORCPT decoded: printable ASCII
 * goes as it is, UTF-8 in the global form as it is with type utf-8 (RFC 6533
 * 3), anything else xtext-encoded (RFC 3461 4).
 */
static void put_address_field(struct bounce_ctx *c, struct fold *f, const char *name,
			      const char *type, size_t type_len, const char *addr, bool space)
{
	char t[64];

	if (type_len == 0 || type_len >= sizeof t) {
		type = "rfc822";
		type_len = 6;
	}
	memcpy(t, type, type_len);
	t[type_len] = '\0';
	fold_raw(f, name);
	fold_raw(f, ": ");
	if (is_printable_ascii(addr)) {
		fold_text(f, t, 0);
		fold_raw(f, ";");
		f->sep = space;
		fold_text(f, addr, 0);
	} else if (c->global && utf8_valid(addr, strlen(addr))) {
		fold_raw(f, "utf-8;");
		f->sep = space;
		fold_text(f, addr, FOLD_UTF8);
	} else {
		struct buf x;
		buf_init(&x, 4 * QUEUE_FIELD_MAX);
		fold_text(f, t, 0);
		fold_raw(f, ";");
		f->sep = space;
		if (f->err == 0)
			f->err = xtext_encode(slice_from_cstr(addr), &x);
		if (f->err == 0)
			fold_text(f, buf_cstr(&x), 0);
		buf_free(&x);
	}
	fold_end(f);
}

static void put_status_part(struct bounce_ctx *c, const struct bounce_rcpt *rcpts, size_t n)
{
	const struct bounce_params *p = c->p;
	const struct envelope *env = c->env;
	struct fold f;
	char date[64];

	if (!part_begin(c, &f, " ", "Delivery report",
			c->global ? "message/global-delivery-status" : "message/delivery-status",
			c->global))
		return;

	/* Per-message fields (RFC 3464 2.2). */
	fold_field(&f, "Reporting-MTA", "dns; ", p->hostname, 0);
	fold_field(&f, "X-Carteiro-Queue-ID", NULL, env->id, 0);
	if (env->envid) {
		/* 2.2.1: the ENVID as given, i.e. xtext; the envelope keeps it decoded. */
		struct buf x;
		buf_init(&x, 4 * QUEUE_FIELD_MAX);
		if (f.err == 0)
			f.err = xtext_encode(slice_from_cstr(env->envid), &x);
		if (f.err == 0)
			fold_field(&f, "Original-Envelope-Id", NULL, buf_cstr(&x), 0);
		buf_free(&x);
	}
	if (env->sender && env->sender[0]) {
		fold_raw(&f, "X-Carteiro-Sender: rfc822;");
		f.sep = true;
		fold_text(&f, env->sender, c->global ? FOLD_UTF8 : 0);
		fold_end(&f);
	}
	format_date(env->arrival_sec, date);
	fold_field(&f, "Arrival-Date", NULL, date, 0);

	/* Per-recipient fields (RFC 3464 2.3), each block after a blank line. */
	for (size_t i = 0; i < n; i++) {
		const struct bounce_rcpt *br = &rcpts[i];
		const struct envelope_rcpt *r = br->rcpt;
		bool delayed = br->action == BOUNCE_DELAYED;
		const char *dflt = delayed ? "4.0.0" : c->success ? "2.0.0" : "5.0.0";

		fold_end(&f);
		if (r->orcpt) {
			const char *semi = strchr(r->orcpt, ';');
			if (semi)
				put_address_field(c, &f, "Original-Recipient", r->orcpt,
						  (size_t)(semi - r->orcpt), semi + 1, false);
			else
				put_address_field(c, &f, "Original-Recipient", "rfc822", 6,
						  r->orcpt, false);
		}
		put_address_field(c, &f, "Final-Recipient", "rfc822", 6, final_recipient(br), true);
		fold_field(&f, "Action", NULL, words_of(br->action)->name, 0);
		fold_field(&f, "Status", NULL, status_valid(br->status) ? br->status : dflt, 0);
		if (br->remote_mta && br->remote_mta[0])
			fold_field(&f, "Remote-MTA", "dns; ", br->remote_mta, 0);
		if (br->diagnostic && br->diagnostic[0])
			fold_field(&f, "Diagnostic-Code", "smtp; ", br->diagnostic, FOLD_WRAP);
		else if (br->reason && br->reason[0])
			fold_field(&f, "Diagnostic-Code", "X-Carteiro; ", br->reason, FOLD_WRAP);
		if (br->last_attempt) {
			format_date(br->last_attempt, date);
			fold_field(&f, "Last-Attempt-Date", NULL, date, 0);
		}
		if (delayed && p->retry_until) {
			format_date(p->retry_until, date);
			fold_field(&f, "Will-Retry-Until", NULL, date, 0);
		}
	}
	c->err = f.err;
}

/* pread exactly n bytes at off into out (reserved by the caller). */
static int read_into(struct buf *out, int fd, const struct envelope *env, uint64_t pos, size_t n)
{
	while (n > 0) {
		ssize_t r = pread_joined(fd, env->pre_offset, env->pre_size, env->msg_offset,
					 out->data + out->len, n, pos);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO; /* the file is shorter than its envelope says */
		out->len += (size_t)r;
		out->data[out->len] = '\0';
		pos += (uint64_t)r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * Copy the original message, or only its header section (everything up to the
 * first empty line, at most BOUNCE_HEADERS_MAX, cut after a whole line).
 */
static int put_original(struct bounce_ctx *c, int fd, bool headers_only)
{
	const struct envelope *env = c->env;
	struct buf *out = c->out;
	size_t start = out->len;
	uint64_t limit = envelope_msg_total(env);
	uint64_t done = 0;
	int r;

	if (headers_only && limit > BOUNCE_HEADERS_MAX)
		limit = BOUNCE_HEADERS_MAX;
	while (done < limit) {
		size_t n = limit - done > BOUNCE_READ_CHUNK ? BOUNCE_READ_CHUNK : (size_t)(limit - done);
		r = buf_reserve(out, n);
		if (r == 0)
			r = read_into(out, fd, env, done, n);
		if (r < 0)
			return r;
		done += n;
		if (!headers_only)
			continue;
		/* An empty line ends the header section; so does an empty first line. */
		if (out->len - start >= 2 && memcmp(out->data + start, "\r\n", 2) == 0) {
			out->len = start;
			break;
		}
		size_t from = out->len - start - n;
		from = from >= 3 ? from - 3 : 0;
		const char *end = memmem(out->data + start + from, out->len - start - from,
					 "\r\n\r\n", 4);
		if (end) {
			out->len = (size_t)(end - out->data) + 2;
			break;
		}
	}
	if (headers_only && done == limit && limit < envelope_msg_total(env)) {
		/* Cut at the last whole line. */
		while (out->len > start && !(out->len - start >= 2 &&
					     memcmp(out->data + out->len - 2, "\r\n", 2) == 0))
			out->len--;
	}
	out->data[out->len] = '\0';
	return 0;
}

static int put_returned_part(struct bounce_ctx *c, int fd)
{
	const struct envelope *env = c->env;
	const char *type;
	struct fold f;

	if (c->full)
		type = c->global ? "message/global" : "message/rfc822";
	else
		type = c->global ? "message/global-headers" : "text/rfc822-headers";
	const char *title = c->success ? "Message Headers"
			    : c->full  ? "Undelivered Message"
				       : "Undelivered Message Headers";
	if (part_begin(c, &f, " ", title, type, c->global || (c->full && env->body_8bit)))
		c->err = put_original(c, fd, !c->full);
	put_boundary(c, "\r\n--", "--\r\n");
	return c->err;
}

int bounce_build(const struct bounce_params *p, const struct envelope *env,
		 const struct bounce_rcpt *rcpts, size_t nrcpts, int msg_fd, struct buf *out)
{
	struct bounce_ctx c;
	struct fold f;
	size_t base = out->len;

	/* A bounce goes to the sender; there is none for the null reverse-path. */
	if (!p->hostname || !p->bounce_id || !env->sender || !env->sender[0] || nrcpts == 0)
		return -EINVAL;
	bool success = bounce_action_success(rcpts[0].action);
	for (size_t i = 0; i < nrcpts; i++) {
		enum bounce_action a = rcpts[i].action;
		if (!rcpts[i].rcpt || !rcpts[i].rcpt->address ||
		    (a != BOUNCE_FAILED && a != BOUNCE_DELAYED && !bounce_action_success(a)) ||
		    bounce_action_success(a) != success ||
		    (a == BOUNCE_EXPANDED && !rcpts[i].rcpt->orig))
			return -EINVAL; /* a success report is a notification of its own */
	}

	memset(&c, 0, sizeof c);
	c.p = p;
	c.env = env;
	c.out = out;
	c.global = env->smtputf8;
	c.success = success;
	c.full = !success && env->ret == 'F' && envelope_msg_total(env) <= p->max_returned;
	make_boundary(&c, 0);
	if (c.boundary_len == 0)
		return -EINVAL;

	size_t nfailed = count_action(rcpts, nrcpts, BOUNCE_FAILED);
	size_t ndelayed = nrcpts - nfailed;

	fold_init(&f, out, " ");
	put_top_header(&c, &f,
		       success       ? "Successful Mail Delivery Report"
		       : nfailed > 0 ? "Undelivered Mail Returned to Sender"
				     : "Delayed Mail (still being retried)",
		       c.global || (c.full && env->body_8bit));
	if (c.err == 0)
		put_human_part(&c, rcpts, nrcpts, nfailed, ndelayed);
	if (c.err == 0)
		put_status_part(&c, rcpts, nrcpts);
	if (c.err == 0)
		put_returned_part(&c, msg_fd);
	if (c.err == 0)
		c.err = fix_boundary(&c, base);
	if (c.err < 0) {
		out->len = base;
		if (out->data)
			out->data[base] = '\0';
		return c.err;
	}
	return 0;
}
