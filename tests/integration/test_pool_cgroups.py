#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Task cgroups of a pool node across a kill -9, on this host's real cgroups.

A node runs 3 tasks; batchd is killed with SIGKILL; the supervisors of two
of them are killed too.  a's processes are ended as well (cgroup.kill), so
its cgroup is left empty by a batchd that is gone; b's run on, watched by
no one.  The batchd that starts next removes a's cgroup, kills b's
processes (b goes back to the queue: they would run it twice) and removes
its cgroup, and keeps the cgroup of the task it adopts, c, which still
runs; that one goes when c ends.

With --v2dir the node runs in the v2 mode, in a tasks.cgroupDir made for
the test in the cgroup v2 hierarchy, and the layout is checked while tasks
run: batchd and the supervisors sit in agent/, each task in tasks/NAME, and
neither the directory nor tasks/ holds a process (cgroup v2's rule that a
cgroup whose children have controllers holds none of its own).

Skipped (77) when batchd finds no writable cgroups here.
"""
import os
import re
import signal
import sys

from harness import (Workspace, alive, cgroup_v2_mount, check, finish, read,
                     remove_cgroup_tree, supervisors)
from pool import Pool, wait_for


def cgroups_of(text):
    """{hierarchy: path} of a /proc/PID/cgroup text ("" is v2)."""
    out = {}
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            out[c] = path
    return out


def v2_dir_of(pid):
    try:
        return MOUNT + cgroups_of(read("/proc/%d/cgroup" % pid))[""]
    except (OSError, KeyError):
        return None


def procs(d):
    return read(os.path.join(d, "cgroup.procs")).split()


def populated(d):
    m = re.search(r"populated (\d)", read(os.path.join(d, "cgroup.events")))
    return m is not None and m.group(1) == "1"


MOUNT = cgroup_v2_mount()
if MOUNT is None:
    print("SKIP: no cgroup v2 hierarchy")
    sys.exit(77)
V2DIR = os.path.join(MOUNT, "batchd-it-%d" % os.getpid()) if "--v2dir" in sys.argv[1:] else None

with Workspace() as ws:
    tasks_cfg = {"killGracePeriod": "PT1S"}
    if V2DIR is not None:
        tasks_cfg["cgroupDir"] = V2DIR
    pool = Pool(ws, nodes=1, slots=3, extra={"tasks": tasks_cfg})
    logdir = ws.writable_dir("logs")
    ran = os.path.join(logdir, "ran.log")

    def task(tid):
        return {"id": tid, "commandLine": "/bin/sh -c '"
                "cat /proc/self/cgroup > %s/cg-$AZ_BATCH_TASK_ID-$$; "
                "(while [ ! -e %s/go ]; do sleep 0.05; done) & "
                "echo $! > %s/bg-$AZ_BATCH_TASK_ID; "
                "echo $AZ_BATCH_TASK_ID >> %s; wait'" % (logdir, logdir, logdir, ran)}

    ids = ["a", "b", "c"]
    try:
        pool.cli("job", "add", ws.write_json("job.json", {"id": "cj"}))
        rc, out, err = pool.cli("task", "add", "cj",
                                ws.write_json("tasks.json", {"value": [task(t) for t in ids]}))
        check(rc == 0, "tasks added", err)
        pool.start()
        check(wait_for(lambda: os.path.exists(ran) and len(read(ran).split()) == 3, 60),
              "the 3 tasks run", pool.log("node1")[-2000:])
        mode = re.search(r"cgroup: (v2|hybrid|none): ([^\n]*)", pool.log("node1"))
        if mode is None or mode.group(1) == "none":
            print("SKIP: no writable cgroups for batchd here: %s"
                  % (mode.group(2) if mode else pool.log("node1")[-500:]))
            pool.stop()
            sys.exit(77)
        print("mode: " + mode.group(1))
        cg, pids, bg = {}, {}, {}
        for name in os.listdir(logdir):
            if name.startswith("bg-"):
                bg[name.split("-")[1]] = int(read(os.path.join(logdir, name)))
            if name.startswith("cg-"):
                cg[name.split("-")[1]] = cgroups_of(read(os.path.join(logdir, name)))
                pids[name.split("-")[1]] = int(name.split("-")[2])
        check(sorted(cg) == ids, "each task says where it runs", cg)
        v2 = {t: MOUNT + c[""] for t, c in cg.items()}
        sups = dict(supervisors(ws.dir))
        check(sorted(sups) == ids, "each task has its supervisor", sups)

        if V2DIR is not None:
            check(mode.group(1) == "v2", "tasks.cgroupDir: the v2 mode", mode.group(0))
            agent = os.path.join(V2DIR, "agent")
            check(v2_dir_of(pool.procs["node1"].pid) == agent, "batchd sits in agent/",
                  v2_dir_of(pool.procs["node1"].pid))
            check(all(v2_dir_of(p) == agent for p in sups.values()),
                  "the supervisors stay in agent/", {t: v2_dir_of(p) for t, p in sups.items()})
            check(all(os.path.dirname(d) == os.path.join(V2DIR, "tasks") for d in v2.values()),
                  "each task runs in tasks/NAME", v2)
            check(procs(V2DIR) == [] and procs(os.path.join(V2DIR, "tasks")) == [],
                  "no process in the inner cgroups (the directory, tasks/)")

        pool.kill("node1", signal.SIGKILL)
        # a: supervisor and task gone, its cgroup left empty.  b: only
        # its supervisor gone: the task's main process ends with it
        # (docs/running-tasks.md), the process it started runs on unwatched.
        for t in ("a", "b"):
            os.kill(sups[t], signal.SIGKILL)
        with open(os.path.join(v2["a"], "cgroup.kill"), "w") as f:
            f.write("1")
        check(wait_for(lambda: not populated(v2["a"]), 10),
              "a's cgroup is empty and left behind", os.path.exists(v2["a"]))
        check(wait_for(lambda: not any(p == sups["b"] for p in dict(supervisors(ws.dir)).values()), 10),
              "b's supervisor is gone")
        check(wait_for(lambda: not alive(pids["b"]), 10),
              "b's main process ends with its supervisor")
        check(populated(v2["b"]) and alive(bg["b"]),
              "b's task's child runs on in its cgroup without a supervisor")
        check(populated(v2["c"]), "c still runs in its cgroup")
        v1 = {}
        if mode.group(1) == "hybrid":
            v1 = {t: "/sys/fs/cgroup/memory" + cg[t]["memory"] for t in ids}
            check(all(os.path.isdir(d) for d in v1.values()), "their v1 memory cgroups too", v1)

        pool.start()
        check(wait_for(lambda: "removed 2 task cgroups left by an earlier batchd"
                       in pool.log("node1"), 30),
              "the new batchd says it removed the 2 stale cgroups", pool.log("node1")[-3000:])
        check("killed the processes of 1 task whose supervisor is gone" in pool.log("node1"),
              "and that it killed the unwatched task's processes")
        check(not alive(bg["b"]), "b's unwatched copy is gone: it runs again, once")
        check(not os.path.exists(v2["a"]) and not os.path.exists(v2["b"]),
              "a's and b's cgroups are gone")
        check(all(not os.path.exists(v1[t]) for t in ("a", "b") if t in v1),
              "with their v1 memory cgroups")
        check(os.path.isdir(v2["c"]) and populated(v2["c"]),
              "c's cgroup stays: the adopted task runs in it")
        check(all(os.path.isdir(v1[t]) for t in ("c",) if t in v1), "and its v1 cgroup")
        check(wait_for(lambda: "c: adopted from before the restart" in pool.log("node1"), 30),
              "c is adopted")

        open(os.path.join(logdir, "go"), "w").close()
        check(wait_for(lambda: all((pool.task_json("cj", t) or {}).get("state") == "completed"
                                   for t in ids), 90, step=0.5),
              "all 3 complete (a and b ran again)", [pool.task_json("cj", t) for t in ids])
        check(sorted(read(ran).split()) == ["a", "a", "b", "b", "c"],
              "a and b ran twice in all, c once", read(ran).split())
        check(wait_for(lambda: not os.path.exists(v2["c"]), 10),
              "the adopted task's cgroup goes when it ends", v2["c"])
        if os.environ.get("SHOW_LOG"):
            print(pool.log("node1"))
        st = pool.stop()
        check(st == {"node1": 0}, "the node stops", st)
        # Empty task cgroups are kept for reuse while the node runs.
        if V2DIR is not None:
            left = [n for n in os.listdir(os.path.join(V2DIR, "tasks"))
                    if os.path.isdir(os.path.join(V2DIR, "tasks", n))]
            check(left == [], "no task cgroup is left in tasks/ once it stopped", left)
    finally:
        pool.stop()
        for p in dict(supervisors(ws.dir)).values():
            os.kill(p, signal.SIGKILL)
        if V2DIR is not None:
            wait_for(lambda: procs(os.path.join(V2DIR, "agent")) == [], 10)
            remove_cgroup_tree(V2DIR)
finish()
