"""``atc-whisper train`` through the real entry point: failures, stop + resume, torchrun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atc_whisper.data.catalogue import Catalogue
from train_helpers import copy_workspace, make_catalogue

FAST = ["--no-progress", "--set", "model.threads=2", "--set", "train.logging_steps=1", "--lr", "1e-4"]


@pytest.fixture(scope="module")
def base_ws(tmp_path_factory, synth_clip):
    return make_catalogue(tmp_path_factory.mktemp("cli") / "ws", synth_clip)


# -- runs that cannot start fail fast, before any model is loaded ---------------------------------


def test_no_catalogue_fails_before_loading(workspace, run_cli) -> None:
    result = run_cli("train", "-w", str(workspace.root))
    assert result.returncode == 1
    assert "Error: no catalogue" in result.stderr and "atc-whisper prepare" in result.stderr
    assert "Traceback" not in result.stderr
    assert not workspace.pretrained_dir.exists()  # no model was resolved


def test_empty_train_split_fails_before_loading(tmp_path, synth_clip, run_cli) -> None:
    ws = make_catalogue(tmp_path / "ws", synth_clip, splits=["dev", "test"])
    result = run_cli("train", "-w", str(ws.root))
    assert result.returncode == 1
    assert "train split" in result.stderr and "empty" in result.stderr
    assert not ws.pretrained_dir.exists() and not ws.cache_dir.exists()


def test_missing_model_fails_with_clear_error(tmp_path, base_ws, run_cli) -> None:
    ws = copy_workspace(base_ws, tmp_path / "ws")
    result = run_cli("train", "-w", str(ws.root), "--model", str(tmp_path / "no-such-model"))
    assert result.returncode == 1
    assert result.stderr.startswith("Error:") and "no-such-model" in result.stderr
    assert "Traceback" not in result.stderr
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        assert catalogue.runs("train") == []  # nothing recorded for a run that never started


def test_resume_without_checkpoint_is_refused(tmp_path, base_ws, tiny_en, run_cli) -> None:
    ws = copy_workspace(base_ws, tmp_path / "ws")
    result = run_cli("train", "-w", str(ws.root), "--model", str(tiny_en.hf_dir), "--resume")
    assert result.returncode == 1 and "no checkpoint" in result.stderr


@pytest.mark.slow
def test_non_finite_loss_stops_naming_the_step(tmp_path, base_ws, tiny_en, run_cli) -> None:
    """A model whose weights hold a NaN (a damaged checkpoint) gives a non-finite loss at once."""
    import torch
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_en.hf_dir, broken)
    weights = load_file(str(broken / "model.safetensors"))
    key = next(k for k in weights if k.endswith("decoder.layer_norm.weight"))
    weights[key] = torch.full_like(weights[key], float("nan"))
    save_file(weights, str(broken / "model.safetensors"), metadata={"format": "pt"})
    ws = copy_workspace(base_ws, tmp_path / "ws")
    result = run_cli("train", "-w", str(ws.root), "--model", str(broken), "--max-steps", "3", *FAST)
    assert result.returncode == 1
    assert "Error: the training loss became nan at step 1" in result.stderr
    assert "Traceback" not in result.stderr
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        (run,) = catalogue.runs("train")
    assert run["status"] == "failed"


# -- stop on a signal, then resume -----------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "atc_whisper", *args]


@pytest.mark.slow
def test_sigterm_saves_checkpoint_and_resume_continues(tmp_path, base_ws, tiny_en) -> None:
    ws = copy_workspace(base_ws, tmp_path / "ws")
    args = ["train", "-w", str(ws.root), "--model", str(tiny_en.hf_dir), "--batch-size", "2", "--max-steps", "10",
            *FAST, "--set", "train.save_steps=4", "--set", "train.eval_steps=4",
            "--set", "train.eval_max_samples=1"]
    proc = subprocess.Popen(_cli(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    first = ws.checkpoints_dir / "checkpoint-4"
    deadline = time.monotonic() + 300
    while not (first / "trainer_state.json").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-2000:]
    assert "SIGTERM received" in stderr
    steps = sorted(int(p.name.split("-")[1]) for p in ws.checkpoints_dir.glob("checkpoint-*"))
    stopped_at = steps[-1]
    assert 4 <= stopped_at < 10  # a checkpoint at the step where it stopped
    assert not (ws.model_dir / "model.safetensors").exists()  # no final model from a stopped run
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        assert [r["status"] for r in catalogue.runs("train")] == ["interrupted"]

    resumed = subprocess.run(_cli(*args, "--resume"), capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"(step {stopped_at})" in resumed.stderr
    logged = [int(line.split()[1].split("/")[0]) for line in resumed.stderr.splitlines() if line.startswith("step ")]
    assert logged and logged[0] == stopped_at + 1 and logged[-1] == 10  # continues, does not restart
    final = ws.checkpoints_dir / "checkpoint-10" / "trainer_state.json"
    history = json.loads(final.read_text())["log_history"]
    assert [h["step"] for h in history if "loss" in h] == list(range(1, 11))  # one schedule, no gap, no repeat
    assert "Training finished: 10 steps" in resumed.stdout


# -- data parallel -------------------------------------------------------------------------------


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, base_ws, tiny_en) -> None:
    ws = copy_workspace(base_ws, tmp_path / "ws")
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "atc_whisper", "train", "-w", str(ws.root),
         "--model", str(tiny_en.hf_dir), "--batch-size", "1", "--max-steps", "2", "--device", "cpu", *FAST],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rank 0/2 finished at step 2" in result.stderr and "rank 1/2 finished at step 2" in result.stderr
    assert result.stdout.count("Training finished: 2 steps") == 1  # rank 0 reports, once
    state = json.loads((ws.checkpoints_dir / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["train_batch_size"] == 1 and state["global_step"] == 2
    assert (ws.model_dir / "model.safetensors").is_file()
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        runs = catalogue.runs("train")
    assert len(runs) == 1 and runs[0]["status"] == "completed"
    config = runs[0]["config"] if isinstance(runs[0]["config"], dict) else json.loads(runs[0]["config"])
    assert config["world_size"] == 2


def test_out_of_memory_gives_advice_not_a_traceback(tmp_path, base_ws, tiny_en) -> None:
    """A real allocation failure: the process runs under an address-space limit (RLIMIT_AS)."""
    import resource

    ws = copy_workspace(base_ws, tmp_path / "ws")
    # Measured here: 2.5-2.8 GB of address space loads torch and the model but fails the first
    # full-fine-tuning step on 6 clips; 3.5 GB completes it.
    limit_bytes = 2_650_000_000

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    result = subprocess.run(
        [sys.executable, "-m", "atc_whisper", "train", "-w", str(ws.root), "--model", str(tiny_en.hf_dir),
         "--mode", "full", "--batch-size", "6", "--max-steps", "1", "--no-progress", "--set", "model.threads=2",
         "--set", "train.report_to=['none']"],
        capture_output=True, text=True, timeout=600, preexec_fn=limit_memory,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Error: out of memory" in result.stderr
    assert "--batch-size" in result.stderr and "gradient_accumulation_steps" in result.stderr
    assert "Traceback" not in result.stderr
