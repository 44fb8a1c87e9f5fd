"""Per-peer counters and the node-wide totals derived from them.

Only per-peer counters are incremented on the hot path; totals are summed when
someone asks. The peer table is bounded: past ``max_peers`` distinct peers
(for example under a flood of forged source addresses), new sources share one
``"(other)"`` bucket, so memory stays bounded while totals stay exact.
"""

from __future__ import annotations

from typing import Final

from .snapshot import NodeStats

__all__ = ["COUNTER_NAMES", "Counters", "NodeStats", "StatsTable"]


COUNTER_NAMES: Final[tuple[str, ...]] = (
    "bytes_received",
    "bytes_sent",
    "closed_unsent",
    "connection_lost",
    "connections_over_budget",
    "connections_refused",
    "connections_timed_out",
    "corrupt",
    "decompression_limited",
    "duplicates",
    "frames_received",
    "forged_cancels",
    "forged_replies",
    "frames_sent",
    "handshakes_dropped",
    "handshake_answers_limited",
    "heph_duplicates",
    "internal_errors",
    "late_replies",
    "link_full",
    "mailbox_full",
    "malformed",
    "messages_received",
    "messages_sent",
    "not_allowed",
    "over_budget",
    "oversize",
    "packets_received",
    "packets_sent",
    "reflected",
    "peer_unreachable",
    "replies_not_resent",
    "requests_evicted",
    "send_errors",
    "too_old",
    "unauthenticated",
    "undecodable",
    "unknown_actor",
    "unsupported_codec",
)
"""Every counter name, in a stable order.

- messages: frames that carry a user payload (message, request, response)
- frames / packets / bytes: everything, as it crosses the transport
- duplicates / too_old: packets the duplicate window rejected
- heph_duplicates: heph-json messages dropped because their uuid came before from the
  same source (address and scheme; over tcp, the same connection) within the last
  65,536 uuids: a datagram the network duplicated, or one a tool sent twice
- corrupt: packets whose checksum did not match (damaged in transit)
- unauthenticated: packets that were not sealed where sealing is required, or did not verify
  (forged, damaged, under a key not held here, or sealed for another node or for this
  node's incarnation before a restart: a captured packet replayed, or one sent into
  the gap before its sender learned of the restart)
- handshake_answers_limited: sealed handshake answers not sent (to a hello, or to a
  packet sealed for a gone incarnation of this node) because the source had drawn its
  share this second, or the second's table of answered sources was full
- not_allowed: packets from a source outside the listener's ``allow`` networks
- malformed: packets that did not parse; undecodable: payloads that did not decode
- unsupported_codec: frames naming a codec or compressor not installed here
- unknown_actor: frames for a name with no actor and no router
- mailbox_full: inbound messages dropped because the mailbox was full, in messages
  (``mailbox_size``) or in bytes (``mailbox_bytes``), or the node held
  ``max_buffered_bytes`` of received input (over a reliable transport, whose source
  waits instead, only the messages of packets past its backlog limit: quic, which
  cannot stop reading one connection)
- oversize: frames over the node's message size limit, either way
- decompression_limited: inbound compressed frames dropped undecompressed because the
  node had decompressed ``max_decompression_rate`` bytes a second (a flood of small
  zstd bombs; honest traffic meets it only past that rate, on any transport)
- over_budget: inbound frames dropped, not decompressed, because with the frames
  before them in their packet they would decode from more than ``max_message_size``
  bytes (a zstd bomb); once a packet runs out, the rest of it is dropped too, each
  frame counted. A sender never makes such a packet.
- send_errors: transport failures reported after a send (events, not messages: a
  lost connection, a failed connection attempt; what they cost in messages is below)
- link_full: outbound messages a stream transport dropped because its queue to
  the destination was past its hard limit (only sends that cannot wait: replies)
- closed_unsent: outbound messages still unsent when the node closed and its
  grace period ended (never connected, or the peer stopped reading)
- connection_lost: outbound messages queued for a connection that was lost
  before they could be written (an accepted connection, or a failed handshake)
- peer_unreachable: outbound messages queued for a connection whose attempt found
  the peer unreachable (refused, no route, TLS that did not verify): dropped, so
  that nothing a caller was told failed is delivered later
- reflected: packets carrying this node's own incarnation (its own packets sent back
  at it, sealed or not): dropped
- late_replies: replies for no waiting call (the caller stopped waiting, or no such call)
- forged_cancels: cancels for a request being handled that came from elsewhere than
  the request did: ignored, the request runs on
- forged_replies: replies for a waiting call that came from elsewhere than where its
  request went (another address, another connection): dropped
- requests_evicted: requests the node was handling that it gave up to make room
  for a newer one (``[node] max_active_requests``), oldest first: each is cancelled
  (its handler sees ``Rpc.cancelled``, its answer is not sent). Counted on the
  node's own ``(local)`` counters.
- replies_not_resent: retried requests whose cached reply was not sent again,
  because the retry came from another source than the one the reply went to, or
  because the reply is over three times the bytes of the packet that asked again
  (a small ``reply_not_resent`` error goes back instead where it fits in that)
- connections_refused: connections a stream listener turned away: past its
  ``max_connections``, or not accepted for lack of file descriptors or memory
  (one count per failed accept, under the listener's own address)
- connections_timed_out: accepted connections closed by ``handshake_timeout``
  (no TLS handshake or no whole packet in time) or ``idle_timeout``
- connections_over_budget: connections closed because their unfinished packet
  would have taken what all the transport's connections hold past
  ``max_buffered_input`` (tcp, quic)
- handshakes_dropped: unfinished quic handshakes a listener dropped, the oldest
  first, to make room for a new one while it held ``max_handshakes`` (or its
  ``max_connections``)
- internal_errors: what a plugin or the node's own code raised unexpectedly (a
  bug: a codec's decode raising KeyError, say) while handling a received packet
  or encoding a reply. Each is logged, rate-limited, with its traceback. A frame
  whose decode raised is dropped alone (a request is refused at once); anything
  else drops the rest of the packet being handled; a reply that could not be
  encoded goes back as a RemoteError.
"""


class Counters:
    """What happened with one peer. Every field is a plain int for speed."""

    __slots__ = COUNTER_NAMES

    messages_sent: int
    messages_received: int
    frames_sent: int
    frames_received: int
    packets_sent: int
    packets_received: int
    bytes_sent: int
    bytes_received: int
    duplicates: int
    corrupt: int
    unauthenticated: int
    not_allowed: int
    too_old: int
    malformed: int
    undecodable: int
    unsupported_codec: int
    unknown_actor: int
    mailbox_full: int
    oversize: int
    over_budget: int
    decompression_limited: int
    send_errors: int
    late_replies: int
    forged_replies: int
    forged_cancels: int
    reflected: int
    internal_errors: int
    link_full: int
    closed_unsent: int
    connection_lost: int
    peer_unreachable: int
    replies_not_resent: int
    requests_evicted: int
    connections_refused: int
    connections_timed_out: int
    connections_over_budget: int
    handshakes_dropped: int
    handshake_answers_limited: int
    heph_duplicates: int

    def __init__(self) -> None:
        for name in COUNTER_NAMES:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTER_NAMES}



OTHER_PEERS = "(other)"


class StatsTable:
    """Counters keyed by peer name (or peer URL when the peer has no name)."""

    def __init__(self, max_peers: int = 1024) -> None:
        self._max_peers = max_peers
        self._peers: dict[str, Counters] = {}
        self.local = self.peer("(local)")

    def peer(self, key: str) -> Counters:
        """The counters for ``key``, created on first use while there is room."""
        counters = self._peers.get(key)
        if counters is None:
            if len(self._peers) >= self._max_peers:
                key = OTHER_PEERS
                counters = self._peers.get(key)
            if counters is None:
                counters = self._peers[key] = Counters()
        return counters

    def snapshot(self, faults: dict[str, dict[str, int]] | None = None,
                 senders: int = 0, receive_drops: dict[str, int] | None = None) -> NodeStats:
        peers = {key: counters.as_dict() for key, counters in self._peers.items()}
        total = {name: sum(p[name] for p in peers.values()) for name in COUNTER_NAMES}
        return NodeStats(total=total, peers=peers, faults=faults or {}, senders=senders,
                         receive_drops=receive_drops or {})


FAULT_COUNTERS = ("dropped", "duplicated", "reordered", "delayed", "corrupted", "overflow")
"""What the fault adapter (:meth:`relay_core.FaultyTransport.stats`) counts, besides ``in_flight`` and ``peak_in_flight``."""
