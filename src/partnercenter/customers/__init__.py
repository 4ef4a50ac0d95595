"""Customers: a partner's customer tenants, their billing profiles and their users."""
