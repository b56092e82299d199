#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""batchd run is valgrind-clean: no invalid access, no leak, all fds closed."""
import os
import shutil
import subprocess
import sys

from harness import BATCHD, Workspace, check, finish

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
finish()
