"""A single-threaded moto S3 server on 127.0.0.1.

Serving one request at a time makes its conditional puts (If-None-Match / If-Match)
atomic, which the engine's fencing tests rely on; the stock threaded moto_server lets two
racing creates both win now and then.
"""
import os
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

port = int(sys.argv[1]) if len(sys.argv) > 1 else 9001
os.environ.setdefault("MOTO_PORT", str(port))
app = DomainDispatcherApplication(create_backend_app)
run_simple("127.0.0.1", port, app, threaded=False, use_reloader=False,
           request_handler=MotoRequestHandler)
