#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Malformed task messages put straight into the task queue, bypassing
`batchd task add`: on a local spool as message files (docs/protocol.md §7),
and on Azurite through the official queue SDK.  Each must end in the
poison queue (`<queue>-poison`), or as a completed task whose failureInfo
names the problem, and the daemon must keep serving: a good task added
afterwards completes."""
import base64
import json
import os
import random
import subprocess
import sys
import time

from harness import (AZURITE_ACCOUNT, AZURITE_KEY, SOURCE_ROOT, Azurite,
                     Spool, Workspace, check, finish)
from pool import Pool, wait_for

QUEUE = "testpool-tasks"
POISON = QUEUE + "-poison"


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def msg(task, job="good", **top):
    d = {"version": 1, "jobId": job, "task": task}
    d.update(top)
    return json.dumps(d)


def cases():
    """[(name, text, (job, task) when the ids can be read, expected
    failureInfo codes when the task is completed)]."""
    c = []

    def add(name, text, ids=None, codes=None):
        c.append((name, text, ids, codes))
    ok_task = {"id": "x", "commandLine": "/bin/true"}
    add("not json", "this is not json")
    add("truncated json", '{"version":1,"jobId":"good","task":{')
    add("json array", "[]")
    add("json null", "null")
    add("json number", "42")
    add("json string", '"a string"')
    add("json true", "true")
    add("empty object", "{}")
    add("version only", '{"version":1}')
    add("trailing garbage", msg(dict(ok_task, id="p-trail")) + " xyz")
    add("missing jobId", json.dumps({"version": 1, "task": dict(ok_task, id="p-nojob")}))
    add("jobId number", json.dumps({"version": 1, "jobId": 7, "task": dict(ok_task, id="p-jobnum")}))
    add("jobId empty", msg(dict(ok_task, id="p-jobempty"), job=""))
    add("jobId slash", msg(dict(ok_task, id="p-jobslash"), job="a/b"))
    add("jobId too long", msg(dict(ok_task, id="p-joblong"), job="j" * 65))
    add("task missing", json.dumps({"version": 1, "jobId": "good"}))
    add("task string", json.dumps({"version": 1, "jobId": "good", "task": "run me"}))
    add("task array", json.dumps({"version": 1, "jobId": "good", "task": [ok_task]}))
    add("task without id", msg({"commandLine": "/bin/true"}))
    add("task id number", msg({"id": 12, "commandLine": "/bin/true"}))
    add("task id bad chars", msg({"id": "a b/c", "commandLine": "/bin/true"}))
    add("task id too long", msg({"id": "t" * 65, "commandLine": "/bin/true"}))
    codes_bad = ("InvalidTaskMessage", "InvalidTask")
    add("no commandLine", msg({"id": "p-nocmd"}), ("good", "p-nocmd"), codes_bad)
    add("commandLine number", msg({"id": "p-cmdnum", "commandLine": 5}),
        ("good", "p-cmdnum"), codes_bad)
    add("constraints string", msg({"id": "p-cons", "commandLine": "/bin/true",
                                   "constraints": "forever"}), ("good", "p-cons"), codes_bad)
    add("maxTaskRetryCount string", msg({"id": "p-retry", "commandLine": "/bin/true",
                                         "constraints": {"maxTaskRetryCount": "two"}}),
        ("good", "p-retry"), codes_bad)
    add("maxWallClockTime bad", msg({"id": "p-wall", "commandLine": "/bin/true",
                                     "constraints": {"maxWallClockTime": "soon"}}),
        ("good", "p-wall"), codes_bad)
    add("environmentSettings object", msg({"id": "p-env", "commandLine": "/bin/true",
                                           "environmentSettings": {"A": "1"}}),
        ("good", "p-env"), codes_bad)
    add("resourceFiles string", msg({"id": "p-rf", "commandLine": "/bin/true",
                                     "resourceFiles": "http://x/y"}), ("good", "p-rf"), codes_bad)
    add("dependsOn string", msg({"id": "p-deps", "commandLine": "/bin/true", "dependsOn": "t1"}),
        ("good", "p-deps"), codes_bad)
    add("dependsOn without usesTaskDependencies",
        msg({"id": "p-nodeps", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["x"]}}),
        ("good", "p-nodeps"), codes_bad)
    add("unknown task field", msg({"id": "p-field", "commandLine": "/bin/true", "bogusField": 1}),
        ("good", "p-field"), codes_bad)
    add("unknown top-level field", msg(dict(ok_task, id="p-top"), bogus=True),
        ("good", "p-top"), codes_bad)
    add("version 2", msg(dict(ok_task, id="p-v2"), version=2), ("good", "p-v2"), codes_bad)
    add("version string", msg(dict(ok_task, id="p-vstr"), version="1"),
        ("good", "p-vstr"), codes_bad)
    add("version 0", msg(dict(ok_task, id="p-v0"), version=0), ("good", "p-v0"), codes_bad)
    add("retryCount negative", msg(dict(ok_task, id="p-rneg"), retryCount=-1),
        ("good", "p-rneg"), codes_bad)
    add("retryCount string", msg(dict(ok_task, id="p-rstr"), retryCount="0"),
        ("good", "p-rstr"), codes_bad)
    add("requeueCount huge", msg(dict(ok_task, id="p-rhuge"), requeueCount=1e20),
        ("good", "p-rhuge"), codes_bad)
    add("unknown job", msg(dict(ok_task, id="p-nojobrow"), job="nosuchjob"),
        ("nosuchjob", "p-nojobrow"), ("JobNotFound",))
    add("bad base64", "!!!not-base64!!!")
    add("base64 bad padding", "eyJ2ZXJzaW9uIjox=")
    add("base64 of text", b64("hello, world"))
    add("base64 of truncated json", b64('{"version":1,"jobId":"good"'))
    add("base64 of an array", b64("[1,2,3]"))
    add("base64 of a bad task", b64(msg({"id": "p-b64bad"})), ("good", "p-b64bad"), codes_bad)
    # Text that is not UTF-8, or JSON whose strings are not (a lone
    # surrogate), is refused as a whole: no ids are read from it.
    add("base64 of invalid utf-8",
        b64(b'{"version":1,"jobId":"good","task":{"id":"p-utf","commandLine":"\xff\xfe"}}'))
    add("lone surrogate", msg({"id": "p-sur", "commandLine": "/bin/echo \ud800"}))
    add("deep nesting", '{"a":' * 5000 + "1" + "}" * 5000)
    add("60 KiB invalid task", msg({"id": "p-60k", "commandLine": 1, "pad": "x" * (60 * 1024)}),
        ("good", "p-60k"), codes_bad)
    return c


def texts_match(a, b):
    """The poison queue may hold the text as sent or base64 of it."""
    if a == b:
        return True
    for x, y in ((a, b), (b, a)):
        try:
            if base64.b64decode(x, validate=True).decode() == y:
                return True
        except Exception:
            pass
    return False


def run_backend(ws, label, put, poison_texts, extra_checks=None, storage=None):
    """Starts one daemon, puts the cases with put(list of texts), and checks
    that each ends in the poison queue or as a completed failed task."""
    all_cases = cases()
    if label == "local":
        all_cases.append(("empty text", "", None, None))
    pool = Pool(ws, nodes=1, slots=2, storage=storage)
    try:
        rc, out, err = pool.cli("job", "add", ws.write_json(label + "-job.json", {"id": "good"}))
        check(rc == 0, "%s: job add" % label, err)
        rc, out, err = pool.cli("task", "add", "good", ws.write_json(
            label + "-first.json", {"id": "first", "commandLine": "/bin/true"}))
        check(rc == 0, "%s: task add before the poison" % label, err)
        put([t for _, t, _, _ in all_cases])
        print("%s: put %d malformed messages" % (label, len(all_cases)))
        pool.start()

        def outcome():
            ptexts = poison_texts()
            res = {}
            for name, text, ids, codes in all_cases:
                if any(texts_match(text, p) for p in ptexts):
                    res[name] = "poison"
                    continue
                if ids is not None:
                    t = pool.task_json(*ids)
                    if t and t.get("state") == "completed" and (t.get("executionInfo") or {}).get("failureInfo"):
                        res[name] = "failed:" + str(t["executionInfo"]["failureInfo"].get("code"))
            return res
        res = {}

        def settled():
            res.clear()
            res.update(outcome())
            return len(res) == len(all_cases)
        wait_for(settled, 90, step=2)
        print("%s: outcomes: %s" % (label, json.dumps(res, sort_keys=True)))
        for name, text, ids, codes in all_cases:
            r = res.get(name)
            check(r is not None, "%s: %s ends in the poison queue or as a failed task" % (label, name),
                  "neither (%d bytes: %r)" % (len(text), text[:100]))
            if r is not None and ids is not None:
                t = pool.task_json(*ids)
                fi = (t or {}).get("executionInfo", {}).get("failureInfo") if t else None
                if ids[0] == "nosuchjob" and t is None:
                    # No row can be shown for a job that does not exist: the
                    # poison queue is the record.
                    check(r == "poison", "%s: %s (unknown job) is in the poison queue" % (label, name), r)
                    continue
                check(fi is not None and fi.get("code") in codes,
                      "%s: %s completes its task with failureInfo %s" % (label, name, "/".join(codes)),
                      (r, t))
        if extra_checks:
            extra_checks(pool)

        # The daemon keeps serving.
        check(pool.procs["node1"].poll() is None, "%s: the daemon is still running" % label)
        rc, out, err = pool.cli("task", "add", "good", ws.write_json(
            label + "-after.json", {"id": "after", "commandLine": "/bin/sh -c 'exit 0'"}))
        check(rc == 0, "%s: task add after the poison" % label, err)
        ok = wait_for(lambda: (pool.task_json("good", "after") or {}).get("state") == "completed", 60)
        t = pool.task_json("good", "after")
        check(ok and t["executionInfo"].get("exitCode") == 0 and
              t["executionInfo"].get("result") == "success",
              "%s: a good task added afterwards completes" % label, t)
        t = pool.task_json("good", "first")
        check(t is not None and t.get("state") == "completed" and
              t["executionInfo"].get("exitCode") == 0, "%s: the good task before them completed" % label, t)
    finally:
        status = pool.stop()
    check(status.get("node1") == 0, "%s: daemon exits 0 on SIGTERM" % label, status)
    log = pool.log("node1")
    check("AddressSanitizer" not in log and "runtime error" not in log,
          "%s: no sanitizer report in the daemon's log" % label, log[-2000:])


# ---- local spool ----------------------------------------------------------

def spool_put(spool_dir, queue, texts):
    """Writes message files into queues/<queue>/visible/ as protocol §7 says:
    {"v":1,"id","insertedMs","text"} under <visibleMs>.<id>.0, through a
    temporary file, fsync and rename."""
    d = os.path.join(spool_dir, "queues", queue, "visible")
    os.makedirs(d, mode=0o750, exist_ok=True)
    for seq, text in enumerate(texts):
        now_ms = int(time.time() * 1000)
        mid = "%013x%03x%016x" % (int(time.time() * 1e6), seq % 4096, random.getrandbits(64))
        body = json.dumps({"v": 1, "id": mid, "insertedMs": now_ms, "text": text})
        tmp = os.path.join(d, ".tmp-%016x" % random.getrandbits(64))
        with open(tmp, "w") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(d, "%013d.%s.0" % (now_ms, mid)))
    fd = os.open(d, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def spool_texts(spool_dir, queue):
    out = []
    for sub in ("visible", "leased"):
        d = os.path.join(spool_dir, "queues", queue, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name.startswith("."):
                continue
            try:
                with open(os.path.join(d, name)) as f:
                    out.append(json.load(f)["text"])
            except (OSError, ValueError, KeyError):
                pass
    return out


with Workspace() as ws:
    spool = os.path.join(ws.dir, "spool")
    big_text = msg({"id": "p-70k", "commandLine": "/bin/true", "pad": "y" * (70 * 1024)})

    def local_put(texts):
        spool_put(spool, QUEUE, texts + [big_text])

    def local_extra(pool):
        # Over 64 KiB: protocol §7 moves the file to bad/ on receive.
        bad = os.path.join(spool, "queues", QUEUE, "bad")
        ok = wait_for(lambda: os.path.isdir(bad) and
                      any(not n.startswith(".") for n in os.listdir(bad)), 20)
        check(ok, "local: a 70 KiB message goes to the queue's bad/ directory",
              os.listdir(os.path.join(spool, "queues", QUEUE)))

    run_backend(ws, "local", local_put, lambda: spool_texts(spool, POISON), local_extra)

# ---- over the receive limit: read the row before poisoning ----------------

with Workspace() as ws:
    # Three tasks whose messages come back a 100th time (past the pool's
    # maxDequeueCount of 5): one whose row was completed, one whose row
    # shows a retry sent since (retryCount 1, the message's 0), one as
    # added.  Only the last is poisoned; the other two messages are
    # dropped and their rows left as they were.
    spool = os.path.join(ws.dir, "spool")
    pool = Pool(ws, nodes=1, slots=2)
    try:
        rc, out, err = pool.cli("job", "add", ws.write_json("lim-job.json", {"id": "good"}))
        check(rc == 0, "limit: job add", err)
        for tid in ("lim-done", "lim-stale", "lim-poison"):
            rc, out, err = pool.cli("task", "add", "good", ws.write_json(
                tid + ".json", {"id": tid, "commandLine": "/bin/true"}))
            check(rc == 0, "limit: task add %s" % tid, err)
        sp = Spool(spool)
        sp.merge_row("batchdtasks", "good", "lim-done", state="completed", exitCode=0,
                     result="success")
        sp.merge_row("batchdtasks", "good", "lim-stale", retryCount=1)
        before = {t: open(sp.row_path("batchdtasks", "good", t)).read()
                  for t in ("lim-done", "lim-stale")}
        vis = os.path.join(spool, "queues", QUEUE, "visible")
        for name in os.listdir(vis):
            if not name.startswith("."):
                os.rename(os.path.join(vis, name),
                          os.path.join(vis, name.rsplit(".", 1)[0] + ".99"))
        pool.start()

        def settled():
            t = pool.task_json("good", "lim-poison") or {}
            left = [n for sub in ("visible", "leased")
                    for n in os.listdir(os.path.join(spool, "queues", QUEUE, sub))
                    if not n.startswith(".")]
            return t.get("state") == "completed" and not left
        check(wait_for(settled, 60), "limit: every message is dealt with")
        t = pool.task_json("good", "lim-poison")
        fi = (t or {}).get("executionInfo", {}).get("failureInfo") or {}
        check(fi.get("code") == "TaskPoisoned", "limit: the plain one is poisoned", t)
        ptexts = spool_texts(spool, POISON)
        check(len(ptexts) == 1 and '"lim-poison"' in ptexts[0],
              "limit: the poison queue holds only its message", ptexts)
        for tid in ("lim-done", "lim-stale"):
            check(open(sp.row_path("batchdtasks", "good", tid)).read() == before[tid],
                  "limit: %s: its row is left as it was" % tid)
        log = pool.log("node1")
        check("lim-done: a message received 100 times is dropped: the task is completed" in log,
              "limit: the log says why the duplicate was dropped", log[-2000:])
        check("lim-stale: a message received 100 times is dropped: the task was sent again" in log,
              "limit: the log says why the replaced one was dropped", log[-2000:])
    finally:
        status = pool.stop()
    check(status.get("node1") == 0, "limit: daemon exits 0 on SIGTERM", status)

# ---- Azurite --------------------------------------------------------------

if subprocess.run(["sh", "-c", "command -v node"], capture_output=True).returncode != 0:
    print("SKIP Azurite part: node is not installed (the local spool part ran)")
    finish()

with Workspace() as ws:
    az = Azurite(ws)
    with open(os.path.join(az.dir, "ports")) as f:
        bp, qp, tp = (int(x) for x in f.read().split())
    conn = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
            "BlobEndpoint=http://127.0.0.1:%d/%s;QueueEndpoint=http://127.0.0.1:%d/%s;"
            "TableEndpoint=http://127.0.0.1:%d/%s;" %
            (AZURITE_ACCOUNT, AZURITE_KEY, bp, AZURITE_ACCOUNT, qp, AZURITE_ACCOUNT,
             tp, AZURITE_ACCOUNT))
    tool = os.path.join(SOURCE_ROOT, "tests/lib/node/storagetool.js")

    def st(*args):
        p = subprocess.run(["node", tool] + [str(a) for a in args], capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL,
                           env=dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=conn,
                                    NODE_PATH=az.node_modules))
        if p.returncode != 0:
            raise RuntimeError("storagetool %s: %s" % (" ".join(map(str, args)), p.stderr))
        return p.stdout.strip()

    def azure_put(texts):
        st("queue-create", QUEUE)
        st("queue-put-many", QUEUE, ws.write_json("texts.json", texts))

    seen = []

    def azure_poison():
        # queue-texts hides what it reads for 30 s, and poison messages stay
        # in the poison queue: keep the union of every read.
        try:
            for t in json.loads(st("queue-texts", POISON)):
                if t not in seen:
                    seen.append(t)
        except (RuntimeError, ValueError) as e:
            print("poison queue not readable yet: %s" % e)
        return seen

    try:
        run_backend(ws, "azurite", azure_put, azure_poison,
                    storage={"connectionString": conn})
    finally:
        az.stop()
finish()
