"""Recurrent layers written from scratch in NumPy: forward over a sequence, backward through
time, gradient check, SGD and Adam. Batch-first, PyTorch's gate order and its two bias
vectors, so weights copy both ways with ``torch.nn.RNN/LSTM/GRU`` (``*_l0`` parameters).

Gate equations (x_t input, h the previous hidden state, σ the logistic sigmoid):

  RNN   h_t = tanh(W_ih x_t + b_ih + W_hh h + b_hh)     (or relu: with identity init, the IRNN)
  LSTM  i, f, g, o = split(W_ih x_t + b_ih + W_hh h + b_hh)          (rows in that order)
        i, f, o = σ(i), σ(f), σ(o);  g = tanh(g)
        c_t = f * c + i * g;          h_t = o * tanh(c_t)
  GRU   r, z, n rows: a = W_ih x_t + b_ih,  b = W_hh h + b_hh
        r = σ(a_r + b_r);  z = σ(a_z + b_z);  n = tanh(a_n + r * b_n)
        h_t = (1 - z) * n + z * h
"""
from __future__ import annotations

import numpy as np

PARAMETER_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def sigmoid(x: np.ndarray) -> np.ndarray:
    # Split by sign so that exp never overflows.
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    e = np.exp(x[~positive])
    out[~positive] = e / (1.0 + e)
    return out


class RecurrentLayer:
    """Shared plumbing; subclasses define ``gates``, ``step`` and ``step_backward``."""

    gates = 1
    has_cell = False

    def __init__(self, input_size: int, hidden_size: int, seed: int = 0, dtype=np.float64, init: str = "default",
                 forget_bias: float | None = None):
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(hidden_size)  # torch.nn's initialisation
        rows = self.gates * hidden_size
        self.input_size, self.hidden_size = input_size, hidden_size
        self.params = {
            "weight_ih": rng.uniform(-bound, bound, (rows, input_size)).astype(dtype),
            "weight_hh": rng.uniform(-bound, bound, (rows, hidden_size)).astype(dtype),
            "bias_ih": rng.uniform(-bound, bound, rows).astype(dtype),
            "bias_hh": rng.uniform(-bound, bound, rows).astype(dtype),
        }
        # The same rules as seqbench.models.encoders.initialise (same gate order, two biases).
        if init == "identity":
            self.params["weight_hh"] = np.tile(np.eye(hidden_size, dtype=dtype), (self.gates, 1))
            self.params["bias_ih"][:] = 0.0
            self.params["bias_hh"][:] = 0.0
        elif init != "default":
            raise ValueError(f"unknown init {init!r}; valid: default, identity")
        if forget_bias is not None:
            if not isinstance(self, NumpyLSTM):
                raise ValueError("forget_bias applies to the LSTM only")
            self.params["bias_ih"][hidden_size: 2 * hidden_size] = forget_bias
            self.params["bias_hh"][hidden_size: 2 * hidden_size] = 0.0
        self._cache = None

    # ---- copying weights to and from torch.nn.RNN/LSTM/GRU ----
    def load_torch(self, module) -> "RecurrentLayer":
        for name in PARAMETER_NAMES:
            self.params[name] = getattr(module, f"{name}_l0").detach().cpu().double().numpy().copy()
        return self

    def to_torch(self, module) -> None:
        import torch
        with torch.no_grad():
            for name in PARAMETER_NAMES:
                getattr(module, f"{name}_l0").copy_(torch.from_numpy(self.params[name]))

    # ---- whole sequences ----
    def forward(self, x: np.ndarray, h0: np.ndarray | None = None, c0: np.ndarray | None = None):
        """x (B, T, I) -> outputs (B, T, H), final h (B, H)[, final c (B, H)]."""
        batch, steps, _ = x.shape
        h = np.zeros((batch, self.hidden_size), x.dtype) if h0 is None else h0
        c = np.zeros((batch, self.hidden_size), x.dtype) if c0 is None else c0
        outputs = np.empty((batch, steps, self.hidden_size), x.dtype)
        step_caches = []
        for t in range(steps):
            h, c, cache = self.step(x[:, t], h, c)
            outputs[:, t] = h
            step_caches.append(cache)
        self._cache = (x, step_caches)
        return (outputs, h, c) if self.has_cell else (outputs, h)

    def backward(self, d_outputs: np.ndarray, d_h_final: np.ndarray | None = None,
                 d_c_final: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Backpropagation through time from the last ``forward``. Returns gradients of the
        loss for x, h0 (and c0) and every parameter, given its gradients for the outputs
        (B, T, H) and the final states."""
        x, step_caches = self._cache
        batch, steps, _ = x.shape
        grads = {name: np.zeros_like(value) for name, value in self.params.items()}
        dx = np.empty_like(x)
        dh = np.zeros((batch, self.hidden_size), x.dtype) if d_h_final is None else d_h_final.copy()
        dc = np.zeros((batch, self.hidden_size), x.dtype) if d_c_final is None else d_c_final.copy()
        for t in reversed(range(steps)):
            dh = dh + d_outputs[:, t]
            dx[:, t], dh, dc = self.step_backward(step_caches[t], dh, dc, grads)
        grads.update(x=dx, h0=dh)
        if self.has_cell:
            grads["c0"] = dc
        return grads

    def _accumulate(self, grads, x_t, h_prev, d_input_rows, d_hidden_rows):
        """Gradients of W_ih x + b_ih (rows d_input_rows) and W_hh h + b_hh (rows d_hidden_rows)."""
        grads["weight_ih"] += d_input_rows.T @ x_t
        grads["bias_ih"] += d_input_rows.sum(0)
        grads["weight_hh"] += d_hidden_rows.T @ h_prev
        grads["bias_hh"] += d_hidden_rows.sum(0)
        return d_input_rows @ self.params["weight_ih"], d_hidden_rows @ self.params["weight_hh"]


class NumpyRNN(RecurrentLayer):
    gates = 1

    def __init__(self, *args, nonlinearity: str = "tanh", **kwargs):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"unknown nonlinearity {nonlinearity!r}; valid: tanh, relu")
        self.nonlinearity = nonlinearity
        super().__init__(*args, **kwargs)

    def step(self, x_t, h, c):
        p = self.params
        pre = x_t @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        h_new = np.tanh(pre) if self.nonlinearity == "tanh" else np.maximum(pre, 0.0)
        return h_new, c, (x_t, h, h_new)

    def step_backward(self, cache, dh, dc, grads):
        x_t, h_prev, h_new = cache
        # tanh' = 1 - tanh^2; relu' = 1 where the output is positive
        d_pre = dh * (1.0 - h_new ** 2) if self.nonlinearity == "tanh" else dh * (h_new > 0)
        dx, dh_prev = self._accumulate(grads, x_t, h_prev, d_pre, d_pre)
        return dx, dh_prev, dc


class NumpyLSTM(RecurrentLayer):
    gates = 4
    has_cell = True

    def step(self, x_t, h, c):
        p = self.params
        pre = x_t @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]  # (B, 4H)
        i, f, g, o = np.split(pre, 4, axis=1)
        i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
        c_new = f * c + i * g
        tanh_c = np.tanh(c_new)
        h_new = o * tanh_c
        return h_new, c_new, (x_t, h, c, i, f, g, o, tanh_c)

    def step_backward(self, cache, dh, dc, grads):
        x_t, h_prev, c_prev, i, f, g, o, tanh_c = cache
        do = dh * tanh_c
        dc = dc + dh * o * (1.0 - tanh_c ** 2)
        di, df, dg = dc * g, dc * c_prev, dc * i
        d_pre = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)], axis=1)
        dx, dh_prev = self._accumulate(grads, x_t, h_prev, d_pre, d_pre)
        return dx, dh_prev, dc * f


class NumpyGRU(RecurrentLayer):
    gates = 3

    def step(self, x_t, h, c):
        p = self.params
        a = x_t @ p["weight_ih"].T + p["bias_ih"]  # (B, 3H)
        b = h @ p["weight_hh"].T + p["bias_hh"]    # (B, 3H)
        a_r, a_z, a_n = np.split(a, 3, axis=1)
        b_r, b_z, b_n = np.split(b, 3, axis=1)
        r, z = sigmoid(a_r + b_r), sigmoid(a_z + b_z)
        n = np.tanh(a_n + r * b_n)
        h_new = (1.0 - z) * n + z * h
        return h_new, c, (x_t, h, r, z, n, b_n)

    def step_backward(self, cache, dh, dc, grads):
        x_t, h_prev, r, z, n, b_n = cache
        dn = dh * (1.0 - z)
        dz = dh * (h_prev - n)
        d_pre_n = dn * (1.0 - n ** 2)          # through tanh
        dr = d_pre_n * b_n
        d_r_pre, d_z_pre = dr * r * (1 - r), dz * z * (1 - z)
        d_input_rows = np.concatenate([d_r_pre, d_z_pre, d_pre_n], axis=1)
        d_hidden_rows = np.concatenate([d_r_pre, d_z_pre, d_pre_n * r], axis=1)
        dx, dh_prev = self._accumulate(grads, x_t, h_prev, d_input_rows, d_hidden_rows)
        return dx, dh_prev + dh * z, dc


LAYERS = {"rnn": NumpyRNN, "lstm": NumpyLSTM, "gru": NumpyGRU}


# ---- checking and training ----

def gradient_check(layer: RecurrentLayer, x: np.ndarray, epsilon: float = 1e-6, seed: int = 0) -> float:
    """Largest relative error between ``backward`` and central differences, over every
    parameter entry and every input entry, for the loss Σ R ⊙ outputs (R fixed, random)."""
    projection = np.random.default_rng(seed).standard_normal((x.shape[0], x.shape[1], layer.hidden_size))

    def loss() -> float:
        return float(np.sum(layer.forward(x)[0] * projection))

    loss()
    analytic = layer.backward(projection)
    worst = 0.0
    for name, array in [*layer.params.items(), ("x", x)]:
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            saved = array[index]
            array[index] = saved + epsilon
            plus = loss()
            array[index] = saved - epsilon
            minus = loss()
            array[index] = saved
            numeric[index] = (plus - minus) / (2 * epsilon)
        error = np.abs(analytic[name] - numeric) / np.maximum(np.abs(analytic[name]) + np.abs(numeric), 1e-12)
        worst = max(worst, float(error.max()))
    return worst


class SGD:
    def __init__(self, lr: float = 0.01):
        self.lr = lr

    def update(self, params: dict, grads: dict) -> None:
        for name in params:
            params[name] -= self.lr * grads[name]


class Adam:
    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.moments: dict = {}
        self.steps = 0

    def update(self, params: dict, grads: dict) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        for name in params:
            m, v = self.moments.get(name, (np.zeros_like(params[name]), np.zeros_like(params[name])))
            m = beta1 * m + (1 - beta1) * grads[name]
            v = beta2 * v + (1 - beta2) * grads[name] ** 2
            self.moments[name] = (m, v)
            m_hat, v_hat = m / (1 - beta1 ** self.steps), v / (1 - beta2 ** self.steps)
            params[name] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class SequenceRegressor:
    """A NumPy recurrent layer and a per-step linear read-out, trained with its own backward."""

    def __init__(self, cell: str, hidden_size: int, seed: int = 0):
        self.layer = LAYERS[cell](1, hidden_size, seed=seed)
        rng = np.random.default_rng(seed + 1)
        self.head = {"weight": rng.normal(0, 1 / np.sqrt(hidden_size), (hidden_size,)), "bias": np.zeros(1)}

    def predict(self, x: np.ndarray) -> np.ndarray:
        outputs = self.layer.forward(x)[0]
        self._outputs = outputs
        return outputs @ self.head["weight"] + self.head["bias"]  # (B, T)

    def mse(self, x, y, skip: int = 0) -> float:
        return float(np.mean((self.predict(x)[:, skip:] - y[:, skip:]) ** 2))

    def train_step(self, x, y, optimizer, skip: int = 0) -> float:
        prediction = self.predict(x)
        error = np.zeros_like(prediction)
        error[:, skip:] = prediction[:, skip:] - y[:, skip:]
        count = error[:, skip:].size
        d_prediction = 2 * error / count
        grads = self.layer.backward(d_prediction[..., None] * self.head["weight"])
        grads.update(weight=np.einsum("bt,bth->h", d_prediction, self._outputs), bias=np.array([d_prediction.sum()]))
        params = {**self.layer.params, **{f"head.{k}": v for k, v in self.head.items()}}
        optimizer.update(params, {**grads, **{f"head.{k}": grads[k] for k in self.head}})
        return float(np.sum(error ** 2) / count)
