"""Sender authentication of inbound mail against the real daemon, with dnsmasq serving the SPF,
DKIM and DMARC records: Authentication-Results and Received-SPF on delivered mail (above our
Received header), SPF pass/fail/softfail, spf-policy reject-fail at MAIL (550 5.7.23), a DKIM
signature by python3-dkim verified, DMARC pass, p=reject refused at the end of DATA (550 5.7.1)
and p=quarantine tagged, lookups that time out failing open (temperror), relay clients not
checked; and DKIM signing of outgoing mail that python3-dkim verifies."""
import os
import re
import shutil
import tempfile
import unittest

import dkim

from harness import PASSWORD, Raw
from policy_fixture import DEMO, PolicyAssertions, PolicyWorld, wait_for
import test_dkim_interop as interop
from outbound_fixture import OutboundWorld
from test_outbound import BASE_RECORDS, send as outbound_send

GOOD = "127.0.0.2"   # example.org's SPF permits it
BAD = "127.0.0.3"    # nobody's
RELAY = "127.0.0.6"  # relay-network


def txt_strings(text):
    """A TXT record of several 255-byte strings (a DKIM key is longer than one)."""
    return [text[i:i + 255] for i in range(0, len(text), 255)]


def make_records():
    interop.make_keys()
    rsa = interop.KEYS["rsa"]
    return {"txt": [
        ("example.org", "v=spf1 ip4:127.0.0.2 -all"),
        ("soft.example", "v=spf1 ip4:127.0.0.2 ~all"),
        ("reject.example", "v=spf1 ip4:127.0.0.2 -all"),
        ("quar.example", "v=spf1 ip4:127.0.0.2 -all"),
        ("_dmarc.example.org", "v=DMARC1; p=reject"),
        ("_dmarc.reject.example", "v=DMARC1; p=reject; adkim=s"),
        ("_dmarc.quar.example", "v=DMARC1; p=quarantine"),
        (f"{rsa['sel']}._domainkey.example.org", txt_strings(rsa["record"])),
        (f"{rsa['sel']}._domainkey.example.test", txt_strings(rsa["record"])),
    ]}


def message(frm="Alice <alice@example.org>", subject="auth test"):
    return (f"From: {frm}\r\nTo: <{DEMO}>\r\nSubject: {subject}\r\n"
            "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m1@example.org>\r\n"
            "\r\nHello,\r\n\r\nthis is a test.\r\n").encode()


def headers_of(mail):
    """The header lines of a delivered message (unfolded), in order."""
    head = mail.split(b"\n\n", 1)[0].decode()
    return re.sub(r"\n[ \t]+", " ", head).split("\n")


def crlf(mail):
    return mail.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# The harness turns sender authentication off unless asked: these are the server's defaults.
ON = "spf-policy tag\ndkim-verify yes\ndmarc on\n"


class MsgAuth(PolicyAssertions, unittest.TestCase):
    config = ON + "auth-plaintext-loopback yes\n"

    def setUp(self):
        self.world = PolicyWorld(self, make_records(), extra_config=self.config,
                                 relay_networks=(RELAY + "/32",)).start()
        self.server = self.world.server

    def send(self, source, sender, msg, helo="client.example.org"):
        """One message from source; the delivered copy."""
        before = len(self.server.mailbox(DEMO))
        with self.server.smtp(source=source, helo=helo) as s:
            s.sendmail(sender, [DEMO], msg)
        return self.server.wait_mail(DEMO, before + 1)[-1]

    def auth_results(self, mail):
        ar = [h for h in headers_of(mail) if h.startswith("Authentication-Results:")]
        self.assertEqual(len(ar), 1, headers_of(mail))
        return ar[0]

    def test_spf_dkim_dmarc_pass_with_headers_above_received(self):
        signed = interop.python_sign(message()) + message()
        mail = self.send(GOOD, "alice@example.org", signed)
        hs = headers_of(mail)
        ar = self.auth_results(mail)
        self.assertRegex(ar, r"^Authentication-Results: [^;]+; spf=pass "
                             r"smtp\.mailfrom=example\.org")
        self.assertRegex(ar, r"dkim=pass header\.d=example\.org (header\.i=\S+ )?header\.s=rsa "
                             r"header\.a=rsa-sha256 header\.b=\S{8}")
        self.assertIn("dmarc=pass", ar)
        self.assertIn("header.from=example.org", ar)
        spf = [h for h in hs if h.startswith("Received-SPF:")]
        self.assertEqual(len(spf), 1)
        self.assertTrue(spf[0].startswith("Received-SPF: pass "), spf[0])
        self.assertIn("client-ip=127.0.0.2", spf[0])
        names = [h.split(":", 1)[0] for h in hs]
        self.assertLess(names.index("Authentication-Results"), names.index("Received"))
        self.assertLess(names.index("Received-SPF"), names.index("Received"))
        # The signature still verifies on the delivered copy (what we added is above it).
        self.assertTrue(dkim.verify(crlf(mail), dnsfunc=interop.dnsfunc_for(interop.records())))
        self.server.wait_log(r"event=spf result=pass identity=mailfrom domain=example\.org")
        self.server.wait_log(r"event=dmarc result=pass from=example\.org")

    def test_forged_results_in_our_name_are_removed_and_others_kept(self):
        # RFC 8601 5: a field claiming our authserv-id did not come from us.
        me = self.server.hostname
        forged = (f"Authentication-Results: {me.upper()};\r\n\tspf=pass smtp.mailfrom=soft.example;"
                  "\r\n\tdkim=pass header.d=soft.example; dmarc=pass\r\n"
                  "Authentication-Results: mx.other.example; spf=pass\r\n").encode()
        mail = self.send(BAD, "bob@soft.example", forged + message(frm="<bob@soft.example>"))
        ars = [h for h in headers_of(mail) if h.startswith("Authentication-Results:")]
        ours = [h for h in ars if h.lower().startswith(f"authentication-results: {me};")]
        self.assertEqual(len(ours), 1, ars)
        self.assertIn("spf=softfail", ours[0])
        self.assertNotIn("dmarc=pass", ours[0])
        self.assertIn("Authentication-Results: mx.other.example; spf=pass", ars)
        self.assertEqual(len(ars), 2, ars)
        self.server.wait_log(r"event=auth_results_removed count=1 ")

    def test_spf_fail_is_tagged_not_refused_by_default(self):
        mail = self.send(BAD, "bob@soft.example", message(frm="<bob@soft.example>"))
        self.assertIn("spf=softfail smtp.mailfrom=soft.example", self.auth_results(mail))
        self.assertTrue(any(h.startswith("Received-SPF: softfail")
                            for h in headers_of(mail)))

    def test_dmarc_reject_refused_at_end_of_data(self):
        r = self.client(BAD)
        self.reply(r, 250, "2.1.0", "MAIL FROM:<x@reject.example>\r\n")
        self.rcpt(r, DEMO, 250, "2.1.5")
        self.reply(r, 354, None, "DATA\r\n")
        r.send(message(frm="<x@reject.example>").decode() + ".\r\n")
        last = self.reply(r, 550, "5.7.1")[-1]
        self.assertEqual(last, "550 5.7.1 Message refused by the DMARC policy of reject.example")
        # The session goes on: the next transaction (from an authorized domain) is taken.
        self.reply(r, 250, "2.1.0", "MAIL FROM:<alice@example.org>\r\n")
        self.reply(r, 250, "2.0.0", "RSET\r\n")
        self.reply(r, 221, "2.0.0", "QUIT\r\n")
        self.server.wait_log(r"event=reject stage=data reason=dmarc domain=reject\.example")
        self.assertEqual(self.server.mailbox(DEMO), [])

    def test_dmarc_reject_also_from_a_bdat_client(self):
        r = self.client(BAD)
        body = message(frm="<x@reject.example>")
        r.send(f"MAIL FROM:<x@reject.example>\r\nRCPT TO:<{DEMO}>\r\n"
               f"BDAT {len(body)} LAST\r\n".encode().decode() + body.decode())
        self.reply(r, 250, "2.1.0")
        self.reply(r, 250, "2.1.5")
        self.reply(r, 550, "5.7.1")
        self.assertEqual(self.server.mailbox(DEMO), [])

    def test_dmarc_quarantine_delivered_with_header(self):
        mail = self.send(BAD, "x@quar.example", message(frm="<x@quar.example>"))
        hs = headers_of(mail)
        self.assertIn("X-Carteiro-Quarantine: dmarc", hs)
        self.assertIn("dmarc=fail", self.auth_results(mail))

    def test_relay_client_not_checked(self):
        mail = self.send(RELAY, "x@reject.example", message(frm="<x@reject.example>"))
        hs = headers_of(mail)
        self.assertFalse(any(h.startswith(("Authentication-Results:", "Received-SPF:"))
                             for h in hs), hs)


class PslReload(PolicyAssertions, unittest.TestCase):
    """The Public Suffix List is read again on SIGHUP, by the master and by every worker: a
    name listed as a public suffix stops belonging to its parent's organizational domain, so
    the parent's DMARC policy no longer applies to it."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="carteiro-psl-")
        os.chmod(self.dir, 0o755)  # the server reads it as 'carteiro' when we are root
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.psl = os.path.join(self.dir, "psl.dat")
        self.write_psl(["org", "test"])
        self.world = PolicyWorld(self, make_records(),
                                 extra_config=ON + f"public-suffix-list {self.psl}\n").start()
        self.server = self.world.server

    def write_psl(self, rules):
        with open(self.psl + ".tmp", "w") as f:
            f.write("// ===BEGIN ICANN DOMAINS===\n" + "".join(r + "\n" for r in rules) +
                    "// ===END ICANN DOMAINS===\n")
        os.chmod(self.psl + ".tmp", 0o644)
        os.replace(self.psl + ".tmp", self.psl)

    def attempt(self, code, status):
        """mail.example.org has no DMARC record: its organizational domain's decides."""
        r = self.client(BAD)
        self.reply(r, 250, "2.1.0", "MAIL FROM:<bob@mail.example.org>\r\n")
        self.rcpt(r, DEMO, 250, "2.1.5")
        self.reply(r, 354, None, "DATA\r\n")
        r.send(message(frm="<bob@mail.example.org>").decode() + ".\r\n")
        self.reply(r, code, status)
        self.reply(r, 221, "2.0.0", "QUIT\r\n")

    def test_reload_changes_the_organizational_domain(self):
        self.attempt(550, "5.7.1")  # example.org's p=reject
        self.server.wait_log(r"event=reject stage=data reason=dmarc domain=mail\.example\.org")
        self.write_psl(["org", "test", "example.org"])
        pattern = "event=psl_reloaded rules=3"
        self.server.reload()
        self.assertTrue(wait_for(lambda: self.server.log().count(pattern) >= 3),
                        self.server.log()[-3000:])  # the master and both workers
        self.attempt(250, "2.0.0")  # its own organizational domain now: no policy
        mail = self.server.wait_mail(DEMO, 1)[-1]
        self.assertIn("dmarc=none", [h for h in headers_of(mail)
                                     if h.startswith("Authentication-Results:")][0])

    def test_a_broken_list_keeps_the_previous_one(self):
        os.chmod(self.psl, 0o600)  # unreadable for the server
        os.chown(self.psl, 0, 0)
        self.server.reload()
        self.assertTrue(wait_for(lambda: self.server.log().count("event=psl_reload_failed")
                                 >= 3), self.server.log()[-3000:])  # master and workers
        self.attempt(550, "5.7.1")


class SpfRejectFail(PolicyAssertions, unittest.TestCase):
    def setUp(self):
        self.world = PolicyWorld(self, make_records(), extra_config="spf-policy reject-fail\n"
                                 "dkim-verify yes\ndmarc on\n").start()
        self.server = self.world.server

    def test_fail_refused_at_mail_pass_accepted(self):
        r = self.client(BAD)
        last = self.reply(r, 550, "5.7.23", "MAIL FROM:<alice@example.org>\r\n")[-1]
        self.assertTrue(last.startswith("550 5.7.23 SPF validation failed: "), last)
        self.assertIn("does not designate 127.0.0.3 as permitted sender", last)
        # Pipelined behind it: the refused MAIL leaves no transaction.
        r.send(f"RCPT TO:<{DEMO}>\r\nQUIT\r\n")
        self.reply(r, 503, "5.5.1")
        self.reply(r, 221, "2.0.0")
        # softfail is only tagged, and a permitted client passes.
        self.deliver(BAD, sender="bob@soft.example")
        self.deliver(GOOD, sender="alice@example.org")
        self.wait_delivered(2)
        self.server.wait_log(r"event=reject stage=mail reason=spf_fail")


class Timeouts(PolicyAssertions, unittest.TestCase):
    def setUp(self):
        self.world = PolicyWorld(self, silent_dns=True,
                                 extra_config="msgauth-timeout 1s\nspf-policy reject-fail\n"
                                              "dkim-verify yes\ndmarc on\n").start()
        self.server = self.world.server

    def test_lookups_that_never_answer_fail_open(self):
        mail = self.send_one()
        ar = [h for h in headers_of(mail) if h.startswith("Authentication-Results:")][0]
        self.assertIn("spf=temperror", ar)
        self.server.wait_log(r"event=spf result=temperror problem=\"timeout\"")

    def send_one(self):
        with self.server.smtp(source=BAD) as s:
            s.sendmail("alice@example.org", [DEMO], message())
        return self.server.wait_mail(DEMO, 1)[-1]


class Signing(PolicyAssertions, unittest.TestCase):
    def setUp(self):
        interop.make_keys()
        rsa = interop.KEYS["rsa"]
        self.world = PolicyWorld(self, make_records(), relay_networks=(RELAY + "/32",),
                                 extra_config=f"dkim-sign example.test rsa {rsa['path']}\n"
                                              "auth-plaintext-loopback yes\n" + ON).start()
        self.server = self.world.server

    def test_outgoing_mail_signed_and_verified_by_python_dkim(self):
        with self.server.smtp(source=RELAY) as s:
            s.sendmail("demo@example.test", [DEMO],
                       message(frm="Demo <demo@example.test>", subject="signed"))
        mail = self.server.wait_mail(DEMO, 1)[-1]
        hs = headers_of(mail)
        sig = [h for h in hs if h.startswith("DKIM-Signature:")]
        self.assertEqual(len(sig), 1, hs)
        self.assertIn("d=example.test", sig[0])
        self.assertIn("s=rsa", sig[0])
        recs = {f"rsa._domainkey.example.test": interop.KEYS["rsa"]["record"]}
        self.assertTrue(dkim.verify(crlf(mail), dnsfunc=interop.dnsfunc_for(recs)))
        self.server.wait_log(r"event=dkim_signed d=example\.test")

    def test_remote_delivery_carries_the_signature(self):
        """Through the queue and the outbound SMTP client to another domain's MX: the peer
        receives the DKIM-Signature (from the queue file's J record) and python3-dkim accepts
        it."""
        rsa = interop.KEYS["rsa"]
        w = OutboundWorld(self, BASE_RECORDS,
                          extra_config=f"dkim-sign example.test rsa {rsa['path']}\n")
        mx1 = w.peer("127.0.0.2", "mx1.example.net")
        w.start()
        outbound_send(w.server, ["bob@example.net"], subject="signed remote")
        _, data = mx1.wait_messages(1)[0]
        self.assertTrue(data.startswith(b"DKIM-Signature: "), data[:200])
        recs = {"rsa._domainkey.example.test": rsa["record"]}
        self.assertTrue(dkim.verify(crlf(data), dnsfunc=interop.dnsfunc_for(recs)))

    def test_mail_from_another_domain_not_signed(self):
        with self.server.smtp(source=RELAY) as s:
            s.sendmail("x@example.org", [DEMO], message(frm="<x@example.org>"))
        mail = self.server.wait_mail(DEMO, 1)[-1]
        self.assertFalse(any(h.startswith("DKIM-Signature:") for h in headers_of(mail)))



class SigningKeysReloaded(PolicyAssertions, unittest.TestCase):
    """SIGHUP: the master reads the dkim-sign key files again, as root, and hands the keys to
    the workers, which sign with them from the next message on; a key that cannot be read
    keeps the previous ones."""

    def setUp(self):
        interop.make_keys()
        self.tmp = tempfile.mkdtemp(prefix="carteiro-dkimkeys-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.path = os.path.join(self.tmp, "sel.key")
        self.put_key(open(interop.KEYS["rsa"]["path"], "rb").read())
        os.chmod(self.tmp, 0o755)
        self.world = PolicyWorld(self, make_records(), relay_networks=(RELAY + "/32",),
                                 extra_config=f"dkim-sign example.test sel {self.path}\n"
                                              + ON).start()
        self.server = self.world.server
        self.sent = 0

    def put_key(self, data):
        """Replace the key file as an administrator would: mode 0600, owned by the server's
        user (the master has dropped root when SIGHUP comes, as for the TLS keys)."""
        tmp = self.path + ".new"
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600)
        if os.geteuid() == 0:
            shutil.chown(tmp, "carteiro", "carteiro")
        os.replace(tmp, self.path)

    def signed_with(self, subject):
        """Send one message; which of the two keys its signature verifies with."""
        with self.server.smtp(source=RELAY) as s:
            s.sendmail("demo@example.test", [DEMO],
                       message(frm="Demo <demo@example.test>", subject=subject))
        self.sent += 1
        mail = self.server.wait_mail(DEMO, self.sent)[-1]
        self.assertIn(f"Subject: {subject}".encode(), mail)
        def verifies(k):
            recs = {"sel._domainkey.example.test": interop.KEYS[k]["record"]}
            try:
                return dkim.verify(crlf(mail), dnsfunc=interop.dnsfunc_for(recs))
            except Exception:  # noqa: BLE001 - an RSA signature against an Ed25519 key
                return False
        return [k for k in ("rsa", "ed") if verifies(k)]

    def test_sighup_reads_the_keys_again(self):
        self.assertEqual(self.signed_with("before"), ["rsa"])
        self.put_key(open(interop.KEYS["ed"]["path"], "rb").read())
        self.server.reload()
        self.server.wait_log(r"carteiro/master\[\d+\]: info: event=dkim_keys_reloaded keys=1 "
                             r"workers=2")
        wait_for(lambda: len(re.findall(r"smtpd\[\d+\]: info: event=dkim_keys_reloaded keys=1",
                                        self.server.log())) == 2)
        self.assertEqual(self.signed_with("after"), ["ed"])
        # A broken file: reported, and the keys of the last good read stay in use.
        self.put_key(b"-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
        self.server.reload()
        self.server.wait_log(r"event=dkim_reload_failed error=.*not a PEM private key.* "
                             r"keeping=previous")
        self.assertEqual(self.signed_with("kept"), ["ed"])
        self.assertNotIn("BEGIN PRIVATE KEY", self.server.log())
        # A key only root may read (as recommended when no reload is wanted): the keys read
        # at start, or at the last good reload, stay.
        if os.geteuid() == 0:
            self.put_key(open(interop.KEYS["rsa"]["path"], "rb").read())
            shutil.chown(self.path, "root", "root")
            self.server.reload()
            self.server.wait_log(r"event=dkim_reload_failed error=.*Permission denied")
            self.assertEqual(self.signed_with("root only"), ["ed"])


if __name__ == "__main__":
    unittest.main()
