"""Every option of every command is checked before any work starts.

The table below names, for each option that takes a value, which of the standard probes
(0, -1, nan, inf, '' and 'abc') it accepts, and values of its own it accepts or refuses.
The options are enumerated from the click commands themselves: a new option without a row
here fails :func:`test_every_option_has_a_row`.

A refused value is tried with real, valid other arguments (the ``digits`` and ``checkpoint``
fixtures), so the work would start if the check came late: the command must end with exit 2
and one line naming the option, having written nothing. An accepted value is given alone,
without the command's required arguments: click checks it, then stops at the first missing
argument, so the line must be about that argument (``zoo list`` has none and simply runs).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import click
import pytest

from zoo.cli import COMMANDS, cli, main

STANDARD = ("0", "-1", "nan", "inf", "", "abc")


class Probes(NamedTuple):
    ok: str = ""  # the standard probes the option accepts, space-separated ('' is refused everywhere)
    good: tuple[str, ...] = ()  # values of its own it accepts
    bad: tuple[str, ...] = ()  # values of its own it refuses


TEXT = Probes(ok="0 -1 nan inf abc")  # names, paths: only the empty text is refused
CHOICE = Probes()
COUNT = Probes(good=("1", "7"), bad=("2.5", "1e3"))
SEED = Probes(ok="0", good=("4294967295",), bad=("4294967296", "1.5"))
CLASSES = Probes(good=("10",), bad=("100001",))

TRAINING = {
    "--data": TEXT, "--val": TEXT, "--adapter": TEXT, "--out": TEXT, "--weights": TEXT,
    "--solver": Probes(good=("adam",)), "--lr-schedule": CHOICE, "--shuffle": CHOICE, "--device": CHOICE,
    "--epochs": COUNT, "--lr-drop-period": COUNT, "--batch-size": COUNT, "--val-every": COUNT,
    "--lr": Probes(good=("1e-3",), bad=("1e400", "-inf")),
    "--lr-drop-factor": Probes(good=("1", "0.5"), bad=("1.5",)),
    "--momentum": Probes(ok="0", good=("0.9",), bad=("1",)),
    "--l2": Probes(ok="0", good=("1e-4",)),
    "--split": Probes(good=("1", "0.75"), bad=("1.5",)),
    "--seed": SEED,
    "--augment": Probes(good=("none", "flip,rotate=10,scale=0.9:1.1,translate=3", "rotate=-10:20"),
                        bad=("scale=0:0", "scale=nan", "rotate=nan", "translate=inf", "rotate=400", "translate=20000",
                             "scale=1.2:0.8", "scale=2", "scale=-0.9", "spin=3", "flip=1", "rotate=")),
    "--cache": Probes(good=("disk", "memory", "none")),
    "--workers": Probes(ok="0", good=("2", "256"), bad=("257",)),
    # zoo.cli.distributed
    "--nproc": Probes(good=("1", "2"), bad=("1025",)),
    "--nnodes": Probes(good=("1", "1:4"), bad=("2:1", "0:2")),
    "--node-rank": Probes(ok="0", good=("3",)),
    "--rdzv-endpoint": Probes(good=("127.0.0.1:29500", "[::1]:29500"), bad=("host:", "host:70000", ":29500")),
    "--rdzv-backend": Probes(good=("static",)),
    "--dist-timeout": Probes(good=("30",), bad=("1e300",)),
}

TABLE: dict[str, dict[str, Probes]] = {
    "list": {"--source": TEXT, "--tag": TEXT},
    "info": {"--network": TEXT, "--plot": Probes(good=("d.png", "d.svg", "D.PNG"), bad=("d.jpg", "d", "d.pdf"))},
    "plugins": {},
    "doctor": {},
    "data make-digits": {
        "--per-class": COUNT, "--seed": SEED, "--style": Probes(good=("lecture",)),
        "--size": Probes(good=("8", "512"), bad=("7", "513")),
        "--fonts": Probes(good=(".",)),  # must exist: the probes name nothing in the empty work folder
        "--workers": Probes(good=("1", "256"), bad=("257",)),
    },
    "data make-faces": {},
    "data shard": {"--shard-size": COUNT},
    "data show": {"--adapter": TEXT, "--out": TEXT, "--seed": SEED,
                  "--count": Probes(good=("1", "1000"), bad=("1001",))},
    "data check": {"--adapter": TEXT},
    "train": {**TRAINING, "--classes": CLASSES, "--channels": Probes(good=("1", "3"), bad=("2",)),
              "--input-size": Probes(good=("28", "224x224", "28×28"), bad=("28x0", "9000", "28x28x3"))},
    "finetune": {**TRAINING, "--classes": CLASSES, "--freeze": Probes(good=("none",)),
                 "--head-lr-factor": Probes(good=("10",), bad=("1e999",))},
    "evaluate": {"--data": TEXT, "--adapter": TEXT, "--plot": TEXT, "--network": TEXT, "--part": CHOICE,
                 "--device": CHOICE, "--batch-size": COUNT, "--seed": SEED,
                 "--cache": Probes(good=("disk", "memory", "none")),
                 "--workers": Probes(ok="0", good=("2", "256"), bad=("257",)),
                 "--split": Probes(good=("0.75", "50", "1"), bad=("1.5", "1.0"))},
    "predict": {"--top-k": COUNT, "--weights": TEXT, "--device": CHOICE, "--network": TEXT,
                "--show": Probes(good=("p.png", "p.svg", "P.PNG"), bad=("p.jpg", "p.png.txt")),
                "--title": Probes(ok="0 -1 nan inf abc", good=("The digit is {label} ({score})", "{probability:.3f}"),
                                  bad=("{digit}", "{label", "{0}", "{score:.2f}"))},
    "features": {"--layer": TEXT, "--data": TEXT, "--out": TEXT, "--adapter": TEXT, "--weights": TEXT,
                 "--batch-size": COUNT, "--device": CHOICE, "--network": TEXT},
    "export": {"--out": TEXT, "--network": TEXT, "--quantize": Probes(good=("int8", "int8-dynamic", "auto")),
               "--optimize": Probes(good=("auto", "none", "basic", "extended", "transformer")),
               "--max-accuracy-drop": Probes(ok="0", good=("0.5", "100"), bad=("100.5",)),
               "--exporter": Probes(good=("torchscript",)),
               "--opset": Probes(good=("7", "23"), bad=("6", "24", "17.5")),
               "--batch": Probes(good=("dynamic", "4"), bad=("2.5",)),
               "--calibration": Probes(good=(".",), bad=("missing",)),
               "--tolerance": Probes(ok="0", good=("1e-3",))},
    "bench": {"--batch": Probes(good=("1,32", "4"), bad=("1,0", "1,abc", "2.5")),
              "--runtime": Probes(good=("torch", "torch,onnxruntime", "onnxruntime-int8"), bad=("torch,abc",)),
              "--iters": COUNT, "--seconds": Probes(good=("0.5",), bad=("1e400",)),
              "--threads": Probes(good=("1", "1024"), bad=("1025",)),
              "--providers": Probes(good=("auto", "cpu", "cuda", "CPUExecutionProvider"), bad=("cpu,gpu",)),
              "--device": CHOICE, "--network": TEXT,
              "--max-accuracy-drop": Probes(ok="0", good=("0.5", "100"), bad=("100.5",))},
}


def _commands() -> dict[str, click.Command]:
    """Every command by its path after 'zoo': the top level ones and each group's subcommands."""
    ctx = click.Context(cli)
    found: dict[str, click.Command] = {}
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found.update({f"{name} {sub}": command.commands[sub] for sub in command.commands})
        else:
            found[name] = command
    return found


def _flag(option: click.Option) -> str:
    return next(o for o in option.opts if o.startswith("--"))


def _value_options(command: click.Command) -> list[str]:
    return [_flag(p) for p in command.params
            if isinstance(p, click.Option) and not p.is_flag and not p.count and not p.hidden]


def _cases(refused: bool) -> list[tuple[str, str, str]]:
    cases = []
    for path, options in TABLE.items():
        for flag, probes in options.items():
            accepted = set(probes.ok.split())
            values = [(v, v not in accepted) for v in STANDARD]
            values += [(v, False) for v in probes.good] + [(v, True) for v in probes.bad]
            cases += [(path, flag, v) for v, bad in values if bad == refused]
    return cases


def _valid_arguments(path: str, digits: Path, checkpoint: Path) -> list[str]:
    """A command line that starts real work: the probe, added last, replaces any value given here."""
    image = str(next(digits.glob("0/*.png")))
    train = ["--data", str(digits), "--epochs", "1", "--out", "run"]
    return {
        "list": [], "info": ["digitnet"],
        "data make-digits": ["made", "--per-class", "1", "--workers", "1"],
        "data show": [str(digits), "--out", "montage.png"], "data check": [str(digits)],
        "data shard": [str(digits), "shards"],
        "train": ["digitnet", *train],
        "finetune": ["digitnet", *train, "--classes", "10", "--weights", "none"],
        "evaluate": [str(checkpoint), "--data", str(digits), "--split", "0.75", "--plot", "chart.png"],
        "predict": [str(checkpoint), image],
        "features": [str(checkpoint), "--layer", "fc", "--data", str(digits), "--out", "features.npz"],
        "export": [str(checkpoint), "--out", "model.onnx"],
        "bench": [str(checkpoint), "--runtime", "torch", "--batch", "1", "--iters", "3", "--seconds", "0.1"],
    }[path]


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    """In-process ``zoo ARGV``: (exit status, stdout, stderr)."""
    try:
        main(argv)
        code = 0
    except SystemExit as ended:
        code = ended.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def _work_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("work")


@pytest.fixture
def work(_work_folder, monkeypatch) -> Iterator[Path]:
    """An empty current folder: relative outputs (and runs/) would land here. One for the module
    (a tmp_path per probe would cost more than the probe), emptied after each test."""
    monkeypatch.chdir(_work_folder)
    yield _work_folder
    for item in _work_folder.iterdir():
        shutil.rmtree(item) if item.is_dir() else item.unlink()


def test_every_option_has_a_row():
    commands = _commands()
    assert set(commands) == set(TABLE), "commands without a row in TABLE (or rows without a command)"
    for path, command in commands.items():
        options = _value_options(command)
        assert sorted(options) == sorted(TABLE[path]), f"zoo {path}: options and TABLE differ"
        if path in ("train", "finetune", "evaluate", "bench", "export"):
            assert options, path  # the enumeration really finds options


@pytest.mark.fault("every option of every command given 0, -1, nan, inf, '' or 'abc', and values of its own "
                   "(--augment scale=0:0, --split 1.5, --opset 24, --batch 1,0, --seed 4294967296, ...)",
                   "refused before any work: one line 'error: Invalid value for' naming the option and what it "
                   "must be, exit 2, no traceback, nothing written")
@pytest.mark.parametrize(("path", "flag", "value"), _cases(refused=True))
def test_refused_before_any_work(path, flag, value, digits, checkpoint, work, capsys):
    beside_checkpoint = sorted(p.name for p in checkpoint.parent.iterdir())
    argv = [*path.split(), *_valid_arguments(path, digits, checkpoint), f"{flag}={value}"]
    code, out, err = _run(capsys, argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (argv, err)
    assert len(lines) == 1 and lines[0].startswith("error: Invalid value for") and flag in lines[0], err
    assert "Traceback" not in err and out == ""
    assert list(work.iterdir()) == [], "something was written"
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == beside_checkpoint


@pytest.mark.parametrize(("path", "flag", "value"), _cases(refused=False))
def test_accepted_value_passes_the_check(path, flag, value, work, capsys):
    code, out, err = _run(capsys, [*path.split(), f"{flag}={value}"])
    lines = [line for line in err.splitlines() if line.strip()]
    if path == "list":  # no required argument: it runs
        assert code == 0 and not any(line.startswith("error:") for line in lines), err
        return
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: Missing "), (flag, value, err)
    assert list(work.iterdir()) == []


@pytest.mark.fault("the Python API given nan, inf or out-of-range values: TrainOptions (zoo.train's keywords), "
                   "zoo.export.export, zoo.bench.bench, AugmentSpec.parse",
                   "ZooError naming the option, one line, before any model or data is opened")
@pytest.mark.parametrize(("call", "message"), [
    (lambda: _train_options(lr=math.inf), "--lr must be a positive number, not inf"),
    (lambda: _train_options(lr=math.nan), "--lr must be a positive number, not nan"),
    (lambda: _train_options(momentum=math.nan), "--momentum must be in [0, 1)"),
    (lambda: _train_options(l2=-math.inf), "--l2 must be zero or a positive number"),
    (lambda: _train_options(epochs=2.5), "--epochs must be a whole number from 1 up, not 2.5"),
    (lambda: _train_options(batch_size=math.inf), "--batch-size must be a whole number from 1 up, not inf"),
    (lambda: _train_options(seed=-1), "--seed must be a whole number from 0 to 4294967295, not -1"),
    (lambda: _train_options(split=math.nan), "--split must be in (0, 1]"),
    (lambda: _train_options(augment="scale=0:0"), "--augment: 'scale=0:0' must be positive numbers LOW:HIGH"),
    (lambda: _train_options(augment="rotate=nan"), "--augment: 'rotate=nan' must be degrees"),
    (lambda: _train_options(augment=""), "--augment: must be none or a list"),
    (lambda: _export(opset=math.nan), "--opset must be a whole number from 7 to 23"),
    (lambda: _export(batch=math.inf), "--batch must be 'dynamic' or a whole number from 1 up, not inf"),
    (lambda: _export(tolerance=math.inf), "--tolerance must be 0 (exact equality) or a positive finite number"),
    (lambda: _bench(seconds=math.nan), "--seconds must be a positive number of seconds, not nan"),
    (lambda: _bench(iters=0), "--iters must be a whole number from 1 up, not 0"),
    (lambda: _bench(batches=[1, 0]), "--batch must be whole numbers from 1 up"),
    (lambda: _bench(threads=0), "--threads must be a whole number from 1 to 1024, not 0"),
    (lambda: _bench(providers="gpu"), "--providers must be one or more of auto, cpu, cuda"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_python_api_refuses_the_same_values(call, message):
    from zoo.errors import ZooError

    with pytest.raises(ZooError) as error:
        call()
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def _train_options(**values):
    from zoo.training import TrainOptions

    return TrainOptions(**values)


def _export(**options):
    from zoo.export import export

    return export("no-such-model", "x.onnx", **options)  # the name would fail later: options come first


def _bench(**options):
    from zoo.bench import bench

    return bench("no-such-model", **options)


def test_augment_ranges_parse_as_before():
    from zoo.data.augment import AugmentSpec

    spec = AugmentSpec.parse("flip, rotate=10, scale=0.9, translate=-3:5")
    assert spec.x_reflection and spec.rotation == (-10.0, 10.0) and spec.x_translation == (-3.0, 5.0)
    assert spec.scale == pytest.approx((0.9, 1.1)) and not AugmentSpec.parse("none").active
