"""Every command the docs show is run, so the docs cannot drift from the CLI again.

Commands are taken from README.md, docs/*.md and config/README.md (lines of code blocks:
indented or fenced, except python/yaml/json/text blocks) and from the header comments of
config/examples/*.yaml (`#   ` lines); a trailing backslash joins the next line. A yaml block
whose first line names a file (`# my.yaml`) is the reader's own config: the commands of the
same document run where that file exists, with stand-in unit files for its `units_text`
datasets (a few utterances, so the dry runs find what a reader's data would be).

A line is a command when its first word is a program on PATH (the venv's first), a shell
builtin, an executable file of the repository, or one of COMMANDS (so that a documented
program that is not installed fails instead of being skipped). Each command is then run as
far as it can be without doing the work:

- `snakemake ...`: a real dry run (`-n`), the cluster profile included, in a fresh directory
  that sees the checkout (so existing results do not change the answer);
- `make X`: `make -n X`;
- `python SCRIPT ...` and other programs: `--help` must succeed and list every `--option`
  the command uses;
- an executable script of the repository (`scripts/slurm-local.sh start`): its usage line
  must name the subcommand.

A command that cannot be run this way is listed in NOT_RUN with the reason; anything else
that matches nothing fails the test, naming the file and line.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import PYTHON, ROOT

from seqlab.data.sources import source_files

DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "config/README.md",
    *sorted((ROOT / "config/examples").glob("*.yaml")),
]
BIN = Path(PYTHON).parent
PATH = f"{BIN}:{os.environ.get('PATH', '')}"
#: commands that count as commands even where they are not installed
COMMANDS = {"snakemake", "make", "python", "seqlab", "tensorboard"}
BUILTINS = {"eval", "source", ".", "export", "cd"}
#: (regex on the whole command, why it is not run)
NOT_RUN = [
    (r"^eval ", "changes the calling shell (`scripts/slurm-local.sh env` is run by test_slurm)"),
    (r"^source ", "activates the venv in the calling shell"),
    (r"^cp -r profiles/slurm ", "copies a directory; the copy's use is a snakemake line"),
    (r"^snakemake .*--report ", "renders existing results: needs a finished run"),
]
#: `seqlab` subcommands that only read: the documented command itself runs (status: against
#: an empty results directory, so every trial is pending and the experiment must exist)
READ_ONLY = {"status", "check-config"}
#: programs that may be missing where the test runs (then that command is skipped, saying so)
OPTIONAL = {"sbatch", "squeue", "scontrol", "sinfo", "scancel", "tmux", "screen"}


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines that may hold commands."""
    lines = path.read_text().splitlines()
    out: list[tuple[int, str]] = []
    if path.suffix == ".yaml":
        for i, line in enumerate(lines, 1):
            if not line.startswith("#"):
                break  # the header comment ends at the first key
            if line.startswith("#   "):
                out.append((i, line[1:].strip()))
        return out
    fence: str | None = None
    for i, line in enumerate(lines, 1):
        if line.startswith("```"):
            fence = None if fence is not None else (line[3:].strip() or "sh")
            continue
        if fence is not None:
            if fence not in ("python", "yaml", "json", "text"):
                out.append((i, line.strip()))
        elif line.startswith("    ") and line.strip():
            out.append((i, line.strip()))
    return out


def named_configs(path: Path) -> dict[str, str]:
    """{file name: text} of the yaml blocks of a document whose first line is `# NAME.yaml`."""
    found: dict[str, str] = {}
    if path.suffix != ".md":
        return found
    for block in re.findall(r"^```yaml\n(.*?)^```", path.read_text(), re.M | re.S):
        first = block.splitlines()[0] if block.strip() else ""
        name = re.fullmatch(r"#\s*([\w.-]+\.ya?ml)\s*", first)
        if name:
            found[name[1]] = block
    return found


def write_named_configs(doc: Path, where: Path) -> None:
    """The document's named configs into `where`, and a few utterances for each file their
    `units_text` datasets read (the reader's data, which the docs cannot ship)."""
    for name, text in named_configs(doc).items():
        (where / name).write_text(text)
        for ds in (yaml.safe_load(text).get("datasets") or {}).values():
            if ds.get("kind") != "units_text":
                continue
            for key in ("train", "eval"):
                units = where / ds[key] if ds.get(key) else None
                if units is not None and not units.exists():
                    units.parent.mkdir(parents=True, exist_ok=True)
                    units.write_text("".join(f"utt{i}\t1,2,3,{i}\n" for i in range(4)))


def _is_command(word: str) -> bool:
    if word in COMMANDS or word in BUILTINS or word in OPTIONAL:
        return True
    if "/" in word:
        return (ROOT / word).is_file() and os.access(ROOT / word, os.X_OK)
    return shutil.which(word, path=PATH) is not None


def documented_commands() -> list[tuple[str, str]]:
    """(file:line, command) of every command the docs show, continuations joined."""
    found: list[tuple[str, str]] = []
    for path in DOCS:
        lines = _code_lines(path)
        i = 0
        while i < len(lines):
            start, text = lines[i]
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1].rstrip() + " " + lines[i][1]
            i += 1
            try:
                words = shlex.split(text, comments=True)
            except ValueError:
                continue  # not shell (an unbalanced quote in prose or a listing)
            if words and _is_command(words[0]):
                found.append((f"{path.relative_to(ROOT)}:{start}", shlex.join(words)))
    return found


COMMANDS_SHOWN = documented_commands()


def run(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=PATH, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def checkout_view(tmp_path: Path) -> Path:
    """A directory that sees the checkout through links, without its results/ or .snakemake/."""
    view = tmp_path / "view"
    view.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in ("results", ".snakemake", ".git", "profiles", "config"):
            (view / entry.name).symlink_to(entry)
    # the examples' data paths (`# edit` lines) are a cluster's: files stand in for every file
    # their datasets read (the inputs of prepare_data; a glob's: one match), as a config whose
    # data is missing is refused when it loads and its dry run names the missing file
    shutil.copytree(ROOT / "config", view / "config")
    for example in (view / "config/examples").glob("*.yaml"):
        text = example.read_text()
        for path in re.findall(r": (/\S+) +# edit", text):
            text = text.replace(path, str(tmp_path / "data" / path.lstrip("/")))
        example.write_text(text)
        for block in yaml.safe_load(text).get("datasets", {}).values():
            for file in map(Path, source_files(block)):
                stand_in = file.with_name(file.name.replace("*", "0"))
                if stand_in.is_relative_to(tmp_path) and not stand_in.exists():
                    stand_in.parent.mkdir(parents=True, exist_ok=True)
                    stand_in.touch()
    (view / "profiles").mkdir()
    for profile in (ROOT / "profiles").iterdir():
        (view / "profiles" / profile.name).symlink_to(profile)
    # the README's own copy of the cluster profile (`cp -r profiles/slurm profiles/mycluster`)
    shutil.copytree(ROOT / "profiles/slurm", view / "profiles/mycluster")
    return view


def options_missing(words: list[str], help_text: str) -> list[str]:
    opts = [w.split("=", 1)[0] for w in words if w.startswith("--")]
    return [o for o in opts if not re.search(rf"{re.escape(o)}\b", help_text)]


def test_the_docs_show_commands() -> None:
    """The extraction finds the commands it must (a guard against an extraction that finds
    nothing and so tests nothing)."""
    shown = [c for _, c in COMMANDS_SHOWN]
    assert any(c.startswith("snakemake --profile profiles/slurm") for c in shown)
    assert any(c.startswith("snakemake --configfile my.yaml -n") for c in shown)
    assert any(c.startswith("snakemake --configfile config/examples/") for c in shown)
    assert any(c.startswith("make ") for c in shown)
    assert any(c.startswith("python workflow/scripts/lm.py") for c in shown)


# The cluster-scale examples are thousands of trials: their dry runs take minutes here.
def _marks(where: str, command: str) -> list[pytest.MarkDecorator]:
    big = where.startswith("config/examples/") and command.startswith("snakemake")
    return [pytest.mark.slow] if big else []


PARAMS = [pytest.param(w, c, id=w, marks=_marks(w, c)) for w, c in COMMANDS_SHOWN]


@pytest.mark.parametrize(("where", "command"), PARAMS)
def test_documented_command_runs(where: str, command: str, tmp_path: Path) -> None:
    for pattern, why in NOT_RUN:
        if re.search(pattern, command):
            pytest.skip(f"not run: {why}")
    words = shlex.split(command)
    prog = words[0]
    doc = ROOT / where.rsplit(":", 1)[0]
    if prog in OPTIONAL and shutil.which(prog, path=PATH) is None:
        pytest.skip(f"{prog} is not installed here (Slurm client: make slurm-up)")
    if prog == "snakemake":
        dry = [str(BIN / "snakemake"), *words[1:], "-n", "--nolock", "--quiet", "all"]
        view = checkout_view(tmp_path)
        write_named_configs(doc, view)
        proc = run(dry, view, timeout=600)
        assert proc.returncode == 0, f"{where}: `{command}` -n failed:\n{proc.stderr[-3000:]}"
        assert "This was a dry-run" in proc.stdout + proc.stderr, proc.stdout[-2000:]
    elif prog == "make":
        proc = run(["make", "-n", *words[1:]], ROOT)
        assert proc.returncode == 0, f"{where}: `make -n {' '.join(words[1:])}`: {proc.stderr}"
    elif "/" in prog:  # an executable of the repository: its usage names the subcommand
        proc = run([str(ROOT / prog)], ROOT)
        usage = proc.stdout + proc.stderr
        assert "usage" in usage.lower(), f"{where}: {prog} printed no usage: {usage}"
        for sub in words[1:2]:
            assert re.search(rf"\b{re.escape(sub)}\b", usage), f"{where}: {sub} not in {usage}"
    elif prog in BUILTINS:
        pytest.fail(f"{where}: `{command}`: a shell builtin with no entry in NOT_RUN")
    else:
        args = [PYTHON, words[1]] if prog == "python" else [prog]
        if prog == "python" and not (ROOT / words[1]).is_file():
            pytest.fail(f"{where}: `{command}`: {words[1]} does not exist")
        if shutil.which(args[0], path=PATH) is None:
            pytest.fail(f"{where}: `{command}`: {prog} is not installed; install it or "
                        "list the command in NOT_RUN (test_docs_commands.py) with why")  # fmt: skip
        if prog == "seqlab":  # its subcommand's help: `seqlab status --help`
            args += [w for w in words[1:] if not w.startswith("-")][:1]
            if args[-1] in READ_ONLY and "--watch" not in words:  # and the command itself
                extra = ["--results", str(tmp_path)] if args[-1] == "status" else []
                view = checkout_view(tmp_path)
                write_named_configs(doc, view)
                proc = run([*words, *extra], view, timeout=60)
                assert proc.returncode == 0, f"{where}: `{command}` failed: {proc.stderr}"
        proc = run([*args, "--help"], ROOT, timeout=60)
        assert proc.returncode == 0, f"{where}: `{' '.join(args)} --help` failed: {proc.stderr}"
        missing = options_missing(words, proc.stdout + proc.stderr)
        assert not missing, f"{where}: `{command}` uses {missing}, not in its --help"
