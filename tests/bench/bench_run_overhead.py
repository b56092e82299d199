#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Per-task overhead of `batchd run` against `sh -c true`, in one run.

    tests/bench/bench_run_overhead.py [BATCHD]

Runs hyperfine on both commands (same machine, same moment) and prints the
mean of each, the ratio and the absolute overhead per task.  The aim is an
overhead under 5 ms.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
batchd = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "../../build/agent/batchd")
if shutil.which("hyperfine") is None:
    sys.exit("hyperfine is not installed (apt-get install hyperfine)")

tmp = tempfile.mkdtemp(prefix="batchd-bench-")
try:
    task = os.path.join(tmp, "task.json")
    with open(task, "w") as f:
        json.dump({"id": "t", "commandLine": "/bin/true"}, f)
    root = os.path.join(tmp, "root")
    out = os.path.join(tmp, "hf.json")
    subprocess.run(["hyperfine", "-N", "--warmup", "20", "--min-runs", "300",
                    "--export-json", out,
                    "-n", "sh -c true", "sh -c true",
                    "-n", "batchd run", "%s run --quiet --root %s %s" % (batchd, root, task)],
                   check=True)
    with open(out) as f:
        res = {r["command"]: r for r in json.load(f)["results"]}
    base = res["sh -c true"]["mean"]
    ours = res["batchd run"]["mean"]
    print()
    print("sh -c true:   %.3f ms (median %.3f)" % (base * 1e3, res["sh -c true"]["median"] * 1e3))
    print("batchd run:   %.3f ms (median %.3f)" % (ours * 1e3, res["batchd run"]["median"] * 1e3))
    print("ratio:        %.2fx" % (ours / base))
    print("overhead:     %.3f ms per task (aim: under 5 ms)" % ((ours - base) * 1e3))
finally:
    shutil.rmtree(tmp, ignore_errors=True)
