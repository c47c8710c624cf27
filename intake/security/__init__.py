"""Security building blocks: field encryption, passwords, response headers, session rules."""
