"""The shared data pipeline: finding and verifying files (``sources``), tokenising and caching
(``text``), bucketed batches (``batching``), Lightning data modules (``modules``), what a data set
is (``spec``) and how it declares itself (``declare``). The data sets themselves: one file each in
``seqbench/datasets/``. Light to import: the Lightning modules load only when a data module is built."""
from .declare import DataSpec, LocatedData, TextSource, build_datamodule, dataset_kind

__all__ = ["DataSpec", "LocatedData", "TextSource", "build_datamodule", "dataset_kind"]
