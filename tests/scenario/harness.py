"""Scenario-test harness: the real carteiro daemon on loopback, in a temporary directory.

    with Server() as srv:                      # starts `carteiro serve -c <tmp>/carteiro.conf`
        with srv.smtp() as s:                  # Python's smtplib, connected and ready
            s.sendmail("a@example.org", ["demo@example.test"], msg)
        mails = srv.wait_mail("demo@example.test")

Each Server has its own directory (spool, mailboxes, users, aliases, config, log) and a free
port. When the test ends, the server gets SIGTERM (SIGKILL if it does not stop), and its log is
checked for AddressSanitizer/UBSan/LeakSanitizer reports: a report fails the test.
When run as root, the server drops to the 'carteiro' user (scripts/deps.sh creates it).

Shared by the test files: ServerTest (a started Server per test) and ConnectionsTest (the same
for connection limits), the SmtpAssertions mixin (raw SMTP steps that check the reply code and
the enhanced status code), and helpers to wait on the log and on processes (wait_for,
count_log, wait_count, children, alive), and the markers slow (left out by --skip-slow) and
long_test (run only with --long). srv.rss_kb() and srv.fd_count() read the server processes'
memory and descriptors from /proc; Server(env={...}) adds to the server's environment.

TLS: Server(tls=True) adds tls-cert/tls-key (a server certificate for localhost, 127.0.0.1 and
mx.example.test signed by a test CA, made once per run with the openssl command: test_pki()),
STARTTLS on its smtp listener, and two more listeners, submission (srv.submission_port) and
submissions (srv.submissions_port); srv.tls_context() trusts the test CA. Every user's
password is "secret" (PASSWORD).
"""
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import atexit

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("CARTEIRO_BINARY") or os.path.join(ROOT, "build", "asan", "carteiro")

# crypt(3) SHA-512 hash of "secret", the password of every test user.
PASSWORD = "secret"
SECRET_HASH = ("$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77"
               "vwPZN.Pq.H91p5hVO1")

DEFAULT_USERS = ["demo@example.test", "alice@example.test", "bob@example.test",
                 "carol@other.test"]
DEMO = "demo@example.test"  # the default recipient of the SMTP helpers below

DEFAULT_ALIASES = {
    "postmaster@example.test": ["demo@example.test"],
    "team@example.test": ["alice@example.test", "bob@example.test"],
}

SANITIZER_PATTERNS = re.compile(
    r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    r"ERROR: UndefinedBehaviorSanitizer|SUMMARY: AddressSanitizer")


_pki_lock = threading.RLock()
_pki = {}


def openssl(*args, cwd=None):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, cwd=cwd,
                       timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {p.stderr}")
    return p.stdout


def make_server_cert(directory, name, serial, cn="localhost",
                     san="DNS:localhost,IP:127.0.0.1,DNS:mx.example.test"):
    """A key and a certificate (serial given, SAN localhost, 127.0.0.1, mx.example.test unless
    told) signed by the test CA, as directory/name.key and directory/name.pem; their paths."""
    pki = _pki if "ca" in _pki else test_pki()
    key, csr, pem = (os.path.join(directory, f"{name}.{ext}") for ext in ("key", "csr", "pem"))
    ext = os.path.join(directory, f"{name}.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName={san}\n"
                "extendedKeyUsage=serverAuth\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
    openssl("x509", "-req", "-in", csr, "-CA", pki["ca"], "-CAkey", pki["ca_key"],
            "-set_serial", str(serial), "-days", "30", "-extfile", ext, "-out", pem)
    for path in (key, pem):
        os.chmod(path, 0o644)  # test keys: the server user must read them to reload
    return pem, key


def test_pki():
    """The run's test CA and server certificate (made on first use): a dict of paths."""
    with _pki_lock:
        if not _pki:
            d = tempfile.mkdtemp(prefix="carteiro-pki-")
            os.chmod(d, 0o755)
            atexit.register(shutil.rmtree, d, True)
            ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", ca_key, "-out", ca, "-days", "30",
                    "-subj", "/CN=carteiro test CA")
            _pki.update(dir=d, ca=ca, ca_key=ca_key)
    with _pki_lock:
        if "cert" not in _pki:
            cert, key = make_server_cert(_pki["dir"], "server", 1001)
            _pki.update(cert=cert, key=key)
    return _pki


def tls_client_context():
    """A client context that trusts the test CA (and checks the host name)."""
    ctx = ssl.create_default_context(cafile=test_pki()["ca"])
    return ctx


_ports_given = set()
_ports_lock = threading.Lock()


def free_port(host="127.0.0.1"):
    """A port free now, and never handed out before in this run (two listeners of one server
    asking in a row could otherwise get the same one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        with _ports_lock:
            if port not in _ports_given:
                _ports_given.add(port)
                return port


def slow(fn):
    """Mark a test as slow (tests/run.py --skip-slow leaves it out)."""
    fn.slow = True
    return fn


def long_test(fn):
    """Mark a test as long (a minute or more): tests/run.py runs it only with --long (make test
    TEST_ARGS=--long, as CI does: .ci/run); the default run (make test) has a shorter version
    of each."""
    fn.slow = True
    fn.long = True
    return fn


def wait_for(pred, timeout=10, interval=0.05):
    """pred() until it is true (returns its value) or timeout (returns the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def count_log(srv, pattern):
    """How many times the regex pattern matches in srv's log."""
    return len(re.findall(pattern, srv.log()))


def wait_count(srv, pattern, n, timeout=10):
    """Wait until pattern matches at least n times in srv's log; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while count_log(srv, pattern) < n:
        if time.monotonic() >= deadline:
            raise AssertionError(f"{count_log(srv, pattern)} log lines matching {pattern!r}, "
                                 f"expected {n}:\n{srv.log()[-3000:]}")
        time.sleep(0.05)


def children(pid):
    """Direct children of pid (all threads), sorted; [] once pid is gone."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except FileNotFoundError:
        pass
    return sorted(set(out))


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _task_states(pid):
    """The state letter of every thread of process pid (empty once it is gone)."""
    states = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return states
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return states


def group_running(pgid):
    """True while a process of group pgid runs. A zombie does not count: it has released its
    memory, files and ports, and its reaping is up to the orphans' new parent (init, which may
    take its time: killpg(pgid, 0) would wait for that). A process is a zombie only once every
    thread is: its main thread turns "Z" first while the others still exit (an I/O thread in
    fdatasync takes its time), and until the last one has, the descriptors (the listening
    sockets) stay open."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) != pgid:
            continue
        if fields[0] != "Z" or any(st != "Z" for st in _task_states(name)):
            return True
    return False


class Raw:
    """A byte-exact SMTP client: send what you like, read replies as (code, [lines])."""

    def __init__(self, port, host="127.0.0.1", timeout=10, source=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; buffered {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def expect(self, code, data=None):
        if data is not None:
            self.send(data)
        got, lines = self.reply()
        if got != code:
            raise AssertionError(f"expected {code}, got {lines}")
        return lines

    def closed(self, timeout=5):
        """True once the server has closed the connection (EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def starttls(self, ctx=None, server_hostname="localhost"):
        """Wrap the socket in TLS (after a 220 to STARTTLS, or at once for implicit TLS)."""
        self.sock = (ctx or tls_client_context()).wrap_socket(self.sock,
                                                              server_hostname=server_hostname)
        return self

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Pop3Context:
    """poplib clients as context managers (closed at the end, QUIT or not)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Pop3(_Pop3Context, poplib.POP3):
    pass


class _Pop3Ssl(_Pop3Context, poplib.POP3_SSL):
    pass


class Server:
    def __init__(self, users=None, aliases=None, local_domains=("example.test", "other.test"),
                 relay_networks=(), extra_config="", workers=2, host="127.0.0.1",
                 hostname="mx.example.test", file_size_limit=None, tls=False,
                 users_hashes=None, pop3=False, env=None):
        self.users = DEFAULT_USERS if users is None else users
        self.aliases = DEFAULT_ALIASES if aliases is None else aliases
        self.local_domains = local_domains
        self.relay_networks = relay_networks
        self.extra_config = extra_config
        self.workers = workers
        self.host = host
        self.hostname = hostname
        # RLIMIT_FSIZE for the server: a file write past it fails as on a full disk.
        self.file_size_limit = file_size_limit
        self.tls = tls
        self.users_hashes = users_hashes or {}  # address -> hash, instead of SECRET_HASH
        self.env = env or {}  # more environment for the server (e.g. ASAN_OPTIONS)
        self.submission_port = None
        self.submissions_port = None
        # pop3=True adds a pop3 listener (srv.pop3_port, with STLS when tls=True) and, with
        # tls=True, a pop3s one (srv.pop3s_port).
        self.pop3 = pop3
        self.pop3_port = None
        self.pop3s_port = None
        self.tls_cert = self.tls_key = None
        self.dir = None
        self.proc = None
        self.port = None

    # --- life cycle -------------------------------------------------------------------
    def write_config(self):
        d = self.dir
        with open(os.path.join(d, "users"), "w") as f:
            for u in self.users:
                f.write(f"{u}:{self.users_hashes.get(u, SECRET_HASH)}\n")
        with open(os.path.join(d, "aliases"), "w") as f:
            for a, targets in self.aliases.items():
                f.write(f"{a}: {', '.join(targets)}\n")
        host = self.host if ':' not in self.host else '[' + self.host + ']'
        lines = [
            f"hostname {self.hostname}",
            f"spool {d}/spool",
            f"maildir-root {d}/mail",
            "user carteiro",
            f"listen smtp {host}:{self.port}" + (" starttls" if self.tls else ""),
            f"users {d}/users",
            f"aliases {d}/aliases",
            f"workers {self.workers}",
        ]
        if not re.search(r"^dns-server ", self.extra_config, re.M):
            # No test reaches the Internet: a DNS server that refuses keeps remote mail queued.
            lines.append("dns-server 127.0.0.1:9")
        # Sender authentication adds headers to every inbound message and waits for DNS; the
        # tests of other features compare delivered bytes, so it is on only where a test
        # asks for it (test_msgauth.py sets these keys; the server's defaults are on).
        for key, off in (("spf-policy", "off"), ("dkim-verify", "no"), ("dmarc", "off")):
            if not re.search(rf"^{key} ", self.extra_config, re.M):
                lines.append(f"{key} {off}")
        if self.tls:
            if self.tls_cert is None:
                pki = test_pki()
                self.tls_cert, self.tls_key = pki["cert"], pki["key"]
            lines += [f"listen submission {host}:{self.submission_port}",
                      f"listen submissions {host}:{self.submissions_port}",
                      f"tls-cert {self.tls_cert}", f"tls-key {self.tls_key}"]
        if self.pop3:
            lines.append(f"listen pop3 {host}:{self.pop3_port}" + (" starttls" if self.tls else ""))
            if self.tls:
                lines.append(f"listen pop3s {host}:{self.pop3s_port}")
        lines += [f"local-domain {dom}" for dom in self.local_domains]
        lines += [f"relay-network {net}" for net in self.relay_networks]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n" + self.extra_config + "\n")
        for name in ("users", "aliases", "carteiro.conf"):
            os.chmod(os.path.join(d, name), 0o644)

    @property
    def config_path(self):
        return os.path.join(self.dir, "carteiro.conf")

    @property
    def log_path(self):
        return os.path.join(self.dir, "server.log")

    def prepare(self):
        """Make the directory, pick the ports and write the files (start() does it if
        needed); a test may change them before start()."""
        self.dir = tempfile.mkdtemp(prefix="carteiro-test-")
        os.chmod(self.dir, 0o755)  # the server runs as 'carteiro' when we are root
        self.port = free_port(self.host)
        if self.tls:
            self.submission_port = free_port(self.host)
            self.submissions_port = free_port(self.host)
        if self.pop3:
            self.pop3_port = free_port(self.host)
            if self.tls:
                self.pop3s_port = free_port(self.host)
        self.write_config()
        return self

    def start(self, timeout=20):
        if self.dir is None:
            self.prepare()
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        env.update(self.env)
        self.logf = open(self.log_path, "ab")
        limit = self.file_size_limit

        def preexec():
            if limit is not None:
                import resource
                _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))

        self.proc = subprocess.Popen([BINARY, "serve", "-c", self.config_path],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, env=env,
                                     preexec_fn=preexec)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with Raw(self.port, self.host, timeout=2) as r:
                    code, _ = r.reply()
                    if code == 220:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not greet within {timeout}s:\n{self.log()}")

    def stop(self, timeout=30):
        """SIGTERM and wait; SIGKILL if it hangs. Returns the master's exit status."""
        if not self.proc:
            return None
        status = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                status = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._killpg()
                self.proc.wait()
                raise AssertionError(f"server did not stop within {timeout}s:\n{self.log()[-3000:]}")
        else:
            status = self.proc.returncode
        self._wait_group_gone()
        self.proc = None
        self.logf.close()
        return status

    def kill9(self):
        """Kill the master and every child at once, as a power cut would."""
        self._killpg()
        self.proc.wait()
        self._wait_group_gone()
        self.proc = None
        self.logf.close()

    def restart(self):
        self.stop()
        return self.start()

    def _killpg(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _wait_group_gone(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not group_running(self.proc.pid):
                return
            time.sleep(0.02)
        self._killpg()

    def check_sanitizers(self):
        text = self.log()
        m = SANITIZER_PATTERNS.search(text)
        if m:
            start = max(0, m.start() - 2000)
            raise AssertionError("sanitizer report in the server log:\n" + text[start:start + 6000])

    def cleanup(self):
        try:
            if self.proc:
                self.stop()
            self.check_sanitizers()
        finally:
            if self.dir and not os.environ.get("KEEP_TEST_DIRS"):
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.cleanup()
        else:
            try:
                self.cleanup()
            except AssertionError:
                pass

    # --- clients ----------------------------------------------------------------------
    def smtp(self, helo="client.example.org", timeout=10, source=None):
        s = smtplib.SMTP(self.host, self.port, local_hostname=helo, timeout=timeout,
                         source_address=(source, 0) if source else None)
        return s

    def raw(self, timeout=10, greet=True, source=None, port=None):
        r = Raw(port or self.port, self.host, timeout=timeout, source=source)
        if greet:
            r.expect(220)
        return r

    def raw_tls(self, timeout=10, greet=True):
        """A Raw client on the submissions port (implicit TLS), greeted."""
        r = Raw(self.submissions_port, self.host, timeout=timeout).starttls()
        if greet:
            r.expect(220)
        return r

    def submission(self, helo="client.example.org", timeout=10, starttls=True):
        """smtplib on the submission port, after STARTTLS (with the test CA) and EHLO."""
        s = smtplib.SMTP(self.host, self.submission_port, local_hostname=helo, timeout=timeout)
        if starttls:
            s.starttls(context=tls_client_context())
            s.ehlo()
        return s

    def smtps(self, helo="client.example.org", timeout=10):
        """smtplib.SMTP_SSL on the submissions port (implicit TLS)."""
        return smtplib.SMTP_SSL(self.host, self.submissions_port, local_hostname=helo,
                                timeout=timeout, context=tls_client_context())

    def pop3_client(self, timeout=10, stls=False):
        """poplib.POP3 on the pop3 port, greeted (after STLS with the test CA when stls)."""
        p = _Pop3(self.host, self.pop3_port, timeout=timeout)
        if stls:
            p.stls(context=tls_client_context())
        return p

    def pop3s_client(self, timeout=10):
        """poplib.POP3_SSL on the pop3s port (implicit TLS, the test CA)."""
        return _Pop3Ssl(self.host, self.pop3s_port, timeout=timeout,
                        context=tls_client_context())

    def reload(self):
        """SIGHUP to the master (which passes it on to the workers)."""
        self.proc.send_signal(signal.SIGHUP)

    def swaks(self, *args, timeout=60):
        cmd = ["swaks", "--server", f"{self.host}:{self.port}", "--helo", "swaks.example.org"]
        cmd += list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def carteiro(self, *args):
        return subprocess.run([BINARY] + list(args), capture_output=True, text=True, timeout=60)

    def queue_list(self, settle=5):
        """`carteiro queue list`. A running server lists what its queue manager has loaded:
        wait (up to settle seconds) until it shows every file of queue/ and no delivery is
        in flight, so that a test sees a settled queue."""
        deadline = time.monotonic() + settle
        while True:
            p = self.carteiro("queue", "list", "-c", self.config_path)
            if p.returncode != 0:
                raise AssertionError(f"queue list failed: {p.stderr}")
            out = p.stdout
            if "server is not running" in out or time.monotonic() >= deadline:
                return out
            listed = set(re.findall(r"(?m)^([0-9A-Z]{12}) ", out))
            if set(self.queue_files()) <= listed and "being delivered" not in out:
                return out
            time.sleep(0.05)

    def wait_queue_list(self, pattern, timeout=10):
        """queue list until it matches pattern (the live queue shows messages once loaded)."""
        out = wait_for(lambda: (lambda t: t if re.search(pattern, t) else None)(self.queue_list()),
                       timeout=timeout)
        if not out:
            raise AssertionError(f"queue list never matched {pattern!r}:\n{self.queue_list()}")
        return out

    def pids(self):
        """The master and its children (workers, queue manager)."""
        return [self.proc.pid] + children(self.proc.pid) if self.proc else []

    def rss_kb(self):
        """{pid: resident set size in KiB} of the master and its children, from /proc."""
        out = {}
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
            except FileNotFoundError:
                continue
            if m:
                out[pid] = int(m.group(1))
        return out

    def fd_count(self):
        """Open file descriptors of the master and its children together."""
        return len(self.fds())

    def fds(self):
        """What those descriptors are: "pid:fd -> target" for each (for failure messages)."""
        out = []
        for pid in self.pids():
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    try:
                        out.append(f"{pid}:{fd} -> {os.readlink(f'/proc/{pid}/fd/{fd}')}")
                    except OSError:
                        out.append(f"{pid}:{fd} -> ?")
            except FileNotFoundError:
                pass
        return out

    # --- what the server did ----------------------------------------------------------
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            m = rx.search(self.log())
            if m:
                return m
            time.sleep(0.05)
        raise AssertionError(f"no log line matching {pattern!r} within {timeout}s:\n"
                             + self.log()[-3000:])

    def mailbox_dir(self, address):
        local, domain = address.split("@")
        return os.path.join(self.dir, "mail", domain, local)

    def mailbox(self, address):
        """Messages in the Maildir of address (new/ and cur/), as bytes, in name order."""
        return maildir_messages(self.mailbox_dir(address))

    def mailbox_names(self, address):
        base = self.mailbox_dir(address)
        names = []
        for sub in ("new", "cur"):
            d = os.path.join(base, sub)
            if os.path.isdir(d):
                names += sorted(os.listdir(d))
        return names

    def wait_mail(self, address, count=1, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.mailbox(address)
            if len(msgs) >= count:
                return msgs
            time.sleep(0.05)
        raise AssertionError(f"{address}: {len(self.mailbox(address))} messages, expected "
                             f"{count} within {timeout}s:\n{self.log()[-3000:]}")

    def queue_files(self):
        d = os.path.join(self.dir, "spool", "queue")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def incoming_files(self):
        d = os.path.join(self.dir, "spool", "incoming")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def wait_queue_empty(self, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.queue_files():
                return
            time.sleep(0.05)
        raise AssertionError(f"queue not empty: {self.queue_files()}\n{self.log()[-3000:]}")


def maildir_messages(path):
    """The messages of the Maildir at path (new/, then cur/), as bytes, in name order."""
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(path, sub)
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                with open(os.path.join(d, name), "rb") as f:
                    out.append(f.read())
    return out


def message(subject="test", body="Hello.\r\n", sender="alice@example.org",
            to="demo@example.test", extra_headers=""):
    """A small RFC 5322 message with CRLF line ends."""
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}.{time.time_ns()}@example.org>\r\n"
            f"{extra_headers}\r\n{body}")


def subject_of(data):
    """The Subject of a stored message, read without a full parse (tests that count
    thousands of messages give each a unique one-line subject)."""
    m = re.search(rb"^Subject: ([^\r\n]*)", data, re.M)
    return m.group(1).decode() if m else None


def lf(data):
    """CRLF to LF, as messages are stored in Maildir."""
    if isinstance(data, str):
        data = data.encode()
    return data.replace(b"\r\n", b"\n")


class ServerTest(unittest.TestCase):
    """A TestCase with self.server started for each test (override server_args)."""
    server_args = {}

    def setUp(self):
        self.server = Server(**self.server_args).start()

    def tearDown(self):
        self.server.cleanup()


class ConnectionsTest(ServerTest):
    """A ServerTest for connection limits: setUp waits until the start-up probe of
    Server.start (from 127.0.0.1) is disconnected, so that it does not count against the
    limits; connect() opens raw connections (not greeted) that tearDown closes."""

    def setUp(self):
        super().setUp()
        self.server.wait_log(r"event=disconnect client=127\.0\.0\.1 ")
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            c.close()
        super().tearDown()

    def connect(self, source=None):
        """A new Raw connection (from address source), its greeting not read yet."""
        r = Raw(self.server.port, self.server.host, timeout=10, source=source)
        self.conns.append(r)
        return r


class SmtpAssertions:
    """Reply checks for raw SMTP sessions (Raw) that look at the code AND the enhanced status
    code. Mix into a TestCase whose self.server is a started Server."""

    def reply(self, r, code, enhanced=None, data=None):
        """Send data (if any), read one reply, check code and enhanced code; its lines."""
        if data is not None:
            r.send(data)
        got, lines = r.reply()
        self.assertEqual(got, code, f"sent {data!r:.200}: got {lines}")
        if enhanced is not None:
            self.assertTrue(lines[-1].startswith(f"{code} {enhanced} "),
                            f"sent {data!r:.200}: expected {code} {enhanced}, got {lines}")
        return lines

    def ehlo(self, r, name="client.example.org"):
        """EHLO name, expecting 250; the reply's lines."""
        return self.reply(r, 250, None, f"EHLO {name}\r\n")

    def session(self, source=None):
        """A new raw connection (from address source), greeted and past EHLO."""
        r = self.server.raw(source=source)
        self.ehlo(r)
        return r

    def rcpt(self, r, address, code=250, enhanced="2.1.5", params=""):
        """RCPT TO:<address> with params, expecting code and enhanced; the reply's lines."""
        return self.reply(r, code, enhanced, f"RCPT TO:<{address}>{params}\r\n")

    def begin(self, r, rcpts=(DEMO,), sender="a@example.org", params=""):
        """MAIL FROM:<sender> with params (250 2.1.0), then RCPT TO each of rcpts (250 2.1.5)."""
        self.reply(r, 250, "2.1.0", f"MAIL FROM:<{sender}>{params}\r\n")
        for rcpt in rcpts:
            self.rcpt(r, rcpt)

    def send_data(self, r, content, code=250, enhanced="2.0.0"):
        """DATA (354), then content (bytes as they go on the wire, ending with CRLF.CRLF),
        expecting code and enhanced; the lines of the reply to the content."""
        self.reply(r, 354, None, "DATA\r\n")
        return self.reply(r, code, enhanced, content)

    def queued_id(self, lines):
        """The queue id of a "250 2.0.0 OK: queued as <id>" reply (checked to be one)."""
        m = re.match(r"250 2\.0\.0 OK: queued as ([0-9A-Z]{12})$", lines[-1])
        self.assertIsNotNone(m, lines)
        return m.group(1)

    def transaction(self, r, rcpts, sender="a@example.org", subject="rcpt test"):
        """MAIL, every RCPT, DATA with message(subject, sender), all expected to succeed;
        (the message, its queue id)."""
        self.begin(r, rcpts, sender)
        msg = message(subject=subject, sender=sender)
        return msg, self.queued_id(self.send_data(r, msg + ".\r\n"))

    def assert_no_pending_reply(self, r, wait=0.3):
        """Nothing more arrives within wait seconds, and nothing is left unread: no reply to
        a command that was never a command."""
        r.sock.settimeout(wait)
        try:
            data = r.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            data = None
        finally:
            r.sock.settimeout(10)
        self.assertIsNone(data, f"unexpected bytes from the server: {r.buf + (data or b'')!r}")
        self.assertEqual(r.buf, b"")
