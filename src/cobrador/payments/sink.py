"""The payments event sink: reacts, inside the transaction that recorded them, to payment events.

* payment.unknown: the provider's answer was lost (a timeout, a dead worker); a reconcile_payments task
  asks it again in 5 minutes (enqueued in this transaction: it exists only if the outcome commits). The
  hourly payment-reconciliation sweep is the safety net.

services.py only emits the events; enqueueing lives here and in tasks.py, so no module below tasks.py
names a task.
"""

from cobrador.core import clock
from cobrador.events.services import register_sink
from cobrador.payments.services import RECONCILE_DELAYS
from cobrador.payments.tasks import reconcile_payments


def react_to_events(events) -> None:
    if any(event.type == "payment.unknown" for event in events):
        reconcile_payments.using(run_after=clock.now() + RECONCILE_DELAYS[0]).enqueue()


register_sink(react_to_events)
