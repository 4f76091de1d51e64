"""Fixtures of the anti-abuse tests (test_policy_*.py): carteiro with the DNS lists served by
dnsmasq (dnsserver.py) or by a DNS server that never answers, and the local list files.

Clients stand for different hosts by connecting from other loopback addresses (127.0.0.2,
127.0.0.3, ...): Raw(..., source="127.0.0.2") or srv.smtp(source=...).
"""
import os
import shutil
import tempfile
import time

from dnsserver import DnsServer, SilentDns, dnsbl_name
from harness import DEMO, Raw, Server, SmtpAssertions, message, wait_for

__all__ = ["PolicyWorld", "PolicyAssertions", "dnsbl_name", "DEMO", "message", "wait_for",
           "elapsed"]


class PolicyWorld:
    """carteiro (+ dnsmasq serving records, or a silent DNS server), torn down with the test.

    lists: {"block-networks": [lines], ...} written into the server's directory (world.path(key))
    and configured before the server starts."""

    def __init__(self, test, records=None, silent_dns=False, extra_config="", lists=None,
                 **server_args):
        self.dns = None
        self.silent = None
        self.tmp = tempfile.mkdtemp(prefix="carteiro-policy-")
        cfg = ""
        if records is not None:
            self.dns = DnsServer(os.path.join(self.tmp, "dns"), records).start()
            cfg += f"dns-server {self.dns.server}\n"
        elif silent_dns:
            self.silent = SilentDns()
            cfg += f"dns-server {self.silent.server}\n"
        self.server = Server(extra_config=cfg + extra_config, **server_args)
        self.server.prepare()
        self.lists = lists or {}
        for key, lines in self.lists.items():
            self.write_list(key, lines)
        if self.lists:
            with open(self.server.config_path, "a") as f:
                f.write("".join(f"{key} {self.path(key)}\n" for key in self.lists))
        test.addCleanup(self.cleanup)

    def path(self, key):
        return os.path.join(self.server.dir, key + ".list")

    def write_list(self, key, lines):
        """(Re)write a list file (as an administrator would, before a SIGHUP)."""
        tmp = self.path(key) + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        os.chmod(tmp, 0o644)  # the server runs as 'carteiro' when we are root
        os.replace(tmp, self.path(key))

    def start(self):
        """Start the server and wait until every worker and the queue manager run."""
        self.server.start()
        if not wait_for(lambda: self.server.log().count("info: event=started worker=")
                        >= self.server.workers and "carteiro/qmgr" in self.server.log()):
            raise AssertionError("children not started:\n" + self.server.log()[-3000:])
        return self

    def reload(self, processes=3):
        """SIGHUP, then wait until the master and every worker have reloaded the lists (or
        refused to): the number of policy_lists reload lines grows by `processes`."""
        pattern = "event=reload what=policy_lists"
        before = self.server.log().count(pattern)
        self.server.reload()
        if not wait_for(lambda: self.server.log().count(pattern) >= before + processes):
            raise AssertionError("lists not reloaded:\n" + self.server.log()[-3000:])

    def cleanup(self):
        try:
            self.server.cleanup()
        finally:
            if self.dns:
                self.dns.stop()
            if self.silent:
                self.silent.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)


class PolicyAssertions(SmtpAssertions):
    """SMTP steps for the policy tests (self.server is the world's server)."""

    def client(self, source, helo="client.example.org"):
        """A raw session from address source, greeted and past EHLO."""
        r = Raw(self.server.port, self.server.host, timeout=15, source=source)
        self.addCleanup(r.close)
        self.reply(r, 220)
        self.ehlo(r, helo)
        return r

    def deliver(self, source, sender="alice@example.org", rcpt=DEMO, helo="client.example.org"):
        """A whole transaction from source that must succeed; the queue id."""
        r = self.client(source, helo)
        _, qid = self.transaction(r, [rcpt], sender=sender)
        self.reply(r, 221, "2.0.0", "QUIT\r\n")
        return qid

    def refused_at_rcpt(self, source, code, enhanced, sender="alice@example.org", rcpt=DEMO,
                        helo="client.example.org"):
        """MAIL (250), then RCPT refused with code and enhanced; DATA then has no valid
        recipient. The RCPT reply's last line."""
        r = self.client(source, helo)
        self.reply(r, 250, "2.1.0", f"MAIL FROM:<{sender}>\r\n")
        lines = self.rcpt(r, rcpt, code, enhanced)
        self.reply(r, 554, "5.5.1", "DATA\r\n")
        self.reply(r, 221, "2.0.0", "QUIT\r\n")
        return lines[-1]

    def wait_delivered(self, count):
        return self.server.wait_mail(DEMO, count)


def elapsed(fn):
    """(seconds fn() took, its value)."""
    t0 = time.monotonic()
    v = fn()
    return time.monotonic() - t0, v
