"""Ship the configs inside the package: the top-level conf/ stays the one source of truth, and
is copied into seqbench/conf when a wheel is built, so `pip install .` works from any folder."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithConfigs(build_py):
    def run(self):
        super().run()
        source = Path(__file__).resolve().parent / "conf"
        target = Path(self.build_lib) / "seqbench" / "conf"
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)


setup(cmdclass={"build_py": BuildWithConfigs})
