"""The runtime: all of Faust and the Kafka clients' wiring, around the Faust-free core.

The Faust app and its tables (``app``), the worker that wires the core into Faust agents, timers and web pages
(``worker``, ``pages``), the offsets the worker commits itself (``commits``), the followers of the compacted
topics (``compacted``, ``followers``), the readers of topic ranges and tenant progress, the broker's health, and
topic administration (``topics``: creating the contract's topics). Moving off Faust is a change inside this
package. It imports the core, the adapters and the contract; only the CLI imports it (and the client, for
``topics`` alone).
"""
