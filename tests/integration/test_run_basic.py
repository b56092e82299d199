#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""batchd run: layout, stdout/stderr files and echo, exit status, result."""
import os

from harness import Workspace, check, finish, read

with Workspace() as ws:
    status, out, err, res = ws.run({
        "id": "hello",
        "commandLine": "/bin/sh -c 'echo to-out; echo to-err >&2; pwd; exit 3'",
    })
    td = ws.task_dir("hello")
    check(status == 3, "exit status is the task's exit code", status)
    check(read(os.path.join(td, "stdout.txt")) == "to-out\n%s\n" % os.path.join(td, "wd"),
          "stdout.txt holds stdout and the command ran in wd",
          read(os.path.join(td, "stdout.txt")))
    check(read(os.path.join(td, "stderr.txt")) == "to-err\n", "stderr.txt holds stderr")
    check("to-out" in out, "stdout echoed live", out)
    check("to-err" in err, "stderr echoed live", err)
    check(td in err, "task directory printed", err)
    for d in ("shared", "startup", "startup/wd", "applications", "fsmounts", "workitems"):
        check(os.path.isdir(os.path.join(ws.root, d)), "node dir %s exists" % d)
    check(os.path.isdir(os.path.join(td, "certs")), "certs dir exists")
    check(res is not None and res["state"] == "completed", "result state completed", res)
    ei = res["executionInfo"]
    check(ei["exitCode"] == 3 and ei["result"] == "failure", "result exit code and failure", ei)
    check(ei["failureInfo"]["code"] == "FailureExitCode", "failure code FailureExitCode", ei)
    check(ei["failureInfo"]["category"] == "usererror", "failure category usererror", ei)
    check(ei["retryCount"] == 0 and ei["requeueCount"] == 0, "counters zero", ei)
    check("startTime" in ei and "endTime" in ei, "times present", ei)
    check(res["nodeInfo"]["taskRootDirectory"] == td, "nodeInfo.taskRootDirectory", res["nodeInfo"])
    check(res["commandLine"].startswith("/bin/sh"), "result keeps the task's own fields")

    # Success, and no shell: $VAR, globs and ; are passed literally.
    status, out, err, res = ws.run({"id": "lit", "commandLine": "/bin/echo $HOME * a;b \"x  y\" 'q'"})
    check(status == 0, "echo succeeds", err)
    check(read(os.path.join(ws.task_dir("lit"), "stdout.txt")) == "$HOME * a;b x  y q\n",
          "no expansion, quotes grouped", read(os.path.join(ws.task_dir("lit"), "stdout.txt")))
    check(res["executionInfo"]["result"] == "success" and "failureInfo" not in res["executionInfo"],
          "success has no failureInfo", res)

    # PATH lookup finds programs; a missing program is a clear failure, 125.
    status, out, err, res = ws.run({"id": "missing", "commandLine": "no-such-program-xyz arg"})
    check(status == 125, "missing program exits 125", status)
    fi = res["executionInfo"].get("failureInfo", {})
    check(fi.get("code") == "CommandProgramNotFound", "CommandProgramNotFound", fi)
    check("no-such-program-xyz" in fi.get("message", ""), "message names the program", fi)
    check("exitCode" not in res["executionInfo"], "no exit code when the command never ran", res)

    # An unterminated quote is a launch failure that names the column.
    status, out, err, res = ws.run({"id": "unterminated", "commandLine": "/bin/echo \"abc"})
    check(status == 125 and res["executionInfo"]["failureInfo"]["code"] == "CommandLaunchFailed",
          "unterminated quote is CommandLaunchFailed", res)

    # An executable file that is neither a binary nor a #! script: the
    # exec fails inside the supervisor, which reports it (ENOEXEC).
    garbage = ws.write("garbage", "just words, no #! line\n", mode=0o755)
    status, out, err, res = ws.run({"id": "garbage", "commandLine": garbage})
    fi = res["executionInfo"].get("failureInfo", {}) if res else {}
    check(status == 125 and fi.get("code") == "CommandLaunchFailed" and
          "neither a binary nor a script" in fi.get("message", ""),
          "a file the kernel cannot execute is CommandLaunchFailed", res)
    check(res is not None and "exitCode" not in res["executionInfo"],
          "no exit code when the exec failed", res)

    # Killed by a signal: exit code is minus the signal, status 128+n.
    status, out, err, res = ws.run({"id": "sig", "commandLine": "/bin/sh -c 'kill -9 $$'"})
    check(status == 137, "signal death gives 128+9", status)
    check(res["executionInfo"]["exitCode"] == -9, "exit code -9", res["executionInfo"])
    check("signal 9" in res["executionInfo"]["failureInfo"]["message"], "message names the signal",
          res["executionInfo"]["failureInfo"])

    # Running the same task again starts from a clean task directory.
    ws.run({"id": "again", "commandLine": "/bin/sh -c 'touch leftover'"})
    status, out, err, res = ws.run({"id": "again", "commandLine": "/bin/ls"})
    check(read(os.path.join(ws.task_dir("again"), "stdout.txt")) == "",
          "a rerun starts with an empty wd")
finish()
