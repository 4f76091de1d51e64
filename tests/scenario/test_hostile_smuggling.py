"""SMTP smuggling, table-driven: every end-of-data look-alike, in DATA and in BDAT, with the
transaction sent step by step or pipelined in one write, is either refused or plain data;
never the end of one message and the start of another.

For each variant the carrier message is "...first<variant>MAIL FROM:<evil@x>\r\n
RCPT TO:<victim>\r\nDATA\r\nsmuggled\r\n.\r\n": the victim (alice) must get nothing, the
smuggler's MAIL FROM must never reach the session (no event in the log), the carrier is
answered with exactly one reply (554 5.6.0, or 250 with the smuggled lines inside the one
message it delivers), and the session goes on in step.

test_smtp_data.py covers DATA sent in one write and cut in small pieces; this adds BDAT, the
whole transaction pipelined in one write, and the check that anything accepted is one message.
"""
import re
import unittest

from harness import DEMO, ServerTest, SmtpAssertions, count_log, message

VICTIM = "alice@example.test"
EVIL = "evil@x.example"
VARIANTS = ["\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r.\n", "\r\n.\r",
            # and a few more that parsers have got wrong
            "\n..\n", "\r\n.\r\r\n", "\n.\r", "\r\r\n.\r\r\n", "\r\n\n.\n\n"]
SMUGGLED = (f"MAIL FROM:<{EVIL}>\r\nRCPT TO:<{VICTIM}>\r\nDATA\r\n"
            "Subject: smuggled\r\n\r\nsmuggled\r\n.\r\n")
MODES = ["data", "data-pipelined", "bdat", "bdat-pipelined"]


def carrier(variant):
    return ("Subject: carrier\r\n\r\nfirst" + variant + SMUGGLED).encode()


class Smuggling(SmtpAssertions, ServerTest):
    server_args = {"workers": 1}

    def attempt(self, r, mode, variant):
        """One carrier transaction in the given mode; the reply lines to its content."""
        content = carrier(variant)
        head = f"MAIL FROM:<carrier@example.org>\r\nRCPT TO:<{DEMO}>\r\n".encode()
        if mode == "data":
            self.begin(r, sender="carrier@example.org")
            self.reply(r, 354, None, "DATA\r\n")
            # It ends with the smuggled part's CRLF.CRLF: the real end.
            r.send(content + b"NOOP\r\n")
        elif mode == "data-pipelined":
            # A client that does not wait for 354 (RFC 2920 says it must; a hostile one
            # does not): the content is read once DATA is answered.
            r.send(head + b"DATA\r\n" + content + b"NOOP\r\n")
            self.reply(r, 250, "2.1.0")
            self.reply(r, 250, "2.1.5")
            self.reply(r, 354)
        elif mode == "bdat":
            self.begin(r, sender="carrier@example.org")
            r.send(b"BDAT %d LAST\r\n" % len(content) + content + b"NOOP\r\n")
        else:
            r.send(head + b"BDAT %d LAST\r\n" % len(content) + content + b"NOOP\r\n")
            self.reply(r, 250, "2.1.0")
            self.reply(r, 250, "2.1.5")
        code, lines = r.reply()
        self.assertIn(code, (250, 554), lines)
        if code == 554:
            self.assertTrue(lines[-1].startswith("554 5.6.0 "), lines)
        # Exactly one reply to the content: the next is the NOOP's (replies come in order,
        # so a line of the content taken as a command would have been answered before it).
        self.reply(r, 250, "2.0.0")
        self.assert_no_pending_reply(r, wait=0.05)
        return code, lines

    def test_every_variant_in_every_mode(self):
        accepted = 0
        follows = 0
        for mode in MODES:
            for variant in VARIANTS:
                with self.subTest(mode=mode, variant=variant), self.session() as r:
                    code, _ = self.attempt(r, mode, variant)
                    accepted += code == 250
                    # Still in step: a good transaction right after.
                    self.begin(r, sender="followup@example.org")
                    self.reply(r, 354, None, "DATA\r\n")
                    self.reply(r, 250, "2.0.0", message(subject=f"followup {mode}") + ".\r\n")
                    follows += 1
                    self.reply(r, 221, "2.0.0", "QUIT\r\n")
        srv = self.server
        srv.wait_mail(DEMO, follows + accepted)
        srv.wait_queue_empty()
        got = srv.mailbox(DEMO)
        self.assertEqual(len(got), follows + accepted)
        # Whatever was accepted is one message: the carrier with the smuggled lines inside.
        carriers = [g for g in got if b"Subject: carrier" in g]
        self.assertEqual(len(carriers), accepted)
        for g in carriers:
            self.assertIn(b"smuggled", g.split(b"\n\n", 1)[1])
        self.assertEqual(srv.mailbox(VICTIM), [])
        log = srv.log()
        self.assertNotIn(EVIL, log)
        self.assertEqual(count_log(srv, r"event=queued "), follows + accepted)
        self.assertFalse(re.search(r"event=rcpt to=<alice@example\.test>", log))


if __name__ == "__main__":
    unittest.main()
