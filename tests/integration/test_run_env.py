#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The environment of tasks, job preparation and release tasks (spec §3.3)."""
import os
import socket

from harness import Workspace, check, finish, read


def env_of(path):
    env = {}
    for line in read(path).split("\0"):
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


DUMP = "/bin/sh -c 'cat /proc/self/environ'"

with Workspace() as ws:
    job = {
        "id": "envjob",
        "commonEnvironmentSettings": [
            {"name": "FROM_JOB", "value": "job"},
            {"name": "OVERRIDE", "value": "job"},
        ],
        "jobPreparationTask": {"commandLine": DUMP},
        "jobReleaseTask": {"commandLine": DUMP},
    }
    task = {
        "id": "envtask",
        "commandLine": DUMP,
        "environmentSettings": [
            {"name": "OVERRIDE", "value": "task"},
            {"name": "EMPTY"},
        ],
    }
    old = os.environ.get("SECRET_OF_AGENT")
    env = dict(os.environ, SECRET_OF_AGENT="x")
    status, out, err, res = ws.run(task, job, env=env)
    check(status == 0, "task with job runs", err)
    root = ws.root
    td = ws.task_dir("envtask", "envjob")
    e = env_of(os.path.join(td, "stdout.txt"))
    expect = {
        "AZ_BATCH_NODE_ROOT_DIR": root,
        "AZ_BATCH_NODE_SHARED_DIR": root + "/shared",
        "AZ_BATCH_NODE_STARTUP_DIR": root + "/startup",
        "AZ_BATCH_NODE_STARTUP_WORKING_DIR": root + "/startup/wd",
        "AZ_BATCH_NODE_MOUNTS_DIR": root + "/fsmounts",
        "AZ_BATCH_TASK_DIR": td,
        "AZ_BATCH_TASK_WORKING_DIR": td + "/wd",
        "AZ_BATCH_CERTIFICATES_DIR": td + "/certs",
        "AZ_BATCH_JOB_ID": "envjob",
        "AZ_BATCH_TASK_ID": "envtask",
        "AZ_BATCH_JOB_PREP_DIR": root + "/workitems/envjob/job-1/jobpreparation",
        "AZ_BATCH_JOB_PREP_WORKING_DIR": root + "/workitems/envjob/job-1/jobpreparation/wd",
        "AZ_BATCH_POOL_ID": "local",
        "AZ_BATCH_NODE_ID": socket.gethostname(),
        "AZ_BATCH_NODE_IS_DEDICATED": "true",
        "AZ_BATCH_TASK_USER_IDENTITY": "PoolNonAdmin",
        "HOME": td + "/wd",
        "PWD": td + "/wd",
        "FROM_JOB": "job",
        "OVERRIDE": "task",
        "EMPTY": "",
    }
    for k, v in expect.items():
        check(e.get(k) == v, "task env %s" % k, "%r != %r" % (e.get(k), v))
    check(e.get("PATH", "").endswith(":%s/shared:%s/wd" % (root, td)),
          "PATH ends with shared dir and wd", e.get("PATH"))
    check("USER" in e and e.get("AZ_BATCH_TASK_USER") == e.get("USER"), "USER is the task user")
    for k in ("AZ_BATCH_TASK_RESERVED_EPHEMERAL_DISK_SPACE_BYTES",
              "AZ_BATCH_RESERVED_EPHEMERAL_DISK_SPACE_BYTES",
              "AZ_BATCH_RESERVED_DISK_SPACE_BYTES",
              "AZ_BATCH_OS_RESERVED_EPHEMERAL_DISK_SPACE_BYTES"):
        check(k in e, "reserved-space variable %s" % k)
    check("SECRET_OF_AGENT" not in e, "the agent's environment is not inherited")

    prep = env_of(os.path.join(root, "workitems/envjob/job-1/jobpreparation/stdout.txt"))
    check(prep.get("AZ_BATCH_TASK_ID") == "jobpreparation", "prep task id", prep.get("AZ_BATCH_TASK_ID"))
    check("AZ_BATCH_JOB_PREP_DIR" not in prep, "prep has no AZ_BATCH_JOB_PREP_DIR")
    check(prep.get("FROM_JOB") == "job", "prep gets common settings")
    rel = env_of(os.path.join(root, "workitems/envjob/job-1/jobrelease/stdout.txt"))
    check(rel.get("AZ_BATCH_TASK_ID") == "jobrelease", "release task id")
    check(rel.get("AZ_BATCH_JOB_PREP_DIR") == root + "/workitems/envjob/job-1/jobpreparation",
          "release sees the prep dir")

    # userIdentity shapes give the documented identity names.
    for ui, name in (({"autoUser": {"scope": "task"}}, "TaskNonAdmin"),
                     ({"autoUser": {"scope": "pool", "elevationLevel": "admin"}}, "PoolAdmin")):
        ws.run({"id": "ident", "commandLine": DUMP, "userIdentity": ui})
        e = env_of(os.path.join(ws.task_dir("ident"), "stdout.txt"))
        check(e.get("AZ_BATCH_TASK_USER_IDENTITY") == name, "identity %s" % name,
              e.get("AZ_BATCH_TASK_USER_IDENTITY"))
finish()
