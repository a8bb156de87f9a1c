"""`photosearch models pull`: download a bundle from a Hugging Face hub, checked and resumable.

huggingface_hub does the talking (endpoint from HF_ENDPOINT, HF_HUB_OFFLINE, proxies from the
usual *_PROXY variables, tokens, the repository listing with LFS hashes, the HEAD that resolves
a file to its CDN location, backoff). What this module adds:

- only the files the runtime reads are fetched (no ARM NN / RKNN builds, READMEs, caches);
- files land in ``<models>/.staging-<repo>/``, a partial file as ``<path>.part``; a broken
  transfer is resumed with an HTTP Range request, and an interrupted pull (Ctrl-C, kill, lost
  network, full disk) resumes from the .part on the next run (huggingface_hub 2.x itself
  deletes partial files when a download fails);
- every file is checked against the hub's hashes (LFS sha256; git blob sha1 for small files);
- a manifest records every file's sha256 and the source, then the directory is renamed into
  place in one step, so a half-downloaded model is never listed as installed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from photosearch.errors import BundleError, PhotosearchError
from photosearch.models.bundle import (
    CONFIG_FILE,
    TEXTUAL_MODEL,
    TEXTUAL_TOKENIZER,
    VISUAL_MODEL,
    read_bundle_config,
    sha256_file,
)
from photosearch.models.catalogue import find_entry
from photosearch.models.installing import (
    install_staged,
    is_runtime_file,
    safe_dir_name,
    staging_dir,
    validate_bundle,
    write_manifest,
)

DEFAULT_ORG = "immich-app"
STATE_FILE = ".pull.json"
PART_SUFFIX = ".part"
DISK_MARGIN = 16 * 1024 * 1024  # leave this much free beyond the download itself
CHUNK_SIZE = 256 * 1024  # written to the .part file as it arrives: little is lost on a kill
MAX_RETRIES = 5  # broken transfers retried in a row without a byte arriving
RETRY_WAIT_S = 1.0
log = logging.getLogger(__name__)
_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")

ByteProgress = Callable[[int], None]


class PullError(PhotosearchError):
    """A pull could not finish; the message is one line a user can act on."""


class PullCancelled(PullError):
    """The user cancelled a pull (GUI); what was downloaded stays staged for a resume."""


@dataclass(frozen=True)
class RemoteFile:
    """A file of the hub repository that the bundle needs."""

    path: str
    size: int
    sha256: str | None  # LFS files: the hub's sha256 of the content
    git_blob: str | None  # small files: the git blob id (sha1 of "blob <size>\0" + content)


@dataclass(frozen=True)
class PullPlan:
    """What a pull will fetch: a repository pinned at one commit."""

    name: str
    repository: str
    revision: str
    endpoint: str
    files: tuple[RemoteFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def resolve_repository(name: str) -> tuple[str, str]:
    """(repository, local model name) for a catalogue name, an ORG/REPO or a bare Immich name."""
    entry = find_entry(name)
    if entry is not None:
        return entry.repository, entry.name
    if "/" in name:
        if not _REPO_RE.match(name):
            raise PullError(f"{name!r} is neither a catalogue name nor ORG/REPO")
        return name, name.split("/", 1)[1]
    if not _REPO_RE.match(f"{DEFAULT_ORG}/{name}"):
        raise PullError(f"{name!r} is not a model name")
    return f"{DEFAULT_ORG}/{name}", name


def hub_endpoint(endpoint: str | None = None) -> str:
    """The hub this process talks to: ``endpoint``, else HF_ENDPOINT, else huggingface.co."""
    from huggingface_hub import constants

    return (endpoint or constants.ENDPOINT).rstrip("/")


def plan_pull(name: str, *, endpoint: str | None = None, revision: str | None = None) -> PullPlan:
    """Ask the hub for the repository's file list (one request) and pick the runtime files."""
    repository, local_name = resolve_repository(name)
    endpoint = hub_endpoint(endpoint)
    with _hub_errors(repository, endpoint):
        from huggingface_hub import HfApi

        info = HfApi(endpoint=endpoint).model_info(
            repository, revision=revision, files_metadata=True
        )
    files = []
    for sibling in info.siblings or []:
        if not is_runtime_file(sibling.rfilename):
            continue
        lfs = sibling.lfs
        size = lfs.size if lfs is not None else sibling.size
        if size is None:
            raise PullError(
                f"{endpoint} did not report the size of {repository}/{sibling.rfilename}"
            )
        files.append(
            RemoteFile(
                sibling.rfilename,
                int(size),
                lfs.sha256 if lfs is not None else None,
                sibling.blob_id,
            )
        )
    present = {f.path for f in files}
    missing = [
        rel
        for rel in (CONFIG_FILE, VISUAL_MODEL, TEXTUAL_MODEL, TEXTUAL_TOKENIZER)
        if rel not in present
    ]
    if missing:
        raise PullError(
            f"{repository} is not a CLIP model bundle in Immich's layout (no {', '.join(missing)})"
        )
    if not info.sha:
        raise PullError(f"{endpoint} did not say which commit {repository} is at")
    return PullPlan(local_name, repository, info.sha, endpoint, tuple(files))


def pull(
    plan: PullPlan,
    models_dir: Path,
    *,
    progress: ByteProgress | None = None,
    cancel: threading.Event | None = None,
    replace: bool = False,
    status: Callable[[str], None] | None = None,
) -> Path:
    """Download, check and install ``plan``; returns the installed bundle directory.

    ``progress`` gets byte counts as they arrive (already-staged bytes are reported first);
    setting ``cancel`` stops the download at the next chunk with PullCancelled.
    """
    from filelock import FileLock, Timeout

    target = models_dir / safe_dir_name(plan.name)
    if target.exists() and not replace:
        raise PullError(f"{plan.name} is already installed at {target}")
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(models_dir, plan.repository)
    lock = FileLock(str(staging) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise PullError(f"another pull of {plan.repository} is running") from None
    try:
        _prepare_staging(staging, plan)
        _check_disk_space(staging, plan)
        hashes: dict[str, str] = {}
        with _hub_errors(plan.repository, plan.endpoint), _disk_errors(models_dir):
            for remote in plan.files:
                hashes[remote.path] = _fetch(plan, remote, staging, progress, cancel)
        if status:
            status(f"checking {plan.name}: loading both towers and encoding a test input")
        source = {
            "hub": plan.endpoint,
            "repository": plan.repository,
            "revision": plan.revision,
            "pulled_at": _now(),
        }
        write_manifest(staging, plan.name, source, known_sha256=hashes)
        read_bundle_config(staging)
        try:
            validate_bundle(staging, plan.name)
        except BundleError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise PullError(f"{plan.repository} was downloaded but cannot be used: {exc}") from exc
        (staging / STATE_FILE).unlink(missing_ok=True)  # kept until now: Ctrl-C still resumes
        return install_staged(staging, target, replace=replace)
    finally:
        lock.release()
        Path(str(staging) + ".lock").unlink(missing_ok=True)


def discard_staged(models_dir: Path, name: str) -> bool:
    """Delete a half-finished pull of ``name`` (catalogue name or ORG/REPO); True if one existed."""
    repository, _ = resolve_repository(name)
    staging = staging_dir(models_dir, repository)
    if not staging.exists():
        return False
    shutil.rmtree(staging)
    return True


def staged_bytes(models_dir: Path, name: str) -> int:
    """Bytes already downloaded by an interrupted pull of ``name`` (0 when none)."""
    repository, _ = resolve_repository(name)
    staging = staging_dir(models_dir, repository)
    if not staging.is_dir():
        return 0
    return sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())


def _prepare_staging(staging: Path, plan: PullPlan) -> None:
    """Reuse a staging directory left by an interrupted pull of the same commit, else start over."""
    state = staging / STATE_FILE
    wanted = {"repository": plan.repository, "revision": plan.revision}
    if staging.exists():
        try:
            same = json.loads(state.read_text(encoding="utf-8")) == wanted
        except (OSError, ValueError):
            same = False
        if not same:
            shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps(wanted), encoding="utf-8")


def _check_disk_space(staging: Path, plan: PullPlan) -> None:
    needed = 0
    for remote in plan.files:
        done = staging / remote.path
        part = staging / (remote.path + PART_SUFFIX)
        if done.is_file():
            continue
        needed += remote.size - (part.stat().st_size if part.is_file() else 0)
    free = shutil.disk_usage(staging).free
    if needed + DISK_MARGIN > free:
        raise PullError(
            f"not enough disk space in {staging.parent}: {plan.name} needs "
            f"{_mb(needed)} more, {_mb(free)} free"
        )


def _fetch(
    plan: PullPlan,
    remote: RemoteFile,
    staging: Path,
    progress: ByteProgress | None,
    cancel: threading.Event | None,
) -> str:
    """Bring one file into the staging directory, resuming its .part; returns its sha256."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    final = staging / remote.path
    part = staging / (remote.path + PART_SUFFIX)
    if final.is_file() and final.stat().st_size == remote.size:
        try:
            digest = _verify(final, remote, plan)
        except PullError:
            final.unlink()
            raise
        if progress:
            progress(remote.size)
        return digest
    final.unlink(missing_ok=True)
    part.parent.mkdir(parents=True, exist_ok=True)
    resume = part.stat().st_size if part.is_file() else 0
    if resume > remote.size:
        part.unlink()
        resume = 0
    if progress and resume:
        progress(resume)
    if resume < remote.size:
        headers = build_hf_headers()
        url = hf_hub_url(
            plan.repository, remote.path, revision=plan.revision, endpoint=plan.endpoint
        )
        metadata = get_hf_file_metadata(url, headers=headers, endpoint=plan.endpoint)
        location = metadata.location or url
        if urlsplit(location).netloc != urlsplit(url).netloc:
            headers.pop("authorization", None)  # a CDN gets no token
        _download(location, part, remote.size, headers, progress, cancel)
    try:
        digest = _verify(part, remote, plan)
    except PullError:
        part.unlink(missing_ok=True)
        raise
    part.replace(final)
    return digest


def _download(
    url: str,
    part: Path,
    size: int,
    headers: dict[str, str],
    progress: ByteProgress | None,
    cancel: threading.Event | None,
) -> None:
    """Append the rest of a file to ``part`` with HTTP Range requests, in small chunks.

    Written here rather than with huggingface_hub's http_get because that one only writes
    10 MB chunks (a stalled or killed transfer loses up to 10 MB, and a cancel waits for a
    chunk) and keeps nothing between runs; the session, proxies, offline mode and backoff on
    opening the stream are still huggingface_hub's. A broken transfer is retried from where it
    stopped while bytes keep arriving.
    """
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.utils import hf_raise_for_status, http_stream_backoff

    retries = MAX_RETRIES
    while True:
        done = part.stat().st_size if part.exists() else 0
        if done >= size:
            return
        request_headers = {**headers, "Range": f"bytes={done}-"} if done else dict(headers)
        try:
            with http_stream_backoff(
                method="GET",
                url=url,
                headers=request_headers,
                timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
                follow_redirects=True,
                retry_on_exceptions=(),
                retry_on_status_codes=(408, 429),
            ) as response:
                hf_raise_for_status(response)
                mode = "ab" if done and response.status_code == 206 else "wb"
                if mode == "wb" and done and progress:
                    progress(-done)  # the server ignored the range: start again
                with part.open(mode) as handle:
                    for chunk in response.iter_bytes(chunk_size=CHUNK_SIZE):
                        if cancel is not None and cancel.is_set():
                            raise PullCancelled(
                                "download cancelled; run the pull again to resume where it stopped"
                            )
                        handle.write(chunk)
                        retries = MAX_RETRIES  # progress was made
                        if progress:
                            progress(len(chunk))
            if part.stat().st_size < size:
                raise httpx2.RemoteProtocolError("the server closed the transfer early")
        except httpx2.TransportError as exc:
            if cancel is not None and cancel.is_set():
                raise PullCancelled(
                    "download cancelled; run the pull again to resume where it stopped"
                ) from None
            retries -= 1
            if retries < 0:
                raise
            log.info("transfer of %s broke (%s); resuming", part.name, exc)
            time.sleep(RETRY_WAIT_S)


def _verify(path: Path, remote: RemoteFile, plan: PullPlan) -> str:
    """The file's sha256 after checking it against the hub's hash; PullError when it differs."""
    digest = sha256_file(path)
    if remote.sha256 is not None:
        ok = digest == remote.sha256
    elif remote.git_blob is not None:
        ok = _git_blob_id(path) == remote.git_blob
    else:
        ok = path.stat().st_size == remote.size
    if not ok or path.stat().st_size != remote.size:
        raise PullError(
            f"{remote.path} from {plan.repository} does not match the hub's hash "
            "(corrupted in transit or altered); it was deleted, run the pull again"
        )
    return digest


def _git_blob_id(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _hub_errors(repository: str, endpoint: str):  # noqa: ANN202
    """Turn huggingface_hub's and the network's exceptions into one line each."""
    import httpx2
    from huggingface_hub import errors

    try:
        yield
    except PhotosearchError:
        raise
    except errors.HFValidationError as exc:
        raise PullError(f"{repository!r} is not a valid repository name: {exc}") from None
    except errors.OfflineModeIsEnabled:
        raise PullError(
            f"cannot download {repository}: offline mode is on (HF_HUB_OFFLINE is "
            "set); unset it to download"
        ) from None
    except errors.GatedRepoError:
        raise PullError(
            f"{repository} on {endpoint} is gated: accept its terms on the hub and "
            "log in with `hf auth login`"
        ) from None
    except errors.RepositoryNotFoundError:
        raise PullError(
            f"no repository {repository} on {endpoint} (check the name; "
            "`photosearch models catalogue` lists known models)"
        ) from None
    except errors.RevisionNotFoundError:
        raise PullError(f"{repository} on {endpoint} has no such revision") from None
    except (errors.EntryNotFoundError, errors.RemoteEntryNotFoundError):
        raise PullError(
            f"{repository} on {endpoint} lost a file while downloading; run the pull again"
        ) from None
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise PullError(
            f"{endpoint} answered HTTP {status} for {repository}; try again later "
            "(the download resumes)"
        ) from None
    except httpx2.ProxyError as exc:
        raise PullError(f"cannot reach {endpoint} through the proxy: {exc}") from None
    except (httpx2.TransportError, errors.LocalEntryNotFoundError) as exc:
        raise PullError(
            f"cannot reach {endpoint} ({_first_line(exc)}); check the network, "
            "then run the pull again to resume"
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        if "Consistency check failed" in str(exc):
            raise PullError(
                f"the connection to {endpoint} ended early; run the pull again to resume"
            ) from None
        raise


@contextmanager
def _disk_errors(models_dir: Path):  # noqa: ANN202
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise PullError(
                f"no room to write in {models_dir} ({exc.strerror}); free some "
                "space and run the pull again to resume"
            ) from None
        raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB" if size >= 1e6 else f"{size / 1e3:,.0f} kB"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
