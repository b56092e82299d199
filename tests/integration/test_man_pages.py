# SPDX-License-Identifier: MIT
"""The manual pages batchd(8) and batchd.json(5).

- batchd.json(5)'s OPTIONS list names every option of the configuration
  table (`batchd check-config --list`) and nothing else, in the table's
  order, each with the table's type and default: the page cannot drift
  from agent/config.c.
- batchd(8) names every command of `batchd help`.
- Both render with groff (-ww: every warning) and with man -l without a
  single diagnostic.
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BATCHD, SOURCE_ROOT, check, finish  # noqa: E402

PAGE5 = os.path.join(SOURCE_ROOT, "docs", "batchd.json.5")
PAGE8 = os.path.join(SOURCE_ROOT, "docs", "batchd.8")


def unroff(s):
    """Text of a roff fragment: font escapes and \\e gone."""
    s = re.sub(r"\\f[BIRP]", "", s)
    return s.replace("\\e", "\\").replace("\\-", "-").replace("\\&", "")


def table():
    p = subprocess.run([BATCHD, "check-config", "--list"], capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 0, "check-config --list", p.stderr)
    return [line.split("\t") for line in p.stdout.splitlines()]


def page_options():
    """[(name, type, default)] of the OPTIONS section of batchd.json(5)."""
    with open(PAGE5, encoding="utf-8") as f:
        lines = f.read().splitlines()
    out, in_options = [], False
    for i, line in enumerate(lines):
        if line.startswith(".SH "):
            in_options = line == ".SH OPTIONS"
            continue
        # An option is a .TP whose tag is ".B name" and whose first line
        # says its type and default.
        if in_options and line == ".TP" and i + 2 < len(lines) and \
                lines[i + 1].startswith(".B "):
            m = re.match(r"^Type: (.*)\.  Default: (.*)\.$", unroff(lines[i + 2]))
            check(m is not None, "batchd.json(5): %s says its type and default"
                  % lines[i + 1][3:], lines[i + 2])
            if m:
                out.append((lines[i + 1][3:], m.group(1), m.group(2)))
    return out


rows = table()
listed = page_options()
names = [r[0] for r in rows]
page_names = [o[0] for o in listed]
for n in names:
    check(n in page_names, "batchd.json(5) documents " + n)
for n in page_names:
    check(n in names, "batchd.json(5): %s is an option of the table" % n)
check(page_names == [n for n in names if n in page_names],
      "batchd.json(5) lists the options in the table's order")
by_name = {o[0]: o for o in listed}
for name, typ, default, _ in rows:
    if name not in by_name:
        continue
    want_default = "none" if default == "-" else default
    check(by_name[name][1:] == (typ, want_default),
          "batchd.json(5): type and default of " + name,
          "%r != %r" % (by_name[name][1:], (typ, want_default)))

# batchd(8) names each command of `batchd help`.
p = subprocess.run([BATCHD, "help"], capture_output=True, text=True, timeout=30)
commands = re.findall(r"^  ([a-z-]+)", p.stdout, re.M)
with open(PAGE8, encoding="utf-8") as f:
    page8 = unroff(f.read())
check(len(commands) >= 8, "batchd help lists the commands", p.stdout)
for c in commands:
    if c == "help":
        continue
    check(re.search(r"^\.B %s\b" % re.escape(c), page8, re.M) is not None,
          "batchd(8) describes the command " + c)
for section in ("SYNOPSIS", "COMMANDS", "OPTIONS", "SIGNALS", "EXIT STATUS", "FILES"):
    check(".SH " + section in page8, "batchd(8) has a section " + section)

# Both render without a diagnostic.
for page in (PAGE8, PAGE5):
    name = os.path.basename(page)
    if shutil.which("groff"):
        g = subprocess.run(["groff", "-man", "-ww", "-z", page],
                           capture_output=True, text=True, timeout=60)
        check(g.returncode == 0 and g.stderr == "", "groff -ww renders " + name,
              g.stderr[:500])
    else:
        print("skip groff: not installed")
    if shutil.which("man"):
        env = dict(os.environ, MANWIDTH="80", MAN_KEEP_STDERR="1", LC_ALL="C.UTF-8")
        m = subprocess.run(["man", "--warnings", "-l", page], capture_output=True,
                           text=True, timeout=60, env=env)
        check(m.returncode == 0 and m.stderr == "" and len(m.stdout) > 1000,
              "man -l renders " + name, m.stderr[:500])
    else:
        print("skip man: not installed")
finish()
