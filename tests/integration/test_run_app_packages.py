#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Application packages with `batchd run` and a local directory store:
each format (zip, tar.gz, tar.xz, tar.zst), explicit and default versions,
the AZ_BATCH_APP_PACKAGE_* variables of reference section 5, a task seeing
only the packages it referenced, hostile packages (zip-slip, symlink
escape, a bomb, too many entries, a truncated archive) failing the task
with ApplicationPackageError naming the entry, batchd killed with SIGKILL
in the middle of unpacking a big package (nothing usable is left and the
next task installs cleanly), and a task ended (SIGTERM to batchd run, its
maxWallClockTime) in the middle of unpacking one: it ends promptly, the
unpack stops, nothing of the package is left.
Archives are made here, at test time."""
import io
import os
import re
import signal
import subprocess
import tarfile
import time
import zipfile

from harness import Workspace, check, finish, read


def tar_bytes(files, mode):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_package(store, app, version, ext, files):
    """Writes store/app/version.ext holding files [(name, bytes)]."""
    d = os.path.join(store, app)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "%s.%s" % (version, ext))
    if ext == "zip":
        with zipfile.ZipFile(path + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files:
                info = zipfile.ZipInfo(name)
                info.external_attr = (0o755 if name.endswith(".sh") else 0o644) << 16
                z.writestr(info, data, zipfile.ZIP_DEFLATED)
    elif ext == "tar.gz":
        open(path + ".tmp", "wb").write(tar_bytes(files, "w:gz"))
    elif ext == "tar.xz":
        open(path + ".tmp", "wb").write(tar_bytes(files, "w:xz"))
    elif ext == "tar.zst":
        raw = tar_bytes(files, "w")
        z = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True)
        open(path + ".tmp", "wb").write(z.stdout)
    os.rename(path + ".tmp", path)
    return path


def env_of(ws, task_id):
    out = {}
    for line in read(os.path.join(ws.task_dir(task_id), "wd", "env.txt")).splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


DUMP_ENV = "/bin/sh -c 'env > env.txt; cat \"$%s\"/hello.txt'"

with Workspace() as ws:
    store = os.path.join(ws.dir, "store")
    cfg = ws.write_json("batchd.json", {
        "spoolDir": os.path.join(ws.dir, "spool"),
        "applicationStore": {"directory": store},
        "applicationPackageMaxEntries": 100000,
        "applicationPackageMaxBytes": 64 << 20,
    })
    conf = ["--config", cfg]
    apps_dir = os.path.join(ws.root, "applications")

    # ---- each format, explicit version --------------------------------
    for i, ext in enumerate(["zip", "tar.gz", "tar.xz", "tar.zst"]):
        app = "Fmt-%s" % ext.replace(".", "")
        make_package(store, app, "1.0", ext, [
            ("hello.txt", b"hello from " + ext.encode() + b"\n"),
            ("bin/run.sh", b"#!/bin/sh\necho run\n")])
        var = "AZ_BATCH_APP_PACKAGE_%s_1_0" % app.replace("-", "_")
        task = {"id": "fmt%d" % i, "commandLine": DUMP_ENV % var,
                "applicationPackageReferences": [{"applicationId": app, "version": "1.0"}]}
        status, out, err, res = ws.run(task, extra=conf)
        check(status == 0, ext + ": the task ran", err)
        check(("hello from " + ext) in out, ext + ": the package's file is there", out)
        env = env_of(ws, "fmt%d" % i)
        check(var in env and var.lower().replace("az_batch_app_package_", "AZ_BATCH_APP_PACKAGE_") in env,
              ext + ": original-case and lower-case variables", sorted(k for k in env if "APP_PACKAGE" in k))
        d = env.get(var, "")
        check(d.startswith(apps_dir + "/") and os.path.isdir(d),
              ext + ": the variable names a directory under applications/", d)
        check(os.access(os.path.join(d, "bin/run.sh"), os.X_OK), ext + ": modes are kept")
        check(("AZ_BATCH_APP_PACKAGE_%s" % app.replace("-", "_")) not in env,
              ext + ": no unversioned variable for an explicit version")

    # ---- default version, two packages, only what was referenced -------
    make_package(store, "Blender", "2.80-daily", "zip", [("hello.txt", b"blender 2.80\n")])
    make_package(store, "Blender", "2.79", "zip", [("hello.txt", b"blender 2.79\n")])
    with open(os.path.join(store, "Blender", "default"), "w") as f:
        f.write("2.80-daily\n")
    make_package(store, "other", "3", "tar.gz", [("hello.txt", b"other 3\n")])
    task = {"id": "dflt", "commandLine": DUMP_ENV % "AZ_BATCH_APP_PACKAGE_blender",
            "applicationPackageReferences": [{"applicationId": "blender"},
                                             {"applicationId": "other", "version": "3"}]}
    status, out, err, res = ws.run(task, extra=conf)
    check(status == 0 and "blender 2.80" in out, "default version: installed and used", err)
    env = env_of(ws, "dflt")
    # The store's spelling (original case), lower case, and the reference's.
    want = ["AZ_BATCH_APP_PACKAGE_Blender", "AZ_BATCH_APP_PACKAGE_Blender_2_80_daily",
            "AZ_BATCH_APP_PACKAGE_blender", "AZ_BATCH_APP_PACKAGE_blender_2_80_daily",
            "AZ_BATCH_APP_PACKAGE_other_3"]
    got = sorted(k for k in env if k.startswith("AZ_BATCH_APP_PACKAGE_"))
    check(got == want, "default version: exactly the variables of section 5", got)
    check(env.get("AZ_BATCH_APP_PACKAGE_blender") == env.get("AZ_BATCH_APP_PACKAGE_blender_2_80_daily"),
          "default version: unversioned and versioned name one directory")
    task = {"id": "only", "commandLine": DUMP_ENV % "AZ_BATCH_APP_PACKAGE_blender_2_79",
            "applicationPackageReferences": [{"applicationId": "Blender", "version": "2.79"}]}
    status, out, err, res = ws.run(task, extra=conf)
    env = env_of(ws, "only")
    got = sorted(k for k in env if k.startswith("AZ_BATCH_APP_PACKAGE_"))
    check(status == 0 and "blender 2.79" in out, "explicit older version used", err)
    check(got == ["AZ_BATCH_APP_PACKAGE_Blender_2_79", "AZ_BATCH_APP_PACKAGE_blender_2_79"],
          "a task sees only the packages it referenced", got)

    # ---- no default version, missing version --------------------------
    task = {"id": "nodef", "commandLine": "/bin/true",
            "applicationPackageReferences": [{"applicationId": "other"}]}
    status, out, err, res = ws.run(task, extra=conf)
    fi = (res or {}).get("executionInfo", {}).get("failureInfo", {})
    check(status == 125 and fi.get("code") == "ApplicationPackageError" and
          "no default version" in fi.get("message", ""),
          "no default version: ApplicationPackageError", fi)

    # ---- hostile packages ------------------------------------------------
    make_package(store, "evil", "1", "zip", [("fine.txt", b"x"), ("../../../escaped.txt", b"x")])
    hostile_tar = os.path.join(store, "evil", "2.tar.gz")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc"
        t.addfile(info)
        info = tarfile.TarInfo("link/passwd")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    open(hostile_tar, "wb").write(buf.getvalue())
    for version, entry in (("1", "escaped.txt"), ("2", "link")):
        task = {"id": "evil" + version, "commandLine": "/bin/true",
                "applicationPackageReferences": [{"applicationId": "evil", "version": version}]}
        status, out, err, res = ws.run(task, extra=conf)
        fi = (res or {}).get("executionInfo", {}).get("failureInfo", {})
        msg = fi.get("message", "")
        check(status == 125 and fi.get("code") == "ApplicationPackageError" and
              fi.get("category") == "usererror",
              "hostile package %s: ApplicationPackageError, usererror" % version, fi)
        check("'evil' version '%s'" % version in msg and entry in msg,
              "hostile package %s: the message names the package and the entry" % version, msg)
    check(not os.path.exists(os.path.join(ws.dir, "escaped.txt")) and
          not os.path.exists(os.path.join(ws.root, "escaped.txt")),
          "hostile package: nothing written outside")
    # A bomb: 256 MiB of zeros in a small zip, over the 64 MiB limit.
    d = os.path.join(store, "evil")
    with zipfile.ZipFile(os.path.join(d, "3.zip.tmp"), "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("zeros.bin", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(256):
                f.write(chunk)
    os.rename(os.path.join(d, "3.zip.tmp"), os.path.join(d, "3.zip"))
    # Too many entries, and a truncated archive.
    with open(os.path.join(d, "4.tar.gz"), "wb") as f:
        f.write(tar_bytes([("f%06d" % i, b"") for i in range(100001)], "w:gz"))
    whole = tar_bytes([("a.bin", os.urandom(200000))], "w:gz")
    with open(os.path.join(d, "5.tar.gz"), "wb") as f:
        f.write(whole[:len(whole) // 2])
    for version, entry, why in (("3", "zeros.bin", "more than 67108864 bytes"),
                                ("4", "f", "more than 100000 entries"),
                                ("5", "a.bin", "")):
        task = {"id": "evil" + version, "commandLine": "/bin/true",
                "applicationPackageReferences": [{"applicationId": "evil", "version": version}]}
        status, out, err, res = ws.run(task, extra=conf)
        fi = (res or {}).get("executionInfo", {}).get("failureInfo", {})
        msg = fi.get("message", "")
        check(status == 125 and fi.get("code") == "ApplicationPackageError" and
              "'evil' version '%s'" % version in msg and entry in msg and why in msg,
              "hostile package %s: refused with its reason" % version, fi)
    check(not [n for n in os.listdir(apps_dir) if n.startswith("evil") or n.startswith(".")],
          "hostile packages: nothing left under applications/", os.listdir(apps_dir))

    # ---- SIGKILL in the middle of unpacking ----------------------------
    files = [("000-first.txt", b"first\n"), ("hello.txt", b"big\n")]
    files += [("data/%05d.txt" % i, b"%d\n" % i) for i in range(25000)]
    make_package(store, "big", "1", "tar.gz", files)
    task = {"id": "big1", "commandLine": DUMP_ENV % "AZ_BATCH_APP_PACKAGE_big_1",
            "applicationPackageReferences": [{"applicationId": "big", "version": "1"}]}
    p = ws.start(task, extra=conf)

    def partial():
        for n in os.listdir(apps_dir):
            if n.startswith(".install-") and os.path.exists(
                    os.path.join(apps_dir, n, "000-first.txt")):
                return n
        return None

    seen = None
    end = time.monotonic() + 120
    while seen is None and p.poll() is None and time.monotonic() < end:
        seen = partial()
        time.sleep(0.002)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    check(seen is not None, "kill -9: the unpack was caught in progress")
    usable = [n for n in os.listdir(apps_dir) if n.startswith("big")]
    check(usable == [], "kill -9: no package directory under a final name", usable)
    check(seen is not None and os.path.isdir(os.path.join(apps_dir, seen)),
          "kill -9: only the temporary directory is left")
    status, out, err, res = ws.run(dict(task, id="big2"), extra=conf, timeout=300)
    check(status == 0 and "big" in out, "after kill -9: the next task installs cleanly", err[-2000:])
    env = env_of(ws, "big2")
    d = env.get("AZ_BATCH_APP_PACKAGE_big_1", "")
    check(os.path.isfile(os.path.join(d, "data", "24999.txt")),
          "after kill -9: the package is complete", d)
    check(not [n for n in os.listdir(apps_dir) if n.startswith(".")],
          "after kill -9: the leftover was removed", os.listdir(apps_dir))

    # ---- a task ended in the middle of its unpack ----------------------
    # big/1 took full_s to install whole; the same files as huge/1.
    m = re.search(r"installed in .*? in ([0-9.]+) s", err)
    full_s = float(m.group(1)) if m else 0.0
    make_package(store, "huge", "1", "tar.gz", files)
    for how in ("SIGTERM", "maxWallClockTime"):
        task = {"id": "huge-" + how, "commandLine": "/bin/true",
                "applicationPackageReferences": [{"applicationId": "huge", "version": "1"}]}
        if how == "maxWallClockTime":
            # Short enough to end it in the middle of the unpack: a whole
            # install's time varies fourfold between runs on a busy /tmp
            # (6.9 s for big/1, then 1.5 s for huge/1, in one CI run).
            task["constraints"] = {"maxWallClockTime": "PT%.3fS" % max(full_s / 20, 0.3)}
        p = ws.start(task, extra=conf)
        seen = None
        end = time.monotonic() + 120
        while seen is None and p.poll() is None and time.monotonic() < end:
            seen = partial()
            time.sleep(0.002)
        t0 = time.monotonic()
        if how == "SIGTERM":
            p.send_signal(signal.SIGTERM)
        status, out, err2, res = ws.collect(p)
        took = time.monotonic() - t0
        fi = (res or {}).get("executionInfo", {}).get("failureInfo", {})
        print("%s: ended %.3f s after the unpack was seen (a whole install: %.3f s)"
              % (how, took, full_s))
        check(seen is not None, "%s: the unpack was caught in progress" % how)
        check(status == 125 and fi.get("code") == "TaskEnded",
              "%s: the task ended" % how, (status, fi, err2[-1000:]))
        # Whatever the machine's load, a stopped unpack ends well before a
        # whole one would have.
        check(took < max(full_s / 2, 1.0), "%s: batchd ended promptly" % how,
              (took, full_s))
        check("'huge' version '1': cancelled" in err2,
              "%s: the install was cancelled" % how, err2[-2000:])
        left = [n for n in os.listdir(apps_dir) if n.startswith("huge") or n.startswith(".")]
        check(left == [], "%s: nothing of the package is left" % how, left)

finish()
