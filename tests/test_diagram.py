"""The network diagram (``zoo info NAME --plot FILE``, MATLAB's ``plot(lgraph)``): the graph taken
from torch (fx) and from ONNX (onnx alone), its layout, and the pictures written."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image
from small_fs import read_only_folder

from zoo.cli import main
from zoo.diagram import draw, network_graph, plot_network, write_diagram
from zoo.diagram.draw import BRANCH, network_figure
from zoo.diagram.graph import Layer, NetworkGraph, chain
from zoo.diagram.layout import GAP, WAYPOINT_WIDTH, place
from zoo.errors import ZooError

ORANGE = tuple(int(BRANCH[i:i + 2], 16) for i in (1, 3, 5))


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB")).astype(int)


def _has_colour(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 20) -> int:
    return int((np.abs(pixels - np.array(rgb)).max(axis=2) <= tolerance).sum())


def _warnings() -> tuple[list[str], callable]:
    lines: list[str] = []
    return lines, lines.append


# --- the graph from torch --------------------------------------------------------------------

def test_digitnet_is_a_chain_of_the_layers_zoo_info_lists():
    from zoo.resolver import resolve
    from zoo.summary import layer_table

    lines, warn = _warnings()
    model, card = resolve("digitnet")
    graph = network_graph((model, card), warn=warn)
    table = layer_table(model, card)
    assert lines == []
    assert graph.branches_shown and len(graph.layers) == 14  # the input and the 13 layers of the table
    assert graph.layers[0] == Layer("input", "Input", (1, 28, 28))
    assert [(layer.name, layer.type, layer.shape) for layer in graph.layers[1:]] == [
        (row.name, row.type, row.output_shape) for row in table.rows]
    assert graph.edges == [(i, i + 1) for i in range(13)]
    assert graph.merges() == []


def test_resnet18_has_its_eight_residual_additions_and_three_downsample_branches():
    lines, warn = _warnings()
    graph = network_graph("resnet18", warn=warn)
    names = graph.names()
    assert lines == []
    additions = [i for i, layer in enumerate(graph.layers) if layer.type == "add"]
    assert len(additions) == 8 and graph.merges() == additions
    assert all(len(graph.inbound(i)) == 2 for i in additions)
    assert names[additions[0]] == "layer1.0.add" and graph.layers[additions[0]].shape == (64, 56, 56)
    for stage in (2, 3, 4):  # block input -> downsample.0 -> downsample.1 -> the block's add
        conv, bn = names.index(f"layer{stage}.0.downsample.0"), names.index(f"layer{stage}.0.downsample.1")
        add = names.index(f"layer{stage}.0.add")
        assert graph.inbound(conv) == graph.inbound(names.index(f"layer{stage}.0.conv1"))
        assert graph.inbound(bn) == [conv] and bn in graph.inbound(add)
    assert sum("downsample.0" in name for name in names) == 3
    # a reused module is one layer per call, as it ran: layer1.0.relu after bn1, layer1.0.relu_1 after the add
    assert graph.inbound(names.index("layer1.0.relu_1")) == [additions[0]]


def test_resnet18_skips_are_drawn_beside_the_main_chain():
    graph = network_graph("resnet18", warn=_warnings()[1])
    placement = place(graph)
    spine = {placement.x[i] for i in range(len(graph.layers)) if "downsample" not in graph.layers[i].name}
    assert len(spine) == 1  # the main chain is one straight column
    for i in graph.merges():
        for source in graph.inbound(i):
            route = placement.routes[graph.edges.index((source, i))]
            if len(route) > 2:  # an identity skip: its own column, a box width away from the boxes it passes
                assert all(abs(x - placement.x[i]) > 0.5 for x, _ in route[1:-1])
    downsample = [i for i, layer in enumerate(graph.layers) if "downsample" in layer.name]
    assert all(abs(placement.x[i] - placement.x[0]) >= 1 for i in downsample)  # side by side with the chain


def test_a_timm_model_traces_with_timm_leaf_modules():
    lines, warn = _warnings()
    graph = network_graph("timm/convnext_atto", warn=warn)
    types = {layer.type for layer in graph.layers}
    assert lines == [] and graph.branches_shown
    assert {"LayerNorm2d", "GELU", "add", "Conv2d", "Linear"} <= types
    assert len(graph.merges()) == 12  # one residual add per ConvNeXt block: 2 + 2 + 6 + 2
    assert "stages.0.blocks.0.conv_dw" in graph.names()
    assert not {"getattr", "size", "Identity", "permute"} & types  # plumbing is folded away


class _Dynamic:
    """A network with control flow on a tensor's value: torch.fx cannot trace it."""

    @staticmethod
    def build():
        from torch import nn

        class Dynamic(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(1, 4, 3, padding=1)
                self.relu = nn.ReLU()
                self.fc = nn.Linear(4 * 8 * 8, 2)

            def forward(self, x):
                x = self.relu(self.conv(x))
                if x.sum() > 0:  # data-dependent: a TraceError under fx
                    x = x * 2
                return self.fc(x.flatten(1))

        return Dynamic()


@pytest.mark.fault("a network with control flow on tensor values (torch.fx cannot trace it) given to --plot",
                   "one warning line that branches are not shown; the layers drawn as a chain, in the order they ran")
def test_an_untraceable_network_is_drawn_as_its_layer_chain_with_a_warning(tmp_path):
    lines, warn = _warnings()
    graph = network_graph(_Dynamic.build(), input_shape=(1, 8, 8), warn=warn)
    assert len(lines) == 1 and "could not be traced" in lines[0] and "branches are not shown" in lines[0]
    assert not graph.branches_shown
    assert graph.names() == ["input", "conv", "relu", "fc"] and graph.edges == [(0, 1), (1, 2), (2, 3)]
    out = plot_network(_Dynamic.build(), tmp_path / "dynamic.png", input_shape=(1, 8, 8), warn=warn)
    assert _pixels(out).shape[0] > 300


# --- the graph from ONNX ---------------------------------------------------------------------

def _residual_onnx(path: Path) -> Path:
    """A TorchScript-style ONNX graph: conv -> relu -> add(input) -> flatten, the flatten's shape
    computed by Shape/Gather/Concat (plumbing), an Identity on the way."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.zeros((3, 3, 3, 3), np.float32), "w")
    minus_one = numpy_helper.from_array(np.array([-1], np.int64), "minus_one")
    zero = numpy_helper.from_array(np.array(0, np.int64), "zero")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="/block/block.0/conv1/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="/block/block.0/relu/Relu"),
        helper.make_node("Identity", ["r"], ["r2"], name="/block/block.0/Identity"),
        helper.make_node("Add", ["r2", "x"], ["a"], name="/block/block.0/Add"),
        helper.make_node("Shape", ["a"], ["s"], name="/Shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="/Gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "zero_axes"], ["n1"], name="/Unsqueeze"),
        helper.make_node("Concat", ["n1", "minus_one"], ["shape"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["a", "shape"], ["y"], name="/flatten/Reshape"),
    ]
    axes = numpy_helper.from_array(np.array([0], np.int64), "zero_axes")
    image = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    graph = helper.make_graph(nodes, "residual", [image],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[weight, minus_one, zero, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_an_onnx_graph_is_read_with_onnx_alone(tmp_path):
    path = _residual_onnx(tmp_path / "residual.onnx")
    code = ("import sys\nfrom zoo.diagram import network_graph\n"
            f"g = network_graph({str(path)!r}, warn=print)\n"
            "print([(l.name, l.type, l.shape) for l in g.layers]); print(g.edges)\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    layers, edges, torch_imported = _lines(done.stdout)
    assert eval(layers) == [("input", "Input", (3, 8, 8)), ("block.0.conv1", "Conv", (3, 8, 8)),
                            ("block.0.relu", "Relu", (3, 8, 8)), ("block.0.add", "Add", (3, 8, 8)),
                            ("flatten", "Reshape", ("?",))]  # inference cannot know the size
    assert eval(edges) == [(0, 1), (1, 2), (2, 3), (0, 3), (3, 4)]  # the skip from the input; no shape plumbing
    assert torch_imported == "False"


def test_zoo_info_plots_an_exported_onnx_file(onnx_file, tmp_path, capsys):
    out = tmp_path / "digitnet-onnx.png"
    main(["info", str(onnx_file), "--no-layers", "--plot", str(out)])
    assert f"wrote the diagram of 11 layers to {out}" in capsys.readouterr().out
    graph = network_graph(onnx_file)
    assert graph.title == "digitnet" and graph.layers[0].shape == (1, 28, 28)
    assert [layer.type for layer in graph.layers[1:4]] == ["Conv", "Relu", "MaxPool"]
    assert graph.layers[-1].shape == (10,)
    assert _has_colour(_pixels(out), (207, 226, 243)) > 1000  # the convolutions' blue boxes


# --- the pictures ----------------------------------------------------------------------------

def test_zoo_info_plots_a_checkpoint_as_a_valid_png(checkpoint, tmp_path, capsys):
    out = tmp_path / "digitnet.png"
    main(["info", str(checkpoint), "--plot", str(out)])
    printed = capsys.readouterr().out
    assert "Layers" in printed and f"wrote the diagram of 14 layers to {out}" in printed
    pixels = _pixels(out)
    height, width, _ = pixels.shape
    assert 350 <= width <= 1200 and 1000 <= height <= 3000  # one column of 14 boxes, readable
    ink = (pixels.min(axis=2) < 200).mean()
    assert 0.02 < ink < 0.5  # boxes, arrows and text: neither blank nor filled
    assert _has_colour(pixels, ORANGE) == 0  # a chain: no branches


def test_a_branching_network_is_taller_and_shows_its_skips_in_orange(tmp_path):
    small = plot_network("digitnet", tmp_path / "d.png")
    large = plot_network("resnet18", tmp_path / "r.png")
    d, r = _pixels(small), _pixels(large)
    assert r.shape[0] > 3 * d.shape[0] and r.shape[1] > d.shape[1]  # 70 layers in 67 rows; a second column
    assert _has_colour(r, ORANGE) > 2000


def test_the_suffix_chooses_svg(tmp_path, capsys):
    out = tmp_path / "d.SVG"
    main(["info", str(ROOT / "examples" / "lab6_layers.m"), "--no-layers", "--plot", str(out)])
    text = out.read_text(encoding="utf-8")
    root = ElementTree.fromstring(text.encode("utf-8"))  # well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "conv_1" in text and "BatchNorm2d" in text  # text stays text, searchable


@pytest.mark.fault("zoo info --plot with a file that is neither .png nor .svg",
                   "exit 2 before anything is built, one line naming the file and the two suffixes")
def test_another_suffix_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as ended:
        main(["info", "digitnet", "--plot", str(tmp_path / "d.jpg")])
    assert ended.value.code == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "--plot" in err[0] and ".png or .svg" in err[0] and "d.jpg" in err[0]
    with pytest.raises(ZooError, match=re.escape(f"a network diagram must be a file name ending in .png or .svg, "
                                                 f"not '{tmp_path / 'd.pdf'}'")):
        plot_network("no-such-model-is-built", tmp_path / "d.pdf")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.fault("zoo info --plot into a read-only folder",
                   "exit 3, one line 'cannot write FILE: the file system is read-only', nothing left there")
def test_an_unwritable_folder_is_one_line_exit_3(tmp_path, monkeypatch, capsys):
    with read_only_folder(tmp_path, monkeypatch) as folder:
        out = folder / "d.png"
        with pytest.raises(SystemExit) as ended:
            main(["info", "digitnet", "--no-layers", "--plot", str(out)])
        assert ended.value.code == 3
        err = _lines(capsys.readouterr().err)
        assert err == [f"error: cannot write '{out}': the file system is read-only; write somewhere else (--plot)"]
        assert list(folder.iterdir()) == []


def test_zoo_info_help_shows_plot_and_imports_neither_torch_nor_matplotlib():
    code = ("import sys\nfrom zoo.cli import main\ntry:\n    main(['info', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'matplotlib' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert "--plot FILE" in done.stdout and done.stderr.strip() == "False False"


# --- layout and size, on graphs made by hand (no torch) --------------------------------------

def test_a_fork_and_join_is_drawn_side_by_side_and_the_join_under_the_fork():
    layers = [Layer(name, "Conv2d", (8, 4, 4)) for name in ("in", "left", "right", "deep", "join")]
    graph = NetworkGraph("diamond", layers, [(0, 1), (0, 2), (1, 3), (3, 4), (2, 4)])
    placement = place(graph)
    assert placement.row == [0, 1, 1, 2, 3]
    assert placement.x[0] == placement.x[1] == placement.x[3] == placement.x[4]  # the longest path is straight
    assert abs(placement.x[2] - placement.x[1]) >= 1  # the branch beside it, not behind it
    route = placement.routes[graph.edges.index((2, 4))]
    assert len(route) == 3 and route[1][0] == placement.x[2]  # the short branch runs down its own column


def test_a_dense_block_shares_one_column_per_source():
    n = 12  # every layer reads all earlier ones, as DenseNet's concatenations do
    graph = NetworkGraph("dense", [Layer(f"l{i}", "cat", (4,)) for i in range(n)],
                         [(a, b) for b in range(1, n) for a in range(b)])
    placement = place(graph)
    assert len(set(placement.x)) == 1
    assert placement.right - placement.left < n * 0.5  # about one narrow column per source, not per edge


def test_the_figure_grows_with_the_network_up_to_its_cap(tmp_path, monkeypatch):
    def long(n: int) -> NetworkGraph:
        return chain("long", [Layer(f"layer{i}", "ReLU", (4,)) for i in range(n)], branches_shown=True)

    heights = [network_figure(long(n), place(long(n)))[0].get_size_inches()[1] for n in (10, 100, 300)]
    assert heights[0] < heights[1] < heights[2] <= draw.MAX_HEIGHT_IN  # resnet50's ~170 rows are drawn full size
    monkeypatch.setattr(draw, "MAX_HEIGHT_IN", 20.0)  # a smaller cap, so that a small graph reaches it
    figure, scale = network_figure(long(40), place(long(40)))
    assert 0.5 < scale < 1 and figure.get_size_inches()[1] <= 20.01
    lines, warn = _warnings()
    out = write_diagram(long(40), tmp_path / "long.png", warn=warn)
    assert len(lines) == 1 and "drawn at" in lines[0] and ".svg" in lines[0]
    assert _pixels(out).shape[0] <= 20.01 * draw.DPI


def test_boxes_in_a_row_never_overlap_on_random_networks():
    for seed in range(60):
        rnd = random.Random(seed)
        n = rnd.randint(2, 30)
        edges = {(i, i + 1) for i in range(n - 1)} if seed % 3 else set()
        edges |= {tuple(sorted(rnd.sample(range(n), 2))) for _ in range(rnd.randint(0, 2 * n))}
        graph = NetworkGraph("random", [Layer(f"l{i}", "Conv2d") for i in range(n)], sorted(edges))
        placement = place(graph)
        for row in set(placement.row):
            xs = sorted(x for x, r in zip(placement.x, placement.row) if r == row)
            assert all(b - a >= 1 + GAP - 1e-9 for a, b in zip(xs, xs[1:])), seed
        for (a, b), route in zip(graph.edges, placement.routes):  # each edge from its source to its target
            assert route[0] == (placement.x[a], placement.row[a]) and route[-1] == (placement.x[b], placement.row[b])
            assert [r for _, r in route] == list(range(placement.row[a], placement.row[b] + 1))
        waypoints = [x for route in placement.routes for x, _ in route[1:-1]]
        assert all(placement.left <= x - WAYPOINT_WIDTH / 2 and x + WAYPOINT_WIDTH / 2 <= placement.right
                   for x in waypoints)
