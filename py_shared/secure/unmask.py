"""Removing the masks from a sum of masked inputs, once the survivors' shares are opened: the aggregator's last
step, run by the server in a federated round (server.py) and by every peer in a decentralized one.

Each survivor's self mask is rebuilt from the shares of its seed; each dropout's pair masks with the survivors
that masked with it are rebuilt from the shares of its mask key. A rebuilt secret is checked against what its
owner published (the seed's commitment, the mask key's public key), and a wrong share is found by leaving shares
out, so one liar cannot spoil the sum.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tinygrad import Tensor

from py_shared.secure import masks, records
from py_shared.secure.crypto import KEY_BYTES, Crypto
from py_shared.secure.shamir import ShareError, combine_shares


class SecretLost(Exception):
    """A secret cannot be rebuilt from the shares opened for it."""


@dataclass(frozen=True)
class Owner:
    """What unmasking knows of a participant: its evaluation point and what it published."""

    index: int
    mask_public: bytes
    commitment: bytes  # records.seed_commitment of its seed


async def genuine(crypto: Crypto, owner: Owner, secret: int, value: bytes) -> bool:
    """Whether a rebuilt secret is the owner's: its seed's commitment, or its mask key's public key."""
    if secret == records.SECRET_SEED:
        return records.seed_commitment(value) == owner.commitment
    return await crypto.x25519_public(value) == owner.mask_public


async def rebuild(crypto: Crypto, owner: Owner, secret: int, shares: dict[int, bytes], threshold: int) -> bytes:
    """`owner`'s seed or mask key from the opened shares (responder index -> share), checked genuine."""
    subsets = [shares, *({x: y for x, y in shares.items() if x != out} for out in sorted(shares))]
    for subset in subsets:
        try:
            value = combine_shares(subset, threshold, KEY_BYTES)
        except ShareError:
            continue
        if await genuine(crypto, owner, secret, value):
            return value
    raise SecretLost(f"participant {owner.index}'s secret cannot be rebuilt from {len(shares)} shares")


async def remove_masks(
    crypto: Crypto,
    context: bytes,
    total: Tensor,
    survivors: Sequence[Owner],
    dropped: Sequence[Owner],
    paired: Callable[[int, int], bool],
    opened: Mapping[int, Sequence[records.OpenedShare]],
    threshold: int,
) -> Tensor:
    """The sum of the survivors' encoded inputs (uint32) from their masked sum `total`: their self masks and the
    dropouts' pair masks taken out. `paired(d, m)`: whether survivor m masked with dropout d; `opened`: the
    opened shares, by responder index."""
    size = int(total.shape[0])
    out = masks.MaskSum(total)

    def shares(owner: int, secret: int) -> dict[int, bytes]:
        return {i: r.share for i, rs in opened.items() for r in rs if (r.owner, r.secret) == (owner, secret)}

    for m in survivors:
        seed = await rebuild(crypto, m, records.SECRET_SEED, shares(m.index, records.SECRET_SEED), threshold)
        out.subtract(await masks.self_mask(crypto, seed, context, size))
    for d in dropped:
        private = await rebuild(crypto, d, records.SECRET_MASK_KEY, shares(d.index, records.SECRET_MASK_KEY), threshold)
        for m in survivors:
            if paired(d.index, m.index):
                mask = await masks.pair_mask(crypto, private, m.mask_public, context, size)
                # m added the mask when its index was lower: take back exactly what it did
                (out.subtract if m.index < d.index else out.add)(mask)
    return out.result()
