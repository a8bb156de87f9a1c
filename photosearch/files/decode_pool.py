"""Decoding photos in worker processes, each photo under a time limit and all of them under one
memory budget.

Pillow's decoders cannot be interrupted from another thread: a progressive JPEG with thousands
of scans keeps a thread busy for minutes, and an abandoned thread would keep its CPU and memory
until it finished. So each decode runs in a worker process (pebble's pool kills a worker that
overruns and starts a fresh one), driven by one thread per worker in this process. Each thread
first reads the photo's header (cheap, non-blocking) to learn how much memory the decode will
take, reserves that much in the shared ``DecodeBudget``, and only then hands the photo to its
process: the sum over concurrent decodes stays under the budget whatever the folder holds.

Workers are forked from a forkserver that has already imported Pillow and numpy, so a pool
starts in milliseconds after the first one, and the encoder's memory is never copied into them.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from photosearch.errors import DecodeRefused, UnsupportedImage
from photosearch.files.imaging import (
    DecodeBudget,
    DecodedPhoto,
    DecodeLimits,
    decode_cost,
    draft_size,
    load_image,
    process_budget,
    to_model_input,
)
from photosearch.files.perceptual_hash import stored_hash
from photosearch.models.bundle import Preprocessing

_PRELOAD = ["photosearch.files.imaging", "photosearch.files.perceptual_hash"]


class DecodePool:
    """Decode photos for the encoder in ``workers`` processes. Use as a context manager.

    ``draft=False`` decodes at full size (no JPEG draft mode), for checks and callers that need
    the full image; the time and memory limits hold either way.
    """

    def __init__(
        self,
        workers: int,
        preprocessing: Preprocessing,
        limits: DecodeLimits | None = None,
        budget: DecodeBudget | None = None,
        *,
        draft: bool = True,
    ) -> None:
        self.limits = limits or DecodeLimits.current()
        shared = process_budget()
        same = shared.total_bytes == self.limits.memory_bytes
        self.budget = budget or (shared if same else DecodeBudget(self.limits.memory_bytes))
        self.preprocessing = preprocessing
        # the same JPEG draft as decode_for_model: a vector indexed here must be the vector
        # `search --like`, eval and the trainer compute for the same photo
        self.min_size = draft_size(preprocessing) if draft else None
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
        from pebble import ProcessPool  # imported by the commands that decode (50 ms)

        self._processes = ProcessPool(
            max_workers=workers, initializer=_ignore_interrupts, context=_context()
        )
        self._jobs: set[Future] = set()
        self._jobs_lock = threading.Lock()
        self._closing = False

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, path: str) -> Future[DecodedPhoto | UnsupportedImage]:
        """Decode ``path`` soon; the future holds the photo or the reason it failed (it never
        raises)."""
        return self._threads.submit(self._decode, path)

    def close(self) -> None:
        """Stop at once: queued photos are dropped, running decodes are killed."""
        with self._jobs_lock:
            self._closing = True
            for job in self._jobs:
                job.cancel()  # a running decode's worker is killed
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._processes.stop()
        self._processes.join(timeout=10)
        self._threads.shutdown(wait=True)

    def _decode(self, path: str) -> DecodedPhoto | UnsupportedImage:
        limits = self.limits
        try:
            cost = decode_cost(Path(path), self.min_size, limits)
            with self.budget.reserve(cost):  # held until the worker is done with the photo
                with self._jobs_lock:
                    if self._closing:
                        return UnsupportedImage("decoding was stopped")
                    job = self._processes.schedule(
                        _decode_in_worker,
                        args=(path, self.preprocessing, self.min_size, limits),
                        timeout=limits.seconds,
                    )
                    self._jobs.add(job)
                try:
                    return job.result()
                finally:
                    with self._jobs_lock:
                        self._jobs.discard(job)
        except UnsupportedImage as exc:
            return exc
        except CancelledError:
            return UnsupportedImage("decoding was stopped")
        except FutureTimeout:
            return DecodeRefused(f"took longer than {limits.seconds:g} s to decode")
        except Exception as exc:
            from pebble import ProcessExpired

            if isinstance(exc, ProcessExpired):
                return UnsupportedImage(f"the decoder crashed (exit code {exc.exitcode})")
            return UnsupportedImage(f"could not decode: {type(exc).__name__}: {exc}"[:300])


def _decode_in_worker(
    path: str, preprocessing: Preprocessing, min_size: int | None, limits: DecodeLimits
) -> DecodedPhoto:
    """Runs in a worker process: decode and preprocess one photo (raises UnsupportedImage)."""
    image, info = load_image(Path(path), min_size=min_size, limits=limits)
    try:
        pixels = to_model_input(image, preprocessing)
        phash = stored_hash(image)  # from the same decoded image: near-duplicate grouping
    except Exception as exc:
        raise UnsupportedImage(f"could not prepare image: {exc}"[:300]) from exc
    return DecodedPhoto(pixels, info, phash)


def _ignore_interrupts() -> None:
    """Ctrl-C is the parent's to handle: it stops the pool, which ends the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _context() -> multiprocessing.context.BaseContext:
    """forkserver where the platform has it (Linux, macOS), else spawn (Windows, and the
    frozen app, whose launcher calls multiprocessing.freeze_support())."""
    if getattr(sys, "frozen", False):
        return multiprocessing.get_context("spawn")
    try:
        context = multiprocessing.get_context("forkserver")
    except ValueError:
        return multiprocessing.get_context("spawn")
    context.set_forkserver_preload(_PRELOAD)
    return context
