#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Stopping, restarting and reloading a node on a local spool:

- SIGTERM with two tasks running, once per nodeDeallocationOption (spec
  §6.3): requeue (tasks ended, back in the queue with requeueCount 1, run
  again by the next daemon), terminate (completed with a failureInfo, not
  run again), taskcompletion (run to their end, nothing new taken),
  retaineddata (run to their end, then the daemon waits until their
  directories' retentionTime passed and they are removed); a second
  SIGTERM requeues what still runs.
- A daemon restarted after it prepared a job runs the job's release task
  when the job is terminated, without any new task of it arriving.
- SIGHUP: more task slots and new polling bounds apply at once.
- Housekeeping: a task directory goes once its retentionTime has passed;
  a node root on a small tmpfs filled below tasks.freeSpaceReserveBytes
  makes the node unusable (with the reason in `batchd node list`) and it
  takes no task until space comes back.
- A node root on an ext4 made without a journal: the daemon says so at
  start, once, and points to docs/operations.md."""
import json
import os
import signal
import subprocess
import time

from harness import Spool, Workspace, check, finish, read
from pool import Pool, wait_for

QUEUE = "testpool-tasks"


def spool(ws):
    return Spool(os.path.join(ws.dir, "spool"))


def node_row(ws, node="node1"):
    return spool(ws).rows("batchdnodes", "testpool").get(node, {})


def lines(path):
    return read(path).split() if os.path.exists(path) else []


def gated_tasks(ws, n, extra=None):
    """n tasks that log their start, wait for ws.dir/gate, log their end."""
    cmd = ("/bin/sh -c 'echo $AZ_BATCH_TASK_ID >> %s/started; while [ ! -e %s/gate ]; "
           "do sleep 0.05; done; echo $AZ_BATCH_TASK_ID >> %s/ended'" % (ws.dir, ws.dir, ws.dir))
    out = []
    for i in range(n):
        t = {"id": "t%d" % i, "commandLine": cmd}
        t.update(extra or {})
        out.append(t)
    return out


def add(pool, ws, job, tasks):
    rc, out, err = pool.cli("job", "add", ws.write_json(job["id"] + "-job.json", job))
    check(rc == 0, "job add " + job["id"], err)
    if tasks:
        rc, out, err = pool.cli("task", "add", job["id"], ws.write_json(job["id"] + "-t.json", tasks))
        check(rc == 0, "task add " + job["id"], err)


def rows(ws, job):
    return spool(ws).rows("batchdtasks", job)


def dealloc_case(option, extra_task=None):
    """Starts one 2-slot node with the option, 2 gated tasks running and a
    third waiting; SIGTERMs it.  Returns (ws, pool, proc) with ws open."""
    ws = Workspace()
    pool = Pool(ws, nodes=1, slots=2, extra={"nodeDeallocationOption": option})
    add(pool, ws, {"id": "d"}, gated_tasks(ws, 3, extra_task))
    pool.start()
    ok = wait_for(lambda: len(lines(os.path.join(ws.dir, "started"))) == 2, 60)
    check(ok, "%s: two tasks run" % option, lines(os.path.join(ws.dir, "started")))
    proc = pool.procs["node1"]
    proc.send_signal(signal.SIGTERM)
    return ws, pool, proc


# ---- requeue -----------------------------------------------------------------
ws, pool, proc = dealloc_case("requeue")
with ws:
    try:
        st = proc.wait(timeout=60)
        check(st == 0, "requeue: the daemon ends its tasks and exits 0", st)
        started = lines(os.path.join(ws.dir, "started"))
        check(lines(os.path.join(ws.dir, "ended")) == [], "requeue: the tasks were ended, not finished")
        r = rows(ws, "d")
        ok = all(r[t]["state"] == "active" and r[t].get("requeueCount") == 1 and
                 r[t].get("retryCount", 0) == 0 for t in started)
        check(ok, "requeue: their rows are active with requeueCount 1, retryCount 0",
              {t: r.get(t) for t in started})
        msgs = [json.loads(m) if m.startswith("{") else m for m in spool(ws).messages(QUEUE)]
        ids = sorted(m["task"]["id"] for m in msgs if isinstance(m, dict))
        check(ids == ["t0", "t1", "t2"], "requeue: all three tasks are in the queue again", msgs)
        # The next daemon runs them to the end, each once more.
        open(os.path.join(ws.dir, "gate"), "w").close()
        pool.start()
        rc, out, err = pool.cli("wait", "d", "--timeout", "PT1M", timeout=120)
        check(rc == 0, "requeue: a new daemon runs them to success", (rc, err[-500:]))
        r = rows(ws, "d")
        check(all(r[t]["state"] == "completed" and r[t].get("requeueCount") == 1 for t in started),
              "requeue: completed with requeueCount 1 kept", {t: r.get(t) for t in started})
        check(sorted(lines(os.path.join(ws.dir, "ended"))) == ["t0", "t1", "t2"],
              "requeue: each task finished exactly once", lines(os.path.join(ws.dir, "ended")))
    finally:
        pool.stop()

# ---- terminate -----------------------------------------------------------------
ws, pool, proc = dealloc_case("terminate")
with ws:
    try:
        st = proc.wait(timeout=60)
        check(st == 0, "terminate: the daemon ends its tasks and exits 0", st)
        started = lines(os.path.join(ws.dir, "started"))
        r = rows(ws, "d")
        ok = all(r[t]["state"] == "completed" and r[t].get("result") == "failure" and
                 "terminat" in (r[t].get("failureMessage") or "") for t in started)
        check(ok, "terminate: the running tasks completed with a failureInfo saying so",
              {t: r.get(t) for t in started})
        ids = [json.loads(m)["task"]["id"] for m in spool(ws).messages(QUEUE)]
        check(ids == [t for t in ["t0", "t1", "t2"] if t not in started],
              "terminate: only the task that never started is left in the queue", ids)
        open(os.path.join(ws.dir, "gate"), "w").close()
        pool.start()
        waiting = [t for t in ["t0", "t1", "t2"] if t not in started][0]
        check(wait_for(lambda: rows(ws, "d").get(waiting, {}).get("state") == "completed", 60),
              "terminate: the next daemon runs the waiting one")
        time.sleep(0.5)
        check(lines(os.path.join(ws.dir, "ended")) == [waiting],
              "terminate: the terminated tasks do not run again", lines(os.path.join(ws.dir, "ended")))
    finally:
        pool.stop()

# ---- taskcompletion --------------------------------------------------------------
ws, pool, proc = dealloc_case("taskcompletion")
with ws:
    try:
        check(wait_for(lambda: node_row(ws).get("state") == "leavingpool", 30),
              "taskcompletion: the node is leavingpool", node_row(ws))
        check(proc.poll() is None, "taskcompletion: the daemon waits for its tasks")
        open(os.path.join(ws.dir, "gate"), "w").close()
        st = proc.wait(timeout=60)
        check(st == 0, "taskcompletion: it exits 0 once they finished", st)
        started = lines(os.path.join(ws.dir, "started"))
        check(sorted(lines(os.path.join(ws.dir, "ended"))) == sorted(started) and len(started) == 2,
              "taskcompletion: both running tasks ran to their end, no new one started",
              (started, lines(os.path.join(ws.dir, "ended"))))
        r = rows(ws, "d")
        check(all(r[t]["state"] == "completed" and r[t].get("result") == "success" for t in started),
              "taskcompletion: completed with success", {t: r.get(t) for t in started})
        ids = [json.loads(m)["task"]["id"] for m in spool(ws).messages(QUEUE)]
        check(len(ids) == 1 and ids[0] not in started, "taskcompletion: the third is still queued", ids)
        check(node_row(ws).get("state") == "offline", "taskcompletion: the node ends offline", node_row(ws))
    finally:
        pool.stop()

# ---- a second SIGTERM during a taskcompletion drain ---------------------------
ws, pool, proc = dealloc_case("taskcompletion")
with ws:
    try:
        check(wait_for(lambda: node_row(ws).get("state") == "leavingpool", 30),
              "second signal: the node is leavingpool", node_row(ws))
        proc.send_signal(signal.SIGTERM)
        st = proc.wait(timeout=60)
        check(st == 0, "second signal: the daemon ends its tasks and exits 0", st)
        started = lines(os.path.join(ws.dir, "started"))
        r = rows(ws, "d")
        check(all(r[t]["state"] == "active" and r[t].get("requeueCount") == 1 for t in started),
              "second signal: the running tasks were requeued", {t: r.get(t) for t in started})
        check(len(spool(ws).messages(QUEUE)) == 3, "second signal: all three are queued")
    finally:
        pool.stop()

# ---- retaineddata ------------------------------------------------------------------
ws, pool, proc = dealloc_case("retaineddata", {"constraints": {"retentionTime": "PT5S"}})
with ws:
    try:
        started = lines(os.path.join(ws.dir, "started"))
        dirs = [os.path.join(ws.dir, "node1", "root", "workitems", "d", "job-1", t) for t in started]
        check(all(os.path.isdir(d) for d in dirs), "retaineddata: the task directories exist", dirs)
        open(os.path.join(ws.dir, "gate"), "w").close()
        check(wait_for(lambda: len(lines(os.path.join(ws.dir, "ended"))) == 2, 30),
              "retaineddata: the running tasks run to their end")
        t_end = time.monotonic()
        check(wait_for(lambda: node_row(ws).get("retainedTaskDirs") == 2, 10),
              "retaineddata: the node row counts the retained directories", node_row(ws))
        check(proc.poll() is None, "retaineddata: the daemon waits for their retention time")
        st = proc.wait(timeout=60)
        waited = time.monotonic() - t_end
        check(st == 0, "retaineddata: it exits 0 once the retention passed", st)
        check(waited >= 2.0, "retaineddata: it waited for the retention (%.1f s)" % waited)
        check(not any(os.path.exists(d) for d in dirs),
              "retaineddata: the task directories are gone", dirs)
        r = rows(ws, "d")
        check(all(r[t]["state"] == "completed" for t in started), "retaineddata: tasks completed")
    finally:
        pool.stop()

# ---- a restarted daemon releases a job it prepared ------------------------------
with Workspace() as ws:
    pool = Pool(ws, nodes=1, slots=1)
    rel = os.path.join(ws.dir, "release.log")
    add(pool, ws, {"id": "pr",
                   "jobPreparationTask": {"commandLine": "/bin/true"},
                   "jobReleaseTask": {"commandLine": "/bin/sh -c 'echo $AZ_BATCH_NODE_ID >> %s'" % rel}},
        [{"id": "one", "commandLine": "/bin/true"}])
    try:
        pool.start()
        rc, out, err = pool.cli("wait", "pr", "--timeout", "PT1M", timeout=120)
        check(rc == 0, "restart: the job's task ran (with its preparation)", err)
        st = pool.stop()
        check(st == {"node1": 0}, "restart: the daemon stops", st)
        pool.start()
        check(wait_for(lambda: "joining pool" in pool.log("node1").split("stopped")[-1], 30),
              "restart: the daemon is back")
        rc, out, err = pool.cli("job", "terminate", "pr")
        check(rc == 0, "restart: job terminate", err)
        check(wait_for(lambda: lines(rel) == ["node1"], 30),
              "restart: the restarted daemon runs the release task, no task of the job needed",
              pool.log("node1")[-2000:])
        st = pool.stop()
        pool.start()
        time.sleep(2)
        check(lines(rel) == ["node1"], "restart: a release that ran does not run again", lines(rel))
    finally:
        pool.stop()

# ---- SIGHUP: more slots, new polling bounds ----------------------------------
with Workspace() as ws:
    pool = Pool(ws, nodes=1, slots=1)
    add(pool, ws, {"id": "h"}, gated_tasks(ws, 2))
    try:
        pool.start()
        check(wait_for(lambda: len(lines(os.path.join(ws.dir, "started"))) == 1, 30),
              "sighup: one slot, one task runs")
        check(not wait_for(lambda: len(lines(os.path.join(ws.dir, "started"))) > 1, 1.5),
              "sighup: the second waits")
        name, path = pool.configs[0]
        with open(path) as f:
            cfg = json.load(f)
        cfg["taskSlotsPerNode"] = 2
        cfg["queue"]["pollMaxInterval"] = "PT0.2S"
        cfg["log"]["level"] = "debug"
        with open(path, "w") as f:
            json.dump(cfg, f)
        pool.procs["node1"].send_signal(signal.SIGHUP)
        check(wait_for(lambda: len(lines(os.path.join(ws.dir, "started"))) == 2, 30),
              "sighup: a second slot takes the second task at once", pool.log("node1")[-1500:])
        check(wait_for(lambda: node_row(ws).get("totalSlots") == 2, 10),
              "sighup: the node row shows 2 slots", node_row(ws))
        check("configuration reloaded" in pool.log("node1"), "sighup: the reload is logged")
        cfg["taskSlotsPerNode"] = 1
        with open(path, "w") as f:
            json.dump(cfg, f)
        pool.procs["node1"].send_signal(signal.SIGHUP)
        check(wait_for(lambda: "fewer slots" in pool.log("node1"), 10),
              "sighup: fewer slots wait for a restart, and the log says so")
        open(os.path.join(ws.dir, "gate"), "w").close()
        rc, out, err = pool.cli("wait", "h", "--timeout", "PT1M", timeout=120)
        check(rc == 0, "sighup: both tasks complete", err)
    finally:
        st = pool.stop()
    check(st == {"node1": 0}, "sighup: exit 0", st)

# ---- housekeeping: retention and the free-space reserve ---------------------------
with Workspace() as ws:
    mnt = os.path.join(ws.dir, "small")
    os.makedirs(mnt)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt],
                             capture_output=True).returncode == 0
    if not mounted:
        print("skip the free-space reserve: cannot mount a tmpfs (not root?)")
    extra = {"tasks": {"killGracePeriod": "PT1S", "freeSpaceReserveBytes": "8MiB"}}
    if mounted:
        extra["nodeRoot"] = os.path.join(mnt, "root")
    pool = Pool(ws, nodes=1, slots=1, extra=extra)
    root = extra.get("nodeRoot", os.path.join(ws.dir, "node1", "root"))
    try:
        add(pool, ws, {"id": "k"}, [{"id": "short", "constraints": {"retentionTime": "PT1S"},
                                     "commandLine": "/bin/true"},
                                    {"id": "long", "commandLine": "/bin/true"}])
        pool.start()
        rc, out, err = pool.cli("wait", "k", "--timeout", "PT1M", timeout=120)
        check(rc == 0, "housekeeping: the tasks ran", err)
        short = os.path.join(root, "workitems", "k", "job-1", "short")
        long_ = os.path.join(root, "workitems", "k", "job-1", "long")
        check(wait_for(lambda: not os.path.exists(short), 20),
              "housekeeping: a PT1S retentionTime task directory is removed")
        check(os.path.isdir(long_), "housekeeping: a default (7 days) one is kept")
        check(wait_for(lambda: node_row(ws).get("retainedTaskDirs") == 1, 10),
              "housekeeping: the node row counts one retained directory", node_row(ws))
        if mounted:
            filler = os.path.join(mnt, "filler")
            with open(filler, "wb") as f:
                f.write(b"\0" * (10 * 1024 * 1024))
            check(wait_for(lambda: node_row(ws).get("state") == "unusable", 20),
                  "reserve: below the reserve the node is unusable", node_row(ws))
            rc, out, err = pool.cli("node", "list")
            check("unusable" in out and "freeSpaceReserveBytes" in out,
                  "reserve: node list shows the state and the reason", out)
            add(pool, ws, {"id": "full"}, [{"id": "t", "commandLine": "/bin/true"}])
            check(not wait_for(lambda: rows(ws, "full").get("t", {}).get("state") != "active", 3),
                  "reserve: no task is taken meanwhile", rows(ws, "full"))
            os.unlink(filler)
            check(wait_for(lambda: rows(ws, "full").get("t", {}).get("state") == "completed", 30),
                  "reserve: with space back the node takes the task", node_row(ws))
            check(node_row(ws).get("state") in ("idle", "running") and
                  node_row(ws).get("stateReason", "") == "", "reserve: usable again", node_row(ws))
    finally:
        st = pool.stop()
        if mounted:
            subprocess.run(["umount", "-l", mnt])
    check(st == {"node1": 0}, "housekeeping: exit 0", st)

# ---- a node root on an ext4 without a journal: said at start ----------------------
with Workspace() as ws:
    mnt, img = os.path.join(ws.dir, "nojournal"), os.path.join(ws.dir, "ext4.img")
    os.makedirs(mnt)
    mounted = subprocess.run("truncate -s 64M %s && mkfs.ext4 -q -F -O ^has_journal %s && "
                             "mount -o loop %s %s" % (img, img, img, mnt), shell=True,
                             capture_output=True).returncode == 0
    if not mounted:
        print("skip the journal-less node root: cannot loop-mount an ext4 (not root?)")
    else:
        # The state directory and the spool too, so that the journal-less
        # /tmp of some machines does not make a second warning.
        pool = Pool(ws, nodes=1, slots=1, extra={
            "nodeRoot": os.path.join(mnt, "root"), "stateDir": os.path.join(mnt, "state"),
            "spoolDir": os.path.join(mnt, "spool"),
            "tasks": {"killGracePeriod": "PT1S", "freeSpaceReserveBytes": "1MiB"}})
        try:
            add(pool, ws, {"id": "nj"}, [{"id": "t", "commandLine": "/bin/true"}])
            pool.start()
            rc, out, err = pool.cli("wait", "nj", "--timeout", "PT1M", timeout=120)
            check(rc == 0, "journal-less node root: the task runs", err)
            check("without a journal" in pool.log("node1") and "operations.md" in pool.log("node1"),
                  "journal-less node root: the log says so once, and where to read why",
                  pool.log("node1"))
            check(pool.log("node1").count("without a journal") == 1,
                  "journal-less node root: said once")
        finally:
            st = pool.stop()
            subprocess.run(["umount", "-l", mnt])
        check(st == {"node1": 0}, "journal-less node root: exit 0", st)

finish()
