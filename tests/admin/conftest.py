from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model

from tenants.models import Membership
from tests import factories as f
from tests.conftest import make_tenant


@dataclass
class AdminWorld:
    a: object
    b: object
    a_location: object
    b_location: object
    a_resource: object
    b_resource: object
    a_service: object
    b_service: object
    staff: object
    viewer: object
    outsider: object
    superuser: object


PASSWORD = "correct horse battery"


def _user(username: str, *, superuser: bool = False, staff: bool = True):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=staff, is_superuser=superuser)
    return user


@pytest.fixture
def admin_world(db) -> AdminWorld:
    a, b = make_tenant("Alpha Clinic"), make_tenant("Beta Clinic")
    world = AdminWorld(
        a=a,
        b=b,
        a_location=f.LocationFactory(organization=a.organization, name="Alpha Main St"),
        b_location=f.LocationFactory(organization=b.organization, name="Beta Harbour Rd"),
        a_resource=f.ResourceFactory(organization=a.organization, name="Dr Alpha Adams"),
        b_resource=f.ResourceFactory(organization=b.organization, name="Dr Beta Brown"),
        a_service=f.ServiceFactory(organization=a.organization, name="Alpha Checkup"),
        b_service=f.ServiceFactory(organization=b.organization, name="Beta Checkup"),
        staff=_user("alpha_staff"),
        viewer=_user("alpha_viewer"),
        outsider=_user("no_membership"),
        superuser=_user("root", superuser=True),
    )
    Membership.objects.create(user=world.staff, organization=a.organization, role=Membership.Role.ADMIN)
    Membership.objects.create(user=world.viewer, organization=a.organization, role=Membership.Role.VIEWER)
    return world
