"""Runs moto's server on loopback for the local stack.

Started by the Rust side with this venv's interpreter. It prints one JSON line
when ready and exits when its stdin closes, so the emulator never outlives the
process that started it (Ctrl-C, a panic, or a test binary ending).
"""

import copyreg
import json
import logging
import os
import pickle
import signal
import socket
import sys
import tempfile
import threading
import time

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
from moto.backends import get_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server


# One lock for every DynamoDB request (and stream read), one for every SQS
# request; snapshots take both.
DYNAMODB_LOCK = threading.RLock()
SQS_LOCK = threading.RLock()


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
    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        original = handler.call_action

        def call_action(self, original=original):
            with DYNAMODB_LOCK:
                return original(self)

        handler.call_action = call_action


def serialise_sqs() -> None:
    """Runs one SQS request at a time, a long poll letting go while it waits.

    moto's queues change lists without a lock; a snapshot must not pickle a
    receive half-way (a message on its way to the dead-letter queue could be
    lost or doubled). A long poll releases the lock while it waits, so sends
    (which wake it) and snapshots go on meanwhile.
    """
    from moto.sqs.models import Queue
    from moto.sqs.responses import SQSResponse

    original = SQSResponse.call_action

    def call_action(self):
        with SQS_LOCK:
            return original(self)

    SQSResponse.call_action = call_action
    original_wait = Queue.wait_for_messages

    def wait_for_messages(self, timeout):
        SQS_LOCK.release()
        try:
            return original_wait(self, timeout)
        finally:
            SQS_LOCK.acquire()

    Queue.wait_for_messages = wait_for_messages


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


# What the local stack uses: its state is what a data directory keeps.
PERSISTED_SERVICES = ("dynamodb", "dynamodbstreams", "s3", "sqs", "cognito-idp", "secretsmanager")
# Operations that change nothing worth saving (reads, and the pumps' polls).
READ_PREFIXES = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "Receive")
AUTOSAVE_SECONDS = float(os.environ.get("ASSETBOX_AUTOSAVE_SECONDS", "30"))


def _rsa_from_pem(pem, password):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(pem, password)


def make_state_picklable() -> None:
    """Teaches pickle the few objects moto's backends hold that it cannot
    copy: locks (restored as fresh ones) and Cognito's RSA signing key
    (moto's bundled key, restored from its PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    copyreg.pickle(type(threading.Lock()), lambda _: (threading.Lock, ()))
    copyreg.pickle(type(threading.RLock()), lambda _: (threading.RLock, ()))
    copyreg.pickle(threading.Condition, lambda _: (threading.Condition, ()))
    key_type = type(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    pem = lambda key: key.private_bytes(  # noqa: E731
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    copyreg.pickle(key_type, lambda key: (_rsa_from_pem, (pem(key), None)))


class Gate:
    """Lets a snapshot see the emulator between requests, never during one.

    Requests pass in parallel; a snapshot closes the gate, waits for those in
    flight, and pickles while holding the DynamoDB and SQS locks. SQS long
    polls do not hold the gate (they would hold a snapshot for 20 s): they
    run under the SQS lock, which they let go only while they wait (see
    serialise_sqs), so a snapshot never sees a receive half-way.
    """

    def __init__(self, app):
        self.app = app
        self.turn = threading.Condition()
        self.active = 0
        self.closed = False
        self.dirty = False

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rsplit(".", 1)[-1]
        if operation == "ReceiveMessage":
            answer = list(self.app(environ, start_response))
            # A receive that returned messages changed them (receive count,
            # visibility, a move to the dead-letter queue).
            if any(b'"Messages"' in chunk or b"<Message>" in chunk for chunk in answer):
                self.dirty = True
            return answer
        changes = environ.get("REQUEST_METHOD") not in ("GET", "HEAD", "OPTIONS") and not (
            operation.startswith(READ_PREFIXES)
        )
        with self.turn:
            while self.closed:
                self.turn.wait()
            self.active += 1
            # Marked once past the gate: a write that waited for a snapshot
            # lands after it, and so must make the next one.
            if changes:
                self.dirty = True
        try:
            # Drained here so the request is over when the gate reopens.
            return list(self.app(environ, start_response))
        finally:
            with self.turn:
                self.active -= 1
                self.turn.notify_all()

    def snapshot(self, patience: float, force: bool = False):
        """The state, pickled; None when requests in flight (a slow upload,
        say) did not finish within `patience` seconds, so the emulator is
        never held longer than that. `force` pickles anyway (at stop: the
        server no longer takes requests, and one still running is not saved).
        """
        deadline = time.monotonic() + patience
        with self.turn:
            self.closed = True
            while self.active and time.monotonic() < deadline:
                self.turn.wait(timeout=max(0.0, deadline - time.monotonic()))
            drained = not self.active
        try:
            if not drained and not force:
                return None
            with DYNAMODB_LOCK, SQS_LOCK:
                self.dirty = False
                for attempt in range(5):
                    try:
                        return dump_state()
                    except RuntimeError:  # a request still running changed a dict
                        if attempt == 4:
                            self.dirty = True
                            raise
                        time.sleep(0.05)
        finally:
            with self.turn:
                self.closed = False
                self.turn.notify_all()


def dump_state() -> bytes:
    state = {}
    for name in PERSISTED_SERVICES:
        state[name] = {
            account: {region: backend.__dict__ for region, backend in regions.items()}
            for account, regions in get_backend(name).items()
        }
    return pickle.dumps({"moto": moto.__version__, "state": state}, protocol=pickle.HIGHEST_PROTOCOL)


def load_state(path: str) -> None:
    with open(path, "rb") as f:
        saved = pickle.load(f)
    if saved.get("moto") != moto.__version__:
        sys.exit(
            f"{path} was written by moto {saved.get('moto')}, this is moto {moto.__version__}: "
            "start with another --data-dir (or empty this one)"
        )
    for name, accounts in saved["state"].items():
        backends = get_backend(name)
        for account, regions in accounts.items():
            for region, attributes in regions.items():
                backends[account][region].__dict__.update(attributes)
    # S3 finds a bucket's account in a global map that FakeBucket's
    # constructor fills (unpickling runs no constructor): without it a
    # CreateBucket of the same name would make an empty one in its place.
    s3 = get_backend("s3")
    for account, regions in saved["state"].get("s3", {}).items():
        for attributes in regions.values():
            for bucket in attributes.get("buckets", {}).values():
                s3.bucket_accounts[bucket.name] = (bucket.partition, account)


def write_state(path: str, data: bytes) -> None:
    """Writes a new file beside the old one and renames it into place, so a
    crash mid-write keeps the old one; mkstemp makes it readable by its
    owner only (it holds users, tokens and secrets)."""
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, partial = tempfile.mkstemp(dir=folder, prefix=".emulator.", suffix=".partial")
    try:
        with os.fdopen(descriptor, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


# One save at a time: the autosave and the save at stop never interleave.
SAVE_LOCK = threading.Lock()


def save(server, path: str, patience: float, force: bool = False) -> bool:
    with SAVE_LOCK:
        data = server.gate.snapshot(patience, force)
        if data is None:
            return False
        try:
            write_state(path, data)
        except BaseException:
            server.gate.dirty = True
            raise
        return True


class Server(ThreadedMotoServer):
    """moto's threaded server with the snapshot gate in front of its app."""

    def __init__(self, host: str, port: int):
        super().__init__(ip_address=host, port=port, verbose=False)
        self.gate = Gate(DomainDispatcherApplication(create_backend_app))

    def _server_entry(self) -> None:
        self._server = make_server(self._ip_address, self._port, self.gate, True)
        self._server_ready_event.set()
        self._server.serve_forever()


def autosave(server: Server, path: str) -> None:
    """Saves every AUTOSAVE_SECONDS when something changed, so a crash or a
    kill -9 of the emulator loses at most about that much. A snapshot that
    would wait more than 2 s for requests in flight is put off to the next
    round."""
    while True:
        time.sleep(AUTOSAVE_SECONDS)
        if server.gate.dirty:
            try:
                save(server, path, patience=2.0)
            except Exception as err:  # noqa: BLE001 (the next round tries again)
                print(f"moto: saving {path} failed: {err}", file=sys.stderr, flush=True)


class StopRequested(Exception):
    pass


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stop_now(signum, frame):
    # The first signal stops; more (a second Ctrl-C while saving) must not
    # cut the save short.
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    raise StopRequested()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    # Optional: the file that keeps the emulator's state across restarts.
    state_file = sys.argv[3] if len(sys.argv) > 3 else None
    # The stack stops moto by closing stdin. Ctrl-C in a terminal, or a
    # SIGTERM sent to the whole process group, reaches moto too: it then
    # stops the same way (saving first) instead of dying mid-way.
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, stop_now)
    serialise_dynamodb()
    serialise_sqs()
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
    if state_file:
        make_state_picklable()
        if os.path.exists(state_file):
            load_state(state_file)
    server = Server(host, port)
    server.start()
    if state_file:
        threading.Thread(target=autosave, args=(server, state_file), daemon=True).start()
    keys = os.path.join(os.path.dirname(moto.__file__), "cognitoidp", "resources")
    print(json.dumps({"ready": True, "port": port, "cognito_keys": keys}), flush=True)
    try:
        sys.stdin.read()
    except StopRequested:
        pass
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    server.stop()
    if state_file:
        # Requests still running get 10 s to finish, then are left out.
        save(server, state_file, patience=10.0, force=True)
    os._exit(0)


if __name__ == "__main__":
    main()
