"""Valid bodies for every plain ``/v3/`` collection, built against one tenant's objects."""

from __future__ import annotations

from rest_framework.test import APIClient


def create(api: APIClient, collection: str, body: dict) -> dict:
    response = api.post(f"/v3/{collection}", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def location_body(**overrides) -> dict:
    return {
        "name": "Back Bay",
        "timezone": "America/New_York",
        "weeklyAvailability": [{"dayOfWeek": 1, "startTime": "08:00:00", "endTime": "18:00:00"}],
        "address": "233 Newbury St",
        **overrides,
    }


def service_body(**overrides) -> dict:
    return {"name": "Follow-up", "duration": 30, "padding": 5, **overrides}


def resource_body(**overrides) -> dict:
    return {"name": "Dr. Patel", "type": "provider", "email": "Maya@Example.com", "licensedStates": ["ma", "NY"], **overrides}


class World:
    """One of each object for a tenant, created through the API."""

    def __init__(self, api: APIClient):
        self.api = api
        self.location = create(api, "locations", location_body())
        self.service = create(api, "services", service_body())
        self.resource = create(api, "resources", resource_body())
        self.block = create(
            api,
            "blocks",
            {"ResourceId": self.resource["id"], "startDate": "2030-01-07T12:00:00-05:00", "endDate": "2030-01-07T13:00:00-05:00"},
        )
        self.recurring_block = create(
            api,
            "recurringBlocks",
            {
                "LocationId": self.location["id"],
                "frequency": "WEEKLY",
                "weekdays": [3],
                "startDate": "2030-01-01",
                "startTime": "12:00:00",
                "endTime": "13:00:00",
            },
        )
        link = api.post(
            f"/v3/resources/{self.resource['id']}/services",
            {"ServiceId": self.service["id"], "LocationId": self.location["id"]},
            format="json",
        )
        assert link.status_code == 201, link.content
        allocation = api.post(
            f"/v3/resources/{self.resource['id']}/allocations",
            {"startDate": "2030-01-05T09:00:00-05:00", "endDate": "2030-01-05T12:00:00-05:00"},
            format="json",
        )
        assert allocation.status_code == 201, allocation.content
        self.allocation = allocation.json()
        schedule = api.put(
            f"/v3/resources/{self.resource['id']}/schedule",
            {"weeklyAvailability": [{"dayOfWeek": 1, "startTime": "09:00:00", "endTime": "17:00:00"}]},
            format="json",
        )
        assert schedule.status_code == 200, schedule.content
