"""SQS through boto3, a client no one here wrote, for tests/sources.rs (against moto_server).

    sqs_tool.py ENDPOINT create QUEUE [DLQ MAX_RECEIVES]   create a queue (with a redrive
                                                           policy to DLQ); print its URL
    sqs_tool.py ENDPOINT send QUEUE_URL JSON               send each {"body", "attributes"?}
    sqs_tool.py ENDPOINT count QUEUE_URL                   print {"visible": n, "in_flight": m}
"""
import json
import sys

import boto3


def main():
    endpoint, command = sys.argv[1], sys.argv[2]
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    if command == "create":
        attributes = {"VisibilityTimeout": "1"}
        if len(sys.argv) > 4:
            dlq = sqs.create_queue(QueueName=sys.argv[4])["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": sys.argv[5]})
        print(sqs.create_queue(QueueName=sys.argv[3], Attributes=attributes)["QueueUrl"])
    elif command == "send":
        for m in json.loads(sys.argv[4]):
            attributes = {k: {"DataType": "String", "StringValue": v} for k, v in (m.get("attributes") or {}).items()}
            sqs.send_message(QueueUrl=sys.argv[3], MessageBody=m["body"], MessageAttributes=attributes)
    elif command == "count":
        a = sqs.get_queue_attributes(QueueUrl=sys.argv[3], AttributeNames=["All"])["Attributes"]
        print(json.dumps({"visible": int(a["ApproximateNumberOfMessages"]), "in_flight": int(a["ApproximateNumberOfMessagesNotVisible"])}))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
