"""``python -m seqbench.explain <checkpoint or run folder> "some text"``: the predicted label,
the class probabilities and, for attention models, each token with its attention weight
(coloured in a terminal, plain when piped)."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from . import SeqbenchError
from .data.text import UNK_ID, Vocabulary, tokenize
from .checkpoints import find_checkpoint, load_checkpoint
from .models import RecurrentNet, network_config
from .registry import code_named_by_user
from .runtime import argument_parser, entry_point


@dataclass
class Explanation:
    tokens: list[str]
    known: list[bool]
    label: str
    probabilities: dict[str, float]
    weights: list[float] | None   # attention weight per token, None without attention
    empty: bool                   # the text had no token: it was scored as one <unk>


class Explainer:
    def __init__(self, checkpoint_path: str | Path, cell: str | None = None):
        """``cell``: the dotted name of your own encoder class, when the checkpoint's model is one
        (a checkpoint is data: the class it names is imported only when you name it too)."""
        path = find_checkpoint(checkpoint_path)
        checkpoint = load_checkpoint(path)
        meta = checkpoint.get("seqbench") if isinstance(checkpoint, dict) else None
        if not isinstance(meta, dict) or not isinstance(meta.get("spec"), dict):
            raise SeqbenchError(f"{path} is not a seqbench checkpoint (it lacks the vocabulary and label names)")
        spec = meta["spec"]
        if spec["task"] != "classification" or not spec.get("vocabulary"):
            raise SeqbenchError(f"{path} is a {meta.get('dataset')} model; explain reads text classifiers")
        self.vocabulary = Vocabulary(list(spec["vocabulary"]))
        self.label_names = list(spec["label_names"])
        self.max_len = spec.get("max_len")
        self.model_name = meta.get("model")
        network = dict(meta.get("network") or {})
        if cell:
            network["cell"] = cell
        trust = "if you trust that encoder, name it yourself: add --cell MODULE.CLASS to the explain command"
        with code_named_by_user([cell] if cell else [], trust):
            self.net = RecurrentNet(network_config(network), spec["num_outputs"], vocab_size=spec["vocab_size"])
        self.net.load_state_dict({k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items()
                                  if k.startswith("net.")})
        self.net.eval()

    def explain(self, text: str) -> Explanation:
        tokens = tokenize(text)[: self.max_len]
        empty = not tokens
        if empty:
            tokens = ["<unk>"]
        ids = self.vocabulary.encode(tokens)
        with torch.no_grad():
            logits, weights = self.net(torch.tensor([ids]), torch.tensor([len(ids)]))
        probabilities = torch.softmax(logits[0], dim=-1).tolist()
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return Explanation(tokens, [i != UNK_ID for i in ids], self.label_names[best],
                           dict(zip(self.label_names, probabilities)),
                           None if weights is None else weights[0].tolist(), empty)


def averaged(explanations: list[Explanation]) -> Explanation:
    """Several seeds' explanations of one text as one: class probabilities and attention weights
    averaged (every seed of a variant reads the text with the same vocabulary and tokens)."""
    if len(explanations) == 1:
        return explanations[0]
    first = explanations[0]
    probabilities = {name: sum(e.probabilities[name] for e in explanations) / len(explanations)
                     for name in first.probabilities}
    weights = None
    if all(e.weights is not None for e in explanations):
        weights = [sum(values) / len(explanations) for values in zip(*(e.weights for e in explanations))]
    return Explanation(first.tokens, first.known, max(probabilities, key=probabilities.get), probabilities, weights,
                       first.empty)


REDS = (231, 224, 217, 210, 203, 196)  # xterm-256 backgrounds, white to red


def render(explanation: Explanation, colour: bool) -> str:
    e = explanation
    lines = []
    if e.empty:
        lines.append("note: the text has no tokens; it was scored as one unknown token")
    lines.append(f"predicted: {e.label} ({e.probabilities[e.label]:.1%})")
    lines.append("probabilities: " + ", ".join(f"{name} {p:.3f}" for name, p in e.probabilities.items()))
    unknown = [t for t, k in zip(e.tokens, e.known) if not k]
    if unknown and not e.empty:
        lines.append(f"unknown words (read as <unk>): {', '.join(sorted(set(unknown)))}")
    if e.weights is None:
        lines.append("this model has no attention: no per-token weights")
        return "\n".join(lines)
    lines.append(f"attention over {len(e.tokens)} tokens (sum {sum(e.weights):.3f}):")
    top = max(e.weights)
    for token, known, weight in zip(e.tokens, e.known, e.weights):
        bar = "█" * max(1, round(20 * weight / top)) if top > 0 else ""
        name = token if known else f"{token} (unknown)"
        padded = f"{name:<24}"
        if colour:
            shade = REDS[round((len(REDS) - 1) * weight / top) if top > 0 else 0]
            padded = f"\x1b[48;5;{shade}m\x1b[30m{padded}\x1b[0m"
        lines.append(f"  {padded} {weight:.3f} {bar}")
    return "\n".join(lines)


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(prog="seqbench explain", description=__doc__)
    parser.add_argument("checkpoint", help="a .ckpt file, a run folder, or a sweep folder (with --variant)")
    parser.add_argument("text", help="the text to classify")
    parser.add_argument("--colour", choices=["auto", "always", "never"], default="auto")
    parser.add_argument("--cell", help="your own encoder class (MODULE.CLASS), when the checkpoint's model is one: "
                        "a checkpoint never makes seqbench import code by itself")
    # Which weights, as eval chooses them (seqbench.evaluate.choose).
    parser.add_argument("--seeds", default="one", choices=("one", "best", "all"),
                        help="one: the run given (default); best: its variant's seed with the best validation metric; "
                        "all: every seed of the variant, probabilities and attention averaged")
    parser.add_argument("--variant", help="in a sweep folder: the variant (as the report labels it, or the model= name)")
    args = parser.parse_args(argv)
    try:
        if args.seeds == "one" and args.variant is None:
            explanation = Explainer(args.checkpoint, args.cell).explain(args.text)
        else:
            from .evaluate import choose
            members, chosen = choose(Path(args.checkpoint), args.seeds, args.variant)
            print(f"weights: {chosen}")
            explanation = averaged([Explainer(m.checkpoint, args.cell).explain(args.text) for m in members])
    except SeqbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    colour = args.colour == "always" or (args.colour == "auto" and sys.stdout.isatty())
    print(render(explanation, colour))


if __name__ == "__main__":
    main()
