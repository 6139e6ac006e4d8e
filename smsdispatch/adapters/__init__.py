"""The adapters: the outside systems the core talks to, each behind its own package.

``twilio`` (Twilio's REST API over httpx), ``storage`` (the dispatch log in SQLite or PostgreSQL), ``crypto``
(tenant-config encryption), ``kafka`` (the producer every writer of the project uses). They import only the
contract.
"""
