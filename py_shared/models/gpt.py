"""GPT: a decoder-only transformer (pre-LayerNorm, causal self-attention, GELU MLP), tied embeddings.

Input (batch, time) token ids, output (batch, time, vocab) logits. Parameters, in order: tok_emb (vocab, d),
pos_emb (context, d); for each block l: blocks.l.ln1.weight, blocks.l.ln1.bias, blocks.l.attn.qkv.weight
(3d, d), blocks.l.attn.qkv.bias, blocks.l.attn.proj.weight (d, d), blocks.l.attn.proj.bias,
blocks.l.ln2.weight, blocks.l.ln2.bias, blocks.l.mlp.fc.weight (4d, d), blocks.l.mlp.fc.bias,
blocks.l.mlp.proj.weight (d, 4d), blocks.l.mlp.proj.bias; then ln_f.weight, ln_f.bias. The output layer
reuses tok_emb.
"""

from __future__ import annotations

from tinygrad import Tensor

from py_shared.models.base import Model

BLOCK_PARAMS = (
    "ln1.weight",
    "ln1.bias",
    "attn.qkv.weight",
    "attn.qkv.bias",
    "attn.proj.weight",
    "attn.proj.bias",
    "ln2.weight",
    "ln2.bias",
    "mlp.fc.weight",
    "mlp.fc.bias",
    "mlp.proj.weight",
    "mlp.proj.bias",
)


def _layer_norm(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    return x.layernorm(eps=1e-5) * weight + bias


class GPT(Model):
    """Next-token logits for every position of a window of up to `context` tokens."""

    def __init__(self, vocab: int, context: int, layers: int, heads: int, embed: int) -> None:
        self.heads, d = heads, embed

        def normal(*shape: int) -> Tensor:  # GPT-2's initialisation
            return Tensor.normal(*shape, mean=0.0, std=0.02).contiguous()

        self.tok_emb, self.pos_emb = normal(vocab, d), normal(context, d)
        self.blocks: list[dict[str, Tensor]] = []
        for _ in range(layers):
            self.blocks.append(
                {
                    "ln1.weight": Tensor.ones(d).contiguous(),
                    "ln1.bias": Tensor.zeros(d).contiguous(),
                    "attn.qkv.weight": normal(3 * d, d),
                    "attn.qkv.bias": Tensor.zeros(3 * d).contiguous(),
                    "attn.proj.weight": normal(d, d),
                    "attn.proj.bias": Tensor.zeros(d).contiguous(),
                    "ln2.weight": Tensor.ones(d).contiguous(),
                    "ln2.bias": Tensor.zeros(d).contiguous(),
                    "mlp.fc.weight": normal(4 * d, d),
                    "mlp.fc.bias": Tensor.zeros(4 * d).contiguous(),
                    "mlp.proj.weight": normal(d, 4 * d),
                    "mlp.proj.bias": Tensor.zeros(d).contiguous(),
                }
            )
        self.ln_f = (Tensor.ones(d).contiguous(), Tensor.zeros(d).contiguous())

    def _attention(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        batch, time, d = x.shape
        q, k, v = x.linear(p["attn.qkv.weight"].T, p["attn.qkv.bias"]).chunk(3, dim=2)
        q, k, v = (t.reshape(batch, time, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        y = q.scaled_dot_product_attention(k, v, is_causal=True).transpose(1, 2).reshape(batch, time, d)
        return y.linear(p["attn.proj.weight"].T, p["attn.proj.bias"])

    def __call__(self, tokens: Tensor) -> Tensor:
        time = tokens.shape[1]
        x = self.tok_emb[tokens] + self.pos_emb[:time]
        for p in self.blocks:
            x = x + self._attention(_layer_norm(x, p["ln1.weight"], p["ln1.bias"]), p)
            h = _layer_norm(x, p["ln2.weight"], p["ln2.bias"]).linear(p["mlp.fc.weight"].T, p["mlp.fc.bias"])
            x = x + h.gelu().linear(p["mlp.proj.weight"].T, p["mlp.proj.bias"])
        return _layer_norm(x, *self.ln_f) @ self.tok_emb.T

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        blocks = [(f"blocks.{i}.{n}", p[n]) for i, p in enumerate(self.blocks) for n in BLOCK_PARAMS]
        return [
            ("tok_emb", self.tok_emb),
            ("pos_emb", self.pos_emb),
            *blocks,
            ("ln_f.weight", self.ln_f[0]),
            ("ln_f.bias", self.ln_f[1]),
        ]
