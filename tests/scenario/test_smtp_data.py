"""Message content scenarios: DATA (dot-stuffing, CRLF only, SMTP smuggling, line limits),
BDAT/CHUNKING (RFC 3030), command line limits, the message size limit (RFC 1870), the
hop limit (Received headers) and 8-bit bodies (RFC 6152). What is delivered is compared
byte for byte; what is refused is shown to be neither queued nor delivered, and the
session to go on afterwards."""
import re
import socket
import time
import unittest

from harness import DEMO, Server, ServerTest, SmtpAssertions, count_log, lf, message


class DataAssertions(SmtpAssertions):
    """harness.SmtpAssertions plus the checks of this file: a follow-up message, the exact
    Maildir content, the number of queued messages."""

    def followup(self, r, rcpt=DEMO):
        """A good message in the same session: the session is still in step."""
        msg = message(subject="followup", to=rcpt)
        self.begin(r, (rcpt,), sender="followup@example.org")
        self.send_data(r, msg + ".\r\n")
        return msg

    def assert_only(self, rcpt, msgs):
        """rcpt's Maildir ends up holding exactly these messages (CRLF text or bytes)."""
        if msgs:
            self.server.wait_mail(rcpt, len(msgs))
        self.server.wait_queue_empty()
        got = self.server.mailbox(rcpt)
        self.assertEqual(len(got), len(msgs), got)
        for m in msgs:
            self.assertTrue(any(g.endswith(lf(m)) for g in got), (m, got))
        return got

    def assert_cut_message_dropped(self):
        """After EOF in the content: logged as "eof in data", and nothing queued, left in
        spool/incoming or delivered."""
        self.server.wait_log(r"reason=\"eof in data\"")
        self.assertEqual(self.server.queue_files(), [])
        self.assertEqual(self.server.incoming_files(), [])
        self.assertEqual(self.server.mailbox(DEMO), [])

    def queued_count(self):
        """How many messages the server has queued (event=queued log lines)."""
        return count_log(self.server, r"event=queued ")


def body_of(stored):
    """The message as stored, without our Return-Path, Delivered-To and Received."""
    m = re.match(rb"Return-Path: <[^>]*>\nDelivered-To: [^\n]*\nReceived: [^\n]*\n"
                 rb"(?:\t[^\n]*\n)+", stored)
    assert m, stored[:300]
    return stored[m.end():]


def bdat(chunk, last=False):
    """A BDAT command with its chunk."""
    return b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk


def sized_message(size, subject="sized"):
    """A CRLF message of exactly size octets, lines well under the limit."""
    head = message(subject=subject, body="").encode()
    left = size - len(head)
    assert left >= 2
    body = b""
    while left > 80:
        body += b"x" * 76 + b"\r\n"
        left -= 78
    body += b"z" * (left - 2) + b"\r\n"
    data = head + body
    assert len(data) == size
    return data


class Bdat(DataAssertions, ServerTest):
    def test_single_chunk_last(self):
        msg = message(subject="bdat single", body="One.\r\n.Two with a dot\r\n").encode()
        with self.session() as r:
            self.begin(r)
            lines = self.reply(r, 250, "2.0.0", b"BDAT %d LAST\r\n" % len(msg) + msg)
            self.assertRegex(lines[-1], r"^250 2\.0\.0 OK: queued as [0-9A-Z]{12}$")
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
        got = self.assert_only(DEMO, [msg])
        self.assertEqual(body_of(got[0]), lf(msg))
        self.assertIn(b"(carteiro) with ESMTP id ", got[0])

    def test_several_chunks(self):
        msg = message(subject="bdat chunks", body="a" * 50 + "\r\nsecond line\r\n").encode()
        cuts = [0, 17, 60, 61, len(msg)]
        with self.session() as r:
            self.begin(r, (DEMO, "alice@example.test"))
            for i in range(len(cuts) - 1):
                chunk = msg[cuts[i]:cuts[i + 1]]
                last = i == len(cuts) - 2
                cmd = b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"")
                lines = self.reply(r, 250, "2.0.0", cmd + chunk)
                if not last:
                    self.assertEqual(lines, [f"250 2.0.0 Chunk received: {cuts[i + 1]} octets"])
        for rcpt in (DEMO, "alice@example.test"):
            got = self.assert_only(rcpt, [msg])
            self.assertEqual(body_of(got[0]), lf(msg))

    def test_chunk_boundaries_split_crlf(self):
        msg = b"Subject: split\r\n\r\nline1\r\nline2\r\n\r\nline4\r\n"
        i1 = msg.index(b"line1\r") + len(b"line1\r")
        i2 = msg.index(b"line2\r\n") + len(b"line2\r")
        chunks = [msg[:i1], msg[i1:i2], msg[i2:]]
        self.assertTrue(chunks[0].endswith(b"\r") and chunks[1].startswith(b"\n"))
        with self.session() as r:
            self.begin(r)
            self.reply(r, 250, "2.0.0", b"BDAT %d\r\n" % len(chunks[0]) + chunks[0])
            self.reply(r, 250, "2.0.0", b"BDAT %d\r\n" % len(chunks[1]) + chunks[1])
            self.reply(r, 250, "2.0.0", b"BDAT %d LAST\r\n" % len(chunks[2]) + chunks[2])
        got = self.assert_only(DEMO, [msg])
        self.assertEqual(body_of(got[0]), b"Subject: split\n\nline1\nline2\n\nline4\n")

    def test_bdat_zero_last_ends_the_message(self):
        msg = b"Subject: zero last\r\n\r\nbody\r\n"
        with self.session() as r:
            self.begin(r)
            self.assertEqual(self.reply(r, 250, "2.0.0", b"BDAT %d\r\n" % len(msg) + msg),
                             [f"250 2.0.0 Chunk received: {len(msg)} octets"])
            self.reply(r, 250, "2.0.0", "BDAT 0 LAST\r\n")
        got = self.assert_only(DEMO, [msg])
        self.assertEqual(body_of(got[0]), lf(msg))

    def test_bdat_zero_not_last_then_more(self):
        msg = b"Subject: zero\r\n\r\nbody\r\n"
        with self.session() as r:
            self.begin(r)
            self.assertEqual(self.reply(r, 250, "2.0.0", "BDAT 0\r\n"),
                             ["250 2.0.0 Chunk received: 0 octets"])
            self.reply(r, 250, "2.0.0", b"BDAT %d LAST\r\n" % len(msg) + msg)
        self.assert_only(DEMO, [msg])

    def test_bdat_without_mail_consumes_the_chunk(self):
        with self.server.raw() as r:
            # Before HELO, the chunk (which looks like commands) is read and dropped.
            self.reply(r, 503, "5.5.1", "BDAT 12\r\nNOOP\r\nNOOP\r\n")
            self.assert_no_pending_reply(r)
            self.reply(r, 250, None, "EHLO client.example.org\r\n")
            chunk = b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
            self.reply(r, 503, "5.5.1", b"BDAT %d LAST\r\n" % len(chunk) + chunk)
            self.assert_no_pending_reply(r)
            self.reply(r, 250, "2.0.0", "NOOP\r\n")
            # With MAIL but no RCPT: the same.
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.reply(r, 503, "5.5.1", b"BDAT %d LAST\r\n" % len(chunk) + chunk)
            self.assert_no_pending_reply(r)
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            msg = message(subject="after refused bdat")
            self.send_data(r, msg + ".\r\n")
        self.assert_only(DEMO, [msg])
        self.assertEqual(self.server.mailbox("alice@example.test"), [])
        self.assertNotIn("evil@example.org", self.server.log())

    def test_data_after_bdat_is_refused(self):
        with self.session() as r:
            self.begin(r)
            part = b"Subject: mixed\r\n\r\nabc"
            self.reply(r, 250, "2.0.0", b"BDAT %d\r\n" % len(part) + part)
            lines = self.reply(r, 503, "5.5.1", "DATA\r\n")
            self.assertIn("DATA after BDAT", lines[-1])
            self.reply(r, 503, "5.5.1", "MAIL FROM:<b@example.org>\r\n")
            self.reply(r, 503, "5.5.1", "RCPT TO:<alice@example.test>\r\n")
            self.reply(r, 250, "2.0.0", "BDAT 0 LAST\r\n")
        got = self.assert_only(DEMO, [b"Subject: mixed\r\n\r\nabc\r\n"])
        self.assertEqual(body_of(got[0]), b"Subject: mixed\n\nabc\n")
        self.assertEqual(self.server.mailbox("alice@example.test"), [])

    def test_bdat_after_data_content_started_is_data(self):
        """Once DATA is accepted, "BDAT" lines are message text."""
        msg = "Subject: looks like bdat\r\n\r\nBDAT 5 LAST\r\nhello\r\n"
        with self.session() as r:
            self.begin(r)
            self.send_data(r, msg + ".\r\n")
        got = self.assert_only(DEMO, [msg])
        self.assertEqual(body_of(got[0]), lf(msg))

    def test_message_without_final_crlf_gets_one(self):
        msg = b"Subject: no final newline\r\n\r\nlast line without end"
        with self.session() as r:
            self.begin(r)
            self.reply(r, 250, "2.0.0", b"BDAT %d LAST\r\n" % len(msg) + msg)
        got = self.assert_only(DEMO, [msg + b"\r\n"])
        self.assertEqual(body_of(got[0]),
                         b"Subject: no final newline\n\nlast line without end\n")

    def test_no_dot_unstuffing_in_bdat(self):
        msg = b"Subject: dots\r\n\r\n..two dots\r\n.\r\n.one dot\r\nend\r\n"
        with self.session() as r:
            self.begin(r)
            self.reply(r, 250, "2.0.0", b"BDAT %d LAST\r\n" % len(msg) + msg)
        got = self.assert_only(DEMO, [msg])
        self.assertEqual(body_of(got[0]), lf(msg))

    def test_bare_lf_in_bdat_is_refused(self):
        msg = b"Subject: bare lf\r\n\r\nline\nmore\r\n"
        with self.session() as r:
            self.begin(r)
            self.reply(r, 554, "5.6.0", b"BDAT %d LAST\r\n" % len(msg) + msg)
            follow = self.followup(r)
        self.assert_only(DEMO, [follow])
        self.server.wait_log(r"event=reject stage=data reason=bare_lf")

    def test_bare_cr_at_the_end_of_the_last_chunk_is_refused(self):
        msg = b"Subject: bare cr\r\n\r\nends with CR\r"
        with self.session() as r:
            self.begin(r)
            self.reply(r, 554, "5.6.0", b"BDAT %d LAST\r\n" % len(msg) + msg)
            follow = self.followup(r)
        self.assert_only(DEMO, [follow])

    def test_refused_chunk_refuses_the_rest_of_the_message(self):
        bad = b"bare\nlf\r\n"
        with self.session() as r:
            self.begin(r)
            self.reply(r, 250, "2.0.0", bdat(b"Subject: x\r\n\r\n"))
            # The bare LF is reported at the end of the message (RFC 3030 allows that).
            self.reply(r, 250, "2.0.0", bdat(bad))
            self.reply(r, 554, "5.6.0", bdat(b"hello\r\n", last=True))
            follow = self.followup(r)
        self.assert_only(DEMO, [follow])

    def test_rset_between_chunks_drops_the_message(self):
        with self.session() as r:
            self.begin(r)
            self.reply(r, 250, "2.0.0", bdat(b"Subject: dropped\r\n\r\nxx"))
            self.reply(r, 250, "2.0.0", "RSET\r\n")
            self.reply(r, 503, "5.5.1", "BDAT 0 LAST\r\n")
            follow = self.followup(r)
        self.assert_only(DEMO, [follow])
        self.assertEqual(self.server.incoming_files(), [])
        self.assertEqual(self.queued_count(), 1)

    def test_ehlo_or_quit_between_chunks_drops_the_message(self):
        with self.session() as r:
            self.begin(r)
            self.reply(r, 250, "2.0.0", bdat(b"Subject: dropped by EHLO\r\n\r\nxx"))
            self.reply(r, 250, None, "EHLO again.example.org\r\n")
            self.reply(r, 503, "5.5.1", "BDAT 0 LAST\r\n")
            follow = self.followup(r)
        with self.session() as r:
            self.begin(r)
            self.reply(r, 250, "2.0.0", bdat(b"Subject: dropped by QUIT\r\n\r\nxx"))
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
            self.assertTrue(r.closed())
        self.server.wait_log(r"reason=quit messages=0")
        self.assert_only(DEMO, [follow])
        self.assertEqual(self.server.incoming_files(), [])
        self.assertEqual(self.queued_count(), 1)

    def test_bad_bdat_syntax_closes_the_session(self):
        with self.session() as r:
            self.begin(r)
            self.reply(r, 501, "5.5.4", "BDAT many\r\n")
            self.assertTrue(r.closed())
        with self.session() as r:
            self.begin(r)
            self.reply(r, 501, "5.5.4", "BDAT 5 FIRST\r\n")
            self.assertTrue(r.closed())
        self.assertEqual(self.server.queue_files(), [])

    def test_bdat_eof_in_chunk_delivers_nothing(self):
        with self.session() as r:
            self.begin(r)
            r.send(b"BDAT 1000 LAST\r\nSubject: cut\r\n\r\nonly part")
            r.sock.shutdown(socket.SHUT_WR)
            self.assertTrue(r.closed())
        self.assert_cut_message_dropped()


class DataContent(DataAssertions, ServerTest):
    def test_dot_stuffing_round_trip_raw(self):
        wire = (b"Subject: dots\r\n\r\n..leading dot\r\n...\r\n..\r\nx.y\r\n .\r\n"
                b"..\r\n.\r\n")
        stored = b"Subject: dots\n\n.leading dot\n..\n.\nx.y\n .\n.\n"
        with self.session() as r:
            self.begin(r)
            self.send_data(r, wire)
        got = self.server.wait_mail(DEMO)
        self.assertEqual(body_of(got[0]), stored)

    def test_dot_stuffing_round_trip_smtplib(self):
        msg = message(subject="smtplib dots", body=".\r\n..\r\n.start\r\nmid.dle\r\n.")
        with self.server.smtp() as s:
            s.sendmail("a@example.org", [DEMO], msg)
        got = self.server.wait_mail(DEMO)
        # smtplib adds the missing final CRLF.
        self.assertEqual(body_of(got[0]), lf(msg) + b"\n")

    def test_content_in_small_pieces(self):
        """The readers resume anywhere: the wire cut before and after every CR, LF and
        dot (commands, DATA with stuffing and its end, BDAT) gives the same result."""
        content = b"Subject: pieces\r\n\r\n.\r\n..\r\n.x\r\nline\r\n\r\nend\r\n"
        stuffed = content.replace(b"\r\n.", b"\r\n..")
        self.assertTrue(stuffed.startswith(b"Subject"))
        wire = (b"EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\n"
                b"RCPT TO:<demo@example.test>\r\nDATA\r\n" + stuffed + b".\r\n" +
                b"MAIL FROM:<b@example.org>\r\nRCPT TO:<demo@example.test>\r\n" +
                bdat(content[:20]) + bdat(content[20:], last=True) + b"QUIT\r\n")
        pieces, start = [], 0
        for i, c in enumerate(wire):
            if c in b"\r\n.":
                pieces += [wire[start:i], wire[i:i + 1]]
                start = i + 1
        pieces.append(wire[start:])
        with self.server.raw() as r:
            r.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for piece in pieces:
                if piece:
                    r.send(piece)
                    time.sleep(0.001)
            self.reply(r, 250)
            self.reply(r, 250, "2.1.0")
            self.reply(r, 250, "2.1.5")
            self.reply(r, 354)
            self.reply(r, 250, "2.0.0")
            self.reply(r, 250, "2.1.0")
            self.reply(r, 250, "2.1.5")
            self.reply(r, 250, "2.0.0")
            self.reply(r, 250, "2.0.0")
            self.reply(r, 221, "2.0.0")
        got = self.assert_only(DEMO, [content, content])
        self.assertEqual([body_of(g) for g in got], [lf(content), lf(content)])

    def test_smuggling_in_small_pieces(self):
        for v in ["\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r.\n", "\r\n.\r"]:
            with self.subTest(variant=v), self.session() as r:
                r.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.begin(r)
                self.reply(r, 354, None, "DATA\r\n")
                for piece in ["Subject: carrier\r\n\r\nfirst"] + list(v) + [
                        "MAIL FROM:<smuggler@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
                        "DATA\r\nsmuggled\r", "\n", ".", "\r", "\n"]:
                    r.send(piece)
                    time.sleep(0.002)
                self.reply(r, 554, "5.6.0")
                self.reply(r, 250, "2.0.0", "NOOP\r\n")
        self.assertEqual(self.server.queue_files(), [])
        self.assertEqual(self.queued_count(), 0)
        self.assertNotIn("smuggler", self.server.log())

    def test_bare_lf_and_bare_cr_are_refused(self):
        cases = {
            "bare_lf": b"Subject: lf\r\n\r\nline one\nline two\r\n",
            "bare_cr": b"Subject: cr\r\n\r\nline one\rline two\r\n",
            "bare_lf_in_header": b"Subject: lf\nX-Other: y\r\n\r\nbody\r\n",
            "bare_cr_before_end": b"Subject: cr\r\n\r\nbody\r\r\n",
        }
        follows = []
        with self.session() as r:
            for name, content in cases.items():
                with self.subTest(name):
                    self.begin(r)
                    lines = self.send_data(r, content + b".\r\n", 554, "5.6.0")
                    self.assertIn("bare LF" if "lf" in name else "bare CR", lines[-1])
                    follows.append(self.followup(r))
        self.assert_only(DEMO, follows)
        self.assertEqual(len(re.findall(r"event=reject stage=data reason=bare_lf",
                                        self.server.log())), 2)
        self.assertEqual(len(re.findall(r"event=reject stage=data reason=bare_cr",
                                        self.server.log())), 2)

    def test_smuggling_variants_never_end_the_data(self):
        variants = ["\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r.\n", "\r\n.\r", "\n..\n",
                    "\r\n.\r\r\n", "\n.\r"]
        smuggled = ("MAIL FROM:<smuggler@example.org>\r\nRCPT TO:<alice@example.test>\r\n"
                    "DATA\r\nSubject: smuggled\r\n\r\nI am the second message.\r\n")
        follows = []
        for v in variants:
            with self.subTest(variant=v), self.session() as r:
                self.begin(r)
                self.reply(r, 354, None, "DATA\r\n")
                r.send("Subject: carrier\r\n\r\nfirst" + v + smuggled + ".\r\n")
                lines = self.reply(r, 554, "5.6.0")
                self.assertRegex(lines[-1], "bare (LF|CR)")
                # Exactly one reply: nothing in the content was taken as a command.
                self.assert_no_pending_reply(r)
                self.reply(r, 250, "2.0.0", "NOOP\r\n")
                follows.append(self.followup(r))
                self.reply(r, 221, "2.0.0", "QUIT\r\n")
        self.assert_only(DEMO, follows)
        self.assertEqual(self.server.mailbox("alice@example.test"), [])
        self.assertNotIn("smuggler", self.server.log())
        self.assertEqual(self.queued_count(), len(variants))
        for got in self.server.mailbox(DEMO):
            self.assertNotIn(b"carrier", got)

    def test_smuggling_in_one_write_with_pipelined_commands(self):
        """The carrier, the smuggled transaction, the real end and the next commands all
        in one write: one refusal, then the real commands' replies in order."""
        with self.session() as r:
            self.begin(r)
            self.reply(r, 354, None, "DATA\r\n")
            r.send("Subject: carrier\r\n\r\nfirst\n.\nMAIL FROM:<smuggler@example.org>\r\n"
                   "RCPT TO:<alice@example.test>\r\nDATA\r\nsmuggled\r\n.\r\n"
                   "NOOP\r\nQUIT\r\n")
            self.reply(r, 554, "5.6.0")
            self.reply(r, 250, "2.0.0")
            self.reply(r, 221, "2.0.0")
            self.assertTrue(r.closed())
        self.assertEqual(self.server.queue_files(), [])
        self.assertEqual(self.queued_count(), 0)
        self.assertEqual(self.server.mailbox("alice@example.test"), [])

    def test_text_line_of_998_is_accepted_999_refused(self):
        ok = "Subject: long\r\n\r\n" + "a" * 998 + "\r\nend\r\n"
        with self.session() as r:
            self.begin(r)
            self.send_data(r, ok + ".\r\n")
            self.begin(r)
            lines = self.send_data(r, "Subject: long\r\n\r\n" + "b" * 999 + "\r\nend\r\n.\r\n",
                                   554, "5.6.0")
            self.assertIn("longer than 998", lines[-1])
            self.begin(r)
            self.send_data(r, "Subject: long\r\n\r\n" + "c" * 5000 + "\r\n.\r\n", 554, "5.6.0")
            # A header line counts the same.
            self.begin(r)
            self.send_data(r, "X-Long: " + "d" * 991 + "\r\n\r\nbody\r\n.\r\n", 554, "5.6.0")
            follow = self.followup(r)
        got = self.assert_only(DEMO, [ok, follow])
        self.assertTrue(any(body_of(g) == lf(ok) for g in got))
        self.server.wait_log(r"event=reject stage=data reason=line_too_long")

    def test_998_octet_line_with_stuffed_dot_is_accepted(self):
        """RFC 5321 4.5.3.1.6: the 1000 octets do not count the dot added for transparency."""
        line = "." + "e" * 997  # 998 octets as stored, 999 on the wire after stuffing
        with self.session() as r:
            self.begin(r)
            self.send_data(r, "Subject: stuffed long\r\n\r\n." + line + "\r\n.\r\n")
        got = self.server.wait_mail(DEMO)
        self.assertEqual(body_of(got[0]), b"Subject: stuffed long\n\n" + line.encode() + b"\n")

    def test_line_limit_with_crlf_in_separate_writes(self):
        with self.session() as r:
            r.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for n, code, enhanced in ((998, 250, "2.0.0"), (999, 554, "5.6.0")):
                self.begin(r)
                self.reply(r, 354, None, "DATA\r\n")
                r.send("Subject: split limit\r\n\r\n" + "h" * n + "\r")
                time.sleep(0.05)
                r.send("\n.\r")
                time.sleep(0.05)
                self.reply(r, code, enhanced, "\n")
            for n, code, enhanced in ((998, 250, "2.0.0"), (999, 554, "5.6.0")):
                self.begin(r)
                first = b"Subject: split limit\r\n\r\n" + b"i" * n + b"\r"
                self.reply(r, 250, "2.0.0", bdat(first))
                self.reply(r, code, enhanced, bdat(b"\n", last=True))
        got = self.assert_only(DEMO, ["Subject: split limit\r\n\r\n" + "h" * 998 + "\r\n",
                                      "Subject: split limit\r\n\r\n" + "i" * 998 + "\r\n"])
        self.assertEqual(len(got), 2)

    def test_998_octet_line_in_bdat_accepted_999_refused(self):
        ok = b"Subject: long\r\n\r\n" + b"f" * 998 + b"\r\n"
        bad = b"Subject: long\r\n\r\n" + b"g" * 999 + b"\r\n"
        with self.session() as r:
            self.begin(r)
            self.reply(r, 250, "2.0.0", b"BDAT %d LAST\r\n" % len(ok) + ok)
            self.begin(r)
            self.reply(r, 554, "5.6.0", b"BDAT %d LAST\r\n" % len(bad) + bad)
        self.assert_only(DEMO, [ok])

    def test_command_line_limit(self):
        with self.session() as r:
            # 512 octets with CRLF (RFC 5321 4.5.3.1.4) is fine; one more is not.
            self.reply(r, 250, "2.0.0", "NOOP " + "x" * 505 + "\r\n")
            lines = self.reply(r, 500, "5.5.2", "NOOP " + "x" * 506 + "\r\n")
            self.assertIn("too long", lines[-1])
            self.reply(r, 500, "5.5.2", "NOOP " + "x" * 3000 + "\r\n")
            self.reply(r, 250, "2.0.0", "NOOP\r\n")
            # The refused line did not start a transaction, the session goes on.
            self.reply(r, 500, "5.5.2", "MAIL FROM:<" + "a" * 2000 + "@example.org>\r\n")
            self.reply(r, 503, "5.5.1", "RCPT TO:<demo@example.test>\r\n")
            follow = self.followup(r)
        self.assert_only(DEMO, [follow])

    def test_endless_line_is_refused_once_it_ends(self):
        with self.session() as r:
            r.send(b"A" * (100 * 1024))
            self.assert_no_pending_reply(r)
            r.send(b"MAIL FROM:<x@example.org>" * 1000)
            r.send(b"\r\nNOOP\r\n")
            lines = self.reply(r, 500, "5.5.2")
            self.assertIn("too long", lines[-1])
            self.reply(r, 250, "2.0.0")
            self.assert_no_pending_reply(r)
            follow = self.followup(r)
        self.assert_only(DEMO, [follow])
        self.assertNotIn("x@example.org", self.server.log())

    def test_bare_lf_command_is_refused(self):
        with self.session() as r:
            self.reply(r, 500, "5.5.2", "NOOP\n")
            r.send("MAIL FROM:<a@example.org>\nRCPT TO:<demo@example.test>\r\n")
            self.reply(r, 500, "5.5.2")
            self.reply(r, 503, "5.5.1")  # the RCPT: the MAIL line was refused as a whole
            self.reply(r, 503, "5.5.1", "DATA\r\n")
            follow = self.followup(r)
        self.assert_only(DEMO, [follow])

    def test_large_messages_byte_exact(self):
        """Megabytes through DATA (with stuffing) and BDAT: the spool writer's pace
        (back-pressure to the socket) loses and reorders nothing."""
        lines = []
        for i in range(60000):
            lines.append((f".{i} " if i % 7 == 0 else f"{i} ") + "abcdefghij" * (i % 9))
        content = ("Subject: large\r\n\r\n" + "\r\n".join(lines) + "\r\n").encode()
        self.assertGreater(len(content), 2_500_000)
        wire = content.replace(b"\r\n.", b"\r\n..")
        with self.session() as r:
            self.begin(r)
            self.send_data(r, wire + b".\r\n")
            self.begin(r, ("alice@example.test",))
            a, b = len(content) // 3, 2 * len(content) // 3
            r.send(bdat(content[:a]) + bdat(content[a:b]) + bdat(content[b:], last=True))
            self.reply(r, 250, "2.0.0")
            self.reply(r, 250, "2.0.0")
            self.reply(r, 250, "2.0.0")
        for rcpt in (DEMO, "alice@example.test"):
            got = self.server.wait_mail(rcpt)
            self.assertEqual(len(got), 1)
            self.assertTrue(body_of(got[0]) == lf(content), rcpt)

    def test_eof_right_after_the_data_still_gets_the_reply(self):
        msg = message(subject="eof after data")
        with self.session() as r:
            self.begin(r)
            self.reply(r, 354, None, "DATA\r\n")
            r.send(msg + ".\r\n")
            r.sock.shutdown(socket.SHUT_WR)
            self.reply(r, 250, "2.0.0")
            self.assertTrue(r.closed())
        got = self.server.wait_mail(DEMO)
        self.assertTrue(got[0].endswith(lf(msg)))

    def test_eof_in_data_delivers_nothing(self):
        with self.session() as r:
            self.begin(r)
            self.reply(r, 354, None, "DATA\r\n")
            r.send("Subject: cut\r\n\r\nno end marker\r\n")
            r.sock.shutdown(socket.SHUT_WR)
            self.assertTrue(r.closed())
        self.assert_cut_message_dropped()


class EightBit(DataAssertions, ServerTest):
    def test_8bitmime_body_is_delivered_byte_exact(self):
        every = bytes(b for b in range(0x80, 0x100))
        content = (b"Subject: =?utf-8?q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\n"
                   b"Content-Type: text/plain; charset=utf-8\r\n"
                   b"Content-Transfer-Encoding: 8bit\r\n\r\n" +
                   "Olá, café, ñandú, 日本語\r\n".encode() + every + b"\r\n"
                   b"\x01\x02\t\x7f control bytes\r\n")
        with self.session() as r:
            self.begin(r, params=" BODY=8BITMIME")
            self.send_data(r, content + b".\r\n")
            self.begin(r, params=" BODY=8BITMIME")
            self.reply(r, 250, "2.0.0", b"BDAT %d LAST\r\n" % len(content) + content)
        got = self.assert_only(DEMO, [content, content])
        for g in got:
            self.assertEqual(body_of(g), lf(content))

    def test_smtplib_8bitmime(self):
        content = "Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nçà€\r\n"
        with self.server.smtp() as s:
            s.ehlo()
            s.sendmail("a@example.org", [DEMO], content.encode(), mail_options=["BODY=8BITMIME"])
        got = self.server.wait_mail(DEMO)
        self.assertEqual(body_of(got[0]), lf(content))

    def test_body_parameter_values(self):
        with self.session() as r:
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org> BODY=7BIT\r\n")
            self.reply(r, 250, "2.0.0", "RSET\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org> body=8bitmime\r\n")
            self.reply(r, 250, "2.0.0", "RSET\r\n")
            self.reply(r, 555, "5.5.4", "MAIL FROM:<a@example.org> BODY=BINARYMIME\r\n")
            self.reply(r, 555, "5.5.4", "MAIL FROM:<a@example.org> BODY=9BIT\r\n")
            self.reply(r, 501, "5.5.4", "MAIL FROM:<a@example.org> BODY\r\n")
            self.reply(r, 501, "5.5.4", "MAIL FROM:<a@example.org> BODY=7BIT BODY=7BIT\r\n")


class SizeLimit(DataAssertions, ServerTest):
    LIMIT = 10 * 1024
    server_args = {"extra_config": "max-message-size 10K"}

    def test_ehlo_advertises_the_limit(self):
        with self.server.raw() as r:
            lines = self.reply(r, 250, None, "EHLO client.example.org\r\n")
            self.assertIn("250-SIZE 10240", lines)

    def test_mail_size_parameter(self):
        with self.session() as r:
            lines = self.reply(r, 552, "5.3.4", "MAIL FROM:<a@example.org> SIZE=10241\r\n")
            self.assertIn("size exceeds", lines[-1])
            self.reply(r, 501, "5.5.4", "MAIL FROM:<a@example.org> SIZE=123456789012345678901\r\n")
            self.reply(r, 501, "5.5.4", "MAIL FROM:<a@example.org> SIZE=12x\r\n")
            self.reply(r, 501, "5.5.4", "MAIL FROM:<a@example.org> SIZE=\r\n")
            self.reply(r, 503, "5.5.1", "RCPT TO:<demo@example.test>\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org> SIZE=10240\r\n")
            self.reply(r, 250, "2.1.5", "RCPT TO:<demo@example.test>\r\n")
            msg = sized_message(self.LIMIT)
            self.send_data(r, msg + b".\r\n")
        self.assert_only(DEMO, [msg])
        self.server.wait_log(r"event=reject stage=mail reason=size size=10241")

    def test_mail_size_of_twenty_digits_is_too_big_not_bad_syntax(self):
        """RFC 1870: size-value = 1*20DIGIT, so any 20-digit value is valid syntax; one
        larger than the limit gets 552 5.3.4 (as 10241 does), not 501."""
        with self.session() as r:
            self.reply(r, 552, "5.3.4", "MAIL FROM:<a@example.org> SIZE=18446744073709551615\r\n")
            self.reply(r, 552, "5.3.4", "MAIL FROM:<a@example.org> SIZE=99999999999999999999\r\n")
            self.reply(r, 552, "5.3.4", "MAIL FROM:<a@example.org> SIZE=00000000000000010241\r\n")

    def test_message_over_the_limit_refused_after_the_data(self):
        big = sized_message(self.LIMIT + 1, "too big")
        with self.session() as r:
            self.begin(r)
            lines = self.send_data(r, big + b".\r\n", 552, "5.3.4")
            self.assertIn("size exceeds", lines[-1])
            self.begin(r)
            self.send_data(r, sized_message(5 * self.LIMIT, "much too big") + b".\r\n",
                           552, "5.3.4")
            follow = self.followup(r)
        self.assert_only(DEMO, [follow])
        self.server.wait_log(r"event=reject stage=data reason=too_big size=10241")
        self.assertEqual(self.queued_count(), 1)

    def test_message_exactly_at_the_limit_accepted(self):
        msg = sized_message(self.LIMIT, "exact")
        with self.session() as r:
            self.begin(r)
            self.send_data(r, msg + b".\r\n")
        got = self.assert_only(DEMO, [msg])
        self.assertEqual(body_of(got[0]), lf(msg))
        self.server.wait_log(rf"(?m)event=queued from=<a@example\.org> nrcpt=1 size={self.LIMIT}$")

    def test_size_counts_the_unstuffed_content(self):
        """Dot-stuffing dots are not part of the message."""
        msg = sized_message(self.LIMIT, "stuffed")
        cut = msg.index(b"\r\n\r\n") + 4
        # Replace body lines' first octet by '.', stuffed on the wire.
        body = b"\r\n".join(b"." + line[1:] if line else line
                            for line in msg[cut:].split(b"\r\n"))
        stored = msg[:cut] + body
        self.assertEqual(len(stored), self.LIMIT)
        wire = msg[:cut] + b"\r\n".join(b"." + line if line.startswith(b".") else line
                                        for line in body.split(b"\r\n"))
        self.assertGreater(len(wire), self.LIMIT)
        with self.session() as r:
            self.begin(r)
            self.send_data(r, wire + b".\r\n")
        got = self.assert_only(DEMO, [stored])
        self.assertEqual(body_of(got[0]), lf(stored))

    def test_bdat_refusal_sticks_until_last(self):
        """Once a chunk is refused for size, every later chunk of that message is too
        (read and dropped), up to LAST; then a new transaction works."""
        with self.session() as r:
            self.begin(r)
            self.reply(r, 250, "2.0.0", bdat(b"Subject: x\r\n\r\n" + b"a" * 6000))
            self.reply(r, 552, "5.3.4", bdat(b"b" * 6000))
            self.reply(r, 552, "5.3.4", bdat(b"c" * 10))
            self.reply(r, 503, "5.5.1", "MAIL FROM:<x@example.org>\r\n")
            self.reply(r, 552, "5.3.4", bdat(b"", last=True))
            self.assert_no_pending_reply(r)
            follow = self.followup(r)
        self.assert_only(DEMO, [follow])

    def test_bdat_over_the_limit(self):
        big = sized_message(self.LIMIT + 1, "bdat too big")
        with self.session() as r:
            self.begin(r)
            self.reply(r, 552, "5.3.4", b"BDAT %d LAST\r\n" % len(big) + big)
            self.assert_no_pending_reply(r)
            self.begin(r)
            half = big[:6000]
            rest = big[6000:]
            self.reply(r, 250, "2.0.0", b"BDAT %d\r\n" % len(half) + half)
            self.reply(r, 552, "5.3.4", b"BDAT %d LAST\r\n" % len(rest) + rest)
            self.assert_no_pending_reply(r)
            follow = self.followup(r)
            self.begin(r)
            exact = sized_message(self.LIMIT, "bdat exact")
            self.reply(r, 250, "2.0.0", b"BDAT %d LAST\r\n" % len(exact) + exact)
        self.assert_only(DEMO, [follow, exact])

    def test_default_limit(self):
        with Server() as srv, srv.raw() as r:
            self.reply(r, 250, None, "EHLO client.example.org\r\n")
            self.reply(r, 552, "5.3.4", "MAIL FROM:<a@example.org> SIZE=36700161\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org> SIZE=36700160\r\n")


class HopLimit(DataAssertions, ServerTest):
    server_args = {"extra_config": "max-received-headers 5"}

    def hops(self, n, name="Received"):
        return "".join(f"{name}: from h{i}.example.org by h{i + 1}.example.org; "
                       f"Mon, 1 Jan 2024 00:00:0{i % 10} +0000\r\n" for i in range(n))

    def test_more_received_headers_than_the_limit_refused(self):
        with self.session() as r:
            self.begin(r)
            lines = self.send_data(r, message(subject="loop", extra_headers=self.hops(6))
                                   + ".\r\n", 554, "5.4.6")
            self.assertIn("hops", lines[-1])
            self.begin(r)
            self.send_data(r, message(subject="loop", extra_headers=self.hops(50)) + ".\r\n",
                           554, "5.4.6")
            # Case and spacing of the field name do not matter.
            self.begin(r)
            self.send_data(r, message(subject="loop", extra_headers=self.hops(3) +
                                      self.hops(2, "RECEIVED") + self.hops(1, "received ")) +
                           ".\r\n", 554, "5.4.6")
            self.begin(r)
            hdrs = self.hops(6).encode()
            content = hdrs + b"Subject: bdat loop\r\n\r\nbody\r\n"
            self.reply(r, 554, "5.4.6", b"BDAT %d LAST\r\n" % len(content) + content)
            follow = self.followup(r)
        self.assert_only(DEMO, [follow])
        self.server.wait_log(r"event=reject stage=data reason=too_many_hops")

    def test_below_the_limit_accepted(self):
        one = message(subject="one hop", extra_headers=self.hops(1))
        four = message(subject="four hops", extra_headers=self.hops(4))
        with self.session() as r:
            self.begin(r)
            self.send_data(r, one + ".\r\n")
            self.begin(r)
            self.send_data(r, four + ".\r\n")
        self.assert_only(DEMO, [one, four])

    def test_exactly_the_limit_accepted(self):
        """`carteiro help config`: "a message with MORE Received headers is refused"."""
        five = message(subject="five hops", extra_headers=self.hops(5))
        with self.session() as r:
            self.begin(r)
            self.send_data(r, five + ".\r\n")
        got = self.assert_only(DEMO, [five])
        self.assertEqual(got[0].count(b"\nReceived: "), 6)  # theirs and ours

    def test_received_lines_in_the_body_do_not_count(self):
        body = "Forwarded trace:\r\n" + self.hops(20) + "\r\n"
        msg = message(subject="trace in body", body=body,
                      extra_headers=self.hops(2) + "X-Received: not a hop\r\n" +
                      "X-Note: Received: not a hop\r\n")
        with self.session() as r:
            self.begin(r)
            self.send_data(r, msg + ".\r\n")
        self.assert_only(DEMO, [msg])


if __name__ == "__main__":
    unittest.main()
