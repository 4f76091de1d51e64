"""DKIM against an independent implementation, Debian's python3-dkim (dkimpy).

carteiro signs and dkimpy verifies; dkimpy signs and carteiro verifies: rsa-sha256 and
ed25519-sha256 (RFC 8463), simple and relaxed canonicalization, bodies with trailing blank
lines, long folded headers, 8-bit and quoted-printable bodies, l=, x= and h= cases, and a
tampered body or header failing. carteiro's side is build/<variant>/tests/dkim_tool (built with
the unit tests beside the binary under test): `sign` prints the DKIM-Signature field(s) for a
message, `verify` checks one with keys from a "NAME TXT" file acting as the DNS, feeding the
message whole, byte by byte and in odd chunks, and fails if those disagree.
`carteiro dkim-keygen` is checked the same way: the record it prints verifies a signature made
with the key it wrote.
"""
import base64
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import atexit

import dkim
import dkim.crypto
import nacl.encoding
import nacl.signing
from dkim.canonicalization import CanonicalizationPolicy

from dnsserver import DnsServer
from harness import BINARY, SANITIZER_PATTERNS, Server

TOOL = os.path.join(os.path.dirname(BINARY), "tests", "dkim_tool")
DOMAIN = "example.org"
KEYS = {}  # name -> dict(pem=bytes path, record=str, alg=bytes, sel=str, pysign=bytes)
_dir = None


def openssl(*args, input=None):
    p = subprocess.run(["openssl"] + list(args), capture_output=True, input=input, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode())
    return p.stdout


_keys_lock = threading.Lock()


def make_keys():
    """The test keys, made once per run (tests/run.py runs cases alone, in threads: no module
    or class fixtures)."""
    global _dir
    with _keys_lock:
        if not KEYS:
            _make_keys()


def _make_keys():
    global _dir
    _dir = tempfile.mkdtemp(prefix="carteiro-dkim-")
    atexit.register(shutil.rmtree, _dir, True)
    for name, bits in (("rsa", 2048), ("rsa1024", 1024), ("rsa512", 512)):
        path = os.path.join(_dir, name + ".key")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}",
                "-out", path)
        pub = base64.b64encode(openssl("pkey", "-in", path, "-pubout", "-outform", "DER"))
        KEYS[name] = dict(path=path, sel=name, alg=b"rsa-sha256",
                          record=f"v=DKIM1; k=rsa; p={pub.decode()}",
                          pysign=open(path, "rb").read())
    path = os.path.join(_dir, "ed.key")
    openssl("genpkey", "-algorithm", "ed25519", "-out", path)
    raw_pub = openssl("pkey", "-in", path, "-pubout", "-outform", "DER")[-32:]
    seed = openssl("pkey", "-in", path, "-outform", "DER")[-32:]
    KEYS["ed"] = dict(path=path, sel="ed", alg=b"ed25519-sha256",
                      record=f"v=DKIM1; k=ed25519; p={base64.b64encode(raw_pub).decode()}",
                      pysign=base64.b64encode(seed))


def records(extra=None):
    """The fake DNS: every test key under SEL._domainkey.example.org, plus extra."""
    r = {f"{k['sel']}._domainkey.{DOMAIN}": k["record"] for k in KEYS.values()}
    r.update(extra or {})
    return r


def dnsfunc_for(recs):
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        v = recs.get(name.rstrip("."))
        return v.encode() if v is not None else None
    return dnsfunc


def message(headers=None, body="Hello,\r\n\r\nthis is a test.\r\n", frm="Alice <alice@example.org>"):
    hs = headers if headers is not None else [
        f"From: {frm}", "To: Bob <bob@example.net>", "Subject: a test",
        "Date: Mon, 01 Jan 2024 10:00:00 +0000", "Message-ID: <1@example.org>"]
    text = "".join(h + "\r\n" for h in hs) + "\r\n"
    return text.encode() + (body.encode() if isinstance(body, str) else body)


def tool(*args, input=None):
    p = subprocess.run([TOOL] + list(args), capture_output=True, input=input, timeout=120)
    err = p.stderr.decode(errors="replace")
    if SANITIZER_PATTERNS.search(err):
        raise AssertionError(f"sanitizer report from dkim_tool {args}:\n{err[-4000:]}")
    return p.returncode, p.stdout.decode(errors="replace"), err


def carteiro_sign(msg, key="rsa", *opts, domain=DOMAIN):
    """The DKIM-Signature field(s) carteiro makes for msg (bytes)."""
    rc, out, err = tool("sign", *opts, domain, KEYS[key]["sel"], KEYS[key]["path"], input=msg)
    if rc != 0:
        raise AssertionError(f"dkim_tool sign: exit {rc}: {err}")
    return out.encode()


def carteiro_verify(msg, recs=None, now=None):
    """carteiro's results: a list of (result, fields dict, line), the A-R text, the from line."""
    keys = os.path.join(_dir, f"keys-{os.getpid()}-{time.monotonic_ns()}")
    with open(keys, "w") as f:
        for name, text in (recs if recs is not None else records()).items():
            f.write(f"{name} {text}\n")
    args = ["verify"] + (["-t", str(now)] if now is not None else []) + [keys]
    rc, out, err = tool(*args, input=msg)
    os.unlink(keys)
    if rc != 0:
        raise AssertionError(f"dkim_tool verify: exit {rc}: {err}\n{out}")
    results, auth, frm = [], None, None
    for line in out.splitlines():
        if line.startswith("auth: "):
            auth = line[6:]
        elif line.startswith("from: "):
            frm = line[6:]
        elif line and line[0].isalpha() and not line.startswith("ignored"):
            fields = dict(re.findall(r'(\w+)=("[^"]*"|\S*)', line))
            results.append((line.split()[0], {k: v.strip('"') for k, v in fields.items()},
                            line))
    return results, auth, frm


def python_sign(msg, key="rsa", canon=(b"relaxed", b"relaxed"), **kw):
    k = KEYS[key]
    return dkim.sign(msg, k["sel"].encode(), DOMAIN.encode(), k["pysign"], canonicalize=canon,
                     signature_algorithm=k["alg"], **kw)


def python_craft(msg, extra_fields, include_headers, key="rsa", canon=b"relaxed/relaxed"):
    """A signature with tags dkim.sign() cannot add (x=) or refuses (h= without From):
    the same steps as dkim.DKIM.sign, with our own field list."""
    k = KEYS[key]
    d = dkim.DKIM(msg)
    d.signature_algorithm = k["alg"]
    d.hasher = hashlib.sha256
    if k["alg"] == b"ed25519-sha256":
        pk = nacl.signing.SigningKey(k["pysign"], encoder=nacl.encoding.Base64Encoder)
    else:
        pk = dkim.crypto.parse_pem_private_key(k["pysign"])
    policy = CanonicalizationPolicy.from_c_value(canon)
    bh = base64.b64encode(hashlib.sha256(policy.canonicalize_body(d.body)).digest())
    include = tuple(h.lower().encode() for h in include_headers)
    fields = [(b"v", b"1"), (b"a", k["alg"]), (b"c", canon), (b"d", DOMAIN.encode()),
              (b"s", k["sel"].encode())] + extra_fields + [
        (b"h", b" : ".join(include)), (b"bh", bh), (b"b", b"0" * 60)]
    return b"DKIM-Signature: " + d.gen_header(fields, include, policy, b"DKIM-Signature", pk)


def python_verify(msg, recs=None, idx=0):
    """dkimpy's verdict on signature idx (it raises for some failures: those are False)."""
    d = dkim.DKIM(msg)
    try:
        return d.verify(idx=idx, dnsfunc=dnsfunc_for(recs if recs is not None else records()))
    except dkim.DKIMException:
        return False


LONG_HEADERS = [
    "From: Alice Example <alice@example.org>",
    "To: Bob <bob@example.net>,\r\n  Carol <carol@example.net>,\r\n\tDave <dave@example.net>",
    "Subject: a rather long subject that goes on and on, folded\r\n over three lines with"
    "\r\n \t odd   white   space",
    "Date: Mon, 01 Jan 2024 10:00:00 +0000",
    "References: <a@example.org> <b@example.org>\r\n <c@example.org>\r\n <d@example.org>",
    "X-Long: " + " ".join(f"word{i}" for i in range(60)),
    "Message-ID: <long@example.org>",
]
TRAILING_BLANK_BODY = "line one  \r\n\tline two\t\r\n\r\n  \r\n\r\n\r\n"
EIGHT_BIT_BODY = "Olá, São Paulo! Ünïcödé  ✓\r\nçà et là\r\n".encode("utf-8")
QP_HEADERS = ["From: alice@example.org", "To: bob@example.net", "Subject: qp",
              "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
              "Content-Transfer-Encoding: quoted-printable"]
QP_BODY = ("Ol=C3=A1 this is a long quoted-printable line that needs a soft line break=\r\n"
           " at column seventy-six, and trailing space=20\r\n=3D equals =3D\r\n\r\n")


class KeysTest(unittest.TestCase):
    def setUp(self):
        make_keys()


class CarteiroSignsPythonVerifies(KeysTest):
    def check(self, msg, key="rsa", *opts):
        sig = carteiro_sign(msg, key, *opts)
        self.assertTrue(sig.startswith(b"DKIM-Signature: v=1; a="), sig)
        self.assertTrue(all(len(line) <= 78 for line in sig.split(b"\r\n")), sig)
        signed = sig + msg
        self.assertTrue(python_verify(signed), signed)
        return signed

    def test_rsa_relaxed(self):
        signed = self.check(message())
        self.assertIn(b"a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=rsa;", signed)

    def test_ed25519_relaxed(self):
        signed = self.check(message(), "ed")
        self.assertIn(b"a=ed25519-sha256;", signed)

    def test_rsa_simple(self):
        self.check(message(), "rsa", "-c", "simple/simple")

    def test_ed25519_simple(self):
        self.check(message(), "ed", "-c", "simple/simple")

    def test_mixed_canonicalizations(self):
        for c in ("relaxed/simple", "simple/relaxed"):
            for key in ("rsa", "ed"):
                with self.subTest(c=c, key=key):
                    self.check(message(body=TRAILING_BLANK_BODY), key, "-c", c)

    def test_trailing_blank_lines(self):
        for c in ("relaxed/relaxed", "simple/simple"):
            with self.subTest(c=c):
                signed = self.check(message(body=TRAILING_BLANK_BODY), "rsa", "-c", c)
                # More (or fewer) empty lines at the end do not change the body hash.
                self.assertTrue(python_verify(signed + b"\r\n\r\n"))
                self.assertTrue(python_verify(signed[:-4]))

    def test_empty_body(self):
        for c in ("relaxed/relaxed", "simple/simple"):
            for body in ("", "\r\n\r\n"):
                with self.subTest(c=c, body=body):
                    self.check(message(body=body), "ed", "-c", c)

    def test_long_folded_headers(self):
        self.check(message(LONG_HEADERS), "rsa")
        self.check(message(LONG_HEADERS), "ed", "-c", "simple/simple")

    def test_8bit_body(self):
        hs = ["From: alice@example.org", "To: bob@example.net", "Subject: =?utf-8?q?Ol=C3=A1?=",
              "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
              "Content-Transfer-Encoding: 8bit"]
        self.check(message(hs, EIGHT_BIT_BODY), "rsa")
        self.check(message(hs, EIGHT_BIT_BODY), "ed", "-c", "simple/simple")

    def test_quoted_printable_body(self):
        self.check(message(QP_HEADERS, QP_BODY), "rsa")
        self.check(message(QP_HEADERS, QP_BODY), "ed", "-c", "simple/simple")

    def test_signed_header_list_and_over_signing(self):
        signed = self.check(message(QP_HEADERS, QP_BODY), "rsa")
        h = re.search(rb"h=([^;]*);", signed).group(1).replace(b"\r\n\t", b"")
        names = [n.lower() for n in h.split(b":")]
        # Each present field signed, the single-instance ones once more (RFC 6376 5.4.2).
        for name, count in ((b"from", 2), (b"to", 2), (b"subject", 2), (b"mime-version", 2),
                            (b"content-type", 2), (b"content-transfer-encoding", 2),
                            (b"date", 1), (b"cc", 1), (b"reply-to", 1)):
            self.assertEqual(names.count(name), count, (name, names))
        # A second Subject or an added Reply-To breaks the signature; an unsigned field does not.
        head, body = signed.split(b"\r\n\r\n", 1)
        self.assertFalse(python_verify(head + b"\r\nSubject: forged\r\n\r\n" + body))
        self.assertFalse(python_verify(head + b"\r\nReply-To: evil@example.net\r\n\r\n" + body))
        self.assertTrue(python_verify(head + b"\r\nX-Spam: no\r\n\r\n" + body))

    def test_body_length_tag(self):
        signed = self.check(message(body="first part\r\n"), "rsa", "-l")
        self.assertIn(b"l=12;", signed)
        # l= lets a list append a footer; both verifiers still pass.
        appended = signed + b"-- \r\nlist footer\r\n"
        self.assertTrue(python_verify(appended))
        results, _, _ = carteiro_verify(appended)
        self.assertEqual(results[0][0], "pass", results)

    def test_expiry_tag(self):
        now = int(time.time())
        signed = self.check(message(), "ed", "-x", "3600")
        self.assertRegex(signed.decode(), r"x=\d+;")
        # Signed a day ago, valid for an hour: expired for both.
        old = carteiro_sign(message(), "ed", "-t", str(now - 86400), "-x", "3600") + message()
        self.assertIn(f"x={now - 86400 + 3600};".encode(), old)
        self.assertFalse(python_verify(old))
        results, _, _ = carteiro_verify(old)
        self.assertEqual(results[0][0], "fail")
        self.assertEqual(results[0][1]["reason"], "signature expired")

    def test_tampered_body_and_header_fail(self):
        signed = self.check(message(), "rsa")
        self.assertFalse(python_verify(signed.replace(b"this is a test", b"this is a TEST")))
        self.assertFalse(python_verify(signed.replace(b"Subject: a test", b"Subject: a tost")))

    def test_dual_signature_rsa_and_ed25519(self):
        # Two keys for one domain: both sign (RFC 8463 5 suggests RSA beside Ed25519).
        msg = message()
        rc, out, err = tool("sign", DOMAIN, "rsa", KEYS["rsa"]["path"], "ed", KEYS["ed"]["path"],
                            input=msg)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.count("DKIM-Signature:"), 2, out)
        signed = out.encode() + msg
        self.assertTrue(python_verify(signed, idx=0))
        self.assertTrue(python_verify(signed, idx=1))
        results, auth, _ = carteiro_verify(signed)
        self.assertEqual([r[0] for r in results], ["pass", "pass"], results)
        self.assertEqual(auth.count("dkim=pass"), 2, auth)

    def test_subdomain_uses_parent_key(self):
        msg = message(frm="news@mail.example.org")
        signed = carteiro_sign(msg, "rsa") + msg
        self.assertIn(b"d=example.org;", signed)
        self.assertTrue(python_verify(signed))

    def test_other_domain_is_not_signed(self):
        for frm in ("someone@example.net", "someone@notexample.org", "no address"):
            with self.subTest(frm=frm):
                rc, out, err = tool("sign", DOMAIN, "rsa", KEYS["rsa"]["path"],
                                    input=message(frm=frm))
                self.assertEqual(rc, 2, err)
                self.assertEqual(out, "")


PY_CASES = [(key, c) for key in ("rsa", "ed")
            for c in ((b"simple", b"simple"), (b"relaxed", b"relaxed"),
                      (b"relaxed", b"simple"), (b"simple", b"relaxed"))]


class PythonSignsCarteiroVerifies(KeysTest):
    def verify(self, signed, expect="pass", reason=None, recs=None, now=None):
        results, auth, frm = carteiro_verify(signed, recs, now)
        self.assertEqual(len(results), 1, results)
        self.assertEqual(results[0][0], expect, results)
        if reason is not None:
            self.assertEqual(results[0][1]["reason"], reason, results)
        return results[0][1], auth, frm

    def test_trailing_blank_lines(self):
        for key, c in PY_CASES:
            with self.subTest(key=key, c=c):
                msg = message(body=TRAILING_BLANK_BODY)
                self.verify(python_sign(msg, key, c) + msg)

    def test_long_folded_headers(self):
        for key, c in PY_CASES:
            with self.subTest(key=key, c=c):
                msg = message(LONG_HEADERS)
                self.verify(python_sign(msg, key, c) + msg)

    def test_8bit_body(self):
        for key, c in PY_CASES:
            with self.subTest(key=key, c=c):
                msg = message(body=EIGHT_BIT_BODY)
                self.verify(python_sign(msg, key, c) + msg)

    def test_quoted_printable_body(self):
        for key, c in PY_CASES:
            with self.subTest(key=key, c=c):
                msg = message(QP_HEADERS, QP_BODY)
                self.verify(python_sign(msg, key, c) + msg)

    def test_empty_body(self):
        for key, c in PY_CASES:
            with self.subTest(key=key, c=c):
                msg = message(body="")
                self.verify(python_sign(msg, key, c) + msg)

    def test_auth_results_text(self):
        msg = message()
        signed = python_sign(msg, "ed") + msg
        fields, auth, frm = self.verify(signed)
        b = re.search(rb"b=([A-Za-z0-9+/]{8})", signed.split(b"bh=")[1]).group(1).decode()
        expect_b = b if "/" not in b else f'"{b}"'
        self.assertEqual(auth, f"dkim=pass header.d=example.org header.i=@example.org "
                               f"header.s=ed header.a=ed25519-sha256 header.b={expect_b}")
        self.assertEqual(frm, "1  Alice <alice@example.org>")

    def test_body_length_tag(self):
        msg = message(body="signed part\r\n")
        signed = python_sign(msg, "rsa", length=True) + msg
        self.assertIn(b"l=13", signed)
        self.verify(signed + b"appended by a list\r\n")
        # A change inside the signed part fails; a body shorter than l= fails too.
        self.verify(signed.replace(b"signed part", b"signed PART"), "fail", "body hash mismatch")
        self.verify(signed.replace(b"signed part\r\n", b"signed\r\n"), "fail",
                    "body shorter than l=")

    def test_expiry_tag(self):
        now = int(time.time())
        msg = message()
        for key in ("rsa", "ed"):
            with self.subTest(key=key):
                good = python_craft(msg, [(b"t", str(now).encode()),
                                          (b"x", str(now + 3600).encode())],
                                    ["from", "to", "subject"], key) + msg
                self.verify(good)
                self.verify(good, "fail", "signature expired", now=now + 7200)
                bad = python_craft(msg, [(b"t", str(now).encode()),
                                         (b"x", str(now - 10).encode())],
                                   ["from", "to", "subject"], key) + msg
                self.verify(bad, "neutral", "x= before t=")

    def test_header_list_cases(self):
        msg = message()
        # Over-signed From and To: pass; a To added later is caught, an X- field is not.
        signed = python_sign(msg, "rsa", include_headers=[b"from", b"to", b"subject", b"from",
                                                          b"to", b"cc"])
        self.verify(signed + msg)
        head, body = msg.split(b"\r\n\r\n", 1)
        self.verify(signed + head + b"\r\nTo: eve@example.net\r\n\r\n" + body, "fail",
                    "signature did not verify")
        self.verify(signed + head + b"\r\nCc: eve@example.net\r\n\r\n" + body, "fail",
                    "signature did not verify")
        self.verify(signed + head + b"\r\nX-Added: yes\r\n\r\n" + body)
        # Several instances of a field are signed bottom-up.
        hs = ["From: alice@example.org", "X-Tag: first", "X-Tag: second", "Subject: multi"]
        msg2 = message(hs)
        signed2 = python_sign(msg2, "ed", include_headers=[b"from", b"x-tag", b"x-tag",
                                                           b"subject"])
        self.verify(signed2 + msg2)
        swapped = msg2.replace(b"first", b"XXXX").replace(b"second", b"first").replace(
            b"XXXX", b"second")
        self.verify(signed2 + swapped, "fail", "signature did not verify")
        # h= without From: refused (RFC 6376 5.4).
        nofrom = python_craft(msg, [], ["subject", "to"]) + msg
        self.verify(nofrom, "neutral", "From not signed")

    def check_tampered(self, old, new, reason):
        for key, c in PY_CASES:
            with self.subTest(key=key, c=c):
                msg = message()
                signed = python_sign(msg, key, c) + msg
                self.verify(signed.replace(old, new), "fail", reason)

    def test_tampered_body_fails(self):
        self.check_tampered(b"this is a test", b"this is a tost", "body hash mismatch")

    def test_tampered_header_fails(self):
        self.check_tampered(b"Subject: a test", b"Subject: a tost", "signature did not verify")

    def test_relaxed_survives_rewrapping_simple_does_not(self):
        msg = message()
        rewrapped = msg.replace(b"Subject: a test", b"Subject:  a\r\n\t test  ")
        signed = python_sign(msg, "rsa", (b"relaxed", b"relaxed"))
        self.verify(signed + rewrapped)
        signed = python_sign(msg, "rsa", (b"simple", b"simple"))
        self.verify(signed + rewrapped, "fail", "signature did not verify")

    def test_key_problems(self):
        msg = message()
        signed = python_sign(msg, "rsa") + msg
        name = f"rsa._domainkey.{DOMAIN}"
        cases = [
            ({name: "v=DKIM1; k=rsa; p="}, "permerror", "key revoked"),
            ({name: "!TEMPFAIL"}, "temperror", "key lookup failed"),
            ({name: KEYS["ed"]["record"]}, "permerror", "key type does not match a="),
            ({name: "v=DKIM2; p=abc"}, "permerror", "key record version not DKIM1"),
            ({name: KEYS["rsa"]["record"] + "; s=tlsrpt"}, "permerror", "key not for email"),
            ({name: "k=rsa; p=QUJDRA=="}, "permerror", "bad RSA key"),
            ({}, "permerror", "no key for signature"),
        ]
        for recs, expect, reason in cases:
            with self.subTest(recs=recs):
                self.verify(signed, expect, reason, recs=recs)
        # Testing mode is reported; a key record with h=sha256 and s=email is fine.
        fields, auth, _ = self.verify(signed, recs={name: KEYS["rsa"]["record"] +
                                                    "; t=y; h=sha256; s=email"})
        self.assertIn("(test mode)", auth)

    def test_rsa_sha1_and_short_keys_are_refused(self):
        msg = message()
        k = KEYS["rsa"]
        sha1 = dkim.sign(msg, b"rsa", DOMAIN.encode(), k["pysign"],
                         signature_algorithm=b"rsa-sha1") + msg
        self.verify(sha1, "policy", "rsa-sha1 is not accepted (RFC 8301)")
        self.verify(python_sign(msg, "rsa1024") + msg)
        self.verify(python_sign(msg, "rsa512") + msg, "policy",
                    "RSA key shorter than 1024 bits (RFC 8301)")

    def test_several_signatures_and_from_count(self):
        msg = message(["From: alice@example.org", "From: mallory@example.net",
                       "Subject: two froms"])
        good = python_sign(msg, "ed", include_headers=[b"from", b"subject"])
        other = python_sign(msg, "rsa", include_headers=[b"from", b"subject"])
        broken = other.replace(b"s=rsa", b"s=nokey")
        results, auth, frm = carteiro_verify(good + broken + msg)
        self.assertEqual([r[0] for r in results], ["pass", "permerror"], results)
        self.assertEqual(frm, "2  alice@example.org")
        self.assertEqual(auth.count(";\\r\\n\\t"), 1, auth)  # one folded line per fragment
        self.assertIn("dkim=pass", auth)
        self.assertIn("dkim=permerror", auth)

    def test_unsigned_message(self):
        results, auth, frm = carteiro_verify(message())
        self.assertEqual(results, [])
        self.assertEqual(auth, "dkim=none")


class ServerLoadsKeys(KeysTest):
    """The master reads the dkim-sign keys before it drops root (the files may be root's alone)."""

    def key_copy(self, name, mode):
        path = os.path.join(_dir, f"{name}-{os.getpid()}-{time.monotonic_ns()}.key")
        shutil.copy(KEYS[name]["path"], path)
        os.chmod(path, mode)
        self.addCleanup(os.unlink, path)
        return path

    def test_keys_loaded_at_start(self):
        ed, rsa = self.key_copy("ed", 0o600), self.key_copy("rsa", 0o600)
        with Server(extra_config=f"dkim-sign example.test ed {ed}\n"
                                 f"dkim-sign example.test rsa {rsa}\n") as srv:
            srv.wait_log(r"event=dkim_keys_loaded keys=2")
            self.assertNotIn("dkim_key_warning", srv.log())

    def test_key_readable_by_others_is_a_warning(self):
        ed = self.key_copy("ed", 0o644)
        with Server(extra_config=f"dkim-sign example.test ed {ed}\n") as srv:
            srv.wait_log(r"event=dkim_key_warning warning=.*readable by others")

    def test_bad_key_stops_the_start(self):
        srv = Server(extra_config="dkim-sign example.test ed /nonexistent/ed.key\n")
        with self.assertRaises(RuntimeError) as e:
            srv.start()
        srv.cleanup()
        self.assertIn("dkim-sign key /nonexistent/ed.key: No such file", str(e.exception))


class RealDns(KeysTest):
    """Keys from dnsmasq through carteiro's own resolver (c-ares): a 2048-bit RSA record is
    published as dkim-keygen prints it, several 255-byte strings that the resolver joins."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="carteiro-dkim-dns-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def sign(self, msg, domain, selector, key):
        rc, out, err = tool("sign", domain, selector, key, input=msg)
        self.assertEqual(rc, 0, err)
        return out.encode() + msg

    def verify(self, dns, signed):
        rc, out, err = tool("verify", "-s", dns.server, input=signed)
        self.assertEqual(rc, 0, err)
        return [line.split()[0] for line in out.splitlines() if line[:1].isalpha()
                and not line.startswith(("auth:", "from:"))], out

    def test_keygen_record_served_by_dnsmasq(self):
        key = os.path.join(self.dir, "big.key")
        p = subprocess.run([BINARY, "dkim-keygen", "example.test", "big", "-o", key],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.search(r"big\._domainkey\.example\.test\. IN TXT \((.*?)\)\n", p.stdout, re.S)
        strings = re.findall(r'"([^"]*)"', m.group(1))
        self.assertGreater(len(strings), 1)  # over 255 bytes: several strings
        records = {"txt": [("big._domainkey.example.test", strings),
                           ("ed._domainkey.example.test", KEYS["ed"]["record"]),
                           ("gone._domainkey.example.test", "v=DKIM1; k=ed25519; p=")]}
        with DnsServer(self.dir, records) as dns:
            msg = message(frm="Ann <ann@example.test>")
            signed = self.sign(msg, "example.test", "big", key)
            signed = self.sign(signed, "example.test", "ed", KEYS["ed"]["path"])
            results, out = self.verify(dns, signed)
            self.assertEqual(results, ["pass", "pass"], out)
            # Revoked key, no key record, and a zone the server refuses (a temporary failure).
            revoked = self.sign(msg, "example.test", "gone", KEYS["ed"]["path"])
            self.assertEqual(self.verify(dns, revoked)[0], ["permerror"])
            missing = self.sign(msg, "example.test", "nokey", KEYS["ed"]["path"])
            self.assertEqual(self.verify(dns, missing)[0], ["permerror"])
            other = message(frm="bob@other.example")
            refused = self.sign(other, "other.example", "ed", KEYS["ed"]["path"])
            results, out = self.verify(dns, refused)
            self.assertEqual(results, ["temperror"], out)
            self.assertIn('reason="key lookup failed"', out)
            self.assertIn("big._domainkey.example.test", dns.log())


def _py_case(key, c):
    def test(self):
        msg = message()
        self.verify(python_sign(msg, key, c) + msg)
    return test


for _key, _c in PY_CASES:
    setattr(PythonSignsCarteiroVerifies, f"test_{_key}_{_c[0].decode()}_{_c[1].decode()}",
            _py_case(_key, _c))


class Keygen(KeysTest):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="carteiro-keygen-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def keygen(self, *args):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        p = subprocess.run([BINARY, "dkim-keygen"] + list(args), capture_output=True,
                           text=True, cwd=self.dir, timeout=120, env=env)
        self.assertNotRegex(p.stderr, SANITIZER_PATTERNS)
        return p

    def published(self, out, name):
        """The TXT record text from the zone-file lines that keygen printed."""
        m = re.search(re.escape(name) + r"\. IN TXT \((.*?)\)\n", out, re.S)
        self.assertIsNotNone(m, out)
        strings = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))
        self.assertTrue(all(len(s) <= 255 for s in strings), strings)
        return "".join(strings)

    def check_type(self, kind, args, default_file):
        p = self.keygen("Example.ORG", "mail2024", *args)
        self.assertEqual(p.returncode, 0, p.stderr)
        path = os.path.join(self.dir, default_file)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        record = self.published(p.stdout, "mail2024._domainkey.example.org")
        self.assertIn(f"k={kind};", record)
        self.assertIn(f"dkim-sign example.org mail2024 {path}\n", p.stdout)
        msg = message()
        rc, sig, err = tool("sign", DOMAIN, "mail2024", path, input=msg)
        self.assertEqual(rc, 0, err)
        recs = {"mail2024._domainkey.example.org": record}
        self.assertTrue(python_verify(sig.encode() + msg, recs))
        # The file is never overwritten.
        again = self.keygen("example.org", "mail2024", *args)
        self.assertEqual(again.returncode, 1)
        self.assertIn("File exists", again.stderr)
        return p, path

    def test_rsa_default(self):
        p, path = self.check_type("rsa", [], "mail2024.example.org.key")
        self.assertIn("BEGIN PRIVATE KEY", open(path).read())
        out = openssl("pkey", "-in", path, "-text", "-noout").decode()
        self.assertIn("2048 bit", out)
        # A 2048-bit key's record is longer than one 255-byte string.
        self.assertIn('"\n\t"', p.stdout)

    def test_ed25519(self):
        self.check_type("ed25519", ["ed25519"], "mail2024.example.org.key")

    def test_output_option_and_bits(self):
        p = self.keygen("example.org", "s1", "rsa", "-o", "k.pem", "-b", "3072")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = openssl("pkey", "-in", os.path.join(self.dir, "k.pem"), "-text", "-noout")
        self.assertIn(b"3072 bit", out)

    def test_bad_arguments(self):
        for args in (["example.org"], ["bad_domain!", "s"], ["example.org", "bad selector"],
                     ["example.org", "s", "dsa"], ["example.org", "s", "-b", "512"]):
            with self.subTest(args=args):
                p = self.keygen(*args)
                self.assertEqual(p.returncode, 1, p.stdout)
                self.assertEqual(os.listdir(self.dir), [])

    def test_check_validates_the_key(self):
        p = self.keygen("example.org", "s1", "ed25519")
        self.assertEqual(p.returncode, 0, p.stderr)
        line = re.search(r"^dkim-sign .*$", p.stdout, re.M).group(0)
        conf = os.path.join(self.dir, "carteiro.conf")
        base = (f"hostname mx.example.test\nspool {self.dir}/spool\n"
                f"maildir-root {self.dir}/mail\nlisten smtp 127.0.0.1:2599\n")
        bad_key = os.path.join(self.dir, "bad.key")
        with open(bad_key, "w") as f:
            f.write("not a key\n")
        for extra, ok, text in ((line, True, ""),
                                ("dkim-sign example.org s2 /nonexistent/key", False,
                                 "No such file"),
                                (f"dkim-sign example.org s3 {bad_key}", False,
                                 "not a PEM private key"),
                                ("dkim-sign example.org bad/sel x", False, "bad selector"),
                                (line + "\n" + line, False, "duplicate")):
            with self.subTest(extra=extra):
                with open(conf, "w") as f:
                    f.write(base + extra + "\n")
                p2 = subprocess.run([BINARY, "check", "-c", conf], capture_output=True,
                                    text=True, timeout=60)
                self.assertEqual(p2.returncode == 0, ok, p2.stderr)
                self.assertIn(text, p2.stderr)


if __name__ == "__main__":
    unittest.main()
