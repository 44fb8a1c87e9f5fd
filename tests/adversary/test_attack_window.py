"""Plain (unsealed) udp: a forged packet cannot silence a sender by moving its window.

Anyone who has seen one of B's packets knows B's incarnation, and the CRC is
no secret. Sealing is the answer to forgery; without it, a plain packet moves
only the window of the address it came from, so one forged packet from
elsewhere, claiming the last sequence number there is, costs B nothing.
"""

from __future__ import annotations

from nodes import RawUdp, udp_config, wait_for
from relay_core import Node
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet
from relay_core.tools.demo import counter

LAST_SEQUENCE = (1 << 64) - 1


async def test_a_forged_far_ahead_sequence_number_does_not_silence_the_sender() -> None:
    attacker = RawUdp()
    try:
        async with Node(udp_config("c")) as c, Node(udp_config("b")) as b:
            c.spawn(counter, name="counter")
            ref = b.ref(f"{c.address('udp')}/counter")
            await ref.send("before")
            await wait_for(lambda: c.stats().total["messages_received"] == 1, "B is heard")
            forged = Frame(FrameKind.MESSAGE, "json", b'"forged"', target="counter")
            attacker.send_to(encode_packet(b.incarnation, LAST_SEQUENCE, [encode_frame(forged)]),
                             c.address("udp"))
            await wait_for(lambda: c.stats().total["messages_received"] == 2, "the forgery")
            for index in range(10):
                await ref.send(index)
            await wait_for(lambda: c.stats().total["messages_received"] == 12, "B after it")
            assert c.stats().total["too_old"] == 0
    finally:
        attacker.close()


async def test_a_duplicated_datagram_from_the_same_address_is_still_dropped() -> None:
    peer = RawUdp()
    try:
        async with Node(udp_config("c")) as c:
            c.spawn(counter, name="counter")
            message = Frame(FrameKind.MESSAGE, "json", b'"once"', target="counter")
            packet = encode_packet(0x1234, 7, [encode_frame(message)])
            for _ in range(3):
                peer.send_to(packet, c.address("udp"))
            await wait_for(lambda: c.stats().total["duplicates"] == 2, "two duplicates")
            assert c.stats().total["messages_received"] == 1
    finally:
        peer.close()
