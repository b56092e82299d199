#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Feeds every malformed input in tests/data/bad/ to the real batchd binary.

For each line `FILE<TAB>SUBSTRING` of tests/data/bad/expected.tsv:
  task-*.json runs  $BATCHD run --root ROOT FILE
  job-*.json  runs  $BATCHD run --root ROOT --job FILE tests/data/good/task-true.json
and each must exit with status 125, print SUBSTRING on stderr (kept short),
not crash, and write nothing outside ROOT: it runs in an empty working
directory with HOME and TMPDIR pointing at empty directories, and all
three must still be empty afterwards, as must be the data directories.

Environment: BATCHD (the binary) and BATCHD_SOURCE_ROOT (the source tree;
defaults to two levels above this script).  Names given as arguments
limit the run to those files.  Exits 0 when every case passes, 1 otherwise.
Python 3 standard library only.
"""

import os
import subprocess
import sys
import tempfile

EXPECTED_STATUS = 125
TIMEOUT_SECONDS = 30
STDERR_LIMIT = 16 * 1024  # an error message, not an echo of the input


def load_cases(bad_dir):
    """Returns [(file name, expected substring)] from expected.tsv."""
    cases = []
    path = os.path.join(bad_dir, "expected.tsv")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            if "\t" not in line:
                raise ValueError("%s:%d: no tab in line" % (path, lineno))
            name, want = line.split("\t", 1)
            if not want:
                raise ValueError("%s:%d: empty expected text" % (path, lineno))
            if not (name.startswith("task-") or name.startswith("job-")):
                raise ValueError("%s:%d: %s is neither task-* nor job-*"
                                 % (path, lineno, name))
            cases.append((name, want))
    return cases


def tree_listing(top):
    """Every path under top, relative to it, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        for n in dirnames + filenames:
            found.append(os.path.relpath(os.path.join(dirpath, n), top))
    return sorted(found)


def run_case(batchd, bad_dir, good_task, name, want):
    """Runs one case; returns a list of problems (empty when it passed)."""
    problems = []
    path = os.path.join(bad_dir, name)
    if not os.path.isfile(path):
        return ["input file %s does not exist" % path]
    with tempfile.TemporaryDirectory(prefix="batchd-bad-input-") as top:
        root = os.path.join(top, "root")
        cwd = os.path.join(top, "cwd")
        home = os.path.join(top, "home")
        tmp = os.path.join(top, "tmp")
        for d in (root, cwd, home, tmp):
            os.mkdir(d)
        if name.startswith("task-"):
            args = [batchd, "run", "--root", root, path]
        else:
            args = [batchd, "run", "--root", root, "--job", path, good_task]
        env = dict(os.environ, HOME=home, TMPDIR=tmp)
        try:
            proc = subprocess.run(args, cwd=cwd, env=env,
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            return ["did not finish within %d s" % TIMEOUT_SECONDS]
        except OSError as e:
            return ["could not run %s: %s" % (batchd, e)]

        stderr = proc.stderr.decode("utf-8", "replace")
        if proc.returncode < 0:
            problems.append("killed by signal %d" % -proc.returncode)
        elif proc.returncode != EXPECTED_STATUS:
            problems.append("exit status %d, expected %d"
                            % (proc.returncode, EXPECTED_STATUS))
        if want not in stderr:
            problems.append("stderr lacks %r" % want)
        if len(proc.stderr) > STDERR_LIMIT:
            problems.append("stderr is %d bytes long (limit %d)"
                            % (len(proc.stderr), STDERR_LIMIT))
        for label, d in (("working directory", cwd), ("HOME", home),
                         ("TMPDIR", tmp)):
            left = tree_listing(d)
            if left:
                problems.append("wrote into the %s: %s"
                                % (label, ", ".join(left[:5])))
        if problems:
            shown = stderr if len(stderr) < 2000 else stderr[:2000] + "..."
            problems.append("command: %s" % " ".join(args))
            problems.append("stderr: %s" % shown.strip())
    return problems


def main(argv):
    batchd = os.environ.get("BATCHD", "")
    here = os.path.dirname(os.path.abspath(__file__))
    source_root = os.environ.get("BATCHD_SOURCE_ROOT") or \
        os.path.normpath(os.path.join(here, "..", ".."))
    bad_dir = os.path.join(source_root, "tests", "data", "bad")
    good_dir = os.path.join(source_root, "tests", "data", "good")
    good_task = os.path.join(good_dir, "task-true.json")

    if not batchd:
        print("FAIL: BATCHD is not set; it must name the batchd binary")
        return 1
    if not os.path.isfile(batchd) or not os.access(batchd, os.X_OK):
        print("FAIL: the batchd binary %s does not exist or is not "
              "executable" % batchd)
        return 1
    if not os.path.isfile(good_task):
        print("FAIL: %s is missing" % good_task)
        return 1
    try:
        cases = load_cases(bad_dir)
    except (OSError, ValueError) as e:
        print("FAIL: %s" % e)
        return 1
    if argv:
        wanted = set(argv)
        cases = [c for c in cases if c[0] in wanted]
        missing = wanted - set(c[0] for c in cases)
        if missing:
            print("FAIL: not in expected.tsv: %s" % ", ".join(sorted(missing)))
            return 1

    before = (tree_listing(bad_dir), tree_listing(good_dir))
    failed = 0
    for name, want in cases:
        problems = run_case(batchd, bad_dir, good_task, name, want)
        if problems:
            failed += 1
            print("FAIL %s" % name)
            for p in problems:
                print("    %s" % p)
        else:
            print("ok   %s" % name)
    print("%d of %d cases passed" % (len(cases) - failed, len(cases)))
    if (tree_listing(bad_dir), tree_listing(good_dir)) != before:
        print("FAIL: files appeared in or vanished from tests/data")
        return 1
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
