"""Key-value stores kept per partition, each with the changelog offset its data reflects.

:class:`RocksPartitions` keeps them in RocksDB files (rocksdict), one database per partition, laid out as the
worker's earlier versions (through Faust's tables) left them: ``<dir>/<name>-<partition>.db``, the offset under
:data:`OFFSET_KEY`. :class:`MemoryPartitions` keeps them in memory (tests, demos; nothing survives a restart).
Both promise that :meth:`PartitionStore.write` is atomic: the records and the offset land together or not at all.
"""

from smsdispatch.adapters.partitions._memory import MemoryPartitions
from smsdispatch.adapters.partitions._rocks import OFFSET_KEY, RocksOptions, RocksPartitions
from smsdispatch.adapters.partitions._store import PartitionStore, Records

__all__ = ["OFFSET_KEY", "MemoryPartitions", "PartitionStore", "Records", "RocksOptions", "RocksPartitions"]
