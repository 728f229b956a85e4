"""One WebRTC data channel to one peer, on aiortc, as a QueuedTransport of whole protocol frames.

Decentralized rounds send models straight from peer to peer; the server only relays the few signaling messages
that set a connection up. The round logic wants what it has from the server's WebSocket: whole frames, in order,
and ConnectionClosed with a reason when the peer is gone or misbehaves. A data channel gives neither: browsers
disagree on how large one message may be, so frames travel as 64 KiB chunks (py_shared.protocol.chunks), and
`send` must not queue megabytes inside the channel, so it waits on bufferedAmount the way a browser page does.

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

from py_shared.decentralized.peer import SendSignal
from py_shared.protocol.chunks import ChunkError, Reassembler, split_frame
from py_shared.protocol.peer_messages import IceServer
from py_shared.protocol.transport import ConnectionClosed, QueuedTransport

log = logging.getLogger("pydisco.rtc")

CHANNEL_LABEL = "pydisco"
MAX_BUFFERED = 2**20  # send() waits while more than this waits inside the channel...
LOW_BUFFERED = 256 * 1024  # ...until it fell to this ('bufferedamountlow')
DEFAULT_MAX_FRAME_BYTES = 64 * 2**20


def _describe(error: BaseException) -> str:
    """An exception in words, even when it has no message (aiortc raises some bare ones)."""
    return str(error) or type(error).__name__


class RtcLink(QueuedTransport):
    """An open (or opening) data channel to one peer: whole frames out with `send`, in with `receive`."""

    peer_id: str

    def __init__(self, peer_id: str, connection: RTCPeerConnection, initiator: bool, max_frame_bytes: int) -> None:
        super().__init__()
        self.peer_id = peer_id
        self._connection = connection
        self._initiator = initiator
        self._channel: RTCDataChannel | None = None
        self._opened = False
        self._reassembler = Reassembler(max_frame_bytes)
        self._message_id = 0  # of the last frame sent; the peer's Reassembler wants them growing
        self._send_lock = asyncio.Lock()  # one frame's chunks at a time
        self._writable = asyncio.Event()  # bufferedAmount fell low, or the link closed
        self._settled = asyncio.Event()  # the channel opened, or the link closed
        self._signal_task: asyncio.Task[None] | None = None
        self._shutdown: asyncio.Task[None] | None = None
        connection.on("connectionstatechange", self._on_connection_state)
        connection.on("datachannel", self._on_datachannel)

    @property
    def channel(self) -> RTCDataChannel | None:
        """The data channel itself, once there is one (for diagnostics and tests)."""
        return self._channel

    @property
    def state(self) -> str:
        """'connecting', 'open' or 'closed: <reason>'."""
        if self._close_reason:
            return f"closed: {self._close_reason}"
        return "open" if self._opened else "connecting"

    async def send(self, frame: bytes) -> None:
        """Send one whole frame as chunks, waiting while the channel holds more than MAX_BUFFERED bytes."""
        async with self._send_lock:
            channel = self._open_channel()
            self._message_id += 1
            for chunk in split_frame(frame, self._message_id):
                while channel.bufferedAmount > MAX_BUFFERED and not self._close_reason:
                    self._writable.clear()
                    await self._writable.wait()
                channel = self._open_channel()
                try:
                    channel.send(chunk)
                except InvalidStateError:
                    self.closed(f"the data channel to peer {self.peer_id} closed")
                    raise ConnectionClosed(self._close_reason) from None
                except ValueError as e:  # the peer announced a message size limit below one chunk
                    self.closed(f"cannot send to peer {self.peer_id}: {e}")
                    raise ConnectionClosed(self._close_reason) from None

    async def close(self) -> None:
        """Close the channel and the peer connection (idempotent)."""
        self.closed("closed by this side")
        if self._shutdown is not None:
            await asyncio.shield(self._shutdown)

    def closed(self, reason: str) -> None:
        """The link ended (safe to call more than once): readers and writers wake up, everything is released."""
        if self._close_reason:
            return
        super().closed(reason)
        log.info("peer %s: %s", self.peer_id, self.state)
        self._writable.set()
        self._settled.set()
        self._shutdown = asyncio.ensure_future(self._release())

    def _open_channel(self) -> RTCDataChannel:
        """The channel, or ConnectionClosed when it is not open."""
        if self._close_reason:
            raise ConnectionClosed(self._close_reason)
        if self._channel is None or self._channel.readyState != "open":
            raise ConnectionClosed(f"the data channel to peer {self.peer_id} is not open")
        return self._channel

    async def _release(self) -> None:
        if self._signal_task is not None and self._signal_task is not asyncio.current_task():
            self._signal_task.cancel()
        if self._channel is not None:
            self._channel.close()
        try:
            await self._connection.close()
        except Exception as e:  # closing must not fail the caller; say what happened
            log.warning("peer %s: closing the peer connection failed: %s", self.peer_id, _describe(e))

    def _attach(self, channel: RTCDataChannel) -> None:
        """Take `channel` as this link's channel and follow its events."""
        self._channel = channel
        channel.bufferedAmountLowThreshold = LOW_BUFFERED
        channel.on("open", self._on_open)
        channel.on("message", self._on_message)
        channel.on("bufferedamountlow", self._writable.set)
        channel.on("close", self._on_channel_close)
        if channel.readyState == "open":  # the answering side gets it already open
            self._on_open()

    def _on_open(self) -> None:
        if self._close_reason or self._opened:
            return
        self._opened = True
        log.info("peer %s: open", self.peer_id)
        self._settled.set()

    def _on_channel_close(self) -> None:
        self.closed(f"the data channel to peer {self.peer_id} closed")

    def _on_message(self, data: bytes | str) -> None:
        if self._close_reason:
            return
        if isinstance(data, str):
            self.closed(f"peer {self.peer_id} sent a text message; PyDisco peers send binary chunks only")
            return
        try:
            frame = self._reassembler.feed(data)
        except ChunkError as e:
            self.closed(f"peer {self.peer_id} sent a malformed chunk: {e}")
            return
        if frame is not None:
            self.deliver(frame)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if self._initiator or self._channel is not None:
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

    async def _read_signals(self, signals: asyncio.Queue[tuple[str, str]], send_signal: SendSignal) -> None:
        """Apply what the peer sends through the signaling server until the link closes."""
        while not self._close_reason:
            what, data = await signals.get()
            try:
                await self._apply_signal(what, data)
            except Exception as e:  # whatever aiortc cannot take from this peer ends the link
                self.closed(f"peer {self.peer_id} sent a bad {what!r} signal: {_describe(e)}")
                return
            if what == "offer":
                try:
                    await send_signal("answer", self._local_sdp())
                except Exception as e:
                    self.closed(f"cannot send the answer to peer {self.peer_id}: {_describe(e)}")
                    return

    async def _apply_signal(self, what: str, data: str) -> None:
        if what in ("offer", "answer"):
            if self._connection.remoteDescription is not None or self._initiator != (what == "answer"):
                raise ValueError(f"{'an' if what == 'offer' else 'this'} {what} was not expected")
            if "\nm=application " not in data.replace("\r\n", "\n"):
                raise ValueError(f"the {what} has no data channel section (m=application)")
            await self._connection.setRemoteDescription(RTCSessionDescription(sdp=data, type=what))
            if what == "offer":
                await self._connection.setLocalDescription(await self._connection.createAnswer())
        elif what == "candidate":
            await self._add_candidate(data)
        else:
            log.warning("peer %s: ignoring an unknown signal %r", self.peer_id, what)

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
    TimeoutError when the channel is not open within `timeout_s`, ConnectionClosed when the peer's signals are
    unusable or the connection fails; either way after closing what was created.
    """
    servers = [
        RTCIceServer(urls=list(s.urls), username=s.username or None, credential=s.credential or None)
        for s in ice_servers
    ]
    link = RtcLink(peer_id, RTCPeerConnection(RTCConfiguration(iceServers=servers)), initiator, max_frame_bytes)
    log.info("peer %s: connecting (%s)", peer_id, "offering" if initiator else "waiting for an offer")
    try:
        async with asyncio.timeout(timeout_s) as deadline:
            if initiator:
                connection = link._connection
                link._attach(connection.createDataChannel(CHANNEL_LABEL, ordered=True))
                await connection.setLocalDescription(await connection.createOffer())
                await send_signal("offer", link._local_sdp())
            link._signal_task = asyncio.ensure_future(link._read_signals(signals, send_signal))
            await link._settled.wait()
    except TimeoutError:
        if not deadline.expired():  # a TimeoutError from send_signal
            await link.close()
            raise
        states = link._connection_states()
        link.closed(f"no data channel to peer {peer_id} within {timeout_s:g} s ({states})")
        await link.close()
        raise TimeoutError(link._close_reason) from None
    except BaseException:
        await link.close()
        raise
    if link._close_reason:
        await link.close()
        raise ConnectionClosed(link._close_reason)
    return link
