"""``/v1/`` webhook registration and event polling endpoints."""

from django.urls import path

from tenants.api import webhook_views as views

app_name = "v1-webhooks"

urlpatterns: list = [
    path("webhook", views.WebhookCollectionView.as_view(), name="webhook-list"),
    path("webhook/<str:webhook_id>", views.WebhookItemView.as_view(), name="webhook-detail"),
    path("webhook/<str:webhook_id>/rotate-secret", views.WebhookRotateSecretView.as_view(), name="webhook-rotate-secret"),
    path("webhook-events", views.WebhookEventsView.as_view(), name="webhook-events"),
]
