#!/usr/bin/python3
"""Run every carteiro test and print one last line: "N passed, N failed".

Three kinds of tests, each counted test by test:
  unit      the C programs build/<variant>/tests/test_* (table-driven parsers, spool format...)
  fuzz      every libFuzzer target replays its corpus in fuzz/corpus/<name>/ (a crash
            found once stays fixed)
  scenario  tests/scenario/test_*.py: the real daemon on loopback, driven by real clients

Usage: tests/run.py --binary build/asan/carteiro --unit-dir build/asan/tests
                    --fuzz-dir build/fuzz/fuzz [-k PATTERN] [-j N] [--skip-slow] [--long]

--skip-slow leaves out the tests marked slow (harness.slow); the long ones (harness.long_test:
the minute-long load test, the 100-round crash test) run only with --long (CI uses it), and
first, beside the others.
"""
import argparse
import concurrent.futures
import glob
import importlib.util
import os
import re
import subprocess
import sys
import time
import traceback
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "scenario"))


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def ok(self, name):
        self.passed += 1
        print(f"PASS {name}", flush=True)

    def fail(self, name, detail=""):
        self.failed.append(name)
        print(f"FAIL {name}", flush=True)
        if detail:
            print("  " + detail.rstrip().replace("\n", "\n  "), flush=True)


def run_unit(unit_dir, results, pattern):
    for prog in sorted(glob.glob(os.path.join(unit_dir, "test_*"))):
        if prog.endswith(".d") or not os.access(prog, os.X_OK):
            continue
        name = os.path.basename(prog)
        if pattern and not re.search(pattern, "unit/" + name):
            continue
        p = subprocess.run([prog], capture_output=True, text=True, timeout=600)
        m = re.search(r"RESULT passed=(\d+) failed=(\d+)", p.stdout)
        if not m:
            results.fail(f"unit/{name}", f"exit {p.returncode}, no RESULT line\n{p.stdout}{p.stderr}")
            continue
        for line in p.stdout.splitlines():
            if line.startswith("PASS "):
                results.ok(f"unit/{name}/{line[5:]}")
            elif line.startswith("FAIL "):
                results.fail(f"unit/{name}/{line[5:]}", p.stderr)
        if p.returncode != 0 and int(m.group(2)) == 0:
            results.fail(f"unit/{name}", f"exit {p.returncode}\n{p.stderr}")


def run_fuzz_replay(fuzz_dir, results, pattern):
    for prog in sorted(glob.glob(os.path.join(fuzz_dir, "fuzz_*"))):
        if prog.endswith(".d") or not os.access(prog, os.X_OK):
            continue
        target = os.path.basename(prog)[len("fuzz_"):]
        name = f"fuzz-replay/{target}"
        if pattern and not re.search(pattern, name):
            continue
        corpus = os.path.join(ROOT, "fuzz", "corpus", target)
        files = sorted(glob.glob(os.path.join(corpus, "*")))
        if not files:
            results.fail(name, f"no corpus in {corpus}")
            continue
        # Files (not a directory) as arguments: libFuzzer runs each once and exits.
        p = subprocess.run([prog] + files, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            results.fail(name, p.stderr[-4000:])
        else:
            results.ok(f"{name} ({len(files)} inputs)")


def load_scenarios(pattern, skip_slow, include_long=False):
    cases = []
    loader = unittest.TestLoader()
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "scenario", "test_*.py"))):
        modname = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for suite in loader.loadTestsFromModule(mod):
            for case in suite:
                name = f"scenario/{modname}/{case.id().split('.', 1)[1]}"
                if pattern and not re.search(pattern, name):
                    continue
                method = getattr(case, case._testMethodName)
                if skip_slow and getattr(method, "slow", False):
                    continue
                if not include_long and getattr(method, "long", False):
                    continue
                cases.append((name, case))
    return cases


def run_case(name, case):
    result = unittest.TestResult()
    start = time.monotonic()
    case.run(result)
    elapsed = time.monotonic() - start
    problems = result.errors + result.failures
    detail = "\n".join(text for _, text in problems)
    if result.skipped:
        return name, True, f"skipped: {result.skipped[0][1]}", elapsed
    return name, not problems, detail, elapsed


def run_scenarios(results, pattern, jobs, skip_slow, include_long=False):
    cases = load_scenarios(pattern, skip_slow, include_long)
    # The long tests first: they take minutes, the others seconds, which then fill the
    # remaining workers around them (started last, a long test would be the suite's tail).
    cases.sort(key=lambda nc: not getattr(getattr(nc[1], nc[1]._testMethodName), "long", False))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_case, name, case) for name, case in cases]
        for fut in concurrent.futures.as_completed(futures):
            try:
                name, ok, detail, elapsed = fut.result()
            except Exception:  # a broken test module, not a failed assertion
                results.fail("scenario/<harness>", traceback.format_exc())
                continue
            label = f"{name} ({elapsed:.1f}s)"
            if ok:
                results.ok(label + (f" [{detail}]" if detail else ""))
            else:
                results.fail(label, detail)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "asan", "carteiro"))
    ap.add_argument("--unit-dir", default=os.path.join(ROOT, "build", "asan", "tests"))
    ap.add_argument("--fuzz-dir", default=os.path.join(ROOT, "build", "fuzz", "fuzz"))
    ap.add_argument("-k", dest="pattern", default=None, help="only tests matching this regex")
    ap.add_argument("-j", dest="jobs", type=int, default=int(os.environ.get("TEST_JOBS", "4")))
    ap.add_argument("--skip-slow", action="store_true")
    ap.add_argument("--long", action="store_true",
                    help="also the long versions of the crash and load tests (harness.long_test)")
    args = ap.parse_args()

    os.environ["CARTEIRO_BINARY"] = os.path.abspath(args.binary)
    # Scenario tests that drive a test program (tests/unit/spf_suite_driver.c) find it here.
    os.environ["CARTEIRO_UNIT_DIR"] = os.path.abspath(args.unit_dir)
    results = Results()
    t0 = time.monotonic()
    run_unit(args.unit_dir, results, args.pattern)
    run_fuzz_replay(args.fuzz_dir, results, args.pattern)
    run_scenarios(results, args.pattern, args.jobs, args.skip_slow, args.long)
    print(f"-- {time.monotonic() - t0:.0f}s")
    if results.failed:
        print("failed:")
        for name in results.failed:
            print(f"  {name}")
    print(f"{results.passed} passed, {len(results.failed)} failed")
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
