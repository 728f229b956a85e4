"""DecentralizedPeer in-process: peers talk to a PeerRoom and to each other through in-memory links, so the round
logic's handling of bad neighbours is checked quickly and exactly (the same peers over the real server and
aiortc: tests/py_cli/test_decentralized.py)."""

from __future__ import annotations

import asyncio
import math
import struct
from array import array
from collections.abc import Callable, Sequence
from dataclasses import replace

from py_cpython.crypto import CPythonCrypto
from py_shared.decentralized.average import weighted_average
from py_shared.decentralized.peer import DecentralizedPeer, fingerprint
from py_shared.federated.client import Status
from py_shared.models import build_model
from py_shared.protocol.messages import Error, Join, Leave, ProtocolError, decode_message, encode_message
from py_shared.protocol.peer_link import SendSignal
from py_shared.protocol.peer_messages import IceServer
from py_shared.protocol.transport import ConnectionClosed, QueuedTransport
from py_shared.secure.precision import fixed_point_for
from py_shared.task import Decentralized, ImageData, MLPModel, SecureAggregation, TaskDefinition
from py_shared.training.trainer import TrainingCancelled
from py_shared.weights import get_vector, set_vector, vector_to_bytes
from server.decentralized.peer_room import PeerRoom
from server.federation.room import Participant

TASK = TaskDefinition(
    id="mem",
    title="mem",
    data=ImageData(width=4, height=4, channels=1, labels=("a", "b")),
    model=MLPModel(hidden=(4,)),
    scheme="decentralized",
    min_participants=3,
    decentralized=Decentralized(exchange_timeout_s=1.0),
)
Tamper = Callable[[bytes], bytes]


class Pipe(QueuedTransport):
    """One end of an in-memory connection: what it sends, `forward` receives."""

    def __init__(self, forward: Callable[[bytes], None]) -> None:
        super().__init__()
        self.forward = forward

    async def send(self, frame: bytes) -> None:
        if self._close_reason:
            raise ConnectionClosed(self._close_reason)
        self.forward(frame)

    async def close(self) -> None:
        self.closed("closed")


def server_connection(room: PeerRoom, name: str) -> QueuedTransport:
    """A peer's connection to `room`, dispatching as the server's endpoint does."""
    client: Pipe
    pending: set[asyncio.Future[None]] = set()

    def to_room(frame: bytes) -> None:
        message, payload = decode_message(frame)
        if isinstance(message, Join):
            work = room.join(Participant(name, name, client.deliver, client.deliver))
        elif isinstance(message, Leave):
            work = room.leave(name)
        else:
            work = handle(message, payload)
        pending.add(future := asyncio.ensure_future(work))
        future.add_done_callback(pending.discard)

    async def handle(message: object, payload: bytes) -> None:
        try:
            await room.handle(name, message, payload)  # type: ignore[arg-type]
        except ProtocolError as e:
            client.deliver(encode_message(Error(code=e.code, message=str(e))))

    client = Pipe(to_room)
    return client


class Network:
    """In-memory links between peers; `tamper[peer]` rewrites every frame that peer sends."""

    def __init__(self, tamper: dict[str, Tamper] | None = None) -> None:
        self.ends: dict[tuple[str, str], Pipe] = {}
        self.tamper = tamper or {}
        self.sent: dict[str, int] = {}  # bytes each peer sent

    def _carry(self, sender: str, receiver: str, frame: bytes) -> None:
        self.sent[sender] = self.sent.get(sender, 0) + len(frame)
        self.ends[(receiver, sender)].deliver(frame)

    def opener(self, me: str) -> Callable[..., object]:
        async def open_link(
            peer_id: str,
            initiator: bool,
            send_signal: SendSignal,
            signals: asyncio.Queue[tuple[str, str]],
            ice_servers: Sequence[IceServer] = (),
            timeout_s: float = 20.0,
        ) -> QueuedTransport:
            change = self.tamper.get(me, lambda frame: frame)
            end = Pipe(lambda frame: self._carry(me, peer_id, change(frame)))
            self.ends[(me, peer_id)] = end
            while (peer_id, me) not in self.ends:  # both sides open before either sends
                await asyncio.sleep(0.001)
            return end

        return open_link


async def peers_run_a_round(network: Network, names: str = "abc", task: TaskDefinition = TASK) -> dict[str, bytes]:
    """Peers named by `names` join, 'train' (each shifts its model by its index), and run round 0."""
    room = PeerRoom(task)
    peers = []
    for name in names:
        peer = DecentralizedPeer(task, build_model(task), 10, lambda n=name: _ready(server_connection(room, n)),
                                 network.opener(name), crypto=CPythonCrypto())  # type: ignore[arg-type]  # fmt: skip
        await peer.start()
        peers.append(peer)
    for i, peer in enumerate(peers):
        set_vector(peer.model, get_vector(peer.model) + float(i + 1))
    await asyncio.gather(*(p.round_end(1) for p in peers))
    return {p.peer_id: vector_to_bytes(get_vector(p.model)) for p in peers}


async def _ready(transport: QueuedTransport) -> QueuedTransport:
    return transport


def trained(i: int) -> bytes:
    return vector_to_bytes(get_vector(build_model(TASK)) + float(i + 1))


def test_peers_end_the_round_with_the_samples_weighted_average() -> None:
    models = asyncio.run(peers_run_a_round(Network()))
    assert len(set(models.values())) == 1
    assert models["a"] == weighted_average([(trained(i), 10) for i in range(3)])


def nan_model(frame: bytes) -> bytes:
    message, payload = decode_message(frame)
    return encode_message(message, struct.pack("<f", math.nan) + payload[4:])


def test_a_neighbour_sending_nan_is_left_out_and_the_others_agree() -> None:
    models = asyncio.run(peers_run_a_round(Network({"c": nan_model})))
    expected = weighted_average([(trained(0), 10), (trained(1), 10)])
    assert models["a"] == models["b"] == expected
    # c's own copy was never garbled: it holds every included model, so it ends the round with them
    assert models["c"] == expected


def test_a_neighbour_sending_something_else_than_its_model_is_left_out() -> None:
    def not_a_model(frame: bytes) -> bytes:
        return encode_message(Leave())

    models = asyncio.run(peers_run_a_round(Network({"b": not_a_model})))
    assert models["a"] == models["c"] == weighted_average([(trained(0), 10), (trained(2), 10)])


def test_a_neighbour_sending_a_model_of_the_wrong_length_is_left_out() -> None:
    def longer(frame: bytes) -> bytes:
        message, payload = decode_message(frame)
        return encode_message(message, payload + b"\0\0\0\0")

    models = asyncio.run(peers_run_a_round(Network({"b": longer})))
    assert models["a"] == models["c"] == weighted_average([(trained(0), 10), (trained(2), 10)])


def test_a_bit_flipped_in_transit_is_caught_as_a_malformed_frame() -> None:
    models = asyncio.run(peers_run_a_round(Network({"a": garbled})))  # the shared decoder refuses a's frames
    assert models["b"] == models["c"] == weighted_average([(trained(1), 10), (trained(2), 10)])


RING = replace(TASK, min_participants=5, decentralized=Decentralized(topology="ring", exchange_timeout_s=1.0))


def ring_average(count: int) -> bytes:
    """The ring's result: the float64 sum of samples x model in ring order, divided once, rounded to float32."""
    total = [0.0] * (len(trained(0)) // 4)
    for i in range(count):
        total = [t + 10 * x for t, x in zip(total, array("f", trained(i)), strict=True)]
    return array("f", (t / (10 * count) for t in total)).tobytes()


def test_a_ring_ends_with_one_average_and_each_member_sends_about_three_models() -> None:
    network = Network()
    models = asyncio.run(peers_run_a_round(network, "abcde", RING))
    assert set(models.values()) == {ring_average(5)}
    model_bytes = len(trained(0))
    for peer, sent in network.sent.items():  # a float64 sum and a float32 average at most, whatever n is
        assert sent < 3 * model_bytes + 4096, (peer, sent / model_bytes)


def garbled(frame: bytes) -> bytes:
    return b"XX" + frame[2:]


def test_a_ring_broken_before_its_end_includes_nothing_and_everyone_goes_back_to_the_round_s_start() -> None:
    start = vector_to_bytes(get_vector(build_model(RING)))
    models = asyncio.run(peers_run_a_round(Network({"c": garbled}), "abcde", RING))  # d cannot read c's sum
    assert set(models.values()) == {start}


def test_a_member_the_average_does_not_reach_listens_next_round_and_the_others_keep_it() -> None:
    def garble_the_average(frame: bytes) -> bytes:
        return garbled(frame) if decode_message(frame)[0].kind == "ring_model" else frame

    models = asyncio.run(peers_run_a_round(Network({"c": garble_the_average}), "abcde", RING))
    assert models["a"] == models["b"] == models["c"] == models["e"] == ring_average(5)
    assert models["d"] != ring_average(5)  # it keeps its own until it listens to the next round


def test_gossip_keeps_the_mean_and_narrows_the_spread() -> None:
    task = replace(TASK, min_participants=8, decentralized=Decentralized(topology="gossip", gossip_degree=4))
    models = asyncio.run(peers_run_a_round(Network(), "abcdefgh", task))
    before = [array("f", trained(i)) for i in range(8)]
    after = [array("f", m) for m in models.values()]
    for column in (0, 7, 23):
        mean_before = sum(v[column] for v in before) / 8
        mean_after = sum(v[column] for v in after) / 8
        assert abs(mean_after - mean_before) < 1e-5  # a doubly stochastic mix keeps the mean
        spread = max(abs(v[column] - mean_before) for v in after)
        assert spread < max(abs(v[column] - mean_before) for v in before) * 0.75


def test_the_peers_report_the_fingerprint_of_the_model_they_all_hold() -> None:
    models = asyncio.run(peers_run_a_round(Network()))
    assert len({fingerprint(m) for m in models.values()}) == 1
    assert len(fingerprint(next(iter(models.values())))) == 16 and fingerprint(None) == ""


def test_a_peer_waiting_for_the_others_can_be_cancelled() -> None:
    async def scenario() -> str:
        room = PeerRoom(TASK)  # needs 3 peers: this one waits for the others
        statuses: list[Status] = []
        peer = DecentralizedPeer(TASK, build_model(TASK), 10, lambda: _ready(server_connection(room, "a")),
                                 Network().opener("a"), on_status=statuses.append)  # type: ignore[arg-type]  # fmt: skip
        await peer.start()
        waiting = asyncio.ensure_future(peer.round_end(1))
        while peer.status.state != "waiting":
            await asyncio.sleep(0.01)
        await peer.cancel()
        try:
            await asyncio.wait_for(waiting, 5)
        except TrainingCancelled as e:
            return str(e)
        return "not cancelled"

    assert asyncio.run(scenario()) == "left the peers"


def test_a_peer_dropped_while_waiting_for_the_round_joins_again_and_takes_part_in_it() -> None:
    # regression: the peer used to count the round as lost, and ended its epochs a round before the others, who
    # then waited for it at their last round (its event loop busy training, the server's keepalive dropped it)
    async def scenario() -> tuple[dict[str, bytes], dict[str, int]]:
        room = PeerRoom(TASK)
        network, ends, peers = Network(), {}, {}
        for name in "abc":

            async def connect(n: str = name) -> QueuedTransport:
                ends[n] = server_connection(room, n)
                return ends[n]

            peers[name] = DecentralizedPeer(TASK, build_model(TASK), 10, connect, network.opener(name),
                                            max_backoff_s=0.01)  # type: ignore[arg-type]  # fmt: skip
            await peers[name].start()
        for i, peer in enumerate(peers.values()):
            set_vector(peer.model, get_vector(peer.model) + float(i + 1))
        waiting = asyncio.ensure_future(peers["a"].round_end(1))
        while peers["a"].status.state != "waiting":
            await asyncio.sleep(0.01)
        await room.leave("a")  # the server drops a's connection
        ends["a"].closed("keepalive ping timeout")
        deadline = asyncio.get_running_loop().time() + 10
        while peers["a"].status.state != "waiting" or "a" not in room.participants:  # it joined and is ready again
            assert asyncio.get_running_loop().time() < deadline, peers["a"].status
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(waiting, peers["b"].round_end(1), peers["c"].round_end(1)), 20)
        models = {n: vector_to_bytes(get_vector(p.model)) for n, p in peers.items()}
        return models, {n: p.round for n, p in peers.items()}

    models, rounds = asyncio.run(scenario())
    assert models["a"] == models["b"] == models["c"] == weighted_average([(trained(i), 10) for i in range(3)])
    assert rounds == {"a": 1, "b": 1, "c": 1}


def test_a_peer_whose_round_went_on_without_it_is_next_ready_for_the_same_round_as_the_others() -> None:
    async def scenario() -> tuple[int, int, set[bytes]]:
        task = replace(TASK, min_participants=2)
        room = PeerRoom(task)
        network = Network()
        peers = [DecentralizedPeer(task, build_model(task), 10, lambda n=n: _ready(server_connection(room, n)),
                                   network.opener(n)) for n in "abc"]  # type: ignore[arg-type]  # fmt: skip
        await peers[0].start()
        await peers[1].start()
        first = asyncio.gather(peers[0].round_end(1), peers[1].round_end(1))
        while room.exchange is None:
            await asyncio.sleep(0.001)
        await peers[2].start()  # c joins while a and b exchange
        missed = asyncio.ensure_future(peers[2].round_end(1))
        await asyncio.wait_for(asyncio.gather(first, missed), 20)
        after_missing = peers[2].round
        await asyncio.wait_for(asyncio.gather(*(p.round_end(2) for p in peers)), 20)  # c listens; it gets the model
        return after_missing, peers[2].round, {vector_to_bytes(get_vector(p.model)) for p in peers}

    after_missing, after_next, models = asyncio.run(scenario())
    assert (after_missing, after_next) == (1, 2) and len(models) == 1


SECURE = replace(TASK, secure_aggregation=True, secure=SecureAggregation(clip_value=8.0, phase_timeout_s=1.0))
SECURE_RING = replace(SECURE, min_participants=5, decentralized=RING.decentralized)


def mean_change(members: Sequence[int]) -> array[float]:
    """The model every peer should end a secure round with: the start plus the mean of the included changes."""
    start = array("f", vector_to_bytes(get_vector(build_model(TASK))))
    shift = sum(i + 1 for i in members) / len(members)
    return array("f", (x + shift for x in start))


def close_to(model: bytes, expected: array[float]) -> bool:
    codec = fixed_point_for(SECURE.secure.clip_value, SECURE.secure.max_participants)
    bound = 5 * codec.max_error(1) + 1e-5  # each change rounded once; the division and the float32 result
    return all(abs(a - b) <= bound for a, b in zip(array("f", model), expected, strict=True))


def of_kind(kind: str, change: Tamper) -> Tamper:
    return lambda frame: change(frame) if decode_message(frame)[0].kind == kind else frame


def test_secure_peers_end_with_one_model_the_mean_change_and_no_model_travels_in_clear() -> None:
    network = Network()
    frames: list[bytes] = []
    network.tamper = {p: (lambda f: frames.append(f) or f) for p in "abc"}  # type: ignore[func-returns-value]
    models = asyncio.run(peers_run_a_round(network, "abc", SECURE))
    assert len(set(models.values())) == 1
    assert close_to(models["a"], mean_change([0, 1, 2]))
    kinds = {decode_message(f)[0].kind for f in frames}
    assert kinds == {"peer_keys", "peer_shares", "masked_model", "opened_shares"}
    for i in range(3):  # neither a model nor its change is in any frame
        change = vector_to_bytes(get_vector(build_model(TASK)) * 0 + float(i + 1))
        assert not any(trained(i)[:64] in f or change[:64] in f for f in frames)


def test_a_secure_member_whose_masked_input_is_lost_is_unmasked_out_of_the_sum() -> None:
    # c shared its keys, then its masked input never arrives: a and b open c's mask key instead of its seed
    models = asyncio.run(peers_run_a_round(Network({"c": of_kind("masked_model", garbled)}), "abc", SECURE))
    assert models["a"] == models["b"] and close_to(models["a"], mean_change([0, 1]))
    assert models["c"] != models["a"]  # it lacks the round's model: it listens next round


def test_a_secure_member_that_drops_before_opening_its_shares_is_still_summed() -> None:
    # the threshold is 2 of 3: a and b rebuild c's seed without c's own share
    models = asyncio.run(peers_run_a_round(Network({"c": of_kind("opened_shares", garbled)}), "abc", SECURE))
    assert models["a"] == models["b"] and close_to(models["a"], mean_change([0, 1, 2]))


def test_a_secure_ring_sums_masked_inputs_with_two_vectors_a_member() -> None:
    network = Network()
    models = asyncio.run(peers_run_a_round(network, "abcde", SECURE_RING))
    assert len(set(models.values())) == 1 and close_to(models["a"], mean_change(range(5)))
    model_bytes = len(trained(0))
    for peer, sent in network.sent.items():  # two uint32 vectors, plus keys and shares
        assert sent < 2 * model_bytes + 16 * 1024, (peer, sent / model_bytes)


def test_a_secure_ring_broken_midway_includes_nothing() -> None:
    start = vector_to_bytes(get_vector(build_model(RING)))
    models = asyncio.run(peers_run_a_round(Network({"c": of_kind("masked_sum", garbled)}), "abcde", SECURE_RING))
    assert set(models.values()) == {start}


def test_a_peer_starts_from_the_server_s_initial_model_and_keeps_its_own_when_it_joins_again() -> None:
    async def scenario() -> tuple[bytes, bytes, bytes]:
        initial = vector_to_bytes(get_vector(build_model(TASK)))
        room = PeerRoom(TASK, initial=initial)
        peer = DecentralizedPeer(TASK, build_model(TASK), 10, lambda: _ready(server_connection(room, "a")),
                                 Network().opener("a"))  # type: ignore[arg-type]  # fmt: skip
        set_vector(peer.model, get_vector(peer.model) + 1e-3)  # another device rounds its draw differently
        await peer.start()
        first = vector_to_bytes(get_vector(peer.model))
        set_vector(peer.model, get_vector(peer.model) + 1.0)  # it trained; then the server restarts
        room = PeerRoom(TASK, initial=initial)
        await peer.start()
        return initial, first, vector_to_bytes(get_vector(peer.model))

    initial, first, again = asyncio.run(scenario())
    assert first == initial and again != initial


def test_secure_peers_masking_with_a_sparse_graph_end_with_the_mean_change() -> None:
    sparse = replace(SECURE, min_participants=6, secure=replace(SECURE.secure, graph="sparse", neighbours=2))
    models = asyncio.run(peers_run_a_round(Network(), "abcdef", sparse))
    assert len(set(models.values())) == 1 and close_to(models["a"], mean_change(range(6)))
