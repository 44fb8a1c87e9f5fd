"""The sans-IO protocol: bytes in, values out; values in, bytes out. Nothing here
imports socket, asyncio, time or threading (tests/test_layers.py checks it).
"""
