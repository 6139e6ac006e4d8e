"""The worker's agents: the dispatcher (``dispatch``), the log sink, the status receiver, and their Faust wiring
(``worker.build_worker``). The dispatcher core knows nothing about Faust, so it is tested without Kafka."""
