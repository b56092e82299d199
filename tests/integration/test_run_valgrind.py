#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""batchd run is valgrind-clean: no invalid access, no leak, all fds closed.
So is the daemon on a local pool: it takes a job's tasks (preparation,
release, a retry), reports them through the group commit's delay, and
drains on SIGTERM."""
import json
import os
import shutil
import signal
import subprocess
import sys

from harness import BATCHD, Workspace, check, finish
from pool import Pool

if os.environ.get("BATCHD_SANITIZE", "none") not in ("", "none"):
    print("skip: sanitizer build (valgrind runs on the plain build)")
    sys.exit(77)
if shutil.which("valgrind") is None:
    print("FAIL valgrind is not installed")
    sys.exit(1)

with Workspace() as ws:
    inp = ws.write("in/data.txt", "payload\n")
    job = ws.write_json("job.json", {
        "id": "vg",
        "jobPreparationTask": {"commandLine": "/bin/true"},
        "jobReleaseTask": {"commandLine": "/bin/true"},
    })
    task = ws.write_json("task.json", {
        "id": "vgtask",
        "commandLine": "/bin/sh -c 'cat data.txt; echo out > out.txt; exit 2'",
        "resourceFiles": [{"httpUrl": "file://" + inp, "filePath": "data.txt"}],
        "outputFiles": [{"filePattern": "*.txt",
                         "destination": {"container": {"containerUrl": "file://" + ws.dir + "/out"}},
                         "uploadOptions": {"uploadCondition": "taskCompletion"}}],
        "constraints": {"maxTaskRetryCount": 1},
    })
    p = subprocess.run(["valgrind", "--error-exitcode=99", "--leak-check=full",
                        "--errors-for-leak-kinds=definite,indirect,possible",
                        "--show-leak-kinds=definite,indirect,possible",
                        "--track-fds=yes", "-q",
                        BATCHD, "run", "--root", ws.root, "--job", job, task],
                       capture_output=True, timeout=300)
    err = p.stderr.decode(errors="replace")
    check(p.returncode == 2, "task exit code passes through valgrind", (p.returncode, err[-3000:]))
    check("definitely lost" not in err and "Invalid" not in err, "no valgrind errors", err[-3000:])
    check(os.path.exists(os.path.join(ws.dir, "out", "out.txt")), "outputs uploaded under valgrind")

with Workspace() as ws:
    pool = Pool(ws, nodes=1, slots=2)
    rc, out, err = pool.cli("job", "add", ws.write_json("pjob.json", {
        "id": "vgpool",
        "jobPreparationTask": {"commandLine": "/bin/true"},
        "jobReleaseTask": {"commandLine": "/bin/true"},
    }))
    check(rc == 0, "job add", err)
    tasks = [{"id": "t%d" % i, "commandLine": "/bin/true"} for i in range(8)]
    tasks.append({"id": "fails", "commandLine": "/bin/sh -c 'exit 3'",
                  "constraints": {"maxTaskRetryCount": 1}})
    rc, out, err = pool.cli("task", "add", "vgpool", ws.write_json("ptasks.json", tasks))
    check(rc == 0, "task add", err)
    name, cfg = pool.configs[0]
    log = open(os.path.join(ws.dir, "vgdaemon.log"), "wb")
    d = subprocess.Popen(["valgrind", "--error-exitcode=99", "--leak-check=full",
                          "--errors-for-leak-kinds=definite,indirect,possible",
                          "--show-leak-kinds=definite,indirect,possible", "-q",
                          BATCHD, "daemon", "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
    rc, out, err = pool.cli("wait", "vgpool", timeout=600)
    check(rc != 0 and "8 succeeded, 1 failed" in out + err,
          "the daemon under valgrind runs the job (one task fails after its retry)", out + err)
    d.send_signal(signal.SIGTERM)
    status = d.wait(timeout=300)
    log.close()
    with open(os.path.join(ws.dir, "vgdaemon.log"), errors="replace") as f:
        text = f.read()
    check(status == 0, "the daemon drains and exits 0 under valgrind", (status, text[-3000:]))
    check("definitely lost" not in text and "Invalid" not in text and "uninitialised" not in text,
          "no valgrind errors in the daemon", text[-3000:])
    rc, out, err = pool.cli("task", "show", "vgpool", "fails", "--json")
    check(rc == 0 and json.loads(out).get("executionInfo", {}).get("retryCount") == 1,
          "the failing task was retried once", out + err)
finish()
