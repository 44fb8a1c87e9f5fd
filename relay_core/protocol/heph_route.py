"""Where a listener's Heph messages go: one actor, or a group, all of it or one in turn.

Heph's relay hands each message it reads, with the address it came from, to a
router (``Route::route(msg, source)``): one actor (``Relay``), a group
(``RelayGroup``, a copy to every member or the message to one of them), or any
closure. A Heph envelope names no actor, so a listener's route decides, from
its config (``relay_core.config.heph_plan``), and :meth:`HephRoute.events`
makes the events that deliver one message:

- one event per actor it goes to, in the order the config lists them; every
  actor after the first gets its own copy, since a message is a tree of
  mutable lists and dicts and one actor must not see another's changes (Heph's
  group clones the message likewise);
- ``to_one`` takes the group's actors in turn, message by message, whether or
  not the one whose turn it is runs (a message for an actor that is not there
  is counted ``unknown_actor``, as for a single target);
- ``with_source``: the events are :class:`HephMessageReceived`, which the node
  delivers with the source and a reply ref (``relay_core.HephMessage``), so an
  actor can answer the Heph node that wrote; without it, the actors get the
  bare message, as they always have.
"""

from __future__ import annotations

import copy

from .events import Event, HephMessageReceived, MessageReceived

__all__ = ["HephRoute"]


class HephRoute:
    """The actors one listener's Heph messages go to, and how."""

    __slots__ = ("_turn", "actors", "to_one", "with_source")

    def __init__(self, actors: tuple[str, ...], *, to_one: bool = False,
                 with_source: bool = False) -> None:
        if not actors:
            raise ValueError("a Heph route needs at least one actor")
        self.actors = actors
        self.to_one = to_one
        """Each message to one actor of the group, in turn (else a copy to every one)."""
        self.with_source = with_source
        """Deliver each message with its source and a way to answer it."""
        self._turn = 0

    def events(self, message: object, size: int) -> list[Event]:
        """The events that deliver ``message``, which weighs ``size`` bytes, in order."""
        actors = self.actors
        if self.to_one and len(actors) > 1:
            turn = self._turn
            self._turn = (turn + 1) % len(actors)
            actors = (actors[turn],)
        events: list[Event] = []
        for index, target in enumerate(actors):
            copied = message if index == 0 else copy.deepcopy(message)
            if self.with_source:
                events.append(HephMessageReceived(target, copied, size))
            else:
                events.append(MessageReceived(target, copied, size))
        return events
