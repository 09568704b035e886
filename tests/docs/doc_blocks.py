"""Find and run the shell blocks of README.md and docs/**/*.md, as tests/docs/test_commands.py does.

A shell block is a fenced ```sh, ```bash, ```shell or ```console block (in ``console`` blocks
only the lines starting with ``$ `` are commands; the rest is output). HTML comments on the
lines just above the fence say how the test runs it; they are visible in the document's
source and described in docs/README.md ("How the docs are tested"):

``<!-- test: quick CMD ARGS -->``
    the quick variant: in the test, ``ARGS`` are appended to every ``lstmlite CMD`` command
    of the block (argparse and ``--key=value`` overrides take the last value, so
    ``--train.epochs=1`` replaces the documented epochs). Several may be given.
``<!-- test: needs PATH ... -->``
    inputs the block does not make itself (a run dir made by another document, a user's
    file); the test makes them first with the small recipes in :data:`FIXTURES`.
``<!-- test: writes PATH ... -->``
    files the block's prose promises besides the ``--out``/``--json FILE`` paths the
    test checks on its own.
``<!-- test: exits N -->``
    every command of the block must exit with status N (a page showing an error, e.g. 2
    for a usage error); what such a command would write is not checked.
``<!-- test: slow -->``
    the block runs only with ``-m slow`` (``make test-all``).
``<!-- test: skip REASON -->``
    not run; REASON says why (network, GPU, installs packages, …). Every such block is
    listed in ``SKIPPED`` in test_commands.py, so a new one cannot slip in unreviewed.

The blocks of one document run in order in one temporary folder (later blocks use what
earlier ones made); ``lstmlite …`` commands run in this process (``lstmlite.cli.main``:
the same code the console script calls, without paying the import time per command),
every other command line through ``bash`` with a ``lstmlite`` shim first on ``PATH``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_FENCES = ("sh", "bash", "shell", "console")
DIRECTIVE = re.compile(r"^<!--\s*test:\s*(?P<kind>quick|needs|writes|exits|slow|skip)\b\s*(?P<rest>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<ticks>```+)(?P<lang>[\w-]*)\s*$")


def documents() -> list[Path]:
    """README.md and every Markdown file under docs/ (tutorials included), sorted."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@dataclass
class Block:
    """One shell block: where it is, its command lines and its test directives."""

    doc: Path
    line: int                    # 1-based line of the opening fence
    lang: str
    text: str                    # the block's body as written
    quick: list[tuple[str, list[str]]] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    slow: bool = False
    skip: str | None = None
    exits: int = 0

    @property
    def id(self) -> str:
        doc = self.doc.relative_to(ROOT) if self.doc.is_relative_to(ROOT) else self.doc
        return f"{doc}:{self.line}"

    def commands(self) -> list[str]:
        """Logical command lines: ``\\`` continuations joined, heredocs kept with their line,
        prompts (``$ ``) stripped in console blocks, output lines of console blocks dropped."""
        lines = self.text.splitlines()
        if self.lang == "console":
            lines = [ln[2:] for ln in lines if ln.startswith("$ ")]
        out: list[str] = []
        i = 0
        while i < len(lines):
            cmd = lines[i]
            while cmd.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd.rstrip()[:-1] + " " + lines[i].strip()
            heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", cmd)
            if heredoc:
                end = heredoc.group(1)
                while i + 1 < len(lines):
                    i += 1
                    cmd += "\n" + lines[i]
                    if lines[i].strip() == end:
                        break
            if cmd.strip() and not cmd.strip().startswith("#"):
                out.append(cmd)
            i += 1
        return out


def parse(doc: Path) -> list[Block]:
    """Every shell block of ``doc`` with the directives written just above it."""
    lines = doc.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group("lang"):
            i += 1
            continue
        lang, ticks, start = m.group("lang"), m.group("ticks"), i
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != ticks:
            j += 1
        if lang in SHELL_FENCES:
            block = Block(doc, start + 1, lang, "\n".join(lines[start + 1:j]))
            k = start - 1
            while k >= 0 and (d := DIRECTIVE.match(lines[k].strip())):
                _apply(block, d.group("kind"), d.group("rest"))
                k -= 1
            blocks.append(block)
        i = j + 1
    return blocks


def _apply(block: Block, kind: str, rest: str) -> None:
    if kind == "quick":
        sub, _, args = rest.partition(" ")
        block.quick.insert(0, (sub, shlex.split(args)))
    elif kind == "needs":
        block.needs += rest.split()
    elif kind == "writes":
        block.writes += rest.split()
    elif kind == "exits":
        block.exits = int(rest)
    elif kind == "slow":
        block.slow = True
    elif kind == "skip":
        block.skip = rest


def _outputs(tokens: list[str]) -> list[str]:
    """What an ``lstmlite`` command says it writes: its ``--out``, and ``bench``'s ``--json FILE``."""
    found = []
    for i, tok in enumerate(tokens):
        for flag in ("--out", "--chart") + (("--json",) if tokens[:1] == ["bench"] else ()):
            if tok == flag and i + 1 < len(tokens):
                found.append(tokens[i + 1])
            elif tok.startswith(flag + "="):
                found.append(tok.split("=", 1)[1])
    return found


class CommandFailed(AssertionError):
    pass


@dataclass
class Shell:
    """Runs command lines like ``bash -e`` in a folder, ``lstmlite`` in-process."""

    cwd: Path
    shim_dir: Path
    log: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.shim_dir}{os.pathsep}{env.get('PATH', '')}"
        src = str(ROOT / "src")
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def run_block(self, block: Block) -> None:
        start = self.cwd  # `writes` paths are relative to where the block starts (it may cd)
        for cmd in block.commands():
            self.run(cmd, block)
        for path in block.writes:
            if not (start / path).exists():
                raise CommandFailed(f"{block.id}: the block says it writes {path}, which is missing")

    def run(self, cmd: str, block: Block) -> None:
        simple = "\n" not in cmd and not re.search(r"[|&;<>`$()]", cmd.split(" #")[0])
        tokens = shlex.split(cmd, comments=True) if simple else []
        if tokens[:1] == ["cd"] and len(tokens) == 2:
            self.cwd = (self.cwd / tokens[1]).resolve()
            return
        if tokens[:1] == ["lstmlite"]:
            args = tokens[1:]
            for sub, extra in block.quick:
                if args[:len(sub.split("."))] == sub.split("."):
                    args = args + extra
            self._lstmlite(args, block)
            return
        self.log.append(f"$ {cmd}")
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", cmd], cwd=self.cwd, env=self.env(),
                              capture_output=True, text=True, timeout=600)
        self.log.append(done.stdout[-2000:] + done.stderr[-2000:])
        if done.returncode != block.exits:
            raise CommandFailed(f"{block.id}: `{cmd}` exited {done.returncode}, not {block.exits}\n"
                                + "\n".join(self.log[-6:]))

    def _lstmlite(self, args: list[str], block: Block) -> None:
        from lstmlite.cli.main import main

        self.log.append("$ lstmlite " + shlex.join(args))
        out, err = io.StringIO(), io.StringIO()
        here = os.getcwd()
        try:
            os.chdir(self.cwd)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main(args)
                except SystemExit as stop:  # argparse exits
                    rc = stop.code if isinstance(stop.code, int) else 1
        finally:
            os.chdir(here)
        self.log.append(out.getvalue()[-3000:] + err.getvalue()[-3000:])
        if rc != block.exits:
            raise CommandFailed(f"{block.id}: `lstmlite {shlex.join(args)}` exited {rc}, not {block.exits}\n"
                                + "\n".join(self.log[-6:]))
        if block.exits:
            return
        for path in _outputs(args):
            if not (self.cwd / path).exists():
                raise CommandFailed(f"{block.id}: `lstmlite {shlex.join(args)}` exited 0 but wrote no {path}")


def make_shim(folder: Path) -> Path:
    """A ``lstmlite`` executable running this interpreter on this checkout's package."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "lstmlite"
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -c "
                    "'import sys; from lstmlite.cli.main import main; sys.exit(main())' \"$@\"\n")
    shim.chmod(0o755)
    return folder
