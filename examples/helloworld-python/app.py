"""Knative's classic hello world: answers "Hello {TARGET}!" on / and listens on $PORT."""
import os

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello {}!\n".format(os.environ.get("TARGET", "World"))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
