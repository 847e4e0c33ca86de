"""GRU4Rec's and HGRU4Rec's networks as ``nn.Module`` s: item tables, GRU stacks, one step.

:class:`GRU4RecNet` owns every parameter of a GRU4Rec and computes one session-parallel step
(``forward``) and the full output layer (``scores``); :class:`HGRU4RecNet` adds HGRU4Rec's user
GRU and the session initialisation from the user state. The training loops, the walks and the
row-wise updates stay in :mod:`sessionrec.models.gru4rec` / :mod:`~sessionrec.models.hgru4rec`
and :mod:`sessionrec.models.item_rows`.

Parameter names are those of the saved-model file (``weights.pt`` stores ``w.<name>``), so a
model saved before the networks became modules loads unchanged:

* ``Wy`` [n_items, out_width], ``By`` [n_items, 1]: the output item table and bias (with
  ``input_mode = "constrained"`` ``Wy`` is also the input embedding);
* ``E`` [n_items, embedding]: a separate input embedding (``input_mode = "embedding"``);
* ``Wx0`` [n_items, 3h], ``Wrz0`` [h, 2h], ``Wh0`` [h, h], ``Bh0`` [3h] (and ``Wc0``
  [context, 3h]): the original's one-hot input layer (``input_mode = "onehot"``), whose item
  rows are the gates' input projections;
* ``w_ih{i}`` [3h, d_in], ``w_hh{i}`` [3h, h], ``b_ih{i}``, ``b_hh{i}`` [3h]: GRU layer ``i``
  in ``torch.gru_cell`` 's layout;
* HGRU4Rec: ``u_w_ih{i}`` … ``u_b_hh{i}`` (user GRU layer ``i``), ``Winit`` [u, Σ layers],
  ``Binit``.

The item tables (:data:`ITEM_TABLES`) have ``requires_grad = False``: a training step gathers
only the rows it touches into small leaf tensors and updates those rows
(:class:`~sessionrec.models.item_rows.ItemRows`); a gradient of a whole table would cost as
much as a full softmax. Dropout follows the module's ``train()`` / ``eval()`` mode.
"""

from __future__ import annotations

import math

import torch
from torch import nn

INPUT_MODES = ("constrained", "embedding", "onehot")
# Item tables: updated row by row, never through a dense gradient.
ITEM_TABLES = ("Wy", "By", "E", "Wx0")
INPUT_TABLE = {"constrained": "Wy", "embedding": "E", "onehot": "Wx0"}

Layers = list[torch.Tensor]


class GRU4RecNet(nn.Module):
    """GRU4Rec's network: input item rows -> GRU stack -> output layer input.

    Args:
        n_items: catalogue size (rows of the item tables).
        layers: hidden units per GRU layer.
        input_mode: ``constrained`` (input = ``Wy``), ``embedding`` (``E``) or ``onehot``.
        embedding: width of ``E`` (``embedding`` mode).
        out_width: width of the output layer's input (default: the last layer's size).
        context: width of a vector joined to every step's input (0: none; HGRU4Rec's user
            state): a projection ``Wc0`` into the one-hot layer's gates, else extra input
            columns of the first GRU layer.
        dropout_p_embed / dropout_p_hidden: dropout on the input / on each layer's output.
        device: where to allocate (``"meta"``: shapes only, e.g. for a memory estimate).
    """

    def __init__(self, n_items: int, layers: list[int], input_mode: str, embedding: int = 0,
                 out_width: int | None = None, context: int = 0, dropout_p_embed: float = 0.0,
                 dropout_p_hidden: float = 0.0, device: str | torch.device | None = None,
                 ) -> None:
        super().__init__()
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        self.layers, self.input_mode = [int(h) for h in layers], input_mode
        self.dropout_p_embed = float(dropout_p_embed)
        self.dropout_p_hidden = float(dropout_p_hidden)
        self._device = device
        h0 = self.layers[0]
        self._add("Wy", n_items, out_width or self.layers[-1])
        self._add("By", n_items, 1)
        if input_mode == "embedding":
            self._add("E", n_items, int(embedding))
        first = 0
        if input_mode == "onehot":  # layer 0 is the original's one-hot input layer
            self._add("Wx0", n_items, 3 * h0)
            self._add("Wrz0", h0, 2 * h0)
            self._add("Wh0", h0, h0)
            self._add("Bh0", 3 * h0)
            if context:
                self._add("Wc0", context, 3 * h0)
            first = 1
        d_in = {"constrained": out_width or self.layers[-1],
                "embedding": int(embedding)}.get(input_mode, h0) + context
        self._gru_names = self._add_gru("", self.layers, d_in, first)
        self.has_context = context > 0

    # -- construction -------------------------------------------------------------------------
    def _add(self, name: str, *shape: int) -> None:
        t = torch.zeros(shape, dtype=torch.float32, device=self._device)
        self.register_parameter(name, nn.Parameter(t, requires_grad=name not in ITEM_TABLES))

    def _add_gru(self, prefix: str, sizes: list[int], d_in: int,
                 first: int = 0) -> list[tuple[str, str, str, str]]:
        """GRU layers ``first..`` of ``sizes`` (input width ``d_in``); their parameter names."""
        names = []
        for i in range(first, len(sizes)):
            h, d = sizes[i], d_in if i == 0 else sizes[i - 1]
            layer = tuple(f"{prefix}{kind}{i}" for kind in ("w_ih", "w_hh", "b_ih", "b_hh"))
            for name, shape in zip(layer, ((3 * h, d), (3 * h, h), (3 * h,), (3 * h,)),
                                   strict=True):
                self._add(name, *shape)
            names.append(layer)
        return names

    @staticmethod
    def fan_sum(name: str, shape: tuple[int, ...]) -> int | None:
        """fan_in + fan_out of the uniform init of parameter ``name`` (None: zeros)."""
        if name in ("Wy", "E", "Winit"):
            return shape[0] + shape[1]
        if name in ("Wx0", "Wc0"):  # three gate blocks of [rows, h]
            return shape[0] + shape[1] // 3
        if name in ("Wrz0", "Wh0"):  # gate blocks of [h, h]
            return 2 * shape[0]
        if name.startswith(("w_ih", "w_hh", "u_w_ih", "u_w_hh")):  # gate blocks of [h, d_in]
            return shape[0] // 3 + shape[1]
        return None

    @torch.no_grad()
    def reset_parameters(self, gen: torch.Generator, scale: float = 1.0) -> None:
        """Uniform ±scale·sqrt(6 / fan_sum) init in registration order (biases: zeros)."""
        for name, p in self.named_parameters():
            p.zero_()
            fan_sum = self.fan_sum(name, tuple(p.shape))
            if fan_sum is not None:
                bound = scale * math.sqrt(6.0 / fan_sum)
                p.uniform_(-bound, bound, generator=gen)

    def dense_names(self) -> list[str]:
        """Parameters updated as a whole (every one that is not an item table)."""
        return [name for name, _ in self.named_parameters() if name not in ITEM_TABLES]

    # -- the item tables ----------------------------------------------------------------------
    @property
    def input_name(self) -> str:
        """Name of the input item table (``Wy``, ``E`` or ``Wx0``)."""
        return INPUT_TABLE[self.input_mode]

    @property
    def input_table(self) -> torch.Tensor:
        """float32 [n_items, d_in]: the whole input item table."""
        return self.get_parameter(self.input_name)

    def input_rows(self, items: torch.Tensor) -> torch.Tensor:
        """float32 [n, d_in]: the input rows of ``items`` (all known)."""
        return self.input_table.index_select(0, items)

    def scores(self, out: torch.Tensor) -> torch.Tensor:
        """float32 [n, n_items]: every item scored from the output layer input ``out``."""
        return torch.addmm(self.By.view(1, -1), out, self.Wy.t())

    # -- one step -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, hidden: Layers, context: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, Layers]:
        """One session-parallel step.

        Args:
            x: float32 [n, d_in] input rows of the step's items.
            hidden: per layer, float32 [n, h_i]: the states before the step.
            context: float32 [n, c] joined to the input after the input dropout (or None).

        Returns:
            (float32 [n, h_last] the last layer's output, the new states per layer).
        """
        new: Layers = []
        first = 0
        if self.input_mode == "onehot":
            if context is not None:
                x = x + context @ self.Wc0  # [n, 3h]
            x = self._onehot_layer(x, hidden[0])  # [n, h0]
            x = self._dropout(x, self.dropout_p_embed)
            new.append(x)
            first = 1
        else:
            x = self._dropout(x, self.dropout_p_embed)  # [n, d_in]
            if context is not None:
                x = torch.cat([x, context], dim=1)  # [n, d_in + c]
        for i, names in enumerate(self._gru_names, start=first):
            x = torch.gru_cell(x, hidden[i], *self._tensors(names))  # [n, h_i]
            x = self._dropout(x, self.dropout_p_hidden)  # also the state carried on
            new.append(x)
        return x, new

    def _onehot_layer(self, rows: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The original's one-hot input layer: item rows [n, 3h] are the gates' inputs."""
        vx_x, vx_r, vx_z = (rows + self.Bh0).chunk(3, 1)
        vh_r, vh_z = (h @ self.Wrz0).chunk(2, 1)
        r = torch.sigmoid(vx_r + vh_r)
        z = torch.sigmoid(vx_z + vh_z)
        cand = torch.tanh((r * h) @ self.Wh0 + vx_x)
        return (1.0 - z) * h + z * cand

    def _dropout(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Inverted dropout, as ``F.dropout``: each element kept with probability ``1 − p``
        and scaled by ``1 / (1 − p)``. The mask is ``uniform >= p``, drawn with ``rand`` (on
        the CPU several times cheaper than ``F.dropout`` 's ``bernoulli_`` for a step's
        ``[lanes, h]``). No draw at all when off: ``p = 0`` would still use random numbers."""
        if not (self.training and p):
            return x
        return x * torch.rand_like(x).ge_(p).div_(1.0 - p)

    def _tensors(self, names: tuple[str, ...]) -> list[torch.Tensor]:
        params = self._parameters
        return [params[n] for n in names]  # type: ignore[misc]


class HGRU4RecNet(GRU4RecNet):
    """HGRU4Rec's network: GRU4Rec's session network plus the user GRU and ``Winit``.

    Args (beyond :class:`GRU4RecNet`'s, for the session level):
        user_layers: hidden units per user GRU layer (``[]``: no user level).
        user_to_output: the top user layer joins the output layer's input.
        propagate_all: the top user layer joins every session step's input.
        dropout_p_hidden_usr / dropout_p_init: dropout on the user layers' outputs / on the
            session states initialised from the user state.
    """

    def __init__(self, n_items: int, layers: list[int], user_layers: list[int],
                 input_mode: str, embedding: int = 0, user_to_output: bool = False,
                 propagate_all: bool = False, dropout_p_embed: float = 0.0,
                 dropout_p_hidden: float = 0.0, dropout_p_hidden_usr: float = 0.0,
                 dropout_p_init: float = 0.0, device: str | torch.device | None = None,
                 ) -> None:
        user_width = user_layers[-1] if user_layers else 0
        super().__init__(n_items, layers, input_mode, embedding,
                         out_width=layers[-1] + (user_width if user_to_output else 0),
                         context=user_width if propagate_all else 0,
                         dropout_p_embed=dropout_p_embed, dropout_p_hidden=dropout_p_hidden,
                         device=device)
        self.user_layers = [int(h) for h in user_layers]
        self.user_to_output, self.propagate_all = bool(user_to_output), bool(propagate_all)
        self.dropout_p_hidden_usr, self.dropout_p_init = (float(dropout_p_hidden_usr),
                                                          float(dropout_p_init))
        self._user_names = self._add_gru("u_", self.user_layers, self.layers[-1])
        if user_width:
            self._add("Winit", user_width, sum(self.layers))
            self._add("Binit", sum(self.layers))

    def session_step(self, x: torch.Tensor, hidden: Layers, user: Layers,
                     ) -> tuple[torch.Tensor, Layers]:
        """One session step from input rows ``x`` [n, d_in] with user layers ``user``:
        (float32 [n, out_width] output layer input, new session layers)."""
        context = user[-1] if user and self.propagate_all else None
        out, new = self(x, hidden, context)  # [n, h_last]
        if self.user_to_output:
            out = torch.cat([out, user[-1]], dim=1)  # [n, h_last + u]
        return out, new

    def user_step(self, session_top: torch.Tensor, user: Layers) -> Layers:
        """User layers after a session whose final top session layer is ``session_top``."""
        x, new = session_top, []  # [n, h_last]
        for i, names in enumerate(self._user_names):
            x = torch.gru_cell(x, user[i], *self._tensors(names))  # [n, u_i]
            x = self._dropout(x, self.dropout_p_hidden_usr)
            new.append(x)
        return new

    def session_init(self, user_top: torch.Tensor) -> Layers:
        """Session layers of new sessions of users whose top user layer is ``user_top``:
        ``tanh(user_top Winit + Binit)`` split per layer (zeros without a user level)."""
        if not self.user_layers:
            return [torch.zeros((len(user_top), h)) for h in self.layers]
        s0 = torch.tanh(torch.addmm(self.Binit, user_top, self.Winit))  # [n, Σ layers]
        s0 = self._dropout(s0, self.dropout_p_init)
        return list(s0.split(self.layers, dim=1))
