#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A dead node's tasks are taken over, and its copies never report.

Two real daemons share a local spool.  node1 runs t1 and t2 and is killed
with SIGKILL; its supervisors keep both copies running.  t2's copy on node1
then ends (exit code 9) while no batchd watches it.  node2 takes the two
tasks over once node1's leases are gone (the spool sees node1's owner lock
free) and runs them to completion (exit code 7).  When node1 starts again
and adopts its supervisors, it finds its leases gone: it ends its copy of
t1 (still running) and reports neither, so each task is recorded completed
once, with node2's exit code, and its record does not change afterwards.

Then a claim race on one node: the task's row changes between the node's
read and its claim.  Still active (as after the sender's own retry row):
the node claims again at once and the task runs once.  Claimed by
another node: left to it until the message's lease is over.
"""
import fcntl
import os
import signal
import time

from harness import Spool, Workspace, alive, check, finish, read, supervisors
from pool import Pool, wait_for


def lines(path):
    return [l for l in read(path).split("\n") if l.strip()] if os.path.exists(path) else []


with Workspace() as ws:
    pool = Pool(ws, nodes=2, slots=2)
    logdir = ws.writable_dir("logs")
    ran = os.path.join(logdir, "ran.log")

    def task(tid):
        # Says where it runs, waits for its gate (one per task and node),
        # exits 7 on node2 and 9 on node1.
        return {"id": tid, "commandLine": "/bin/sh -c '"
                "echo $AZ_BATCH_TASK_ID $AZ_BATCH_NODE_ID $$ >> %s; "
                "while [ ! -e %s/go-$AZ_BATCH_TASK_ID-$AZ_BATCH_NODE_ID ]; do sleep 0.05; done; "
                "[ $AZ_BATCH_NODE_ID = node2 ] && exit 7; exit 9'" % (ran, logdir)}

    def gate(tid, node):
        open(os.path.join(logdir, "go-%s-%s" % (tid, node)), "w").close()

    def runs():
        return sorted((l.split()[0], l.split()[1]) for l in lines(ran))

    def state(tid):
        return (pool.task_json("tj", tid) or {}).get("state")

    try:
        rc, out, err = pool.cli("job", "add", ws.write_json("job.json", {"id": "tj"}))
        check(rc == 0, "job add", err)
        rc, out, err = pool.cli("task", "add", "tj", ws.write_json(
            "tasks.json", {"value": [task("t1"), task("t2")]}))
        check(rc == 0, "task add", err)
        pool.start("node1")
        check(wait_for(lambda: runs() == [("t1", "node1"), ("t2", "node1")], 60),
              "node1 runs t1 and t2", lines(ran))
        sup1 = dict(supervisors(os.path.join(ws.dir, "node1")))
        check(sorted(sup1) == ["t1", "t2"], "node1 has a supervisor for each", sup1)
        copy1 = {l.split()[0]: int(l.split()[2]) for l in lines(ran)}

        pool.kill("node1", signal.SIGKILL)
        check(all(alive(p) for p in sup1.values()), "node1's supervisors outlive it")
        # t2's copy on node1 ends while no batchd watches it.
        gate("t2", "node1")
        check(wait_for(lambda: not alive(sup1["t2"]), 30),
              "t2's copy on node1 ends; its supervisor records it and exits")

        pool.start("node2")
        check(wait_for(lambda: ("t1", "node2") in runs() and ("t2", "node2") in runs(), 60),
              "node2 takes t1 and t2 over", pool.log("node2")[-3000:])
        check(alive(copy1["t1"]), "node1's copy of t1 still runs meanwhile")
        gate("t1", "node2")
        gate("t2", "node2")
        check(wait_for(lambda: state("t1") == "completed" and state("t2") == "completed", 60),
              "node2 completes both", [pool.task_json("tj", t) for t in ("t1", "t2")])
        before = {t: pool.task_json("tj", t) for t in ("t1", "t2")}
        for t in ("t1", "t2"):
            ei = before[t]["executionInfo"]
            check(ei.get("exitCode") == 7, "%s has node2's exit code" % t, ei)

        # node1 comes back and adopts its supervisors: its leases are gone.
        pool.start("node1")
        check(wait_for(lambda: pool.log("node1").count("adopted from before the restart") +
                       pool.log("node1").count("another node has it") >= 2 or
                       not supervisors(os.path.join(ws.dir, "node1")), 60),
              "node1 picks up its old tasks", pool.log("node1")[-3000:])
        check(wait_for(lambda: not alive(copy1["t1"]) and not alive(sup1["t1"]), 30),
              "node1 ends its copy of t1 (its lease is gone)", pool.log("node1")[-3000:])
        st = os.path.join(ws.dir, "node1", "state", "tasks")
        check(wait_for(lambda: os.listdir(st) == [], 30),
              "node1 keeps no adoption record", os.listdir(st))
        log1 = pool.log("node1")
        check("completed with exit code" not in log1.split("adopting")[-1],
              "node1 reports neither task completed", log1[-3000:])
        # The records go when node1 is done with the tasks: any report it
        # made has landed by then.
        after = {t: pool.task_json("tj", t) for t in ("t1", "t2")}
        for t in ("t1", "t2"):
            check(after[t] == before[t], "%s's record is node2's, unchanged" % t,
                  (before[t], after[t]))
        check(runs() == [("t1", "node1"), ("t1", "node2"), ("t2", "node1"), ("t2", "node2")],
              "no task runs a third time", lines(ran))
        if os.environ.get("SHOW_LOG"):
            print(pool.log("node1"))
            print(pool.log("node2"))
        status = pool.stop()
        check(status == {"node1": 0, "node2": 0}, "both nodes stop", status)
    finally:
        pool.stop()
        for n in ("node1", "node2"):
            for p in dict(supervisors(os.path.join(ws.dir, n))).values():
                os.kill(p, signal.SIGKILL)

def one_node(ws, label, job, tasks, slots):
    """A pool of one node (not started) with job and its tasks added, each
    {id: word} a task that appends its word to ran.log; returns (pool, ran)."""
    pool = Pool(ws, nodes=1, slots=slots)
    ran = os.path.join(ws.writable_dir("logs"), "ran.log")
    rc, out, err = pool.cli("job", "add", ws.write_json(job + ".json", {"id": job}))
    check(rc == 0, "%s: job add" % label, err)
    for tid, word in tasks:
        rc, out, err = pool.cli("task", "add", job, ws.write_json(tid + ".json", {
            "id": tid, "commandLine": "/bin/sh -c 'echo %s >> %s'" % (word, ran)}))
        check(rc == 0, "%s: task add %s" % (label, tid), err)
    return pool, ran


with Workspace() as ws:
    # The row changes between the node's read of it and its claim (as when
    # the sender of a retry writes its row after the send): the node reads
    # the row again and, finding it still active, claims again at once
    # instead of leaving the task to the message's lease (10 s here); the
    # task runs once.  The test holds the row file's lock, sees the node
    # open the file (its read, or its claim waiting for the lock), replaces
    # the row and lets go.
    pool, ran = one_node(ws, "claim race", "cj", [("c1", "x")], 1)
    try:
        sp = Spool(os.path.join(ws.dir, "spool"))
        row = sp.row_path("batchdtasks", "cj", "c1")
        lock = os.open(row, os.O_RDONLY)
        fcntl.flock(lock, fcntl.LOCK_EX)
        pool.start()
        fds = "/proc/%d/fd" % pool.procs["node1"].pid

        def node_opened_row():
            try:
                for fd in os.listdir(fds):
                    try:
                        if os.readlink(os.path.join(fds, fd)) == row:
                            return True
                    except OSError:
                        pass
            except OSError:
                pass
            return False
        seen = wait_for(node_opened_row, 30, step=0)
        check(seen, "claim race: the node opens the task's row")
        sp.merge_row("batchdtasks", "cj", "c1", note="changed under the claim")
        released = time.monotonic()
        os.close(lock)
        ok = wait_for(lambda: (pool.task_json("cj", "c1") or {}).get("state") == "completed", 30)
        took = time.monotonic() - released
        check(ok and took < 5, "claim race: the task completes well within the lease "
              "(10 s): %.1f s" % took, pool.log("node1")[-2000:])
        check("c1: its row changed before the claim (active); claiming again" in
              pool.log("node1"), "claim race: the log says why", pool.log("node1")[-2000:])
        check(lines(ran) == ["x"], "claim race: the task ran once", lines(ran))

        # The same race, but the row now says another node claimed this
        # attempt (a duplicate message): that node's, so this one waits
        # for its lease as before, then takes the task over.
        rc, out, err = pool.cli("task", "add", "cj", ws.write_json("c2.json", {
            "id": "c2", "commandLine": "/bin/sh -c 'echo y >> %s'" % ran}))
        check(rc == 0, "claim race: task add c2", err)
        row = sp.row_path("batchdtasks", "cj", "c2")
        lock = os.open(row, os.O_RDONLY)
        fcntl.flock(lock, fcntl.LOCK_EX)
        check(wait_for(node_opened_row, 30, step=0), "claim race: the node opens c2's row")
        sp.merge_row("batchdtasks", "cj", "c2", state="running", nodeId="node9")
        released = time.monotonic()
        os.close(lock)
        check(wait_for(lambda: "c2: another node has it" in pool.log("node1"), 10),
              "claim race: c2 is left to the node that claimed it", pool.log("node1")[-2000:])
        check(lines(ran) == ["x"], "claim race: c2 does not run while node9's lease may hold",
              lines(ran))
        ok = wait_for(lambda: (pool.task_json("cj", "c2") or {}).get("state") == "completed", 40)
        check(ok and time.monotonic() - released > 8,
              "claim race: c2 runs once its message's lease is over (10 s)",
              pool.log("node1")[-2000:])
        check(lines(ran) == ["x", "y"], "claim race: c2 ran once", lines(ran))
    finally:
        status = pool.stop()
    check(status == {"node1": 0}, "claim race: the node stops", status)

finish()
