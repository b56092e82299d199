#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Task cgroups through `batchd run`, on this host's real cgroups, as root.

- A bounded fork bomb stays within tasks.limits.pidsMax, batchd finishes the
  task and runs the next one, and the task's cgroup is gone afterwards.
- A task that double-forks a `sleep` into a session of its own and exits
  leaves no process behind; the sleep was in the task's cgroup.
- A task that ignores SIGTERM is killed after killGracePeriod on timeout.
- A memory hog is OOM-killed and reported failed with the limit.
- The pool daemon does the same, and `task show` has the task's `stats`.
- `stats` (userCPUTime, kernelCPUTime, wallClockTime, peakMemoryBytes) is in
  the result; with tasks.cgroups false only wallClockTime is.

Skipped (77) when batchd finds no writable cgroups here (not root, no
cgroup file system), as its log line says.

With --v2dir the same runs in the v2 mode, in a tasks.cgroupDir made for
the test in the cgroup v2 hierarchy (on a hybrid host: without the memory
and pids controllers, so the fork bomb and the memory hog, which need
them, are left out; the mode line says their limits are not applied).
"""
import atexit
import json
import os
import re
import sys
import time

from harness import (Workspace, alive, cgroup_v2_mount, check, finish, read,
                     remove_cgroup_tree)
from pool import Pool


def task_cgroup(text):
    """The v2 cgroup directory named by a /proc/PID/cgroup text."""
    for line in text.splitlines():
        if line.startswith("0::"):
            return cgroup_v2_mount() + line[3:]
    return None


def with_marker(marker):
    """Pids of processes whose command line holds marker."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if marker.encode() in f.read() and alive(int(d)):
                    found.append(int(d))
        except OSError:
            pass
    return found


def iso_seconds(d):
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", d or "")
    if m is None:
        return None
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def v2_dir():
    """A fresh tasks.cgroupDir for --v2dir, or None without one."""
    if "--v2dir" not in sys.argv[1:]:
        return None
    mount = cgroup_v2_mount()
    if mount is None:
        print("SKIP: no cgroup v2 hierarchy")
        sys.exit(77)
    return os.path.join(mount, "batchd-it-%d" % os.getpid())


def controllers(d):
    """The controllers task cgroups in tasks.cgroupDir d get."""
    try:
        return read(os.path.join(d, "tasks", "cgroup.subtree_control")).split()
    except OSError:
        return []


cgroup_dir = v2_dir()
with Workspace() as ws:
    tasks_cfg = {"killGracePeriod": "PT1S",
                 "limits": {"memoryMaxBytes": "64MiB", "pidsMax": 32}}
    if cgroup_dir is not None:
        tasks_cfg["cgroupDir"] = cgroup_dir
    config = ws.write_json("batchd.json", {"tasks": tasks_cfg})
    cfg = ["--config", config]
    atexit.register(remove_cgroup_tree, cgroup_dir)

    status, out, err, res = ws.run({"id": "probe", "commandLine": "/bin/true"}, extra=cfg)
    check(status == 0, "a first task runs", err)
    mode = re.search(r"cgroup: (v2|hybrid|none): ([^\n]*)", err)
    check(mode is not None, "batchd says which cgroup mode it chose", err)
    if mode is None or mode.group(1) == "none":
        print("SKIP: no writable cgroups for batchd here: %s"
              % (mode.group(2) if mode else err.strip()))
        sys.exit(77)
    print("mode: " + mode.group(1))
    has = ["memory", "pids"]
    if cgroup_dir is not None:
        check(mode.group(1) == "v2" and "tasks.cgroupDir " + cgroup_dir in mode.group(2),
              "tasks.cgroupDir: the v2 mode in it", mode.group(0))
        has = controllers(cgroup_dir)
        for c, opt in (("memory", "memoryMaxBytes"), ("pids", "pidsMax")):
            if c not in has:
                check(opt in mode.group(2) and "not applied" in mode.group(2),
                      "the mode line says %s is not applied without %s" % (opt, c),
                      mode.group(0))

    if "pids" in has:
        # A fork bomb, bounded at 1000 processes, against pidsMax 32.
        marker = "bomb-%d" % os.getpid()
        bomb = ws.write("bomb.py", "import os, sys, time\n"
                        "print(open('/proc/self/cgroup').read(), flush=True)\n"
                        "n = 0\n"
                        "try:\n"
                        "    while n < 1000:\n"
                        "        if os.fork() == 0:\n"
                        "            time.sleep(1000)\n"
                        "            os._exit(0)\n"
                        "        n += 1\n"
                        "except OSError as e:\n"
                        "    print('forked', n, e.errno, flush=True)\n")
        status, out, err, res = ws.run({
            "id": "bomb", "commandLine": "/usr/bin/python3 %s %s" % (bomb, marker)}, extra=cfg)
        text = read(os.path.join(ws.task_dir("bomb"), "stdout.txt"))
        m = re.search(r"forked (\d+) (\d+)", text)
        check(m is not None and int(m.group(1)) < 32 and int(m.group(2)) == 11,
              "the fork bomb gets EAGAIN below pidsMax", text)
        check(res is not None and res["executionInfo"]["result"] == "success",
              "the bomb's task completes", res and res["executionInfo"])
        cg = task_cgroup(text)
        check(cg is not None and re.fullmatch(r"task\.\d+\.\d+", os.path.basename(cg)),
              "the bomb ran in a task cgroup of its own", text)
        check(cg is not None and not os.path.exists(cg), "its cgroup is gone afterwards", cg)
        check(with_marker(marker) == [], "none of its processes is left")
        status, out, err, res = ws.run({"id": "after", "commandLine": "/bin/true"}, extra=cfg)
        check(status == 0, "batchd runs the next task after the bomb", err)

    # A double fork into a new session, then exit.
    status, out, err, res = ws.run({
        "id": "leaver",
        "commandLine": "/bin/sh -c \"(setsid sleep 1000 & echo $! > left.pid; "
                       "sleep 0.2; cat /proc/$!/cgroup > left.cgroup) ; exit 0\"",
    }, extra=cfg)
    check(status == 0, "the leaver exits 0", err)
    wd = os.path.join(ws.task_dir("leaver"), "wd")
    pid = int(read(os.path.join(wd, "left.pid")))
    left_cg = task_cgroup(read(os.path.join(wd, "left.cgroup"))) or ""
    check(re.fullmatch(r"task\.\d+\.\d+", os.path.basename(left_cg)),
          "the double-forked sleep was in the task's cgroup",
          read(os.path.join(wd, "left.cgroup")))
    check(not alive(pid), "the double-forked sleep is gone when the task completes", pid)

    # SIGTERM ignored: SIGKILL after the grace period (PT1S).
    t0 = time.monotonic()
    status, out, err, res = ws.run({
        "id": "stubborn",
        "commandLine": "/bin/sh -c \"trap '' TERM; sleep 1000 & echo $! > s.pid; "
                       "while :; do sleep 0.1; done\"",
        "constraints": {"maxWallClockTime": "PT1S"},
    }, extra=cfg)
    elapsed = time.monotonic() - t0
    ei = res["executionInfo"]
    check(ei.get("failureInfo", {}).get("code") == "TaskEnded", "the stubborn task ended", ei)
    check(ei.get("exitCode") == -9, "it needed SIGKILL", ei.get("exitCode"))
    check(elapsed >= 2.0, "not before maxWallClockTime plus the grace period", elapsed)
    pid = int(read(os.path.join(ws.task_dir("stubborn"), "wd", "s.pid")))
    check(not alive(pid), "its sleep (ignoring SIGTERM too) is gone", pid)

    if "memory" in has:
        # A memory hog against memoryMaxBytes 64MiB.
        status, out, err, res = ws.run({"id": "hog", "commandLine": "/usr/bin/tail /dev/zero"},
                                       extra=cfg)
        ei = res["executionInfo"]
        fi = ei.get("failureInfo", {})
        check(ei["result"] == "failure" and fi.get("code") == "FailureExitCode",
              "the hog failed", ei)
        check("ran out of memory" in fi.get("message", "") and
              "67108864" in fi.get("message", ""),
              "the message says it hit the memory limit and names it", fi)
        check(ei.get("exitCode") == -9, "exit code as the kernel gave it (SIGKILL)", ei)
        check(res.get("stats", {}).get("peakMemoryBytes", 0) >= 60 << 20,
              "its peak memory is about the limit", res.get("stats"))

    # Stats of a task that uses some CPU.
    status, out, err, res = ws.run({
        "id": "busy",
        "commandLine": "/bin/sh -c \"i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done\"",
    }, extra=cfg)
    st = res.get("stats", {})
    check(status == 0, "the busy task succeeds", err)
    for key in ("startTime", "lastUpdateTime", "wallClockTime", "userCPUTime",
                "kernelCPUTime", "peakMemoryBytes"):
        if key != "peakMemoryBytes" or "memory" in has:
            check(key in st, "stats has " + key, st)
    user = iso_seconds(st.get("userCPUTime"))
    wall = iso_seconds(st.get("wallClockTime"))
    check(user is not None and user > 0, "userCPUTime is an ISO 8601 duration above 0", st)
    check(wall is not None and wall >= user, "wallClockTime is at least the CPU time", st)

    # tasks.cgroups false: process groups only, and stats without CPU.
    off = ws.write_json("off.json", {"tasks": {"cgroups": False}})
    status, out, err, res = ws.run({
        "id": "nocg", "commandLine": "/bin/cat /proc/self/cgroup"}, extra=["--config", off])
    check("cgroup: none: tasks.cgroups is false" in err, "the log says cgroups are off", err)
    check(status == 0 and "nocg" not in read(os.path.join(ws.task_dir("nocg"), "stdout.txt")),
          "the task runs outside any task cgroup")
    st = res.get("stats", {})
    check("wallClockTime" in st and "userCPUTime" not in st,
          "stats has the wall clock time only", st)

    # The daemon: the same limits and stats in the task's record.
    pool = Pool(ws, nodes=1, slots=2, extra={"tasks": tasks_cfg})
    pool.start()
    try:
        pool.cli("job", "add", ws.write_json("pjob.json", {"id": "pj"}))
        ptasks = [{"id": "pbusy", "commandLine":
                   "/bin/sh -c \"i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done\""}]
        if "memory" in has:
            ptasks.append({"id": "phog", "commandLine": "/usr/bin/tail /dev/zero"})
        rc, out, err = pool.cli("task", "add", "pj",
                                ws.write_json("ptasks.json", {"value": ptasks}))
        check(rc == 0, "pool: tasks added", err)
        rc, out, err = pool.cli("wait", "pj", "--timeout", "PT2M", timeout=200)
        busy = pool.task_json("pj", "pbusy") or {}
        check("userCPUTime" in busy.get("stats", {}) and
              ("peakMemoryBytes" in busy.get("stats", {}) or "memory" not in has),
              "pool: task show has the task's stats", busy)
        if "memory" in has:
            hog = pool.task_json("pj", "phog") or {}
            msg = hog.get("executionInfo", {}).get("failureInfo", {}).get("message", "")
            check("ran out of memory" in msg and "67108864" in msg,
                  "pool: the hog is reported out of memory", hog.get("executionInfo"))
        check(re.search(r"cgroup: (v2|hybrid):", pool.log("node1")) is not None,
              "pool: the daemon says which cgroup mode it chose")
    finally:
        pool.stop()

finish()
