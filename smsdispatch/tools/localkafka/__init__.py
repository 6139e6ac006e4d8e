"""A real single-node Apache Kafka 4 broker (KRaft: broker and controller in one JVM) on 127.0.0.1.

No Docker needed: the broker's own jars come from Maven Central once (Maven, the shipped ``pom.xml``) and are
cached outside the work tree; later starts are offline. The CLI (``smsdispatch kafka``), the test fixtures
and the demo all use this API::

    broker = LocalKafka(port=9092)        # files in ~/.local/state/smsdispatch/kafka-9092
    broker.start()                        # returns once it answers metadata; False if it already ran
    broker.bootstrap, broker.broker_url   # "127.0.0.1:9092", "kafka://127.0.0.1:9092"
    broker.status().running
    broker.stop()                         # SIGTERM, waits; SIGKILL after a timeout
"""

from smsdispatch.tools.localkafka._broker import (
    DEFAULT_HEAP_OPTS,
    DEFAULT_JVM_OPTS,
    READY_TOPIC,
    KafkaStatus,
    LocalKafka,
)
from smsdispatch.tools.localkafka._config import DEFAULT_PORT, default_data_dir
from smsdispatch.tools.localkafka._errors import LocalKafkaError, MissingToolError
from smsdispatch.tools.localkafka._jars import KAFKA_HOME_ENV, KAFKA_VERSION, cached_libs, ensure_jars, kafka_home
from smsdispatch.tools.localkafka._process import parent_death_hook

__all__ = [
    "DEFAULT_HEAP_OPTS",
    "DEFAULT_JVM_OPTS",
    "DEFAULT_PORT",
    "KAFKA_HOME_ENV",
    "KAFKA_VERSION",
    "READY_TOPIC",
    "KafkaStatus",
    "LocalKafka",
    "LocalKafkaError",
    "MissingToolError",
    "cached_libs",
    "default_data_dir",
    "ensure_jars",
    "kafka_home",
    "parent_death_hook",
]
