#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Three daemons as three nodes sharing one local spool: a job of 500 tasks
with preparation and release tasks, dependencies and retries; a node killed
with SIGKILL in mid-run; drain on SIGTERM."""
import json
import os
import time

from harness import Workspace, check, finish, read
from pool import Pool, wait_for

with Workspace() as ws:
    pool = Pool(ws, nodes=3, slots=2)
    logdir = ws.writable_dir("logs")
    job = {
        "id": "big",
        "usesTaskDependencies": True,
        "jobPreparationTask": {"commandLine":
            "/bin/sh -c 'echo $AZ_BATCH_NODE_ID >> %s/prep.log'" % logdir},
        "jobReleaseTask": {"commandLine":
            "/bin/sh -c 'echo $AZ_BATCH_NODE_ID >> %s/release.log'" % logdir},
    }
    tasks = []
    for i in range(480):
        tasks.append({"id": "t%03d" % i, "commandLine":
                      "/bin/sh -c 'echo $AZ_BATCH_TASK_ID $AZ_BATCH_NODE_ID >> %s/ran.log'" % logdir})
    for i in range(10):
        tasks.append({"id": "flaky%d" % i, "constraints": {"maxTaskRetryCount": 2}, "commandLine":
                      "/bin/sh -c '[ -e %s/m-$AZ_BATCH_TASK_ID ] && exit 0; touch %s/m-$AZ_BATCH_TASK_ID; exit 3'"
                      % (logdir, logdir)})
    for i in range(10):
        tasks.append({"id": "dep%d" % i, "dependsOn": {"taskIds": ["t%03d" % i, "flaky%d" % i]},
                      "commandLine": "/bin/sh -c 'date +%%s.%%N > %s/dep-$AZ_BATCH_TASK_ID'" % logdir})
    try:
        rc, out, err = pool.cli("job", "add", ws.write_json("job.json", job))
        check(rc == 0, "job add", err)
        rc, out, err = pool.cli("task", "add", "big", ws.write_json("tasks.json", {"value": tasks}))
        check(rc == 0, "task add of 500 tasks", err)
        t0 = time.monotonic()
        pool.start()
        rc, out, err = pool.cli("wait", "big", "--timeout", "PT5M", timeout=400)
        elapsed = time.monotonic() - t0
        check(rc == 0, "all 500 tasks succeed (wait exits 0)", (rc, err[-2000:]))
        print("500 tasks on 3 nodes x 2 slots in %.1f s" % elapsed)
        rc, out, err = pool.cli("task", "list", "big")
        lines = [l for l in out.splitlines() if l.strip()]
        check(sum(1 for l in lines if " completed " in " %s " % l) == 500,
              "task list shows 500 completed", out[-2000:])
        ran = read(os.path.join(logdir, "ran.log")).split("\n")
        ids = [l.split()[0] for l in ran if l.strip()]
        check(set(ids) == {"t%03d" % i for i in range(480)}, "every plain task ran")
        nodes_used = {l.split()[1] for l in ran if l.strip()}
        check(len(nodes_used) == 3, "all three nodes ran tasks", nodes_used)
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

        # Termination: every node that prepared the job runs its release task.
        rc, out, err = pool.cli("job", "terminate", "big")
        check(rc == 0, "job terminate", err)
        released = wait_for(lambda: os.path.exists(os.path.join(logdir, "release.log")) and
                            sorted(read(os.path.join(logdir, "release.log")).split()) == sorted(nodes_used), 30)
        check(released, "release ran on every prepared node",
              read(os.path.join(logdir, "release.log")) if os.path.exists(os.path.join(logdir, "release.log")) else "")

        # A node killed in mid-run: its tasks complete on the others within two leases.
        slow = [{"id": "s%02d" % i, "commandLine": "/bin/sh -c 'sleep 2; echo $AZ_BATCH_NODE_ID >> %s/slow.log'" % logdir}
                for i in range(30)]
        pool.cli("job", "add", ws.write_json("job2.json", {"id": "slowjob"}))
        pool.cli("task", "add", "slowjob", ws.write_json("slow.json", slow))
        wait_for(lambda: os.path.exists(os.path.join(logdir, "slow.log")), 30)
        t0 = time.monotonic()
        pool.kill("node1")
        rc, out, err = pool.cli("wait", "slowjob", "--timeout", "PT2M", timeout=200)
        check(rc == 0, "tasks of a killed node complete elsewhere", (rc, err[-1500:]))
        print("after SIGKILL of node1 the job finished in %.1f s (lease PT10S)" % (time.monotonic() - t0))
        check(time.monotonic() - t0 < 2 * 10 + 30, "within about two lease lengths")
        rc, out, err = pool.cli("task", "list", "slowjob")
        check(out.count("completed") == 30, "30 completed, recorded once each", out)
    finally:
        status = pool.stop()
    check(all(v == 0 for n, v in status.items() if n != "node1"), "daemons drain and exit 0 on SIGTERM", status)
    for n in ("node2", "node3"):
        log = pool.log(n)
        check("sig=" not in log, "no signature in %s's log" % n)
finish()
