from django.urls import path

from emr.sandbox import calendly as views

app_name = "sandbox-calendly"

urlpatterns = [
    path("users/me", views.users_me, name="users-me"),
    path("organization_memberships", views.organization_memberships, name="organization-memberships"),
    path("event_types", views.event_types, name="event-types"),
    path("event_type_available_times", views.event_type_available_times, name="event-type-available-times"),
    path("book/<uuid:resource_id>/<uuid:type_id>", views.booking_page, name="book"),
    path("book/<uuid:resource_id>/<uuid:type_id>/<str:at>", views.booking_page, name="book-at"),
]
