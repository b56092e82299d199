#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The pool scenario of test_pool_local.py on Azurite's queue and tables:
three daemons, a job of 500 tasks with preparation and release tasks,
dependencies and retries; tasks enqueued by the official SDK
(@azure/storage-queue), raw and base64, read back with @azure/data-tables;
Azurite stopped for 30 s in mid-run; a daemon killed with SIGKILL."""
import base64
import json
import os
import subprocess
import sys
import time

from harness import (AZURITE_ACCOUNT, AZURITE_KEY, SOURCE_ROOT, Azurite,
                     Workspace, check, finish, read)
from pool import Pool, wait_for

QUEUE = "testpool-tasks"


def node_missing():
    return subprocess.run(["sh", "-c", "command -v node"], capture_output=True).returncode != 0


class AzuritePool(Azurite):
    """Azurite with a connection string that names all three services, and
    tests/lib/node/storagetool.js (queue and table SDKs) as the other party."""

    def __init__(self, ws):
        super().__init__(ws)
        with open(os.path.join(self.dir, "ports")) as f:
            bp, qp, tp = (int(x) for x in f.read().split())
        self.conn = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
                     "BlobEndpoint=http://127.0.0.1:%d/%s;QueueEndpoint=http://127.0.0.1:%d/%s;"
                     "TableEndpoint=http://127.0.0.1:%d/%s;" %
                     (AZURITE_ACCOUNT, AZURITE_KEY, bp, AZURITE_ACCOUNT, qp, AZURITE_ACCOUNT,
                      tp, AZURITE_ACCOUNT))
        self._storagetool = os.path.join(SOURCE_ROOT, "tests/lib/node/storagetool.js")

    def st(self, *args):
        """Runs storagetool.js ARGS; returns its stdout, stripped; raises on failure."""
        p = subprocess.run(["node", self._storagetool] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                           env=dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=self.conn,
                                    NODE_PATH=self.node_modules))
        if p.returncode != 0:
            raise RuntimeError("storagetool %s: %s" % (" ".join(map(str, args)), p.stderr))
        return p.stdout.strip()


if node_missing():
    print("SKIP node is not installed: the Azurite pool test needs Node.js")
    sys.exit(77)

with Workspace() as ws:
    az = AzuritePool(ws)
    storage = {"connectionString": az.conn}
    pool = Pool(ws, nodes=3, slots=2, storage=storage)
    logdir = ws.writable_dir("logs")
    job = {
        "id": "big",
        "usesTaskDependencies": True,
        "jobPreparationTask": {"commandLine":
            "/bin/sh -c 'echo $AZ_BATCH_NODE_ID >> %s/prep.log'" % logdir},
        "jobReleaseTask": {"commandLine":
            "/bin/sh -c 'echo $AZ_BATCH_NODE_ID >> %s/release.log'" % logdir},
    }
    NPLAIN = 480
    tasks = []
    for i in range(NPLAIN):
        tasks.append({"id": "t%03d" % i, "commandLine":
                      "/bin/sh -c 'echo $AZ_BATCH_TASK_ID $AZ_BATCH_NODE_ID >> %s/ran.log'" % logdir})
    for i in range(10):
        tasks.append({"id": "flaky%d" % i, "constraints": {"maxTaskRetryCount": 2}, "commandLine":
                      "/bin/sh -c '[ -e %s/m-$AZ_BATCH_TASK_ID ] && exit 0; touch %s/m-$AZ_BATCH_TASK_ID; exit 3'"
                      % (logdir, logdir)})
    for i in range(10):
        tasks.append({"id": "dep%d" % i, "dependsOn": {"taskIds": ["t%03d" % i, "flaky%d" % i]},
                      "commandLine": "/bin/sh -c 'date +%%s.%%N > %s/dep-$AZ_BATCH_TASK_ID'" % logdir})
    NTOTAL = len(tasks) + 2
    try:
        rc, out, err = pool.cli("job", "add", ws.write_json("job.json", job))
        check(rc == 0, "job add on Azurite", err)
        rc, out, err = pool.cli("task", "add", "big", ws.write_json("tasks.json", {"value": tasks}))
        check(rc == 0, "task add of %d tasks" % len(tasks), err)

        # Two tasks put by Microsoft's queue SDK in the documented format.
        sdk = {}
        for name, code, enc in (("sdkraw", 7, False), ("sdkb64", 0, True)):
            text = json.dumps({"version": 1, "jobId": "big", "task": {
                "id": name, "commandLine": "/bin/sh -c 'echo %s >> %s/sdk.log; exit %d'"
                % (name, logdir, code)}})
            if enc:
                text = base64.b64encode(text.encode()).decode()
            sdk[name] = code
            try:
                az.st("queue-put", QUEUE, ws.write(name + ".txt", text))
                check(True, "SDK put of a %s task message" % ("base64" if enc else "raw JSON"))
            except RuntimeError as e:
                check(False, "SDK put of a %s task message" % ("base64" if enc else "raw JSON"), e)

        t0 = time.monotonic()
        pool.start()
        # Azurite goes away for 30 s in mid-run, data and ports kept.
        started = wait_for(lambda: os.path.exists(os.path.join(logdir, "ran.log")) and
                           len(read(os.path.join(logdir, "ran.log")).splitlines()) >= 30, 60)
        check(started, "the pool is running tasks before the outage")
        az.stop()
        print("Azurite stopped at %.1f s" % (time.monotonic() - t0))
        time.sleep(30)
        az.restart()
        print("Azurite back at %.1f s" % (time.monotonic() - t0))
        rc, out, err = pool.cli("wait", "big", "--timeout", "PT8M", timeout=560)
        elapsed = time.monotonic() - t0
        # sdkraw exits 7 by design, so wait reports a failure; judge by the list.
        print("%d tasks on 3 nodes x 2 slots in %.1f s (wait: %d)" % (NTOTAL, elapsed, rc))
        rc, out, err = pool.cli("task", "list", "big")
        lines = [l for l in out.splitlines() if l.strip()]
        ncompleted = sum(1 for l in lines if " completed " in " %s " % l)
        check(ncompleted == NTOTAL, "task list shows %d completed after the outage" % NTOTAL,
              (ncompleted, out[-2000:]))
        ran = read(os.path.join(logdir, "ran.log")).split("\n")
        ids = [l.split()[0] for l in ran if l.strip()]
        check(set(ids) == {"t%03d" % i for i in range(NPLAIN)}, "every plain task ran")
        dup = len(ids) - len(set(ids))
        print("%d plain tasks ran more than once (at least once is allowed)" % dup)
        nodes_used = {l.split()[1] for l in ran if l.strip()}
        check(len(nodes_used) == 3, "all three nodes ran tasks", nodes_used)
        try:
            n = int(az.st("table-count", "batchdtasks", "big"))
            check(n == NTOTAL, "every task recorded once in batchdtasks (data-tables SDK)", n)
        except RuntimeError as e:
            check(False, "table-count through the data-tables SDK", e)
        bad = []
        for i in (0, 57, 123, NPLAIN - 1):
            t = pool.task_json("big", "t%03d" % i)
            if not (t and t.get("state") == "completed" and t["executionInfo"].get("exitCode") == 0):
                bad.append((i, t))
        check(not bad, "sampled tasks completed with exit code 0", bad)
        prep = read(os.path.join(logdir, "prep.log")).split()
        check(sorted(prep) == sorted(nodes_used), "preparation ran once on each node", prep)
        f = pool.task_json("big", "flaky3")
        check(f is not None and f["executionInfo"]["retryCount"] == 1 and
              f["executionInfo"]["result"] == "success", "a flaky task retried through the queue", f)
        d = pool.task_json("big", "dep3")
        t = pool.task_json("big", "t003")
        ok = d is not None and t is not None and d["executionInfo"]["startTime"] >= t["executionInfo"]["endTime"]
        check(ok, "a dependant started after its dependency ended",
              (d and d["executionInfo"], t and t["executionInfo"]))

        # The SDK's tasks, read back through @azure/data-tables.
        for name, code in sdk.items():
            try:
                e = json.loads(az.st("table-get", "batchdtasks", "big", name))
            except (RuntimeError, ValueError) as ex:
                e = {"error": str(ex)}

            def val(k):
                v = e.get(k)
                v = v.get("value") if isinstance(v, dict) else v
                return v
            ec = val("exitCode")
            check(val("state") == "completed" and ec is not None and int(ec) == code,
                  "SDK task %s: state completed, exitCode %d (data-tables SDK)" % (name, code), e)
        check(sorted(read(os.path.join(logdir, "sdk.log")).split()) == ["sdkb64", "sdkraw"]
              if os.path.exists(os.path.join(logdir, "sdk.log")) else False,
              "both SDK tasks ran")

        # Termination: every node that prepared the job runs its release task.
        rc, out, err = pool.cli("job", "terminate", "big")
        check(rc == 0, "job terminate", err)
        rel = os.path.join(logdir, "release.log")
        released = wait_for(lambda: os.path.exists(rel) and
                            sorted(read(rel).split()) == sorted(nodes_used), 40)
        check(released, "release ran on every prepared node",
              read(rel) if os.path.exists(rel) else "")

        # A node killed in mid-run: its tasks complete on the others.
        slow = [{"id": "s%02d" % i, "commandLine":
                 "/bin/sh -c 'sleep 2; echo $AZ_BATCH_TASK_ID $AZ_BATCH_NODE_ID >> %s/slow.log'" % logdir}
                for i in range(24)]
        pool.cli("job", "add", ws.write_json("job2.json", {"id": "slowjob"}))
        pool.cli("task", "add", "slowjob", ws.write_json("slow.json", slow))
        wait_for(lambda: os.path.exists(os.path.join(logdir, "slow.log")), 60)
        t0 = time.monotonic()
        pool.kill("node1")
        rc, out, err = pool.cli("wait", "slowjob", "--timeout", "PT2M", timeout=200)
        check(rc == 0, "tasks of a killed node complete elsewhere", (rc, err[-1500:]))
        print("after SIGKILL of node1 the job finished in %.1f s (lease PT10S)" % (time.monotonic() - t0))
        rc, out, err = pool.cli("task", "list", "slowjob")
        check(out.count("completed") == 24, "24 completed", out)
        sl = [l.split() for l in read(os.path.join(logdir, "slow.log")).splitlines() if l.strip()]
        check({l[0] for l in sl} == {"s%02d" % i for i in range(24)}, "every slow task ran")
        try:
            n = int(az.st("table-count", "batchdtasks", "slowjob"))
            check(n == 24, "each slow task recorded once (data-tables SDK)", n)
        except RuntimeError as e:
            check(False, "table-count of slowjob", e)
    finally:
        status = pool.stop()
        az.stop()
    check(all(v == 0 for n, v in status.items() if n != "node1"),
          "daemons drain and exit 0 on SIGTERM", status)
    for n in ("node1", "node2", "node3"):
        log = pool.log(n)
        check("sig=" not in log and "AccountKey" not in log, "no signature or key in %s's log" % n)
        check("AddressSanitizer" not in log and "runtime error" not in log,
              "no sanitizer report in %s's log" % n, log[-2000:])
finish()
