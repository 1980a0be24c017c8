"""The asyncio Kafka connection shared by the client and the broker\x27s inter-broker requests."""
