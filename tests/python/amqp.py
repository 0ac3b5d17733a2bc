"""RabbitMQ through pika, a client no one here wrote, for tests/sources.rs.

    amqp.py URL publish EXCHANGE JSON   publish each message of the JSON list
    amqp.py URL count QUEUE             print the queue's ready messages

A message is {"body": text, "routing_key"?, "message_id"?, "content_type"?, "timestamp"?,
"headers"?: {name: value}}.
"""
import json
import sys

import pika


def main():
    url, command, name = sys.argv[1], sys.argv[2], sys.argv[3]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    if command == "publish":
        channel.confirm_delivery()
        for m in json.loads(sys.argv[4]):
            properties = pika.BasicProperties(
                message_id=m.get("message_id"),
                content_type=m.get("content_type"),
                timestamp=m.get("timestamp"),
                headers=m.get("headers"),
            )
            channel.basic_publish(
                exchange=name,
                routing_key=m.get("routing_key", ""),
                body=m["body"].encode(),
                properties=properties,
                mandatory=True,
            )
    elif command == "count":
        print(channel.queue_declare(queue=name, passive=True).method.message_count)
    else:
        sys.exit(f"unknown command {command}")
    connection.close()


if __name__ == "__main__":
    main()
