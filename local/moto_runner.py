"""Runs moto's server on loopback for the local stack.

Started by the Rust side with this venv's interpreter. It prints one JSON line
when ready and exits when its stdin closes, so the emulator never outlives the
process that started it (Ctrl-C, a panic, or a test binary ending).
"""

import json
import logging
import os
import socket
import sys
import threading

# Without this moto answers every origin with wildcard CORS headers, which
# would hide a bucket whose own CORS rules are missing or wrong.
os.environ.setdefault("MOTO_DISABLE_GLOBAL_CORS", "true")

import moto
from moto.cognitoidp.models import CognitoIdpUserPool
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.s3.exceptions import NoSuchUpload
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer


def serialise_dynamodb() -> None:
    """Runs one DynamoDB request at a time.

    moto serves requests on threads but its DynamoDB backend has no locking:
    TransactWriteItems deep-copies tables for rollback while other threads
    write them ("dictionary changed size during iteration"), and two
    conditional writes can both pass their check. DynamoDB itself serialises
    conditional writes, so this makes the emulator stricter, never more
    permissive. Stream reads take the same turn, so they never see the
    records of a transaction that is about to be cancelled. S3, SQS and
    Cognito stay concurrent (SQS long polls must not block anything).
    """
    lock = threading.RLock()
    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action

        def call_action(self, original=original):
            with lock:
                return original(self)

        handler.call_action = call_action


def serialise_multipart_completion() -> None:
    """Completes one S3 multipart upload at a time, and answers NoSuchUpload
    for an upload that is gone.

    moto 5.1.22 answers a complete of an already completed or aborted upload
    with a 500 (KeyError), and two concurrent completes race on the part
    buffers. S3 answers NoSuchUpload (404) and completes once.
    """
    lock = threading.Lock()
    original = S3Backend.complete_multipart_upload

    def complete_multipart_upload(self, bucket_name, multipart_id, *args, **kwargs):
        with lock:
            if multipart_id not in self.get_bucket(bucket_name).multiparts:
                raise NoSuchUpload(upload_id=multipart_id)
            return original(self, bucket_name, multipart_id, *args, **kwargs)

    S3Backend.complete_multipart_upload = complete_multipart_upload


def cors_on_every_object_response() -> None:
    """Adds the bucket's CORS headers to every object response.

    moto 5.1.22 adds them to object GETs and PUTs only; S3 adds them to every
    response for an origin one of the bucket's rules allows, including the
    POSTs that create and complete a multipart upload and the DELETE that
    aborts one, which a browser sends with Uppy 6. Origins are matched by
    moto's own rule matching: nothing is granted that the rules do not.
    """
    original = S3Response.key_response

    def key_response(self, request, full_url, headers):
        status, response_headers, body = original(self, request, full_url, headers)
        if request.method != "OPTIONS" and "Access-Control-Allow-Origin" not in response_headers:
            response_headers.update(self._get_cors_headers_other())
        return status, response_headers, body

    S3Response.key_response = key_response


def honour_token_validity() -> None:
    """Issues access and id tokens for as long as their app client says.

    moto 5.1.22 gives every token an hour whatever the client's
    AccessTokenValidity / IdTokenValidity; Cognito uses them (stricter when
    shorter, which the template is: a token outlives logout by at most that).
    """
    original = CognitoIdpUserPool.create_jwt
    seconds = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
    names = {"access": ("AccessTokenValidity", "AccessToken"), "id": ("IdTokenValidity", "IdToken")}

    def create_jwt(self, client_id, username, token_use, expires_in=60 * 60, extra_data=None):
        client = self.clients.get(client_id)
        if client is not None and token_use in names:
            validity, unit = names[token_use]
            value = client.extended_config.get(validity)
            if value:
                units = client.extended_config.get("TokenValidityUnits") or {}
                expires_in = int(value) * seconds[units.get(unit, "hours")]
        return original(self, client_id, username, token_use, expires_in, extra_data)

    CognitoIdpUserPool.create_jwt = create_jwt


def keep_streams_out_of_transaction_copies() -> None:
    """Keeps a table's stream out of the copy moto takes before every
    TransactWriteItems, and takes a cancelled transaction's records back out
    of the stream.

    moto 5.1.22 deep-copies each table a transaction touches (once per
    item), stream records included, and on a cancellation puts the copy in
    the table's place: transactions grow slower with every record the
    stream ever got, iterators opened before a cancellation see nothing
    after it, and the cancelled writes' records stay in the stream. On AWS a
    stream is not part of the table's transactional state and carries only
    writes that happened. DynamoDB requests are serialised (above), so the
    records a cancelled transaction added are exactly those after the
    length the stream had before it.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    StreamShard.__deepcopy__ = lambda self, memo: self
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        shards = [t.stream_shard for t in self.tables.values() if t.stream_shard is not None]
        lengths = [len(shard.items) for shard in shards]
        try:
            return original(self, transact_items)
        except Exception:
            for shard, length in zip(shards, lengths):
                del shard.items[length:]
            raise

    DynamoDBBackend.transact_write_items = transact_write_items


def forget_used_stream_iterators() -> None:
    """Drops a stream iterator once GetRecords used it, and keeps at most
    1,000 unused ones.

    moto 5.1.22 keeps every iterator it ever handed out; the local stack
    reads the stream ten times a second. DynamoDB Streams iterators expire
    after 15 minutes.
    """
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    def get_records(self, iterator_arn, limit):
        iterator = self.shard_iterators.pop(iterator_arn)
        while len(self.shard_iterators) > 1000:
            self.shard_iterators.pop(next(iter(self.shard_iterators)))
        return iterator.get(limit)

    DynamoDBStreamsBackend.get_records = get_records


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    serialise_dynamodb()
    serialise_multipart_completion()
    cors_on_every_object_response()
    honour_token_validity()
    keep_streams_out_of_transaction_copies()
    forget_used_stream_iterators()
    # One line per emulator request drowns the stack's own logs.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # ThreadedMotoServer.start() waits for ever when its server cannot bind.
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError as err:
        sys.exit(f"moto cannot listen on {host}:{port}: {err}")
    finally:
        probe.close()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    keys = os.path.join(os.path.dirname(moto.__file__), "cognitoidp", "resources")
    print(json.dumps({"ready": True, "port": port, "cognito_keys": keys}), flush=True)
    sys.stdin.read()
    server.stop()
    os._exit(0)


if __name__ == "__main__":
    main()
