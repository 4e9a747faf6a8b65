"""A real S3 server on loopback (moto's standalone server, in a thread) and a fresh bucket per test.

The credentials and the endpoint reach prov4ml (and every child process) through the standard AWS
environment variables, as they would on a cluster. Import the fixtures into a test module:
``from s3_server import s3, server``.
"""

import logging
import socket
import time
import uuid

import pytest

moto_server = pytest.importorskip("moto.server")
logging.getLogger("werkzeug").setLevel(logging.ERROR)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """moto's S3 server on a fixed loopback port, which can be stopped and started again (its data stays)."""

    def __init__(self):
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = None

    def start(self):
        self._server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        deadline = time.monotonic() + 20
        while True:  # serving once a connection is accepted
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        self._server.stop()


@pytest.fixture(scope="module")
def server():
    srv = Server()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def s3(server, tmp_path, monkeypatch):
    """A fresh bucket; yields ``(url prefix, file system)``."""
    import boto3
    import fsspec

    env = dict(AWS_ENDPOINT_URL=server.endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", PROV4ML_STAGING=str(tmp_path / "staging"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/prefix", fsspec.filesystem("s3", skip_instance_cache=True)



def bucket_files(fs, url):
    """{relative path: bytes} of every object under ``url``."""
    root = url[len("s3://"):].rstrip("/")
    fs.invalidate_cache()
    return {key[len(root) + 1:]: fs.cat_file(key) for key in fs.find(root)}
