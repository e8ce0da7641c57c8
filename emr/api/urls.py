"""``/v1/`` EMR endpoints (appointments, availability, providers, locations, settings)."""

from django.urls import path

from emr.api import availability, settings, views

app_name = "v1"

urlpatterns = [
    path("appointments/fetch", views.AppointmentsFetchView.as_view(), name="appointments-fetch"),
    path("appointments", views.AppointmentsView.as_view(), name="appointments"),
    path("providers", views.ProvidersView.as_view(), name="providers"),
    path("providers/ehr/<str:ehr_id>", views.ProviderByEhrIdView.as_view(), name="provider-by-ehr-id"),
    path("providers/<str:pk>", views.ProviderItemView.as_view(), name="provider"),
    path("locations", views.LocationsView.as_view(), name="locations"),
    path("locations/<str:pk>", views.LocationItemView.as_view(), name="location"),
    path("settings", settings.SettingsView.as_view(), name="settings"),
    path("availability", availability.AvailabilityView.as_view(), name="availability"),
    path("availability/fetch", availability.AvailabilityFetchView.as_view(), name="availability-fetch"),
]
