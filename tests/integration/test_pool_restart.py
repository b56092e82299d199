#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tasks outlive their agent: a local-spool node runs 4 tasks, batchd is
killed with SIGKILL while they run, and a new batchd adopts them.  Three of
them are still running when it comes back, one ended while no batchd was
there.  All 4 complete with their own exit codes and output, none runs
twice, and each is recorded completed once.  Then the same through a
restart (SIGUSR2, what the systemd unit sends on `systemctl restart`),
after a lease renewal has rewritten the task's record in place.  The old
batchd's spawner exits with it, the new batchd has its own, and a task
added after the restart runs through it."""
import os
import signal
import time

from harness import Workspace, alive, check, finish, read, supervisors
from pool import Pool, wait_for


def spawner(pid):
    """The pid of batchd pid's spawner (a child named batchd-spawner), or None."""
    for c in read("/proc/%d/task/%d/children" % (pid, pid)).split():
        try:
            if read("/proc/%s/comm" % c).strip() == "batchd-spawner":
                return int(c)
        except OSError:
            continue
    return None


def check_spawner(what):
    """The running batchd's spawner."""
    pid = pool.procs["node1"].pid
    s = spawner(pid) if wait_for(lambda: spawner(pid), 10, step=0.05) else None
    check(s is not None, "%s: batchd has a spawner" % what)
    return s


def lines(path):
    return [l for l in read(path).split("\n") if l.strip()] if os.path.exists(path) else []


with Workspace() as ws:
    pool = Pool(ws, nodes=1, slots=4)
    logdir = ws.writable_dir("logs")  # tasks run as the pool's task user
    ran = os.path.join(logdir, "ran.log")
    root = os.path.join(ws.dir, "node1", "root")

    def task(tid, code, gate):
        # Appends to a shared file when it starts, waits for its gate,
        # writes its output and exits with its own code.
        return {"id": tid, "commandLine": "/bin/sh -c '"
                "echo $AZ_BATCH_TASK_ID >> %s; "
                "while [ ! -e %s/%s ]; do sleep 0.05; done; "
                "echo out-$AZ_BATCH_TASK_ID; echo err-$AZ_BATCH_TASK_ID >&2; "
                "echo $AZ_BATCH_TASK_ID > %s/out-$AZ_BATCH_TASK_ID; exit %d'"
                % (ran, logdir, gate, logdir, code)}

    codes = {"t1": 0, "t2": 12, "t3": 13, "t4": 14}
    tasks = [task(t, c, "go-early" if t == "t4" else "go") for t, c in codes.items()]
    try:
        rc, out, err = pool.cli("job", "add", ws.write_json("job.json", {"id": "rj"}))
        check(rc == 0, "job add", err)
        rc, out, err = pool.cli("task", "add", "rj", ws.write_json("tasks.json", {"value": tasks}))
        check(rc == 0, "task add", err)
        pool.start()
        check_spawner("first start")
        check(wait_for(lambda: len(lines(ran)) == 4, 60), "the 4 tasks run", lines(ran))
        sups = [p for _, p in supervisors(ws.dir)]
        check(len(sups) == 4, "each task has its supervisor", sups)

        pool.kill("node1", signal.SIGKILL)
        check(all(alive(p) for p in sups), "the supervisors outlive batchd (kill -9)")
        # One task ends while no batchd watches it.
        open(os.path.join(logdir, "go-early"), "w").close()
        check(wait_for(lambda: os.path.exists(os.path.join(logdir, "out-t4")), 30) and
              wait_for(lambda: len([p for _, p in supervisors(ws.dir)]) == 3, 30),
              "a task ends while batchd is away; its supervisor records it and exits")

        pool.start()
        check(wait_for(lambda: pool.log("node1").count("adopted from before the restart") == 4, 60),
              "the new batchd adopts the 4 tasks", pool.log("node1")[-3000:])
        t4 = wait_for(lambda: (pool.task_json("rj", "t4") or {}).get("state") == "completed", 60)
        check(t4, "the task that ended meanwhile is finished at once", pool.task_json("rj", "t4"))
        open(os.path.join(logdir, "go"), "w").close()
        done = wait_for(lambda: all((pool.task_json("rj", t) or {}).get("state") == "completed"
                                    for t in codes), 90, step=0.5)
        check(done, "all 4 complete", [pool.task_json("rj", t) for t in codes])
        for t, c in codes.items():
            j = pool.task_json("rj", t)
            check(j["executionInfo"].get("exitCode") == c, "%s has its true exit code %d" % (t, c),
                  j["executionInfo"])
            tdir = os.path.join(root, "workitems", "rj", "job-1", t)
            check(read(os.path.join(tdir, "stdout.txt")) == "out-%s\n" % t and
                  read(os.path.join(tdir, "stderr.txt")) == "err-%s\n" % t,
                  "%s: stdout.txt and stderr.txt hold its output" % t)
            check(read(os.path.join(logdir, "out-" + t)) == t + "\n", "%s wrote its output file" % t)
        check(sorted(lines(ran)) == sorted(codes), "no task ran twice", lines(ran))
        rc, out, err = pool.cli("task", "list", "rj")
        rows = [l for l in out.splitlines() if l.split() and l.split()[0] in codes]
        check(len(rows) == 4 and all(" completed " in " %s " % l for l in rows),
              "the records say completed, once each", out)
        st = os.path.join(ws.dir, "node1", "state", "tasks")
        check(wait_for(lambda: os.listdir(st) == [], 10), "no adoption record is left", os.listdir(st))

        # A restart (SIGUSR2): batchd leaves at once, the task runs on.
        more = [task("r1", 21, "go-r")]
        pool.cli("task", "add", "rj", ws.write_json("more.json", {"value": more}))
        check(wait_for(lambda: len(lines(ran)) == 5, 60), "r1 runs")
        # One file per running task, its supervisor's state in the first
        # 4096 bytes, the lease after (docs/protocol.md §8).
        names = os.listdir(st)
        check(len(names) == 1 and names[0].endswith(".json"), "r1 has one file", names)
        rec = os.path.join(st, names[0])
        with open(rec, "rb") as f:
            head = f.read(8192)
        check(b'"state":"running"' in head[:4096] and head[4095:4096] == b"\n",
              "its supervisor's state in the record says running", head[:200])
        # Restart only after a renewal (at half the 10 s lease) has put a
        # new pop receipt into the record: the next batchd renews with it.
        check(wait_for(lambda: open(rec, "rb").read(8192)[4096:] != head[4096:], 15, step=0.2),
              "a lease renewal rewrites the pop receipt in the record")
        old = check_spawner("before the restart")
        t0 = time.monotonic()
        status = pool.kill("node1", signal.SIGUSR2)
        check(status == 0 and time.monotonic() - t0 < 10, "SIGUSR2: batchd exits 0 at once", status)
        check(len([p for _, p in supervisors(ws.dir)]) == 1, "r1's supervisor runs on")
        pool.start()
        check(old is not None and wait_for(lambda: not alive(old), 10),
              "the old spawner exited with its batchd")
        check(wait_for(lambda: "r1: adopted" in pool.log("node1"), 60), "r1 adopted after the restart")
        check(check_spawner("after the restart") != old, "the new batchd has a spawner of its own")
        # A new task after the restart: its supervisor is forked by the new
        # spawner (none starts by exec) and runs it to its end.
        pool.cli("task", "add", "rj", ws.write_json("r2.json", {"value": [task("r2", 22, "go-early")]}))
        check(wait_for(lambda: (pool.task_json("rj", "r2") or {}).get("state") == "completed", 60),
              "r2, added after the restart, completes")
        check(pool.task_json("rj", "r2")["executionInfo"].get("exitCode") == 22, "r2's exit code")
        check("started by exec" not in pool.log("node1"), "no supervisor was exec'd",
              pool.log("node1")[-2000:])
        check("lost its lease" not in pool.log("node1"), "with the renewed pop receipt, its lease kept")
        open(os.path.join(logdir, "go-r"), "w").close()
        check(wait_for(lambda: (pool.task_json("rj", "r1") or {}).get("state") == "completed", 60),
              "r1 completes")
        check(pool.task_json("rj", "r1")["executionInfo"].get("exitCode") == 21, "r1's exit code")
        check(sorted(lines(ran)) == sorted(list(codes) + ["r1", "r2"]), "r1 and r2 ran once",
              lines(ran))

        # A restart between a completed row and the delete of its message
        # (the delete waits for the row's commit, held back 50 ms): the
        # next batchd adopts the task, finds its own completion, and only
        # deletes the message.  Tried until a restart lands in that window.
        leased = os.path.join(ws.dir, "spool", "queues", "testpool-tasks", "leased")
        caught = None
        for n in range(8):
            tid = "c%d" % n
            row = os.path.join(ws.dir, "spool", "tables", "batchdtasks", "rj", tid + ".json")
            pool.cli("task", "add", "rj", ws.write_json(tid + ".json", {"id": tid, "commandLine": "/bin/true"}))
            check(wait_for(lambda: os.path.exists(row) and '"state":"completed"' in read(row), 60, step=0.001),
                  "%s completes" % tid)
            pool.kill("node1", signal.SIGUSR2)
            if os.listdir(leased):
                caught = tid
                break
            pool.start()
        check(caught is not None, "a restart came after a completed row, before its message's delete")
        before = pool.log("node1")
        pool.start()
        check(wait_for(lambda: not os.listdir(leased) and not os.listdir(os.path.join(ws.dir, "node1", "state", "tasks")), 30),
              "after the restart the message and the record are gone", os.listdir(leased))
        after = pool.log("node1")[len(before):]
        check("%s: its completion was recorded before the restart" % caught in after,
              "the new batchd says the completion was its own", after[-2000:])
        check("another node holds" not in after, "and not that another node holds the task", after[-2000:])
        check(pool.task_json("rj", caught)["state"] == "completed", "the task stays completed")

        # The same between a retry's new message and row, and the delete of
        # the old message: the new batchd does not send the retry again.
        def retry_window(prefix):
            """Adds tasks that fail once and retry, restarting batchd right
            after the retry's row, until a restart lands before the old
            message's delete; returns that task's id, batchd stopped."""
            for n in range(8):
                tid = "%s%d" % (prefix, n)
                row = os.path.join(ws.dir, "spool", "tables", "batchdtasks", "rj", tid + ".json")
                runs = os.path.join(logdir, "runs-" + tid)
                pool.cli("task", "add", "rj", ws.write_json(tid + ".json", {
                    # The retry waits for its gate, so that a second copy
                    # of it would run beside it.
                    "id": tid, "commandLine": "/bin/sh -c 'echo x >> %s; "
                    "if [ $(wc -l < %s) -ge 2 ]; then while [ ! -e %s/go-%s ]; do sleep 0.05; done; fi; "
                    "exit 3'" % (runs, runs, logdir, tid),
                    "constraints": {"maxTaskRetryCount": 1}}))
                check(wait_for(lambda: os.path.exists(row) and '"retryCount":1' in read(row), 60, step=0.001),
                      "%s fails and is retried" % tid)
                pool.kill("node1", signal.SIGUSR2)
                # The old message's record is still there, and the row
                # says the retry waits.
                records = [read(os.path.join(st, f)) for f in os.listdir(st)]
                if '"state":"active"' in read(row) and any(
                        '"taskId":"%s"' % tid in r and '"retryCount":0' in r for r in records):
                    return tid
                pool.start()
                open(os.path.join(logdir, "go-" + tid), "w").close()
                check(wait_for(lambda: '"state":"completed"' in read(row), 60), "%s completes" % tid)
            return None

        def restart_and_finish(caught, says, what):
            """Starts batchd again after retry_window(); checks its log says
            what happened to the old message, then lets the retry end: the
            task ran twice, once and its one retry, and no message is left."""
            before = pool.log("node1")
            pool.start()
            row = os.path.join(ws.dir, "spool", "tables", "batchdtasks", "rj", caught + ".json")
            runs = os.path.join(logdir, "runs-" + caught)
            check(wait_for(lambda: "%s: %s" % (caught, says) in pool.log("node1")[len(before):], 30),
                  what, pool.log("node1")[len(before):][-2000:])
            check(wait_for(lambda: len(lines(runs)) >= 2, 30), "the retry runs")
            open(os.path.join(logdir, "go-" + caught), "w").close()
            check(wait_for(lambda: '"state":"completed"' in read(row), 60),
                  "%s completes after the restart" % caught)
            check(wait_for(lambda: not os.listdir(leased), 30), "no message of it is left")
            check(lines(runs) == ["x", "x"], "the task ran twice: once and its one retry", lines(runs))

        caught = retry_window("q")
        check(caught is not None, "a restart came after a retry's row, before the old message's delete")
        restart_and_finish(caught, "it was put back in the queue before the restart",
                           "the new batchd sees the retry was queued already")
        j = pool.task_json("rj", caught)
        check(j["executionInfo"].get("retryCount") == 1 and j["executionInfo"].get("exitCode") == 3,
              "its row: one retry, exit code 3", j["executionInfo"])

        # A node that loses its state in that window (its records gone, as
        # after a reboot) gets the old message back with the new one: the
        # old one is stale, since the row's counts are ahead of it.
        caught = retry_window("s")
        check(caught is not None, "again a restart after a retry's row, before the old message's delete")
        for f in os.listdir(st):
            os.unlink(os.path.join(st, f))
        restart_and_finish(caught, "a newer message of the task was sent",
                           "the old message is dropped as stale")

        if os.environ.get("SHOW_LOG"):
            print(pool.log("node1"))
        st = pool.stop()
        check(st == {"node1": 0}, "SIGTERM still drains and stops", st)
    finally:
        pool.stop()
        for p in [p for _, p in supervisors(ws.dir)]:
            os.kill(p, signal.SIGKILL)
finish()
