// WebRTC for the Python worker. RTCPeerConnection exists only on a page's main thread, so the worker
// (py_browser/rtc_link.py, reaching this through PyScript's window proxy) asks here for a connection to one
// peer and drives it: it passes on the signals the peer sent through the server, and it sends chunks. Everything
// the connection does comes back to the worker through one Python callback, `onEvent(kind, data)`:
//   "signal"  {what, data}: an offer, answer or candidate to send the peer through the server
//   "open"    the data channel is open (data: the largest message the peer accepts)
//   "chunk"   a Uint8Array the peer sent
//   "low"     the channel's send buffer fell to the low-water mark: the worker may send more
//   "closed"  the connection ended; data says why
// This file holds no round logic: which peer to connect to, what to send and when to give up are Python's.

const CHANNEL_LABEL = "pydisco";
const links = new Map();
let nextHandle = 1;

// lowBuffered: the send buffer's low-water mark, in bytes (py_shared.protocol.peer_link.LOW_BUFFERED).
function open(peerId, initiator, iceServersJson, lowBuffered, onEvent) {
  const handle = nextHandle++;
  const pc = new RTCPeerConnection({ iceServers: JSON.parse(iceServersJson) });
  const link = { peerId, initiator, pc, channel: null, onEvent, closed: false, queue: Promise.resolve() };
  links.set(handle, link);
  const emit = (kind, data) => {
    if (!link.closed) link.onEvent(kind, data);
  };
  const end = (reason) => {
    if (link.closed) return;
    emit("closed", reason);
    shutdown(handle);
  };
  pc.onicecandidate = (event) => {
    // an empty candidate marks the end of this side's candidates
    const init = event.candidate ? event.candidate.toJSON() : { candidate: "", sdpMid: null, sdpMLineIndex: null };
    emit("signal", { what: "candidate", data: JSON.stringify(init) });
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed" || pc.connectionState === "closed") {
      end(`the connection to peer ${peerId} ${pc.connectionState}`);
    }
  };
  const attach = (channel) => {
    link.channel = channel;
    channel.binaryType = "arraybuffer";
    channel.bufferedAmountLowThreshold = lowBuffered;
    channel.onopen = () => emit("open", pc.sctp ? pc.sctp.maxMessageSize : 0);
    channel.onmessage = (event) => {
      if (typeof event.data === "string") {
        end(`peer ${peerId} sent a text message; PyDisco peers send binary chunks only`);
      } else {
        emit("chunk", new Uint8Array(event.data));
      }
    };
    channel.onbufferedamountlow = () => emit("low", null);
    channel.onclose = () => end(`the data channel to peer ${peerId} closed`);
    if (channel.readyState === "open") channel.onopen();
  };
  if (initiator) {
    attach(pc.createDataChannel(CHANNEL_LABEL, { ordered: true }));
    link.queue = pc
      .createOffer()
      .then((offer) => pc.setLocalDescription(offer))
      .then(() => emit("signal", { what: "offer", data: pc.localDescription.sdp }))
      .catch((e) => end(`cannot make an offer to peer ${peerId}: ${e.message || e}`));
  } else {
    pc.ondatachannel = (event) => {
      const channel = event.channel;
      if (link.channel || channel.label !== CHANNEL_LABEL || !channel.ordered ||
          channel.maxRetransmits !== null || channel.maxPacketLifeTime !== null) {
        channel.close();
        end(`peer ${peerId} opened a data channel that is not PyDisco's ordered, reliable "${CHANNEL_LABEL}" channel`);
        return;
      }
      attach(channel);
    };
  }
  return handle;
}

// Apply what the peer sent through the server, one signal after the other (each step is asynchronous, and a
// candidate may only be added once the remote description is set).
function signal(handle, what, data) {
  const link = links.get(handle);
  if (!link) return;
  const pc = link.pc;
  const apply = async () => {
    if (what === "offer" || what === "answer") {
      if (pc.remoteDescription || (what === "answer") !== link.initiator) {
        throw new Error(`this ${what} was not expected`);
      }
      await pc.setRemoteDescription({ type: what, sdp: data });
      if (what === "offer") {
        await pc.setLocalDescription(await pc.createAnswer());
        if (!link.closed) link.onEvent("signal", { what: "answer", data: pc.localDescription.sdp });
      }
    } else if (what === "candidate") {
      const init = JSON.parse(data);
      if (init.candidate) await pc.addIceCandidate(init);
    }
  };
  link.queue = link.queue.then(apply).catch((e) => {
    if (link.closed) return;
    link.onEvent("closed", `peer ${link.peerId} sent a bad "${what}" signal: ${e.message || e}`);
    shutdown(handle);
  });
}

// Send one chunk; returns the bytes now waiting in the channel (the worker pauses above its limit until "low"),
// or -1 when the channel is not open.
function send(handle, chunk) {
  const link = links.get(handle);
  if (!link || !link.channel || link.channel.readyState !== "open") return -1;
  link.channel.send(chunk);
  return link.channel.bufferedAmount;
}

// The bytes waiting in the channel's send buffer now (0 when it is not open).
function buffered(handle) {
  const link = links.get(handle);
  return link && link.channel ? link.channel.bufferedAmount : 0;
}

function shutdown(handle) {
  const link = links.get(handle);
  if (!link) return;
  link.closed = true;
  links.delete(handle);
  if (link.channel) link.channel.close();
  link.pc.close();
}

// How many connections are open, for tests that check nothing is left behind.
function count() {
  return links.size;
}

window.pydiscoLinks = { open, signal, send, buffered, close: shutdown, count };
