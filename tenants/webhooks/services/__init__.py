"""Webhook endpoints, and the delivery state machine every worker shares.

A delivery is one row per (event, endpoint); every attempt is a ``DeliveryAttempt`` row. Workers
never trust memory: they *claim* due deliveries in the database (a conditional UPDATE, after
``SELECT … FOR UPDATE SKIP LOCKED`` where the database has it), POST them, and record each
outcome only if they still hold the claim. A claim is a lease: a worker that dies mid-attempt
leaves the row ``sending`` until the lease expires, then any worker takes it over (recording the
lost attempt). The first attempt is enqueued right after the event's transaction commits; a
periodic django-q2 schedule (``tasks.deliveries_sweep``) picks up everything else that is due.

Every function that makes a decision in time takes ``now`` (default: the current time), so tests
drive the retry schedule instead of sleeping. The ``webhook-timestamp`` header is always the real
send time, since receivers check it against their clock.

The modules, in the order a delivery meets them: ``endpoints`` (where to), ``fanout`` (events to
deliveries, enqueueing, redelivery), ``claims`` (leases), ``attempts`` (one POST and what its
answer means), ``processing`` (the workers' loops), ``schedule`` (the periodic sweep).
"""

from tenants.webhooks.services.attempts import (
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    RETRY_DELAYS,
    AttemptReport,
    Decision,
    attempt_decide,
    deliveries_attempt_send,
    delivery_attempt_run,
    delivery_attempt_send,
)
from tenants.webhooks.services.claims import Claim, deliveries_claim, deliveries_due_count, delivery_claim
from tenants.webhooks.services.endpoints import (
    EVENT_TYPES,
    MAX_ENDPOINTS_PER_ORGANIZATION,
    ROTATION_OVERLAP,
    EndpointConflict,
    IssuedEndpoint,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_disable,
    webhook_endpoint_enable,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_secrets,
    webhook_endpoint_update,
    webhook_event_types_validate,
    webhook_url_validate,
)
from tenants.webhooks.services.fanout import (
    ATTEMPT_TASK,
    DRAIN_TASK,
    ENQUEUE_EACH_UP_TO,
    deliveries_create_for_events,
    deliveries_enqueue,
    deliveries_enqueue_on_commit,
    delivery_redeliver,
    event_body_serialize,
)
from tenants.webhooks.services.processing import (
    deliveries_process_due,
    deliveries_process_until,
    deliveries_resume_stalled,
    delivery_attempt_run_with_retries,
)
from tenants.webhooks.services.schedule import SWEEP_FUNC, SWEEP_SCHEDULE_NAME, webhook_schedule_ensure

__all__ = [
    "ATTEMPT_TASK",
    "DRAIN_TASK",
    "ENQUEUE_EACH_UP_TO",
    "EVENT_TYPES",
    "MAX_ATTEMPTS",
    "MAX_ENDPOINTS_PER_ORGANIZATION",
    "MAX_RETRY_AFTER",
    "RETRY_DELAYS",
    "ROTATION_OVERLAP",
    "SWEEP_FUNC",
    "SWEEP_SCHEDULE_NAME",
    "AttemptReport",
    "Claim",
    "Decision",
    "EndpointConflict",
    "IssuedEndpoint",
    "attempt_decide",
    "deliveries_attempt_send",
    "deliveries_claim",
    "deliveries_create_for_events",
    "deliveries_due_count",
    "deliveries_enqueue",
    "deliveries_enqueue_on_commit",
    "deliveries_process_due",
    "deliveries_process_until",
    "deliveries_resume_stalled",
    "delivery_attempt_run",
    "delivery_attempt_run_with_retries",
    "delivery_attempt_send",
    "delivery_claim",
    "delivery_redeliver",
    "event_body_serialize",
    "webhook_endpoint_create",
    "webhook_endpoint_delete",
    "webhook_endpoint_disable",
    "webhook_endpoint_enable",
    "webhook_endpoint_rotate_secret",
    "webhook_endpoint_secrets",
    "webhook_endpoint_update",
    "webhook_event_types_validate",
    "webhook_schedule_ensure",
    "webhook_url_validate",
]
