#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""outputFiles: patterns, naming, conditions and destinations (spec §1.3, §7)."""
import json
import os

from harness import Nginx, Workspace, check, finish, read

SAS = "?sv=2023-11-03&sp=w&sig=SuperSecretSignature%3D"


def spec(pattern, container, path=None, cond="taskCompletion", headers=None):
    dest = {"containerUrl": container}
    if path is not None:
        dest["path"] = path
    if headers:
        dest["uploadHeaders"] = headers
    return {"filePattern": pattern, "destination": {"container": dest},
            "uploadOptions": {"uploadCondition": cond}}


MAKE = ("/bin/sh -c 'mkdir -p out/a/b .hidden; echo 1 > out/one.txt; echo 2 > out/a/two.txt; "
        "echo 3 > out/a/b/three.txt; echo h > out/.dot.txt; echo x > .hidden/x.txt; echo r > report.csv; "
        "echo log; exit ${CODE:-0}'")

with Workspace() as ws:
    ng = Nginx(ws)
    try:
        c = "file://" + ws.dir + "/c"
        status, out, err, res = ws.run({
            "id": "outs", "commandLine": MAKE,
            "environmentSettings": [{"name": "SUB", "value": "out"}],
            "outputFiles": [
                spec("report.csv", c),                       # no wildcard, no path: file name
                spec("report.csv", c, "renamed/r.csv"),      # no wildcard: path is the blob name
                spec("out/*.txt", c, "flat"),                # wildcard: path/ + name
                spec("$SUB/**/*.txt", c, "tree"),            # ** keeps subdirectories, $VAR expanded
                spec("../std*.txt", c, "logs"),              # task dir logs
                spec("nothing/*.bin", c, "none"),            # no match: not an error
                spec("out/*.txt", c, "failonly", "taskFailure"),
                spec("out/*.txt", ng.url + "/upload/cont" + SAS, "web",
                     headers=[{"name": "x-ms-meta-origin", "value": "batchd"}]),
            ],
        })
        check(status == 0, "task with outputs succeeds", err[-2000:])
        check(res["executionInfo"]["result"] == "success", "upload phase succeeded", res["executionInfo"])
        base = os.path.join(ws.dir, "c")
        expect = ["report.csv", "renamed/r.csv", "flat/one.txt", "tree/one.txt", "tree/a/two.txt",
                  "tree/a/b/three.txt", "logs/stdout.txt", "logs/stderr.txt"]
        for name in expect:
            check(os.path.isfile(os.path.join(base, name)), "blob %s" % name)
        check(not os.path.exists(os.path.join(base, "tree/.dot.txt")), "dot file skipped by wildcard")
        check(not os.path.exists(os.path.join(base, "failonly")), "taskFailure outputs skipped on success")
        check(not os.path.exists(os.path.join(base, "none")), "no-match pattern uploads nothing")
        check(read(os.path.join(base, "logs/stdout.txt")) == "log\n", "stdout uploaded complete")
        check(read(os.path.join(ng.www, "upload/cont/web/one.txt")) == "1\n", "PUT to HTTP container")
        td = ws.task_dir("outs")
        upout = read(os.path.join(td, "fileuploadout.txt"))
        check("nothing/*.bin" in upout, "fileuploadout.txt mentions the empty pattern", upout[-1500:])
        check(os.path.exists(os.path.join(td, "fileuploaderr.txt")), "fileuploaderr.txt exists")
        check("SuperSecretSignature" not in upout + err + out, "no signature in logs")

        # Failure: taskFailure selection and an upload error (404 container).
        status, out, err, res = ws.run({
            "id": "outfail", "commandLine": MAKE,
            "environmentSettings": [{"name": "CODE", "value": "4"}],
            "outputFiles": [spec("out/*.txt", c, "failonly", "taskFailure"),
                            spec("out/*.txt", c, "success-only", "taskSuccess")],
        })
        check(status == 4, "exit code passes through", status)
        check(os.path.isfile(os.path.join(base, "failonly/one.txt")), "taskFailure uploads on failure")
        check(not os.path.exists(os.path.join(base, "success-only")), "taskSuccess skipped on failure")

        status, out, err, res = ws.run({
            "id": "up404", "commandLine": MAKE,
            "outputFiles": [spec("out/*.txt", ng.url + "/status/404" + SAS, "x")],
        })
        ei = res["executionInfo"]
        check(ei["result"] == "failure" and ei["failureInfo"]["code"] == "FileUploadContainerNotFound",
              "404 container gives FileUploadContainerNotFound", ei)
        check(ei.get("exitCode") == 0, "exit code 0 kept with the upload failure", ei)
        errlog = read(os.path.join(ws.task_dir("up404"), "fileuploaderr.txt"))
        check(errlog.strip() != "" and all(json.loads(l) for l in errlog.splitlines() if l.strip()),
              "fileuploaderr.txt holds JSON objects", errlog)
        check("SuperSecretSignature" not in errlog + json.dumps(res) + err, "no signature on the failure path")

        status, out, err, res = ws.run({
            "id": "up403", "commandLine": MAKE,
            "outputFiles": [spec("out/one.txt", ng.url + "/status/403" + SAS, "x")],
        })
        check(res["executionInfo"]["failureInfo"]["code"] == "FileUploadAccessDenied",
              "403 gives FileUploadAccessDenied", res["executionInfo"])

        # A relative --root (batchd run starts in the workspace) is taken
        # from the current directory: the node root the task sees is
        # absolute, and its outputs upload.
        status, out, err, res = ws.run({
            "id": "relroot", "commandLine": "/bin/sh -c 'mkdir out; "
            "echo $AZ_BATCH_NODE_ROOT_DIR > out/root.txt'",
            "outputFiles": [spec("out/root.txt", c, "rel/root.txt")],
        }, root="relroot")
        check(status == 0, "a task under a relative --root succeeds", err[-2000:])
        uploaded = os.path.join(ws.dir, "c", "rel", "root.txt")
        check(os.path.exists(uploaded) and
              read(uploaded).strip() == os.path.join(ws.dir, "relroot"),
              "its output uploads, and AZ_BATCH_NODE_ROOT_DIR is absolute",
              read(uploaded) if os.path.exists(uploaded) else err[-1000:])
    finally:
        ng.stop()
finish()
