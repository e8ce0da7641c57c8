"""Real worker processes against the real database: a ``manage.py qcluster`` delivering to the
receiver (prompt first attempt, the 5-second retry, a killed worker's delivery taken over through
the periodic schedule), and several worker processes sharing one backlog without double sends.

These tests commit: on PostgreSQL they use the test database in autocommit, on SQLite a file
database (``shared_database_url``), because subprocesses cannot see an in-memory one.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.scheduler import scheduler
from standardwebhooks import Webhook

from tenants.events import event_emit
from tenants.models import Delivery, DeliveryAttempt
from tenants.webhooks.services import SWEEP_FUNC, SWEEP_SCHEDULE_NAME, webhook_endpoint_create
from tests.conftest import make_tenant
from tests.tenants.conftest import manage, stop_group, subprocess_env, wait_until
from tests.tenants.receiver import Reply


def _log_tail(path) -> str:
    try:
        return path.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def test_the_sweep_schedule_exists_once_and_runs_every_minute(shared_database_url):
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)  # again: still one schedule
    [schedule] = Schedule.objects.filter(func=SWEEP_FUNC)
    assert (schedule.name, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        SWEEP_SCHEDULE_NAME,
        Schedule.MINUTES,
        1,
        -1,
    )


def test_qcluster_delivers_retries_and_takes_over_from_a_killed_worker(shared_database_url, receiver, tmp_path):
    tenant = make_tenant("Cluster Clinic")
    hook = webhook_endpoint_create(organization=tenant.organization, url=receiver.url())
    # A lease far shorter than the timeout, which the system checks refuse (tenants.E002): the held
    # request must stay in flight until the kill, and the takeover needn't wait long afterwards.
    env = subprocess_env(shared_database_url, WEBHOOK_LEASE_SECONDS="2", WEBHOOK_TIMEOUT_SECONDS="30", Q_WORKERS="2")
    log = tmp_path / "qcluster.log"
    receiver.script(500, 200, Reply(200, hold=True), 200)

    cluster = manage("qcluster", "--skip-checks", env=env, log=log)
    try:
        # The first attempt is enqueued when the event's transaction commits; the 500 is retried
        # 5 seconds later by the same task.
        first = event_emit(organization=tenant.organization, type="appointment.created", data={"n": 1})
        one, two = receiver.wait_for(2, timeout=30)
        assert one.headers["webhook-id"] == two.headers["webhook-id"] == first.pk
        assert (one.headers["webhook-attempt"], two.headers["webhook-attempt"]) == ("1", "2")
        assert Webhook(hook.secret).verify(two.body, two.headers) == first.payload
        wait_until(lambda: Delivery.objects.get(event=first).status == Delivery.Status.SUCCEEDED, message="first delivered")

        # A worker is killed while its request is in flight.
        second = event_emit(organization=tenant.organization, type="appointment.created", data={"n": 2})
        receiver.wait_for(3, timeout=30)
        stop_group(cluster, kill=True)
    finally:
        stop_group(cluster)
    stuck = Delivery.objects.get(event=second)
    assert stuck.status == Delivery.Status.SENDING, _log_tail(log)

    # A new cluster; once the lease has passed, the periodic schedule's sweep takes it over. The
    # scheduler is run here, as qcluster's guard loop does every 30 seconds, so the test needn't wait.
    wait_until(lambda: Delivery.objects.get(pk=stuck.pk).lease_expires_at <= timezone.now(), timeout=10, message="lease")
    cluster = manage("qcluster", "--skip-checks", env=env, log=log)
    try:
        Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).update(next_run=timezone.now() - timedelta(seconds=1))
        scheduler(broker=get_broker())
        wait_until(
            lambda: Delivery.objects.get(pk=stuck.pk).status == Delivery.Status.SUCCEEDED,
            timeout=30,
            message="takeover\n" + _log_tail(log),
        )
    finally:
        stop_group(cluster)
    fourth = receiver.requests[3]
    assert fourth.headers["webhook-id"] == second.pk and fourth.headers["webhook-attempt"] == "2"
    assert list(DeliveryAttempt.objects.filter(delivery=stuck).values_list("number", "outcome")) == [
        (1, "lost"),
        (2, "succeeded"),
    ]
    assert len(receiver.requests) == 4


def test_a_worker_waiting_to_retry_a_failing_endpoint_keeps_sending_other_organizations_events(
    shared_database_url, receiver, tmp_path
):
    failing, other = make_tenant("Failing Clinic"), make_tenant("Other Clinic")
    webhook_endpoint_create(organization=failing.organization, url=receiver.url("/down"))
    webhook_endpoint_create(organization=other.organization, url=receiver.url("/up"))
    receiver.routes["/down"] = Reply(500)
    # Only the delivery tasks send here: the every-minute sweep stays out of it.
    Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).update(next_run=timezone.now() + timedelta(hours=1))
    log = tmp_path / "qcluster.log"
    cluster = manage("qcluster", env=subprocess_env(shared_database_url, Q_WORKERS="2"), log=log)
    try:
        # More tasks than workers, each for a first attempt that fails and a retry 5 s later.
        down = [event_emit(organization=failing.organization, type="appointment.created", data={"n": n}) for n in range(6)]
        receiver.wait_for(2, timeout=30)  # the workers are busy with the failing endpoint
        up = event_emit(organization=other.organization, type="appointment.created", data={"n": 0})
        wait_until(lambda: Delivery.objects.get(event=up).status == Delivery.Status.SUCCEEDED, timeout=60,
                   message="the other organization's delivery\n" + _log_tail(log))
        receiver.wait_for(2 * len(down) + 1, timeout=60)  # every failing delivery's 5-second retry too
    finally:
        stop_group(cluster)

    sent = [(r.path, r.headers["webhook-id"], r.headers["webhook-attempt"]) for r in receiver.requests]
    first_retry = next(n for n, (path, _, attempt) in enumerate(sent) if path == "/down" and attempt == "2")
    # Sent while the failing endpoint's retries were still waiting, not queued behind them.
    assert sent.index(("/up", up.pk, "1")) < first_retry, sent
    assert sorted(sent) == sorted(
        [("/up", up.pk, "1")] + [("/down", event.pk, attempt) for event in down for attempt in ("1", "2")]
    )  # each attempt once: nothing sent twice
    assert set(Delivery.objects.filter(event__in=down).values_list("status", "attempts")) == {(Delivery.Status.PENDING, 2)}


def test_several_worker_processes_share_a_backlog_and_send_each_delivery_once(shared_database_url, receiver, tmp_path):
    tenant = make_tenant("Backlog Clinic")
    webhook_endpoint_create(organization=tenant.organization, url=receiver.url())
    receiver.default = Reply(200, delay=0.01)
    events = [event_emit(organization=tenant.organization, type="appointment.created", data={"n": n}) for n in range(40)]
    env = subprocess_env(shared_database_url)
    workers = [manage("webhooks_deliver", env=env, log=tmp_path / f"worker{n}.log") for n in range(3)]
    try:
        for worker in workers:
            assert worker.wait(timeout=60) == 0, _log_tail(tmp_path / "worker0.log")
    finally:
        for worker in workers:
            stop_group(worker)
    sent = sorted(request.headers["webhook-id"] for request in receiver.requests)
    assert sent == sorted(event.pk for event in events)  # every one, none twice
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SUCCEEDED}
    assert DeliveryAttempt.objects.count() == 40


def test_a_crashed_workers_delivery_resumes_before_the_backlog_queued_in_front_of_the_sweep(
    shared_database_url, receiver, tmp_path
):
    stranded_tenant, busy_tenant = make_tenant("Crashed Clinic"), make_tenant("Busy Clinic")
    webhook_endpoint_create(organization=stranded_tenant.organization, url=receiver.url("/crashed"))
    webhook_endpoint_create(organization=busy_tenant.organization, url=receiver.url("/busy"))
    receiver.routes["/busy"] = Reply(200, delay=0.4)
    # A lease shorter than the system checks allow, so the takeover is due soon after the crash.
    env = subprocess_env(shared_database_url, WEBHOOK_LEASE_SECONDS="2", WEBHOOK_TIMEOUT_SECONDS="30", Q_WORKERS="1")
    log = tmp_path / "qcluster.log"

    receiver.script(Reply(200, hold=True))
    cluster = manage("qcluster", "--skip-checks", env=env, log=log)
    try:
        stranded = event_emit(organization=stranded_tenant.organization, type="appointment.created", data={"n": 0})
        receiver.wait_for(1, timeout=30)
        stop_group(cluster, kill=True)  # the whole cluster dies with the request in flight
    finally:
        stop_group(cluster)
    assert Delivery.objects.get(event=stranded).status == Delivery.Status.SENDING, _log_tail(log)

    # A backlog of delivery tasks (about 12 s of work for the one worker), then the every-minute
    # sweep, which the scheduler queues behind them.
    backlog = [event_emit(organization=busy_tenant.organization, type="appointment.created", data={"n": n}) for n in range(30)]
    Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).update(next_run=timezone.now() - timedelta(seconds=1))
    scheduler(broker=get_broker())
    wait_until(lambda: Delivery.objects.get(event=stranded).lease_expires_at <= timezone.now(), timeout=10, message="lease")

    cluster = manage("qcluster", "--skip-checks", env=env, log=log)
    try:
        receiver.wait_for(1 + len(backlog) + 1, timeout=90)
        wait_until(
            lambda: Delivery.objects.filter(event__in=backlog, status=Delivery.Status.SUCCEEDED).count() == len(backlog),
            timeout=30,
            message="backlog\n" + _log_tail(log),
        )
    finally:
        stop_group(cluster)

    sent = [(r.path, r.headers["webhook-id"], r.headers["webhook-attempt"]) for r in receiver.requests]
    resumed = sent.index(("/crashed", stranded.pk, "2"))
    last_of_backlog = max(n for n, (path, _, _) in enumerate(sent) if path == "/busy")
    # Taken over by the first delivery task that ran after the lease, not by the sweep behind them.
    assert resumed < last_of_backlog, sent
    assert sum(1 for path, _, _ in sent[:resumed] if path == "/busy") < len(backlog) // 2, sent
    assert list(DeliveryAttempt.objects.filter(delivery__event=stranded).values_list("number", "outcome")) == [
        (1, "lost"),
        (2, "succeeded"),
    ]
    assert sorted(event_id for path, event_id, _ in sent if path == "/busy") == sorted(event.pk for event in backlog)
