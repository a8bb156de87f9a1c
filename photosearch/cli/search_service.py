"""A running app or `photosearch watch` answers the CLI's searches over a local socket.

Why: a cold `photosearch search` pays for imports, opening the catalog and vector store and
creating the text model's session before its first millisecond of searching (about a second
at 1k photos, several at 1M). A process that already has the library open answers in
milliseconds, so the CLI asks it first and falls back to searching in-process when nothing
answers.

Only the user's own account can connect: the socket lives in a per-user folder that nobody
else can enter (``$XDG_RUNTIME_DIR`` or a 0700 folder in the temp dir whose owner is checked),
the socket file is 0600, and on Linux the server also checks the peer's uid
(``SO_PEERCRED``). Platforms without Unix sockets simply never use the service.

The protocol is one JSON request and one JSON reply per connection. The request carries the
CLI's parsed arguments; the server runs the same search command function with its open
library and returns what it printed and its exit status, so the output is the same either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import socket
import stat
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROTOCOL = 1
MAX_REQUEST_BYTES = 1 << 20
CONNECT_TIMEOUT_S = 0.5
REPLY_TIMEOUT_S = 30.0
DISABLE_ENV = "PHOTOSEARCH_NO_SERVICE"  # set to 1: the CLI never asks a running process


class ServiceUnavailable(Exception):
    """No process answers for this library (the caller searches in-process)."""


@dataclass(frozen=True)
class Reply:
    """What the serving process's run of the command printed, and its exit status."""

    exit_status: int
    stdout: str
    stderr: str


# --- where the socket lives ------------------------------------------------------------------


def _private_folder() -> Path | None:
    """A folder only this user can enter, or None when none can be had safely."""
    if not hasattr(socket, "AF_UNIX") or not hasattr(os, "getuid"):
        return None
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = (
        Path(runtime) / "photosearch"
        if runtime and Path(runtime).is_dir()
        else Path(tempfile.gettempdir()) / f"photosearch-{os.getuid()}"
    )
    try:
        base.mkdir(mode=0o700, parents=False, exist_ok=True)
        info = base.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        log.warning("not using %s for the search service: not a private folder", base)
        return None
    return base


def socket_path(library_dir: Path) -> Path | None:
    """The socket of the process serving ``library_dir`` (short: AF_UNIX paths are limited)."""
    folder = _private_folder()
    if folder is None:
        return None
    key = os.fsencode(os.path.realpath(library_dir))
    return folder / f"{hashlib.sha256(key).hexdigest()[:20]}.sock"


# --- arguments on the wire ---------------------------------------------------------------------


def encode_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """CLI arguments as JSON: paths absolute (the server has another working folder), dates
    as ISO text; callables (the command's handler) left out."""
    from datetime import datetime

    encoded: dict[str, Any] = {}
    for name, value in arguments.items():
        if callable(value):
            continue
        if isinstance(value, Path):
            encoded[name] = {"path": os.fsdecode(os.path.abspath(value))}
        elif isinstance(value, datetime):
            encoded[name] = {"datetime": value.isoformat()}
        elif value is None or isinstance(value, str | int | float | bool):
            encoded[name] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            encoded[name] = list(value)
        else:
            raise TypeError(f"argument {name} ({type(value).__name__}) cannot be sent")
    return encoded


def decode_arguments(encoded: dict[str, Any]) -> dict[str, Any]:
    from datetime import datetime

    decoded: dict[str, Any] = {}
    for name, value in encoded.items():
        if isinstance(value, dict) and set(value) == {"path"}:
            decoded[name] = Path(value["path"])
        elif isinstance(value, dict) and set(value) == {"datetime"}:
            decoded[name] = datetime.fromisoformat(value["datetime"])
        else:
            decoded[name] = value
    return decoded


# --- client ------------------------------------------------------------------------------------


def ask(library_dir: Path, command: str, arguments: dict[str, Any]) -> Reply:
    """Run ``command`` in the process serving ``library_dir``; ServiceUnavailable when none
    answers (no socket, nobody listening, a foreign or broken server, or it is switched off)."""
    if os.environ.get(DISABLE_ENV) == "1":
        raise ServiceUnavailable("switched off")
    path = socket_path(library_dir)
    if path is None or not path.exists():
        raise ServiceUnavailable("no running photosearch serves this library")
    request = {"protocol": PROTOCOL, "command": command, "arguments": encode_arguments(arguments)}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(CONNECT_TIMEOUT_S)
            client.connect(os.fspath(path))
            client.settimeout(REPLY_TIMEOUT_S)
            client.sendall(json.dumps(request).encode() + b"\n")
            client.shutdown(socket.SHUT_WR)
            data = _read_all(client)
        reply = json.loads(data)
        if reply.get("protocol") != PROTOCOL or "exit" not in reply:
            raise ServiceUnavailable(reply.get("error", "the server speaks another protocol"))
        return Reply(int(reply["exit"]), str(reply["stdout"]), str(reply["stderr"]))
    except (OSError, ValueError) as exc:
        raise ServiceUnavailable(str(exc)) from exc


def _read_all(connection: socket.socket) -> bytes:
    chunks, size = [], 0
    while chunk := connection.recv(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_REQUEST_BYTES * 64:
            raise ValueError("reply too large")
    return b"".join(chunks)


# --- server ------------------------------------------------------------------------------------

Runner = Callable[[str, dict[str, Any]], int]


class _ThreadOutput(io.TextIOBase):
    """sys.stdout/sys.stderr stand-in: a thread that serves a request writes into its own
    buffer; every other thread writes where it always did."""

    def __init__(self, fallback: io.TextIOBase) -> None:
        self.fallback = fallback
        self.local = threading.local()

    def write(self, text: str) -> int:
        buffer = getattr(self.local, "buffer", None)
        return (buffer or self.fallback).write(text)

    def flush(self) -> None:
        if getattr(self.local, "buffer", None) is None:
            self.fallback.flush()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.fallback, "encoding", "utf-8")

    def fileno(self) -> int:  # faulthandler, subprocesses: the process's real stream
        return self.fallback.fileno()

    def __getattr__(self, name: str) -> Any:  # reconfigure, errors, buffer, ...
        return getattr(self.fallback, name)

    def isatty(self) -> bool:
        return getattr(self.local, "buffer", None) is None and self.fallback.isatty()

    @contextlib.contextmanager
    def captured(self) -> Iterator[io.StringIO]:
        self.local.buffer = io.StringIO()
        try:
            yield self.local.buffer
        finally:
            self.local.buffer = None


_install_lock = threading.Lock()


def _thread_outputs() -> tuple[_ThreadOutput, _ThreadOutput]:
    with _install_lock:
        if not isinstance(sys.stdout, _ThreadOutput):
            sys.stdout = _ThreadOutput(sys.stdout)  # type: ignore[assignment]
        if not isinstance(sys.stderr, _ThreadOutput):
            sys.stderr = _ThreadOutput(sys.stderr)  # type: ignore[assignment]
        return sys.stdout, sys.stderr  # type: ignore[return-value]


class SearchServer:
    """Serves ``run(command, arguments) -> exit status`` for one library on its socket, one
    thread per connection, until ``close()``. ``commands``: the commands it accepts; ``run``
    raises ServiceUnavailable for a request it should not answer (the asker runs it itself)."""

    def __init__(self, library_dir: Path, run: Runner, commands: frozenset[str]) -> None:
        self.library_dir = library_dir
        self.run = run
        self.commands = commands
        self.path: Path | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._bound_inode: int | None = None
        self.served = 0  # requests answered (not those handed back to the asker)

    def start(self) -> bool:
        """Listen; False (and nothing done) when the platform has no private socket folder or
        another live process already serves this library."""
        path = socket_path(self.library_dir)
        if path is None:
            return False
        if path.exists():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.settimeout(CONNECT_TIMEOUT_S)
                    probe.connect(os.fspath(path))
                log.info("another process already serves searches of %s", self.library_dir)
                return False
            except OSError:
                path.unlink(missing_ok=True)  # left by a process that died
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(os.fspath(path))
            os.chmod(path, 0o600)
            server.listen(16)
        except OSError as exc:
            server.close()
            log.warning("search service not started: %s", exc)
            return False
        self.path, self._socket = path, server
        self._bound_inode = path.stat().st_ino
        _thread_outputs()
        self._thread = threading.Thread(target=self._accept, name="search-service", daemon=True)
        self._thread.start()
        return True

    def close(self) -> None:
        self._closed.set()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            self._socket.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.path is not None:
            with contextlib.suppress(OSError):
                if self.path.stat().st_ino == self._bound_inode:  # not a successor's socket
                    self.path.unlink()

    def _accept(self) -> None:
        assert self._socket is not None
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(
                target=self._serve, args=(connection,), daemon=True, name="search-request"
            ).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.settimeout(REPLY_TIMEOUT_S)
                if not _same_user(connection):
                    return
                reply = self._answer(_read_request(connection))
                connection.sendall(json.dumps(reply).encode())
            except (OSError, ValueError) as exc:
                log.debug("search service request failed: %s", exc)

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("protocol") != PROTOCOL:
            return {"protocol": PROTOCOL, "error": "unknown protocol"}
        command = request.get("command")
        if command not in self.commands:
            return {"protocol": PROTOCOL, "error": f"{command!r} is not served"}
        arguments = decode_arguments(request.get("arguments") or {})
        out, err = _thread_outputs()
        with out.captured() as stdout, err.captured() as stderr:
            try:
                status = self.run(command, arguments)
            except ServiceUnavailable as exc:  # the asker runs the command itself
                return {"protocol": PROTOCOL, "error": str(exc)}
            except Exception as exc:  # the serving process must keep running
                log.exception("search service: %s failed", command)
                print(f"photosearch: {exc}", file=sys.stderr)
                status = 1
        self.served += 1
        return {
            "protocol": PROTOCOL,
            "exit": status,
            "stdout": stdout.getvalue(),
            "stderr": stderr.getvalue(),
        }


def _read_request(connection: socket.socket) -> dict[str, Any]:
    data = b""
    while b"\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError("request too large")
    request = json.loads(data.decode())
    if not isinstance(request, dict):
        raise ValueError("request is not an object")
    return request


def _same_user(connection: socket.socket) -> bool:
    """Linux: the peer's uid (SO_PEERCRED) is ours. Elsewhere the private folder guards it."""
    if not hasattr(socket, "SO_PEERCRED"):
        return True
    credentials = connection.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
    )
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return uid == os.getuid()
