#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Job preparation and release tasks around a task (spec §4.2, §4.3)."""
import os

from harness import Workspace, check, finish, read

with Workspace() as ws:
    log = os.path.join(ws.dir, "order.log")
    job = {
        "id": "prepjob",
        "jobPreparationTask": {"commandLine": "/bin/sh -c 'echo prep >> %s'" % log},
        "jobReleaseTask": {"commandLine": "/bin/sh -c 'echo release >> %s'" % log},
    }
    status, out, err, res = ws.run({"id": "t", "commandLine": "/bin/sh -c 'echo task >> %s'" % log}, job)
    check(status == 0, "job with prep and release runs", err)
    check(read(log).split() == ["prep", "task", "release"], "order prep, task, release", read(log))
    prep_dir = os.path.join(ws.root, "workitems/prepjob/job-1/jobpreparation")
    check(os.path.isfile(os.path.join(prep_dir, "stdout.txt")), "prep has its own task dir")

    # A failing preparation task with waitForSuccess keeps the task from running.
    os.unlink(log)
    job["jobPreparationTask"] = {"id": "myprep",
                                 "commandLine": "/bin/sh -c 'echo prep >> %s; exit 1'" % log}
    status, out, err, res = ws.run({"id": "t", "commandLine": "/bin/sh -c 'echo task >> %s'" % log}, job)
    check(status == 125, "task not run: 125", status)
    check(read(log).split() == ["prep", "release"], "release still runs after a failed prep", read(log))
    check(res is not None and res["state"] == "active", "task result stays active", res)
    check("waitForSuccess" in err, "says why the task did not run", err)

    # waitForSuccess false: the task runs anyway.
    os.unlink(log)
    job["jobPreparationTask"]["waitForSuccess"] = False
    status, out, err, res = ws.run({"id": "t", "commandLine": "/bin/sh -c 'echo task >> %s'" % log}, job)
    check(read(log).split() == ["prep", "task", "release"], "waitForSuccess false runs the task", read(log))

    # The release task's wall clock defaults to 15 minutes and is enforced.
    job = {"id": "j2", "jobPreparationTask": {"commandLine": "/bin/true"},
           "jobReleaseTask": {"commandLine": "/bin/sleep 100", "maxWallClockTime": "PT1S"}}
    status, out, err, res = ws.run({"id": "t", "commandLine": "/bin/true"}, job, timeout=60)
    check(status == 0, "task status unaffected by the release task", status)
    check("TaskEnded" in err, "release task ended by its wall clock", err)
finish()
