from rest_framework.throttling import SimpleRateThrottle


class CredentialRateThrottle(SimpleRateThrottle):
    """Requests per API client, counted in the shared cache (Redis when configured) so the limit
    holds across web workers. Subclasses set ``scope``."""

    scope = "v3"

    def get_cache_key(self, request, view):
        principal = request.user
        ident = principal.api_client.pk if getattr(principal, "is_authenticated", False) else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
