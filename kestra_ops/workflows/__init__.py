"""The operations a user asks for; they compose adapters and pure logic."""
