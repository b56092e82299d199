#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""maxWallClockTime ends the whole process tree, escaped grandchildren too."""
import os
import time

from harness import Workspace, check, finish, read


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


with Workspace() as ws:
    # The grandchild puts itself in a new session (setsid) and records its pid.
    script = ("setsid /bin/sh -c 'echo $$ > escaped.pid; exec sleep 1000' & "
              "while [ ! -s escaped.pid ]; do sleep 0.05; done; sleep 1000")
    t0 = time.monotonic()
    status, out, err, res = ws.run({
        "id": "slow",
        "commandLine": "/bin/sh -c \"%s\"" % script,
        "constraints": {"maxWallClockTime": "PT2S"},
    })
    elapsed = time.monotonic() - t0
    ei = res["executionInfo"]
    check(ei.get("failureInfo", {}).get("code") == "TaskEnded", "timeout gives TaskEnded", ei)
    check(ei["failureInfo"]["category"] == "servererror", "TaskEnded is a servererror (as Azure)")
    check("maxWallClockTime" in ei["failureInfo"]["message"], "message names maxWallClockTime", ei)
    check(ei["result"] == "failure", "result failure")
    check(ei.get("exitCode") == -15, "exit code is the SIGTERM death", ei.get("exitCode"))
    check(elapsed < 20, "ended soon after the limit", elapsed)
    pid = int(read(os.path.join(ws.task_dir("slow"), "wd", "escaped.pid")))
    check(not alive(pid), "the escaped grandchild (own session) is gone", pid)

    # A task that ignores SIGTERM is killed after the grace period.
    status, out, err, res = ws.run({
        "id": "stubborn",
        "commandLine": "/bin/sh -c \"trap '' TERM; while :; do sleep 0.1; done\"",
        "constraints": {"maxWallClockTime": "PT1S"},
    })
    check(res["executionInfo"]["failureInfo"]["code"] == "TaskEnded", "stubborn task ended")
    check(res["executionInfo"]["exitCode"] == -9, "stubborn task needed SIGKILL",
          res["executionInfo"]["exitCode"])

    # A double-forked child left behind by a task that exited is cleaned up.
    status, out, err, res = ws.run({
        "id": "leaver",
        "commandLine": "/bin/sh -c \"(setsid sleep 1000 & echo $! > left.pid) ; exit 0\"",
    })
    check(status == 0, "leaver exits 0")
    pid = int(read(os.path.join(ws.task_dir("leaver"), "wd", "left.pid")))
    check(not alive(pid), "the left-behind process is gone when the task completes")

    # The .NET TimeSpan.MaxValue duration means unlimited.
    status, out, err, res = ws.run({
        "id": "unlimited", "commandLine": "/bin/true",
        "constraints": {"maxWallClockTime": "P10675199DT2H48M5.4775807S"},
    })
    check(status == 0, "TimeSpan.MaxValue is accepted as unlimited", err)
finish()
