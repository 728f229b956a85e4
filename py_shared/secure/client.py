"""A participant's side of one attempt of a secure sum (Bonawitz et al. 2017), as a state machine without I/O.

advertise -> (key list) -> share keys -> (forwarded shares) -> masked input -> (unmask request) -> opened shares.
Each step takes what the server sent and returns the payload to answer with, after checking everything it can:
its own index and the threshold the task implies, that every share is addressed to it and authentic, that it
never opens both secrets of one participant, and that enough participants remain for the shares to mean
anything. Whatever fails raises SecureRoundError; the caller then waits for the server to redo the round.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tinygrad import Tensor

from py_shared.protocol.secure_messages import ForwardedShares, KeyList, UnmaskRequest
from py_shared.secure import fixed_point, masks, records
from py_shared.secure.crypto import KEY_BYTES, NONCE_BYTES, Crypto, CryptoError
from py_shared.secure.graph import threshold
from py_shared.secure.records import OpenedShare, PeerKey, SealedShares
from py_shared.secure.shamir import SHARE_BYTES, split_secret

PrepareInput = Callable[[KeyList], Awaitable[Tensor]]


class SecureRoundError(Exception):
    """This attempt cannot go on safely (what the server sent is inconsistent or too few remain)."""


def share_aad(context: bytes, sender: int, receiver: int) -> bytes:
    """What a share ciphertext is bound to: the attempt and both endpoints, so the server cannot redirect it."""
    return context + f"|{sender}->{receiver}".encode()


class SecAggClient:
    """One attempt: fresh keys, shares, masked input, unmasking answers."""

    def __init__(
        self,
        crypto: Crypto,
        task_id: str,
        round_: int,
        threshold_fraction: float,
        prepare_input: PrepareInput,
        purpose: str = "update",
        degree: int | None = None,
    ) -> None:
        self.crypto, self.task_id, self.round, self.purpose = crypto, task_id, round_, purpose
        # peers know their mask graph's degree; a server's client takes it from how many neighbours it is given
        self.degree = degree
        self.threshold_fraction, self.prepare_input = threshold_fraction, prepare_input
        self.cipher_private = crypto.random_bytes(KEY_BYTES)
        self.mask_private = crypto.random_bytes(KEY_BYTES)
        self.seed = crypto.random_bytes(KEY_BYTES)
        self.key_list: KeyList | None = None
        self.peers: dict[int, PeerKey] = {}
        self.share_keys: dict[int, bytes] = {}  # neighbour -> AES-GCM key
        self.held: dict[int, tuple[bytes, bytes]] = {}  # owner -> (mask key share, seed share), own included
        self.masked_with: set[int] = set()
        self.opened = False

    @property
    def context(self) -> bytes:
        if self.key_list is None:
            raise SecureRoundError("no key list yet")
        return masks.context(self.task_id, self.purpose, self.round, self.key_list.attempt)

    async def advertise(self) -> bytes:
        """The advertise_keys payload: both public keys and the seed's commitment."""
        cipher = await self.crypto.x25519_public(self.cipher_private)
        mask = await self.crypto.x25519_public(self.mask_private)
        return records.pack_keys(cipher, mask, records.seed_commitment(self.seed))

    async def on_key_list(self, message: KeyList, payload: bytes) -> bytes:
        """Check the participants, split both secrets among them, encrypt each neighbour's shares."""
        if message.round != self.round:
            raise SecureRoundError(f"a key list for round {message.round}, not {self.round}")
        peers = records.unpack_peer_keys(payload)
        indices = [p.index for p in peers]
        if len(set(indices)) != len(indices) or message.index in indices or message.index < 1:
            raise SecureRoundError("the key list repeats an index or lists this participant as its own neighbour")
        if len({p.mask_public for p in peers}) != len(peers) or len({p.cipher_public for p in peers}) != len(peers):
            raise SecureRoundError("the key list repeats a public key")
        expected = threshold(self.threshold_fraction, len(peers) if self.degree is None else self.degree)
        if message.threshold != expected:
            raise SecureRoundError(f"the server asks for threshold {message.threshold}; this task's is {expected}")
        self.key_list, self.peers = message, {p.index: p for p in peers}
        xs = [message.index, *indices]
        mask_shares = split_secret(self.mask_private, message.threshold, xs, self.crypto.random_bytes)
        seed_shares = split_secret(self.seed, message.threshold, xs, self.crypto.random_bytes)
        self.held[message.index] = (mask_shares[message.index], seed_shares[message.index])
        sealed = []
        for p in peers:
            key = await masks.share_key(self.crypto, self.cipher_private, p.cipher_public, self.context)
            self.share_keys[p.index] = key
            nonce = self.crypto.random_bytes(NONCE_BYTES)
            plaintext = mask_shares[p.index] + seed_shares[p.index]
            aad = share_aad(self.context, message.index, p.index)
            ciphertext = await self.crypto.aes_gcm_encrypt(key, nonce, plaintext, aad)
            sealed.append(SealedShares(message.index, p.index, nonce, ciphertext))
        return records.pack_sealed(sealed)

    async def on_forwarded_shares(self, message: ForwardedShares, payload: bytes) -> bytes:
        """Decrypt the neighbours' shares, then mask this participant's input with every neighbour that shared."""
        key_list = self._key_list(message.attempt)
        for r in records.unpack_sealed(payload):
            if r.receiver != key_list.index or r.sender not in self.peers or r.sender in self.held:
                raise SecureRoundError(f"a share record from {r.sender} to {r.receiver} was not meant for us")
            aad = share_aad(self.context, r.sender, r.receiver)
            try:
                plain = await self.crypto.aes_gcm_decrypt(self.share_keys[r.sender], r.nonce, r.ciphertext, aad)
            except CryptoError:
                raise SecureRoundError(f"the shares of participant {r.sender} are not authentic") from None
            self.held[r.sender] = (plain[:SHARE_BYTES], plain[SHARE_BYTES:])
        self.masked_with = set(self.held) - {key_list.index}
        if len(self.held) < key_list.threshold:
            raise SecureRoundError(f"only {len(self.held)} of this participant's group remain, below the threshold")
        encoded = await self.prepare_input(key_list)
        size = int(encoded.shape[0])
        total = masks.MaskSum(encoded)
        total.add(await masks.self_mask(self.crypto, self.seed, self.context, size))
        for v in sorted(self.masked_with):
            mask = await masks.pair_mask(self.crypto, self.mask_private, self.peers[v].mask_public, self.context, size)
            # the lower index adds the pair's mask, the higher subtracts it: they cancel in the sum
            (total.add if key_list.index < v else total.subtract)(mask)
        return fixed_point.to_bytes(total.result())

    def on_unmask_request(self, message: UnmaskRequest) -> bytes:
        """The shares unmasking needs: seeds of the survivors, mask keys of neighbours who dropped after sharing."""
        key_list = self._key_list(message.attempt)
        survivors, dropped = set(message.survivors), set(message.dropped)
        if self.opened:
            raise SecureRoundError("the server asked twice for this attempt's shares")
        if survivors & dropped or key_list.index not in survivors:
            raise SecureRoundError("the server's survivor and dropout lists are inconsistent")
        group = set(self.held)
        if len(survivors & group) < key_list.threshold:
            raise SecureRoundError(f"{len(survivors & group)} survivors in this participant's group: below threshold")
        self.opened = True
        opened = [OpenedShare(v, records.SECRET_SEED, self.held[v][1]) for v in sorted(survivors & group)]
        opened += [OpenedShare(v, records.SECRET_MASK_KEY, self.held[v][0]) for v in sorted(dropped & group)]
        return records.pack_opened(opened)

    def _key_list(self, attempt: int) -> KeyList:
        if self.key_list is None or self.key_list.attempt != attempt:
            raise SecureRoundError(f"a message for attempt {attempt}, which this participant is not in")
        return self.key_list
