"""Kafka through kafka-python, a client no one here wrote, for tests/sources.rs.

    kafka_tool.py BOOTSTRAP create TOPIC PARTITIONS   create a topic
    kafka_tool.py BOOTSTRAP produce TOPIC JSON        produce each record of the JSON list
    kafka_tool.py BOOTSTRAP committed GROUP           print the group's committed offsets as JSON

A record is {"value": text, "key"?: text, "partition"?: n, "headers"?: {name: text}}; each is
sent and acknowledged alone, so every produce batch holds one record.
"""
import json
import sys

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic


def main():
    bootstrap, command = sys.argv[1], sys.argv[2]
    if command == "create":
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(sys.argv[3], num_partitions=int(sys.argv[4]), replication_factor=1)])
        admin.close()
    elif command == "produce":
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        for r in json.loads(sys.argv[4]):
            headers = [(k, v.encode()) for k, v in (r.get("headers") or {}).items()]
            key = r["key"].encode() if r.get("key") is not None else None
            producer.send(sys.argv[3], value=r["value"].encode(), key=key, headers=headers, partition=r.get("partition")).get(timeout=10)
        producer.close()
    elif command == "committed":
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        offsets = admin.list_group_offsets(sys.argv[3])
        print(json.dumps({f"{tp.topic}/{tp.partition}": meta.offset for tp, meta in offsets[sys.argv[3]].items()}))
        admin.close()
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
