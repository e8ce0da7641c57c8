"""The ``/v1/`` family: appointments, availability, providers, locations, settings, webhooks and
job events.

One URLconf for the family. The webhook routes keep their own list so their permission table
(``tests/tenants/test_webhook_api.py``) can check that it covers every one of them."""

from django.urls import include, path

from emr.api import availability, settings, views, webhook_views

app_name = "v1"

webhook_urlpatterns = [
    path("webhook", webhook_views.WebhookCollectionView.as_view(), name="webhook-list"),
    path("webhook/<str:webhook_id>", webhook_views.WebhookItemView.as_view(), name="webhook-detail"),
    path(
        "webhook/<str:webhook_id>/rotate-secret",
        webhook_views.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
    path("webhook-events", webhook_views.WebhookEventsView.as_view(), name="webhook-events"),
]

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
    path("", include(webhook_urlpatterns)),
]
