"""Carts, checkout, orders, their charges and the entitlements they grant."""
