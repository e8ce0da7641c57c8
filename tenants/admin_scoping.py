"""Tenant scoping for the admin: staff see and pick only their own organization's objects.

Every tenant-owned model's admin derives from ``TenantScopedAdmin`` (inlines from
``TenantScopedInline``). Scoping covers the changelist and change views (``get_queryset``),
foreign-key and many-to-many choices, autocomplete (which reads the related admin's queryset) and
list filters (``ScopedRelatedFilter``). Superusers see everything.

A membership's role decides, per organization, what staff may change there: ``admin`` everything,
``frontdesk`` only what an admin class lists in its ``write_roles`` (appointments, blocks,
allocations, recurring blocks), ``viewer`` nothing. Change and delete permissions ask about the
object's organization, add forms and autocomplete offer only organizations (and their objects)
where the user holds a writing role, and actions act only on the selected objects of those
organizations.
"""

from __future__ import annotations

import functools

from django.contrib import admin, messages
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.urls import reverse

from tenants.models import Membership, Organization


def _memberships(request) -> dict:
    """``{organization_id: role}`` of the requesting user's active organizations (cached)."""
    if not hasattr(request, "_tenant_roles"):
        user = request.user
        if not (user.is_active and user.is_staff):
            request._tenant_roles = {}
        else:
            request._tenant_roles = dict(
                Membership.objects.filter(user=user, organization__is_active=True).values_list("organization_id", "role")
            )
    return request._tenant_roles


def user_organization_ids(request) -> list:
    """The organizations the requesting user is a member of, whatever the role: what they see."""
    return list(_memberships(request))


ADMIN_ONLY = frozenset({Membership.Role.ADMIN})
FRONT_DESK = frozenset({Membership.Role.ADMIN, Membership.Role.FRONTDESK})


def user_role(request, organization_id) -> str | None:
    """The requesting user's role in that organization (None: not a member)."""
    return _memberships(request).get(organization_id)


def user_writable_organization_ids(request, roles=ADMIN_ONLY) -> list:
    """The organizations where the requesting user holds one of ``roles``: where they may change
    things of that kind."""
    return [org_id for org_id, role in _memberships(request).items() if role in roles]


def object_organization_id(obj):
    """The id of the organization ``obj`` belongs to (None for global objects)."""
    if isinstance(obj, Organization):
        return obj.pk
    if hasattr(obj, "organization_id"):
        return obj.organization_id
    path = getattr(type(obj), "tenant_path", None)  # e.g. "appointment__organization"
    if path is None:
        return None
    *hops, last = path.split("__")
    for hop in hops:
        obj = getattr(obj, hop, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


def user_can_write(request, obj=None, roles=ADMIN_ONLY) -> bool:
    """Whether the user may change ``obj`` (one of ``roles`` in its organization); without ``obj``,
    whether they may change anything of that kind at all (one of ``roles`` somewhere)."""
    if request.user.is_superuser:
        return True
    writable = user_writable_organization_ids(request, roles)
    if obj is None:
        return bool(writable)
    org_id = object_organization_id(obj)
    if org_id is None:
        return bool(writable)  # not tied to an organization yet: the form picks a writable one
    return org_id in writable


def _organization_path(model: type[models.Model]) -> str | None:
    """The ORM path from ``model`` to its organization, or None for global models."""
    if model is Organization:
        return "pk"
    names = {f.name for f in model._meta.get_fields()}
    if "organization" in names:
        return "organization"
    return getattr(model, "tenant_path", None)


def scope_queryset(request, queryset: models.QuerySet, *, writable: bool = False, roles=ADMIN_ONLY) -> models.QuerySet:
    """The user's organizations' objects; ``writable``: only those of organizations where they
    hold one of ``roles``."""
    if request.user.is_superuser:
        return queryset
    path = _organization_path(queryset.model)
    if path is None:
        return queryset.none()
    org_ids = user_writable_organization_ids(request, roles) if writable else user_organization_ids(request)
    return queryset.filter(**{f"{path}__in": org_ids})


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A related-object list filter offering only the viewer's organization's objects."""

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        qs = scope_queryset(request, field.related_model._default_manager.all())
        if ordering:
            qs = qs.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in qs]


class _ScopedFormFields:
    """Form fields exist only where the user may write: their choices are the objects of the
    organizations where the user holds one of this admin's ``write_roles``."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        qs = scope_queryset(request, db_field.related_model._default_manager.all(), writable=True, roles=self.write_roles)
        kwargs.setdefault("queryset", qs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        qs = scope_queryset(request, db_field.related_model._default_manager.all(), writable=True, roles=self.write_roles)
        kwargs.setdefault("queryset", qs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class _ScopedPermissions:
    """Members see; holders of one of ``write_roles`` in the object's organization change. (For
    inlines ``obj`` is the parent object.)"""

    write_roles = ADMIN_ONLY

    def _is_member(self, request) -> bool:
        return request.user.is_superuser or bool(user_organization_ids(request))

    def has_module_permission(self, request):
        return self._is_member(request)

    def has_view_permission(self, request, obj=None):
        return self._is_member(request)

    def has_add_permission(self, request, *args):
        parent = args[0] if args else None  # inlines pass the parent object
        return self._is_member(request) and user_can_write(request, parent, self.write_roles)

    def has_change_permission(self, request, obj=None):
        return self._is_member(request) and user_can_write(request, obj, self.write_roles)

    def has_delete_permission(self, request, obj=None):
        return self._is_member(request) and user_can_write(request, obj, self.write_roles)


def _writable_objects_only(func):
    @functools.wraps(func)
    def scoped(modeladmin, request, queryset):
        writable = scope_queryset(request, queryset, writable=True, roles=modeladmin.write_roles)
        skipped = queryset.count() - writable.count()
        if skipped:
            modeladmin.message_user(
                request,
                f"Left {skipped} selected object(s) alone: your role in their organization "
                "(viewer, or front desk for this kind of object) does not allow it.",
                messages.WARNING,
            )
        if not writable.exists():
            return None
        return func(modeladmin, request, writable)

    return scoped


class TenantScopedAdmin(_ScopedPermissions, _ScopedFormFields, admin.ModelAdmin):
    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request):
        return scope_queryset(request, super().get_queryset(request))

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if request.path == reverse("admin:autocomplete"):
            # Autocomplete fills form fields: offer only what the user may pick (see
            # _ScopedFormFields), by the roles of the admin whose form asks.
            queryset = scope_queryset(request, queryset, writable=True, roles=self._asking_admin_roles(request))
        return queryset, may_have_duplicates

    def _asking_admin_roles(self, request):
        """The ``write_roles`` of the admin whose form field an autocomplete request fills."""
        from django.apps import apps

        try:
            model = apps.get_model(request.GET.get("app_label", ""), request.GET.get("model_name", ""))
        except (LookupError, ValueError):
            return ADMIN_ONLY
        source = self.admin_site._registry.get(model)
        return getattr(source, "write_roles", ADMIN_ONLY)

    def get_actions(self, request):
        """Every action (``delete_selected`` included) acts only on the selected objects of the
        organizations where the user is admin; the rest are left alone and reported."""
        return {
            name: (_writable_objects_only(func), name, description)
            for name, (func, name, description) in super().get_actions(request).items()
        }

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        for name in ("created_at", "updated_at"):
            if hasattr(self.model, name) and name not in fields:
                fields.append(name)
        return fields

    def _hides_organization(self, request) -> bool:
        """Staff of a single organization never choose it: it is set from their membership."""
        return (
            not request.user.is_superuser
            and len(user_organization_ids(request)) == 1
            and any(f.name == "organization" for f in self.model._meta.get_fields())
        )

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if self._hides_organization(request) and "organization" not in exclude:
            exclude.append("organization")
        return exclude or None

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        return [f for f in fields if f != "organization"] if self._hides_organization(request) else fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self._hides_organization(request):
            return fieldsets
        return [(name, {**opts, "fields": [f for f in opts["fields"] if f != "organization"]}) for name, opts in fieldsets]

    def get_list_display(self, request):
        """Staff of one organization need no organization column."""
        columns = list(super().get_list_display(request))
        return [c for c in columns if c != "organization"] if self._hides_organization(request) else columns

    def get_list_filter(self, request):
        filters = []
        for item in super().get_list_filter(request):
            if isinstance(item, str):
                try:
                    field = self.model._meta.get_field(item)
                except FieldDoesNotExist:  # a lookup path such as "resource__type"
                    filters.append(item)
                    continue
                if field.is_relation:
                    if field.related_model is Organization and not request.user.is_superuser:
                        continue
                    filters.append((item, ScopedRelatedFilter))
                    continue
            filters.append(item)
        return filters

    def save_form(self, request, form, change):
        obj = super().save_form(request, form, change)
        if not change and hasattr(obj, "organization_id") and obj.organization_id is None:
            org_ids = user_organization_ids(request)
            if len(org_ids) == 1:
                obj.organization_id = org_ids[0]
        return obj

    # Exceptions a ``save_model`` lets through from its service when it refuses the input (the
    # admin form does not repeat the service's checks): the transaction is rolled back and the
    # form comes back with the refusal on it. ``refusal_fields``: the form field an exception
    # class belongs on (default: Django ValidationError's own fields, else the whole form).
    refusals_on_form: tuple = ()
    refusal_fields: dict = {}

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except self.refusals_on_form as refusal:
            if getattr(request, "_admin_refusal", None) is not None:
                raise
            request._admin_refusal = refusal
            return super().changeform_view(request, object_id, form_url, extra_context)

    def _form_with_refusal(self, form, refusal):
        field_of = next((name for cls, name in self.refusal_fields.items() if isinstance(refusal, cls)), None)

        class RefusedForm(form):
            def _post_clean(form_self):
                super()._post_clean()
                form_add_refusal(form_self, refusal, field=field_of)

        RefusedForm.__name__ = form.__name__
        return RefusedForm

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = self._get_scoped_form(request, obj, change, **kwargs)
        refusal = getattr(request, "_admin_refusal", None)
        return self._form_with_refusal(form, refusal) if refusal is not None else form

    def _get_scoped_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        org_ids = user_organization_ids(request)
        if not request.user.is_superuser and len(org_ids) == 1 and hasattr(self.model, "organization_id"):
            # Model validation (constraints, cross-tenant checks) needs the organization before
            # the form is saved.
            base_init = form.__init__

            def __init__(form_self, *args, **kw):
                base_init(form_self, *args, **kw)
                if form_self.instance.organization_id is None:
                    form_self.instance.organization_id = org_ids[0]

            form = type(form.__name__, (form,), {"__init__": __init__})
        return form


def form_add_refusal(form, refusal, *, field=None) -> None:
    """Put a service's refusal on the form: a ValidationError on its fields (those the form has),
    a domain error through ``tenants.admin_errors``, anything else on ``field`` or the form."""
    from django.core.exceptions import ValidationError

    from tenants.admin_errors import form_add_domain_error
    from tenants.errors import DomainError

    if isinstance(refusal, DomainError):
        form_add_domain_error(form, refusal)
        return
    if isinstance(refusal, ValidationError) and hasattr(refusal, "error_dict"):
        for name, errors in refusal.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
        return
    text = refusal.messages if isinstance(refusal, ValidationError) else [str(refusal)]
    form.add_error(field if field in form.fields else None, text)


class TenantScopedInline(_ScopedPermissions, _ScopedFormFields):
    """Mix into ``admin.TabularInline``/``StackedInline``."""

    def get_queryset(self, request):
        return scope_queryset(request, super().get_queryset(request))

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if any(f.name == "organization" for f in self.model._meta.get_fields()):
            exclude.append("organization")  # copied from the parent in save_formset
        return exclude

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        if obj is not None and hasattr(self.model, "organization_id"):
            base_form_init = formset.form.__init__

            def __init__(form_self, *args, **kw):
                base_form_init(form_self, *args, **kw)
                form_self.instance.organization_id = obj.organization_id

            formset.form = type(formset.form.__name__, (formset.form,), {"__init__": __init__})
        return formset


class ReadOnlyTenantInline(TenantScopedInline):
    """A scoped inline that only lists: nothing is added, changed or deleted through it."""

    can_delete = False
    extra = 0
    max_num = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
