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
        # Run as root, batchd runs tasks as users of their own
        # (docs/running-tasks.md): they must reach the node root in here,
        # and write file:// output containers here, as in /tmp.
        os.chmod(self.dir, 0o1777)
        self.root = os.path.join(self.dir, "root")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_json(self, name, obj, mode=0o644):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(obj, f)
        os.chmod(path, mode)
        return path

    def write(self, name, data, mode=0o644):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def writable_dir(self, name):
        """A directory in the workspace that tasks may write to: run as
        root, batchd runs them as users of their own."""
        path = os.path.join(self.dir, name)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o1777)
        return path

    def task_dir(self, task_id, job_id="job"):
        return os.path.join(self.root, "workitems", job_id, "job-1", task_id)

    def run(self, task, job=None, extra=(), timeout=120, env=None, root=None):
        """Runs `batchd run`; returns (status, stdout, stderr, result)."""
        return self.collect(self.start(task, job, extra, env, root), timeout)

    def start(self, task, job=None, extra=(), env=None, root=None):
        """Starts `batchd run` in the background; finish with collect()."""
        task_path = task if isinstance(task, str) else self.write_json("task.json", task)
        args = [BATCHD, "run", "--root", root or self.root,
                "--result", os.path.join(self.dir, "result.json")]
        if job is not None:
            job_path = job if isinstance(job, str) else self.write_json("job.json", job)
            args += ["--job", job_path]
        args += list(extra) + [task_path]
        result_path = os.path.join(self.dir, "result.json")
        if os.path.exists(result_path):
            os.unlink(result_path)
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, cwd=self.dir, env=env)

    def collect(self, p, timeout=120):
        """Waits for a start()ed run; returns (status, stdout, stderr, result)."""
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise
        result = None
        result_path = os.path.join(self.dir, "result.json")
        if os.path.exists(result_path):
            with open(result_path) as f:
                result = json.load(f)
        return p.returncode, out.decode(errors="replace"), \
            err.decode(errors="replace"), result


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def alive(pid):
    """Whether pid runs (not gone, not a zombie waiting for its reaper)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def supervisors(under):
    """[(task id, pid)] of the task supervisors (batchd-supervise) whose
    command line names a path below the directory under."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 2 and argv[0].endswith(b"/batchd-supervise") and \
                under.encode() + b"/" in b" ".join(argv):
            cwd = argv[argv.index(b"--cwd") + 1].decode()
            out.append((os.path.basename(os.path.dirname(cwd)), int(d)))
    return out


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


# Azurite's well-known development account.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")


class Azurite:
    """A real Azurite on loopback via tests/lib/azurite-harness.sh, with the
    official Azure Storage Blob SDK (tests/lib/node/blobtool.js) as the
    other party.  The Node.js packages come from $BATCHD_TEST_NODE_DIR
    (build/node in CI), else tests/lib/node/node_modules, as the harness
    finds them.  The server is killed when this process ends."""

    def __init__(self, ws):
        self.dir = os.path.join(ws.dir, "azurite")
        os.makedirs(self.dir)
        self._script = os.path.join(SOURCE_ROOT, "tests/lib/azurite-harness.sh")
        self._tool = os.path.join(SOURCE_ROOT, "tests/lib/node/blobtool.js")
        self._env = dict(os.environ, BATCHD_TEST_OWNER_PID=str(os.getpid()))
        p = subprocess.run(["bash", self._script, "node-dir"], capture_output=True,
                           text=True, env=self._env, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            print("FAIL the Azurite packages are missing (CI installs them with "
                  ".ci/install-deps --node): " + p.stderr)
            sys.exit(1)
        self.node_modules = os.path.join(p.stdout.strip(), "node_modules")
        self.blob_port = int(self._harness("start").split()[0])
        self.endpoint = "http://127.0.0.1:%d/%s" % (self.blob_port, AZURITE_ACCOUNT)
        # The Azure CLI's form, with the port of this server.
        self.conn = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
                     "BlobEndpoint=%s;" % (AZURITE_ACCOUNT, AZURITE_KEY, self.endpoint))

    def _harness(self, verb):
        p = subprocess.run(["bash", self._script, verb, self.dir], capture_output=True,
                           text=True, env=self._env, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            print("FAIL azurite-harness.sh %s: %s" % (verb, p.stderr[-2000:]))
            sys.exit(1)
        return p.stdout

    def stop(self):
        subprocess.run(["bash", self._script, "stop", self.dir], capture_output=True,
                       stdin=subprocess.DEVNULL)

    def kill9(self):
        """SIGKILL: no chance to save; data and ports stay for restart()."""
        self._harness("kill9")

    def restart(self):
        """Starts again on the same ports with the same data."""
        self._harness("restart")

    def persist(self):
        """Azurite saves its metadata every few seconds: a clean stop and a
        restart make what is there now survive a later kill9()."""
        self._harness("stop")
        self._harness("restart")

    def tool(self, *args, container="test"):
        """Runs blobtool.js ARGS on container; returns its stdout, stripped."""
        return self.tools((container,) + args)[0]

    def tools(self, *calls):
        """Runs blobtool.js once for each (container, arg, ...) at the same
        time (each is a Node.js start-up); returns their stdouts, stripped.
        Raises when any failed."""
        env = dict(os.environ, AZURE_STORAGE_CONNECTION_STRING=self.conn,
                   NODE_PATH=self.node_modules)
        procs = [subprocess.Popen(["node", self._tool] + [str(a) for a in c[1:]],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, text=True,
                                  env=dict(env, BLOBTOOL_CONTAINER=c[0]))
                 for c in calls]
        outs, errors = [], []
        for c, p in zip(calls, procs):
            out, err = p.communicate(timeout=300)
            outs.append(out.strip())
            if p.returncode != 0:
                errors.append("blobtool %s: %s" % (" ".join(map(str, c)), err))
        if errors:
            raise RuntimeError("; ".join(errors))
        return outs

    def debug_log_size(self):
        return os.path.getsize(os.path.join(self.dir, "debug.log"))

    def debug_log(self, since=0):
        """Azurite's request log from byte since on: every request, for
        checking how batchd asked.  Azurite writes it a little late."""
        with open(os.path.join(self.dir, "debug.log"), "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")


# ---- client commands on a local spool -------------------------------------

def local_pool_config(ws, name="client.json", pool_id="testpool", node_id="node1", **extra):
    """Writes a node configuration whose pool is a local spool under ws.dir
    (spoolDir, stateDir and nodeRoot); returns its path."""
    cfg = {
        "poolId": pool_id,
        "nodeId": node_id,
        "spoolDir": os.path.join(ws.dir, "spool"),
        "stateDir": os.path.join(ws.dir, node_id, "state"),
        "nodeRoot": os.path.join(ws.dir, node_id, "root"),
    }
    cfg.update(extra)
    return ws.write_json(name, cfg)


def client(config, *args, timeout=120):
    """Runs `batchd ARGS... --config CONFIG`; returns (status, stdout, stderr)."""
    p = subprocess.run([BATCHD] + list(args) + ["--config", config],
                       capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


class Spool:
    """Reads and writes a local spool's tables and queues in the layout that
    agent/store_local.c and agent/source_local.c document (protocol §7):

        <spool>/tables/<table>/<partition key>/<row key>.json
            {"v":1,"PartitionKey","RowKey","etag","version","Timestamp","props"}
        <spool>/queues/<queue>/visible/<visibleMs>.<id>.<dequeueCount>

    Keys are percent-encoded (bytes outside [A-Za-z0-9_-] as %XX).  Writes
    go through a temporary file, fsync and rename, as the store's own do;
    use them only while no daemon runs."""

    def __init__(self, path):
        self.path = path

    @staticmethod
    def _key(key):
        if key == "":
            return "%"
        return "".join(c if c.isascii() and (c.isalnum() or c in "_-") else
                       "".join("%%%02X" % b for b in c.encode()) for c in key)

    def row_path(self, table, pk, rk):
        return os.path.join(self.path, "tables", table, self._key(pk), self._key(rk) + ".json")

    def rows(self, table, pk):
        """{row key: props} of one partition."""
        d = os.path.join(self.path, "tables", table, self._key(pk))
        out = {}
        if not os.path.isdir(d):
            return out
        for name in os.listdir(d):
            if name.endswith(".json") and not name.startswith("."):
                with open(os.path.join(d, name)) as f:
                    doc = json.load(f)
                out[doc["RowKey"]] = doc["props"]
        return out

    def merge_row(self, table, pk, rk, **props):
        """Merges props into an existing row with a new ETag, as a store merge would."""
        import random
        import time
        path = self.row_path(table, pk, rk)
        with open(path) as f:
            doc = json.load(f)
        doc["props"].update(props)
        doc["version"] = int(doc.get("version", 0)) + 1
        doc["etag"] = 'W/"%d.%016x"' % (doc["version"], random.getrandbits(64))
        doc["Timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        tmp = os.path.join(os.path.dirname(path), ".tmp-%016x" % random.getrandbits(64))
        with open(tmp, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)

    def messages(self, queue):
        """The texts of the visible messages of a queue."""
        d = os.path.join(self.path, "queues", queue, "visible")
        out = []
        if not os.path.isdir(d):
            return out
        for name in sorted(os.listdir(d)):
            if name.startswith("."):
                continue
            with open(os.path.join(d, name)) as f:
                out.append(json.load(f)["text"])
        return out

    def drop_messages(self, queue):
        """Removes every visible message (a lost send, for tests)."""
        d = os.path.join(self.path, "queues", queue, "visible")
        for name in os.listdir(d):
            if not name.startswith("."):
                os.unlink(os.path.join(d, name))


def cgroup_v2_mount():
    """Where the cgroup v2 hierarchy is mounted, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ", 1)
            if post.split()[0] == "cgroup2":
                return pre.split()[4]
    return None


def remove_cgroup_tree(d):
    """Removes the cgroup directory d and those below it, deepest first
    (a cgroup directory goes with rmdir only); a missing d is fine."""
    if d is None or not os.path.isdir(d):
        return
    for root, dirs, files in os.walk(d, topdown=False):
        for sub in dirs:
            try:
                os.rmdir(os.path.join(root, sub))
            except OSError:
                pass
    os.rmdir(d)
