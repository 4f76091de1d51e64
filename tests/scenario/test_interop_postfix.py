"""Mail exchanged with a real Postfix (Debian's, the same private instance `make bench` runs:
bench/servers.py), both ways, over STARTTLS:

  Postfix -> carteiro  Postfix relays through carteiro's port 25 listener (relayhost, TLS
                       required): an 8-bit message with dot-led and long lines and a 1 MiB
                       body arrives byte for byte; a recipient carteiro refuses comes back to
                       the sender as Postfix's bounce, which carteiro takes with MAIL FROM:<>;
                       SMTPUTF8; recipients past max-recipients (452) and greylisting (451)
                       arrive on Postfix's retries; a message over our SIZE never leaves it;
                       a burst over Postfix's cached TLS connection; NOTIFY=SUCCESS passed on
                       by Postfix and reported by us; greet-pause lets Postfix in.
  carteiro -> Postfix  carteiro relays through Postfix (relayhost-tls starttls, certificate
                       verified against the test CA), which delivers into its own Maildir; a
                       recipient Postfix refuses at RCPT makes carteiro bounce to its sender;
                       by MX (dnsmasq): Postfix as the backup MX when the first refuses;
                       a UTF-8 recipient; NOTIFY=SUCCESS, ORCPT, ENVID and RET passed on, so
                       that Postfix's own success notice comes back through carteiro; several
                       messages on one of our connections; a Postfix that offers only the
                       basics and refuses unannounced pipelining.
  smarthost with AUTH  Postfix as a provider's submission server: SASL through a private
                       Dovecot's auth socket, AUTH only after STARTTLS, no recipient without
                       it; carteiro's relayhost-auth logs in, and a wrong password keeps the
                       message queued (no bounce) instead of sending it unauthenticated.

Postfix's master starts as root (it drops to 'postfix'), so the tests need root, as the
test run has in CI; scripts/deps.sh test installs the postfix package without starting it.
"""
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

from dnsserver import DnsServer
from harness import DEMO, Server, maildir_messages, make_server_cert, test_pki, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "bench"))
import servers  # noqa: E402  (bench/servers.py: the private Postfix instance)

SENDER = "alice@example.test"
# Postfix retrying a deferred message after a second or two instead of minutes.
QUICK_RETRY = {"minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
               "queue_run_delay": "1s"}


def body_8bit():
    """A text body that a careless relay would break: 8-bit UTF-8, lines that begin with a
    dot, a 990-octet line, trailing spaces, and about 1 MiB in all."""
    lines = ["Olá, ação e coração: 8-bit UTF-8, sent with BODY=8BITMIME.",
             ".a line that begins with a dot",
             "..two dots",
             ".",
             "trailing spaces   ",
             "x" * 990]
    lines += [f"line {i:06d} " + "abcdefghij" * 7 for i in range(13000)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def message_8bit(sender, to, subject):
    head = (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.time_ns()}@example.test>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n")
    return head.encode("ascii") + body_8bit()


def split(msg):
    """(header section, body) of a stored message, line ends made CRLF."""
    msg = re.sub(rb"\r?\n", b"\r\n", msg)
    head, _, body = msg.partition(b"\r\n\r\n")
    return head + b"\r\n", body


def check_success_report(test, msg, reporting_mta, envid, orcpt):
    """msg is a report of delivery (RFC 3464) from reporting_mta for envid and orcpt; its
    body."""
    head, body = split(msg)
    test.assertRegex(head, rb"(?m)^Return-Path: <>\r\n")
    test.assertRegex(head, rb"(?m)^Subject: Successful Mail Delivery Report\r\n")
    for line in (f"Reporting-MTA: dns; {reporting_mta}", f"Original-Envelope-Id: {envid}",
                 f"Original-Recipient: {orcpt}", "Action: delivered"):
        test.assertIn(f"\r\n{line}\r\n".encode(), body)
    return body


@unittest.skipUnless(os.geteuid() == 0, "Postfix's master needs root")
class PostfixTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="carteiro-postfix-")
        os.chmod(self.root, 0o755)
        self.addCleanup(shutil.rmtree, self.root, True)
        self.server = None
        self.postfix = None

    def tearDown(self):
        if self.postfix:
            self.postfix.stop()
        if self.server:
            self.server.cleanup()

    def postfix_log(self):
        try:
            with open(self.postfix.path("postfix.log"), encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_postfix_log(self, pattern, timeout=30):
        rx = re.compile(pattern, re.M)
        if not wait_for(lambda: rx.search(self.postfix_log()), timeout=timeout):
            self.fail(f"no Postfix log line matching {pattern!r} within {timeout}s:\n"
                      + self.postfix_log()[-3000:] + "\ncarteiro:\n" + self.server.log()[-2000:])
        return rx.search(self.postfix_log())

    def only_notice(self):
        """The one message in the sender's Maildir, a notice from <>: (header, body)."""
        msgs = self.wait_mail(SENDER)
        self.assertEqual(len(msgs), 1)
        head, body = split(msgs[0])
        self.assertRegex(head, rb"(?m)^Return-Path: <>\r\n")
        return head, body

    def wait_mail(self, address, count=1, timeout=30):
        """carteiro's Maildir of address, once it has count messages (both logs if not)."""
        return self.wait_maildir(self.server.mailbox_dir(address), count, timeout)

    def wait_maildir(self, path, count, timeout=30):
        if not wait_for(lambda: len(maildir_messages(path)) >= count, timeout=timeout):
            self.fail(f"{path}: {len(maildir_messages(path))} messages, expected {count}:\n"
                      + self.postfix_log()[-3000:] + "\ncarteiro:\n" + self.server.log()[-3000:])
        return maildir_messages(path)


class PostfixToCarteiro(PostfixTest):
    """Postfix's smtp client delivering to carteiro as its relayhost."""

    def start(self, extra_config="", main_cf=None, users=None):
        self.server = Server(tls=True, extra_config=extra_config, users=users).start()
        pki = test_pki()
        self.postfix = servers.Postfix(self.root, relay_port=self.server.port, main_cf={
            "myhostname": "pf.example.org",
            # Nothing is Postfix's own: every message goes to the relayhost, carteiro.
            "virtual_mailbox_domains": None, "virtual_mailbox_base": None,
            "virtual_mailbox_maps": None, "virtual_uid_maps": None,
            "virtual_gid_maps": None, "virtual_minimum_uid": None,
            "smtp_tls_security_level": "encrypt",
            "smtp_tls_CAfile": pki["ca"],
            "smtp_tls_loglevel": "1",
            **(main_cf or {}),
        }).start()

    def submit(self, rcpts, msg):
        """Hand msg to Postfix's smtpd, as a client on its network would."""
        import smtplib
        with smtplib.SMTP("127.0.0.1", self.postfix.port, local_hostname="client.example.org",
                          timeout=30) as s:
            refused = s.sendmail(SENDER, rcpts, msg)
        self.assertEqual(refused, {})

    def test_notify_success_passed_on_by_postfix_is_reported_by_us(self):
        # Postfix relays NOTIFY and ORCPT to us (we offer DSN), so the final delivery here
        # is ours to report: Action: delivered, back to the sender.
        self.start()
        import smtplib
        with smtplib.SMTP("127.0.0.1", self.postfix.port, local_hostname="client.example.org",
                          timeout=30) as s:
            self.assertEqual(s.sendmail(SENDER, [DEMO],
                                        message_8bit(SENDER, DEMO, "report please")[:3000],
                                        mail_options=["ENVID=pf-env-7"],
                                        rcpt_options=["NOTIFY=SUCCESS",
                                                      "ORCPT=rfc822;Demo@Example.test"]), {})
        self.wait_mail(DEMO)
        check_success_report(self, self.wait_mail(SENDER)[0], "mx.example.test", "pf-env-7",
                             "rfc822;Demo@Example.test")
        # Postfix itself sent no "relayed" notice: we offered DSN.
        self.server.wait_queue_empty()
        self.assertEqual(len(self.server.mailbox(SENDER)), 1)
        self.assertNotRegex(self.postfix_log(), r"sender delivery status notification")

    def test_greet_pause_lets_postfix_in(self):
        # A real MTA waits for the greeting (RFC 5321 3.1): greet-pause does not refuse it.
        self.start(extra_config="greet-pause 1s\n")
        self.submit([DEMO], message_8bit(SENDER, DEMO, "after the pause")[:3000])
        self.assertEqual(len(self.wait_mail(DEMO)), 1)
        self.assertNotRegex(self.server.log(), r"event=pregreet")
        self.wait_postfix_log(r"to=<demo@example\.test>, .*status=sent \(250 ")

    def test_burst_over_a_cached_connection(self):
        # Postfix keeps its connection to us (smtp_connection_cache_destinations; a TLS one
        # through its tlsproxy) and sends message after message on it; each arrives once.
        self.start(main_cf={"smtp_connection_cache_destinations": "$relayhost",
                            "smtp_tls_connection_reuse": "yes"})
        import smtplib
        with smtplib.SMTP("127.0.0.1", self.postfix.port, local_hostname="client.example.org",
                          timeout=30) as s:
            for i in range(30):
                s.sendmail(SENDER, [DEMO], message_8bit(SENDER, DEMO, f"burst {i}")[:4000])
        got = self.wait_mail(DEMO, count=30, timeout=60)
        subjects = sorted(re.search(rb"Subject: (burst \d+)\r?\n", m).group(1) for m in got)
        self.assertEqual(subjects, sorted(f"burst {i}".encode() for i in range(30)))
        self.assertTrue(wait_for(lambda: self.postfix_log().count(", status=sent (250 ") == 30,
                                 timeout=30), self.postfix_log()[-3000:])
        # Our log counts each session's messages when Postfix closes it (its cache lets a
        # connection idle for 2 s).
        def messages_per_session():
            return [int(n) for n in re.findall(r"event=disconnect client=127\.0\.0\.1 "
                                               r"reason=\w+ messages=(\d+)", self.server.log())]
        wait_for(lambda: sum(messages_per_session()) == 30, timeout=15)
        per_session = messages_per_session()
        self.assertEqual(sum(per_session), 30, per_session)
        self.assertGreater(max(per_session), 1, per_session)

    def test_smtputf8_address_and_header(self):
        # RFC 6531 both sides: Postfix passes on a UTF-8 sender with SMTPUTF8.
        self.start(main_cf={"smtputf8_enable": "yes"})
        sender = "jörg@example.org"
        msg = (f"From: Jörg <{sender}>\r\nTo: <{DEMO}>\r\nSubject: Grüße aus Köln\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\nSchöne Grüße.\r\n").encode("utf-8")
        import smtplib
        with smtplib.SMTP("127.0.0.1", self.postfix.port, local_hostname="client.example.org",
                          timeout=30) as s:
            self.assertEqual(s.sendmail(sender, [DEMO], msg, mail_options=["SMTPUTF8"]), {})
        got = self.wait_mail(DEMO, timeout=30)
        head, body = split(got[0])
        self.assertIn("Return-Path: <jörg@example.org>\r\n".encode(), head)
        self.assertIn("Subject: Grüße aus Köln\r\n".encode(), head)
        self.assertRegex(head, rb"\tby mx\.example\.test \(carteiro\) with UTF8SMTPS id ")
        self.assertEqual(body, "Schöne Grüße.\r\n".encode())

    def test_recipients_over_our_limit_come_in_more_transactions(self):
        # RFC 5321 4.5.3.1.8: 452 for the recipients past our limit; Postfix defers those
        # and sends them again later in transactions of their own; every one arrives once.
        rcpts = [f"user{i}@example.test" for i in range(45)]
        self.start(extra_config="max-recipients 20\n", users=[SENDER] + rcpts,
                   main_cf=QUICK_RETRY)
        self.submit(rcpts, message_8bit(SENDER, rcpts[0], "many recipients"))
        for r in rcpts:
            if not wait_for(lambda: self.server.mailbox(r), timeout=60):
                self.fail(f"{r}: nothing\n{self.postfix_log()[-5000:]}")
        self.server.wait_queue_empty()
        for r in rcpts:
            self.assertEqual(len(self.server.mailbox(r)), 1, r)
        self.wait_postfix_log(r"said: 452 4\.5\.3 ")
        queued = re.findall(r"event=queued from=<alice@example\.test> nrcpt=(\d+) ",
                            self.server.log())
        self.assertEqual(sorted(map(int, queued)), [5, 20, 20])
        self.assertNotRegex(self.postfix_log(), r"status=bounced")

    def test_greylisted_postfix_retries_and_gets_through(self):
        # The point of greylisting: a real MTA comes back after the delay.
        self.start(extra_config="greylist yes\ngreylist-delay 2s\n", main_cf=QUICK_RETRY)
        self.submit([DEMO], message_8bit(SENDER, DEMO, "greylisted"))
        self.wait_postfix_log(r"to=<demo@example\.test>, .*status=deferred \(host 127\.0\.0\.1"
                              r"\[127\.0\.0\.1\] said: 451 4\.7\.1 ")
        got = self.wait_mail(DEMO, timeout=60)
        self.assertEqual(len(got), 1)
        self.assertEqual(split(got[0])[1], body_8bit())
        self.wait_postfix_log(r"to=<demo@example\.test>, .*status=sent \(250 ")
        self.server.wait_log(r"event=greylist result=(passed|allowed)")

    def test_message_over_our_size_limit_is_refused_before_the_data(self):
        # Postfix reads SIZE from our EHLO (RFC 1870) and bounces a larger message without
        # even a MAIL command.
        self.start(extra_config="max-message-size 200K\n")
        self.submit([DEMO], message_8bit(SENDER, DEMO, "too big"))
        self.wait_postfix_log(r"to=<demo@example\.test>, .*dsn=5\.3\.4, status=bounced \(message "
                              r"size \d+ exceeds size limit 204800 of server 127\.0\.0\.1")
        dsn = self.wait_mail(SENDER, timeout=30)
        self.assertEqual(len(dsn), 1)
        self.assertIn(b"Status: 5.3.4", split(dsn[0])[1])
        self.assertEqual(self.server.mailbox(DEMO), [])
        self.assertNotRegex(self.server.log(), r"event=mail .*from=<alice@")

    def test_8bit_message_arrives_intact_over_starttls(self):
        self.start()
        msg = message_8bit(SENDER, DEMO, "from postfix")
        self.submit([DEMO, "bob@example.test"], msg)
        got = self.wait_mail(DEMO, timeout=30)
        self.assertEqual(len(got), 1)
        head, body = split(got[0])
        # The body, every octet of it: 8-bit, dots, long line (Postfix un-stuffs, we too).
        self.assertEqual(body, split(msg)[1])
        self.assertEqual(len(self.wait_mail("bob@example.test", timeout=30)), 1)
        # Our Received field names Postfix's EHLO and says the session was TLS.
        self.assertRegex(head, rb"Received: from pf\.example\.org \(\[127\.0\.0\.1\]\)\r\n"
                               rb"\t\(using TLSv1\.[23] with cipher \S+ \(\d+ bits\)\)\r\n"
                               rb"\tby mx\.example\.test \(carteiro\) with ESMTPS id ")
        self.assertIn(b"Subject: from postfix\r\n", head)
        # Postfix's side: TLS to carteiro, both recipients sent in one transaction, and our
        # queue id in the reply it logged.
        self.wait_postfix_log(r"TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:"
                              rf"{self.server.port}: TLSv1\.[23]")
        sent = self.wait_postfix_log(r"to=<demo@example\.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]"
                                     r":\d+, .*status=sent \(250 (.*)\)")
        qid = re.search(r"queued as (\w+)", sent.group(1)) or re.search(r"id=(\w+)",
                                                                       sent.group(1))
        self.assertIsNotNone(qid, sent.group(0))
        self.assertIn(qid.group(1), self.server.log())
        self.wait_postfix_log(r"to=<bob@example\.test>, .*status=sent")
        # One transaction with both recipients, declared 8-bit (RFC 6152).
        self.server.wait_log(r"event=queued from=<alice@example\.test> nrcpt=2 ")
        self.server.wait_queue_empty()

    def test_refused_recipient_comes_back_as_postfix_bounce(self):
        self.start()
        self.submit([DEMO, "nobody@example.test"], message_8bit(SENDER, DEMO, "half refused"))
        self.assertEqual(len(self.wait_mail(DEMO, timeout=30)), 1)
        # Postfix gets our 550 at RCPT, delivers the rest and bounces to the sender: its DSN
        # (from MAIL FROM:<>) comes through carteiro into alice's Maildir.
        self.wait_postfix_log(r"to=<nobody@example\.test>, .*status=bounced \(host 127\.0\.0\.1"
                              r"\[127\.0\.0\.1\] said: 550 5\.1\.1 ")
        head, body = self.only_notice()
        self.assertRegex(head, rb"(?mi)^Content-Type: multipart/report; report-type=delivery-status")
        self.assertIn(b"Final-Recipient: rfc822; nobody@example.test", body)
        self.assertIn(b"Status: 5.1.1", body)
        self.server.wait_log(r"event=queued .*from=<>")


class CarteiroToPostfix(PostfixTest):
    """carteiro's outbound client delivering to Postfix's smtpd as its relayhost."""

    def start(self, password=None, by_mx=False, main_extra=None):
        """Postfix for remote.test on a loopback port, carteiro relaying through it; with a
        password, Postfix wants AUTH (checked by Dovecot) and carteiro logs in with it.
        by_mx: no relayhost; DNS (dnsmasq) gives remote.test a first MX on 127.0.0.9, where
        nothing listens, and Postfix as the backup MX. main_extra: more main.cf."""
        cert, key = make_server_cert(self.root, "postfix", 4242)
        os.chmod(self.root, 0o755)
        main_cf = {
            "myhostname": "pf.example.org",
            "virtual_mailbox_domains": "remote.test",
            # One known user; any other gets 550 5.1.1 at RCPT.
            "virtual_mailbox_maps": "inline:{ user@remote.test=remote.test/user/, "
                                    "jörg@remote.test=remote.test/joerg/ }",
            "smtputf8_enable": "yes",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": cert,
            "smtpd_tls_key_file": key,
            "smtpd_tls_loglevel": "1",
            **(main_extra or {}),
        }
        extra = ""
        if password is not None:
            sock = os.path.join(self.root, "dovecot", "postfix-auth")
            servers.Dovecot(self.root, extra=(
                "service auth {\n"
                f"  unix_listener {sock} {{\n    mode = 0666\n  }}\n"
                "}\n")).start()
            main_cf.update({
                "smtpd_sasl_auth_enable": "yes",
                "smtpd_sasl_type": "dovecot",
                "smtpd_sasl_path": sock,
                "smtpd_tls_auth_only": "yes",
                "mynetworks": "127.0.0.255/32",  # not us: only AUTH lets a recipient in
                "smtpd_recipient_restrictions": "permit_sasl_authenticated, reject",
            })
            auth = os.path.join(self.root, "relay-auth")
            with open(auth, "w") as f:
                f.write(f"{servers.LOCAL_USER}@{servers.LOCAL_DOMAIN} {password}\n")
            os.chmod(auth, 0o600)  # root's: the master reads it before it drops privileges
            extra = f"relayhost-auth {auth}\n"
        # Postfix sends its own notices (bounces, DSN) back through carteiro.
        self.server = Server(tls=True).prepare()
        self.postfix = servers.Postfix(self.root, relay_port=self.server.port, main_cf=main_cf)
        pki = test_pki()
        if by_mx:
            self.dns = DnsServer(os.path.join(self.root, "dns"), {
                "mx": [("remote.test", "mx1.remote.test", 10),
                       ("remote.test", "mx2.remote.test", 20)],
                "a": [("mx1.remote.test", "127.0.0.9"), ("mx2.remote.test", "127.0.0.1")],
            }).start()
            self.addCleanup(self.dns.stop)
            self.server.extra_config = (f"dns-server {self.dns.server}\n"
                                        f"outbound-port {self.postfix.port}\n")
        else:
            self.server.extra_config = (f"relayhost 127.0.0.1:{self.postfix.port}\n"
                                        f"relayhost-tls starttls\n"
                                        f"outbound-ca-file {pki['ca']}\n" + extra)
        self.server.write_config()
        self.postfix.start()
        self.server.start()
        self.maildir = os.path.join(self.postfix.mail, "remote.test", "user")

    def send(self, rcpts, subject):
        msg = message_8bit(SENDER, rcpts[0], subject)
        with self.server.submission() as s:
            s.login(SENDER, "secret")
            self.assertEqual(s.sendmail(SENDER, rcpts, msg), {})
        return msg

    def test_relay_delivers_8bit_message_intact(self):
        self.start()
        msg = self.send(["user@remote.test"], "to postfix")
        got = self.wait_maildir(self.maildir, 1)
        self.assertEqual(len(got), 1)
        head, body = split(got[0])
        self.assertEqual(body, split(msg)[1])
        # Postfix's Received field above ours: it names our EHLO and says ESMTPS.
        self.assertRegex(head, rb"Received: from mx\.example\.test \(localhost \[127\.0\.0\.1\]\)"
                               rb"\r\n\tby pf\.example\.org \(Postfix\) with ESMTPS id ")
        self.assertRegex(head, rb"\tby mx\.example\.test \(carteiro\) with ESMTPSA id ")
        self.assertRegex(head, rb"(?m)^Return-Path: <alice@example\.test>\r\n")
        self.wait_postfix_log(r"TLS connection established from localhost\[127\.0\.0\.1\]: "
                              r"TLSv1\.[23]")
        self.wait_postfix_log(r"to=<user@remote\.test>, .*status=sent \(delivered to maildir\)")
        self.server.wait_log(r"event=connected dest=\[relayhost\] .*tls=TLSv1\.[23] "
                             r".*verified=yes")
        self.server.wait_log(r"event=attempt to=<user@remote\.test> .*status=sent")
        self.server.wait_queue_empty()

    def test_backup_mx_after_the_first_refuses_connections(self):
        # RFC 5321 5.1: the MX hosts in preference order; the first refuses the connection,
        # the second (Postfix) takes the message with opportunistic STARTTLS (RFC 3207).
        self.start(by_mx=True)
        msg = self.send(["user@remote.test"], "by mx")
        got = self.wait_maildir(self.maildir, 1)
        self.assertEqual(split(got[0])[1], split(msg)[1])
        log = self.server.wait_log(r"event=attempt to=<user@remote\.test> relay=mx2\.remote\.test"
                                   r"\[127\.0\.0\.1\]:\d+ .*tls=unverified status=sent").string
        self.assertRegex(log, r"event=connect_failed dest=remote\.test relay=mx1\.remote\.test"
                              r"\[127\.0\.0\.9\]:\d+ error=\"connect to mx1\.remote\.test"
                              r"\[127\.0\.0\.9\]:\d+: Connection refused\"")
        self.assertRegex(log, r"event=connected dest=remote\.test relay=mx2\.remote\.test"
                              r"\[127\.0\.0\.1\]:\d+ tls=TLSv1\.[23] .*verified=no")
        self.wait_postfix_log(r"TLS connection established from localhost\[127\.0\.0\.1\]")
        self.server.wait_queue_empty()

    def test_recipient_refused_by_postfix_bounces_to_sender(self):
        self.start()
        self.send(["user@remote.test", "nobody@remote.test"], "one refused")
        self.assertEqual(len(self.wait_maildir(self.maildir, 1)), 1)
        self.wait_postfix_log(r"\w+: reject: RCPT from localhost\[127\.0\.0\.1\]: 550 5\.1\.1 "
                              r"<nobody@remote\.test>")
        head, body = self.only_notice()
        self.assertIn(b"Final-Recipient: rfc822; nobody@remote.test", body)
        self.assertIn(b"Status: 5.1.1", body)
        # The remote server's own words reach the sender (RFC 3464 Diagnostic-Code).
        self.assertRegex(body, rb"Diagnostic-Code: smtp; 550 5\.1\.1 <nobody@remote\.test>")
        self.server.wait_queue_empty()

    def test_our_connection_carries_several_messages(self):
        # carteiro's outbound client keeps its connection to the relayhost for the next
        # message: Postfix sees several transactions in one session.
        self.start()
        with self.server.submission() as s:
            s.login(SENDER, "secret")
            for i in range(10):
                s.sendmail(SENDER, ["user@remote.test"],
                           message_8bit(SENDER, "user@remote.test", f"reuse {i}")[:4000])
        self.wait_maildir(self.maildir, 10)
        self.server.wait_queue_empty()
        # Postfix logs each session's counts when we close it (after our idle wait).
        def mails_per_session():
            return [int(n) for n in re.findall(r"disconnect from localhost\[127\.0\.0\.1\] "
                                               r"ehlo=2 starttls=1 mail=(\d+)",
                                               self.postfix_log())]
        wait_for(lambda: sum(mails_per_session()) == 10, timeout=15)
        sessions = mails_per_session()
        self.assertEqual(sum(sessions), 10, self.postfix_log()[-3000:])
        self.assertGreater(max(sessions), 1, sessions)

    def test_smtputf8_recipient_at_postfix(self):
        # RFC 6531: a UTF-8 recipient goes out with SMTPUTF8 to a server that offers it.
        self.start()
        rcpt = "jörg@remote.test"
        msg = (f"From: <{SENDER}>\r\nTo: Jörg <{rcpt}>\r\nSubject: Olá\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "\r\nAté já.\r\n").encode("utf-8")
        with self.server.submission() as s:
            s.login(SENDER, "secret")
            self.assertEqual(s.sendmail(SENDER, [rcpt], msg, mail_options=["SMTPUTF8"]), {})
        got = self.wait_maildir(os.path.join(self.postfix.mail, "remote.test", "joerg"), 1)
        head, body = split(got[0])
        self.assertRegex(head, rb"\tby pf\.example\.org \(Postfix\) with UTF8SMTPS id ")
        self.assertIn("Delivered-To: jörg@remote.test\r\n".encode(), head)
        self.assertIn("Subject: Olá\r\n".encode(), head)
        self.assertEqual(body, "Até já.\r\n".encode())
        self.wait_postfix_log(r"to=<jörg@remote\.test>, .*status=sent \(delivered to maildir\)")

    def test_a_server_that_offers_only_the_basics(self):
        # Postfix hides PIPELINING, DSN, SMTPUTF8 and SIZE and refuses a client that
        # pipelines anyway (reject_unauth_pipelining): we wait for each reply. With
        # NOTIFY=SUCCESS and no DSN at the server, the delivery is reported as relayed (RFC
        # 3461 5.2.2); a message that needs SMTPUTF8 bounces (RFC 6531 3.4: 5.6.7).
        self.start(main_extra={
            "smtpd_discard_ehlo_keywords": "pipelining, dsn, smtputf8, size, silent-discard",
            "smtpd_data_restrictions": "reject_unauth_pipelining",
            "smtpd_client_restrictions": "sleep 1, reject_unauth_pipelining",
        })
        with self.server.submission() as s:
            s.login(SENDER, "secret")
            self.assertEqual(s.sendmail(SENDER, ["user@remote.test"],
                                        message_8bit(SENDER, "user@remote.test", "basics")[:2000],
                                        rcpt_options=["NOTIFY=SUCCESS,FAILURE"]), {})
        got = self.wait_maildir(self.maildir, 1)
        self.assertIn(b"Subject: basics", got[0])
        report = self.wait_mail(SENDER)[0]
        self.assertRegex(report, rb"Final-Recipient: rfc822; user@remote\.test\r?\n"
                                 rb"Action: relayed\r?\nStatus: 2\.0\.0\r?\n"
                                 rb"Remote-MTA: dns; 127\.0\.0\.1\r?\n"
                                 rb"Diagnostic-Code: smtp; 250 2\.0\.0 Ok: queued as ")
        with self.server.submission() as s:
            s.login(SENDER, "secret")
            s.sendmail(SENDER, ["jörg@remote.test"], b"Subject: utf8\r\n\r\nx\r\n",
                       mail_options=["SMTPUTF8"])
        bounce = self.wait_mail(SENDER, count=2)[1]
        self.assertRegex(bounce, "Final-Recipient: utf-8; jörg@remote.test\r?\nAction: failed"
                                 "\r?\nStatus: 5\\.6\\.7".encode())
        self.server.wait_queue_empty()
        self.assertNotRegex(self.postfix_log(), r"improper command pipelining|reject:")
        self.assertEqual(len(maildir_messages(self.maildir)), 1)

    def test_dsn_success_notice_comes_back_from_postfix(self):
        # RFC 3461: NOTIFY, ORCPT, ENVID and RET go on to a next hop that offers DSN, which
        # then reports the delivery itself; we send no "relayed" notice of our own.
        self.start()
        msg = message_8bit(SENDER, "user@remote.test", "dsn please")
        with self.server.submission() as s:
            s.login(SENDER, "secret")
            self.assertEqual(s.sendmail(SENDER, ["user@remote.test"], msg,
                                        mail_options=["RET=HDRS", "ENVID=carteiro-env-42"],
                                        rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                                                      "ORCPT=rfc822;user@remote.test"]), {})
        self.wait_maildir(self.maildir, 1)
        self.wait_postfix_log(r"sender delivery status notification: \w+")
        dsn = self.wait_mail(SENDER, timeout=30)
        self.assertEqual(len(dsn), 1)
        body = check_success_report(self, dsn[0], "pf.example.org", "carteiro-env-42",
                                    "rfc822;user@remote.test")
        # RET=HDRS: the headers came back, not the 1 MiB body.
        self.assertIn(b"Subject: dsn please", body)
        self.assertNotIn(b"line 012999", body)
        self.server.wait_queue_empty()
        self.assertEqual(len(self.server.mailbox(SENDER)), 1)

    def test_smarthost_auth_through_dovecot_sasl(self):
        self.start(password=servers.PASSWORD)
        msg = self.send(["user@remote.test"], "with auth")
        got = self.wait_maildir(self.maildir, 1)
        self.assertEqual(split(got[0])[1], split(msg)[1])
        self.wait_postfix_log(r"client=localhost\[127\.0\.0\.1\], sasl_method=(PLAIN|LOGIN), "
                              r"sasl_username=bench@example\.test")
        self.wait_postfix_log(r"to=<user@remote\.test>, .*status=sent \(delivered to maildir\)")
        self.server.wait_queue_empty()
        self.assertNotIn(servers.PASSWORD, self.server.log())

    def test_smarthost_wrong_password_keeps_message_queued(self):
        self.start(password="not-the-password")
        self.send(["user@remote.test"], "wrong password")
        self.wait_postfix_log(r"warning: localhost\[127\.0\.0\.1\]: SASL (PLAIN|LOGIN) "
                              r"authentication failed")
        self.server.wait_log(r"event=deferred attempts=1 .*535", timeout=30)
        self.assertEqual(maildir_messages(self.maildir), [])
        self.assertEqual(len(self.server.queue_files()), 1)
        self.assertEqual(self.server.mailbox(SENDER), [])  # deferred, not bounced
        self.assertNotIn("not-the-password", self.server.log())


if __name__ == "__main__":
    unittest.main()
