"""Speed settings that must not change what a run computes: per-step loops that take their steps
with ``unbind`` (not ``x[:, t]``), flushing denormal floats on CPU, sparse embedding updates."""
from __future__ import annotations

import io
import platform

import pytest
import torch

from seqbench.models.lru import sequential_linear_scan
from seqbench.models.classic import CELLS
from seqbench.models.minrnn import KINDS, MinRNNLayer
from seqbench.bench import sliced_scratch_forward
from seqbench.models.scratch import ScratchRecurrentLayer


# ------------------------------------------------------------------ loops without per-step slices
def outputs_and_gradients(function, parameters, x):
    x = x.clone().requires_grad_(True)
    out = function(x)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    grads = [p.grad.clone() for p in parameters] + [x.grad.clone()]
    for p in parameters:
        p.grad = None
    return out.detach(), grads


@pytest.mark.parametrize("cell", sorted(CELLS))   # every cell the scratch layer implements
def test_scratch_loop_with_unbind_gives_the_sliced_loops_outputs_and_gradients(cell):
    torch.manual_seed(0)
    layer = ScratchRecurrentLayer(cell, 3, 5).double()
    x = torch.randn(4, 17, 3, dtype=torch.float64)
    new = outputs_and_gradients(lambda v: layer(v)[0], list(layer.parameters()), x)
    old = outputs_and_gradients(lambda v: sliced_scratch_forward(layer, v), list(layer.parameters()), x)
    torch.testing.assert_close(new[0], old[0], rtol=0, atol=1e-12)
    for got, expected in zip(new[1], old[1]):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_min_cells_sequential_loop_gives_the_sliced_loops_outputs_and_gradients(kind):
    torch.manual_seed(0)
    layer = MinRNNLayer(kind, 3, 5, mode="sequential").double()

    def sliced(x):
        a, b = layer.coefficients(x)
        h, states = torch.zeros_like(b[:, 0]), []
        for t in range(x.size(1)):
            h = a[:, t] * h + b[:, t]
            states.append(h)
        return torch.stack(states, dim=1)
    x = torch.randn(4, 13, 3, dtype=torch.float64)
    new = outputs_and_gradients(layer, list(layer.parameters()), x)
    old = outputs_and_gradients(sliced, list(layer.parameters()), x)
    torch.testing.assert_close(new[0], old[0], rtol=0, atol=1e-12)
    for got, expected in zip(new[1], old[1]):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_lru_sequential_scan_gives_the_sliced_loops_outputs_and_gradients():
    torch.manual_seed(0)
    coefficient = torch.polar(torch.rand(6, dtype=torch.float64), torch.rand(6, dtype=torch.float64))
    coefficient.requires_grad_(True)
    inputs = torch.randn(3, 11, 6, dtype=torch.complex128)

    def sliced(v):
        h, states = torch.zeros_like(v[:, 0]), []
        for t in range(v.size(1)):
            h = coefficient * h + v[:, t]
            states.append(h)
        return torch.stack(states, dim=1)

    def run(function):
        v = inputs.clone().requires_grad_(True)
        out = function(v)
        out.abs().sum().backward()
        result = out.detach(), coefficient.grad.clone(), v.grad.clone()
        coefficient.grad = None
        return result
    for got, expected in zip(run(lambda v: sequential_linear_scan(coefficient, v)), run(sliced)):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------- freed memory kept for the next step
KEEP_OR_NOT = """
import os, sys, torch
from seqbench.runtime import keep_freed_memory
kept = keep_freed_memory(sys.argv[1] == "keep")
def rss_mb():
    return int(open(f"/proc/{os.getpid()}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
block = torch.ones(5 << 20)            # 20 MiB, the size of a long sequence's activations
held = rss_mb()
del block
print(kept, held - rss_mb())           # MiB handed back to the OS when the tensor was freed
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_keeping_freed_memory_keeps_a_freed_20_mib_tensor_for_the_next_step(tmp_path):
    """A fresh process frees a 20 MiB tensor: glibc hands it back to the OS by default (and the
    next step faults it in again); with keep_freed_memory the process keeps it."""
    import os
    import subprocess
    import sys
    # glibc's defaults in the child: no tunables or preloaded allocator from the caller's environment
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))}
    answers = {}
    for how in ("keep", "default"):
        out = subprocess.run([sys.executable, "-c", KEEP_OR_NOT, how], capture_output=True, text=True, check=True,
                             timeout=120, env=env)
        kept, returned_mb = out.stdout.split()
        answers[how] = (kept, float(returned_mb))
    assert answers["keep"][0] == "True" and answers["default"][0] == "False"
    assert answers["default"][1] > 15, answers     # returned to the OS
    assert answers["keep"][1] < 5, answers         # kept


# ------------------------------------------------------------------------ denormal floats on CPU
def test_flushing_denormals_leaves_a_long_sequence_runs_curve_as_it_was_and_is_recorded(compose_config, tmp_path):
    """The adding task at T = 400 (where the backward pass meets denormals): the same loss curve
    with and without flushing, and each record says which it ran with."""
    from seqbench.run import run
    tiny = ["dataset=adding", "model=gru", "dataset.length=400", "dataset.n_train=40", "dataset.n_val=20",
            "dataset.n_test=20", "dataset.batch_size=20", "model.hidden_size=16", "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false", "logger=csv"]
    records = {flag: run(compose_config(*tiny, f"flush_denormal={str(flag).lower()}", "force=true"),
                         tmp_path / f"flush_{flag}") for flag in (True, False)}
    try:
        assert records[True]["flush_denormal"] is torch.set_flush_denormal(True)  # True where the CPU can
        assert records[False]["flush_denormal"] is False
        glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
        assert records[True]["keep_freed_memory"] is glibc  # the default, said in the record
    finally:
        torch.set_flush_denormal(False)
    curves = {flag: [h["train/loss_epoch"] for h in r["history"]] for flag, r in records.items()}
    assert len(curves[True]) == 2
    assert curves[True] == pytest.approx(curves[False], rel=1e-5)
    assert records[True]["test"]["mse"] == pytest.approx(records[False]["test"]["mse"], rel=1e-5)


@pytest.mark.parametrize("switch", ["flush_denormal", "keep_freed_memory"])
def test_speed_switches_must_be_true_or_false(compose_config, tmp_path, switch):
    from seqbench.config import ConfigError
    from seqbench.run import run
    with pytest.raises(ConfigError, match=f"{switch}='yes': must be true or false"):
        run(compose_config(f"{switch}=yes"), tmp_path)


# ------------------------------------------------------------------------ sparse embedding updates
def embedding_net(sparse: bool):
    from seqbench.models import RecurrentNet
    torch.manual_seed(0)
    return RecurrentNet({"name": "gru", "cell": "gru", "hidden_size": 6, "embedding_dim": 4}, 3, vocab_size=50,
                        sparse_embedding=sparse)


def test_sparse_embedding_gradient_and_lazy_adam_touch_only_the_rows_a_batch_uses():
    from seqbench.optim import SparseAndDense, with_sparse_embedding
    from functools import partial
    net = embedding_net(True)
    optimizer = with_sparse_embedding(partial(torch.optim.Adam, lr=0.01, fused=True), list(net.parameters()),
                                      net.input_layer.weight)
    assert isinstance(optimizer, SparseAndDense) and optimizer.dense.defaults["fused"]
    before = net.input_layer.weight.detach().clone()
    rest_before = [p.detach().clone() for p in net.parameters() if p is not net.input_layer.weight]
    inputs = torch.tensor([[3, 4, 5], [4, 7, 0]])
    loss = net(inputs, torch.tensor([3, 2]))[0].sum()
    loss.backward()
    assert net.input_layer.weight.grad.is_sparse
    optimizer.step()
    moved = (net.input_layer.weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    assert moved == [3, 4, 5, 7]  # the pad row 0 and every unused row stay where they were
    rest_after = [p for p in net.parameters() if p is not net.input_layer.weight]
    assert all((a != b).any() for a, b in zip(rest_after, rest_before))
    # one state and one list of groups, as Lightning and learning-rate monitors expect
    assert len(optimizer.param_groups) == 2 and len(optimizer.state) == len(list(net.parameters()))
    optimizer.param_groups[1]["lr"] = 0.5
    assert optimizer.sparse.param_groups[0]["lr"] == 0.5
    optimizer.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_sparse_and_dense_state_survives_a_checkpoint_round_trip():
    from seqbench.optim import with_sparse_embedding
    from functools import partial
    nets = [embedding_net(True), embedding_net(True)]
    optimizers = [with_sparse_embedding(partial(torch.optim.Adam, lr=0.01), list(n.parameters()),
                                        n.input_layer.weight) for n in nets]
    inputs, lengths = torch.tensor([[3, 4, 5], [4, 7, 0]]), torch.tensor([3, 2])
    nets[0](inputs, lengths)[0].sum().backward()
    optimizers[0].step()
    nets[1].load_state_dict(nets[0].state_dict())
    saved = io.BytesIO()  # through torch.save, as a checkpoint goes
    torch.save(optimizers[0].state_dict(), saved)
    saved.seek(0)
    optimizers[1].load_state_dict(torch.load(saved, weights_only=True))
    for net, optimizer in zip(nets, optimizers):
        optimizer.zero_grad()
        net(inputs, lengths)[0].sum().backward()
        optimizer.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b)


def test_clipping_over_sparse_and_dense_gradients_matches_clipping_their_dense_equivalents():
    from seqbench.optim import clip_gradients
    sparse_net, dense_net = embedding_net(True), embedding_net(False)
    inputs, lengths = torch.tensor([[3, 4, 4, 5], [4, 7, 0, 0]]), torch.tensor([4, 2])  # row 4 used three times
    for net in (sparse_net, dense_net):
        (100 * net(inputs, lengths)[0].sum()).backward()
    dense_norm = torch.nn.utils.clip_grad_norm_(list(dense_net.parameters()), 1.0)
    sparse_norm = clip_gradients(list(sparse_net.parameters()), 1.0, "norm")
    torch.testing.assert_close(sparse_norm, dense_norm)
    assert float(dense_norm) > 1.0  # the clipping did something
    for s, d in zip(sparse_net.parameters(), dense_net.parameters()):
        torch.testing.assert_close(s.grad.to_dense(), d.grad)


def test_a_text_run_with_sparse_embedding_learns_and_checkpoints_both_optimisers(compose_config, tmp_path, monkeypatch):
    from tests.conftest import tiny_text_source, use_text_source
    from seqbench.run import run
    use_text_source(monkeypatch, "trec", tiny_text_source(tmp_path))
    overrides = ["dataset=trec", "model=gru", "model.hidden_size=8", "model.embedding_dim=8",
                 "trainer.enable_progress_bar=false", f"dataset.cache_dir={tmp_path / 'cache'}", "dataset.batch_size=8",
                 "dataset.lr=0.02", "dataset.embedding_dropout=0", "dataset.dropout=0", "optimizer.sparse_embedding=true",
                 "logger=csv"]
    record = run(compose_config(*overrides, "trainer.max_epochs=6"), tmp_path / "run")
    assert record["status"] == "done" and record["test"]["acc"] >= 0.9, record["history"]
    assert record["config"]["optimizer"]["sparse_embedding"] is True
    # the last checkpoint holds both optimisers' state (resumed as in the round-trip test above)
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert set(checkpoint["optimizer_states"][0]) == {"dense", "sparse"}
    dense = run(compose_config(*overrides[:-2], "logger=csv", "trainer.max_epochs=6"), tmp_path / "dense")
    assert dense["config_hash"] != record["config_hash"]  # a setting that changes the result: another variant


def test_sparse_embedding_must_be_true_or_false(compose_config, tmp_path):
    from seqbench.config import ConfigError
    from seqbench.run import run
    with pytest.raises(ConfigError, match="optimizer.sparse_embedding='fast'"):
        run(compose_config("optimizer.sparse_embedding=fast"), tmp_path)


# ---------------------------------------------------------------------------------------- threads
def test_default_threads_leave_a_core_to_the_machine_or_divide_the_cores_among_jobs(monkeypatch):
    from seqbench import runtime
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)
    assert runtime.default_threads() == 1 and runtime.default_threads(2) == 1
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 16)
    assert runtime.default_threads() == 15 and runtime.default_threads(4) == 4
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 1)
    assert runtime.default_threads() == 1
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)
        assert runtime.set_threads(None) == 1 and torch.get_num_threads() == 1
        assert runtime.set_threads(2) == 2 and torch.get_num_threads() == 2  # a config's torch_threads wins
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ the fused scan (model.mode=fused)
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("steps", [1, 2, 63, 301])
def test_fused_mode_gives_the_loops_outputs_and_gradients_in_float32(kind, steps):
    """Several lengths, long ones too: the hand-written backward equals autograd through the loop."""
    torch.manual_seed(steps)
    layer = MinRNNLayer(kind, 3, 8, mode="sequential")
    x = torch.randn(4, steps, 3) * 3
    loop = outputs_and_gradients(layer, list(layer.parameters()), x)
    layer.mode = "fused"
    fused = outputs_and_gradients(layer, list(layer.parameters()), x)
    torch.testing.assert_close(fused[0], loop[0], rtol=1e-5, atol=1e-5)
    for got, expected in zip(fused[1], loop[1]):  # a weight's gradient sums many terms: its own scale
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * max(1.0, expected.abs().max().item()))


def test_fused_linear_scan_has_the_gradients_of_its_function():
    """Per-step real coefficients (minGRU, minLSTM) and one complex λ for every step (the LRU):
    the written-out backward against finite differences."""
    from seqbench.models.scan import linear_scan
    torch.manual_seed(0)
    a = torch.rand(2, 7, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 7, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(linear_scan, (a, b))
    lam = torch.polar(torch.rand(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64) * 6).requires_grad_()
    inputs = torch.randn(2, 7, 3, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(linear_scan, (lam, inputs))
    torch.testing.assert_close(linear_scan(lam, inputs), sequential_linear_scan(lam, inputs), rtol=0, atol=1e-12)


def test_the_mode_that_ran_is_recorded_and_no_part_of_a_runs_identity(compose_config, tmp_path):
    """model.mode=auto runs the fused loop on a CPU and says so; the same run asked for in another mode
    is the run already done, not a new variant."""
    from seqbench.config import config_hash
    from seqbench.run import run
    tiny = ["dataset=adding", "model=mingru", "dataset.length=20", "dataset.n_train=40", "dataset.n_val=20",
            "dataset.n_test=20", "dataset.batch_size=20", "model.hidden_size=8", "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false", "logger=csv"]
    record = run(compose_config(*tiny), tmp_path / "auto")
    assert (record["config"]["model"]["mode"], record["scan_mode"]) == ("auto", "fused")
    for mode in ("parallel", "sequential", "fused"):
        other = {**record["config"], "model": {**record["config"]["model"], "mode": mode}}
        assert config_hash(other) == record["config_hash"]
    wider = {**record["config"], "model": {**record["config"]["model"], "hidden_size": 9}}
    assert config_hash(wider) != record["config_hash"]  # a key that changes the function still counts
    again = run(compose_config(*tiny, "model.mode=sequential"), tmp_path / "sequential")
    assert again["output_dir"] == record["output_dir"]  # found done, not trained again


@pytest.mark.parametrize("lstm", [False, True])
def test_fused_gated_scan_has_the_gradients_of_its_function(lstm):
    """minGRU's and minLSTM's fused recurrence (gates, candidate and scan from one projection, each
    gradient written into its slice of one buffer) against torch's numerical gradients, at a length
    of 1 and a longer one, with preactivations on both sides of the candidate's kink at 0."""
    from seqbench.models.scan import gated_scan
    torch.manual_seed(0)
    for steps in (1, 6):
        projection = torch.randn(2, steps, (3 if lstm else 2) * 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda p: gated_scan(p, lstm), (projection,))
