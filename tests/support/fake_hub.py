"""A stand-in Hugging Face hub for tests: a real HTTP server on 127.0.0.1.

It answers the routes huggingface_hub calls for a pull (read from huggingface_hub 2.x's
hf_api.model_info and file_download.get_hf_file_metadata / http_get):

- ``GET /api/models/{org}/{repo}[/revision/{rev}]?blobs=true``: the repository's commit sha and
  its files with size, git blob id and, for LFS files, the sha256 (``X-Error-Code: RepoNotFound``
  with 404 for an unknown repository, as the hub does);
- ``HEAD|GET /{org}/{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit`` and ``ETag`` (the git blob
  id) for small files; for LFS files a 302 to a separate "CDN" host (``localhost`` instead of
  ``127.0.0.1``) with ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size``, as the hub answers;
- ``GET /cdn/{sha256}``: the bytes, honouring ``Range: bytes=N-`` with 206.

Faults a test can ask for, per file: cut the connection after N bytes (``cut``), send N bytes and
then hang (``stall``), or serve altered bytes under the right hash (``corrupt``). Every request is
logged with its Range header and the bytes sent, so a test can check what a resume fetched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import onnx
from onnx import numpy_helper

from tests.support.immich_bundle import ImmichSpec, build_immich_bundle, with_changes

LFS_SUFFIXES = (".onnx", ".armnn", ".rknn", ".data")


@dataclass
class HostedFile:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_blob(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


@dataclass
class LoggedRequest:
    method: str
    path: str
    range: str | None
    bytes_sent: int


@dataclass
class Faults:
    cut: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (after, times)
    stall: dict[str, int] = field(default_factory=dict)  # path -> after bytes, then hang
    corrupt: set[str] = field(default_factory=set)


class FakeHub:
    """Serve repositories from memory; use as a context manager (stops by itself on exit)."""

    def __init__(self) -> None:
        self.repos: dict[str, tuple[str, dict[str, HostedFile]]] = {}
        self.faults = Faults()
        self.log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.cdn = (
            f"http://localhost:{self.port}" if _localhost_is_ipv4_loopback() else self.endpoint
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def add_repo(self, repository: str, files: dict[str, bytes]) -> str:
        """Host ``files`` (relative path -> bytes) as ``repository``; returns its commit sha."""
        hosted = {
            rel: HostedFile(data, rel.endswith(LFS_SUFFIXES) or "." not in rel.rsplit("/", 1)[-1])
            for rel, data in files.items()
        }
        sha = hashlib.sha1(repr(sorted((k, v.sha256) for k, v in hosted.items())).encode())
        with self._lock:
            self.repos[repository] = (sha.hexdigest(), hosted)
        return sha.hexdigest()

    def add_bundle(self, repository: str, bundle_dir: Path) -> str:
        return self.add_repo(
            repository,
            {
                p.relative_to(bundle_dir).as_posix(): p.read_bytes()
                for p in sorted(bundle_dir.rglob("*"))
                if p.is_file()
            },
        )

    def release_stalls(self) -> None:
        self._release.set()

    def requests_for(self, rel: str, method: str = "GET") -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.log if r.method == method and r.path.endswith(rel)]

    def file(self, repository: str, rel: str) -> HostedFile:
        return self.repos[repository][1][rel]

    def _find_lfs(self, sha256: str) -> tuple[str, HostedFile] | None:
        for _, files in self.repos.values():
            for rel, hosted in files.items():
                if hosted.lfs and hosted.sha256 == sha256:
                    return rel, hosted
        return None


def immich_style_bundle(
    target: Path, spec: ImmichSpec | str = "clip", seed: int = 0, ballast_bytes: int = 0
) -> Path:
    """A tiny random-weight bundle in Immich's exact layout, as a hub repository holds it.

    Built by tests/support/immich_bundle.py (batch fixed at 1, int32 text ids, open_clip
    config.json, tokenizer files with the pad token) with the files a pull must skip (ARM NN,
    RKNN, README.md, .gitattributes), the visual weights as external data (one file per
    tensor). ``ballast_bytes`` adds an unused weight of that size in its own external-data file,
    so a test has a file large enough to be cut mid-transfer.
    """
    spec = with_changes(spec, external_data=True)
    build_immich_bundle(target, spec, seed=seed, extras=True)
    if ballast_bytes:
        visual = target / "visual" / "model.onnx"
        model = onnx.load(str(visual))
        ballast = np.random.default_rng(seed).integers(0, 255, ballast_bytes, dtype=np.uint8)
        model.graph.initializer.append(numpy_helper.from_array(ballast, "ballast"))
        onnx.save_model(
            model,
            str(visual),
            save_as_external_data=True,
            all_tensors_to_one_file=False,
            size_threshold=256,
        )
    return target


def runtime_files(bundle: Path) -> list[str]:
    """What a pull or import must install from ``bundle``: everything but the hub's extras."""
    skipped = ("fp16/", "rknpu/", "README.md", ".gitattributes")
    return sorted(
        rel
        for rel in (p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
        if not any(part in rel for part in skipped)
    )


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def _localhost_is_ipv4_loopback() -> bool:
    try:
        infos = socket.getaddrinfo("localhost", None)
    except OSError:
        return False
    return bool(infos) and all(info[4][0] == "127.0.0.1" for info in infos)


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output clean
            return None

        def do_HEAD(self) -> None:
            self._route(head=True)

        def do_GET(self) -> None:
            self._route(head=False)

        def _route(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            if path.startswith("/api/models/"):
                self._model_info(path[len("/api/models/") :])
            elif path.startswith("/cdn/"):
                self._serve_lfs(path[len("/cdn/") :], head)
            elif "/resolve/" in path:
                self._resolve(path.lstrip("/"), head)
            else:
                self._error(404, "NotFound")

        def _model_info(self, rest: str) -> None:
            parts = rest.split("/")
            repository = "/".join(parts[:2])
            if repository not in hub.repos:
                self._log(0)
                self._error(404, "RepoNotFound", "Repository not found")
                return
            sha, files = hub.repos[repository]
            if len(parts) >= 4 and parts[2] == "revision" and parts[3] not in ("main", sha):
                self._error(404, "RevisionNotFound", "Invalid rev id")
                return
            siblings = []
            for rel, hosted in sorted(files.items()):
                sibling = {"rfilename": rel, "size": len(hosted.data), "blobId": hosted.git_blob}
                if hosted.lfs:
                    sibling["lfs"] = {
                        "size": len(hosted.data),
                        "sha256": hosted.sha256,
                        "pointerSize": 134,
                    }
                siblings.append(sibling)
            body = json.dumps(
                {
                    "id": repository,
                    "modelId": repository,
                    "sha": sha,
                    "private": False,
                    "siblings": siblings,
                }
            ).encode()
            self._log(len(body))
            self._send(200, body, {"Content-Type": "application/json"})

        def _resolve(self, rest: str, head: bool) -> None:
            before, _, after = rest.partition("/resolve/")
            revision, _, rel = after.partition("/")
            entry = hub.repos.get(before)
            if entry is None:
                self._error(404, "RepoNotFound", "Repository not found")
                return
            sha, files = entry
            hosted = files.get(rel)
            if revision not in ("main", sha):
                self._error(404, "RevisionNotFound", "Invalid rev id")
                return
            if hosted is None:
                self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": sha})
                return
            if hosted.lfs:
                self._log(0)
                self._send(
                    302,
                    b"",
                    {
                        "Location": f"{hub.cdn}/cdn/{hosted.sha256}",
                        "X-Repo-Commit": sha,
                        "X-Linked-Etag": f'"{hosted.sha256}"',
                        "X-Linked-Size": str(len(hosted.data)),
                        "ETag": f'"{hosted.git_blob}"',
                    },
                )
                return
            self._serve(rel, hosted, head, {"X-Repo-Commit": sha, "ETag": f'"{hosted.git_blob}"'})

        def _serve_lfs(self, sha256: str, head: bool) -> None:
            found = hub._find_lfs(sha256)
            if found is None:
                self._error(404, "EntryNotFound", "no such blob")
                return
            self._serve(found[0], found[1], head, {"ETag": f'"{sha256}"'})

        def _serve(self, rel: str, hosted: HostedFile, head: bool, headers: dict[str, str]) -> None:
            data = hosted.data
            if rel in hub.faults.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            start = 0
            range_header = self.headers.get("Range")
            status = 200
            if range_header and range_header.startswith("bytes="):
                start = int(range_header[len("bytes=") :].split("-")[0])
                status = 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            body = data[start:]
            headers = {
                **headers,
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            if head:
                self._log(0)
                self._send(
                    status, b"", {**headers, "Content-Length": str(len(body))}, length_only=True
                )
                return
            cut = hub.faults.cut.get(rel)
            stall = hub.faults.stall.get(rel)
            limit = len(body)
            if cut is not None and cut[1] > 0:
                with hub._lock:
                    hub.faults.cut[rel] = (cut[0], cut[1] - 1)
                limit = max(0, min(limit, cut[0] - start))
            elif stall is not None:
                limit = max(0, min(limit, stall - start))
            self._log(limit)
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body[:limit])
            self.wfile.flush()
            if limit < len(body):
                if stall is not None and (cut is None or cut[1] <= 0):
                    hub._release.wait(60)
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return

        def _error(
            self, status: int, code: str, message: str = "", extra: dict[str, str] | None = None
        ) -> None:
            body = json.dumps({"error": message or code}).encode()
            self._send(
                status,
                body,
                {
                    "X-Error-Code": code,
                    "X-Error-Message": message or code,
                    "Content-Type": "application/json",
                    **(extra or {}),
                },
            )

        def _send(
            self, status: int, body: bytes, headers: dict[str, str], length_only: bool = False
        ) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if not length_only:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def _log(self, sent: int) -> None:
            with hub._lock:
                hub.log.append(
                    LoggedRequest(
                        self.command,
                        unquote(urlsplit(self.path).path),
                        self.headers.get("Range"),
                        sent,
                    )
                )

    return Handler


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
