"""The fault adapter: a transport wrapper that loses, duplicates, reorders, delays and
corrupts packets on purpose, and the plan of which transports a node wraps.
"""
