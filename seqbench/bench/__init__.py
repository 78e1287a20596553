"""``seqbench bench``: training throughput of seqbench against the plain PyTorch loops a user
would write, measured side by side in one run, on the same batches and model.

Workloads (``--workload``):
  imdb      BiLSTM + additive attention, embedding 128, hidden 128, batch 64, IMDB reviews
            truncated to ``--max-len`` tokens (``--reviews`` of them)
  trec      the TREC defaults: BiLSTM + additive attention, embedding 300, hidden 128, batch 16,
            all 5,452 training questions (many small batches: where per-batch overhead shows)
  models    every cell's training throughput on the same signal batches
  denormal  the adding task at T = 400 (nn.GRU, hidden 128, batch 50, one thread): a plain loop with
            denormal floats kept (torch's default) and flushed, and seqbench's own run
  sparse    TREC epochs of gru and bilstm_attn_concat with the dense embedding update (denormals
            kept, flushed) and the sparse one (optimizer.sparse_embedding=true)
  threads   TREC gru steps with 1 and 2 torch threads, on a quiet machine and beside a busy process
  loops     the hand-written GRU's per-step loop, steps taken with x[:, t] (before) and unbind (now)
  scan      mingru, minlstm and lru layers in model.mode=sequential (a loop over time), parallel (the
            scan over all steps) and fused (the loop, backward written out): one function, three ways
  lru       lru and lru_deep (sequential) with the complex state's products before (strided Re/Im
            views, copied) and now (one interleaved real product in, one out)

Paths (every one: forward, backward, gradient clipping at 1.0 and fused Adam, as seqbench's defaults):
  plain padded    every batch padded to the longest sequence of the data, nn.LSTM(bidirectional):
                  fast, but its backward direction reads the pads first (outputs depend on padding)
  plain bucketed  the same plain model on seqbench's length-bucketed batches (little padding)
  plain packed    length-bucketed batches + pack_padded_sequence: correct, slow on CPU
  seqbench loop   seqbench's RecurrentNet on the bucketed batches, in a plain loop
  seqbench        the same batches through Lightning's Trainer (what `seqbench` runs)

Every path warms up on the same number of batches (untimed), then is timed over the same
batches; each path is repeated (``--repeats``, default 3) and the median is reported, since
these machines are noisy. Only training is timed: no validation, no data loading.
"""
from __future__ import annotations

from .cells import MODEL_CELLS, SCAN_CELLS, SCAN_MODES, format_models, measure_models
from .cli import checked_device, main
from .kernels import (format_scan, measure_loops, measure_lru, measure_scan, scan_layer, sliced_scratch_forward,
                      strided_lru_forward)
from .speed_settings import SPARSE_MODELS, measure_denormals, measure_sparse, measure_threads
from .text import WORKLOADS, PlainBiLSTMAttention, Workload, load_texts, measure
from .timing import CLIP, spread_caveat, time_lightning, time_plain_loop
from .workloads import REGISTRY

__all__ = ["CLIP", "MODEL_CELLS", "REGISTRY", "SCAN_CELLS", "SCAN_MODES", "SPARSE_MODELS", "WORKLOADS",
           "PlainBiLSTMAttention", "Workload", "checked_device", "format_models", "format_scan", "load_texts", "main",
           "measure", "measure_denormals", "measure_loops", "measure_lru", "measure_models", "measure_scan",
           "measure_sparse", "measure_threads", "scan_layer", "sliced_scratch_forward", "spread_caveat",
           "strided_lru_forward", "time_lightning", "time_plain_loop"]
