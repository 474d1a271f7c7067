"""Distributed data-parallel training (issue 6): real torch.distributed workers on gloo, loopback only.

The end-to-end tests start the real ``zoo`` command with ``--nproc 2`` (torch's elastic
launcher, two worker processes, DDP on the CPU) against a single-process run with the same
global batch; a third kills a worker mid-run and checks the one-line error and the time bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.conftest import VENV_BIN, run_zoo
from zoo.errors import ZooError

SMALL_RUN = ("--epochs", "6", "--batch-size", "32", "--val-every", "100", "--device", "cpu", "--json")
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # the same arithmetic as each worker (and fast on a busy 2-core box)


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    from zoo.data.digits import make_digits

    out = tmp_path_factory.mktemp("dist") / "digits"
    make_digits(out, per_class=30, seed=1, workers=1)
    return out


def _metrics(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout[proc.stdout.index("{"):])["metrics"]


def _val_accuracy(checkpoint: Path, data: Path) -> float:
    """Accuracy of a loaded checkpoint on the 25% per-label validation split of ``data``."""

    from zoo.classifier import load
    from zoo.data import open_dataset, split_each_label, to_tensors
    from zoo.preprocess import Preprocess

    classifier = load(checkpoint)
    tensors = to_tensors(open_dataset(data, "folder"), Preprocess.from_card(classifier.card))
    _, val = split_each_label(tensors.labels.numpy(), 0.75, seed=0)
    logits = classifier.logits_of_pixels(tensors.images[val])
    return float((logits.argmax(dim=1).numpy() == tensors.labels.numpy()[val]).mean())


# -- end to end ----------------------------------------------------------------------------------

def test_nproc2_trains_like_one_process(digits, tmp_path):
    debug = tmp_path / "ranks"
    two = run_zoo("train", "digitnet", "--data", str(digits), "--out", str(tmp_path / "two"), "--nproc", "2",
                  *SMALL_RUN, env={"ZOO_DIST_DEBUG_DIR": str(debug)}, timeout=120)
    one = run_zoo("train", "digitnet", "--data", str(digits), "--out", str(tmp_path / "one"), *SMALL_RUN,
                  env=ONE_THREAD, timeout=120)

    # one set of outputs, written by rank 0 alone (which alone holds the folder's lock), as one process writes
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == [".zoo.lock", "history.csv", "model.safetensors",
                                                                  "training-progress.png"]
    assert two.stdout.count('"metrics"') == 1  # one report, from rank 0
    m2, m1 = _metrics(two), _metrics(one)
    assert m2["train_images"] == m1["train_images"] == 230
    assert m2["iterations"] == m1["iterations"] == 6 * (230 // 32)  # the global batch keeps the schedule
    acc2 = _val_accuracy(tmp_path / "two" / "model.safetensors", digits)
    acc1 = _val_accuracy(tmp_path / "one" / "model.safetensors", digits)
    assert acc2 == pytest.approx(m2["val_acc"], abs=1e-5)  # the reduced metric is the loaded model's
    assert acc1 > 0.5 and abs(acc2 - acc1) <= 0.1, (acc1, acc2)  # BN sees 16 images per worker, not 32

    # every rank ends with the same weights and running statistics
    ranks = [json.loads((debug / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world_size"] == 2 and ranks[0]["local_batch"] == 16
    assert ranks[0]["state_sha256"] == ranks[1]["state_sha256"]
    from zoo.classifier import load
    from zoo.distributed import state_hash

    assert state_hash(load(tmp_path / "two" / "model.safetensors").module) == ranks[0]["state_sha256"]


def test_dead_worker_ends_the_run_with_one_line(digits, tmp_path):
    started = time.monotonic()
    proc = run_zoo("train", "digitnet", "--data", str(digits), "--out", str(tmp_path / "out"), "--nproc", "2",
                   "--epochs", "50", "--batch-size", "32", "--device", "cpu", "--no-progress",
                   env={"ZOO_DIST_FAIL_AT": "1:5"}, check=False, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: distributed training failed: worker 1 exited with code 3 after "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "model.safetensors").exists()
    assert elapsed < 90  # 50 epochs would take minutes; the launcher stops everything within seconds


def test_rendezvous_that_never_completes_times_out(digits, tmp_path):
    from zoo.distributed.launch import free_port

    started = time.monotonic()
    proc = run_zoo("train", "digitnet", "--data", str(digits), "--out", str(tmp_path / "out"), "--nproc", "1",
                   "--nnodes", "2", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--dist-timeout", "5",
                   "--device", "cpu", check=False, timeout=120)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the workers could not meet at 127.0.0.1:") and "within 5 s" in last, proc.stderr
    assert time.monotonic() - started < 60


# -- pieces --------------------------------------------------------------------------------------

def test_shard_order_splits_every_global_batch():
    import torch

    from zoo.distributed.trainer import shard_order

    order = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    shards = [shard_order(order, batches=4, local_batch=8, world=3, rank=r) for r in range(3)]
    assert all(len(s) == 32 for s in shards)
    for b in range(4):  # global batch b is exactly the union of the ranks' b-th local batches, in order
        glued = torch.cat([s[b * 8:(b + 1) * 8] for s in shards])
        assert torch.equal(glued, order[b * 24:(b + 1) * 24])


def test_env_from_environ():
    from zoo.distributed.env import DistEnv

    assert DistEnv.from_environ({}) == DistEnv(0, 1, 0, 1) and not DistEnv.from_environ({}).active
    env = DistEnv.from_environ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert env.active and not env.is_main and env.local_rank == 1
    with pytest.raises(ZooError, match="outside WORLD_SIZE"):
        DistEnv.from_environ({"RANK": "4", "WORLD_SIZE": "4"})


def test_worker_argv_repeats_what_the_user_typed():
    from zoo.cli.distributed import LAUNCH_PARAMS, distributed_options, worker_argv

    seen = {}

    @distributed_options
    @click.command("train")
    @click.argument("model")
    @click.option("--data")
    @click.option("--lr", type=float, default=None)
    @click.option("--tag", multiple=True)
    @click.option("--progress/--no-progress", default=None)
    @click.option("--resume", is_flag=True)
    def command(**values):
        seen["argv"] = worker_argv(click.get_current_context(), drop=LAUNCH_PARAMS)

    @click.group()
    def root():
        pass

    root.add_command(command)
    result = CliRunner().invoke(root, ["train", "--data", "a b", "--lr", "0.1", "--tag", "x", "--tag", "y",
                                       "--no-progress", "--sync-bn", "--nproc", "1", "--", "-weird"])
    assert result.exit_code == 0, result.output
    assert seen["argv"] == ["train", "--data=a b", "--lr=0.1", "--tag=x", "--tag=y", "--no-progress", "--sync-bn",
                            "--", "-weird"]


def test_launcher_arguments():
    from zoo.distributed.launch import launcher_args

    args = launcher_args(["train", "digitnet"], nproc=2)
    assert args[args.index("--nproc-per-node") + 1] == "2" and args[args.index("--max-restarts") + 1] == "0"
    assert args[args.index("--rdzv-endpoint") + 1].startswith("127.0.0.1:")
    assert args[-4:] == ["-m", "zoo", "train", "digitnet"]
    multi = launcher_args(["train"], nproc=4, nnodes="2", node_rank=1, rdzv_endpoint="head:29500",
                          rdzv_backend="static", timeout=30)
    assert multi[multi.index("--node-rank") + 1] == "1" and multi[multi.index("--rdzv-conf") + 1] == "timeout=30"
    with pytest.raises(ZooError, match="--rdzv-endpoint"):
        launcher_args(["train"], nproc=2, nnodes="2")
    with pytest.raises(ZooError, match="--nnodes"):
        launcher_args(["train"], nnodes="3:1")
    with pytest.raises(ZooError, match="--node-rank"):
        launcher_args(["train"], nnodes="2", rdzv_endpoint="h:1", rdzv_backend="static")


def test_worker_refuses_launch_options(digits, monkeypatch):
    from zoo.cli import cli

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    result = CliRunner().invoke(cli, ["train", "digitnet", "--data", str(digits), "--nproc", "2"])
    assert isinstance(result.exception, ZooError) and "already a worker started by torchrun" in str(result.exception)


@pytest.mark.slow
def test_plain_torchrun_runs_zoo(digits, tmp_path):
    """``torchrun -m zoo train ...`` without zoo's launcher: the same one checkpoint."""
    proc = subprocess.run(
        [str(VENV_BIN / "torchrun"), "--nproc-per-node", "2", "--standalone", "-m", "zoo", "train", "digitnet",
         "--data", str(digits), "--out", str(tmp_path / "out"), *SMALL_RUN],
        capture_output=True, text=True, timeout=180, env={**os.environ, "ZOO_DIST_DEBUG_DIR": str(tmp_path / "r")},
        stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "model.safetensors").is_file() and proc.stdout.count('"metrics"') == 1
    hashes = {json.loads(p.read_text())["state_sha256"] for p in (tmp_path / "r").glob("rank*.json")}
    assert len(hashes) == 1


@pytest.mark.slow
def test_ddp_without_batch_norm_equals_one_process(tmp_path):
    """LeNet-5 has no batch norm: two workers on half-batches must take the single process's steps."""
    import torch

    from zoo.checkpoint import load_state

    pytest.importorskip("zoo_plugin_example")
    from zoo.data.digits import make_digits

    data = tmp_path / "d32"
    make_digits(data, per_class=20, size=32, seed=2, workers=1)
    run = ("train", "lenet5", "--data", str(data), "--epochs", "3", "--batch-size", "20", "--device", "cpu",
           "--json", "--split", "1")
    run_zoo(*run, "--out", str(tmp_path / "two"), "--nproc", "2", timeout=180)
    run_zoo(*run, "--out", str(tmp_path / "one"), env=ONE_THREAD, timeout=180)
    two, one = load_state(tmp_path / "two" / "model.safetensors"), load_state(tmp_path / "one" / "model.safetensors")
    for name in one:
        assert torch.allclose(two[name], one[name], atol=1e-5), name


@pytest.mark.slow
def test_hung_worker_is_ended_by_the_collective_timeout(digits, tmp_path):
    """A worker that stops answering (not dying) ends the run after --dist-timeout, not never."""
    started = time.monotonic()
    proc = run_zoo("train", "digitnet", "--data", str(digits), "--out", str(tmp_path / "out"), "--nproc", "2",
                   "--epochs", "50", "--batch-size", "32", "--device", "cpu", "--no-progress", "--dist-timeout", "5",
                   env={"ZOO_DIST_FAIL_AT": "1:3:hang"}, check=False, timeout=150)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: distributed training failed: worker 0 lost contact"), proc.stderr
    assert any(line.startswith("error: worker 0 lost contact with the other workers at iteration 3") for line in lines)
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - started < 120


@pytest.mark.slow
def test_ctrl_c_stops_all_workers_at_one_iteration_and_resumes(digits, tmp_path):
    import signal

    out = tmp_path / "out"
    command = [str(VENV_BIN / "zoo"), "train", "digitnet", "--data", str(digits), "--out", str(out), "--nproc", "2",
               "--epochs", "60", "--batch-size", "32", "--device", "cpu", "--progress"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        for line in proc.stdout:  # rank 0's progress: training is under way
            if line.strip().startswith("1/60"):
                break
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    stops = [line.split(":", 1)[1] for line in stderr.splitlines() if "training interrupted at iteration" in line]
    assert len(stops) == 2 and stops[0] == stops[1], stderr  # both workers stopped after the same iteration
    assert "lost contact" not in stderr and "Traceback" not in stderr
    assert (out / "resume.safetensors").is_file() and not (out / "model.safetensors").exists()

    resumed = run_zoo(*command[1:-1], "--resume", "--no-progress", timeout=240, check=False)  # options come from the state
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "model.safetensors").is_file() and not (out / "resume.safetensors").exists()


def test_failure_line_blames_the_worker_that_failed_first():
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    from zoo.distributed.env import LOST_CONTACT_EXIT
    from zoo.distributed.launch import _failure_line

    def failure(rank, code):
        return ProcessFailure(local_rank=rank, pid=1000 + rank, exitcode=code, error_file="<N/A>")

    # worker 0 noticed the loss in the same monitor pass (same timestamp): worker 1 is still blamed
    both = ChildFailedError("zoo", {0: failure(0, LOST_CONTACT_EXIT), 1: failure(1, 3)})
    assert _failure_line(both, 4.0).startswith("distributed training failed: worker 1 exited with code 3 after 4.0 s")
    stopped = ChildFailedError("zoo", {0: failure(0, -15), 1: failure(1, 3)})  # 0 was stopped by the agent
    assert "worker 1 exited with code 3" in _failure_line(stopped, 1.0)
    killed = ChildFailedError("zoo", {1: failure(1, -9)})
    assert "worker 1 was killed by SIGKILL" in _failure_line(killed, 1.0)
    alone = ChildFailedError("zoo", {0: failure(0, LOST_CONTACT_EXIT)})
    assert "worker 0 lost contact with the other workers" in _failure_line(alone, 1.0)
