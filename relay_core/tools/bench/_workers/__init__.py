"""What runs inside each child process of ``net-relay bench``: one role per process.

Started as ``python -m relay_core.tools.bench._workers ROLE [OPTIONS]``. Roles come
in pairs, a server and a client, one pair per way of doing the job: raw
asyncio UDP (``udp-*``, :mod:`._raw`), pyzmq over TCP (``zmq-*``, :mod:`._zmq`)
and net-relay nodes (``relay-*``, :mod:`._relay`). The rules every role keeps,
which the orchestrator in :mod:`relay_core.tools.bench` relies on:

- Only loopback: a server binds 127.0.0.1 on a free port and, once it can
  receive, prints ``{"ready": ADDRESS}``; its client gets ADDRESS as ``--target``.
- A role's last line on stdout is its result, one JSON object; a role that
  fails prints ``{"error": "..."}`` instead and exits with status 1.
- The end of a one-way stream is found in band: the sender's empty "done"
  message or a quiet period (``udp-sink``, ``zmq-pull``), or the net-relay
  sender asking the sink's count by RPC. Every other server ends at the first
  line on its stdin.
- Every role gives up when stdin closes, so no child outlives the orchestrator.
- Time is read with ``time.perf_counter`` and compared within one process only.
- Every payload is :func:`._common.sample`, encoded by the codec under test
  (about 80 bytes as msgpack); each side decodes what it receives, as an
  application would.
"""
