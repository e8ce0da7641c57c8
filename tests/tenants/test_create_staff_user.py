"""``manage.py create_staff_user``: a staff login with one role in one organization."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from tenants.models import Membership
from tests.conftest import make_tenant

User = get_user_model()


def run(**options) -> str:
    out = StringIO()
    call_command("create_staff_user", stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def org(db):
    return make_tenant("Alpha Clinic").organization


def test_creates_an_active_staff_user_with_the_role(org, client):
    output = run(organization=str(org.pk), username="desk", password="pw-12345678", role="frontdesk")
    assert output.strip() == "Created desk: frontdesk of Alpha Clinic."
    user = User.objects.get(username="desk")
    assert (user.is_staff, user.is_active, user.is_superuser) == (True, True, False)
    assert Membership.objects.get(user=user).role == "frontdesk"
    assert client.login(username="desk", password="pw-12345678")
    assert client.get("/admin/booking/appointment/").status_code == 200


def test_adds_a_membership_to_an_existing_user_and_changes_a_role(org):
    other = make_tenant("Beta Clinic").organization
    run(organization=str(org.pk), username="sam", password="first-password", role="viewer")
    assert run(organization=str(other.pk), username="sam", password="ignored", role="admin").startswith("Added sam: admin")
    assert run(organization=str(org.pk), username="sam", password="ignored", role="admin").strip() == \
        "sam: viewer → admin of Alpha Clinic."
    user = User.objects.get(username="sam")
    assert dict(user.memberships.values_list("organization__name", "role")) == {"Alpha Clinic": "admin", "Beta Clinic": "admin"}
    assert user.check_password("first-password")  # an existing user's password is left alone


@pytest.mark.parametrize(
    "options,message",
    [
        ({"organization": "00000000-0000-0000-0000-000000000000"}, "No organization"),
        ({"organization": "not-a-uuid"}, "No organization"),
        ({"role": "owner"}, "Unknown role"),
        ({"username": "  "}, "username must not be empty"),
        ({"password": ""}, "password must not be empty"),
    ],
)
def test_bad_input_exits_non_zero_and_writes_nothing(org, options, message):
    args = {"organization": str(org.pk), "username": "desk", "password": "pw-12345678", "role": "frontdesk", **options}
    with pytest.raises(CommandError, match=message):
        run(**args)
    assert not User.objects.filter(username__in=["desk", "  "]).exists()
    assert not Membership.objects.exists()
