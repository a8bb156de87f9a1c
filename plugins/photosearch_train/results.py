"""What a phase and a stage report back: typed records that the stages hand on and the CLI
prints, and that a finished phase keeps as ``done.json`` (read back when a run resumes).

``to_dict`` gives the JSON form (the keys runs have always written); ``from_dict`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Scores = dict[str, float]  # validation scores of one checkpoint ("rsum", "cos_to_teacher", ...)


@dataclass(frozen=True)
class PhaseResult:
    """A training phase (``trainer.train_phase``): finished, or stopped at ``step`` of
    ``total`` with a checkpoint to resume from. ``best_val`` holds the chosen checkpoint's
    scores and its ``step``."""

    phase: str
    finished: bool
    step: int
    total: int
    best_val: dict[str, Any] | None = None
    seconds_this_run: float | None = None

    def to_dict(self) -> dict[str, Any]:
        if not self.finished:
            return {"phase": self.phase, "step": self.step, "total": self.total, "finished": False}
        return {
            "phase": self.phase,
            "steps": self.total,
            "finished": True,
            "best_val": self.best_val,
            "seconds_this_run": self.seconds_this_run,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhaseResult:
        total = int(data.get("total", data.get("steps", 0)))
        return cls(
            phase=str(data["phase"]),
            finished=bool(data["finished"]),
            step=int(data.get("step", total)),
            total=total,
            best_val=data.get("best_val"),
            seconds_this_run=data.get("seconds_this_run"),
        )


@dataclass(frozen=True)
class FitResult:
    """A phase fitted in one call on cached features (projection heads, the student's tail)
    or a stage summary built from such fits; always finished when returned. Optional facts
    are kept only when they apply: the learnt temperature ``tau`` of a teacher head fit, the
    ``tail`` fit, the ``crops`` phase's summary, the photo counts of a photos-only run."""

    phase: str
    best_val: dict[str, Any] | None = None
    tau: float | None = None
    tail: dict[str, Any] | None = None
    crops: dict[str, Any] | None = None
    photos: int | None = None
    held_out_photos: int | None = None
    finished: bool = True

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"phase": self.phase, "finished": self.finished}
        for key in ("best_val", "tau", "tail", "crops", "photos", "held_out_photos"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitResult:
        keys = ("best_val", "tau", "tail", "crops", "photos", "held_out_photos")
        return cls(
            phase=str(data["phase"]),
            finished=bool(data.get("finished", True)),
            **{key: data.get(key) for key in keys},
        )


def crops_summary(crops: PhaseResult) -> dict[str, Any]:
    """The crop phase as a stage summary records it."""
    return {"best_val": crops.best_val, "steps": crops.total, "finished": crops.finished}


Part = PhaseResult | FitResult


@dataclass(frozen=True)
class StageResult:
    """One stage's outcome: its parts by name ("image", "text", "joint", "head", "student",
    "crops"), or a ``note`` saying why it trained nothing ("disabled", "not used: ...")."""

    stage: str
    parts: dict[str, Part] = field(default_factory=dict)
    note: str | None = None

    @property
    def finished(self) -> bool:
        """Every part finished (a stage stopped early resumes from its checkpoints)."""
        return all(part.finished for part in self.parts.values())

    def to_dict(self) -> dict[str, Any]:
        if self.note is not None:
            return {self.stage: self.note}
        return {name: part.to_dict() for name, part in self.parts.items()}
