"""The linear recurrence h_t = a_t ⊙ h_{t-1} + b_t (h_{-1} = 0) of minGRU, minLSTM and the LRU as a
loop over time with a hand-written backward: ``model.mode=fused``.

Autograd through a loop over time records a few nodes per step and runs them one by one backward;
at the widths seqbench trains (B·H of a few thousand) that bookkeeping, not the arithmetic, is the
cost. Here the forward loop writes each h_t in place with no graph (one ``addcmul`` a step), and the
backward is the adjoint recurrence, itself a linear scan run backwards:

  g_t = ∂L/∂h_t (total) = grad_out_t + conj(a_{t+1}) ⊙ g_{t+1},  ∂L/∂b_t = g_t,  ∂L/∂a_t = g_t ⊙ conj(h_{t-1})

(conj: PyTorch's convention for complex gradients; a no-op on real tensors). It is the loop's
arithmetic, in the same order, so outputs match ``model.mode=sequential`` to float rounding, with
no division or exponent anywhere (the log-space scan's exp/log is what made ``parallel`` slow on
CPU). Causal both ways: h_t reads steps <= t, so right-padding never reaches a real step.

Chunked alternatives: a two-level scan (the loop inside all chunks at once, then across chunks,
then one correction) ran slower than autograd's loop in a prototype here (26 ms against 16 ms,
minGRU forward + backward at (50, 400, 64)): on a CPU a step of this loop costs about 4 us, while
every whole-tensor pass costs 0.3-1 ms, and chunking adds passes. The closed form per chunk
(L[t, s] = exp(S_t - S_s)) does C times the element-wise work, so it was not pursued.
"""
from __future__ import annotations

import torch


def scan_into(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, reverse: bool = False) -> torch.Tensor:
    """out_t = a_t ⊙ out_{t∓1} + b_t along dim 1 (forward, or from the last step backwards when
    ``reverse``), with nothing before the first step. ``a`` is (B, T, N) or broadcast over time (N,)
    (the LRU's λ); no autograd."""
    outs, values = out.unbind(1), b.unbind(1)  # unbound once: per-step indexing costs as much as the step
    per_step = a.dim() == b.dim()
    coefficients = a.unbind(1) if per_step else None
    order = range(len(outs) - 1, -1, -1) if reverse else range(len(outs))
    previous = None
    for t in order:
        if previous is None:
            outs[t].copy_(values[t])
        else:
            # reverse: the step after t carries a_{t+1}; forward: a_t
            coefficient = (coefficients[t + 1] if reverse else coefficients[t]) if per_step else a
            torch.addcmul(values[t], coefficient, outs[previous], out=outs[t])
        previous = t
    return out


class LinearScan(torch.autograd.Function):
    """h = scan(a, b): a (B, T, N) or (N,), b (B, T, N), real or complex; returns h (B, T, N)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        b = b.contiguous()
        h = scan_into(torch.empty_like(b), a, b)
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: torch.Tensor):
        a, h = ctx.saved_tensors
        # resolve_conj: a lazily conjugated λ is conjugated again, into a copy, at every step that reads it
        grad_b = scan_into(torch.empty_like(h), a.conj().resolve_conj(), grad_h, reverse=True)
        grad_a = None
        if ctx.needs_input_grad[0]:
            # step 0 read h_{-1} = 0
            if a.dim() != h.dim():  # λ is shared by every step and sequence: Σ conj(h_{t-1}) g_t, no conj copy
                grad_a = torch.linalg.vecdot(h[:, :-1], grad_b[:, 1:], dim=1).sum(0)
            else:
                grad_a = torch.zeros_like(h)
                torch.mul(h[:, :-1].conj(), grad_b[:, 1:], out=grad_a[:, 1:])
        return grad_a, grad_b


def linear_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return LinearScan.apply(a, b)


class GatedScan(torch.autograd.Function):
    """minGRU's and minLSTM's recurrence from their input projection, gates and all, with the
    backward written out; h = scan(a, b) with b = z ⊙ g(h_pre), g(x) = x + 0.5 for x >= 0, σ(x)
    otherwise, and the projection's chunks along its last dimension

      minGRU   (z_pre, h_pre)          z = σ(z_pre), a = 1 - z
      minLSTM  (f_pre, i_pre, h_pre)   i = σ(i_pre), f = σ(f_pre), a = f / (f + i), z = i / (f + i) = 1 - a

    Every element-wise operation is one pass over a (B, T, H) tensor (0.3-0.6 ms at (50, 400, 64)
    on one CPU core), so the count of passes is the cost: about 10 forward and 8 (minGRU) or 11
    (minLSTM) backward, each gradient written straight into its slice of one buffer (no ``cat``),
    and none on boolean masks (``where`` and ``masked_fill`` took 4.5 ms here). Autograd through
    the same steps made some 30 passes and a ``cat``.
    """

    @staticmethod
    def forward(ctx, projection: torch.Tensor, lstm: bool) -> torch.Tensor:
        if lstm:
            f_pre, i_pre, h_pre = projection.chunk(3, dim=-1)
            i, f = torch.sigmoid(i_pre), torch.sigmoid(f_pre)
            total = i + f
            z = torch.div(i, total)
            a = torch.div(f, total, out=total)
            gates = (i, f)
        else:
            z_pre, h_pre = projection.chunk(2, dim=-1)
            z = torch.sigmoid(z_pre)
            a = torch.rsub(z, 1)
            gates = ()
        low = torch.sigmoid_(h_pre.clamp_max(0))  # σ(min(x, 0)): g's sigmoid part, 0.5 for x >= 0
        g = h_pre.clamp_min(0).add_(low)  # σ(min(x, 0)) + max(x, 0) = g(x)
        h = scan_into(torch.empty_like(g), a, z * g)
        ctx.lstm = lstm
        ctx.save_for_backward(projection, z, a, g, low, h, *gates)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: torch.Tensor):
        projection, z, a, g, low, h, *gates = ctx.saved_tensors
        grad_projection = torch.empty_like(projection)
        chunks = grad_projection.chunk(3 if ctx.lstm else 2, dim=-1)
        h_pre = projection.chunk(len(chunks), dim=-1)[-1]
        grad_b = scan_into(torch.empty_like(h), a, grad_h, reverse=True)  # ∂L/∂h_t in total = ∂L/∂b_t
        grad_g = grad_b.mul_(z)  # ∂L/∂g_t = ∂L/∂b_t z_t (grad_b is not needed after this)
        # g'(x) = 1 for x > 0, σ(x)(1 - σ(x)) <= 1/4 for x <= 0: the larger of that and sign(x)
        slope = torch.addcmul(low, low, low, value=-1)
        slope = torch.maximum(slope, h_pre.sign(), out=slope)
        torch.mul(slope, grad_g, out=chunks[-1])
        # ∂L/∂z_t = ∂L/∂b_t (g_t - h_{t-1}) (with a = 1 - z), and ∂z/∂(its preactivation) carries z a:
        # common = ∂L/∂g_t (g_t - h_{t-1}) a_t
        common = torch.empty_like(g)
        common[:, 0] = g[:, 0]
        torch.sub(g[:, 1:], h[:, :-1], out=common[:, 1:])
        common.mul_(grad_g)
        if not ctx.lstm:
            torch.mul(common, a, out=chunks[0])
            return grad_projection, None
        common.mul_(a)
        # minLSTM: ∂z/∂i_pre = z a (1 - i), ∂z/∂f_pre = -z a (1 - f)
        i, f = gates
        torch.addcmul(common, common, i, value=-1, out=chunks[1])
        torch.mul(common, f, out=chunks[0]).sub_(common)
        return grad_projection, None


def gated_scan(projection: torch.Tensor, lstm: bool) -> torch.Tensor:
    """minGRU (``lstm`` false: the projection's chunks z_pre, h_pre) or minLSTM (f_pre, i_pre, h_pre)."""
    return GatedScan.apply(projection, lstm)
