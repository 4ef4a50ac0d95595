"""Throughput of a 1 GiB download through the application, beside nginx and a disk read.

    .venv/bin/python -m bench.downloads [--size-mib 1024] [--runs 3] [--keep]

In one run, on loopback, with the file in the page cache:

1. **disk read**: the file read in 1 MiB chunks by Python (the ceiling of any server);
2. **nginx**: Debian's nginx (``apt-get install nginx-light``) serving the store's folder
   with ``sendfile on`` (skipped with a note when nginx is not installed);
3. **app (uvicorn)**: ``partnercenter.app.create_app`` (all its middleware) under uvicorn,
   the file sent by :class:`partnercenter.downloads.StoredObjectResponse` from the local
   store, as ``partnercenter serve`` runs it;
4. **app (uvicorn), Range**: the same, resuming at the middle of the file (206).

Every HTTP figure comes from the same client: one keep-alive-free GET over a raw socket,
read into a reusable 4 MiB buffer, so the client costs almost nothing. The SHA-256 of the
app's full answer is checked once against ``X-Checksum-SHA256`` (outside the timing). Each
figure is the best of ``--runs``; ratios are against nginx measured by the same client
(curl, when installed, is a second client: its rows compare with nginx read by curl).
Loopback throughput of ~3 GB/s can be the client's limit as much as the server's, so the
server's CPU time per GiB sent (from /proc) is printed too. Starlette's own
``FileResponse`` is measured in the same app for comparison. Nothing is asserted: the
numbers are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

KEY = "bench/payload.bin"
ROUTE = "/bench/files/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def http_get(
    port: int, path: str, headers: dict[str, str] | None = None, *, sha256: bool = False
) -> tuple[int, dict[str, str], int, float, str | None]:
    """GET over a raw socket; returns status, headers, body bytes, seconds, body SHA-256."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    buffer = bytearray(4 * 2**20)
    view = memoryview(buffer)
    digest = hashlib.sha256() if sha256 else None
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 2**20)
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed before the headers")
            head += chunk
        raw_head, _, first_body = head.partition(b"\r\n\r\n")
        status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        response_headers = {
            k.strip().lower(): v.strip()
            for k, v in (line.split(":", 1) for line in header_lines if ":" in line)
        }
        expected = int(response_headers["content-length"])
        received = len(first_body)
        if digest:
            digest.update(first_body)
        while received < expected:
            n = sock.recv_into(view, min(len(buffer), expected - received))
            if n == 0:
                raise RuntimeError(f"connection closed after {received} of {expected} bytes")
            if digest:
                digest.update(view[:n])
            received += n
    elapsed = time.perf_counter() - started
    return status, response_headers, received, elapsed, digest.hexdigest() if digest else None


def curl_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, float]:
    """The same GET by curl into /dev/null: a second client, written in C."""
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}"]
    for k, v in (headers or {}).items():
        command += ["-H", f"{k}: {v}"]
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, check=True, text=True
    ).stdout.split()
    if out[0] not in ("200", "206"):
        raise RuntimeError(f"curl got HTTP {out[0]}")
    return int(out[1]), float(out[2])


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process, from /proc (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_read(path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    total = 0
    buffer = bytearray(2**20)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            total += n
    return total, time.perf_counter() - started


@contextlib.contextmanager
def running(
    command: list[str], port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        wait_for_port(port)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.returncode not in (0, -signal.SIGTERM, 143) and process.stderr:
            sys.stderr.write(process.stderr.read().decode(errors="replace")[-2000:])
        if process.stderr:
            process.stderr.close()


def nginx_command(root: Path, work: Path, port: int) -> list[str] | None:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        return None
    conf = work / "nginx.conf"
    conf.write_text(
        textwrap.dedent(
            f"""
            daemon off;
            master_process off;
            worker_processes 1;
            pid {work}/nginx.pid;
            error_log {work}/nginx-error.log warn;
            events {{ worker_connections 64; }}
            http {{
                access_log off;
                sendfile on;
                tcp_nopush on;
                client_body_temp_path {work}/body;
                proxy_temp_path {work}/proxy;
                fastcgi_temp_path {work}/fastcgi;
                uwsgi_temp_path {work}/uwsgi;
                scgi_temp_path {work}/scgi;
                server {{
                    listen 127.0.0.1:{port};
                    location / {{ root {root}; }}
                }}
            }}
            """
        )
    )
    return [nginx, "-p", str(work), "-c", str(conf)]


APP_SCRIPT = """
import sys
import uvicorn
from starlette.responses import FileResponse
from partnercenter.app import create_app
from partnercenter.config import Settings
from partnercenter.downloads import StoredObjectResponse
from partnercenter.storage import get_storage

settings = Settings()
app = create_app(settings)
storage = get_storage(settings)

@app.get("/bench/files/{key:path}")
def bench_file(key: str) -> StoredObjectResponse:
    return StoredObjectResponse(storage, storage.stat(key), filename=key.rsplit("/", 1)[-1])

@app.get("/bench/starlette/{key:path}")
def bench_starlette(key: str) -> FileResponse:
    return FileResponse(storage.local_path(key), filename=key.rsplit("/", 1)[-1])

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    from partnercenter.storage import LocalStorage

    work = Path(tempfile.mkdtemp(prefix="pc-bench-downloads-"))
    try:
        data_dir = work / "data"
        storage = LocalStorage(data_dir / "storage")
        size = args.size_mib * 2**20
        print(f"writing a {args.size_mib} MiB file of random bytes ...", file=sys.stderr)
        source = work / "source.bin"
        with source.open("wb") as f:
            block = os.urandom(2**20)
            for i in range(args.size_mib):
                f.write(hashlib.sha256(block + i.to_bytes(4, "big")).digest() * 32768)
        with source.open("rb") as f:
            stored = storage.put(KEY, f)
        source.unlink()
        path = storage.local_path(KEY)
        assert path is not None and stored.size == size

        results: dict[str, float] = {}
        cpu: dict[str, float] = {}
        curl = shutil.which("curl") is not None

        def best(name: str, measure: object, pid: int | None = None) -> None:
            times = []
            total = 0
            cpu_before = cpu_seconds(pid)
            for _ in range(args.runs):
                nbytes, seconds = measure()  # type: ignore[operator]
                times.append(seconds)
                total += nbytes
            results[name] = nbytes / min(times)
            if pid is not None:
                cpu[name] = (cpu_seconds(pid) - cpu_before) / (total / 2**30)

        disk_read(path)  # warm the page cache
        best("disk read (Python, 1 MiB chunks)", lambda: disk_read(path))

        nginx_port = free_port()
        command = nginx_command(storage.root, work, nginx_port)
        if command is None:
            print("nginx is not installed: apt-get install nginx-light", file=sys.stderr)
        else:
            with running(command, nginx_port) as nginx:

                def from_nginx() -> tuple[int, float]:
                    status, _, n, seconds, _ = http_get(nginx_port, f"/{KEY}")
                    assert status == 200 and n == size
                    return n, seconds

                from_nginx()
                best("nginx 1.22 (sendfile)", from_nginx, nginx.pid)
                if curl:
                    best(
                        "nginx 1.22 (sendfile), curl",
                        lambda: curl_get(nginx_port, f"/{KEY}"),
                        nginx.pid,
                    )

        app_port = free_port()
        env = dict(os.environ)
        env.update(
            {
                "PARTNERCENTER_DATA_DIR": str(data_dir),
                "PARTNERCENTER_LOG_JSON": "false",
            }
        )
        with running([sys.executable, "-c", APP_SCRIPT, str(app_port)], app_port, env) as app:
            status, headers, n, _, digest = http_get(app_port, ROUTE + KEY, sha256=True)
            assert status == 200 and n == size, (status, n)
            assert digest == headers["x-checksum-sha256"] == stored.sha256

            def from_app() -> tuple[int, float]:
                status, _, n, seconds, _ = http_get(app_port, ROUTE + KEY)
                assert status == 200 and n == size
                return n, seconds

            def from_app_range() -> tuple[int, float]:
                status, _, n, seconds, _ = http_get(
                    app_port, ROUTE + KEY, {"Range": f"bytes={size // 2}-"}
                )
                assert status == 206 and n == size - size // 2
                return n, seconds

            best("app: uvicorn + StoredObjectResponse", from_app, app.pid)
            best("app: uvicorn, Range from the middle (206)", from_app_range, app.pid)

            def from_file_response() -> tuple[int, float]:
                status, _, n, seconds, _ = http_get(app_port, "/bench/starlette/" + KEY)
                assert status == 200 and n == size
                return n, seconds

            best("app: uvicorn + Starlette FileResponse", from_file_response, app.pid)
            if curl:
                best(
                    "app: uvicorn + StoredObjectResponse, curl",
                    lambda: curl_get(app_port, ROUTE + KEY),
                    app.pid,
                )

        reference = results.get("nginx 1.22 (sendfile)")
        curl_reference = results.get("nginx 1.22 (sendfile), curl")
        print(f"\n{args.size_mib} MiB, loopback, page-cached, best of {args.runs}:\n")
        print("| source | MiB/s | share of nginx | server CPU s/GiB |")
        print("|---|---:|---:|---:|")
        for name, rate in results.items():
            base = curl_reference if name.endswith(", curl") else reference
            share = f"{rate / base:.2f}" if base else "n/a"
            used = f"{cpu[name]:.2f}" if name in cpu else ""
            print(f"| {name} | {rate / 2**20:,.0f} | {share} | {used} |")
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
