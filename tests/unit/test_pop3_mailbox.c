/*
 * Unit tests for pop3d/pop3_mailbox.c: UIDLs and sizes from Maildir names,
 * the RETR/TOP conversion (CRLF, dot-stuffing, TOP's line count) over any
 * split of the input, and a real Maildir scanned, locked and updated.
 */
#include "pop3d/pop3_mailbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

TEST(uidl_from_name)
{
	static const struct {
		const char *name, *uidl;
	} cases[] = {
		{ "1700000000.M1Q1K0TEF3HR8D2R0.mx.example.test,S=10,W=12",
		  "1700000000.M1Q1K0TEF3HR8D2R0.mx.example.test" },
		{ "1700000000.M1Q1K0TEF3HR8D2R0.mx.example.test,S=10,W=12:2,S",
		  "1700000000.M1Q1K0TEF3HR8D2R0.mx.example.test" },
		{ "1000000000.P1.host:2,", "1000000000.P1.host" },
		{ "1000000000.P1.host", "1000000000.P1.host" },
		{ "a b\tc\x7f\xc3\xa9" "d:2,", "abcd" },
	};
	char out[POP3_UIDL_MAX + 1];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		pop3_uidl_from_name(cases[i].name, out);
		CHECK_STR(out, cases[i].uidl);
	}
	/* Too long: a prefix and a hash, 70 octets; stable, and different for another base. */
	char name[200], other[POP3_UIDL_MAX + 1], again[POP3_UIDL_MAX + 1];
	memset(name, 'a', 150);
	strcpy(name + 150, ":2,S");
	pop3_uidl_from_name(name, out);
	CHECK_INT(strlen(out), POP3_UIDL_MAX);
	CHECK(out[53] == '.');
	pop3_uidl_from_name(name, again);
	CHECK_STR(again, out);
	name[149] = 'b';
	pop3_uidl_from_name(name, other);
	CHECK(strcmp(other, out) != 0);
	/* Nothing printable: the hash alone. */
	pop3_uidl_from_name("\x01\x02", out);
	CHECK_INT(strlen(out), 16);
}

TEST(wire_size_from_name)
{
	static const struct {
		const char *name;
		bool found;
		uint64_t size;
	} cases[] = {
		{ "1.M1.h,S=10,W=12", true, 12 },
		{ "1.M1.h,W=12,S=10:2,S", true, 12 },
		{ "1.M1.h,S=10", false, 0 },
		{ "1.M1.h:2,W=5", false, 0 },
		{ "1.M1.h,W=", false, 0 },
		{ "1.M1.h,W=x,W=7", true, 7 },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint64_t size = 0;
		CHECK_MSG(pop3_name_wire_size(cases[i].name, &size) == cases[i].found, "%s",
			  cases[i].name);
		CHECK(size == cases[i].size);
	}
}

/* Convert in with pieces of `step` octets; the whole output (termination included). */
static size_t convert(const char *in, size_t len, size_t step, bool top, uint64_t lines,
		      char *out)
{
	struct pop3_xfer x;
	size_t o = 0, pos = 0;

	pop3_xfer_init(&x, top, lines);
	while (pos < len && !x.done) {
		size_t n = len - pos < step ? len - pos : step, used;
		o += pop3_xfer_convert(&x, in + pos, n, out + o, &used);
		CHECK(used == n || x.done);
		pos += used;
	}
	return o + pop3_xfer_finish(&x, out + o);
}

TEST(xfer_table)
{
	static const struct {
		const char *in;
		bool top;
		uint64_t lines;
		const char *want;
	} cases[] = {
		{ "a\nb\n", false, 0, "a\r\nb\r\n.\r\n" },
		{ "", false, 0, ".\r\n" },
		{ "no newline", false, 0, "no newline\r\n.\r\n" },
		{ ".x\n..\n.\nx.\n", false, 0, "..x\r\n...\r\n..\r\nx.\r\n.\r\n" },
		{ "crlf\r\nkept\r\n", false, 0, "crlf\r\nkept\r\n.\r\n" },
		{ "bare\rcr\n", false, 0, "bare\rcr\r\n.\r\n" },
		{ "ends with cr\r", false, 0, "ends with cr\r\n.\r\n" },
		{ "H: 1\nH: 2\n\nb1\nb2\nb3\n", true, 0, "H: 1\r\nH: 2\r\n\r\n.\r\n" },
		{ "H: 1\nH: 2\n\nb1\nb2\nb3\n", true, 2, "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\n.\r\n" },
		{ "H: 1\n\n.b1\nb2", true, 9, "H: 1\r\n\r\n..b1\r\nb2\r\n.\r\n" },
		{ "H: 1\r\n\r\nb1\r\n", true, 0, "H: 1\r\n\r\n.\r\n" },
		{ "headers only\n", true, 0, "headers only\r\n.\r\n" },
	};
	char out[256];

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		size_t len = strlen(cases[i].in);
		for (size_t step = 1; step <= (len ? len : 1); step++) {
			size_t n = convert(cases[i].in, len, step, cases[i].top, cases[i].lines, out);
			out[n] = '\0';
			CHECK_MSG(strcmp(out, cases[i].want) == 0, "case %zu step %zu: '%s'", i, step,
				  out);
		}
		/* RETR's size is what goes out without stuffing and the final ".CRLF". */
		if (!cases[i].top) {
			bool cr = false;
			uint64_t octets = pop3_wire_octets(cases[i].in, len, &cr);
			size_t n = convert(cases[i].in, len, len ? len : 1, false, 0, out);
			size_t dots = 0;
			for (size_t k = 0; k + 3 < n; k++)
				dots += out[k] == '.' && (k == 0 || out[k - 1] == '\n');
			bool unterminated = len && cases[i].in[len - 1] != '\n';
			uint64_t term = unterminated ? (cr ? 1 : 2) : 0;
			CHECK_MSG(octets + term == n - 3 - dots, "case %zu: octets %llu, sent %zu", i,
				  (unsigned long long)octets, n);
		}
	}
}

static char tmpl[] = "/tmp/carteiro-pop3-XXXXXX";

static void put(const char *dir, const char *name, const char *content)
{
	char path[512];
	snprintf(path, sizeof path, "%s/mail/example.test/demo/%s/%s", tmpl, dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, content, strlen(content)) == (ssize_t)strlen(content));
	close(fd);
}

static bool exists(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/mail/example.test/demo/%s/%s", tmpl, dir, name);
	return access(path, F_OK) == 0;
}

TEST(maildrop_scan_lock_update)
{
	char root[300];
	struct pop3_mailbox mb, other;

	CHECK(mkdtemp(tmpl) != NULL);
	snprintf(root, sizeof root, "%s/mail", tmpl);
	CHECK(mkdir(root, 0700) == 0);
	/* A missing Maildir is made, and empty. */
	CHECK_INT(pop3_mailbox_open(&mb, root, "demo@example.test"), 0);
	CHECK_INT(mb.n, 0);
	/* Locked: a second open is refused at once, and works once the first is closed. */
	CHECK_INT(pop3_mailbox_open(&other, root, "demo@example.test"), -EWOULDBLOCK);
	pop3_mailbox_close(&mb);

	put("new", "1700000002.M1Q2R0.h,S=4,W=6", "b\nc\n");
	put("new", "1700000001.M1Q1R0.h,S=2,W=3", "a\n"); /* W wrong on purpose: trusted */
	put("cur", "999999999.P1.h:2,S", "old\n\nbody"); /* no W: counted */
	put("new", ".hidden", "x");
	CHECK_INT(pop3_mailbox_open(&mb, root, "demo@example.test"), 0);
	CHECK_INT(mb.n, 3);
	CHECK_INT(mb.moved, 2);
	CHECK(exists("cur", "1700000001.M1Q1R0.h,S=2,W=3:2,"));
	CHECK(!exists("new", "1700000001.M1Q1R0.h,S=2,W=3"));
	/* Arrival order: 999999999 sorts before 1700000001 (numbers, not text). */
	CHECK_STR(mb.msgs[0].uidl, "999999999.P1.h");
	CHECK_INT(mb.msgs[0].size, 13); /* "old\r\n\r\nbody\r\n" */
	CHECK_STR(mb.msgs[1].uidl, "1700000001.M1Q1R0.h");
	CHECK_INT(mb.msgs[1].size, 3);
	CHECK_INT(mb.msgs[2].size, 6);
	CHECK_INT(mb.total, 22);
	int fd = pop3_mailbox_open_msg(&mb, 2);
	char buf[16] = "";
	CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 4 && memcmp(buf, "b\nc\n", 4) == 0);
	close(fd);
	CHECK_INT(pop3_mailbox_open_msg(&mb, 3), -EINVAL);

	/* Mail delivered during the session is not in it. */
	put("new", "1700000003.M1Q3R0.h,S=2,W=3", "d\n");
	mb.msgs[0].deleted = true;
	mb.msgs[1].retrieved = true;
	unsigned deleted;
	CHECK_INT(pop3_mailbox_update(&mb, &deleted), 0);
	CHECK_INT(deleted, 1);
	CHECK(!exists("cur", "999999999.P1.h:2,S"));
	CHECK(exists("cur", "1700000001.M1Q1R0.h,S=2,W=3:2,S"));
	CHECK(exists("cur", "1700000002.M1Q2R0.h,S=4,W=6:2,"));
	pop3_mailbox_close(&mb);

	CHECK_INT(pop3_mailbox_open(&mb, root, "demo@example.test"), 0);
	CHECK_INT(mb.n, 3);
	CHECK_STR(mb.msgs[0].uidl, "1700000001.M1Q1R0.h");
	CHECK_STR(mb.msgs[2].uidl, "1700000003.M1Q3R0.h");
	pop3_mailbox_close(&mb);
	/* Unsafe names are refused before any path is built. */
	CHECK_INT(pop3_mailbox_open(&mb, root, "../x@example.test"), -EINVAL);

	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
	CHECK(system(cmd) == 0);
}

UNIT_MAIN()
