"""One WebRTC data channel to one peer, on aiortc (py_shared.protocol.peer_link does the chunking and pacing).

aiortc does not trickle ICE: its offer and answer already hold every candidate. Browsers do trickle, so a
"candidate" signal is applied when it comes. The ICE server list is always given, an empty one included: without
it aiortc asks a public STUN server, which tests and closed networks cannot reach.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

from aiortc import (
    InvalidStateError,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from py_shared.protocol.peer_link import (
    CHANNEL_LABEL,
    DEFAULT_MAX_FRAME_BYTES,
    LOW_BUFFERED,
    PeerLink,
    SendSignal,
)
from py_shared.protocol.peer_messages import IceServer
from py_shared.protocol.transport import ConnectionClosed

log = logging.getLogger("pydisco.rtc")


class RtcLink(PeerLink):
    """A PeerLink over an aiortc peer connection."""

    def __init__(self, peer_id: str, connection: RTCPeerConnection, initiator: bool, max_frame_bytes: int) -> None:
        super().__init__(peer_id, initiator, max_frame_bytes)
        self._connection = connection
        self._channel: RTCDataChannel | None = None
        connection.on("connectionstatechange", self._on_connection_state)
        connection.on("datachannel", self._on_datachannel)

    @property
    def channel(self) -> RTCDataChannel | None:
        """The data channel itself, once there is one (for diagnostics and tests)."""
        return self._channel

    def _buffered(self) -> int:
        return self._channel.bufferedAmount if self._channel is not None else 0

    def _send_chunk(self, chunk: bytes) -> None:
        if self._channel is None or self._channel.readyState != "open":
            self.closed(f"the data channel to peer {self.peer_id} is not open")
            raise ConnectionClosed(self._close_reason)
        try:
            self._channel.send(chunk)
        except InvalidStateError:
            self.closed(f"the data channel to peer {self.peer_id} closed")
            raise ConnectionClosed(self._close_reason) from None
        except ValueError as e:  # the peer announced a message size limit below one chunk
            self.closed(f"cannot send to peer {self.peer_id}: {e}")
            raise ConnectionClosed(self._close_reason) from None

    async def _release(self) -> None:
        if self._channel is not None:
            self._channel.close()
        await self._connection.close()

    def _attach(self, channel: RTCDataChannel) -> None:
        """Take `channel` as this link's channel and follow its events."""
        self._channel = channel
        channel.bufferedAmountLowThreshold = LOW_BUFFERED
        channel.on("open", self.channel_opened)
        channel.on("message", self.chunk_received)
        channel.on("bufferedamountlow", self.writable)
        channel.on("close", self._on_channel_close)
        if channel.readyState == "open":  # the answering side gets it already open
            self.channel_opened()

    def _on_channel_close(self) -> None:
        self.closed(f"the data channel to peer {self.peer_id} closed")

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if self.initiator or self._channel is not None:
            log.warning("peer %s: closing an extra data channel %r it opened", self.peer_id, channel.label)
            channel.close()
            return
        if channel.label != CHANNEL_LABEL or not channel.ordered or channel.maxRetransmits is not None:
            self.closed(
                f"peer {self.peer_id} opened a data channel {channel.label!r} that is not PyDisco's "
                f"ordered, reliable {CHANNEL_LABEL!r} channel"
            )
            channel.close()
            return
        if channel.maxPacketLifeTime is not None:
            self.closed(f"peer {self.peer_id} opened a data channel that gives up on late messages")
            channel.close()
            return
        self._attach(channel)

    def _on_connection_state(self) -> None:
        state = self._connection.connectionState
        log.debug("peer %s: peer connection %s", self.peer_id, state)
        if state == "failed":
            self.closed(f"the connection to peer {self.peer_id} failed")
        elif state == "closed":
            self.closed(f"the connection to peer {self.peer_id} closed")

    async def _apply_signal(self, what: str, data: str) -> str | None:
        if what in ("offer", "answer"):
            if self._connection.remoteDescription is not None or self.initiator != (what == "answer"):
                raise ValueError(f"{'an' if what == 'offer' else 'this'} {what} was not expected")
            if "\nm=application " not in data.replace("\r\n", "\n"):
                raise ValueError(f"the {what} has no data channel section (m=application)")
            await self._connection.setRemoteDescription(RTCSessionDescription(sdp=data, type=what))
            if what == "offer":
                await self._connection.setLocalDescription(await self._connection.createAnswer())
                return self._local_sdp()
        elif what == "candidate":
            await self._add_candidate(data)
        else:
            log.warning("peer %s: ignoring an unknown signal %r", self.peer_id, what)
        return None

    async def _add_candidate(self, data: str) -> None:
        """Apply a trickled candidate: the JSON of a browser's RTCIceCandidateInit."""
        init = json.loads(data)
        if not isinstance(init, dict):
            raise ValueError("a candidate is a JSON object")
        text, mid, index = init.get("candidate", ""), init.get("sdpMid"), init.get("sdpMLineIndex")
        if not isinstance(text, str) or not (mid is None or isinstance(mid, str)):
            raise ValueError("candidate and sdpMid are strings")
        if not (index is None or (isinstance(index, int) and not isinstance(index, bool))):
            raise ValueError("sdpMLineIndex is an integer")
        if not text:  # the end of the peer's candidates: ours are all in the SDP anyway
            return
        if mid is None and index is None:
            raise ValueError("a candidate names neither sdpMid nor sdpMLineIndex")
        try:
            candidate = candidate_from_sdp(text.removeprefix("candidate:"))
        except (AssertionError, ValueError, IndexError):
            raise ValueError(f"cannot read the candidate {text[:200]!r}") from None
        candidate.sdpMid = mid
        candidate.sdpMLineIndex = index
        await self._connection.addIceCandidate(candidate)

    def _local_sdp(self) -> str:
        description = self._connection.localDescription
        if description is None:
            raise RuntimeError("no local description yet")
        return description.sdp

    def _connection_states(self) -> str:
        """Where the connection got to, in words, for error messages."""
        c = self._connection
        return f"signaling {c.signalingState}, ICE {c.iceConnectionState}, connection {c.connectionState}"


async def open_link(
    peer_id: str,
    initiator: bool,
    send_signal: SendSignal,
    signals: asyncio.Queue[tuple[str, str]],
    ice_servers: Sequence[IceServer] = (),
    timeout_s: float = 20.0,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> RtcLink:
    """Connect to `peer_id`: the initiator offers and opens the channel, the other side answers and takes it.

    `send_signal(what, data)` sends "offer" or "answer" to the peer through the signaling server; `signals` is where
    this link gets what the peer sends ("offer", "answer", "candidate"); it reads them until it closes. Raises
    TimeoutError or ConnectionClosed as PeerLink.establish does.
    """
    servers = [
        RTCIceServer(urls=list(s.urls), username=s.username or None, credential=s.credential or None)
        for s in ice_servers
    ]
    link = RtcLink(peer_id, RTCPeerConnection(RTCConfiguration(iceServers=servers)), initiator, max_frame_bytes)

    async def offer() -> None:
        if initiator:
            link._attach(link._connection.createDataChannel(CHANNEL_LABEL, ordered=True))
            await link._connection.setLocalDescription(await link._connection.createOffer())
            await send_signal("offer", link._local_sdp())

    await link.establish(offer, signals, send_signal, timeout_s)
    return link
