"""The decentralized endpoint on the real server: peers are introduced and their signaling relayed, while
anything carrying a model, or addressed outside the round, is refused to its sender."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from harness.server_process import running_server
from py_shared.protocol.messages import Error, Join, Message, decode_message, encode_message
from py_shared.protocol.peer_messages import PeerModel, PeerWelcome, Ready, RoundPeers, Signal
from tests.server.conftest import fetch
from tests.server.raw_client import post_task, tiny_task


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(
        tmp_path_factory.mktemp("data"), extra_args=("--ice-server", "stun:stun.example.org:3478")
    ) as url:
        status, body = post_task(url, tiny_task("dec", scheme="decentralized"))
        assert status == 201, body
        yield url


def peer_url(server: str, task: str) -> str:
    return server.replace("http", "ws", 1) + f"/api/tasks/{task}/decentralized"


async def expect(connection: ClientConnection, kind: str) -> Message:
    while True:
        message, _ = decode_message(await asyncio.wait_for(connection.recv(), 10))
        if message.kind == kind:
            return message


async def two_peers_in_a_round(server: str) -> tuple[ClientConnection, ClientConnection, str, str, int]:
    """Two peers that joined and said they are ready: the round's exchange has begun."""
    a = await connect(peer_url(server, "dec"), max_queue=None)
    b = await connect(peer_url(server, "dec"), max_queue=None)
    ids = []
    for c in (a, b):
        await c.send(encode_message(Join(task_id="dec", samples=3)))
        welcome = await expect(c, "peer_welcome")
        assert isinstance(welcome, PeerWelcome)
        assert welcome.ice_servers[0].urls == ("stun:stun.example.org:3478",)  # the server's --ice-server
        ids.append(welcome.peer_id)
    for c in (a, b):
        await c.send(encode_message(Ready(round=welcome.round, samples=3)))
    for c, other in ((a, ids[1]), (b, ids[0])):
        peers = await expect(c, "round_peers")
        assert isinstance(peers, RoundPeers) and peers.neighbours == (other,) and set(peers.members) == set(ids)
    return a, b, ids[0], ids[1], welcome.round


def test_peers_are_introduced_and_their_signaling_relayed(server: str) -> None:
    async def scenario() -> Message:
        a, b, a_id, b_id, round_ = await two_peers_in_a_round(server)
        await a.send(encode_message(Signal(round=round_, peer=b_id, what="offer", data="v=0 offer")))
        relayed = await expect(b, "signal")
        for c in (a, b):
            await c.close()
        assert relayed == Signal(round=round_, peer=a_id, what="offer", data="v=0 offer")  # b hears who sent it
        return relayed

    asyncio.run(scenario())


def test_a_model_or_signaling_outside_the_round_is_refused_to_its_sender(server: str) -> None:
    async def scenario() -> tuple[Message, Message, int | None]:
        a, b, _, b_id, round_ = await two_peers_in_a_round(server)
        outsider = await connect(peer_url(server, "dec"), max_queue=None)
        await outsider.send(encode_message(Join(task_id="dec", samples=3)))
        await expect(outsider, "peer_welcome")
        await outsider.send(encode_message(Signal(round=round_, peer=b_id, what="offer", data="v=0")))
        not_neighbour = await expect(outsider, "error")
        await a.send(encode_message(PeerModel(round=round_, samples=3), bytes(40_000)))  # 40 KB: under the frame limit
        no_model = await expect(a, "error")
        try:  # a model-sized frame is refused from its header
            await a.send(encode_message(PeerModel(round=round_, samples=3), bytes(4 * 2**20)))
            await expect(a, "error")
            code = None
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
        for c in (b, outsider):
            await c.close()
        return not_neighbour, no_model, code

    not_neighbour, no_model, code = asyncio.run(scenario())
    assert isinstance(not_neighbour, Error) and "not your neighbour" in not_neighbour.message
    assert isinstance(no_model, Error) and "does not send 'peer_model'" in no_model.message
    assert code == 1009


def test_the_federated_endpoint_refuses_a_decentralized_task(server: str) -> None:
    async def scenario() -> Message:
        async with connect(server.replace("http", "ws", 1) + "/api/tasks/dec/federated") as c:
            return await expect(c, "error")

    refused = asyncio.run(scenario())
    assert isinstance(refused, Error) and refused.fatal and "is decentralized, not federated" in refused.message


def test_the_task_list_counts_who_is_online_and_a_first_peer_gets_the_initial_model(server: str) -> None:
    status, body = post_task(server, tiny_task("online", scheme="decentralized", secure_aggregation=True))
    assert status == 201, body

    def listed() -> dict[str, object]:
        return {t["id"]: t for t in json.loads(fetch(server + "/api/tasks")[2])["tasks"]}["online"]

    async def scenario() -> tuple[dict[str, object], PeerWelcome, Message]:
        async with connect(peer_url(server, "online"), max_queue=None) as peer:
            await peer.send(encode_message(Join(task_id="online", samples=3)))
            welcome = await expect(peer, "peer_welcome")
            assert isinstance(welcome, PeerWelcome)
            initial = await expect(peer, "global_model")
            return await asyncio.to_thread(listed), welcome, initial

    assert listed()["online"] == 0
    info, welcome, initial = asyncio.run(scenario())
    assert info["online"] == 1 and info["secure_aggregation"] is True and info["differential_privacy"] is False
    assert welcome.initial_model and initial.round == 0  # type: ignore[attr-defined]
