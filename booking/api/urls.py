from django.urls import path

from booking.api import appointments, availability, views

app_name = "v3"

urlpatterns = [
    path("oauth/token", views.OAuthTokenView.as_view(), name="oauth-token"),
    path("locations", views.LocationCollectionView.as_view(), name="locations"),
    path("locations/<uuid:pk>", views.LocationItemView.as_view(), name="location"),
    path("services", views.ServiceCollectionView.as_view(), name="services"),
    path("services/<uuid:pk>", views.ServiceItemView.as_view(), name="service"),
    path("resources", views.ResourceCollectionView.as_view(), name="resources"),
    path("resources/<uuid:pk>", views.ResourceItemView.as_view(), name="resource"),
    path("resources/<uuid:pk>/services", views.ResourceServicesView.as_view(), name="resource-services"),
    path(
        "resources/<uuid:pk>/services/<uuid:service_pk>",
        views.ResourceServiceItemView.as_view(),
        name="resource-service",
    ),
    path("resources/<uuid:pk>/schedule", views.ResourceScheduleView.as_view(), name="resource-schedule"),
    path("resources/<uuid:pk>/allocations", views.ResourceAllocationsView.as_view(), name="resource-allocations"),
    path(
        "resources/<uuid:pk>/allocations/<uuid:allocation_pk>",
        views.ResourceAllocationItemView.as_view(),
        name="resource-allocation",
    ),
    path("blocks", views.BlockCollectionView.as_view(), name="blocks"),
    path("blocks/<uuid:pk>", views.BlockItemView.as_view(), name="block"),
    path("recurringBlocks", views.RecurringBlockCollectionView.as_view(), name="recurring-blocks"),
    path("recurringBlocks/<uuid:pk>", views.RecurringBlockItemView.as_view(), name="recurring-block"),
]

# Availability and appointments
urlpatterns += [
    path("availability", availability.AvailabilityView.as_view(), name="availability"),
    path("availability/explain", availability.AvailabilityExplainView.as_view(), name="availability-explain"),
    path("appointments", appointments.AppointmentCollectionView.as_view(), name="appointments"),
    path("appointments/hold", appointments.AppointmentHoldView.as_view(), name="appointments-hold"),
    path("appointments/reserve", appointments.AppointmentReserveView.as_view(), name="appointments-reserve"),
    path("appointments/<uuid:pk>", appointments.AppointmentItemView.as_view(), name="appointment"),
    path("appointments/<uuid:pk>/book", appointments.AppointmentBookView.as_view(), name="appointment-book"),
    path("appointments/<uuid:pk>/cancel", appointments.AppointmentCancelView.as_view(), name="appointment-cancel"),
    path(
        "appointments/<uuid:pk>/reschedule",
        appointments.AppointmentRescheduleView.as_view(),
        name="appointment-reschedule",
    ),
]
