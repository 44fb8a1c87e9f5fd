"""The plugin registry: finds codecs, compressors and transports through entry points.
"""
