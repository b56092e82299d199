#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The start task's node states and task slots on a local spool, one
daemon per case (spec §4.1, §6.1, §6.2):

- waitForSuccess true: the node is `waitingforstarttask` while the start
  task runs and takes no task; it takes them once the start task succeeds.
- waitForSuccess true, failing: retried maxTaskRetryCount times, then the
  node is `starttaskfailed` with the reason, and no task is taken.
- retries that end in success: the node becomes usable.
- waitForSuccess false: tasks run while the start task still runs.
- requiredSlots 2 on a 2-slot node never overlaps another task; a task
  that needs more slots than the node has completes with a failureInfo.
- The HTTP client is made on first use: an idle node on the local spool
  has not loaded libcurl, and a start task and a task with http resource
  files (from a real nginx) still get them."""
import os

from harness import Nginx, Spool, Workspace, check, finish, read
from pool import Pool, wait_for


def node_row(ws):
    return Spool(os.path.join(ws.dir, "spool")).rows("batchdnodes", "testpool").get("node1", {})


def node_state(ws):
    return node_row(ws).get("state")


def add_job(pool, ws, job_id, tasks):
    rc, out, err = pool.cli("job", "add", ws.write_json(job_id + "-job.json", {"id": job_id}))
    check(rc == 0, "job add " + job_id, err)
    rc, out, err = pool.cli("task", "add", job_id, ws.write_json(job_id + "-tasks.json", tasks))
    check(rc == 0, "task add " + job_id, err)


def task_state(pool, job, task):
    t = pool.task_json(job, task)
    return t.get("state") if t else None


# ---- waitForSuccess true: waiting, then usable -----------------------------
with Workspace() as ws:
    gate = os.path.join(ws.dir, "gate")
    log = os.path.join(ws.dir, "start.log")
    pool = Pool(ws, nodes=1, slots=1, extra={"startTask": {
        "commandLine": "/bin/sh -c 'echo run >> %s; while [ ! -e %s ]; do sleep 0.05; done'" % (log, gate),
        "waitForSuccess": True}})
    add_job(pool, ws, "early", [{"id": "t1", "commandLine": "/bin/true"}])
    try:
        pool.start()
        check(wait_for(lambda: node_state(ws) == "waitingforstarttask", 30),
              "waitForSuccess: the node is waitingforstarttask while it runs", node_row(ws))
        check(wait_for(lambda: os.path.exists(log), 30), "the start task runs")
        rc, out, err = pool.cli("node", "list")
        check(rc == 0 and "waitingforstarttask" in out, "node list shows waitingforstarttask", out)
        # The node takes nothing meanwhile: the task stays active and its
        # message stays in the queue.
        check(not wait_for(lambda: task_state(pool, "early", "t1") != "active", 1.5),
              "no task is taken while the start task runs", pool.task_json("early", "t1"))
        check(len(Spool(os.path.join(ws.dir, "spool")).messages("testpool-tasks")) == 1,
              "its message is still visible in the queue")
        open(gate, "w").close()
        check(wait_for(lambda: task_state(pool, "early", "t1") == "completed", 30),
              "the task runs once the start task succeeded", pool.task_json("early", "t1"))
        check(wait_for(lambda: node_state(ws) == "idle", 30), "the node is idle then", node_row(ws))
        check(read(log).split() == ["run"], "the start task ran once", read(log))
    finally:
        st = pool.stop()
    check(st == {"node1": 0}, "the daemon drains and exits 0", st)

# ---- waitForSuccess true, failing all retries: starttaskfailed ------------
with Workspace() as ws:
    log = os.path.join(ws.dir, "start.log")
    pool = Pool(ws, nodes=1, slots=1, extra={"startTask": {
        "commandLine": "/bin/sh -c 'echo try >> %s; exit 3'" % log,
        "maxTaskRetryCount": 2, "waitForSuccess": True}})
    add_job(pool, ws, "blocked", [{"id": "t1", "commandLine": "/bin/true"}])
    try:
        pool.start()
        check(wait_for(lambda: node_state(ws) == "starttaskfailed", 60),
              "a start task that fails all its retries: starttaskfailed", node_row(ws))
        check(read(log).split() == ["try"] * 3, "maxTaskRetryCount 2: three attempts",
              read(log) if os.path.exists(log) else "")
        reason = node_row(ws).get("stateReason", "")
        check("start task failed" in reason,
              "the node's row says why", reason)
        rc, out, err = pool.cli("node", "list")
        check(rc == 0 and "starttaskfailed" in out and "start task failed" in out,
              "node list shows the state and the reason", out)
        check(not wait_for(lambda: task_state(pool, "blocked", "t1") != "active", 2),
              "no task is taken by a node whose start task failed", pool.task_json("blocked", "t1"))
        check(len(Spool(os.path.join(ws.dir, "spool")).messages("testpool-tasks")) == 1,
              "the task's message stays in the queue for other nodes")
    finally:
        st = pool.stop()
    check(st == {"node1": 0}, "a starttaskfailed node stops on SIGTERM with 0", st)

# ---- retries that end in success -------------------------------------------
with Workspace() as ws:
    log = os.path.join(ws.dir, "start.log")
    count = os.path.join(ws.dir, "count")
    pool = Pool(ws, nodes=1, slots=1, extra={"startTask": {
        "commandLine": "/bin/sh -c 'echo try >> %s; [ $(wc -l < %s) -ge 3 ]'" % (log, log),
        "maxTaskRetryCount": 5, "waitForSuccess": True}})
    add_job(pool, ws, "later", [{"id": "t1", "commandLine": "/bin/true"}])
    try:
        pool.start()
        check(wait_for(lambda: task_state(pool, "later", "t1") == "completed", 60),
              "a start task that succeeds on its third attempt lets tasks run",
              pool.task_json("later", "t1"))
        check(read(log).split() == ["try"] * 3, "it ran three times, not more", read(log))
        check(node_row(ws).get("stateReason", "") == "", "no reason left on the row", node_row(ws))
    finally:
        st = pool.stop()
    check(st == {"node1": 0}, "exit 0", st)

# ---- waitForSuccess false: tasks run meanwhile ----------------------------
with Workspace() as ws:
    gate = os.path.join(ws.dir, "gate")
    pool = Pool(ws, nodes=1, slots=1, extra={"startTask": {
        "commandLine": "/bin/sh -c 'while [ ! -e %s ]; do sleep 0.05; done; exit 1'" % gate,
        "waitForSuccess": False}})
    add_job(pool, ws, "meanwhile", [{"id": "t%d" % i, "commandLine": "/bin/true"} for i in range(3)])
    try:
        pool.start()
        ok = wait_for(lambda: all(task_state(pool, "meanwhile", "t%d" % i) == "completed"
                                  for i in range(3)), 60)
        check(ok, "waitForSuccess false: tasks run while the start task runs")
        check(not os.path.exists(gate) and node_state(ws) in ("idle", "running"),
              "the node is usable, not waitingforstarttask", node_row(ws))
        open(gate, "w").close()
        check(not wait_for(lambda: node_state(ws) == "starttaskfailed", 2),
              "its failure does not block the node (no starttaskfailed)", node_row(ws))
        add_job(pool, ws, "after", [{"id": "t1", "commandLine": "/bin/true"}])
        check(wait_for(lambda: task_state(pool, "after", "t1") == "completed", 30),
              "tasks still run after it failed")
    finally:
        st = pool.stop()
    check(st == {"node1": 0}, "exit 0", st)

# ---- HTTP made on first use ---------------------------------------------------
with Workspace() as ws:
    web = Nginx(ws)
    web.put_file("data/in.txt", "hello over http\n")
    url = web.url + "/data/in.txt"
    gate = os.path.join(ws.dir, "gate")
    # No start task first: an idle node has not loaded libcurl.
    pool = Pool(ws, nodes=1, slots=1)
    try:
        pool.start()
        pid = pool.procs["node1"].pid
        check(wait_for(lambda: node_state(ws) == "idle", 30), "lazy http: the node is idle")
        maps = read("/proc/%d/maps" % pid)
        check("libcurl" not in maps, "lazy http: an idle node on the local spool has not loaded libcurl")
        add_job(pool, ws, "web", [{"id": "get", "commandLine": "/bin/sh -c 'cat in.txt'",
                                   "resourceFiles": [{"httpUrl": url, "filePath": "in.txt"}]}])
        check(wait_for(lambda: task_state(pool, "web", "get") == "completed", 30),
              "lazy http: a task with an http resource file completes")
        t = pool.task_json("web", "get")
        check(t is not None and t["executionInfo"]["result"] == "success", "lazy http: it succeeded", t)
        out = os.path.join(ws.dir, "node1", "root", "workitems", "web", "job-1", "get", "stdout.txt")
        check(os.path.exists(out) and read(out) == "hello over http\n", "lazy http: the file was downloaded")
    finally:
        pool.stop()
    # A start task with an http resource file.
    ws2 = os.path.join(ws.dir, "second")
    os.makedirs(ws2)
    pool = Pool(ws, nodes=1, slots=1, extra={
        "nodeRoot": os.path.join(ws2, "root"), "stateDir": os.path.join(ws2, "state"),
        "startTask": {"commandLine": "/bin/sh -c 'cp in.txt %s'" % gate,
                      "resourceFiles": [{"httpUrl": url, "filePath": "in.txt"}]}})
    try:
        pool.start()
        check(wait_for(lambda: os.path.exists(gate) and read(gate) == "hello over http\n", 30),
              "lazy http: a start task gets its http resource file")
    finally:
        pool.stop()
        web.stop()

# ---- requiredSlots ---------------------------------------------------------
with Workspace() as ws:
    logdir = ws.writable_dir("logs")  # tasks run as the pool's task user
    cmd = ("/bin/sh -c 'date +%%s.%%N > %s/$AZ_BATCH_TASK_ID.start; sleep 0.4; "
           "date +%%s.%%N > %s/$AZ_BATCH_TASK_ID.end'" % (logdir, logdir))
    pool = Pool(ws, nodes=1, slots=2)
    tasks = [{"id": "small%d" % i, "commandLine": cmd} for i in range(6)]
    tasks.insert(3, {"id": "big", "requiredSlots": 2, "commandLine": cmd})
    tasks.append({"id": "huge", "requiredSlots": 3, "commandLine": "/bin/true"})
    add_job(pool, ws, "slots", tasks)
    try:
        pool.start()
        rc, out, err = pool.cli("wait", "slots", "--timeout", "PT2M", timeout=200)
        check(rc == 1, "wait ends (exit 1: one task failed)", (rc, out[-500:], err[-500:]))

        def span(t):
            return (float(read(os.path.join(logdir, t + ".start"))),
                    float(read(os.path.join(logdir, t + ".end"))))
        b0, b1 = span("big")
        overlaps = [t["id"] for t in tasks if t["id"].startswith("small") and
                    span(t["id"])[0] < b1 and span(t["id"])[1] > b0]
        check(overlaps == [], "a 2-slot task on a 2-slot node overlaps no other task", overlaps)
        smalls = sorted(span("small%d" % i) for i in range(6))
        check(any(smalls[i + 1][0] < smalls[i][1] for i in range(5)),
              "1-slot tasks do run two at a time", smalls)
        h = pool.task_json("slots", "huge")
        fi = (h or {}).get("executionInfo", {}).get("failureInfo") or {}
        check(h is not None and h["state"] == "completed" and fi.get("category") == "usererror"
              and "requiredSlots" in fi.get("message", ""),
              "requiredSlots 3 on 2-slot nodes: completed with a usererror failureInfo", h)
        check(not os.path.exists(os.path.join(logdir, "huge.start")), "and it never ran")
    finally:
        st = pool.stop()
    check(st == {"node1": 0}, "exit 0", st)

finish()
