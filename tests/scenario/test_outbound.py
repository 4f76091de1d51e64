"""Outbound delivery: MX lookup and fallback, retries, bounces (RFC 3464), relayhost, hostile
servers, crash safety and queue control, against a real DNS server (dnsmasq) and real
receiving servers (aiosmtpd)."""
import itertools
import os
import re
import shutil
import tempfile
import socket
import time
import unittest

from harness import message, wait_for, slow
from outbound_fixture import OutboundWorld, make_certs, parse, dsn_fields

SENDER = "alice@example.test"  # a local user: bounces land in her Maildir

BASE_RECORDS = {
    "mx": [("example.net", "mx1.example.net", 10), ("example.net", "mx2.example.net", 20),
           ("down.example", "mx1.down.example", 10), ("down.example", "mx2.down.example", 20)],
    "a": [("mx1.example.net", "127.0.0.2"), ("mx2.example.net", "127.0.0.3"),
          ("mx1.down.example", "127.0.0.4"), ("mx2.down.example", "127.0.0.5"),
          ("nomx.example", "127.0.0.6"), ("relay.example.net", "127.0.0.2")],
    "aaaa": [("mx.v6.example", "::1")],
    "nullmx": ["nomail.example"],
}
BASE_RECORDS["mx"].append(("v6.example", "mx.v6.example", 10))
BASE_RECORDS["a"].append(("mx.v6.example", "127.0.0.9"))  # nothing listens there


def send(srv, rcpts, sender=SENDER, subject="outbound", body="Hello there.\r\n", **kw):
    with srv.smtp() as s:
        s.sendmail(sender, rcpts, message(subject=subject, sender=sender, to=rcpts[0], body=body),
                   **kw)


class OutboundTest(unittest.TestCase):
    extra = ""

    def world(self, extra="", records=BASE_RECORDS, **kw):
        return OutboundWorld(self, records, extra_config=self.extra + extra, **kw)

    def wait_bounce(self, srv, address=SENDER, count=1, timeout=30):
        msgs = srv.wait_mail(address, count=count, timeout=timeout)
        return parse(msgs[-1].replace(b"\n", b"\r\n"))

    def check_report(self, report, recipients, action="failed", status_prefix="5."):
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertEqual(report.get_param("report-type"), "delivery-status")
        self.assertEqual(report["Auto-Submitted"], "auto-replied")
        self.assertTrue(report["From"].addresses[0].username.upper() == "MAILER-DAEMON")
        parts = list(report.iter_parts())
        self.assertEqual(parts[0].get_content_type(), "text/plain")
        self.assertEqual(parts[1].get_content_type(), "message/delivery-status")
        per_msg, per_rcpt = dsn_fields(report)
        self.assertIn("Reporting-MTA", per_msg)
        finals = [b["Final-Recipient"].split(";")[1].strip().lower() for b in per_rcpt]
        self.assertEqual(sorted(finals), sorted(r.lower() for r in recipients))
        for b in per_rcpt:
            self.assertEqual(b["Action"], action)
            self.assertTrue(b["Status"].startswith(status_prefix), b["Status"])
        return per_msg, per_rcpt


class TestMx(OutboundTest):
    def test_preferred_mx_gets_the_message(self):
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        mx2 = w.peer("127.0.0.3", "mx2.example.net")
        w.start()
        send(w.server, ["bob@example.net"], subject="to mx1")
        msgs = mx1.wait_messages(1)
        env, data = msgs[0]
        self.assertEqual(env["rcpt_tos"], ["bob@example.net"])
        self.assertEqual(env["mail_from"], SENDER)
        self.assertIn(b"Subject: to mx1", data)
        self.assertIn(b"Received: from", data)
        w.server.wait_queue_empty()
        self.assertEqual(mx2.messages(), [])
        log = w.server.log()
        self.assertRegex(log, r"event=attempt to=<bob@example.net> relay=mx1.example.net\[127.0.0.2\]:\d+ .*status=sent")

    def test_backup_mx_when_primary_is_down(self):
        w = self.world()
        mx2 = w.peer("127.0.0.5", "mx2.down.example")  # nothing listens on mx1 (127.0.0.4)
        w.start()
        send(w.server, ["carol@down.example"])
        env, _ = mx2.wait_messages(1)[0]
        self.assertEqual(env["rcpt_tos"], ["carol@down.example"])
        w.server.wait_queue_empty()
        self.assertIn("event=connect_failed dest=down.example relay=mx1.down.example[127.0.0.4]",
                      w.server.log())

    def test_ipv6_and_ipv4_addresses_both_tried(self):
        w = self.world()
        peer = w.peer("::1", "mx.v6.example")
        w.start()
        send(w.server, ["ivy@v6.example"])
        env, _ = peer.wait_messages(1)[0]
        self.assertEqual(env["rcpt_tos"], ["ivy@v6.example"])
        w.server.wait_queue_empty()
        self.assertRegex(w.server.log(), r"relay=mx\.v6\.example\[::1\]:\d+ .*status=sent")

    def test_no_mx_uses_the_a_record(self):
        w = self.world()
        peer = w.peer("127.0.0.6", "nomx.example")
        w.start()
        send(w.server, ["dave@nomx.example"])
        env, _ = peer.wait_messages(1)[0]
        self.assertEqual(env["rcpt_tos"], ["dave@nomx.example"])
        w.server.wait_queue_empty()

    def test_null_mx_bounces_at_once(self):
        w = self.world().start()
        send(w.server, ["erin@nomail.example"], subject="null mx")
        report = self.wait_bounce(w.server)
        _, rcpts = self.check_report(report, ["erin@nomail.example"])
        self.assertEqual(rcpts[0]["Status"], "5.1.10")
        w.server.wait_queue_empty()
        parts = list(report.iter_parts())
        self.assertIn("null MX", parts[0].get_content())
        self.assertIn(b"Subject: null mx", parts[2].as_bytes())

    def test_unknown_domain_bounces(self):
        w = self.world().start()
        send(w.server, ["frank@nxdomain.example"])
        report = self.wait_bounce(w.server)
        _, rcpts = self.check_report(report, ["frank@nxdomain.example"])
        self.assertEqual(rcpts[0]["Status"], "5.1.2")

    def test_many_recipients_one_transaction(self):
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        w.start()
        rcpts = [f"user{i}@example.net" for i in range(30)]
        send(w.server, rcpts)
        msgs = mx1.wait_messages(1)
        w.server.wait_queue_empty()
        self.assertEqual(len(mx1.messages()), 1)
        self.assertEqual(sorted(msgs[0][0]["rcpt_tos"]), sorted(rcpts))

    def test_connection_reused_for_several_messages(self):
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        w.start()
        with w.server.smtp() as s:
            for i in range(5):
                s.sendmail(SENDER, [f"r{i}@example.net"], message(subject=f"m{i}", sender=SENDER))
                mx1.wait_messages(i + 1)  # the connection is idle now, and kept a moment
        w.server.wait_queue_empty()
        self.assertEqual(w.server.log().count("event=connected dest=example.net"), 1)

    def test_destination_concurrency_limits_connections(self):
        w = self.world(extra="destination-concurrency 2\n")
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        w.start()
        with w.server.smtp() as s:
            for i in range(12):
                s.sendmail(SENDER, [f"c{i}@example.net"], message(subject=f"c{i}", sender=SENDER))
        mx1.wait_messages(12)
        w.server.wait_queue_empty()
        self.assertLessEqual(w.server.log().count("event=connected dest=example.net"), 2)

    def test_waiting_deliveries_hold_no_open_files(self):
        """Regression: each delivery waiting for a busy destination kept its queue file open,
        so a big backlog ran the queue manager out of descriptors."""
        def script(c):
            time.sleep(30)  # accepts, never greets: the one connection stays busy
        w = self.world(extra="destination-concurrency 1\noutbound-command-timeout 60s\n")
        w.scripted_peer("127.0.0.2", script)
        w.start()
        base = w.server.fd_count()
        n = 300
        with w.server.smtp() as s:
            for i in range(n):
                s.sendmail(SENDER, [f"w{i}@example.net"], message(subject=f"w{i}", sender=SENDER))
        w.server.wait_queue_list(rf"(?m)^-- {n} messages", timeout=30)
        self.assertLess(w.server.fd_count() - base, 50)

    def test_mixed_local_and_remote_recipients(self):
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        w.start()
        send(w.server, ["bob@example.net", "bob@example.test"], subject="mixed")
        mx1.wait_messages(1)
        w.server.wait_mail("bob@example.test")
        w.server.wait_queue_empty()

    def test_opportunistic_starttls_to_mx(self):
        d = tempfile.mkdtemp(prefix="carteiro-certs-")
        self.addCleanup(shutil.rmtree, d, True)
        certs = make_certs(d)  # signed by a CA carteiro does not know: not verified, still used
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net", tls_cert=certs["cert"], tls_key=certs["key"])
        w.start()
        send(w.server, ["bob@example.net"])
        env, _ = mx1.wait_messages(1)[0]
        self.assertTrue(env["tls"])
        w.server.wait_queue_empty()
        log = w.server.log()
        self.assertRegex(log, r"event=connected dest=example.net .*tls=TLSv1\.3 cipher=\S+ verified=no")
        self.assertRegex(log, r"event=attempt to=<bob@example.net> .*tls=unverified status=sent")

    def test_dot_stuffing_and_bytes_preserved(self):
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        w.start()
        body = "line one\r\n.starts with a dot\r\n..two dots\r\n.\r\nend\r\n"
        send(w.server, ["bob@example.net"], body=body)
        _, data = mx1.wait_messages(1)[0]
        self.assertIn(body.encode(), data)


class TestRetries(OutboundTest):
    def test_4xx_then_success_on_retry(self):
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net", mail_fail=2)
        w.start()
        send(w.server, ["bob@example.net"])
        mx1.wait_messages(1, timeout=30)
        w.server.wait_queue_empty()
        log = w.server.log()
        self.assertGreaterEqual(len(re.findall(r"event=attempt to=<bob@example.net> .*status=deferred", log)), 2)
        self.assertIn("451", log)

    def test_every_deferral_names_its_reason(self):
        """Regression: a recipient no part took (remote delivery unavailable here: the CA
        file cannot be loaded; out of memory elsewhere) was deferred with error="" ."""
        w = self.world(extra="outbound-ca-file /nonexistent/ca.pem\nretry-schedule 1s\n")
        w.start()
        send(w.server, ["bob@example.net", "alice@example.test"])
        w.server.wait_mail("alice@example.test")
        line = w.server.wait_log(r"event=deferred attempts=\d+ pending=1 [^\n]*").group(0)
        self.assertRegex(line, r'error="not attempted: remote delivery unavailable: [^"]+"')
        w.server.wait_log(r"event=deferred attempts=2 ")
        self.assertNotIn('error=""', w.server.log())

    def test_5xx_recipient_bounces_with_report(self):
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net", rcpt=["nobody@example.net=550"])
        w.start()
        send(w.server, ["nobody@example.net", "bob@example.net"], subject="partly refused")
        env, _ = mx1.wait_messages(1)[0]
        self.assertEqual(env["rcpt_tos"], ["bob@example.net"])
        report = self.wait_bounce(w.server)
        per_msg, rcpts = self.check_report(report, ["nobody@example.net"])
        self.assertEqual(rcpts[0]["Status"], "5.1.1")
        self.assertIn("mx1.example.net", rcpts[0]["Remote-MTA"])
        self.assertIn("550", rcpts[0]["Diagnostic-Code"])
        self.assertEqual(report["To"].addresses[0].addr_spec, SENDER)
        w.server.wait_queue_empty()
        # The bounce came from the null sender.
        self.assertIn(b"Return-Path: <>", w.server.mailbox(SENDER)[0])

    def test_bounce_carries_dsn_parameters_and_full_message(self):
        w = self.world().start()
        with w.server.smtp() as s:
            s.ehlo()
            s.sendmail(SENDER, ["ghost@nomail.example"],
                       message(subject="full return", sender=SENDER, body="the body\r\n"),
                       mail_options=["RET=FULL", "ENVID=env+2Bid42"],
                       rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;Ghost@nomail.example"])
        report = self.wait_bounce(w.server)
        per_msg, rcpts = self.check_report(report, ["ghost@nomail.example"])
        self.assertEqual(per_msg["Original-Envelope-Id"], "env+2Bid42")
        self.assertIn("Ghost@nomail.example", rcpts[0]["Original-Recipient"])
        returned = list(report.iter_parts())[2]
        self.assertEqual(returned.get_content_type(), "message/rfc822")
        self.assertIn(b"the body", returned.as_bytes())

    def test_message_expires_after_queue_lifetime(self):
        w = self.world(extra="queue-lifetime 4s\n")
        w.peer("127.0.0.2", "mx1.example.net", mail_fail=1000)
        w.peer("127.0.0.3", "mx2.example.net", mail_fail=1000)
        w.start()
        send(w.server, ["bob@example.net"], subject="will expire")
        report = self.wait_bounce(w.server, timeout=40)
        _, rcpts = self.check_report(report, ["bob@example.net"], status_prefix="4.4.7")
        self.assertIn("451", rcpts[0].get("Diagnostic-Code", "") + list(report.iter_parts())[0].get_content())
        w.server.wait_queue_empty()

    def test_bounce_to_a_remote_sender_goes_out_from_null(self):
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        w.start()
        send(w.server, ["ghost@nomail.example"], sender="writer@example.net", subject="far sender")
        env, data = mx1.wait_messages(1)[0]
        self.assertIn(env["mail_from"], ("", "<>"))  # aiosmtpd keeps the brackets of <>
        self.assertEqual(env["rcpt_tos"], ["writer@example.net"])
        self.check_report(parse(data), ["ghost@nomail.example"])
        w.server.wait_queue_empty()

    def test_delay_warning_then_still_retried(self):
        w = self.world(extra="delay-warning 2s\n")
        mx1 = w.peer("127.0.0.2", "mx1.example.net", mail_fail=6)
        w.peer("127.0.0.3", "mx2.example.net", mail_fail=1000)
        w.start()
        send(w.server, ["slow@example.net"], subject="delayed")
        report = self.wait_bounce(w.server, timeout=30)
        self.assertIn("Delayed", report["Subject"])
        _, rcpts = self.check_report(report, ["slow@example.net"], action="delayed",
                                     status_prefix="4.")
        self.assertIn("Will-Retry-Until", rcpts[0])
        mx1.wait_messages(1, timeout=40)  # delivered in the end
        w.server.wait_queue_empty()
        self.assertEqual(len(w.server.mailbox(SENDER)), 1)  # one notice only

    def test_delay_notice_is_sent_once_even_across_a_restart(self):
        w = self.world(extra="delay-warning 1s\n")
        w.peer("127.0.0.2", "mx1.example.net", mail_fail=100000)
        w.peer("127.0.0.3", "mx2.example.net", mail_fail=100000)
        w.start()
        send(w.server, ["late@example.net"], subject="late")
        self.wait_bounce(w.server, timeout=30)
        w.server.wait_queue_list(r"late@example\.net \(remote, pending, sender told of the delay\)")
        w.server.stop()
        w.server.start()
        w.server.wait_log(r"event=started", timeout=10)
        time.sleep(4)  # several retries at 1s
        self.assertGreaterEqual(len(re.findall(r"to=<late@example.net> .*status=deferred",
                                               w.server.log())), 3)
        self.assertEqual(len(w.server.mailbox(SENDER)), 1)

    def test_bounce_of_a_bounce_goes_to_postmaster(self):
        w = self.world().start()
        # A message from <> that cannot be delivered: nobody to tell but the postmaster.
        with w.server.smtp() as s:
            s.sendmail("", ["ghost@nomail.example"], message(subject="from null", sender="x@y"))
        msgs = w.server.wait_mail("demo@example.test", timeout=30)  # postmaster -> demo
        report = parse(msgs[-1].replace(b"\n", b"\r\n"))
        self.check_report(report, ["ghost@nomail.example"])
        w.server.wait_queue_empty()

    def test_smtputf8_message_to_a_server_without_it_bounces(self):
        def script(c):
            f = c.makefile("rb")
            c.sendall(b"220 ascii.test ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line[:4].upper()
                if cmd == b"EHLO":
                    c.sendall(b"250-ascii.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
                elif cmd == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")
        w = self.world()
        w.scripted_peer("127.0.0.2", script)
        w.start()
        with w.server.smtp() as s:
            s.ehlo()
            s.sendmail(SENDER, ["jos\u00e9@example.net"],
                       message(subject="utf8", sender=SENDER).encode(),
                       mail_options=["SMTPUTF8"])
        report = self.wait_bounce(w.server)
        parts = list(report.iter_parts())
        self.assertEqual(parts[1].get_content_type(), "message/global-delivery-status")
        self.assertIn("5.6.7", parts[1].as_string())
        self.assertIn("SMTPUTF8", parts[0].get_content())
        w.server.wait_queue_empty()

    def test_notify_never_suppresses_the_bounce(self):
        w = self.world().start()
        with w.server.smtp() as s:
            s.ehlo()
            s.sendmail(SENDER, ["ghost@nomail.example"], message(subject="quiet", sender=SENDER),
                       rcpt_options=["NOTIFY=NEVER"])
        w.server.wait_queue_empty(timeout=20)
        self.assertEqual(w.server.mailbox(SENDER), [])
        self.assertIn("event=attempt to=<ghost@nomail.example>", w.server.log())


class TestSuccessReports(OutboundTest):
    """NOTIFY=SUCCESS (RFC 3461): a report when the message reaches a mailbox here, when it
    is relayed to a server that does not offer DSN (aiosmtpd), and one "expanded" report for
    a multi-recipient alias; none when not asked."""

    def send_notify(self, server, rcpts, notify="SUCCESS,FAILURE", subject="report me"):
        with server.smtp() as s:
            s.ehlo()
            self.assertIn("dsn", s.esmtp_features)
            s.sendmail(SENDER, rcpts, message(subject=subject, sender=SENDER,
                                              body="the body\r\n"),
                       mail_options=["RET=FULL", "ENVID=env42"],
                       rcpt_options=[f"NOTIFY={notify}"])

    def success_report(self, report, recipients, action):
        self.assertEqual(report["Subject"], "Successful Mail Delivery Report")
        per_msg, rcpts = self.check_report(report, recipients, action=action,
                                           status_prefix="2.")
        self.assertEqual(per_msg["Original-Envelope-Id"], "env42")
        # RET=FULL is about failures: a success report returns the header section only.
        returned = list(report.iter_parts())[2]
        self.assertEqual(returned.get_content_type(), "text/rfc822-headers")
        self.assertIn(b"Subject: report me", returned.as_bytes())
        self.assertNotIn(b"the body", returned.as_bytes())
        return rcpts

    def test_relayed_to_a_server_without_dsn(self):
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        w.start()
        self.send_notify(w.server, ["bob@example.net"])
        env, _ = mx1.wait_messages(1)[0]
        report = self.wait_bounce(w.server)
        rcpts = self.success_report(report, ["bob@example.net"], "relayed")
        self.assertEqual(rcpts[0]["Remote-MTA"], "dns; mx1.example.net")
        self.assertTrue(rcpts[0]["Diagnostic-Code"].startswith("smtp; 250"), rcpts[0])
        self.assertRegex(list(report.iter_parts())[0].get_content(),
                         r"<bob@example\.net>: host mx1\.example\.net said: 250")
        w.server.wait_queue_empty()
        w.server.wait_log(r"event=success_report dsn_id=\w+ to=<alice@example\.test> "
                          r"recipients=1")
        self.assertEqual(len(w.server.mailbox(SENDER)), 1)

    def test_delivered_into_a_mailbox_and_only_where_asked(self):
        w = self.world().start()
        with w.server.smtp() as s:
            s.ehlo()
            s.mail(SENDER, ["RET=FULL", "ENVID=env42"])
            self.assertEqual(s.rcpt("demo@example.test", ["NOTIFY=SUCCESS"])[0], 250)
            self.assertEqual(s.rcpt("bob@example.test")[0], 250)  # no NOTIFY: no report
            self.assertEqual(s.rcpt("carol@other.test", ["NOTIFY=FAILURE"])[0], 250)
            self.assertEqual(s.data(message(subject="report me", sender=SENDER,
                                            body="the body\r\n"))[0], 250)
        report = self.wait_bounce(w.server)
        self.success_report(report, ["demo@example.test"], "delivered")
        self.assertIn("<demo@example.test>: delivered to the mailbox",
                      list(report.iter_parts())[0].get_content())
        w.server.wait_queue_empty()
        for r in ("demo@example.test", "bob@example.test", "carol@other.test"):
            self.assertEqual(len(w.server.mailbox(r)), 1, r)
        time.sleep(0.5)
        self.assertEqual(len(w.server.mailbox(SENDER)), 1)

    def test_multi_recipient_alias_is_reported_expanded_once(self):
        # team@example.test -> alice, bob (the harness's aliases): one "expanded" report for
        # the alias; the members' delivery is not reported (RFC 3461 5.2.7, as Postfix).
        w = self.world().start()
        self.send_notify(w.server, ["team@example.test"])
        w.server.wait_mail("bob@example.test")
        w.server.wait_queue_empty()
        msgs = w.server.wait_mail(SENDER, count=2)  # the message itself, and the report
        reports = [m for m in msgs if b"Successful Mail Delivery Report" in m]
        self.assertEqual(len(reports), 1)
        rcpts = self.success_report(parse(reports[0].replace(b"\n", b"\r\n")),
                                    ["team@example.test"], "expanded")
        self.assertNotIn("Remote-MTA", rcpts[0])
        time.sleep(0.5)
        self.assertEqual(len(w.server.mailbox(SENDER)), 2)

    def test_no_report_without_notify_success(self):
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        w.start()
        self.send_notify(w.server, ["bob@example.net", "demo@example.test"], notify="FAILURE")
        mx1.wait_messages(1)
        w.server.wait_mail("demo@example.test")
        w.server.wait_queue_empty()
        time.sleep(0.5)
        self.assertEqual(w.server.mailbox(SENDER), [])


class TestRelayhost(OutboundTest):
    def cert_dir(self):
        self.tmp = tempfile.mkdtemp(prefix="carteiro-certs-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        return self.tmp

    def run_relay(self, tls, implicit):
        d = self.cert_dir()
        certs = make_certs(d)
        auth = os.path.join(d, "relay-auth")
        with open(auth, "w") as f:
            f.write("# user and password\nsmtpuser s3cret pass\n")
        os.chmod(auth, 0o600)  # root's: the master reads it before it drops privileges
        w = self.world()
        relay_port = w.port
        w.server.extra_config += (f"relayhost relay.example.net:{relay_port}\nrelayhost-tls {tls}\n"
                                  f"relayhost-auth {auth}\noutbound-ca-file {certs['ca']}\n")
        opts = dict(tls_cert=certs["cert"], tls_key=certs["key"], auth="smtpuser:s3cret pass")
        if implicit:
            opts["implicit_tls"] = True
        else:
            opts["require_tls"] = True
        relay = w.peer("127.0.0.2", "relay.example.net", **opts)
        w.start()
        send(w.server, ["someone@far.example", "other@example.net"], subject="via relay")
        env, data = relay.wait_messages(1)[0]
        if not implicit:  # aiosmtpd only marks STARTTLS sessions; our log shows both
            self.assertTrue(env["tls"])
        self.assertTrue(env["auth"])
        self.assertEqual(sorted(env["rcpt_tos"]), ["other@example.net", "someone@far.example"])
        w.server.wait_queue_empty()
        log = w.server.log()
        self.assertRegex(log, r"event=connected dest=\[relayhost\] .*tls=TLSv1\.[23] .*verified=yes")
        self.assertNotIn("s3cret", log)
        return w

    def test_relayhost_starttls_auth(self):
        self.run_relay("starttls", implicit=False)

    def test_relayhost_implicit_tls_auth(self):
        self.run_relay("implicit", implicit=True)

    def test_relayhost_wrong_password_defers(self):
        d = self.cert_dir()
        certs = make_certs(d)
        auth = os.path.join(d, "relay-auth")
        with open(auth, "w") as f:
            f.write("smtpuser wrong\n")
        w = self.world()
        w.server.extra_config += (f"relayhost relay.example.net:{w.port}\n"
                                  f"relayhost-auth {auth}\noutbound-ca-file {certs['ca']}\n")
        relay = w.peer("127.0.0.2", "relay.example.net", tls_cert=certs["cert"],
                       tls_key=certs["key"], auth="smtpuser:right", require_tls=True)
        w.start()
        send(w.server, ["someone@far.example"])
        w.server.wait_log(r"status=deferred", timeout=20)
        self.assertEqual(relay.messages(), [])
        self.assertEqual(len(w.server.queue_files()), 1)


class TestHostile(OutboundTest):
    def hostile(self, script, extra=""):
        w = self.world(extra=extra)
        w.scripted_peer("127.0.0.2", script)
        w.scripted_peer("127.0.0.3", script)
        w.start()
        send(w.server, ["bob@example.net"])
        w.server.wait_log(r"event=attempt to=<bob@example.net> .*status=deferred", timeout=40)
        # The server still works for others.
        send(w.server, ["bob@example.test"])
        w.server.wait_mail("bob@example.test")
        # The local copy's queue file goes once its delivery is recorded; the remote one stays.
        wait_for(lambda: len(w.server.queue_files()) == 1, timeout=10)
        self.assertEqual(len(w.server.queue_files()), 1)
        return w

    def test_garbage_greeting(self):
        def script(c):
            c.sendall(b"\x00\xff garbage that is not SMTP\r\n")
            time.sleep(2)
        self.hostile(script)

    def test_overlong_reply_line(self):
        def script(c):
            c.sendall(b"220 " + b"x" * 100000 + b"\r\n")
            time.sleep(2)
        self.hostile(script)

    def test_endless_multiline_reply(self):
        def script(c):
            c.sendall(b"220 hi\r\n")
            c.recv(1000)
            try:
                for _ in range(200000):
                    c.sendall(b"250-more\r\n")
            except OSError:
                pass
        self.hostile(script)

    def test_reply_without_crlf(self):
        def script(c):
            c.sendall(b"220 hello there with no line end")
            time.sleep(8)
        self.hostile(script)

    def test_stall_after_354(self):
        def script(c):
            f = c.makefile("rb")
            c.sendall(b"220 stall.test ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line[:4].upper()
                if cmd in (b"EHLO", b"HELO"):
                    c.sendall(b"250 stall.test\r\n")
                elif cmd == b"DATA":
                    c.sendall(b"354 go on\r\n")
                    time.sleep(10)  # never answers the final dot
                    return
                else:
                    c.sendall(b"250 ok\r\n")
        self.hostile(script)

    def test_reply_one_byte_a_second_forever(self):
        """Every byte restarts no idle timer: the wait for a whole reply has its deadline
        (outbound-command-timeout 3s here), which fires although bytes keep coming."""
        def script(c):
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.sendall(b"220 slow.test ESMTP\r\n")
            c.recv(1000)
            for b in itertools.cycle(b"250-this line goes on and on "):
                c.sendall(bytes([b]))
                time.sleep(1)
        t0 = time.monotonic()
        w = self.hostile(script, extra="outbound-command-timeout 3s\n")
        w.server.wait_log(r"event=attempt to=<bob@example.net> .*status=deferred .*"
                          r"(timed out|timeout)", timeout=5)
        # Two MX hosts, each cut off after about 3 s (and well before 30 s of trickling).
        self.assertLess(time.monotonic() - t0, 25)

    def test_accepts_but_never_greets(self):
        """A server that accepts the connection and says nothing: the greeting wait times
        out (outbound-command-timeout), the message is deferred, the server is not stuck."""
        def script(c):
            c.recv(1000)  # nothing is sent: carteiro must not send first either
            time.sleep(20)
        t0 = time.monotonic()
        w = self.hostile(script, extra="outbound-command-timeout 2s\n")
        self.assertLess(time.monotonic() - t0, 20)
        w.server.wait_log(r"event=attempt to=<bob@example.net> .*status=deferred .*"
                          r"(timed out|timeout)", timeout=5)


class TestCrash(OutboundTest):
    @slow
    def test_kill9_during_delivery_loses_nothing(self):
        w = self.world()
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        w.start()
        n = 40
        with w.server.smtp() as s:
            for i in range(n):
                s.sendmail(SENDER, [f"k{i}@example.net"], message(subject=f"kill {i}", sender=SENDER))
        wait_for(lambda: len(mx1.messages()) >= 3, timeout=20)
        w.server.kill9()
        w.server.start()
        wait_for(lambda: not w.server.queue_files(), timeout=40)
        w.server.wait_queue_empty(timeout=5)
        got = set()
        for env, _ in mx1.messages():
            got.update(env["rcpt_tos"])
        self.assertEqual(got, {f"k{i}@example.net" for i in range(n)})


class TestQueueControl(OutboundTest):
    def control(self, w, *args):
        p = w.server.carteiro("queue", *args, "-c", w.server.config_path)
        return p

    def test_list_show_hold_release_flush_delete_bounce(self):
        w = self.world(extra="retry-schedule 1h\n")
        w.start()  # no peer: example.net is down, messages wait an hour
        for i in range(3):
            send(w.server, [f"q{i}@example.net"], subject=f"queued {i}")
        w.server.wait_log(r"event=deferred .*retry_in", timeout=20)
        wait_for(lambda: self.control(w, "list").stdout.count("next attempt in") == 3, timeout=20)
        out = self.control(w, "list").stdout
        ids = re.findall(r"^([0-9A-Z]{12}) ", out, re.M)
        self.assertEqual(len(ids), 3, out)
        self.assertRegex(out, r"last error: .*Connection refused")
        self.assertRegex(out, r"next attempt in (\d+m\d\ds|1h0\dm) \(1 so far\)")

        show = self.control(w, "show", ids[0])
        self.assertEqual(show.returncode, 0, show.stderr)
        self.assertIn("headers:", show.stdout)
        self.assertRegex(show.stdout, r"history \(last 1 attempt\):\n  \d{4}-\d\d-\d\d [\d:]+ "
                                      r"to=<q0@example.net> relay=none status=deferred reply=")
        self.assertIn("Subject: queued", show.stdout)

        # hold: out of the queue; release: back in.
        self.assertEqual(self.control(w, "hold", ids[0]).returncode, 0)
        wait_for(lambda: ids[0] not in w.server.queue_files(), timeout=10)
        self.assertTrue(os.path.exists(os.path.join(w.server.dir, "spool", "hold", ids[0])))
        self.assertEqual(self.control(w, "release", ids[0]).returncode, 0)
        wait_for(lambda: ids[0] in self.control(w, "list").stdout, timeout=10)

        # delete
        self.assertEqual(self.control(w, "delete", ids[1]).returncode, 0)
        wait_for(lambda: ids[1] not in w.server.queue_files(), timeout=10)

        # bounce: returned to the sender now
        self.assertEqual(self.control(w, "bounce", ids[2]).returncode, 0)
        report = self.wait_bounce(w.server)
        self.check_report(report, ["q2@example.net"])

        # flush: a peer is up now, the held-and-released message goes out at once
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        self.assertEqual(self.control(w, "flush").returncode, 0)
        mx1.wait_messages(1, timeout=20)
        w.server.wait_queue_empty()

        bad = self.control(w, "show", "ZZZZZZZZZZZZ")
        self.assertNotEqual(bad.returncode, 0)


if __name__ == "__main__":
    unittest.main()
