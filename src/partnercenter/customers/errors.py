"""Errors of the customers area."""

from __future__ import annotations

from partnercenter.errors import Conflict, InvalidInput, NotFound
from partnercenter.i18n import N_


class CustomerNotFound(NotFound):
    code = 12001
    name = "customer_not_found"
    default_description = N_("The customer was not found.")


class InvalidDomain(InvalidInput):
    code = 12002
    name = "invalid_domain"
    default_description = N_(
        "The primary domain must be a domain name such as contoso.onmicrosoft.com."
    )


class DomainTaken(Conflict):
    code = 12003
    name = "domain_taken"
    default_description = N_("Another customer already uses this primary domain.")


class TenantIdTaken(Conflict):
    code = 12004
    name = "tenant_id_taken"
    default_description = N_("A tenant with this tenant id already exists.")


class InvalidFilter(InvalidInput):
    code = 12005
    name = "invalid_filter"
    default_description = N_(
        'The filter must be JSON such as {"Field": "Domain", "Value": "contoso", '
        '"Operator": "starts_with"}; Field is Domain or CompanyName.'
    )
