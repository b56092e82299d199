# SPDX-License-Identifier: MIT
"""A batchd pool of real daemons for integration tests: N nodes sharing one
local spool (or one Azurite account), each with its own node root and
state directory, driven through the real client commands."""
import json
import os
import signal
import subprocess
import time

from harness import BATCHD


class Pool:
    def __init__(self, ws, nodes=3, slots=2, storage=None, extra=None):
        self.ws = ws
        self.configs = []
        self.procs = {}
        for i in range(nodes):
            name = "node%d" % (i + 1)
            cfg = {
                "poolId": "testpool",
                "nodeId": name,
                "nodeRoot": os.path.join(ws.dir, name, "root"),
                "stateDir": os.path.join(ws.dir, name, "state"),
                "spoolDir": os.path.join(ws.dir, "spool"),
                "taskSlotsPerNode": slots,
                "heartbeatInterval": "PT2S",
                "jobCheckInterval": "PT1S",
                "queue": {"pollMinInterval": "PT0.05S", "pollMaxInterval": "PT0.5S",
                          "leaseDuration": "PT10S", "maxDequeueCount": 5},
                "tasks": {"killGracePeriod": "PT1S"},
                "log": {"level": "info"},
            }
            if storage is not None:
                cfg["storage"] = storage
            if extra:
                cfg.update(extra)
            # The agent's configuration: private to root, as batchd
            # requires when it holds credentials and tasks run as users.
            path = ws.write_json(name + ".json", cfg, mode=0o600)
            self.configs.append((name, path))
        self.client_config = self.configs[0][1]

    def start(self, name=None):
        for n, path in self.configs:
            if name is not None and n != name:
                continue
            log = open(os.path.join(self.ws.dir, n + ".log"), "ab")
            self.procs[n] = subprocess.Popen([BATCHD, "daemon", "--config", path],
                                             stdout=log, stderr=subprocess.STDOUT)

    def log(self, name):
        with open(os.path.join(self.ws.dir, name + ".log"), errors="replace") as f:
            return f.read()

    def kill(self, name, sig=signal.SIGKILL):
        self.procs[name].send_signal(sig)
        return self.procs[name].wait(timeout=60)

    def stop(self, timeout=60):
        """SIGTERM every daemon; returns {name: exit status}."""
        out = {}
        for n, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for n, p in self.procs.items():
            try:
                out[n] = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out[n] = "hung"
        return out

    def cli(self, *args, timeout=300):
        p = subprocess.run([BATCHD] + list(args[:2]) + ["--config", self.client_config] +
                           list(args[2:]), capture_output=True, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def task_json(self, job, task):
        rc, out, err = self.cli("task", "show", job, task, "--json")
        return json.loads(out) if rc == 0 else None


def wait_for(cond, timeout, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()
