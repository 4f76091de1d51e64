"""Fixtures of the outbound tests: a DNS server (dnsmasq) that knows the test domains,
receiving SMTP servers (smtp_peer.py, aiosmtpd) on other 127.x addresses, hostile servers,
and test certificates made with the openssl command.

Addresses: 127.0.0.1 runs carteiro and dnsmasq; MX hosts live on 127.0.0.2 and up, all on one
port (carteiro's outbound-port).
"""
import email
import email.policy
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from harness import Server, free_port, wait_for
from dnsserver import DnsServer

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"


def port_free_everywhere(port, hosts):
    for h in hosts:
        s = socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((h, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def common_port(hosts=("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "::1")):
    for _ in range(50):
        p = free_port()
        if port_free_everywhere(p, hosts):
            return p
    raise RuntimeError("no common free port")


class Peer:
    """An aiosmtpd receiving server in its own process."""

    def __init__(self, host, port, name="peer.test", **opts):
        self.host, self.port, self.name = host, port, name
        self.store = tempfile.mkdtemp(prefix="carteiro-peer-")
        self.opts = opts
        self.proc = None

    def start(self):
        cmd = [PY, os.path.join(HERE, "smtp_peer.py"), "--listen", f"{self.host}:{self.port}",
               "--store", self.store, "--name", self.name]
        for k, v in self.opts.items():
            flag = "--" + k.replace("_", "-")
            if v is True:
                cmd.append(flag)
            elif isinstance(v, (list, tuple)):
                for x in v:
                    cmd += [flag, str(x)]
            elif v not in (None, False):
                cmd += [flag, str(v)]
        self.log = open(os.path.join(self.store, "peer.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_for(lambda: os.path.exists(os.path.join(self.store, "ready"))
                        or self.proc.poll() is not None, timeout=20):
            raise RuntimeError("peer did not start")
        if self.proc.poll() is not None:
            raise RuntimeError("peer died: " + open(os.path.join(self.store, "peer.log")).read())
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.store, ignore_errors=True)

    def messages(self):
        """[(envelope dict, bytes)] in arrival order."""
        out = []
        names = sorted((n for n in os.listdir(self.store) if n.endswith(".eml")),
                       key=lambda n: int(n.split(".")[0]))
        for n in names:
            base = os.path.join(self.store, n[:-4])
            with open(base + ".json") as f:
                env = json.load(f)
            with open(base + ".eml", "rb") as f:
                out.append((env, f.read()))
        return out

    def wait_messages(self, count=1, timeout=20):
        if not wait_for(lambda: len(self.messages()) >= count, timeout=timeout):
            raise AssertionError(f"{self.name}: {len(self.messages())} messages, expected {count}")
        return self.messages()


class ScriptedPeer:
    """A hostile or odd server: a thread that answers each connection with script(conn)."""

    def __init__(self, host, port, script):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.script = script
        self.conns = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            c.settimeout(30)
            self.script(c)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def make_certs(d):
    """A test CA and a certificate for the given names, with the openssl command."""
    names = ["localhost", "relay.example.net", "mx1.example.net", "mx2.example.net"]
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, x) for x in ("server.key", "server.csr", "server.crt"))
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out",
        ca_crt, "-days", "2", "-subj", "/CN=carteiro test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=relay.example.net")
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + ",IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
        "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    os.chmod(key, 0o644)
    return {"ca": ca_crt, "cert": crt, "key": key}


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.default)


def dsn_fields(report):
    """The delivery-status part of a parsed multipart/report: (per-message, [per-recipient])."""
    parts = list(report.iter_parts())
    status = parts[1]
    blocks = [dict(b.items()) for b in status.get_payload()]
    return blocks[0], blocks[1:]


class OutboundWorld:
    """carteiro + dnsmasq + peers, torn down together."""

    def __init__(self, test, records, extra_config="", server_args=None):
        self.test = test
        self.port = common_port()
        self.dns = DnsServer(tempfile.mkdtemp(prefix="carteiro-dns-"), records)
        self.dns.start()
        self.peers = []
        self.scripted = []
        defaults = {"retry-schedule": "1s", "outbound-connect-timeout": "3s",
                    "outbound-command-timeout": "5s", "outbound-data-timeout": "5s"}
        cfg = f"dns-server {self.dns.server}\noutbound-port {self.port}\n"
        for k, v in defaults.items():
            if not re.search(rf"^{k} ", extra_config, re.M):
                cfg += f"{k} {v}\n"
        cfg += extra_config
        args = dict(relay_networks=("127.0.0.0/8",), extra_config=cfg)
        args.update(server_args or {})
        self.server = Server(**args)
        test.addCleanup(self.cleanup)

    def start(self):
        self.server.start()
        return self

    def peer(self, host, name, **opts):
        p = Peer(host, opts.pop("port", self.port), name=name, **opts).start()
        self.peers.append(p)
        return p

    def scripted_peer(self, host, script, port=None):
        p = ScriptedPeer(host, port or self.port, script)
        self.scripted.append(p)
        return p

    def cleanup(self):
        try:
            self.server.cleanup()
        finally:
            for p in self.peers:
                p.cleanup()
            for p in self.scripted:
                p.stop()
            self.dns.stop()
