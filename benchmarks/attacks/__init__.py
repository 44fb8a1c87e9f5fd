"""Attacks for ``benchmarks/attack_figures.py``: one module per area, each with an ``ATTACKS``
dict of name to ``async def attack(victim: Victim, scale: float) -> dict[str, object]``.

An attack gets a running victim node (a separate process: see ``_victim.py``),
does its worst at ``scale`` times its default size, and returns what it sent and
what it saw delivered (``forged delivered``, ``replayed twice``: must be 0). The
figures script measures the victim's memory, CPU and whether it still answers.
Every loop is bounded in count and time, and every packet goes to loopback.
"""
