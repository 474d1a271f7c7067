"""zoo.layers: a MATLAB layer array as text -> spec (plain data) -> torch network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from zoo.errors import ZooError
from zoo.layers import (
    build_network,
    card_fields,
    describe,
    output_shapes,
    parse_layers,
    validate_layers,
)
from zoo.models.digitnet import digitnet

LECTURE = (Path(__file__).resolve().parents[1] / "examples" / "lab6_layers.m").read_text()  # the lecture's text
LECTURE_NAMES = ["imageinput", "conv_1", "batchnorm_1", "relu_1", "maxpool_1", "conv_2", "batchnorm_2", "relu_2",
                 "maxpool_2", "conv_3", "batchnorm_3", "relu_3", "fc", "softmax", "classoutput"]


def _parse(body: str) -> list[dict]:
    return parse_layers(f"layers = [\nimageInputLayer([8 8 1])\n{body}\n];", "net.m")


def _error(call, *args) -> str:
    with pytest.raises(ZooError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message and message
    return message


# -- the lecture's network ---------------------------------------------------------------------------

def test_the_lecture_array_from_a_file_builds_digitnet(tmp_path):
    path = tmp_path / "lab6.m"
    path.write_text(LECTURE)
    spec = parse_layers(path.read_text(), str(path))
    assert [layer["name"] for layer in spec] == LECTURE_NAMES
    assert spec[1] == {"type": "convolution2d", "name": "conv_1", "filter_size": [3, 3], "filters": 8,
                       "stride": [1, 1], "dilation": [1, 1], "padding": "same", "weight_learn_rate_factor": 1.0,
                       "bias_learn_rate_factor": 1.0, "line": 6}
    assert spec[5]["line"] == 12 and spec[6]["line"] == 14  # the call continued with '...' counts from its start
    net = build_network(spec)
    assert sum(p.numel() for p in net.parameters()) == 21_690
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    reference = digitnet().state_dict()
    assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in reference.items()}
    assert card_fields(spec) == {"input_size": (28, 28), "channels": 1, "num_classes": 10,
                                 "normalization": "zerocenter", "parameters": 21_690}
    assert output_shapes(spec)[:5] == [(1, 28, 28), (8, 28, 28), (8, 28, 28), (8, 28, 28), (8, 14, 14)]
    assert output_shapes(spec)[-3:] == [(10,), (10,), (10,)]


def test_describe_reads_like_matlab_net_layers():
    lines = describe(parse_layers(LECTURE, "lab6.m"))
    assert len(lines) == 15
    assert lines[0].split() == ["1", "'imageinput'", "Image", "Input", "28×28×1", "images", "with", "'zerocenter'",
                                "normalization"]
    assert " ".join(lines[1].split()) == "2 'conv_1' Convolution 8 3×3 convolutions with stride [1 1] and padding 'same'"
    assert "2×2 max pooling with stride [2 2] and padding [0 0 0 0]" in lines[4]
    assert lines[12].endswith("10 fully connected layer") and lines[14].endswith("crossentropyex")
    assert lines[0].index("Image Input") == lines[1].index("Convolution") == lines[14].index("Classification")


def test_num_classes_replaces_the_last_fully_connected_output():
    spec = parse_layers(LECTURE)
    net = build_network(spec, num_classes=2)
    assert net(torch.zeros(1, 1, 28, 28)).shape == (1, 2) and net.fc.out_features == 2
    assert spec[-3]["output_size"] == 10  # the spec passed in is not changed
    assert "num_classes" in _error(lambda: build_network(spec, num_classes=0))


def test_a_spec_round_trips_through_json():
    spec = _parse("convolution2dLayer([3 5],4,'Padding',[1 0 2 1],'Stride',[2 1])\nleakyReluLayer(0.2)\n"
                  "averagePooling2dLayer(2,'Padding','same')\ndropoutLayer(0.25)\n"
                  "fullyConnectedLayer(6,'WeightLearnRateFactor',2,'BiasLearnRateFactor',0)\nreluLayer\n"
                  "fullyConnectedLayer(3)")
    again = validate_layers(json.loads(json.dumps(spec)))
    assert again == spec
    assert spec[5]["weight_learn_rate_factor"] == 2.0 and spec[5]["bias_learn_rate_factor"] == 0.0
    one, two = build_network(spec).state_dict(), build_network(again).state_dict()
    assert {k: v.shape for k, v in one.items()} == {k: v.shape for k, v in two.items()}


# -- names -----------------------------------------------------------------------------------------

def test_default_names_follow_matlab():
    spec = _parse("convolution2dLayer(3,4)\nreluLayer\nleakyReluLayer\naveragePooling2dLayer(2)\n"
                  "globalAveragePooling2dLayer\ndropoutLayer\nfullyConnectedLayer(5)\nreluLayer\n"
                  "fullyConnectedLayer(2)\nsoftmaxLayer\nclassificationLayer")
    assert [layer["name"] for layer in spec] == [
        "imageinput", "conv", "relu_1", "leakyrelu", "avgpool", "gapool", "dropout", "fc_1", "relu_2", "fc_2",
        "softmax", "classoutput"]
    names = [name for name, _ in build_network(spec).named_children()]
    assert names == ["conv", "relu_1", "leakyrelu", "avgpool", "gapool", "dropout", "flatten", "fc_1", "relu_2",
                     "fc_2"]


def test_a_name_option_wins_and_defaults_avoid_it():
    spec = _parse("convolution2dLayer(3,4,'name','conv_2')\nconvolution2dLayer(3,4)\nconvolution2dLayer(3,4)\n"
                  "reluLayer(Name='flatten')\nreluLayer('Name','')\nfullyConnectedLayer(2,\"Name\",\"head\")")
    assert [layer["name"] for layer in spec][1:] == ["conv_2", "conv_1", "conv_3", "flatten", "relu", "head"]
    assert "flatten_1" in dict(build_network(spec).named_children())


# -- syntax ----------------------------------------------------------------------------------------

def test_syntax_variants():
    text = """
    %{
    a block comment: reluLayer
    %}
    imageInputLayer([32,32,3], 'normalization', "none"), convolution2dLayer(5, 6, 'NAME', 'c%1'); reluLayer
    dropoutLayer(5e-1) ; fullyConnectedLayer(1e1)  % a comment with 'quotes'
    """
    spec = parse_layers(text)
    assert [layer["type"] for layer in spec] == ["imageinput", "convolution2d", "relu", "dropout", "fullyconnected"]
    assert spec[0]["input_size"] == [32, 32, 3] and spec[0]["normalization"] == "none"
    assert spec[1]["name"] == "c%1" and spec[3]["probability"] == 0.5 and spec[4]["output_size"] == 10
    one_line = parse_layers("layers = [imageInputLayer([28 28]', 'Name', 'in') fullyConnectedLayer(10...\n) softmaxLayer];")
    assert one_line[0]["input_size"] == [28, 28, 1] and one_line[0]["name"] == "in" and len(one_line) == 3
    assert one_line[1]["output_size"] == 10


# -- shapes against torch --------------------------------------------------------------------------

@pytest.mark.parametrize("size, body", [
    (27, "convolution2dLayer(3,4,'Padding','same','Stride',2)"),  # ceil(27 / 2) = 14, asymmetric padding
    (27, "convolution2dLayer(4,4,'Padding','same')"),  # even filter: the extra row at the bottom
    (27, "convolution2dLayer([3 5],4,'Padding',[1 0 2 1],'Stride',[2 1])"),
    (27, "convolution2dLayer(3,4,'DilationFactor',2,'Padding','same','Stride',3)"),
    (27, "maxPooling2dLayer(3,'Stride',2,'Padding','same')"),
    (27, "averagePooling2dLayer(2)"),  # MATLAB's default stride is 1
    (10, "maxPooling2dLayer(2,'Stride',2,'Padding',[0 1 0 1])"),
    (10, "averagePooling2dLayer(3,'Padding',1)\nglobalAveragePooling2dLayer\nbatchNormalizationLayer"),
    (9, "fullyConnectedLayer(7)\nbatchNormalizationLayer\nleakyReluLayer(0.1)"),
])
def test_shapes_and_parameters_match_torch(size, body):
    spec = parse_layers(f"imageInputLayer([{size} {size + 1} 3])\n{body}\nfullyConnectedLayer(2)", "t.m")
    net = build_network(spec).eval()
    modules = dict(net.named_children())
    x = torch.randn(2, 3, size, size + 1)
    for layer, expected in zip(spec[1:], output_shapes(spec)[1:]):
        for name in [n for n in modules if n.startswith("flatten")] if layer["type"] == "fullyconnected" else []:
            x = modules.pop(name)(x)
        x = modules[layer["name"]](x)
        assert tuple(x.shape[1:]) == expected, layer
    assert card_fields(spec)["parameters"] == sum(p.numel() for p in net.parameters())


def test_max_pooling_pads_with_minus_infinity():
    spec = parse_layers("imageInputLayer([5 5 1])\nmaxPooling2dLayer(2,'Stride',2,'Padding','same')\n"
                        "fullyConnectedLayer(1)")
    pool = build_network(spec).maxpool
    assert (pool(-torch.ones(1, 1, 5, 5)) == -1).all()  # not 0 from zero padding


# -- errors: one line, naming the file and the line --------------------------------------------------

@pytest.mark.parametrize("body, line, expected", [
    ("convolution3dLayer(3,8)", 3, "unknown layer 'convolution3dLayer' (did you mean 'convolution2dLayer'?"),
    ("convolution2dLayer(3,8,'Paddin','same')", 3, "unknown option 'Paddin' (did you mean 'Padding'?)"),
    ("convolution2dLayer(3)", 3, "convolution2dLayer: missing required argument numFilters"),
    ("maxPooling2dLayer", 3, "missing required argument poolSize"),
    ("reluLayer\nconvolution2dLayer(3,8,'Stride','two')", 4, "'Stride' must be an integer from 1 to 1024"),
    ("convolution2dLayer(3,-8)", 3, "numFilters must be an integer from 1 to 65,536, not -8"),
    ("dropoutLayer(1)", 3, "probability must be a number from 0 to below 1"),
    ("x = 3", 3, "'x = ...' is not a layer"),
    ("3", 3, "expected a layer, found 3"),
    ("fullyConnectedLayer(numClasses)", 3, "numClasses is a variable"),
    ("reluLayer('Name','a.b')", 3, "layer name 'a.b' contains '.'"),
    ("reluLayer('Name','forward')", 3, "'forward' is an nn.Module attribute"),
    ("reluLayer('Name','fc')", 4, "duplicate layer name 'fc' (also line 3)"),
    ("convolution2dLayer(3,8,16)", 3, "too many arguments"),
    ("reluLayer('Name')", 3, "option 'Name' has no value"),
    ("reluLayer('Name','a','name','b')", 3, "option 'Name' is given twice"),
    ("convolution2dLayer(3,8,'Padding','same'\nreluLayer", 3, "expected ',' or ')'"),
    ("reluLayer('Name','it)", 3, "unterminated string"),
    ("softmaxLayer", 3, "softmaxLayer may only come at the end"),
    ("classificationLayer", 3, "classificationLayer may only come at the end"),
    ("maxPooling2dLayer(9)", 3, "window does not fit the 8×8 input"),
    ("maxPooling2dLayer(2,'Padding',2)", 3, "must be smaller than poolSize"),
    ("imageInputLayer([8 8 1])", 3, "imageInputLayer may only come first"),
])
def test_errors_name_the_file_and_line(body, line, expected):
    text = f"layers = [\nimageInputLayer([8 8 1])\n{body}\nfullyConnectedLayer(2,'Name','fc')\n];"
    message = _error(parse_layers, text, "lab6.m")
    assert message.startswith(f"lab6.m:{line}: ") and expected in message, message


@pytest.mark.parametrize("text, expected", [
    ("imageInputLayer([28 28 4])\nfullyConnectedLayer(2)", "lab6.m:1: imageInputLayer: inputSize must have 1"),
    ("imageInputLayer([28 28],'Normalization','center')\nfullyConnectedLayer(2)", "lab6.m:1: imageInputLayer: "
     "'Normalization' must be one of"),
    ("reluLayer\nfullyConnectedLayer(2)", "lab6.m:1: the first layer must be an imageInputLayer"),
    ("imageInputLayer([28 28])\nreluLayer", "lab6.m:2: the network needs a fullyConnectedLayer"),
    ("imageInputLayer([28 28])\nfullyConnectedLayer(2)\nclassificationLayer", "lab6.m:3: classificationLayer must "
     "follow a softmaxLayer"),
    ("imageInputLayer([28 28])\nfullyConnectedLayer(2)\nsoftmaxLayer\nreluLayer", "lab6.m:4: reluLayer after the "
     "last fullyConnectedLayer"),
    ("imageInputLayer([28 28])\nfullyConnectedLayer(5)\nmaxPooling2dLayer(2)\nfullyConnectedLayer(2)",
     "lab6.m:3: maxPooling2dLayer needs an image input, but gets a vector of 5 values"),
    ("layers = [\nimageInputLayer([28 28])\nfullyConnectedLayer(2)\n", "lab6.m:4: missing ']'"),
    ("layers = [imageInputLayer([28 28]) fullyConnectedLayer(2)];\noptions = trainingOptions('sgdm');",
     "lab6.m:2: only the layer array is read; found options after its ']'"),
    ("imageInputLayer([28 28]) @", "lab6.m:1: unexpected character '@'"),
    ("% nothing here", "lab6.m: no layers found"),
])
def test_network_errors_name_the_file_and_line(text, expected):
    message = _error(parse_layers, text, "lab6.m")
    head, _, tail = expected.partition(" ... ")
    assert message.startswith(head) and tail in message, message


# -- stored specs (untrusted) ----------------------------------------------------------------------------

def _tampered(change) -> list:
    spec = json.loads(json.dumps(parse_layers(LECTURE)))
    change(spec)
    return spec


@pytest.mark.parametrize("change, expected", [
    (lambda s: s[3].update(type="rm -rf"), "layer 4 'relu_1' (line 8): unknown layer type 'rm -rf'"),
    (lambda s: s[1].update(filter_size=[-3, 3]), "layer 2 'conv_1' (line 6): convolution2dLayer: filterSize must"),
    (lambda s: s[9].update(filters=65_536) or s[12].update(output_size=100_000),
     "layer 13 'fc' (line 23): fullyConnectedLayer: the network would hold 321,"),
    (lambda s: s[9].update(filter_size=1024, filters=65_536), "more than zoo's limit of 500,000,000"),
    (lambda s: s.pop(0), "layer 1 'conv_1' (line 6): the first layer must be an imageInputLayer"),
    (lambda s: s.insert(5, {"type": "softmax"}), "layer 6: softmaxLayer may only come at the end"),
    (lambda s: s.insert(2, "relu"), "layer 3: a layer must be a table, not 'relu'"),
    (lambda s: s.insert(2, None), "layer 3: a layer must be a table"),
    (lambda s: s[3].update(name="a.b"), "layer 4 'a.b' (line 8): reluLayer: layer name 'a.b' contains '.'"),
    (lambda s: s[3].update(name="x" * 201), "'Name' must be printable text of at most 200 characters"),
    (lambda s: s[3].update(name="a\nb"), "'Name' must be printable text"),
    (lambda s: s[3].update(extra="1"), "reluLayer: unknown key 'extra'"),
    (lambda s: s[1].update(stride=True), "'Stride' must be an integer"),
    (lambda s: s[1].update(padding="valid"), "'Padding' must be 'same'"),
    (lambda s: s[0].update(input_size=[9000, 28, 1]), "inputSize must be [h w] or [h w c]"),
    (lambda s: s[0].update(line="7"), "line must be a line number"),
    (lambda s: s.extend([{"type": "relu"}] * 1000), "a network needs 1 to 1000 layers"),
])
def test_validate_refuses_a_tampered_spec(change, expected):
    message = _error(validate_layers, _tampered(change))
    assert expected in message, message


def test_validate_refuses_what_is_not_a_list_and_accepts_a_minimal_spec():
    assert "layers must be a list" in _error(validate_layers, {"type": "relu"})
    assert "layers: a network needs 1 to 1000 layers, not 0" == _error(validate_layers, [])
    spec = validate_layers([{"type": "imageinput", "input_size": [4, 4]}, {"type": "fullyconnected",
                                                                          "output_size": 3}])
    assert spec[0] == {"type": "imageinput", "name": "imageinput", "input_size": [4, 4, 1],
                       "normalization": "zerocenter"}
    assert validate_layers(spec) == spec


def test_reserved_names_cover_this_torchs_module_attributes():
    for name in dir(nn.Sequential()):
        message = _error(validate_layers, [{"type": "imageinput", "input_size": [4, 4]},
                                           {"type": "fullyconnected", "output_size": 3, "name": name}])
        assert "torch refuses" in message, name


def test_import_zoo_layers_imports_no_torch():
    code = ("import sys, zoo.layers as layers\n"
            "layers.describe(layers.parse_layers(sys.stdin.read()))\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "layers.build_network\n"
            "assert 'torch' in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], input=LECTURE, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
