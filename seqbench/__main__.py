"""``python -m seqbench model=gru dataset=sentiment``: train, test once, write record.json."""
from __future__ import annotations

import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from . import SeqbenchError
from .run import run

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def report(record: dict, record_path: Path) -> None:
    if "reused_from" in record:
        print(f"{record['model']} on {record['dataset']} (seed {record['seed']}): already done, not run again "
              f"(force=true reruns it); record: {record['reused_from']}")
    if record["status"] == "done":
        primary = next(iter(record["val_best"]))  # the metric that picked the checkpoint comes first
        names = [primary] + [name for name in record["test"] if name != primary]
        metrics = ", ".join(f"{name} {record['test'][name]:.4g}" for name in names)
        print(f"{record['model']} on {record['dataset']} (seed {record['seed']}): test {metrics}")
    else:
        print(f"{record['model']} on {record['dataset']} (seed {record['seed']}): {record['status']}: "
              f"{record.get('error', '')}", file=sys.stderr)
    print(f"record: {record_path}")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    if in_sweep and str(cfg.trainer.get("strategy", "auto")).startswith("ddp"):
        # Lightning starts DDP processes by re-running this command line: inside a multirun
        # each process would start the whole sweep again.
        print("error: trainer=ddp cannot run inside a multirun; give each job one device "
              "(hydra/launcher=slurm does) or run the DDP job on its own", file=sys.stderr)
        sys.exit(2)
    # In a sweep every run logs under one TensorBoard root: `tensorboard --logdir <sweep>/tensorboard`.
    tensorboard_root = Path(HydraConfig.get().sweep.dir) / "tensorboard" if in_sweep else None
    try:
        record = run(cfg, output_dir, tensorboard_root)
    except SeqbenchError as error:
        # The user's to fix: say what and how, without a traceback; the record says "failed".
        print(f"error: {error}", file=sys.stderr)
        print(f"record: {output_dir / 'record.json'}")
        if not in_sweep:
            sys.exit(2)
        return
    except Exception:
        if not in_sweep:
            print(f"record: {output_dir / 'record.json'}")
            raise
        # In a sweep the other runs go on; this one's record says "failed" and why.
        traceback.print_exc()
        print(f"record: {output_dir / 'record.json'}")
        return
    report(record, Path(record.get("output_dir", output_dir)) / "record.json")
    if record["status"] != "done" and not in_sweep:
        sys.exit(1)


if __name__ == "__main__":
    main()
