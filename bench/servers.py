"""The servers `make bench` compares, each set up from nothing in its own temporary directory
and listening on loopback only:

    Sink      Postfix's smtp-sink on 127.0.0.1:PORT, counting the messages it receives
    Dns       the scenario tests' dnsmasq fixture (tests/scenario/dnsserver.py) with an MX
    Carteiro  build/release/carteiro serve, relaying to a Sink (relayhost) or through a Dns
              by MX, local domain example.test (Maildir), optionally POP3
    Postfix   a private Postfix instance: its own config_directory, queue_directory,
              data_directory, a master.cf with only an smtpd on the chosen loopback port (plus
              the internal services), mail_owner postfix, no chroot, relayhost = the Sink,
              example.test delivered by virtual(8) into Maildir; never /etc/postfix or port 25
    Dovecot   a private Dovecot: pop3 on a loopback port, passwd-file auth, its own base_dir
              and log, a static userdb over a Maildir tree; no system dovecot

Durability is left at each server's default, which is the same for all: carteiro fsyncs the
queue file and directory before its 250, Postfix's cleanup fsyncs the queue file before its
250, both fsync a Maildir file before the rename into new/.

Every process is started in a session of its own (or, for Postfix and Dovecot, found from
their pid files) so that stop() ends all of it; stop_all() runs at exit and on SIGINT/SIGTERM.
Nothing outside the temporary directory is written and nothing is left running.
"""
import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "scenario"))
from dnsserver import DnsServer  # noqa: E402  (the tests' dnsmasq fixture)
from harness import alive as pid_alive, group_running  # noqa: E402
CARTEIRO = os.environ.get("CARTEIRO_BINARY") or os.path.join(ROOT, "build", "release",
                                                                 "carteiro")
POSTFIX = "/usr/sbin/postfix"
SMTP_SINK = "/usr/sbin/smtp-sink"
DOVECOT = "/usr/sbin/dovecot"

# crypt(3) SHA-512 hash of "secret": the bench user's password on both POP3 servers.
PASSWORD = "secret"
SECRET_HASH = ("$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77"
               "vwPZN.Pq.H91p5hVO1")

LOCAL_DOMAIN = "example.test"
LOCAL_USER = "bench"
REMOTE_DOMAIN = "remote.test"

_started = []


def stop_all():
    for s in reversed(list(_started)):
        try:
            s.stop()
        except Exception as e:  # noqa: BLE001 - stopping the rest matters more
            print(f"bench: stopping {type(s).__name__}: {e}")


atexit.register(stop_all)


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=20, proc=None, what="server"):
    """Wait until something accepts on host:port and sends a first line; RuntimeError if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                if s.recv(512):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer on {host}:{port} within {timeout}s")


def descendants(pid):
    """pid and every process below it (all threads' children), from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if not pid_alive(p):
            continue
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
    return out


def proc_files(pids, name):
    """The text of /proc/<pid>/<name> of each of the processes still there."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/{name}") as f:
                yield f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue


def memory_kb(pids):
    """(total RSS, total PSS) in KiB of the given processes."""
    rss = pss = 0
    for text in proc_files(pids, "smaps_rollup"):
        m = re.search(r"^Rss:\s+(\d+) kB", text, re.M)
        rss += int(m.group(1)) if m else 0
        m = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        pss += int(m.group(1)) if m else 0
    return rss, pss


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """The CPU time (user and system) of the given processes, and of their children that have
    exited and been waited for (cutime, cstime: a Postfix smtpd that ends after its 100th
    session is counted in its master), in seconds."""
    ticks = 0
    for stat in proc_files(pids, "stat"):
        # Fields after the command name, which is in parentheses and may hold spaces:
        # state is field 3, utime 14, stime 15, cutime 16, cstime 17.
        fields = stat[stat.rindex(")") + 2:].split()
        ticks += sum(int(x) for x in fields[11:15])
    return ticks / CLK_TCK


def kill_group(pgid, timeout=10):
    """SIGTERM to a process group, SIGKILL after timeout; returns once none of it runs."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not group_running(pgid):
                return
            time.sleep(0.05)


def maildir_count(path):
    try:
        return len(os.listdir(os.path.join(path, "new"))) + \
            len(os.listdir(os.path.join(path, "cur")))
    except FileNotFoundError:
        return 0


def maildir_empty(path):
    for sub in ("new", "cur", "tmp"):
        d = os.path.join(path, sub)
        if os.path.isdir(d):
            for n in os.listdir(d):
                os.unlink(os.path.join(d, n))


class Base:
    """A started thing with a directory under the bench root; stop() is idempotent."""

    def __init__(self, root, name):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        _started.append(self)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, name, text, mode=0o644):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p


class Sink(Base):
    """smtp-sink on 127.0.0.1:port; .count is the number of messages it has received."""

    def __init__(self, root, name="sink"):
        super().__init__(root, name)
        self.port = free_port()
        self.count = 0
        self.proc = None

    def start(self):
        # -c: counters on stdout, "sess=N quit=N mesg=N\r" after each event; backlog 1024.
        self.proc = subprocess.Popen([SMTP_SINK, "-u", "nobody", "-c", f"127.0.0.1:{self.port}",
                                      "1024"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        wait_port(self.port, proc=self.proc, what="smtp-sink")
        return self

    def _read(self):
        tail = b""
        rx = re.compile(rb"mesg=(\d+)\r")
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            tail = (tail + chunk)[-200:]
            found = rx.findall(tail)
            if found:
                self.count = int(found[-1])

    def wait_count(self, n, timeout):
        """Wait until the sink has n messages; the time it reached n (monotonic) or None."""
        deadline = time.monotonic() + timeout
        while self.count < n:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)
        return time.monotonic()

    def stop(self):
        if self.proc:
            kill_group(self.proc.pid)
            self.proc.wait()
            self.proc = None


class Dns(Base):
    """The tests' dnsmasq fixture answering MX for remote.test -> mx.remote.test -> 127.0.0.1."""

    def __init__(self, root, name="dns"):
        super().__init__(root, name)
        self.dns = DnsServer(self.dir, {
            "mx": [(REMOTE_DOMAIN, f"mx.{REMOTE_DOMAIN}", 10)],
            "a": [(f"mx.{REMOTE_DOMAIN}", "127.0.0.1")],
        })

    def start(self):
        self.dns.start()
        return self

    @property
    def server(self):
        return self.dns.server

    def stop(self):
        self.dns.stop()


class Carteiro(Base):
    """carteiro serve with a bench configuration. relayhost: the sink's port, or None with
    dns (a Dns) and outbound_port for delivery by MX."""

    name = "carteiro"

    def __init__(self, root, relay_port=None, dns=None, outbound_port=None, pop3=False,
                 name="carteiro", binary=None):
        super().__init__(root, name)
        self.binary = binary or CARTEIRO
        if binary:
            self.name = "baseline"
        self.port = free_port()
        self.pop3_port = free_port() if pop3 else None
        self.proc = None
        cfg = [
            "hostname mx.bench.test",
            f"spool {self.path('spool')}",
            f"maildir-root {self.path('mail')}",
            "user carteiro",
            f"listen smtp 127.0.0.1:{self.port}",
            f"users {self.path('users')}",
            f"aliases {self.path('aliases')}",
            f"local-domain {LOCAL_DOMAIN}",
            "relay-network 127.0.0.0/8",
            "max-connections 20000",
            "max-connections-per-ip 20000",
        ]
        if pop3:
            cfg.append(f"listen pop3 127.0.0.1:{self.pop3_port}")
        if relay_port:
            cfg += [f"relayhost 127.0.0.1:{relay_port}", "relayhost-tls none"]
        else:
            cfg += [f"dns-server {dns.server}", f"outbound-port {outbound_port}"]
        self.write("users", f"{LOCAL_USER}@{LOCAL_DOMAIN}:{SECRET_HASH}\n")
        self.write("aliases", "")
        self.config = self.write("carteiro.conf", "\n".join(cfg) + "\n")

    @property
    def maildir(self):
        return self.path("mail", LOCAL_DOMAIN, LOCAL_USER)

    def start(self):
        self.log = open(self.path("server.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "serve", "-c", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_port(self.port, proc=self.proc, what="carteiro")
        return self

    def pids(self):
        return descendants(self.proc.pid) if self.proc else []

    def queue_empty(self):
        d = self.path("spool", "queue")
        return not os.path.isdir(d) or not os.listdir(d)

    def stop(self):
        if self.proc:
            kill_group(self.proc.pid, timeout=40)
            self.proc.wait()
            self.proc = None
            self.log.close()


class Postfix(Base):
    """A private Postfix instance (see the module comment)."""

    name = "postfix"

    def __init__(self, root, relay_port, process_limit=200, name="postfix", main_cf=None):
        """main_cf: main.cf parameters to set on top of the ones below (None removes one)."""
        super().__init__(root, name)
        self.port = free_port()
        self.etc = self.path("etc")
        self.queue = self.path("queue")
        self.mail = self.path("mail")
        for d in (self.etc, self.queue, self.path("data"), self.mail):
            os.makedirs(d, exist_ok=True)
        shutil.chown(self.path("data"), "postfix", "postfix")
        nobody = pwd.getpwnam("nobody")
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        main = {
            "compatibility_level": "3.6",
            "config_directory": self.etc,
            "queue_directory": self.queue,
            "data_directory": self.path("data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "pf.bench.test",
            "mydomain": "bench.test",
            "myorigin": "bench.test",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "relayhost": f"[127.0.0.1]:{relay_port}",
            "virtual_mailbox_domains": LOCAL_DOMAIN,
            "virtual_mailbox_base": self.mail,
            # static map ending in '/': every address of the domain is that one Maildir.
            "virtual_mailbox_maps": f"static:{LOCAL_DOMAIN}/{LOCAL_USER}/",
            "virtual_uid_maps": f"static:{self.uid}",
            "virtual_gid_maps": f"static:{self.gid}",
            "virtual_minimum_uid": "1",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "smtputf8_enable": "no",
            "biff": "no",
            "maillog_file": self.path("postfix.log"),
            "maillog_file_prefixes": self.dir,
            "default_process_limit": str(process_limit),
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "message_size_limit": "36700160",
        }
        for k, v in (main_cf or {}).items():
            if v is None:
                main.pop(k, None)
            else:
                main[k] = v
        with open(self.path("etc", "main.cf"), "w") as f:
            for k, v in main.items():
                f.write(f"{k} = {v}\n")
        # master.cf: Debian's template with the public smtpd moved to our loopback port and
        # every other public (inet) service dropped; internal services kept, none chrooted.
        out, skip = [], False
        with open("/usr/share/postfix/master.cf.dist") as f:
            for line in f:
                if line.startswith("#tlsproxy "):
                    line = line[1:]  # TLS connection reuse (the tests turn it on)
                if line.startswith((" ", "\t")):
                    if not skip:
                        out.append(line)
                    continue
                skip = False
                fields = line.split()
                if line.startswith("#") or len(fields) < 8:
                    out.append(line)
                    continue
                if fields[1] == "inet":
                    if fields[0] != "smtp":
                        skip = True
                        continue
                    fields[0] = f"127.0.0.1:{self.port}"
                fields[4] = "n"  # chroot
                out.append(" ".join(fields) + "\n")
        with open(self.path("etc", "master.cf"), "w") as f:
            f.writelines(out)
        self.started = False

    @property
    def maildir(self):
        return os.path.join(self.mail, LOCAL_DOMAIN, LOCAL_USER)

    def postfix(self, *args):
        p = subprocess.run([POSTFIX, "-c", self.etc] + list(args), capture_output=True,
                           text=True, timeout=120)
        if p.returncode != 0:
            # The postfix command logs to stderr only when it is a terminal (else to syslog).
            again = subprocess.run(["script", "-qc", " ".join([POSTFIX, "-c", self.etc] +
                                                              list(args)), "/dev/null"],
                                   capture_output=True, text=True, timeout=120)
            raise RuntimeError(f"postfix {' '.join(args)}: {p.stdout}{p.stderr}{again.stdout}")
        return p

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def start(self):
        self.postfix("check")
        self.postfix("start")
        self.started = True
        wait_port(self.port, what="postfix smtpd")
        return self

    def pids(self):
        pid = self.master_pid()
        return descendants(pid) if pid else []

    def queue_empty(self):
        for sub in ("incoming", "active", "deferred", "maildrop", "hold"):
            d = os.path.join(self.queue, sub)
            for _, _, files in os.walk(d):
                if files:
                    return False
        return True

    def stop(self):
        if not self.started:
            return
        pid = self.master_pid()
        pids = self.pids()
        try:
            self.postfix("stop")
        except RuntimeError:
            pass
        deadline = time.monotonic() + 30
        while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in pids:
            if pid_alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if pid:
            try:
                os.unlink(os.path.join(self.queue, "pid", "master.pid"))
            except FileNotFoundError:
                pass
        self.started = False


class Dovecot(Base):
    """A private Dovecot serving POP3 from maildir_root/<domain>/<user> (see module comment)."""

    name = "dovecot"

    def __init__(self, root, name="dovecot", extra=""):
        """extra: more dovecot.conf text (the tests add an auth socket for Postfix's SASL)."""
        super().__init__(root, name)
        self.port = free_port()
        self.mail = self.path("mail")
        os.makedirs(self.mail, exist_ok=True)
        nobody = pwd.getpwnam("nobody")
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        os.chown(self.mail, self.uid, self.gid)
        self.write("passwd", f"{LOCAL_USER}@{LOCAL_DOMAIN}:{{CRYPT}}{SECRET_HASH}\n")
        self.conf = self.write("dovecot.conf", f"""\
base_dir = {self.path('run')}
state_dir = {self.path('state')}
log_path = {self.path('dovecot.log')}
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:{self.mail}/%d/%n
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = {self.path('passwd')}
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={self.mail}/%d/%n
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
service anvil {{
  chroot =
}}
{extra}""")
        self.started = False

    @property
    def maildir(self):
        return os.path.join(self.mail, LOCAL_DOMAIN, LOCAL_USER)

    def start(self):
        # -F: in the foreground, as our child, in a session of its own.
        self.log = open(self.path("stderr.log"), "ab")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.started = True
        wait_port(self.port, proc=self.proc, what="dovecot pop3")
        return self

    def pids(self):
        return descendants(self.proc.pid) if self.started else []

    def stop(self):
        if not self.started:
            return
        pids = self.pids()
        kill_group(self.proc.pid, timeout=20)
        self.proc.wait()
        for p in pids:  # a child that left the group (none should)
            if pid_alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.log.close()
        self.started = False


def make_root():
    d = tempfile.mkdtemp(prefix="carteiro-bench-")
    os.chmod(d, 0o755)
    return d
