#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Application packages on a local-spool pool with a local directory store.
A job's preparation and release tasks reference packages (a batchd
extension to Azure's JobPreparationTask and JobReleaseTask) and see their
AZ_BATCH_APP_PACKAGE_* variables, which the job's other tasks do not; a
preparation task whose package is missing fails with
ApplicationPackageError and the job's tasks do not run on the node.  A
package that a task adopted after a restart still uses (batchd killed
with SIGKILL, the task running on under its supervisor) is not removed by
the least-recently-used collection of the new batchd, and goes once the
task has ended.  A daemon drained with SIGTERM while a task's package
unpacks stops the unpack and exits promptly, leaving nothing of it."""
import io
import json
import os
import signal
import tarfile
import time
import zipfile

from harness import Workspace, check, finish, read
from pool import Pool, wait_for


def make_zip(store, app, version, text):
    d = os.path.join(store, app)
    os.makedirs(d, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("hello.txt", text)
    with open(os.path.join(d, "%s.zip" % version), "wb") as f:
        f.write(buf.getvalue())


def lines(path):
    return [l for l in read(path).split("\n") if l.strip()] if os.path.exists(path) else []


with Workspace() as ws:
    store = os.path.join(ws.dir, "store")
    make_zip(store, "prep", "1", "prep tool\n")
    make_zip(store, "Rel", "2", "release tool\n")
    with open(os.path.join(store, "Rel", "default"), "w") as f:
        f.write("2\n")
    make_zip(store, "tool", "1", "tool\n")
    make_zip(store, "pad", "1", "pad\n")
    logdir = ws.writable_dir("logs")
    # One byte: every package that nothing holds is removed after use.
    pool = Pool(ws, nodes=1, slots=2, extra={
        "applicationStore": {"directory": store},
        "applicationCacheMaxBytes": 1,
    })
    apps = os.path.join(ws.dir, "node1", "root", "applications")
    state = os.path.join(ws.dir, "node1", "state")

    def show(var, name):
        # The variables first, then the result by rename: the test waits
        # for the result, then reads both.
        return ("/bin/sh -c 'env | grep AZ_BATCH_APP_PACKAGE_ | sort > %s/%s.env; "
                "echo $%s $(cat $%s/hello.txt) > %s/%s.tmp; mv %s/%s.tmp %s/%s'"
                % (logdir, name, var, var, logdir, name, logdir, name, logdir, name))

    try:
        pool.start()
        # ---- preparation and release tasks with packages ---------------
        job = {"id": "pj",
               "jobPreparationTask": {
                   "commandLine": show("AZ_BATCH_APP_PACKAGE_prep_1", "prep"),
                   "applicationPackageReferences": [{"applicationId": "prep", "version": "1"}]},
               "jobReleaseTask": {
                   "commandLine": show("AZ_BATCH_APP_PACKAGE_rel", "release"),
                   "applicationPackageReferences": [{"applicationId": "rel"}]}}
        rc, out, err = pool.cli("job", "add", ws.write_json("pj.json", job))
        check(rc == 0, "job add: a preparation and a release task with "
              "applicationPackageReferences are accepted", err)
        rc, out, err = pool.cli("task", "add", "pj", ws.write_json("pjt.json", {"value": [
            {"id": "t1", "commandLine": "/bin/sh -c 'env | grep AZ_BATCH_APP_PACKAGE_ "
             "> %s/t1.env; true'" % logdir}]}))
        check(rc == 0, "task add", err)
        rc, out, err = pool.cli("wait", "pj", "--timeout", "PT2M", timeout=200)
        check(rc == 0, "the job's task succeeds", (rc, out[-1000:], err[-1000:]))
        prep = read(os.path.join(logdir, "prep")).split()
        check(len(prep) == 3 and "/applications/prep-1-" in prep[0] and prep[1:] == ["prep", "tool"],
              "preparation: its package is installed and its variable points at it", prep)
        penv = lines(os.path.join(logdir, "prep.env"))
        check(any(l.startswith("AZ_BATCH_APP_PACKAGE_prep_1=") for l in penv) and
              not any("rel" in l.lower() for l in penv),
              "preparation: it sees its own package's variables only", penv)
        check(lines(os.path.join(logdir, "t1.env")) == [],
              "the job's task does not see the preparation task's package",
              lines(os.path.join(logdir, "t1.env")))
        rc, out, err = pool.cli("job", "terminate", "pj")
        check(rc == 0, "job terminate", err)
        check(wait_for(lambda: os.path.exists(os.path.join(logdir, "release")), 60),
              "the release task runs")
        rel = read(os.path.join(logdir, "release")).split()
        check(len(rel) == 3 and "/applications/rel-2-" in rel[0] and rel[1:] == ["release", "tool"],
              "release: its default version is installed and its variable points at it", rel)
        renv = lines(os.path.join(logdir, "release.env"))
        check("AZ_BATCH_APP_PACKAGE_Rel_2=%s" % rel[0] in renv and
              "AZ_BATCH_APP_PACKAGE_rel=%s" % rel[0] in renv,
              "release: versioned and unversioned variables", renv)

        # ---- a preparation task whose package is missing ---------------
        job = {"id": "bad",
               "jobPreparationTask": {
                   "commandLine": "/bin/true",
                   "applicationPackageReferences": [{"applicationId": "missing", "version": "1"}]}}
        pool.cli("job", "add", ws.write_json("bad.json", job))
        pool.cli("task", "add", "bad", ws.write_json("badt.json", {"value": [
            {"id": "never", "commandLine": "/bin/sh -c 'touch %s/never'" % logdir}]}))
        record = os.path.join(state, "jobs", "bad.prep")
        check(wait_for(lambda: os.path.exists(record), 60), "the failed preparation is recorded")
        with open(record) as f:
            fi = json.load(f).get("executionInfo", {}).get("failureInfo", {})
        check(fi.get("code") == "ApplicationPackageError" and fi.get("category") == "usererror" and
              "'missing' version '1'" in fi.get("message", ""),
              "preparation: a missing package fails it with ApplicationPackageError", fi)
        check(not os.path.exists(os.path.join(logdir, "never")) and
              (pool.task_json("bad", "never") or {}).get("state") == "active",
              "the job's task does not run on the node", pool.task_json("bad", "never"))

        # ---- a package an adopted task still uses ----------------------
        holder = {"id": "holder", "commandLine": "/bin/sh -c '"
                  "echo started >> %s/holder; "
                  "while [ ! -e %s/go ]; do sleep 0.05; done; "
                  "cat $AZ_BATCH_APP_PACKAGE_tool_1/hello.txt > %s/holder.out'"
                  % (logdir, logdir, logdir),
                  "applicationPackageReferences": [{"applicationId": "tool", "version": "1"}]}
        pool.cli("job", "add", ws.write_json("hold.json", {"id": "hold"}))
        pool.cli("task", "add", "hold", ws.write_json("holdt.json", {"value": [holder]}))
        check(wait_for(lambda: lines(os.path.join(logdir, "holder")) == ["started"], 60),
              "the holder runs")
        tool = [n for n in os.listdir(apps) if n.startswith("tool-1-")]
        check(len(tool) == 1, "its package is installed", os.listdir(apps))
        tool_dir = os.path.join(apps, tool[0]) if tool else apps
        pool.kill("node1", signal.SIGKILL)
        pool.start()
        check(wait_for(lambda: "holder: adopted" in pool.log("node1"), 60),
              "the new batchd adopts the holder", pool.log("node1")[-2000:])
        # A task that uses another package: its end runs the collection.
        pool.cli("task", "add", "hold", ws.write_json("pad1.json", {"value": [
            {"id": "pad1", "commandLine": "/bin/true",
             "applicationPackageReferences": [{"applicationId": "pad", "version": "1"}]}]}))
        check(wait_for(lambda: (pool.task_json("hold", "pad1") or {}).get("state") == "completed", 60),
              "another task runs")
        check(wait_for(lambda: not [n for n in os.listdir(apps) if n.startswith("pad-1-")], 30),
              "the collection ran: the other task's package is removed", os.listdir(apps))
        check(os.path.isdir(tool_dir) and os.path.isfile(os.path.join(tool_dir, "hello.txt")),
              "the adopted task's package is kept", os.listdir(apps))
        open(os.path.join(logdir, "go"), "w").close()
        check(wait_for(lambda: (pool.task_json("hold", "holder") or {}).get("state") == "completed", 60),
              "the holder completes")
        ei = pool.task_json("hold", "holder")["executionInfo"]
        check(ei.get("exitCode") == 0 and read(os.path.join(logdir, "holder.out")) == "tool\n",
              "the holder read its package to its end", (ei, lines(os.path.join(logdir, "holder.out"))))
        # Released: the next collection takes it.
        pool.cli("task", "add", "hold", ws.write_json("pad2.json", {"value": [
            {"id": "pad2", "commandLine": "/bin/true",
             "applicationPackageReferences": [{"applicationId": "pad", "version": "1"}]}]}))
        check(wait_for(lambda: not os.path.exists(tool_dir), 60),
              "once the task has ended its package is removed", os.listdir(apps))

        # ---- drained with SIGTERM in the middle of an unpack -----------
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as t:
            for i, name in enumerate(["000-first.txt"] + ["data/%05d" % i for i in range(25000)]):
                info = tarfile.TarInfo(name)
                info.size = 2
                t.addfile(info, io.BytesIO(b"x\n"))
        os.makedirs(os.path.join(store, "huge"))
        with open(os.path.join(store, "huge", "1.tar.gz"), "wb") as f:
            f.write(buf.getvalue())
        pool.cli("task", "add", "hold", ws.write_json("huge.json", {"value": [
            {"id": "huge", "commandLine": "/bin/true",
             "applicationPackageReferences": [{"applicationId": "huge", "version": "1"}]}]}))

        def unpacking():
            return any(n.startswith(".install-") and
                       os.path.exists(os.path.join(apps, n, "000-first.txt"))
                       for n in os.listdir(apps))
        check(wait_for(unpacking, 60, step=0.005), "the big package is unpacking")
        t0 = time.monotonic()
        st = pool.stop()
        took = time.monotonic() - t0
        print("drained %.3f s after the unpack was seen" % took)
        check(st == {"node1": 0}, "the daemon stops cleanly", st)
        check(took < 5, "drain: the daemon exits promptly, the unpack stopped", took)
        check("'huge' version '1': cancelled" in pool.log("node1"),
              "drain: the install was cancelled", pool.log("node1")[-2000:])
        left = [n for n in os.listdir(apps) if n.startswith("huge") or n.startswith(".")]
        check(left == [], "drain: nothing of the package is left", left)
    finally:
        pool.stop()
finish()
