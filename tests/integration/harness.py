# SPDX-License-Identifier: MIT
"""Shared helpers for integration tests that drive the real batchd binary.

Each test is a script: it calls check() for every assertion, and ends with
finish(), which exits 0 when everything held and 1 otherwise.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BATCHD = os.environ.get("BATCHD", "")
SOURCE_ROOT = os.environ.get(
    "BATCHD_SOURCE_ROOT",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_failures = []


def check(cond, what, detail=""):
    """Records one assertion; prints the detail when it fails."""
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what + (": " + str(detail) if detail else ""))
        _failures.append(what)


def finish():
    if not BATCHD or not os.access(BATCHD, os.X_OK):
        print("FAIL the batchd binary is missing (BATCHD=%r)" % BATCHD)
        sys.exit(1)
    print("%d failed" % len(_failures))
    sys.exit(1 if _failures else 0)


class Workspace:
    """A temporary directory with a node root; removed on exit."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="batchd-it-")
        self.root = os.path.join(self.dir, "root")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_json(self, name, obj):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    def write(self, name, data, mode=0o644):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def task_dir(self, task_id, job_id="job"):
        return os.path.join(self.root, "workitems", job_id, "job-1", task_id)

    def run(self, task, job=None, extra=(), timeout=120, env=None):
        """Runs `batchd run`; returns (status, stdout, stderr, result)."""
        task_path = task if isinstance(task, str) else self.write_json("task.json", task)
        args = [BATCHD, "run", "--root", self.root,
                "--result", os.path.join(self.dir, "result.json")]
        if job is not None:
            job_path = job if isinstance(job, str) else self.write_json("job.json", job)
            args += ["--job", job_path]
        args += list(extra) + [task_path]
        result_path = os.path.join(self.dir, "result.json")
        if os.path.exists(result_path):
            os.unlink(result_path)
        p = subprocess.run(args, capture_output=True, timeout=timeout,
                           cwd=self.dir, env=env)
        result = None
        if os.path.exists(result_path):
            with open(result_path) as f:
                result = json.load(f)
        return p.returncode, p.stdout.decode(errors="replace"), \
            p.stderr.decode(errors="replace"), result


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


class Nginx:
    """A real nginx on loopback via tests/lib/nginx-harness.sh."""

    def __init__(self, ws):
        self.dir = os.path.join(ws.dir, "nginx")
        os.makedirs(self.dir)
        script = os.path.join(SOURCE_ROOT, "tests/lib/nginx-harness.sh")
        p = subprocess.run(["bash", script, "start", self.dir], capture_output=True, text=True)
        if p.returncode == 77:
            print("FAIL nginx is not installed (CI installs nginx-light)")
            sys.exit(1)
        if p.returncode != 0:
            print("FAIL nginx did not start: " + p.stderr)
            sys.exit(1)
        self.port = int(p.stdout.split()[0])
        self.url = "http://127.0.0.1:%d" % self.port
        self.www = os.path.join(self.dir, "www")
        self._script = script

    def stop(self):
        subprocess.run(["bash", self._script, "stop", self.dir], capture_output=True)

    def put_file(self, rel, data):
        path = os.path.join(self.www, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return self.url + "/" + rel
