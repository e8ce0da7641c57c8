"""``/v1/`` EMR endpoints (appointments, providers, locations, settings)."""

app_name = "v1"

urlpatterns: list = []
