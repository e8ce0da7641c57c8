from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from booking.api.base import v3_error_body
from emr.api.provider_directory import ProviderAvailabilityView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("v3/", include("booking.api.urls")),
    path("v1/", include("emr.api.urls")),
    path("sandbox/fhir/r4/", include("emr.sandbox.urls")),
    path("api/v1/provider-availability", ProviderAvailabilityView.as_view(), name="provider-availability"),
    path("sandbox/calendly/", include("emr.sandbox.calendly_urls")),
]


def _family_error(request, status: int, message: str):
    path_ = request.path
    if path_.startswith("/v3/"):
        return JsonResponse(v3_error_body(status, message), status=status)
    if path_.startswith("/v1/"):
        return JsonResponse({"success": False, "message": message}, status=status)
    if path_.startswith("/api/v1/"):
        return JsonResponse(
            {"status": status, "success": False, "message": "Invalid request" if status < 500 else "Server error", "error": message},
            status=status,
        )
    return None


def handler404(request, exception=None):
    response = _family_error(request, 404, f"No route for {request.method} {request.path}.")
    if response is not None:
        return response
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    response = _family_error(request, 500, "Internal server error.")
    if response is not None:
        return response
    from django.views.defaults import server_error

    return server_error(request)
