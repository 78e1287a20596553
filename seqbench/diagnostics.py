"""Gradient flow through time: how much of the loss's gradient reaches each earlier step.

For a batch of sequences, the loss reads only the final hidden state; the gradient
‖∂L/∂h_t‖ is measured at every step t. With *untrained* weights (PyTorch's default
initialisation) and random inputs, all three cells lose the gradient geometrically going back
in time, the plain RNN fastest: a gate that keeps the cell state is something LSTM and GRU can
*learn* (and the forget-gate bias can start them closer to), not something they have at
initialisation. ``--runs`` adds the same measurement on trained networks (their first
recurrent layer, driven by their own task's inputs), beside the untrained ones.

Measured on ``ScratchRecurrentLayer`` (the hand-written cells): there h_t is the very tensor
the next step reads, so its gradient includes every path through time. The fused
``torch.nn`` kernels hide those intermediate states from autograd.

``python -m seqbench.diagnostics --steps 200 --out results/gradient_flow`` writes PNG + CSV.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from . import SeqbenchError
from .checkpoints import find_checkpoint, load_checkpoint
from .config import check_dataset, recorded_dataset_config
from .models.scratch import GATES, ScratchRecurrentLayer
from .record import read_record
from .registry import code_named_by_user, model_entry
from .runtime import argument_parser, at_least_one, entry_point


def gradient_flow(cell: str, input_size: int = 16, hidden_size: int = 64, steps: int = 100, batch: int = 32,
                  seed: int = 0, weights: torch.nn.Module | None = None, nonlinearity: str = "tanh",
                  inputs: torch.Tensor | None = None) -> torch.Tensor:
    """(steps,) mean over the batch of ‖∂L/∂h_t‖, L = r · h_T with a fixed random r.

    ``weights``: a trained single-layer module (torch.nn or scratch) whose parameters are used;
    otherwise a freshly initialised layer (torch.nn's initialisation) with ``seed``.
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    # float64: over hundreds of steps a vanishing gradient underflows float32 to exactly 0.
    layer = ScratchRecurrentLayer(cell, input_size, hidden_size, nonlinearity=nonlinearity).double()
    if weights is not None:
        layer.load_state_dict({k: v.detach().cpu().double() for k, v in weights.state_dict().items()})
    if inputs is None:
        inputs = torch.randn(batch, steps, input_size, generator=generator, dtype=torch.float64)
    inputs = inputs.detach().double()
    readout = torch.randn(hidden_size, generator=generator, dtype=torch.float64)
    layer.keep_states = True
    layer(inputs)
    states = layer.states
    (states[-1] @ readout).sum().backward()
    layer.keep_states = False
    return torch.stack([h.grad.norm(dim=1).mean() for h in states]).detach()


def gradient_flow_figure(norms: dict[str, torch.Tensor], title: str = "untrained weights, random inputs"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for cell, values in norms.items():
        ratio = float(values[0] / values[-1])
        ax.semilogy(range(1, len(values) + 1), values.numpy(), label=f"{cell} (first/last = {ratio:.1e})")
    ax.set_xlabel("time step t (the loss reads the last step)")
    ax.set_ylabel("‖∂L/∂h_t‖ (mean over batch)")
    ax.set_title(f"Gradient flow back through time: {title}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def trained_and_untrained(run: str | Path, batch: int = 32, seed: int = 0) -> tuple[str, torch.Tensor, torch.Tensor]:
    """(label, untrained norms, trained norms) for one run: its first recurrent layer (forward
    direction) after training, and the same architecture freshly initialised (with the run's own
    init rules), both driven by the run's own test inputs through its trained input layer."""
    from .models import RecurrentNet, network_config
    path = find_checkpoint(run)
    record_path = Path(run) / "record.json" if Path(run).is_dir() else path.parent.parent / "record.json"
    record = read_record(record_path)
    dataset = recorded_dataset_config(dict((record.get("config") or {}).get("dataset") or {}))
    check_dataset(dataset)
    checkpoint = load_checkpoint(path)
    meta = checkpoint.get("seqbench") if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("spec"), dict):
        raise SeqbenchError(f"{path} is not a seqbench checkpoint (no network settings in it)")
    spec = meta["spec"]
    # The checkpoint names the cell: data, never imported (the diagnostic rebuilds built-in cells only).
    with code_named_by_user((), "the diagnostic rebuilds rnn, lstm and gru layers only"):
        network = network_config(meta.get("network") or {})
        if not model_entry(network.cell).gradient_flow:
            raise SeqbenchError(f"{run}: gradient flow is measured on rnn, lstm and gru layers (rebuilt as "
                                f"hand-written cells); it does not apply to {network.cell}")
        net = RecurrentNet(network, spec["num_outputs"], vocab_size=spec.get("vocab_size"),
                           input_dim=spec.get("input_dim"), per_step=str(spec.get("task", "")).startswith("per_step"))
    net.load_state_dict({k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")})
    net.eval()
    from .data.declare import build_datamodule
    datamodule = build_datamodule(dataset, (record.get("config") or {}).get("seed", 0))
    datamodule.setup()
    test = datamodule.test_set if hasattr(datamodule, "test_set") else datamodule.sets["test"]
    sample = test[list(range(min(batch, len(test))))]
    with torch.no_grad():
        inputs = net.input_layer(sample["inputs"])  # (B, T, E): what the first recurrent layer reads
    layer = net.encoder.layers[0][0]
    hidden = network.hidden_size
    trained = gradient_flow(network.cell, inputs.size(-1), hidden, weights=layer, inputs=inputs,
                            nonlinearity=network.nonlinearity, seed=seed)
    from .models.classic import make_layer
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fresh = make_layer(network.cell, "scratch", inputs.size(-1), hidden, network.nonlinearity, network.init,
                           network.forget_bias)
    untrained = gradient_flow(network.cell, inputs.size(-1), hidden, weights=fresh, inputs=inputs,
                              nonlinearity=network.nonlinearity, seed=seed)
    length = (record["config"].get("dataset") or {}).get("length")
    label = f"{record.get('model')} on {record.get('dataset')}" + (f" T={length}" if length else "")
    if network.forget_bias is not None:  # two LSTMs that differ only in their initialisation
        label += f" (forget bias {network.forget_bias:g})"
    return label, untrained, trained


def trained_figure(results: list[tuple[str, torch.Tensor, torch.Tensor]]):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for label, untrained, trained in results:
        line, = axes[0].semilogy(range(1, len(untrained) + 1), untrained.numpy(), label=label)
        axes[1].semilogy(range(1, len(trained) + 1), trained.numpy(), color=line.get_color(),
                         label=f"{label} (first/last = {float(trained[0] / trained[-1]):.1e})")
    axes[0].set_title("untrained (same architecture and init rules)")
    axes[1].set_title("trained (the run's best checkpoint)")
    for ax in axes:
        ax.set_xlabel("time step t (the loss reads the last step)")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("‖∂L/∂h_t‖ (mean over the task's test sequences)")
    fig.suptitle("Gradient flow back through time, driven by each task's own inputs")
    fig.tight_layout()
    return fig


def _cell(text: str) -> str:
    if text not in GATES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a cell the diagnostic rebuilds; valid: {', '.join(GATES)}")
    return text


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(prog="seqbench diagnostics", description=__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"], type=_cell,
                        help=f"cells to measure: {', '.join(GATES)}")
    parser.add_argument("--steps", type=at_least_one, default=200)
    parser.add_argument("--hidden", type=at_least_one, default=64)
    parser.add_argument("--batch", type=at_least_one, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", nargs="*", default=[], help="run folders or checkpoints of trained networks: "
                        "adds their gradient flow, trained and untrained, to <out>_trained.png/.csv")
    parser.add_argument("--out", default="results/gradient_flow")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import pandas as pd
    if args.runs:
        results = [trained_and_untrained(run, args.batch, args.seed) for run in args.runs]
        trained_figure(results).savefig(out.with_name(out.name + "_trained.png"), dpi=120)
        columns = {}
        for label, untrained, trained in results:
            columns[f"{label} untrained"] = pd.Series(untrained.numpy())
            columns[f"{label} trained"] = pd.Series(trained.numpy())
        frame = pd.DataFrame(columns)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="step")
        frame.to_csv(out.with_name(out.name + "_trained.csv"))
        for label, untrained, trained in results:
            print(f"{label}: first/last untrained {float(untrained[0] / untrained[-1]):.3e}, "
                  f"trained {float(trained[0] / trained[-1]):.3e}")
        print(f"written: {out.with_name(out.name + '_trained.png')} and .csv")
        return
    norms = {cell: gradient_flow(cell, hidden_size=args.hidden, steps=args.steps, batch=args.batch, seed=args.seed)
             for cell in args.cells}
    frame = pd.DataFrame({cell: values.numpy() for cell, values in norms.items()})
    frame.index = pd.RangeIndex(1, args.steps + 1, name="step")
    frame.to_csv(out.with_suffix(".csv"))
    gradient_flow_figure(norms).savefig(out.with_suffix(".png"), dpi=120)
    for cell, values in norms.items():
        print(f"{cell}: ‖∂L/∂h_1‖ = {float(values[0]):.3e}, ‖∂L/∂h_T‖ = {float(values[-1]):.3e}, "
              f"first/last = {float(values[0] / values[-1]):.3e}")
    print(f"written: {out.with_suffix('.png')} and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
