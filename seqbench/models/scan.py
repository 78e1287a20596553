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
        grad_b = scan_into(torch.empty_like(h), a.conj(), grad_h.contiguous(), reverse=True)
        grad_a = None
        if ctx.needs_input_grad[0]:
            grad_a = torch.zeros_like(h) if a.dim() == h.dim() else None
            products = h[:, :-1].conj() * grad_b[:, 1:]  # step 0 read h_{-1} = 0; conj first: half the time
            if grad_a is None:
                grad_a = products.sum(dim=(0, 1))  # λ is shared by every step and sequence
            else:
                grad_a[:, 1:] = products
        return grad_a, grad_b


def linear_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return LinearScan.apply(a, b)


class GatedScan(torch.autograd.Function):
    """minGRU's and minLSTM's recurrence from their preactivations, gates and all, with the backward
    written out; h = scan(a, b) with b = z ⊙ g(h_pre), g(x) = x + 0.5 for x >= 0, σ(x) otherwise, and

      minGRU   (f_pre None)  z = σ(z_pre), a = 1 - z
      minLSTM  (z_pre = i_pre, f_pre)  i = σ(i_pre), f = σ(f_pre), a = f / (f + i), z = i / (f + i) = 1 - a

    Autograd through these element-wise steps passed over the (B, T, H) tensors some 30 times,
    forward and backward; written out, about 20 passes, and none on boolean masks (``where`` and
    ``masked_fill`` took 4.5 ms on a (50, 400, 64) tensor here, a multiplication 0.3 ms).
    """

    @staticmethod
    def forward(ctx, z_pre: torch.Tensor, h_pre: torch.Tensor, f_pre: torch.Tensor | None = None) -> torch.Tensor:
        if f_pre is None:
            z = torch.sigmoid(z_pre)
            a = torch.rsub(z, 1)
            gates = ()
        else:
            i, f = torch.sigmoid(z_pre), torch.sigmoid(f_pre)
            total = i + f
            z, a = i / total, f / total
            gates = (i, f)
        low = torch.sigmoid(h_pre.clamp_max(0))  # σ(min(x, 0)): g's sigmoid part, 0.5 for x >= 0
        g = h_pre.clamp_min(0).add_(low)  # σ(min(x, 0)) + max(x, 0) = g(x)
        h = scan_into(torch.empty_like(g), a, z * g)
        ctx.save_for_backward(z, a, g, low, h_pre, h, *gates)
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_h: torch.Tensor):
        z, a, g, low, h_pre, h, *gates = ctx.saved_tensors
        grad_b = scan_into(torch.empty_like(h), a, grad_h.contiguous(), reverse=True)  # ∂L/∂h_t in total
        # ∂L/∂z_t = ∂L/∂h_t (g_t - h_{t-1}), with a = 1 - z; times z a: ∂z/∂z_pre (minGRU)
        grad_z = g.clone()
        grad_z[:, 1:].sub_(h[:, :-1])
        grad_z.mul_(grad_b).mul_(z).mul_(a)
        # g'(x) = 1 for x > 0, σ(x)(1 - σ(x)) for x <= 0: the larger of the step and σ'(min(x, 0)) <= 1/4
        slope = torch.maximum(low - low * low, h_pre.sign().clamp_min_(0))
        grad_h_pre = slope.mul_(z).mul_(grad_b)
        if not gates:
            return grad_z, grad_h_pre, None
        # minLSTM: ∂z/∂i_pre = z a (1 - i), ∂z/∂f_pre = -z a (1 - f)
        i, f = gates
        return grad_z * (1 - i), grad_h_pre, grad_z.mul_(f - 1)


def gated_scan(z_pre: torch.Tensor, h_pre: torch.Tensor, f_pre: torch.Tensor | None = None) -> torch.Tensor:
    return GatedScan.apply(z_pre, h_pre, f_pre)
