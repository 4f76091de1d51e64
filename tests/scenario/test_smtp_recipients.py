"""Recipient scenarios: several recipients per transaction, one copy per mailbox, aliases,
postmaster without a domain, plus-addressing, unknown users, case-insensitive addresses,
the max-recipients limit (RFC 5321 4.5.3.1.8), SMTPUTF8 addresses (RFC 6531) and the
DSN parameters (RFC 3461)."""
import re
import unittest

from harness import DEFAULT_USERS, DEMO, ServerTest, SmtpAssertions, lf, message


class RecipientAssertions(SmtpAssertions):
    """harness.SmtpAssertions plus the check of this file: how many messages each mailbox
    holds."""

    def assert_mailboxes(self, expected):
        """expected: {address: number of messages}; every other known mailbox stays empty."""
        for address, n in expected.items():
            if n:
                self.server.wait_mail(address, n)
        self.server.wait_queue_empty()
        for address in set(DEFAULT_USERS) | set(expected):
            want = expected.get(address, 0)
            self.assertEqual(len(self.server.mailbox(address)), want, address)


def header(stored, name):
    m = re.search(rb"^" + name.encode() + rb": ([^\n]*)$", stored, re.M)
    return m.group(1).decode() if m else None


class Recipients(RecipientAssertions, ServerTest):
    def test_each_recipient_gets_one_copy(self):
        rcpts = [DEMO, "alice@example.test", "bob@example.test", "carol@other.test"]
        with self.session() as r:
            msg, qid = self.transaction(r, rcpts)
        self.assert_mailboxes({a: 1 for a in rcpts})
        for a in rcpts:
            got = self.server.mailbox(a)[0]
            self.assertEqual(header(got, "Delivered-To"), a)
            self.assertIn(f"(carteiro) with ESMTP id {qid};".encode(), got)
            self.assertTrue(got.endswith(lf(msg)))
        self.server.wait_log(rf"qid={qid} event=queued from=<a@example\.org> nrcpt=4 ")

    def test_smtplib_sendmail_to_several(self):
        msg = message(subject="smtplib several")
        with self.server.smtp() as s:
            refused = s.sendmail("a@example.org", [DEMO, "nobody@example.test", "bob@example.test"],
                                 msg)
        self.assertEqual(list(refused), ["nobody@example.test"])
        self.assertEqual(refused["nobody@example.test"][0], 550)
        self.assertTrue(refused["nobody@example.test"][1].startswith(b"5.1.1 "))
        self.assert_mailboxes({DEMO: 1, "bob@example.test": 1})

    def test_same_mailbox_reached_several_ways_gets_one_copy(self):
        with self.session() as r:
            msg, qid = self.transaction(r, ["postmaster@example.test", DEMO, "DEMO@example.test",
                                            "demo+tag@example.test", "postmaster",
                                            '"demo"@example.test'])
        self.assert_mailboxes({DEMO: 1})
        got = self.server.mailbox(DEMO)[0]
        self.assertEqual(header(got, "Delivered-To"), DEMO)
        self.assertEqual(got.count(b"\nDelivered-To: "), 1)
        self.server.wait_log(rf"qid={qid} event=queued from=<a@example\.org> nrcpt=1 ")
        self.assertEqual(len(re.findall(rf"qid={qid} event=delivered ", self.server.log())), 1)

    def test_alias_and_member_directly(self):
        with self.session() as r:
            self.transaction(r, ["team@example.test", "alice@example.test", "bob@example.test"])
        self.assert_mailboxes({"alice@example.test": 1, "bob@example.test": 1})

    def test_alias_fans_out_with_delivered_to_per_mailbox(self):
        with self.session() as r:
            msg, qid = self.transaction(r, ["team@example.test"])
        self.assert_mailboxes({"alice@example.test": 1, "bob@example.test": 1})
        for a in ("alice@example.test", "bob@example.test"):
            got = self.server.mailbox(a)[0]
            self.assertTrue(got.startswith(b"Return-Path: <a@example.org>\nDelivered-To: " +
                                           a.encode() + b"\nReceived: "), got[:120])
            # The trace shows the recipient as the client gave it.
            self.assertIn(f"id {qid}\n\tfor <team@example.test>; ".encode(), got)
            self.assertTrue(got.endswith(lf(msg)))
        self.server.wait_log(rf"qid={qid} event=rcpt to=<team@example\.test> result=accepted "
                             r"mailbox=<alice@example\.test>")
        self.server.wait_log(rf"qid={qid} event=rcpt to=<team@example\.test> result=accepted "
                             r"mailbox=<bob@example\.test>")

    def test_postmaster_alias_and_bare_postmaster(self):
        with self.session() as r:
            self.transaction(r, ["postmaster@example.test"], subject="pm one")
            self.transaction(r, ["postmaster"], subject="pm two")
            self.transaction(r, ["PostMaster"], subject="pm three")
            self.transaction(r, ["POSTMASTER@Example.Test"], subject="pm four")
        self.assert_mailboxes({DEMO: 4})

    def test_plus_addressing(self):
        with self.session() as r:
            self.transaction(r, ["demo+tag@example.test"], subject="plus one")
            self.transaction(r, ["alice+a+b@example.test"], subject="plus two")
            self.transaction(r, ["team+list@example.test"], subject="plus alias")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.rcpt(r, "nobody+tag@example.test", 550, "5.1.1")
            self.rcpt(r, "+demo@example.test", 550, "5.1.1")
            self.rcpt(r, "demo-tag@example.test", 550, "5.1.1")
            self.reply(r, 554, "5.5.1", "DATA\r\n")
        self.assert_mailboxes({DEMO: 1, "alice@example.test": 2, "bob@example.test": 1})
        got = self.server.mailbox(DEMO)[0]
        self.assertIn(b"\n\tfor <demo+tag@example.test>; ", got)

    def test_unknown_user_gets_550_and_nothing_is_delivered(self):
        with self.session() as r:
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            lines = self.rcpt(r, "nobody@example.test", 550, "5.1.1")
            self.assertIn("user unknown", lines[-1])
            self.rcpt(r, "demo@other.test", 550, "5.1.1")
            self.rcpt(r, "carol@example.test", 550, "5.1.1")
            self.reply(r, 554, "5.5.1", "DATA\r\n")
            self.reply(r, 554, "5.5.1", "BDAT 5 LAST\r\nhello")
            self.assert_no_pending_reply(r)
            self.reply(r, 221, "2.0.0", "QUIT\r\n")
        self.server.wait_log(r"reason=quit messages=0")
        self.assertEqual(self.server.queue_files(), [])
        self.assertEqual(self.server.incoming_files(), [])
        self.assert_mailboxes({})
        self.server.wait_log(r"event=rcpt to=<nobody@example\.test> result=rejected "
                             r"reason=unknown_user")

    def test_case_insensitive_local_part_and_domain(self):
        with self.session() as r:
            msg, qid = self.transaction(r, ["DEMO@EXAMPLE.TEST"], subject="upper")
            self.transaction(r, ["Alice@Example.Test"], subject="mixed")
            self.transaction(r, ["CAROL@OTHER.TEST"], subject="other")
        self.assert_mailboxes({DEMO: 1, "alice@example.test": 1, "carol@other.test": 1})
        got = self.server.mailbox(DEMO)[0]
        self.assertEqual(header(got, "Delivered-To"), DEMO)
        self.assertTrue(got.endswith(lf(msg)))

    def test_null_sender_is_accepted(self):
        with self.session() as r:
            self.reply(r, 250, "2.1.0", "MAIL FROM:<>\r\n")
            self.rcpt(r, DEMO)
            self.reply(r, 354, None, "DATA\r\n")
            self.reply(r, 250, "2.0.0", message(subject="bounce") + ".\r\n")
        got = self.server.wait_mail(DEMO)
        self.assertTrue(got[0].startswith(b"Return-Path: <>\nDelivered-To: demo@example.test\n"))

    def test_address_syntax_errors(self):
        with self.session() as r:
            self.reply(r, 501, "5.1.7", "MAIL FROM:a@example.org\r\n")
            self.reply(r, 501, "5.1.7", "MAIL FROM:<a@@example.org>\r\n")
            self.reply(r, 501, "5.5.4", "MAIL TO:<a@example.org>\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM: <a@example.org>\r\n")
            self.reply(r, 501, "5.1.3", "RCPT TO:demo@example.test\r\n")
            self.reply(r, 501, "5.1.3", "RCPT TO:<>\r\n")
            self.reply(r, 501, "5.1.3", "RCPT TO:<demo>\r\n")
            self.reply(r, 501, "5.1.3", "RCPT TO:<demo@>\r\n")
            self.reply(r, 501, "5.1.3", "RCPT TO:<demo@example.test\r\n")
            self.reply(r, 501, "5.1.3", "RCPT TO:<" + "d" * 65 + "@example.test>\r\n")
            self.reply(r, 501, "5.5.4", "RCPT TO:<demo@example.test>junk\r\n")
            self.reply(r, 501, "5.5.4", "RCPT FROM:<demo@example.test>\r\n")
            self.reply(r, 554, "5.5.1", "DATA\r\n")
            self.rcpt(r, DEMO)


class Aliases(RecipientAssertions, ServerTest):
    ALIASES = {
        "postmaster@example.test": [DEMO],
        "team@example.test": ["alice@example.test", "bob@example.test"],
        "nested@example.test": ["team@example.test", DEMO, "nested@example.test"],
        "fwd@example.test": ["someone@remote.test"],
        "loop1@example.test": ["loop2@example.test"],
        "loop2@example.test": ["loop1@example.test"],
        "alice@example.test": ["alice@example.test", "bob@example.test"],
        "demo+special@example.test": ["carol@other.test"],
        "broken@example.test": ["ghost@example.test"],
        "@other.test": ["bob@example.test"],
    }
    server_args = {"aliases": ALIASES}

    def test_nested_alias_and_self_reference(self):
        with self.session() as r:
            self.transaction(r, ["nested@example.test"])
        self.assert_mailboxes({DEMO: 1, "alice@example.test": 1, "bob@example.test": 1})

    def test_alias_of_a_user_keeps_a_copy(self):
        with self.session() as r:
            self.transaction(r, ["alice@example.test"])
        self.assert_mailboxes({"alice@example.test": 1, "bob@example.test": 1})

    def test_exact_alias_wins_over_plus_addressing(self):
        with self.session() as r:
            self.transaction(r, ["demo+special@example.test"], subject="special")
            self.transaction(r, ["demo+other@example.test"], subject="other")
        self.assert_mailboxes({"carol@other.test": 1, DEMO: 1})

    def test_catch_all_only_for_unknown_addresses(self):
        with self.session() as r:
            self.transaction(r, ["carol@other.test"], subject="exact user")
            self.transaction(r, ["anything@other.test"], subject="caught")
            self.transaction(r, ["Whatever+x@OTHER.test"], subject="caught too")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.rcpt(r, "anything@example.test", 550, "5.1.1")
        self.assert_mailboxes({"carol@other.test": 1, "bob@example.test": 2})

    def test_alias_loop_gets_550_5_4_6(self):
        with self.session() as r:
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.rcpt(r, "loop1@example.test", 550, "5.4.6")
            self.rcpt(r, "broken@example.test", 550, "5.1.1")
            self.reply(r, 554, "5.5.1", "DATA\r\n")
        self.server.wait_log(r"event=rcpt to=<loop1@example\.test> result=rejected "
                             r"reason=alias_loop")
        self.assertEqual(self.server.queue_files(), [])

    def test_alias_to_a_remote_address_is_forwarding_not_relaying(self):
        """The alias file (not the client) names the remote target: any client may use it."""
        with self.session(source="127.0.0.2") as r:
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.rcpt(r, "someone@remote.test", 554, "5.7.1")
            self.reply(r, 250, "2.0.0", "RSET\r\n")
            msg, qid = self.transaction(r, ["fwd@example.test"])
        self.server.wait_log(rf"qid={qid} event=rcpt to=<fwd@example\.test> result=accepted "
                             r"relay=<someone@remote\.test>")
        self.assertEqual(self.server.queue_files(), [qid])


class MaxRecipients(RecipientAssertions, ServerTest):
    server_args = {"extra_config": "max-recipients 3\nsmtp-max-errors 3"}

    def test_fourth_recipient_gets_452(self):
        with self.session() as r:
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.rcpt(r, DEMO)
            self.rcpt(r, "alice@example.test")
            self.rcpt(r, "bob@example.test")
            lines = self.rcpt(r, "carol@other.test", 452, "4.5.3")
            self.assertIn("Too many recipients", lines[-1])
            # A normal limit, not a client error: smtp-max-errors 3 is not reached.
            self.rcpt(r, "carol@other.test", 452, "4.5.3")
            self.rcpt(r, "carol@other.test", 452, "4.5.3")
            self.rcpt(r, "carol@other.test", 452, "4.5.3")
            self.reply(r, 354, None, "DATA\r\n")
            msg = message(subject="three of four")
            qid = self.reply(r, 250, "2.0.0", msg + ".\r\n")[-1].rsplit(" ", 1)[1]
            # The limit is per transaction.
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.rcpt(r, "carol@other.test")
            self.reply(r, 250, "2.0.0", "RSET\r\n")
        self.assert_mailboxes({DEMO: 1, "alice@example.test": 1, "bob@example.test": 1})
        for a in (DEMO, "alice@example.test", "bob@example.test"):
            self.assertTrue(self.server.mailbox(a)[0].endswith(lf(msg)))
        self.server.wait_log(rf"qid={qid} event=rcpt to=<carol@other\.test> result=rejected "
                             r"reason=too_many_recipients")

    def test_smtplib_sees_the_fourth_refused(self):
        msg = message(subject="smtplib limit")
        rcpts = [DEMO, "alice@example.test", "bob@example.test", "carol@other.test"]
        with self.server.smtp() as s:
            refused = s.sendmail("a@example.org", rcpts, msg)
        self.assertEqual(list(refused), ["carol@other.test"])
        self.assertEqual(refused["carol@other.test"][0], 452)
        self.assert_mailboxes({DEMO: 1, "alice@example.test": 1, "bob@example.test": 1})


class Utf8Addresses(RecipientAssertions, ServerTest):
    USER = "josé@example.test"
    server_args = {"users": DEFAULT_USERS + [USER]}

    def test_utf8_local_part_with_smtputf8(self):
        content = ("From: <jörg@example.org>\r\nTo: <josé@example.test>\r\n"
                   "Subject: olá\r\n\r\nçà\r\n").encode()
        with self.session() as r:
            self.reply(r, 250, "2.1.0", "MAIL FROM:<jörg@example.org> SMTPUTF8\r\n".encode())
            self.rcpt(r, self.USER)
            self.reply(r, 354, None, "DATA\r\n")
            self.reply(r, 250, "2.0.0", content + b".\r\n")
        got = self.server.wait_mail(self.USER)
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0].startswith("Return-Path: <jörg@example.org>\n"
                                          "Delivered-To: josé@example.test\n".encode()), got[0])
        self.assertIn(b"(carteiro) with UTF8SMTP id ", got[0])
        self.assertIn("\tfor <josé@example.test>; ".encode(), got[0])
        self.assertTrue(got[0].endswith(lf(content)))
        self.server.wait_queue_empty()

    def test_smtplib_smtputf8(self):
        content = "Subject: smtplib utf8\r\n\r\nÿ\r\n".encode()
        with self.server.smtp() as s:
            s.ehlo()
            self.assertTrue(s.has_extn("smtputf8"))
            refused = s.sendmail("ñ@example.org", [self.USER], content,
                                 mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        self.assertEqual(refused, {})
        got = self.server.wait_mail(self.USER)
        self.assertTrue(got[0].endswith(lf(content)))

    def test_utf8_address_without_smtputf8_gets_553(self):
        with self.session() as r:
            self.reply(r, 553, "5.6.7", "MAIL FROM:<jörg@example.org>\r\n".encode())
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            lines = self.reply(r, 553, "5.6.7", "RCPT TO:<josé@example.test>\r\n".encode())
            self.assertIn("SMTPUTF8", lines[-1])
            self.reply(r, 554, "5.5.1", "DATA\r\n")
            self.rcpt(r, DEMO)
            self.reply(r, 354, None, "DATA\r\n")
            msg = message(subject="ascii only")
            self.reply(r, 250, "2.0.0", msg + ".\r\n")
        self.server.wait_mail(DEMO)
        self.server.wait_queue_empty()
        self.assertEqual(self.server.mailbox(self.USER), [])
        self.assertEqual(len(self.server.mailbox(DEMO)), 1)

    def test_invalid_utf8_is_a_syntax_error(self):
        with self.session() as r:
            self.reply(r, 501, "5.1.7", b"MAIL FROM:<j\xc3(rg@example.org> SMTPUTF8\r\n")
            self.reply(r, 501, "5.5.4", "MAIL FROM:<a@example.org> SMTPUTF8=yes\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org> SMTPUTF8\r\n")
            self.reply(r, 501, "5.1.3", b"RCPT TO:<jos\xe9@example.test>\r\n")
            self.reply(r, 555, "5.5.4", "RCPT TO:<demo@example.test> SMTPUTF8\r\n")


class Dsn(RecipientAssertions, ServerTest):
    def test_dsn_parameters_accepted(self):
        with self.session() as r:
            # From a local user: the success report DEMO asked for lands in a mailbox.
            self.reply(r, 250, "2.1.0",
                       "MAIL FROM:<carol@other.test> RET=HDRS ENVID=x\r\n")
            self.rcpt(r, DEMO, params=" NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b")
            self.rcpt(r, "alice@example.test", params=" NOTIFY=NEVER")
            self.rcpt(r, "bob@example.test",
                      params=" ORCPT=rfc822;bob+2Bx@example.test NOTIFY=delay")
            self.reply(r, 354, None, "DATA\r\n")
            msg = message(subject="dsn")
            self.reply(r, 250, "2.0.0", msg + ".\r\n")
            self.reply(r, 250, "2.1.0",
                       "MAIL FROM:<a@example.org> ret=FULL envid=QQ+2BZZ SIZE=100 "
                       "BODY=7BIT\r\n")
            self.rcpt(r, DEMO, params=" NOTIFY=FAILURE,DELAY,SUCCESS")
            self.reply(r, 250, "2.0.0", "RSET\r\n")
        self.assert_mailboxes({DEMO: 1, "alice@example.test": 1, "bob@example.test": 1,
                               "carol@other.test": 1})
        for a in (DEMO, "alice@example.test", "bob@example.test"):
            self.assertTrue(self.server.mailbox(a)[0].endswith(lf(msg)))
        report = self.server.mailbox("carol@other.test")[0]
        self.assertIn(b"Subject: Successful Mail Delivery Report\n", report)
        self.assertIn(b"Original-Recipient: rfc822;a@b\n", report)
        self.assertIn(b"Final-Recipient: rfc822; demo@example.test\nAction: delivered\n", report)

    def test_bad_dsn_parameters_get_501(self):
        with self.session() as r:
            for bad in ("RET=HEADERS", "RET", "ENVID=a+zz", "ENVID=", "ENVID=a+00",
                        "ENVID=" + "e" * 101, "RET=HDRS RET=FULL"):
                with self.subTest(bad):
                    self.reply(r, 501, "5.5.4", f"MAIL FROM:<a@example.org> {bad}\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            for bad in ("NOTIFY=NEVER,SUCCESS", "NOTIFY=SUCCESS,NEVER", "NOTIFY=", "NOTIFY",
                        "NOTIFY=ALWAYS", "NOTIFY=SUCCESS,", "ORCPT=a@b", "ORCPT=rfc822;",
                        "ORCPT=;a@b", "ORCPT=rfc822;a+zzb", "NOTIFY=SUCCESS NOTIFY=FAILURE"):
                with self.subTest(bad):
                    self.rcpt(r, DEMO, 501, "5.5.4", params=" " + bad)
            # None of them was taken: no recipient yet.
            self.reply(r, 554, "5.5.1", "DATA\r\n")

    def test_unknown_parameter_gets_555(self):
        with self.session() as r:
            self.reply(r, 555, "5.5.4", "MAIL FROM:<a@example.org> FOO=bar\r\n")
            self.reply(r, 555, "5.5.4", "MAIL FROM:<a@example.org> XFORWARD\r\n")
            self.reply(r, 555, "5.5.4", "MAIL FROM:<a@example.org> NOTIFY=SUCCESS\r\n")
            self.reply(r, 250, "2.1.0", "MAIL FROM:<a@example.org>\r\n")
            self.rcpt(r, DEMO, 555, "5.5.4", params=" FOO=bar")
            self.rcpt(r, DEMO, 555, "5.5.4", params=" RET=HDRS")
            self.rcpt(r, DEMO, 555, "5.5.4", params=" SIZE=10")
            self.reply(r, 554, "5.5.1", "DATA\r\n")
            self.rcpt(r, DEMO)


if __name__ == "__main__":
    unittest.main()
