"""The command line: --version, help, check, queue list, serve --demo."""
import os
import re
import shutil
import signal
import smtplib
import ssl
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (BINARY, DEFAULT_USERS, SANITIZER_PATTERNS, SECRET_HASH, Raw, Server,
                     ServerTest, message)

# Every key of the configuration file (conf/config.c), for `help config`.
KEYS = ["hostname", "spool", "maildir-root", "user", "listen", "local-domain", "users", "aliases",
        "relay-network", "max-message-size", "max-recipients", "max-connections",
        "max-connections-per-ip", "max-received-headers", "smtp-max-errors",
        "smtp-command-timeout", "smtp-data-timeout", "shutdown-timeout", "workers",
        "io-threads", "recipient-delimiter", "syslog", "log-level",
        "dns-server", "outbound-port", "destination-concurrency", "outbound-max-connections",
        "outbound-connect-timeout", "outbound-command-timeout", "outbound-data-timeout",
        "relayhost", "relayhost-tls", "relayhost-tls-verify", "relayhost-auth",
        "outbound-ca-file", "retry-schedule", "queue-lifetime", "delay-warning"]
KEYS += ["tls-cert", "tls-key", "auth-plaintext-loopback", "received-show-auth",
         "auth-max-failures", "auth-ban-time", "auth-failure-delay"]
KEYS += ["pop3-plaintext-auth", "pop3-idle-timeout", "pop3-max-errors"]
KEYS += ["dkim-sign"]
KEYS += ["dmarc", "dmarc-reject-policy", "dmarc-quarantine-header", "public-suffix-list"]
KEYS += ["dnsbl", "rhsbl", "dnswl", "dnsbl-timeout", "greet-pause", "block-networks",
         "allow-networks",
         "block-senders", "greylist", "greylist-delay", "greylist-retry-window",
         "greylist-expire", "greylist-auto-allow", "greylist-max-entries",
         "ratelimit-connections",
         "ratelimit-messages", "ratelimit-user-messages", "ratelimit-user-recipients"]
KEYS += ["spf-policy", "dkim-verify", "msgauth-timeout"]
# Documented defaults that users rely on.
KNOWN_DEFAULTS = {"spool": "/var/spool/carteiro", "maildir-root": "/var/mail/carteiro",
                  "user": "carteiro", "max-message-size": "35M", "max-recipients": "100",
                  "max-connections": "1000", "max-connections-per-ip": "20",
                  "smtp-command-timeout": "5m", "smtp-data-timeout": "10m",
                  "shutdown-timeout": "30s", "workers": "auto", "syslog": "no",
                  "log-level": "info"}
KNOWN_DEFAULTS.update({"auth-plaintext-loopback": "no", "received-show-auth": "no",
                       "auth-max-failures": "5", "auth-ban-time": "10m",
                       "auth-failure-delay": "2s"})
KNOWN_DEFAULTS.update({"dmarc": "on", "dmarc-reject-policy": "reject",
                       "dmarc-quarantine-header": "X-Carteiro-Quarantine",
                       "public-suffix-list": "/usr/share/publicsuffix/public_suffix_list.dat"})
KNOWN_DEFAULTS.update({"dnsbl-timeout": "5s", "greet-pause": "0", "greylist": "no",
                       "greylist-delay": "5m",
                       "greylist-retry-window": "1d", "greylist-expire": "36d",
                       "greylist-auto-allow": "5",
                       "ratelimit-connections": "off", "ratelimit-messages": "off"})


def run(*args, cwd=None, timeout=60):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:abort_on_error=0")
    p = subprocess.run([BINARY] + list(args), capture_output=True, text=True, timeout=timeout,
                       cwd=cwd, env=env)
    # A command-line run must be as clean as the daemon.
    m = SANITIZER_PATTERNS.search(p.stderr)
    if m:
        raise AssertionError(f"sanitizer report from {args}:\n{p.stderr[-4000:]}")
    return p


class Workdir(unittest.TestCase):
    """A temporary directory with a valid configuration, users and aliases file."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="carteiro-cli-")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "carteiro.conf")
        self.users = os.path.join(self.dir, "users")
        self.aliases = os.path.join(self.dir, "aliases")
        self.write(self.users, "".join(f"{u}:{SECRET_HASH}\n" for u in DEFAULT_USERS))
        self.write(self.aliases, "postmaster@example.test: demo@example.test\n")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, path, text):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)

    def config(self, extra="", listen=True):
        lines = ["hostname mx.example.test", f"spool {self.dir}/spool",
                 f"maildir-root {self.dir}/mail"]
        if listen:
            lines.append("listen smtp 127.0.0.1:2599")
        lines += ["local-domain example.test", "local-domain other.test",
                  f"users {self.users}", f"aliases {self.aliases}"]
        self.write(self.conf, "\n".join(lines) + "\n" + extra)
        return self.conf


class Basics(Workdir):
    def test_version(self):
        p = run("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^carteiro \d+\.\d+\.\d+\S*\n$")
        self.assertEqual(p.stderr, "")

    def test_help(self):
        for args in (["help"], ["--help"], ["serve", "--help"]):
            p = run(*args)
            self.assertEqual(p.returncode, 0, args)
            for word in ("serve", "check", "queue list", "help", "--version", "-c FILE",
                         "--demo"):
                self.assertIn(word, p.stdout, args)

    def test_usage_errors(self):
        for args in ([], ["frobnicate"], ["check", "--nonsense"], ["queue"], ["queue", "drop"],
                     ["check", "-c", "a", "--demo"], ["check", "extra-arg"]):
            p = run(*args)
            self.assertEqual(p.returncode, 1, f"{args}: {p.stdout}{p.stderr}")
            self.assertIn("usage:", p.stderr, args)

    def help_config(self):
        p = run("help", "config")
        self.assertEqual(p.returncode, 0)
        rows = {}
        for line in p.stdout.splitlines():
            m = re.match(r"^([a-z][a-z0-9-]*)\s{2,}(\S.*?)\s{2,}(\S.*)$", line)
            if m:
                rows[m.group(1)] = (m.group(2), m.group(3))
        return rows

    def test_help_config_lists_every_key_with_its_default(self):
        rows = self.help_config()
        self.assertEqual(sorted(rows), sorted(KEYS))
        for key, default in KNOWN_DEFAULTS.items():
            self.assertEqual(rows[key][1], default, key)
        for key in ("listen", "local-domain", "relay-network", "dns-server", "tls-cert", "tls-key",
                    "dkim-sign"):
            self.assertIn("may repeat", rows[key][1])

    def test_help_config_defaults_are_valid_values(self):
        # Each default printed by `help config`, written into a file, is accepted by `check`.
        rows = self.help_config()
        for key, (_, default) in rows.items():
            if default.startswith("none") or default.startswith("the host name") or \
                    key in ("spool", "maildir-root", "user"):
                continue
            self.config(extra=f"{key} {default}\n")
            p = run("check", "-c", self.conf)
            self.assertEqual(p.returncode, 0, f"{key} {default}: {p.stderr}")


class Check(Workdir):
    def test_valid_configuration(self):
        self.config()
        p = run("check", "-c", self.conf)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, f"{self.conf}: OK (1 listener, 2 local domains, 4 users, "
                                   f"1 alias)\n")
        self.assertEqual(p.stderr, "")

    def test_public_suffix_list_is_loaded(self):
        # A missing or truncated list is an error while DMARC is on, and no concern when off.
        truncated = os.path.join(self.dir, "psl.dat")
        self.write(truncated, "// ===BEGIN ICANN DOMAINS===\ncom\nco.uk\n")
        for path, why in ((os.path.join(self.dir, "missing.dat"), "No such file"),
                          (truncated, "truncated")):
            self.config(extra=f"public-suffix-list {path}\n")
            p = run("check", "-c", self.conf)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn(f"{self.conf}: public-suffix-list: ", p.stderr)
            self.assertIn(path, p.stderr)
            self.assertIn(why, p.stderr)
            self.config(extra=f"public-suffix-list {path}\ndmarc off\n")
            p = run("check", "-c", self.conf)
            self.assertEqual(p.returncode, 0, p.stderr)

    def test_demo_configuration(self):
        p = run("check", "--demo", cwd=self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("<demo>: OK", p.stdout)

    def test_every_error_of_the_file_with_its_line(self):
        self.write(self.users, f"demo@example.test:{SECRET_HASH}\nno colon on this line\n")
        self.write(self.conf,
                   "hostname mx.example.test\n"                 # 1
                   f"spool {self.dir}/spool\n"                   # 2
                   "max-recipents 10\n"                          # 3 unknown key
                   "max-message-size lots\n"                     # 4 bad value
                   "local-domain example.test\n"                 # 5
                   "smtp-command-timeout 9 minutes\n"            # 6 too many values
                   f"users {self.users}\n"                       # 7
                   "workers 0\n")                                # 8 out of range; no listen
        p = run("check", "-c", self.conf)
        self.assertEqual(p.returncode, 1)
        self.assertNotIn("OK", p.stdout)
        err = p.stderr
        c = re.escape(self.conf)
        self.assertRegex(err, rf"(?m)^{c}:3: unknown key 'max-recipents' \(did you mean "
                              rf"'max-recipients'\?\)$")
        self.assertRegex(err, rf"(?m)^{c}:4: bad value 'lots' for 'max-message-size'")
        self.assertRegex(err, rf"(?m)^{c}:6: too many values for 'smtp-command-timeout'")
        self.assertRegex(err, rf"(?m)^{c}:8: bad value '0' for 'workers'")
        # A whole-file error has no line of its own.
        self.assertRegex(err, rf"(?m)^{c}(:\d+)?: no 'listen' directive")
        # The users file is part of what `check` validates: its error is reported too.
        self.assertRegex(err, rf"(?m)^{re.escape(self.users)}:2: ",
                         "check stops at the configuration errors and never reports the bad "
                         "line of the users file")

    def test_users_and_aliases_errors_with_their_lines(self):
        self.config()
        self.write(self.users, f"demo@example.test:{SECRET_HASH}\nno colon here\n"
                               f"bob@example.test:{SECRET_HASH}\n"
                               f"nobody@not-local.test:{SECRET_HASH}\n")
        self.write(self.aliases, "postmaster@example.test: demo@example.test\n"
                                 "broken alias line\n")
        p = run("check", "-c", self.conf)
        self.assertEqual(p.returncode, 1)
        self.assertNotIn("OK", p.stdout)
        u = re.escape(self.users)
        self.assertRegex(p.stderr, rf"(?m)^{u}:2: ")
        self.assertRegex(p.stderr, rf"(?m)^{u}:4: ")
        self.assertRegex(p.stderr, rf"(?m)^{re.escape(self.aliases)}:2: ",
                         "check stops at the users file and never reports the bad line of the "
                         "aliases file")

    def test_users_file_error_alone(self):
        self.config()
        self.write(self.users, f"demo@example.test:{SECRET_HASH}\nno colon here\n")
        p = run("check", "-c", self.conf)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, rf"(?m)^{re.escape(self.users)}:2: ")

    def test_missing_configuration_file(self):
        missing = os.path.join(self.dir, "nope.conf")
        for cmd in (["check"], ["queue", "list"], ["serve"]):
            p = run(*cmd, "-c", missing, timeout=20)
            self.assertEqual(p.returncode, 1, cmd)
            self.assertRegex(p.stderr, rf"{re.escape(missing)}: cannot read: No such file", cmd)

    def test_missing_users_file(self):
        self.config()
        os.unlink(self.users)
        p = run("check", "-c", self.conf)
        self.assertEqual(p.returncode, 1)
        self.assertIn(self.users, p.stderr)


class QueueList(ServerTest):
    server_args = {"relay_networks": ("127.0.0.2/32",)}

    def test_empty_queue(self):
        out = self.server.queue_list()
        self.assertRegex(out, r"(?m)^-- 0 messages\b")

    def test_queued_remote_message(self):
        srv = self.server
        msg = message(subject="for elsewhere", to="remote@elsewhere.test")
        with Raw(srv.port, srv.host, source="127.0.0.2") as r:
            r.expect(220)
            r.expect(250, "EHLO relay.example.org\r\n")
            r.expect(250, "MAIL FROM:<sender@example.org>\r\n")
            r.expect(250, "RCPT TO:<remote@elsewhere.test>\r\n")
            r.expect(250, "RCPT TO:<bob@example.test>\r\n")
            r.expect(354, "DATA\r\n")
            lines = r.expect(250, msg + ".\r\n")
        qid = re.search(r"queued as ([0-9A-Z]{12})", lines[-1]).group(1)
        srv.wait_mail("bob@example.test")
        # The local copy is delivered; the remote one stays queued.
        deadline = time.monotonic() + 10
        while "(local, delivered)" not in srv.queue_list() and time.monotonic() < deadline:
            time.sleep(0.05)
        out = srv.queue_list()
        m = re.search(rf"(?m)^{qid}\s+(\d+s)\s+(\d+)\s+(\w+)\s+<sender@example\.org>$", out)
        self.assertIsNotNone(m, out)
        age, size, state = m.groups()
        self.assertEqual(state, "remote")
        self.assertLess(int(age[:-1]), 30)
        # Size of the message as queued: our Received header plus the message.
        self.assertGreater(int(size), len(msg))
        self.assertLess(int(size), len(msg) + 400)
        self.assertRegex(out, r"(?m)^\s+-> remote@elsewhere\.test \(remote, pending\)$")
        self.assertRegex(out, r"(?m)^\s+-> bob@example\.test \(local, delivered\)$")
        self.assertRegex(out, rf"(?m)^-- 1 message, {size} bytes$")

    def test_damaged_and_incoming_files_while_stopped(self):
        srv = self.server
        srv.stop()
        with open(os.path.join(srv.dir, "spool", "queue", "1K0T8FKD06V1"), "wb") as f:
            f.write(b"garbage\n" * 10)
        with open(os.path.join(srv.dir, "spool", "incoming", "1K0T8FKD06V2"), "wb") as f:
            f.write(b"x" * 123)
        out = srv.queue_list()
        self.assertRegex(out, r"(?m)^1K0T8FKD06V1\s+-\s+-\s+damaged\s+\(unreadable: ")
        self.assertRegex(out, r"(?m)^1K0T8FKD06V2\s+\d+s\s+123\s+incoming\s+\(being received\)$")


class Serve(Workdir):
    def serve(self, timeout=10):
        """Run `serve -c self.conf`, expecting it to fail: (status or None if it kept running,
        output)."""
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:abort_on_error=0")
        p = subprocess.Popen([BINARY, "serve", "-c", self.conf], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, env=env)
        try:
            out, _ = p.communicate(timeout=timeout)
            status = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            status = None
        return status, out.decode("utf-8", "replace")

    def assert_clean(self, out):
        m = SANITIZER_PATTERNS.search(out)
        self.assertIsNone(m, "sanitizer report:\n" + out[max(0, m.start() - 200):] if m else "")

    def test_serve_refuses_a_bad_configuration(self):
        self.config(extra="max-recipients many\n")
        with open(self.conf) as f:
            line = f.read().count("\n")
        status, out = self.serve()
        self.assertEqual(status, 1, out)
        self.assertIn(f"{self.conf}:{line}: bad value 'many' for 'max-recipients'", out)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "spool")),
                         "serve touched the spool before refusing the configuration")
        self.assert_clean(out)

    def test_serve_refuses_a_port_in_use_by_another_program(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(5)
            port = busy.getsockname()[1]
            self.config()
            with open(self.conf) as f:
                text = f.read().replace("127.0.0.1:2599", f"127.0.0.1:{port}")
            self.write(self.conf, text)
            status, out = self.serve()
        self.assertEqual(status, 1, out)
        self.assertIn(f"cannot listen on 127.0.0.1:{port}: Address already in use", out)
        self.assert_clean(out)

    def test_serve_refuses_a_port_in_use_by_another_instance(self):
        # SO_REUSEPORT lets every socket of the same user share the port: a second carteiro
        # started by mistake must not silently take half of the first one's connections.
        first = Server(workers=1).start()
        try:
            self.config()
            with open(self.conf) as f:
                text = f.read().replace("127.0.0.1:2599", f"127.0.0.1:{first.port}")
            self.write(self.conf, text)
            status, out = self.serve(timeout=3)
            self.assertEqual(status, 1, "a second server started on an address in use and "
                                        "shares its connections:\n" + out[-1500:])
            self.assertIn(f"cannot listen on 127.0.0.1:{first.port}", out)
            self.assert_clean(out)
        finally:
            first.cleanup()


def port_free(port):
    # SO_REUSEADDR as the server does: only a listener, not TIME_WAIT leftovers, makes it busy.
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


class Demo(unittest.TestCase):
    def setUp(self):
        for port in (2525, 2587, 2465):
            if not port_free(port):
                self.skipTest(f"127.0.0.1:{port} is busy")
        self.dir = tempfile.mkdtemp(prefix="carteiro-demo-")
        os.chmod(self.dir, 0o755)
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None

    def tearDown(self):
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            m = SANITIZER_PATTERNS.search(text)
            if m:
                raise AssertionError("sanitizer report:\n" + text[max(0, m.start() - 2000):])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def test_serve_demo(self):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:abort_on_error=0")
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen([BINARY, "serve", "--demo"], cwd=self.dir, stdout=logf,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=env)
        deadline = time.monotonic() + 20
        while True:
            self.assertIsNone(self.proc.poll(), self.log())
            try:
                with Raw(2525, timeout=2) as r:
                    if r.reply()[0] == 220:
                        break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, self.log())
            time.sleep(0.05)
        # The demo greets in several lines (RFC 5321 4.2) that tell a new user what to do.
        with Raw(2525, timeout=5) as r:
            code, lines = r.reply()
        self.assertEqual(code, 220)
        self.assertEqual(lines[0], "220-mx.example.test ESMTP carteiro demo server")
        self.assertTrue(any("run/mail/example.test/demo/new/" in l for l in lines), lines)
        self.assertEqual(lines[-1], "220 mx.example.test ESMTP carteiro")
        run_dir = os.path.join(self.dir, "run")
        with open(os.path.join(run_dir, "users")) as f:
            self.assertRegex(f.read(), r"(?m)^demo@example\.test:\$")
        with open(os.path.join(run_dir, "aliases")) as f:
            self.assertRegex(f.read(), r"(?m)^postmaster@example\.test: demo@example\.test$")
        msg = message(subject="demo mode")
        with smtplib.SMTP("127.0.0.1", 2525, local_hostname="demo.example.org", timeout=10) as s:
            self.assertEqual(s.sendmail("a@example.org", ["demo@example.test",
                                                          "postmaster@example.test"], msg), {})
        new = os.path.join(run_dir, "mail", "example.test", "demo", "new")
        deadline = time.monotonic() + 15
        while not (os.path.isdir(new) and os.listdir(new)) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(os.listdir(new)), 1, self.log())
        # The alias copy too (postmaster -> demo is the same mailbox, one copy only).
        # The log line follows the Maildir rename.
        deadline = time.monotonic() + 10
        while "event=delivered to=<demo@example.test>" not in self.log():
            self.assertLess(time.monotonic(), deadline, self.log())
            time.sleep(0.05)
        # Submission with the demo password, over the self-signed certificate made at start.
        tls_dir = os.path.join(run_dir, "tls")
        self.assertEqual(os.stat(os.path.join(tls_dir, "key.pem")).st_mode & 0o777, 0o600)
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", 2587, local_hostname="demo.example.org", timeout=10) as s:
            s.starttls(context=insecure)
            s.login("demo@example.test", "demo")
            self.assertEqual(s.sendmail("demo@example.test", ["demo@example.test"], msg), {})
        with smtplib.SMTP_SSL("127.0.0.1", 2465, local_hostname="demo.example.org", timeout=10,
                              context=insecure) as s:
            cert = s.sock.getpeercert(binary_form=True)
            s.login("demo@example.test", "demo")
        self.assertTrue(cert)
        deadline = time.monotonic() + 15
        while len(os.listdir(new)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(os.listdir(new)), 2, self.log())
        p = subprocess.run([BINARY, "check", "--demo"], cwd=self.dir, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(30), 0, self.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
