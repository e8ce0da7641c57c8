"""``/v1/`` webhook registration and event polling endpoints."""

app_name = "v1-webhooks"

urlpatterns: list = []
