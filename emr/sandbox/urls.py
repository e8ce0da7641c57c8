from django.urls import path, re_path

from emr.sandbox import views

app_name = "sandbox"

urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    path(".well-known/smart-configuration", views.smart_configuration, name="smart-configuration"),
    path("auth/token", views.token, name="token"),
    re_path(r"^(?P<resource_type>[A-Z][A-Za-z]+)$", views.search, name="search"),
    re_path(r"^(?P<resource_type>[A-Z][A-Za-z]+)/(?P<resource_id>[A-Za-z0-9\-.]{1,64})$", views.read, name="read"),
    re_path(r"^(?P<path>.*)$", views.unknown, name="unknown"),
]
