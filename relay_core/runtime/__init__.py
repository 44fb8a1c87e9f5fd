"""The asyncio runtime: the node, its actors and mailboxes, and the driver that moves
packets between the transports and the protocol.
"""
