"""factory_boy factories: every object belongs to an organization, by default a fresh one."""

from __future__ import annotations

from datetime import time

import factory

from booking import models as b
from tenants.models import Organization


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Clinic {n}")
    slug = factory.Sequence(lambda n: f"clinic-{n}")
    timezone = "UTC"


class _Owned(factory.django.DjangoModelFactory):
    organization = factory.SubFactory(OrganizationFactory)


class LocationFactory(_Owned):
    class Meta:
        model = b.Location

    name = factory.Sequence(lambda n: f"Location {n}")
    timezone = "UTC"


class ServiceFactory(_Owned):
    class Meta:
        model = b.Service

    name = factory.Sequence(lambda n: f"Service {n}")
    duration = 30


class ResourceFactory(_Owned):
    class Meta:
        model = b.Resource

    name = factory.Sequence(lambda n: f"Resource {n}")


class ResourceServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = b.ResourceService

    resource = factory.SubFactory(ResourceFactory)
    organization = factory.SelfAttribute("resource.organization")
    service = factory.SubFactory(ServiceFactory, organization=factory.SelfAttribute("..organization"))
    location = factory.SubFactory(LocationFactory, organization=factory.SelfAttribute("..organization"))


class ShiftFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = b.Shift

    resource = factory.SubFactory(ResourceFactory)
    organization = factory.SelfAttribute("resource.organization")
    day_of_week = 1
    start_time = time(9)
    end_time = time(17)


class BlockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = b.Block

    resource = factory.SubFactory(ResourceFactory)
    organization = factory.SelfAttribute("resource.organization")


class AllocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = b.Allocation

    resource = factory.SubFactory(ResourceFactory)
    organization = factory.SelfAttribute("resource.organization")


class RecurringBlockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = b.RecurringBlock

    resource = factory.SubFactory(ResourceFactory)
    organization = factory.SelfAttribute("resource.organization")
    frequency = b.RecurringBlock.Frequency.DAILY
    start_time = time(12)
    end_time = time(13)
