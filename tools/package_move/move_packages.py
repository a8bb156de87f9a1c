#!/usr/bin/env python3
"""Move photosearch's flat core modules into packages by job (issue 16 item 6), in one go.

Run ONCE, on merged main, from a clean checkout (commit or stash first):

    python3 /work/tools/move_packages.py /path/to/repo            # do it
    python3 /work/tools/move_packages.py /path/to/repo --dry-run  # list what would change
    # then, in the repo:
    .venv/bin/ruff check . && PYTHONPATH=.:plugins .venv/bin/lint-imports
    .venv/bin/python -m pip install -e . --no-deps  # the installed `photosearch` script and
    #   entry-point metadata still name photosearch.cli:main until reinstalled (setup.sh does it)
    nice -n 10 bash scripts/test.sh
    git add -A && git commit -m "Move the core modules into packages by job (issue 16 item 6)"

Options: --layout FILE (default LAYOUT.md beside this script), --contracts FILE (default
layers_contract.toml beside this script), --no-ruff (skip the import-sorting pass).

What it does:
1. Reads the ``old -> new`` lines of LAYOUT.md (the mapping; edit it there, not here).
2. Rewrites every reference to an old module in the tracked and untracked-not-ignored text
   files (.py .pyi .toml .md .rst .txt .sh .spec .cfg .ini .json .yml .yaml):
   - dotted names anywhere (imports, ``import photosearch.x as y``, monkeypatch/mock targets
     like "photosearch.library.Library.index", ``python -m photosearch.cli``, subprocess code
     strings, logger names, pyproject entry points ``photosearch.cli:main``, import-linter
     contracts, docs): ``photosearch.library`` -> ``photosearch.library.facade``, also when an
     attribute follows (``photosearch.library.Library``). The old name must stand alone: not
     preceded by a name character or a dot, not followed by a name character. A following
     ``.name`` where ``name`` is a module of the new package is already the new form and is
     left alone, so new-layout text (docs/architecture.md) survives;
   - ``from photosearch import x[, y]``: a moved module keeps its local name
     (``from photosearch.vectors import store as vectors``), the rest stay where they were;
   - relative imports inside photosearch/ (``from .x import``, ``from . import x``): made
     absolute when they name a moved module or sit in a moved file, then rewritten as above;
   - file paths ``photosearch/x.py`` -> ``photosearch/<package>/<module>.py``.
3. ``git mv`` of each module, and a package ``__init__.py`` per new package with a docstring
   saying what it owns and what it may import (package_doc below); photosearch.library's
   re-exports ``Library`` (so ``from photosearch.library import Library`` keeps working for
   plugins and users; the tree itself imports the full module path).
4. pyproject.toml: each contract in the contracts file replaces the contract of the same name
   (or is appended after the last contract). Entry points are rewritten by step 2
   (``photosearch = "photosearch.cli.main:main"``); package discovery (``include =
   ["photosearch*", ...]``) already takes the new packages into the wheel and sdist, and the
   PyInstaller spec collects photosearch's submodules by package, so neither needs more.
5. ``ruff check --select I --fix`` on the rewritten .py files: a longer module path can change
   the import order or length; this re-sorts and re-wraps import blocks only. A docstring or
   comment line pushed past 100 characters is broken at its last space (a trailing comment
   moves above its line); any other new long line is printed, to shorten by hand.

Modules LAYOUT.md maps but this tree lacks (a branch not merged) are skipped with a note; flat
modules LAYOUT.md does not map are listed at the end. docs/architecture.md is written for the
new layout already and is not rewritten (NEW_LAYOUT_FILES).

It refuses to run on a tree where a mapped module is already gone and its target exists (run
twice), and when an old module defines a name that is also a module of its new package (the
rewrite could not tell them apart) unless that name is known to be safe.

Verified 2026-11-29 on w/tools16 (main + ANN/RUF100, contracts, encoder contract kit, docs)
with LAYOUT.md as amended by core16 (its four new modules absent there, so skipped), in a
scratch worktree: 26 modules moved, 106 files rewritten; `ruff check .` clean; `lint-imports`
5 contracts kept (layers: 2 listed exceptions, plugins: 3); tests/test_*.py 301 passed, 4
skipped (19 min under a load of about 10); tests/gui and tests/plugins: all passed but two
timing-bound tests under a load of 13: gui/test_parts.py's 100k-photo first paint (fails on
the unmoved tree too: 3.39 s > 3.0 s) and test_train_photos_only's command-line run (hit
pytest-timeout's 300 s while still training, in its crops stage; it passed in the earlier
full run with LAYOUT.md's first mapping);
`python -m photosearch --version`; a wheel and an sdist built from
the moved tree hold every new package, and the wheel's console script is
photosearch.cli.main:main; a second run is refused before touching anything.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import subprocess
import sys
import textwrap
import tokenize
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_LAYOUT = HERE / "LAYOUT.md"
DEFAULT_CONTRACTS = HERE / "layers_contract.toml"
TEXT_SUFFIXES = {
    ".py",
    ".pyi",
    ".toml",
    ".md",
    ".rst",
    ".txt",
    ".sh",
    ".spec",
    ".cfg",
    ".ini",
    ".json",
    ".yml",
    ".yaml",
}
SKIP_PREFIXES = ("shared/", ".venv/", "build/", "dist/")
LINE_LENGTH = 100  # pyproject's [tool.ruff] line-length
# Written for the new layout already: a bare package name there means the package.
NEW_LAYOUT_FILES = {"docs/architecture.md"}

# Each new package's __init__.py docstring: a summary, what it owns (built from the mapping,
# so it lists exactly the modules moved there) and what it may import.
PACKAGE_SUMMARY: dict[str, str] = {
    "photosearch.cli": "The `photosearch` command line: a front end, like photosearch.gui.",
    "photosearch.library": "The facade the front ends use, and the orchestration behind it.",
    "photosearch.indexing": "Keeping the catalog and the vectors in step with the photo folders.",
    "photosearch.search": "Search: from a typed query (or a liked photo) to ranked photos.",
    "photosearch.files": "Photo files on disk: walking folders, opening and decoding photos.",
    "photosearch.vectors": "The vector store: an HNSW graph per model, a cache of the catalog.",
}
PACKAGE_IMPORTS: dict[str, str] = {
    "photosearch.cli": (
        "Only the front ends print or exit: the core raises PhotosearchError subclasses and\n"
        "they turn them into one-line messages. May import every core package; the GUI only\n"
        "lazily, to open the window when `photosearch` runs without arguments."
    ),
    "photosearch.library": (
        "May import the jobs (indexing, search), files, the stores (catalog, models, vectors)\n"
        "and the base (errors, paths); never the front ends."
    ),
    "photosearch.indexing": (
        "May import files, the stores (catalog, models, vectors) and the base; not search, not\n"
        "the library."
    ),
    "photosearch.search": (
        "May import files, the stores (catalog, models, vectors) and the base; not indexing,\n"
        "not the library (rerank's type hints are the one listed exception)."
    ),
    "photosearch.files": (
        "Nothing here writes to a photo. May import photosearch.models (a bundle's\n"
        "preprocessing spec) and the base."
    ),
    "photosearch.vectors": "May import the base (errors, paths) only.",
}
MODULE_ROLES: dict[str, str] = {
    "main": "the commands",
    "models_commands": "the `models` sub-commands",
    "facade": "Library, the facade: folders, index, search, status",
    "active_model": "the active model (encoder, store, identity)",
    "reports": "the reports the facade returns",
    "settings": "per-library settings",
    "model_sets": "the open vector sets",
    "model_switch": "switching models as catalog facts",
    "repair": "catalog repair",
    "locking": "the one-writer lock",
    "trash": "moving photos to the platform trash on a confirmed request",
    "watch_service": "the long-running folder watcher",
    "evaluation": "retrieval evaluation on a captions file",
    "folder_scan": "walking every library folder",
    "reconcile": "applying what is on disk to the catalog",
    "encode": "encoding pending photos into the vector store",
    "watching": "folder events to settled batches",
    "progress": "progress reporting",
    "scanning": "walking and hashing",
    "imaging": "decoding and model preprocessing",
    "photo_files": "opening a photo file safely",
    "raw_images": "camera RAW files",
    "decode_pool": "decoding in worker processes under limits",
    "store": "the hnswlib graphs",
    "graph_integrity": "checks on a saved graph before hnswlib reads it",
    "atomic_write": "crash-safe file replacement",
    "query": "query parsing, the query vector and ranking",
    "match_strength": "how good the matches are",
    "rerank": "re-ranking by a bigger model",
    "timeline": "the timeline",
}


def package_doc(package: str, modules: list[str]) -> str:
    """The docstring of a new package's __init__.py."""
    owns = "; ".join(f"{MODULE_ROLES[m]} ({m})" if m in MODULE_ROLES else m for m in modules)
    body = textwrap.fill(f"Owns: {owns}.", LINE_LENGTH - 4)
    summary = PACKAGE_SUMMARY.get(package, f"The {package} package.")
    rules = PACKAGE_IMPORTS.get(package, "")
    return f"{summary}\n\n{body}\n{rules}\n" if rules else f"{summary}\n\n{body}\n"


# photosearch.library re-exports its facade class for plugins and users.
PACKAGE_EXPORTS: dict[str, str] = {
    "photosearch.library": (
        'from photosearch.library.facade import Library\n\n__all__ = ["Library"]\n'
    ),
}
# old module -> names it defines that are also modules of its new package, known harmless:
# photosearch.vectors imports graph_integrity (the same module either way); cli.main is the
# old CLI's function, never named by its dotted path in the tree.
KNOWN_COLLISIONS = {"photosearch.vectors": {"graph_integrity"}, "photosearch.cli": {"main"}}

NAME = r"[A-Za-z_][A-Za-z0-9_]*"


@dataclass(frozen=True)
class Move:
    old: str  # photosearch.library
    new: str  # photosearch.library.facade

    @property
    def old_path(self) -> Path:
        return Path(*self.old.split(".")).with_suffix(".py")

    @property
    def new_path(self) -> Path:
        return Path(*self.new.split(".")).with_suffix(".py")

    @property
    def package(self) -> str:
        return self.new.rpartition(".")[0]


def read_moves(layout: Path) -> list[Move]:
    """The ``old -> new`` lines of LAYOUT.md."""
    moves = []
    for line in layout.read_text().splitlines():
        found = re.match(r"\s*(photosearch(?:\.\w+)+)\s+->\s+(photosearch(?:\.\w+)+)", line)
        if found:
            moves.append(Move(found.group(1), found.group(2)))
    if not moves:
        sys.exit(f"no 'old -> new' lines in {layout}")
    olds = [m.old for m in moves]
    if len(set(olds)) != len(olds):
        sys.exit("a module is mapped twice in LAYOUT.md")
    return moves


class Rewriter:
    """Rewrites old module references in text; built once from the moves."""

    def __init__(self, moves: list[Move], repo: Path, mapped: list[Move] | None = None) -> None:
        """``moves``: the modules to move; ``mapped``: every mapping line (also modules not in
        this tree), whose targets count as new-form names."""
        self.by_old = {m.old: m for m in moves}
        self.packages = {m.package for m in moves}
        self.submodules: dict[str, set[str]] = {}
        for m in mapped or moves:
            self.submodules.setdefault(m.package, set()).add(m.new.rpartition(".")[2])
        for package in self.packages:  # modules another branch already put there
            directory = repo.joinpath(*package.split("."))
            if directory.is_dir():
                self.submodules[package] |= {p.stem for p in directory.glob("*.py")}
        alternatives = "|".join(re.escape(o) for o in sorted(self.by_old, key=len, reverse=True))
        self.dotted = re.compile(rf"(?<![\w.])({alternatives})(?!\w)(\.{NAME})?")
        path_alts = "|".join(re.escape(str(m.old_path)) for m in moves)
        self.paths = re.compile(rf"(?<![\w./])({path_alts})(?!\w)")
        self.from_package = re.compile(
            r"^(?P<indent>[ \t]*)from photosearch import (?P<names>\([^)]*\)|[^\n#]*)"
            r"(?P<comment>[^\n]*)$",
            re.MULTILINE,
        )

    def _dotted(self, match: re.Match[str]) -> str:
        old, tail = match.group(1), match.group(2) or ""
        move = self.by_old[old]
        if tail and old in self.packages and tail[1:] in self.submodules[old]:
            return match.group(0)  # already the new form: photosearch.library.facade
        return move.new + tail

    def _path(self, match: re.Match[str]) -> str:
        old = match.group(1)
        return next(str(m.new_path) for m in self.by_old.values() if str(m.old_path) == old)

    def _from_package(self, match: re.Match[str]) -> str:
        raw = match.group("names").strip()
        inner = raw[1:-1] if raw.startswith("(") else raw
        names = [n.strip() for n in inner.replace("\n", " ").split(",") if n.strip()]
        kept, moved = [], []
        for entry in names:
            name, _, alias = (part.strip() for part in entry.partition(" as "))
            move = self.by_old.get(f"photosearch.{name}")
            if move is None:
                kept.append(entry)
                continue
            package, _, module = move.new.rpartition(".")
            local = alias or name
            moved.append(
                f"from {package} import {module}" + (f" as {local}" if local != module else "")
            )
        if not moved:
            return match.group(0)
        indent, comment = match.group("indent"), match.group("comment")
        lines = [f"from photosearch import {', '.join(kept)}"] if kept else []
        lines += moved
        if comment.strip():
            lines[0] += "  " + comment.strip()
        return "\n".join(indent + line for line in lines)

    def rewrite(self, text: str) -> str:
        # dotted names first: the new ``from photosearch.vectors import store as vectors`` must
        # not be read again as the old photosearch.vectors
        text = self.dotted.sub(self._dotted, text)
        text = self.from_package.sub(self._from_package, text)
        return self.paths.sub(self._path, text)


def absolutise_relative_imports(
    text: str, module: str, is_package: bool, rewriter: Rewriter, moving: bool
) -> str:
    """``from .x import y`` -> ``from photosearch.x import y`` where it names a moved module
    or the file itself moves (its relative base changes)."""
    base = module.split(".") if is_package else module.split(".")[:-1]

    def absolute(match: re.Match[str]) -> str:
        dots, rest, names = match.group(2), match.group(3), match.group(4)
        anchor = base[: len(base) - (len(dots) - 1)]
        target = ".".join(anchor + ([rest] if rest else []))
        if rest:
            touches = any(target == o or target.startswith(o + ".") for o in rewriter.by_old)
        else:
            listed = [n.strip().split(" as ")[0] for n in names.strip("()").split(",")]
            touches = any(f"{target}.{n}" in rewriter.by_old for n in listed if n)
        if not (moving or touches):
            return match.group(0)
        return f"{match.group(1)}from {target} import {names}"

    return re.sub(
        r"^([ \t]*)from (\.+)([\w.]*) import (\([^)]*\)|[^\n]*)$",
        absolute,
        text,
        flags=re.MULTILINE,
    )


def wrap_long_prose(text: str, known: set[str], limit: int = LINE_LENGTH) -> tuple[str, list[int]]:
    """Break the docstring and comment lines a longer module path pushed past ``limit`` at
    their last space; returns the text and the numbers of new long lines left (code, strings).
    ``known``: the long lines the file had before (URLs and the like), left alone."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text, []
    docstring_lines: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            docstring_lines |= set(range(body[0].lineno, (body[0].end_lineno or 0) + 1))
    trailing: dict[int, int] = {}  # line -> column of a comment after code
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT and token.line[: token.start[1]].strip():
                trailing[token.start[0]] = token.start[1]
    except (tokenize.TokenError, SyntaxError):
        pass
    out, left = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if len(line) > limit and line not in known and number in trailing:
            indent = re.match(r"\s*", line).group(0)  # the comment goes above its code
            out.append(indent + line[trailing[number] :])
            line = line[: trailing[number]].rstrip()
            if len(out[-1]) > limit:  # wrap the moved comment too
                moved = out.pop()
                while len(moved) > limit:
                    cut = moved.rfind(" ", 0, limit + 1)
                    if cut <= len(indent) + 2:
                        break
                    out.append(moved[:cut].rstrip())
                    moved = indent + "# " + moved[cut + 1 :]
                out.append(moved)
        comment = re.match(r"^(\s*)# ", line)
        while len(line) > limit and line not in known and (comment or number in docstring_lines):
            cut = line.rfind(" ", 0, limit + 1)
            indent = comment.group(0) if comment else re.match(r"\s*", line).group(0)
            if cut <= len(indent):
                break
            out.append(line[:cut].rstrip())
            line = indent + line[cut + 1 :]
        if len(line) > limit and line not in known:
            left.append(len(out) + 1)
        out.append(line)
    return "\n".join(out), left


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def text_files(repo: Path) -> list[Path]:
    listed = git(repo, "ls-files", "-co", "--exclude-standard").splitlines()
    return [
        Path(p)
        for p in sorted(set(listed))
        if Path(p).suffix in TEXT_SUFFIXES
        and not p.startswith(SKIP_PREFIXES)
        and p not in NEW_LAYOUT_FILES
        and (repo / p).is_file()
        and not (repo / p).is_symlink()
    ]


def present_moves(repo: Path, moves: list[Move]) -> list[Move]:
    """The moves whose module exists here; a mapped module that is absent (its branch not
    merged) is reported and left out."""
    absent = [m for m in moves if not (repo / m.old_path).is_file()]
    for m in absent:
        print(f"note: {m.old_path} is not in this tree; {m.old} -> {m.new} skipped")
    return [m for m in moves if m not in absent]


def check_preconditions(repo: Path, moves: list[Move]) -> None:
    problems = []
    for m in moves:
        if (repo / m.new_path).exists():
            problems.append(
                f"{m.new_path} exists already (moved before? run once, on the old tree)"
            )
    for m in moves:  # an old name that is also a module of its new package is ambiguous
        if m.old not in {x.package for x in moves} or not (repo / m.old_path).is_file():
            continue
        tree = ast.parse((repo / m.old_path).read_text())
        defined = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.Import | ast.ImportFrom):
                defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        modules = {x.new.rpartition(".")[2] for x in moves if x.package == m.old}
        clash = (defined & modules) - KNOWN_COLLISIONS.get(m.old, set())
        if clash:
            problems.append(f"{m.old} defines {sorted(clash)}, also modules of the new package")
    if problems:
        sys.exit("refusing to move:\n  " + "\n  ".join(problems))


def replace_contracts(pyproject: str, contracts: str) -> str:
    """Each [[tool.importlinter.contracts]] table of ``contracts`` replaces the one of the same
    name in ``pyproject`` or is appended after the last contract."""
    header = "[[tool.importlinter.contracts]]"

    def tables(text: str) -> tuple[str, list[str]]:
        parts = re.split(r"(?m)^(?=\[)", text)
        return parts[0], parts[1:]

    def name_of(table: str) -> str | None:
        found = re.search(r'(?m)^name\s*=\s*"([^"]*)"', table)
        return found.group(1) if found and table.startswith(header) else None

    _, new_tables = tables(contracts)
    new_tables = [t for t in new_tables if t.startswith(header)]
    by_name = {name_of(t): t.rstrip() + "\n" for t in new_tables}
    head, old_tables = tables(pyproject)
    out, placed = [], set()
    for table in old_tables:
        name = name_of(table)
        if name in by_name:
            trailing = table[len(table.rstrip()) :]
            out.append(by_name[name].rstrip() + (trailing if trailing.strip() == "" else "\n"))
            placed.add(name)
        else:
            out.append(table)
    last = max((i for i, t in enumerate(out) if t.startswith(header)), default=len(out) - 1)
    extra = [by_name[n] for n in by_name if n not in placed]
    if extra:
        if not out[last].endswith("\n\n"):
            out[last] = out[last].rstrip("\n") + "\n\n"
        block = "\n".join(extra)
        if last + 1 < len(out):
            block += "\n"
        out.insert(last + 1, block)
    return head + "".join(out).rstrip("\n") + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--layout", type=Path, default=DEFAULT_LAYOUT)
    parser.add_argument("--contracts", type=Path, default=DEFAULT_CONTRACTS)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--no-ruff", action="store_true")
    args = parser.parse_args()
    repo = args.repo.resolve()
    mapped = read_moves(args.layout)
    check_preconditions(repo, mapped)
    moves = present_moves(repo, mapped)
    rewriter = Rewriter(moves, repo, mapped)
    moved_paths = {m.old_path: m for m in moves}

    changed: list[Path] = []
    long_before: dict[Path, set[str]] = {}
    for path in text_files(repo):
        original = (repo / path).read_text(encoding="utf-8", errors="surrogateescape")
        text = original
        if path.suffix == ".py" and path.parts[0] == "photosearch":
            module = ".".join(path.with_suffix("").parts)
            is_package = path.name == "__init__.py"
            if is_package:
                module = module.rpartition(".")[0]
            text = absolutise_relative_imports(
                text, module, is_package, rewriter, moving=path in moved_paths
            )
        text = rewriter.rewrite(text)
        if path.name == "pyproject.toml" and path.parent == Path("."):
            text = replace_contracts(text, args.contracts.read_text())
        if text != original:
            changed.append(path)
            long_before[path] = {line for line in original.splitlines() if len(line) > LINE_LENGTH}
            if not args.dry_run:
                (repo / path).write_text(text, encoding="utf-8", errors="surrogateescape")
    print(f"rewrote references in {len(changed)} files:")
    for path in changed:
        print(f"  {path}")
    if args.dry_run:
        for m in moves:
            print(f"  would move {m.old_path} -> {m.new_path}")
        return 0

    for package in sorted({m.package for m in moves}):
        directory = repo.joinpath(*package.split("."))
        directory.mkdir(parents=True, exist_ok=True)
    for m in moves:
        git(repo, "mv", str(m.old_path), str(m.new_path))
        print(f"moved {m.old_path} -> {m.new_path}")
    for package in sorted({m.package for m in moves}):
        init = repo.joinpath(*package.split("."), "__init__.py")
        if init.exists():
            continue
        doc = package_doc(
            package, [m.new.rpartition(".")[2] for m in moves if m.package == package]
        )
        body = f'"""{doc}"""\n'
        if package in PACKAGE_EXPORTS:
            body += "\n" + PACKAGE_EXPORTS[package]
        init.write_text(body)
        git(repo, "add", str(init.relative_to(repo)))
        print(f"created {init.relative_to(repo)}")

    new_place = {p: repo / (moved_paths[p].new_path if p in moved_paths else p) for p in changed}
    python_files = [str(new_place[p]) for p in changed if p.suffix == ".py"]
    if python_files and not args.no_ruff:
        ruff = repo / ".venv" / "bin" / "ruff"
        command = [
            str(ruff) if ruff.exists() else "ruff",
            "check",
            "--select",
            "I",
            "--fix",
            "--quiet",
            *python_files,
        ]
        result = subprocess.run(command, cwd=repo, capture_output=True, text=True)
        print(
            "import blocks re-sorted (ruff --select I --fix)"
            + ("" if result.returncode == 0 else f": {result.stdout}{result.stderr}")
        )
    for path in (p for p in changed if p.suffix == ".py"):
        wrapped, left = wrap_long_prose(new_place[path].read_text(), long_before[path])
        new_place[path].write_text(wrapped)
        for number in left:
            print(
                f"  {new_place[path].relative_to(repo)}:{number}: over {LINE_LENGTH}"
                " characters (code or a string: shorten by hand)"
            )
    staying = {"__init__", "__main__", "errors", "paths"}
    flat = sorted(p.stem for p in (repo / "photosearch").glob("*.py") if p.stem not in staying)
    if flat:
        print(
            f"note: flat modules not in LAYOUT.md's mapping, left in photosearch/: {flat}; "
            "map them and run this again on a fresh checkout, or move them by hand"
        )
    print("next: ruff check . && lint-imports && the test suite, then commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
