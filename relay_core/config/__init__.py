"""The node's configuration: the TOML file, addresses, paths, and the policies read
from it (who may reach the node, where it speaks Heph).
"""
