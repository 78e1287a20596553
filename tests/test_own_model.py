"""A user's own encoder in a folder of their own (examples/own_model): the command its README
gives runs as written from a copy of that folder. The model itself is held to every model's
contract in test_model_contract.py (collected there as [causal_conv], from examples/*/conf)."""
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import json

import pytest

from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "own_model"


def readme_command() -> list[str]:
    block = re.search(r"```bash\n(.*?)\n```", (EXAMPLE / "README.md").read_text(), re.S)[1]
    return shlex.split(block.splitlines()[0])


@pytest.mark.slow
def test_the_readme_command_runs_from_a_copy_of_the_folder(tmp_path):
    folder = tmp_path / "mine"
    shutil.copytree(EXAMPLE, folder)
    command = readme_command()
    assert command[0] == "seqbench"
    seqbench = Path(sys.executable).with_name("seqbench")   # the console command the README uses
    result = subprocess.run([str(seqbench), *command[1:]], cwd=folder, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    record_path = Path(result.stdout.strip().splitlines()[-1].removeprefix("record: "))
    record = json.loads(record_path.read_text())
    assert record["status"] == "done" and record["model"] == "causal_conv" and record["test"]["mse"] < 0.1
    assert record_path.is_relative_to(folder / "out")
    bad = subprocess.run([str(seqbench), "--config-dir", "conf", "model=causal_conv", "+model.kernal_size=5"],
                         cwd=folder, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "model.kernal_size: unknown key; did you mean 'kernel_size'?" in bad.stderr
    assert "Traceback" not in bad.stderr
