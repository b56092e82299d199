#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`batchd check-config` against the option table, the docs and bad files.

- Every option that `batchd check-config --list` prints has a section in
  docs/configuration.md (a heading `## \`name\`` or `### \`name\``) whose
  "**Type:** ... **Default:** ..." line says what the table says, and
  every such heading names an option of the table.
- examples/batchd.json holds every option, each at the table's default
  (null where the default is computed or there is none), and passes.
- Every complete JSON example in docs/configuration.md passes.
- Each bad file below exits 1 with exactly its expected error lines on
  stderr ("FILE: key: reason"), nothing on stdout, and no secret echoed.
- The search order: --config, then $BATCHD_CONFIG, then the defaults.

Environment: BATCHD (the binary) and BATCHD_SOURCE_ROOT (the source tree).
Python 3 standard library only.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BATCHD, SOURCE_ROOT, Workspace, check, finish  # noqa: E402

DOCS = os.path.join(SOURCE_ROOT, "docs", "configuration.md")
EXAMPLE = os.path.join(SOURCE_ROOT, "examples", "batchd.json")
SECRET = "SECRETSECRET"
# Options whose default is computed from other things.
DERIVED = {"nodeId", "queue.name", "applicationStore.directory"}


def run(*args, env_extra=None):
    """Runs batchd check-config ARGS; returns (status, stdout, stderr)."""
    env = dict(os.environ)
    env.pop("BATCHD_CONFIG", None)
    env.update(env_extra or {})
    p = subprocess.run([BATCHD, "check-config"] + list(args), env=env,
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def option_table():
    """[(name, type, default, help)] from --list."""
    status, out, err = run("--list")
    check(status == 0 and err == "", "--list exits 0", (status, err))
    rows = [line.split("\t") for line in out.splitlines()]
    check(rows and all(len(r) == 4 for r in rows),
          "--list prints name, type, default and help", out[:500])
    return [r for r in rows if len(r) == 4]


def docs_sections():
    """{option name: section text} from docs/configuration.md."""
    sections, name = {}, None
    with open(DOCS, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^#{2,4} `([^`]+)`\s*$", line)
            if m:
                name = m.group(1)
                check(name not in sections, "docs: one section for " + name)
                sections[name] = ""
            elif line.startswith("#"):
                name = None
            elif name is not None:
                sections[name] += line
    return sections


def check_docs(table):
    sections = docs_sections()
    names = [r[0] for r in table]
    for name, typ, default, _ in table:
        text = sections.get(name)
        check(text is not None, "docs: %s has a section" % name)
        if text is None:
            continue
        if default == "-":
            want_default = "none"
        elif name in DERIVED:
            want_default = default
        else:
            want_default = "`%s`" % default
        want = "**Type:** %s. **Default:** %s." % (typ, want_default)
        check(want in text, "docs: %s says its type and default" % name,
              "want %r" % want)
    for name in sections:
        check(name in names, "docs: section %s is an option of the table"
              % name)


def lookup(doc, name):
    """The value at dotted name in doc, and whether the path exists."""
    node = doc
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None, False
        node = node[part]
    return node, True


def check_example(table):
    with open(EXAMPLE, encoding="utf-8") as f:
        doc = json.load(f)
    for name, typ, default, _ in table:
        value, present = lookup(doc, name)
        check(present, "example: has " + name)
        if not present:
            continue
        if typ == "object":
            check(value is None or isinstance(value, dict),
                  "example: %s is an object or null" % name)
        elif default == "-" or name in DERIVED:
            check(value is None, "example: %s is null" % name, value)
        else:
            check(value == json.loads(default),
                  "example: %s is at its default" % name,
                  "%r != %s" % (value, default))
    status, out, err = run("--config", EXAMPLE)
    check(status == 0 and out == EXAMPLE + ": ok\n" and err == "",
          "examples/batchd.json passes", (status, out, err))


def check_docs_examples(ws):
    with open(DOCS, encoding="utf-8") as f:
        blocks = re.findall(r"```json\n(.*?)```", f.read(), re.S)
    check(len(blocks) >= 3, "docs: has JSON examples", len(blocks))
    for i, block in enumerate(blocks):
        path = ws.write("docs-example-%d.json" % i, block)
        status, out, err = run("--config", path)
        check(status == 0, "docs: JSON example %d passes" % i, err)


# Bad files: (name, JSON object, expected stderr lines without "FILE: ").
BAD = [
    ("unknown key", {"poolid": "x"},
     ["poolid: unknown field (did you mean poolId?)"]),
    ("misplaced key", {"leaseDuration": "PT1M"},
     ["leaseDuration: unknown field (did you mean queue.leaseDuration?)"]),
    ("wrong type", {"isDedicated": "yes"},
     ["isDedicated: expected true or false, not a string"]),
    ("connectionString and accountKey",
     {"storage": {"connectionString": "UseDevelopmentStorage=true",
                  "accountKey": SECRET}},
     ["storage.accountKey: cannot be combined with "
      "storage.connectionString; give one form of credentials: "
      "connectionString, accountName with accountKey, or SAS URLs"]),
    ("bad duration", {"queue": {"leaseDuration": "2 minutes"}},
     ['queue.leaseDuration: invalid duration "2 minutes": not an ISO 8601 '
      "duration such as PT1H30M, P7D or PT0.5S"]),
    ("duration out of bounds", {"queue": {"leaseDuration": "P8D"}},
     ["queue.leaseDuration: must be between PT10S and P7D"]),
    ("bad enum", {"nodeDeallocationOption": "drain"},
     ['nodeDeallocationOption: unknown value "drain" (expected one of: '
      "requeue, terminate, taskcompletion, retaineddata)"]),
    ("slots 0", {"taskSlotsPerNode": 0},
     ["taskSlotsPerNode: must be an integer between 1 and 256"]),
    ("startTask without commandLine", {"startTask": {"waitForSuccess": True}},
     ["startTask.commandLine: required"]),
    ("secret in an invalid field",
     {"storage": {"accountName": SECRET, "accountKey": SECRET + "!"}},
     ["storage.accountName: may contain only lower-case letters and digits",
      "storage.accountKey: not valid base64"]),
    ("secret in a bad connection string",
     {"storage": {"connectionString":
                  "AccountName=a;AcountKey=" + SECRET}},
     ['storage.connectionString: unknown key "AcountKey"']),
    ("secret in a bad SAS URL",
     {"storage": {"queueSasUrl": "https://a.queue.core.windows.net/?ss=q&"
                                 "se=2020-01-01&sig=" + SECRET,
                  "tableSasUrl": "ftp://a/?sig=" + SECRET}},
     ["storage.tableSasUrl: must be an http or https URL",
      "storage.queueSasUrl: the SAS expired at 2020-01-01T00:00:00Z"]),
    ("metrics off loopback", {"metrics": {"listen": "0.0.0.0:9464"}},
     ["metrics.listen: must be a loopback address (127.0.0.1, [::1], "
      "localhost)"]),
    ("several errors at once",
     {"poolId": "a b", "taskSlotsPerNode": 300, "log": {"level": "loud"},
      "queue": {"pollMinInterval": "PT1M", "pollMaxInterval": "PT10S"}},
     ["poolId: may contain only letters, digits, '-' and '_'",
      "taskSlotsPerNode: must be an integer between 1 and 256",
      'log.level: unknown value "loud" (expected one of: error, warning, '
      "info, debug)",
      "queue.pollMinInterval: must not be longer than queue.pollMaxInterval "
      "(PT10S)"]),
]


def check_bad(ws):
    for i, (what, obj, want) in enumerate(BAD):
        path = ws.write_json("bad-%d.json" % i, obj)
        status, out, err = run("--config", path)
        lines = err.splitlines()
        expected = ["%s: %s" % (path, w) for w in want]
        check(status == 1, "bad (%s): exits 1" % what, status)
        check(out == "", "bad (%s): nothing on stdout" % what, out)
        check(lines == expected, "bad (%s): every error, one a line" % what,
              "\n  got  %r\n  want %r" % (lines, expected))
        check(SECRET not in err, "bad (%s): no secret echoed" % what)
        status, out, err = run("--config", path, "--show")
        check(status == 1 and out == "" and SECRET not in err,
              "bad (%s): --show shows nothing" % what)

    path = ws.write("not-json.json", '{\n  "poolId": "x",\n  "nodeId" "y"\n}\n')
    status, out, err = run("--config", path)
    check(status == 1 and err == path + ": not valid JSON at line 3, "
          "column 12\n", "not JSON: says where", err)

    missing = os.path.join(ws.dir, "missing.json")
    status, out, err = run("--config", missing)
    check(status == 1 and err.startswith(missing + ": "),
          "a missing file is an error", err)

    status, out, err = run("--bogus")
    check(status == 125 and "usage" in err, "bad option: 125 and usage")
    status, out, err = run("extra")
    check(status == 125, "extra argument: 125")


def check_show(ws):
    conf = {"poolId": "Show1",
            "storage": {"accountName": "abc", "accountKey": "U0VDUkVUU0VDUkVU"},
            "tasks": {"stdoutMaxBytes": "2GiB"},
            "startTask": {"commandLine": "true", "resourceFiles": [
                {"httpUrl": "https://a/b?sv=1&sig=" + SECRET,
                 "filePath": "b"}]}}
    path = ws.write_json("show.json", conf)
    status, out, err = run("--config", path, "--show")
    check(status == 0 and err == "", "--show exits 0", err)
    shown = json.loads(out) if status == 0 else {}
    check(SECRET not in out and "U0VDUkVU" not in out,
          "--show hides secrets")
    check(shown.get("storage", {}).get("accountKey") == "REDACTED",
          "--show: accountKey is REDACTED")
    check(shown.get("queue", {}).get("name") == "show1-tasks",
          "--show: queue.name is computed from poolId")
    check(shown.get("tasks", {}).get("stdoutMaxBytes") == 2 << 30,
          "--show: sizes in bytes")
    check(shown.get("nodeId"), "--show: nodeId is filled in")


def check_search_order(ws):
    a = ws.write_json("a.json", {"poolId": "from-a"})
    b = ws.write_json("b.json", {"poolId": "from-b"})
    status, out, _ = run("--show", env_extra={"BATCHD_CONFIG": b})
    check(status == 0 and json.loads(out)["poolId"] == "from-b",
          "BATCHD_CONFIG is read")
    status, out, _ = run("--config", a, "--show",
                         env_extra={"BATCHD_CONFIG": b})
    check(status == 0 and json.loads(out)["poolId"] == "from-a",
          "--config wins over BATCHD_CONFIG")
    status, out, _ = run(env_extra={"BATCHD_CONFIG": b})
    check(status == 0 and out == b + ": ok\n", "ok names the file", out)
    if not os.path.exists("/etc/batchd/batchd.json"):
        status, out, _ = run(env_extra={"BATCHD_CONFIG": ""})
        check(status == 0 and out == "built-in defaults: ok\n",
              "no file: the built-in defaults", out)


def main():
    if not BATCHD:
        finish()
    table = option_table()
    check(len(table) > 40, "the table has the options", len(table))
    check_docs(table)
    check_example(table)
    with Workspace() as ws:
        check_docs_examples(ws)
        check_bad(ws)
        check_show(ws)
        check_search_order(ws)
    finish()


if __name__ == "__main__":
    main()
