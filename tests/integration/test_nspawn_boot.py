# SPDX-License-Identifier: MIT
"""The .deb on a real systemd: a fresh Debian 12 root, booted.

1. packaging/build-deb.sh builds the package (or $BATCHD_TEST_DEB names
   one already built).
2. A Debian 12 root made with `debootstrap --variant=minbase
   --include=systemd,systemd-sysv,dbus`, with the package's dependencies
   installed by apt from the mirror, is cached as
   build/nspawn/bookworm-KEY.tar (KEY: a hash of the dependency list) and
   unpacked afresh for each run.
3. `dpkg -i` installs the package in that root (chroot): its dependencies
   must be met, its postinst must create the task users and directories.
4. `systemd-nspawn --boot --register=no --keep-unit -D ROOT` boots it;
   `nsenter -t PID -m -u -i -n -p` into the container's systemd (the nspawn
   process's grandchild) runs systemctl and batchd there.
5. batchd.service becomes active (Type=notify: READY=1 came) with a
   STATUS=, runs a task added with `batchd job add` / `task add`, survives
   `systemctl restart batchd` with a task running, writes its metrics
   textfile, and stops cleanly (exit 0, node offline).

The survival check needs the task supervisors of the isolation work: with
the unit's KillMode=mixed (before that work is merged) a restart ends the
task and requeues it, and the check is reported as an expected failure
(XFAIL) instead of failing the test.

Skipped (77) without root, systemd-nspawn, debootstrap or dpkg-buildpackage,
when the mirror cannot be reached and no cached root exists, and in the
sanitizer tree (the package is not built from the tree's binary).
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SOURCE_ROOT, check, finish  # noqa: E402

MIRROR = "http://deb.debian.org/debian"
CACHE = os.path.join(SOURCE_ROOT, "build", "nspawn")


def skip(why):
    print("skip: " + why)
    sys.exit(77)


def run(*args, timeout=600, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kw)


def mirror():
    """The Debian mirror apt on this machine uses, else deb.debian.org."""
    for d in ("/etc/apt/sources.list.d", "/etc/apt"):
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d)):
            if not (f.endswith(".list") or f.endswith(".sources")):
                continue
            text = open(os.path.join(d, f), errors="replace").read()
            m = re.search(r"(?:URIs:|deb)\s+(https?://\S+/debian)/?\s", text)
            if m and "security" not in m.group(1):
                return m.group(1)
    return MIRROR


def deb_depends(deb):
    """Package names of the .deb's Depends (first of each alternative)."""
    line = run("dpkg-deb", "-f", deb, "Depends").stdout
    return sorted({d.split("|")[0].split()[0] for d in line.split(",") if d.strip()})


def make_root(root, deps, cache):
    """Debootstraps root, installs deps with apt, and saves it in cache."""
    url = mirror()
    probe = run("curl", "-fsSI", "--max-time", "20", url + "/dists/bookworm/Release",
                timeout=60)
    if probe.returncode != 0:
        skip("the mirror %s cannot be reached and no root is cached" % url)
    t0 = time.monotonic()
    p = run("debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus",
            "bookworm", root, url, timeout=1200)
    check(p.returncode == 0, "debootstrap a Debian 12 root (%.0f s)" % (time.monotonic() - t0),
          p.stdout[-1500:] + p.stderr[-1500:])
    if p.returncode != 0:
        finish()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc/resolv.conf"))
    p = run("chroot", root, "apt-get", "-q", "update", timeout=600, env=env)
    p2 = run("chroot", root, "apt-get", "-q", "install", "-y", "--no-install-recommends",
             *deps, timeout=900, env=env)
    check(p.returncode == 0 and p2.returncode == 0, "apt installs the package's dependencies",
          p.stderr[-1000:] + p2.stdout[-1000:] + p2.stderr[-1000:])
    run("chroot", root, "apt-get", "clean")
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    tmp = cache + ".part"
    p = run("tar", "--numeric-owner", "-C", root, "-cpf", tmp, ".", timeout=600)
    if p.returncode == 0:
        os.rename(tmp, cache)
    print("cached the root as %s" % cache)


def children(pid):
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def comm(pid):
    try:
        return open("/proc/%d/comm" % pid).read().strip()
    except OSError:
        return ""


def container_init(nspawn_pid):
    """PID (on the host) of the container's systemd: nspawn's grandchild
    (an outer child between them), or with some versions its child."""
    for child in children(nspawn_pid):
        if comm(child) == "systemd":
            return child
        for grandchild in children(child):
            if comm(grandchild) == "systemd":
                return grandchild
    return None


def wait_for(cond, timeout, step=0.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


if os.environ.get("BATCHD_SANITIZE", "none") not in ("", "none"):
    skip("the boot test runs in the gcc tree")
if os.geteuid() != 0:
    skip("needs root")
for tool in ("systemd-nspawn", "nsenter", "debootstrap", "dpkg-buildpackage", "dh"):
    if not shutil.which(tool):
        skip(tool + " is not installed")

work = tempfile.mkdtemp(prefix="batchd-nspawn-", dir="/var/tmp")
nspawn = None
try:
    deb = os.environ.get("BATCHD_TEST_DEB")
    if not deb:
        p = run("bash", os.path.join(SOURCE_ROOT, "packaging", "build-deb.sh"),
                os.path.join(work, "out"), timeout=1200)
        check(p.returncode == 0, "build the .deb", p.stderr[-2000:])
        if p.returncode != 0:
            finish()
        deb = p.stdout.strip().splitlines()[-1]
    deps = [d for d in deb_depends(deb) if d not in ("systemd",)]
    key = hashlib.sha256(" ".join(deps).encode()).hexdigest()[:12]
    cache = os.path.join(CACHE, "bookworm-%s.tar" % key)
    root = os.path.join(work, "bd-node")
    os.makedirs(root)
    if not os.path.exists(cache):
        make_root(root, deps, cache)
    else:
        p = run("tar", "--numeric-owner", "-C", root, "-xpf", cache, timeout=600)
        check(p.returncode == 0, "unpack the cached root", p.stderr[-500:])

    # Install the package as an administrator would, in the chroot.
    shutil.copy(deb, os.path.join(root, "root", "batchd.deb"))
    p = run("chroot", root, "dpkg", "-i", "/root/batchd.deb", timeout=300)
    check(p.returncode == 0, "dpkg -i installs the package (dependencies met)",
          p.stdout[-1500:] + p.stderr[-1500:])
    passwd = open(os.path.join(root, "etc/passwd")).read()
    check(re.search(r"^_azbatch:", passwd, re.M) is not None,
          "postinst created the task user _azbatch (sysusers)")
    check(os.path.islink(os.path.join(
        root, "etc/systemd/system/multi-user.target.wants/batchd.service")),
        "postinst enabled batchd.service")
    # The operator's configuration: quick polls for a quick test, and
    # metrics for node_exporter.
    os.makedirs(os.path.join(root, "var/lib/prometheus/node-exporter"), exist_ok=True)
    with open(os.path.join(root, "etc/batchd/batchd.json"), "w") as f:
        json.dump({"queue": {"pollMaxInterval": "PT1S"}, "heartbeatInterval": "PT5S",
                   "metrics": {"textfileDir": "/var/lib/prometheus/node-exporter",
                               "interval": "PT1S"}}, f)
    with open(os.path.join(root, "root", "job.json"), "w") as f:
        json.dump({"id": "j1"}, f)
    with open(os.path.join(root, "root", "tasks.json"), "w") as f:
        json.dump([{"id": "hello", "commandLine":
                    "/bin/sh -c 'echo hello from $AZ_BATCH_NODE_ID'"}], f)
    with open(os.path.join(root, "root", "long.json"), "w") as f:
        json.dump([{"id": "long", "commandLine": "/bin/sh -c 'sleep 12; echo finished'"}], f)
    unit = open(os.path.join(root, "lib/systemd/system/batchd.service")).read()
    survives = re.search(r"^KillMode=process", unit, re.M) is not None

    # Boot.
    console = open(os.path.join(work, "console.log"), "wb")
    nspawn = subprocess.Popen(["systemd-nspawn", "--boot", "--register=no", "--keep-unit",
                               "--console=passive", "-D", root],
                              stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
    init = wait_for(lambda: nspawn.poll() is None and container_init(nspawn.pid), 60, 0.2)
    check(init is not None, "the container's systemd started",
          open(os.path.join(work, "console.log"), errors="replace").read()[-2000:])
    if init is None:
        finish()

    def inside(*args, timeout=120):
        return run("nsenter", "-t", str(init), "-m", "-u", "-i", "-n", "-p", "--", *args,
                   timeout=timeout)

    # systemctl answers once the manager's socket is there.
    state = wait_for(lambda: inside("systemctl", "is-system-running", "--wait",
                                    timeout=180).stdout.strip(), 60)
    print("system state: %s" % state)
    active = wait_for(lambda: inside("systemctl", "is-active", "batchd").stdout.strip()
                      in ("active", "failed"), 120)
    state = inside("systemctl", "is-active", "batchd").stdout.strip()
    check(state == "active", "batchd.service is active (READY=1 came)",
          state + "\n" + inside("journalctl", "-u", "batchd", "--no-pager", "-n", "40").stdout)
    node = inside("hostname").stdout.strip()
    status = inside("systemctl", "show", "-p", "StatusText", "--value", "batchd").stdout.strip()
    check(status == "node %s in pool local" % node, "STATUS= says what the node does", status)
    p = inside("stat", "-c", "%a %U", "/var/lib/batchd", "/var/lib/batchd/spool",
               "/mnt/batch/tasks", "/etc/batchd", "/etc/batchd/batchd.json")
    check(p.stdout.split("\n")[:5] == ["700 root", "700 root", "755 root", "750 root",
                                       "640 root"],
          "tmpfiles and the package made the directories with their modes", p.stdout)
    journal = inside("journalctl", "-u", "batchd", "--no-pager", "-o", "cat").stdout
    check("already exists but the mode is different" not in journal,
          "systemd finds /etc/batchd as the unit wants it", journal[-800:])

    # A task from the local spool.
    p = inside("batchd", "job", "add", "/root/job.json")
    check(p.returncode == 0, "batchd job add inside", p.stderr)
    p = inside("batchd", "task", "add", "j1", "/root/tasks.json")
    check(p.returncode == 0, "batchd task add inside", p.stderr)
    p = inside("batchd", "wait", "--timeout", "PT2M", "j1", timeout=180)
    check(p.returncode == 0, "the service ran the task", p.stdout[-500:] + p.stderr[-500:])
    out = os.path.join(root, "mnt/batch/tasks/workitems/j1/job-1/hello/stdout.txt")
    check(os.path.exists(out) and "hello from " + node in open(out).read(),
          "the task's output is in its directory on the node")

    # Restart with a task running.
    p = inside("batchd", "task", "add", "j1", "/root/long.json")
    check(p.returncode == 0, "add a long task", p.stderr)

    def task_state():
        r = inside("batchd", "task", "show", "--json", "j1", "long")
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None
    running = wait_for(lambda: (task_state() or {}).get("state") == "running", 60)
    check(running, "the long task is running")
    started = ((task_state() or {}).get("executionInfo") or {}).get("startTime")
    main_pid = inside("systemctl", "show", "-p", "MainPID", "--value", "batchd").stdout.strip()
    p = inside("systemctl", "restart", "batchd", timeout=180)
    check(p.returncode == 0, "systemctl restart batchd", p.stderr)
    check(inside("systemctl", "is-active", "batchd").stdout.strip() == "active",
          "batchd is active again after the restart")
    new_pid = inside("systemctl", "show", "-p", "MainPID", "--value", "batchd").stdout.strip()
    check(new_pid != main_pid, "a new daemon runs", (main_pid, new_pid))
    p = inside("batchd", "wait", "--timeout", "PT2M", "j1", timeout=180)
    check(p.returncode == 0, "the long task completed after the restart",
          p.stdout[-500:] + p.stderr[-500:])
    t = task_state() or {}
    info = t.get("executionInfo", {})
    journal = inside("journalctl", "-u", "batchd", "--no-pager", "-o", "cat").stdout
    # One run: the start seen before the restart is the start of the run
    # that completed, and the drain did not give the task back.
    survived = (info.get("result") == "success" and info.get("startTime") == started and
                "task long: requeued" not in journal)
    if survives:
        check(survived, "the task survived the restart (one run, not requeued)",
              (started, info))
    else:
        # Until the isolation work's supervisors are merged (KillMode=mixed).
        print("%s the task survived the restart (one run, not requeued): expected to fail "
              "until the supervisor work is merged (KillMode=mixed); started %s, "
              "executionInfo %s" % ("XPASS" if survived else "XFAIL", started, json.dumps(info)))
        check(info.get("result") == "success", "the requeued task ran again and succeeded", info)

    # Metrics for node_exporter.
    prom = os.path.join(root, "var/lib/prometheus/node-exporter/batchd.prom")
    check(os.path.exists(prom) and "batchd_tasks_completed_total" in open(prom).read(),
          "the metrics textfile is written")

    # Stop cleanly.
    p = inside("systemctl", "stop", "batchd", timeout=180)
    check(p.returncode == 0, "systemctl stop batchd", p.stderr)
    show = inside("systemctl", "show", "-p", "ActiveState,Result,ExecMainStatus", "batchd").stdout
    check("ActiveState=inactive" in show and "Result=success" in show and
          "ExecMainStatus=0" in show, "batchd stopped cleanly (exit 0)", show)
    check('batchd_node_state{state="offline"} 1' in open(prom).read(),
          "the last metrics say offline")
    journal = inside("journalctl", "-u", "batchd", "--no-pager", "-o", "cat").stdout
    check("stopped" in journal, "the journal has the daemon's lines", journal[-1000:])
    print("--- the daemon's journal, last lines\n" + "\n".join(journal.splitlines()[-40:]))
    inside("systemctl", "poweroff", "--no-block")
    try:
        nspawn.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
finally:
    if nspawn is not None and nspawn.poll() is None:
        nspawn.kill()
        nspawn.wait()
    shutil.rmtree(work, ignore_errors=True)
finish()
