#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""maxTaskRetryCount, wd cleaning between attempts, and exit conditions."""
import os

from harness import Workspace, check, finish, read

with Workspace() as ws:
    counter = os.path.join(ws.dir, "attempts")
    # Fails twice, then succeeds; each attempt checks wd was cleaned.
    script = ("n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; "
              "[ -e marker ] && exit 99; touch marker; [ $n -ge 3 ] && exit 0; exit 7") % (counter, counter)
    status, out, err, res = ws.run({
        "id": "flaky",
        "commandLine": "/bin/sh -c '%s'" % script,
        "constraints": {"maxTaskRetryCount": 3},
    })
    ei = res["executionInfo"]
    check(status == 0, "succeeds on the third attempt", status)
    check(ei["retryCount"] == 2, "retryCount 2", ei)
    check("lastRetryTime" in ei, "lastRetryTime set", ei)
    check(read(counter).strip() == "3", "three attempts ran")

    os.unlink(counter)
    status, out, err, res = ws.run({
        "id": "always", "commandLine": "/bin/sh -c 'exit 4'",
        "constraints": {"maxTaskRetryCount": 2},
    })
    check(status == 4 and res["executionInfo"]["retryCount"] == 2, "retries stop at the count", res)

    # The job's maxTaskRetryCount applies when the task has no constraints.
    status, out, err, res = ws.run({"id": "jobretry", "commandLine": "/bin/sh -c 'exit 5'"},
                                   {"id": "job", "constraints": {"maxTaskRetryCount": 1}})
    check(res["executionInfo"]["retryCount"] == 1, "job's retry count inherited", res)

    # Exit conditions: a mapped code with jobAction terminate under performExitOptionsJobAction.
    job = {"id": "job", "onTaskFailure": "performExitOptionsJobAction"}
    status, out, err, res = ws.run({
        "id": "cond", "commandLine": "/bin/sh -c 'exit 3'",
        "exitConditions": {"exitCodes": [{"code": 3, "exitOptions": {"jobAction": "none"}}],
                           "default": {"jobAction": "terminate"}},
    }, job)
    check("jobAction" not in err, "mapped exit code 3 takes jobAction none", err)
    status, out, err, res = ws.run({
        "id": "cond2", "commandLine": "/bin/sh -c 'exit 4'",
        "exitConditions": {"exitCodeRanges": [{"start": 1, "end": 9, "exitOptions": {"jobAction": "Disable"}}]},
    }, job)
    check("jobAction disable" in err, "range maps to jobAction disable", err)
finish()
