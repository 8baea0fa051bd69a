"""Small real HTTP servers that speak the SMS brokers' documented wire formats, for tests.

SMS brokers are outside our system: tests send to one of these over real HTTP (never a patched
client) and read back what it received. `base.py` has the machinery (uvicorn in a thread, the
request log, scripted faults, `WebhookCatcher` for receipts); one module per broker.
"""

from tests.broker_servers.bandwidth import BandwidthServer
from tests.broker_servers.base import Answer, Fault, Received, WebhookCatcher
from tests.broker_servers.inteliquent import InteliquentServer
from tests.broker_servers.twilio import TwilioServer

__all__ = [
    "Answer",
    "BandwidthServer",
    "Fault",
    "InteliquentServer",
    "Received",
    "TwilioServer",
    "WebhookCatcher",
]
