"""Software: product keys, downloads and signed copied links."""
