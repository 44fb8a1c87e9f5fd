"""What a node tells its operators: counters, metrics, trace context, rate-limited logs.
"""
