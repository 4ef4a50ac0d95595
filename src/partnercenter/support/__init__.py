"""Customer support requests: refunds and questions filed by partners, worked by the provider."""
